#!/usr/bin/env bash
# bench/run.sh -- build and run every benchmark of the repository and print
# their tables (`make bench` calls it).
#
#   bench/run.sh            the full run (~25 minutes on 2 vCPUs: C and Go
#                           benchmarks, hit ratio ~5 min, peers ~10 min)
#   bench/run.sh --quick    everything briefly (~80 s on 2 vCPUs: C ~20 s,
#                           Go ~25 s, Python ~35 s): CI runs it so that
#                           benchmarks never rot
#
# Environment:
#   CC, GO              compilers (gcc, go)
#   BENCH_FULL=0        a full run replays the quick hit-ratio traces (default:
#                       the full ones, 1M keys, 10M requests, a few minutes)
#   BENCH_ONLY=WHAT     run only: c, go, python, scaling, latency, floor (C
#                       programs), gotest, l0set, hitratio (Go), micro,
#                       breakdown, peers, pyscaling, memory, plots (Python;
#                       `python` = all six)
#   BENCH_RESULTS=DIR   where latest.json and plots/ go (default bench/results;
#                       quick: build/bench/quick, so a quick run never touches
#                       the committed results); the parts go to DIR/parts
#                       (full: build/bench/parts)
#   BENCH_TIME=S        seconds per point of bench/l0/scaling (default 3; quick 0.3)
#   BENCH_REPS=N        repetitions per point of bench/l0/scaling (median shown; default 1)
#   BENCH_LAT_SIZE=SZ   region size of bench/l0/latency (default 4G; quick 512M)
#   BENCH_GO_BENCHTIME  -benchtime of `go test -bench` (default 1s; quick 1000x:
#                       one round per benchmark, its setup dominates the time)
#   BENCH_HUGEPAGES=1   as root only: for the duration of the run, set
#                       /sys/kernel/mm/transparent_hugepage/shmem_enabled to
#                       "advise", mount two private tmpfs with huge=advise and
#                       huge=always, reserve 2 MiB hugetlb pages for one
#                       latency region and mount a private hugetlbfs; every
#                       change is undone on exit (also on Ctrl-C).
#
# Exit status: 0 if every benchmark ran and reported no problem, else 1.
set -uo pipefail
cd "$(dirname "$0")/.."

QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done
[ "$QUICK" = 1 ] && export BENCH_QUICK=1

CC=${CC:-gcc}
GO=${GO:-go}
ONLY=${BENCH_ONLY:-}
# want NAME GROUP: is this benchmark selected by BENCH_ONLY?
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ] || [ "$ONLY" = "$2" ]; }
BIN=build/bench
CFLAGS="-std=gnu11 -O2 -Wall -Wextra -Werror -fvisibility=hidden"
status=0
t_start=$(date +%s)

section() { printf '\n######## %s   [t=%ds]\n' "$*" "$(( $(date +%s) - t_start ))"; }
fail() { echo "bench/run.sh: FAILED: $*" >&2; status=1; }

section "machine"
echo "nproc=$(nproc)  cpu=\"$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')\"  kernel=$(uname -sr)"
echo "mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)  /dev/shm=$(df -h /dev/shm 2>/dev/null | awk 'NR==2 {print $2}')"
echo "thp: enabled=$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)  shmem_enabled=$(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null)"
echo "mode: $([ "$QUICK" = 1 ] && echo quick || echo full)  loadavg: $(cut -d' ' -f1-3 /proc/loadavg)"

# Results of the side-by-side benchmarks (peers, pyscaling, memory, hitratio):
# each writes a part, bench/python/plots.py merges them into latest.json.
if [ "$QUICK" = 1 ]; then
  RESULTS=${BENCH_RESULTS:-build/bench/quick}
  PARTS=$RESULTS/parts
else
  RESULTS=${BENCH_RESULTS:-bench/results}
  PARTS=${BENCH_RESULTS:+$RESULTS/parts}
  PARTS=${PARTS:-build/bench/parts}
fi
mkdir -p "$PARTS"

# ---------------------------------------------------------------- huge pages
# Changes made for BENCH_HUGEPAGES=1, each undone by restore_hugepages.
HP_DIR=""
HP_OLD_SHMEM=""
HP_OLD_NR=""
HP_MOUNTS=()
restore_hugepages() {
  local m
  for m in "${HP_MOUNTS[@]}"; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "bench/run.sh: could not unmount $m" >&2
    rmdir "$m" 2>/dev/null
  done
  HP_MOUNTS=()
  if [ -n "$HP_OLD_NR" ]; then
    echo "$HP_OLD_NR" > /proc/sys/vm/nr_hugepages 2>/dev/null || echo "bench/run.sh: could not restore nr_hugepages=$HP_OLD_NR" >&2
    HP_OLD_NR=""
  fi
  if [ -n "$HP_OLD_SHMEM" ]; then
    echo "$HP_OLD_SHMEM" > /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null ||
      echo "bench/run.sh: could not restore shmem_enabled=$HP_OLD_SHMEM" >&2
    HP_OLD_SHMEM=""
  fi
  [ -n "$HP_DIR" ] && rmdir "$HP_DIR" 2>/dev/null
  HP_DIR=""
}
trap restore_hugepages EXIT
trap 'restore_hugepages; exit 130' INT TERM

