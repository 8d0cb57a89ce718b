#!/usr/bin/env bash
# Run the Python test suite of cachee.
#
#   tests/python/run.sh [--sanitize] [pytest arguments...]
#
# Builds the extension in place (python setup.py build_ext --inplace) and runs
# pytest on tests/python.  With --sanitize it then builds the extension again
# with AddressSanitizer and UBSan (CACHEE_SANITIZE=1) into build/asan/ -- the
# in-place build is left alone -- and runs the suite once more against that
# build, with libasan preloaded.  Prints pytest's summary lines of each run;
# exits non-zero if any run failed.
#
# Environment: PYTHON (default .venv/bin/python if present, else python3),
# CC (default gcc).
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

SANITIZE=0
if [[ "${1:-}" == "--sanitize" ]]; then
    SANITIZE=1
    shift
fi
if [[ -n "${PYTHON:-}" ]]; then
    PY="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
    PY=.venv/bin/python
else
    PY=python3
fi
CC="${CC:-gcc}"
LOGDIR="$(mktemp -d)"
trap 'rm -rf "$LOGDIR"' EXIT
STATUS=0
SUMMARIES=()

# run_suite LABEL PYTHONPATH [VAR=value...]: pytest against the cachee under PYTHONPATH
run_suite() {
    local label="$1" pypath="$2"
    shift 2
    local log="$LOGDIR/$label.log"
    echo "== $label: $(env "$@" PYTHONPATH="$pypath" "$PY" -c \
        'import cachee._cachee as m; print(m.__file__)')"
    env "$@" PYTHONPATH="$pypath${PYTHONPATH:+:$PYTHONPATH}" \
        "$PY" -m pytest tests/python -q -p no:cacheprovider -rfE "${ARGS[@]}" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    [[ $rc -ne 0 ]] && STATUS=1
    local lines
    lines="$(grep -E '^(FAILED|ERROR) ' "$log"; \
             grep -E '([0-9]+ (passed|failed|error|errors|skipped|deselected)|no tests ran)' "$log" | tail -n 1)"
    SUMMARIES+=("== $label (exit $rc)"$'\n'"$lines")
}
ARGS=("$@")

echo "== building the extension in place"
if ! "$PY" setup.py -q build_ext --inplace >"$LOGDIR/build.log" 2>&1; then
    cat "$LOGDIR/build.log"
    echo "build failed" >&2
    exit 2
fi
run_suite normal "$ROOT/python"

if [[ $SANITIZE -eq 1 ]]; then
    echo "== building the extension with ASan/UBSan into build/asan"
    ASAN_LIB="$ROOT/build/asan/lib"
    rm -rf "$ASAN_LIB"
    if ! CACHEE_SANITIZE=1 "$PY" setup.py -q build_ext --force \
            --build-lib "$ASAN_LIB" --build-temp "$ROOT/build/asan/temp" \
            >"$LOGDIR/build-asan.log" 2>&1; then
        cat "$LOGDIR/build-asan.log"
        echo "sanitizer build failed" >&2
        exit 2
    fi
    # the pure-Python part of the package beside the sanitized extension
    cp python/cachee/*.py python/cachee/*.pyi python/cachee/py.typed "$ASAN_LIB/cachee/"
    LIBASAN="$("$CC" -print-file-name=libasan.so)"
    if [[ ! -e "$LIBASAN" ]]; then
        echo "libasan.so not found (gcc -print-file-name=libasan.so)" >&2
        exit 2
    fi
    SO="$(ls "$ASAN_LIB"/cachee/_cachee*.so)"
    if ! ldd "$SO" | grep -q libasan; then
        echo "$SO is not linked with libasan: the sanitizer build did not take" >&2
        exit 2
    fi
    run_suite sanitizer "$ASAN_LIB" LD_PRELOAD="$LIBASAN" \
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi

echo
echo "=============================== summary ==============================="
for s in "${SUMMARIES[@]}"; do
    echo "$s"
done
exit $STATUS
