"""get_or_load under a thundering herd, from Python.

N processes (fork) miss the same K keys at the same moment (a barrier); the
loader sleeps LOAD_MS to stand for a real computation.  Prints, per run:
loader calls vs distinct keys (must be equal), wall time, and the rate of
get_or_load calls served.  Then the hit path: get_or_load on present keys,
one process, ns per call, next to get().

    PYTHONPATH=python .venv/bin/python bench/tiers/get_or_load_py.py [--procs 32] [--keys 64]
"""
import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time

import cachee


def record(path, line):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, (line + "\n").encode())
    os.close(fd)


def worker(cache, keys, calls, barrier, load_ms, rounds):
    def load(k):
        record(calls, k)
        time.sleep(load_ms / 1000)
        return b"v:" + k.encode() * 8

    barrier.wait(120)
    for r in range(rounds):
        for k in keys:
            cache.get_or_load("%s/%d" % (k, r), load, timeout=120)


def herd(cache, nproc, nkeys, load_ms, rounds):
    keys = ["key-%d" % i for i in range(nkeys)]
    with tempfile.TemporaryDirectory() as d:
        calls = os.path.join(d, "calls")
        ctx = mp.get_context("fork")
        barrier = ctx.Barrier(nproc + 1)
        ps = [ctx.Process(target=worker, args=(cache, keys, calls, barrier, load_ms, rounds))
              for _ in range(nproc)]
        for p in ps:
            p.start()
        barrier.wait(120)
        t0 = time.perf_counter()
        for p in ps:
            p.join()
        wall = time.perf_counter() - t0
        assert all(p.exitcode == 0 for p in ps), [p.exitcode for p in ps]
        with open(calls) as f:
            n_calls = len(f.read().splitlines())
    return n_calls, nkeys * rounds, wall, nproc * nkeys * rounds


def hit_path(cache, n=200000):
    cache.set("hot", b"x" * 64)
    fn = lambda k: b"never"  # noqa: E731
    t0 = time.perf_counter()
    for _ in range(n):
        cache.get_or_load("hot", fn)
    gol = (time.perf_counter() - t0) / n * 1e9
    t0 = time.perf_counter()
    for _ in range(n):
        cache.get("hot")
    get = (time.perf_counter() - t0) / n * 1e9
    return gol, get


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=32)
    ap.add_argument("--keys", type=int, default=64)
    ap.add_argument("--load-ms", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    path = "/dev/shm/cachee-bench-gol-%d" % os.getpid()
    cache = cachee.SharedCache(path, size_bytes=64 << 20)
    try:
        calls, distinct, wall, served = herd(cache, a.procs, a.keys, a.load_ms, a.rounds)
        print("herd: %d processes x %d keys x %d rounds, loader %.1f ms: loader calls %d, "
              "distinct keys %d%s; %.2f s wall, %.0f get_or_load/s; ideal serial loading "
              "%.2f s" % (a.procs, a.keys, a.rounds, a.load_ms, calls, distinct,
                          "" if calls == distinct else "  <-- MISMATCH", wall,
                          served / wall, distinct * a.load_ms / 1000))
        gol, get = hit_path(cache)
        print("hit path, one process, 64 B value: get_or_load %.0f ns, get %.0f ns" % (gol, get))
        return 0 if calls == distinct else 1
    finally:
        cache.close()
        cachee.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