LAT_SIZE=${BENCH_LAT_SIZE:-$([ "$QUICK" = 1 ] && echo 512M || echo 4G)}
LAT_ARGS=()
setup_hugepages() {
  if [ "$(id -u)" != 0 ]; then
    echo "BENCH_HUGEPAGES=1 needs root; running without changing huge page settings"
    return
  fi
  local bytes mib pages f
  bytes=$(numfmt --from=iec "$LAT_SIZE" 2>/dev/null) || { echo "bad BENCH_LAT_SIZE=$LAT_SIZE"; return; }
  mib=$(( bytes / 1048576 + 64 ))
  HP_DIR=$(mktemp -d /tmp/cachee-bench-hp.XXXXXX) || return
  f=/sys/kernel/mm/transparent_hugepage/shmem_enabled
  if [ -w "$f" ]; then
    HP_OLD_SHMEM=$(sed 's/.*\[\(.*\)\].*/\1/' "$f")
    echo advise > "$f" && echo "huge pages: shmem_enabled $HP_OLD_SHMEM -> advise (restored on exit)"
  fi
  local m
  for m in advise always; do
    mkdir -p "$HP_DIR/thp-$m"
    if mount -t tmpfs -o "size=${mib}M,mode=0700,huge=$m" cachee-bench "$HP_DIR/thp-$m"; then
      HP_MOUNTS+=("$HP_DIR/thp-$m")
      LAT_ARGS+=(--thp-dir "$HP_DIR/thp-$m")
      echo "huge pages: mounted tmpfs huge=$m on $HP_DIR/thp-$m"
    fi
  done
  pages=$(( (bytes + 2097151) / 2097152 + 8 ))
  HP_OLD_NR=$(cat /proc/sys/vm/nr_hugepages)
  echo $(( HP_OLD_NR + pages )) > /proc/sys/vm/nr_hugepages
  local free
  free=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
  echo "huge pages: nr_hugepages $HP_OLD_NR -> $(cat /proc/sys/vm/nr_hugepages) (restored on exit), HugePages_Free=$free"
  mkdir -p "$HP_DIR/hugetlb"
  if [ "$free" -ge "$pages" ] && mount -t hugetlbfs -o pagesize=2M,mode=0700 cachee-bench "$HP_DIR/hugetlb"; then
    HP_MOUNTS+=("$HP_DIR/hugetlb")
    LAT_ARGS+=(--hugetlb-dir "$HP_DIR/hugetlb")
    echo "huge pages: mounted hugetlbfs on $HP_DIR/hugetlb"
  else
    echo "huge pages: could not reserve $pages hugetlb pages (memory fragmented?); no hugetlbfs run"
    rmdir "$HP_DIR/hugetlb" 2>/dev/null
  fi
}

