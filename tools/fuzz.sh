#!/usr/bin/env bash
# Run every Go fuzz target of the module for a while and report how many
# inputs each one executed.
#
#   tools/fuzz.sh [DURATION [TOTAL]]
#
# DURATION is per target, as for go test -fuzztime (default 10s): a time
# (20s, 2m) or a number of inputs (3000x).  `make test` passes a number of
# inputs, which cannot fail on a time budget (golang/go#75804: Go 1.26's
# coordinator may report "context deadline exceeded" for a clean run that
# ends at its deadline); `make fuzz` passes a time.  TOTAL, in
# seconds or with a unit (20s, 2m), caps the fuzzing time of the whole run:
# each target then gets min(DURATION, TOTAL / number of targets), so adding
# targets does not lengthen `make test` (the build of each package comes on
# top). The targets are the Fuzz functions of every package of the module
# (func FuzzXxx(f *testing.F) in its *_test.go files), e.g. core/l0 FuzzOps
# and FuzzCorruptRegion, capi/abi FuzzParseConfig.
#
# Each target runs with
#   go test -run=NONE -fuzz=^TARGET$ -fuzztime=DURATION ./PKG/
# An input that makes a target fail (a crash, a hang, a wrong answer) is
# written by go test to PKG/testdata/fuzz/TARGET/ -- keep it: it is a
# regression seed that plain `go test ./PKG/` runs from then on.
# Exits non-zero if any target failed.
set -uo pipefail

dur="${1:-10s}"
total="${2:-${FUZZ_TOTAL:-}}"
cd "$(dirname "$0")/.." || exit 1
go="${GO:-go}"

# seconds DURATION: the number of seconds of 90s, 2m, 1h, 1.5s; empty if it
# is not a time (e.g. 1000x, a count of inputs).
seconds() {
  awk -v d="$1" 'BEGIN {
    if (match(d, /^[0-9]+(\.[0-9]+)?(s|m|h)$/)) {
      n = substr(d, 1, length(d) - 1); u = substr(d, length(d))
      printf "%d\n", n * (u == "h" ? 3600 : u == "m" ? 60 : 1)
    }
  }'
}

# The fuzz targets: every func FuzzXxx(f *testing.F) in a *_test.go file
# of the module, with its package directory (read from the sources: a
# go test -list per package would build every test binary twice).
mapfile -t jobs < <(grep -rE '^func Fuzz[A-Za-z0-9_]*\(\w+ \*testing\.F\)' --include='*_test.go' \
  --exclude-dir=testdata --exclude-dir=.venv --exclude-dir=build --exclude-dir=.git . |
  sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|\1 \2|' | sort)
if [ ${#jobs[@]} -eq 0 ]; then
  echo "fuzz.sh: no fuzz target found" >&2
  exit 1
fi

if [ -n "$total" ]; then
  tot=$(seconds "$total")
  per=$(seconds "$dur")
  if [ -z "$tot" ]; then
    echo "fuzz.sh: TOTAL must be a duration such as 20s or 2m, not $total" >&2
    exit 1
  fi
  if [ -n "$per" ]; then
    cap=$((tot / ${#jobs[@]}))
    [ "$cap" -lt 1 ] && cap=1
    [ "$per" -gt "$cap" ] && dur="${cap}s"
  fi
fi

echo "fuzz.sh: ${#jobs[@]} targets, $dur each"
status=0
summary=()
for j in "${jobs[@]}"; do
  read -r p t <<<"$j"
  echo "== $p $t for $dur"
  log=$(mktemp)
  "$go" test -run=NONE -fuzz="^${t}\$" -fuzztime="$dur" "$p/" >"$log" 2>&1
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
    [ -n "$new" ] && echo "failing input kept as a regression seed: ${p#./}/$new"
  fi
  rm -f "$log"
  echo "$t: $execs execs ($result)"
  summary+=("$(printf '%-12s %-22s %12s execs  %s' "${p#./}" "$t" "$execs" "$result")")
done

echo
echo "fuzz summary ($dur per target):"
for line in "${summary[@]}"; do echo "  $line"; done
exit $status
