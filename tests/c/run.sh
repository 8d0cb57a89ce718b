#!/usr/bin/env bash
# Run the C test binaries given as arguments; print each one's summary and a
# total.  Exits non-zero if any failed.
set -u
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fail=0
for t in "$@"; do
  echo "== $t"
  "$t" || fail=1
done
if [ $fail -ne 0 ]; then echo "C tests: FAILED"; exit 1; fi
echo "C tests: all passed"
