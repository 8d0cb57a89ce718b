#!/usr/bin/env bash
# Run every Go fuzz target of the L0 binding for a while and report how many
# inputs each one executed.
#
#   tools/fuzz.sh [DURATION]      DURATION as for go test -fuzztime (default 10s)
#
# Each target runs with
#   go test -run=NONE -fuzz=^TARGET$ -fuzztime=DURATION ./core/l0/
# An input that makes a target fail (a crash, a hang, a wrong answer) is
# written by go test to core/l0/testdata/fuzz/TARGET/ -- keep it: it is a
# regression seed that plain `go test ./core/l0/` runs from then on.
# Exits non-zero if any target failed.
set -uo pipefail

dur="${1:-10s}"
cd "$(dirname "$0")/.." || exit 1
pkg=./core/l0/
go="${GO:-go}"

targets=$("$go" test -list '^Fuzz' "$pkg" | grep '^Fuzz') || {
  echo "fuzz.sh: cannot list the fuzz targets of $pkg" >&2
  exit 1
}

status=0
summary=()
for t in $targets; do
  echo "== $t for $dur"
  log=$(mktemp)
  "$go" test -run=NONE -fuzz="^${t}\$" -fuzztime="$dur" "$pkg" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  execs=${execs:-0}
  if [ $rc -eq 0 ]; then
    result=ok
  else
    result=FAIL
    status=1
    tail -n 40 "$log"
    new=$(grep -o 'testdata/fuzz/[^ ]*' "$log" | sort -u)
    [ -n "$new" ] && echo "failing input kept as a regression seed: core/l0/$new"
  fi
  rm -f "$log"
  echo "$t: $execs execs ($result)"
  summary+=("$(printf '%-22s %12s execs  %s' "$t" "$execs" "$result")")
done

echo
echo "fuzz summary ($dur per target):"
for line in "${summary[@]}"; do echo "  $line"; done
exit $status