# ------------------------------------------------------------------ C (L0)
if want c c || want scaling c || want latency c || want floor c; then
  section "build C benchmarks ($CC $CFLAGS)"
  mkdir -p "$BIN"
  for src in bench/l0/*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    if $CC $CFLAGS -Iinclude -Icore/l0 "$src" core/l0/*.c -o "$BIN/$name" -lpthread -lm; then
      echo "built $BIN/$name"
    else
      fail "compile $src"
    fi
  done

  if [ -x "$BIN/scaling" ] && want scaling c; then
    sargs=()
    [ "$QUICK" = 1 ] && sargs+=(--quick)
    [ -n "${BENCH_TIME:-}" ] && sargs+=(--time "$BENCH_TIME")
    [ -n "${BENCH_REPS:-}" ] && sargs+=(--reps "$BENCH_REPS")
    section "bench/l0/scaling ${sargs[*]}"
    "$BIN/scaling" "${sargs[@]}" || fail "bench/l0/scaling"
    if [ "$QUICK" != 1 ]; then
      section "bench/l0/scaling ${sargs[*]} --value 512 --modes get,begin,pinned"
      "$BIN/scaling" "${sargs[@]}" --value 512 --modes get,begin,pinned || fail "bench/l0/scaling --value 512"
    fi
  fi

  if [ -x "$BIN/floor" ] && want floor c; then
    # Where one read's time goes, beside the bare accesses it cannot avoid.
    fargs=()
    [ "$QUICK" = 1 ] && fargs+=(--keys 10000 --lookups 200000 --rounds 3 --size 64M)
    for dist in "" --zipf; do
      section "bench/l0/floor ${fargs[*]} $dist"
      "$BIN/floor" "${fargs[@]}" $dist || fail "bench/l0/floor"
      [ "$QUICK" = 1 ] && break
    done
  fi

  if [ -x "$BIN/latency" ] && want latency c; then
    [ "${BENCH_HUGEPAGES:-0}" = 1 ] && { section "huge page setup (BENCH_HUGEPAGES=1)"; setup_hugepages; }
    largs=(--size "$LAT_SIZE")
    [ "$QUICK" = 1 ] && largs+=(--quick)
    if [ ${#LAT_ARGS[@]} -gt 0 ]; then largs+=(--thp-dir /dev/shm "${LAT_ARGS[@]}"); fi
    section "bench/l0/latency ${largs[*]}"
    "$BIN/latency" "${largs[@]}" || fail "bench/l0/latency"
    restore_hugepages
  fi
fi

# ---------------------------------------------------------------------- Go
if want go go || want gotest go || want l0set go || want hitratio go; then
  if ! command -v "$GO" >/dev/null; then
    echo "bench/run.sh: $GO not found; Go benchmarks skipped"
  else
    GOBT=${BENCH_GO_BENCHTIME:-$([ "$QUICK" = 1 ] && echo 1000x || echo 1s)}
    if want gotest go && grep -qs '^func Benchmark' core/l0/*_test.go; then
      section "go test -run NONE -bench . -benchtime=$GOBT ./core/l0/"
      "$GO" test -run NONE -bench . -benchtime="$GOBT" ./core/l0/ || fail "go test -bench ./core/l0/"
    fi
    if [ -d bench/l0set ] && want l0set go; then
      section "go run ./bench/l0set"
      "$GO" run ./bench/l0set || fail "bench/l0set"
    fi
    if [ -d bench/hitratio ] && want hitratio go; then
      hargs=(-json "$PARTS/hitratio.json")
      [ "$QUICK" = 1 ] && hargs+=(-quick)
      [ "$QUICK" != 1 ] && [ "${BENCH_FULL:-1}" = 0 ] && hargs+=(-quick)
      section "go run ./bench/hitratio ${hargs[*]}"
      "$GO" run ./bench/hitratio "${hargs[@]}" || fail "bench/hitratio"
    fi
  fi
fi

# Python: cachee side by side with dict, py-lmdb, Redis, diskcache and
# Manager().dict() (peers), read scaling (pyscaling), memory of W readers
# (memory); then latest.json and the plots (plots).  A peer that is not
# installed is reported as missing; a failure of cachee fails the run.
PY=${PYTHON:-.venv/bin/python}
if want python python || want micro python || want breakdown python || want peers python ||
   want pyscaling python || want memory python || want plots python; then
  if [ -x "$PY" ] && ls python/cachee/_cachee*.so >/dev/null 2>&1; then
    pargs=()
    [ "$QUICK" = 1 ] && pargs+=(--quick)
    pyrun() { PYTHONPATH=python${PYTHONPATH:+:$PYTHONPATH} "$PY" "$@"; }
    if want micro python; then
      mkdir -p bench/results
      for dist in uniform zipf; do
        section "python bench/python/micro.py --dist $dist ${pargs[*]}"
        pyrun bench/python/micro.py --dist "$dist" "${pargs[@]}" \
          --json "bench/results/python-micro-$dist.json" || fail "bench/python/micro.py"
      done
    fi
    if want breakdown python; then
      bargs=("${pargs[@]}")
      [ "$QUICK" = 1 ] && bargs+=(--region-mb 64)
      for dist in uniform zipf; do
        section "python bench/python/breakdown.py --dist $dist ${bargs[*]}"
        pyrun bench/python/breakdown.py --dist "$dist" "${bargs[@]}" \
          --json "$PARTS/breakdown-$dist.json" || fail "bench/python/breakdown.py"
        [ "$QUICK" = 1 ] && break
      done
    fi
    if want peers python; then
      peargs=("${pargs[@]}")
      [ "$QUICK" = 1 ] && peargs+=(--dists zipf)
      section "python bench/python/peers.py ${peargs[*]}"
      pyrun bench/python/peers.py "${peargs[@]}" --json "$PARTS/peers.json" || fail "bench/python/peers.py"
    fi
    if want pyscaling python; then
      section "python bench/python/scaling.py ${pargs[*]}"
      pyrun bench/python/scaling.py "${pargs[@]}" --json "$PARTS/scaling.json" || fail "bench/python/scaling.py"
    fi
    if want memory python; then
      section "python bench/python/memory.py ${pargs[*]}"
      pyrun bench/python/memory.py "${pargs[@]}" --json "$PARTS/memory.json" || fail "bench/python/memory.py"
    fi
    if want plots python; then
      section "python bench/python/plots.py --parts $PARTS --out $RESULTS"
      pyrun bench/python/plots.py --parts "$PARTS" --out "$RESULTS" || fail "bench/python/plots.py"
    fi
  else
    echo "bench/run.sh: Python benchmarks skipped (run make build first)"
  fi
fi

section "done in $(( $(date +%s) - t_start )) s$([ $status = 0 ] || echo ', WITH FAILURES (see above)')"
exit $status
