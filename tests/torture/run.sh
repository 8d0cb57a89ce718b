#!/usr/bin/env bash
# Torture harness of cachee: kill campaign + soak (tests/torture/torture.py).
#
#   tests/torture/run.sh [--short] [--minutes M] [--soak-seconds S] [more torture.py options]
#
#   --short          CI version (~40 s): 25 s of kills, 10 s of soak
#   (default)        full version: 3 minutes of kills, 1 minute of soak
#   --minutes M      length of the kill campaign
#   --soak-seconds S length of the soak
#   --phase kill|soak|both, --writers W, --readers R, --seed N, -v (one line per kill)
#
# Builds the extension in place first (python setup.py build_ext --inplace),
# then runs the harness against python/.  Prints the figures as tables and
# writes them as JSON under tests/torture/results/ (git-ignored).  Exits
# non-zero when a must-be-0 figure is not 0.
#
# Environment: PYTHON (default .venv/bin/python if present, else python3).
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [[ -n "${PYTHON:-}" ]]; then
    PY="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
    PY=.venv/bin/python
else
    PY=python3
fi
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
echo "== building the extension in place"
if ! "$PY" setup.py -q build_ext --inplace >"$LOG" 2>&1; then
    cat "$LOG"
    echo "build failed" >&2
    exit 2
fi
PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" tests/torture/torture.py "$@"
