#!/usr/bin/env bash
# Side by side: the ABI read path (abi_hit.c) of the working tree against
# that of another commit, in one run, alternating the two libraries so that
# both see the same machine load.
#
#   bench/tiers/compare.sh [REV [RUNS]]   REV: default HEAD; RUNS: default 3
#
# REV is checked out into a temporary git worktree and built there
# (build/tiers-compare/libcachee-REV.so); the working tree's library is
# build/libcachee.so (built now).  Each run of abi_hit prints the median of 5
# rounds per read; this prints every run and then the median over the runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
rev="${1:-HEAD}"
runs="${2:-3}"
go="${GO:-go}"
cc="${CC:-gcc}"
out=build/tiers-compare
mkdir -p "$out"
sha=$(git rev-parse --short "$rev")

wt=$(mktemp -d)
trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"' EXIT
git worktree add --detach "$wt" "$sha" >/dev/null 2>&1
(cd "$wt" && "$go" build -buildmode=c-shared -o "$OLDPWD/$out/libcachee-$sha.so" ./capi)
"$go" build -buildmode=c-shared -o build/libcachee.so ./capi
"$cc" -std=gnu11 -Wall -Wextra -Werror -O2 -Iinclude -Icore/l0 bench/tiers/abi_hit.c \
  core/l0/*.c -o "$out/abi_hit" -lpthread -ldl

declare -A res
for ((i = 1; i <= runs; i++)); do
  for lib in "$out/libcachee-$sha.so" build/libcachee.so; do
    name=$([ "$lib" = build/libcachee.so ] && echo "tree" || echo "$sha")
    echo "== run $i: $name ($lib)"
    while IFS= read -r line; do
      echo "$line"
      if [[ $line =~ ^(.*[^ ])\ +([0-9]+)\ ns/op$ ]]; then
        res["$name|${BASH_REMATCH[1]}"]+="${BASH_REMATCH[2]} "
      fi
    done < <("$out/abi_hit" "$lib")
  done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
printf '%-34s %10s %10s   (median of %d runs, ns/op)\n' "read" "$sha" "tree" "$runs"
for row in "bare C->Go call (open_handles)" "direct L0 get (C, no Go)" \
  "ABI cachee_get, L0 hit" "ABI cachee_get SKIP_L0, L1 hit" \
  "direct L0 get, 1k hot keys" "ABI L0 hit, 1k hot keys" "ABI L1 hit, 1k hot keys"; do
  a=$(echo "${res["$sha|$row"]:-}" | median)
  b=$(echo "${res["tree|$row"]:-}" | median)
  printf '%-34s %10s %10s\n' "$row" "${a:--}" "${b:--}"
done
