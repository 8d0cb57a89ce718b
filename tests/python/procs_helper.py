"""Targets for the child processes of test_processes.py (importable by
spawn and forkserver children: this directory is on their sys.path)."""
import os
import sys

import numpy as np

import cachee

N = 40
DIM = 16


def value(i):
    return b"value-%d" % i


def vector(i):
    return np.full(DIM, i, dtype=np.float32) + np.arange(DIM, dtype=np.float32) / 100


def fill(cache):
    for i in range(N):
        cache.set("k%d" % i, value(i))
        cache.set_numpy("v%d" % i, vector(i))


def verify(cache):
    for i in range(N):
        got = cache.get("k%d" % i)
        assert got == value(i), (i, got)
        arr = cache.get_numpy("v%d" % i, shape=(DIM,), dtype=np.float32)
        assert arr.tobytes() == vector(i).tobytes(), i
    batch = cache.get_numpy_batch(["v%d" % i for i in range(N)])
    assert batch.shape == (N, DIM)


def process_main(cache_or_path, method, depth, max_depth):
    """Child (depth 1) or grandchild (depth 2): read what the top parent
    stored, write a key of our own, and start the next generation with the
    same start method.  A forked child gets the parent's SharedCache object
    itself; spawned and forkserver children get the path."""
    if isinstance(cache_or_path, cachee.SharedCache):
        cache = cache_or_path  # inherited through fork: usable at once
    else:
        cache = cachee.SharedCache.open(cache_or_path)
    verify(cache)
    cache.set("from-%s-depth%d" % (method, depth), b"%d" % os.getpid())
    cache.set_numpy("arr-%s-depth%d" % (method, depth), np.full(8, depth, dtype=np.int64))
    if depth < max_depth:
        import multiprocessing as mp
        ctx = mp.get_context(method)
        arg = cache if method == "fork" else cache_or_path
        p = ctx.Process(target=process_main, args=(arg, method, depth + 1, max_depth))
        p.start()
        p.join(120)
        if p.exitcode != 0:
            sys.exit("depth %d child failed with exit code %s" % (depth + 1, p.exitcode))
        # what the grandchild wrote is visible here
        assert cache.get("from-%s-depth%d" % (method, depth + 1)) == b"%d" % p.pid


# ------------------------------------------------------------------ Pool

_pool_cache = None


def set_pool_cache(cache):
    global _pool_cache
    _pool_cache = cache


def pool_init(path):
    set_pool_cache(cachee.SharedCache.open(path))


def pool_task(i):
    c = _pool_cache
    arr = c.get_numpy("v%d" % i, shape=(DIM,), dtype=np.float32)
    c.set("pool-%d" % i, b"%d:%d" % (i, os.getpid()))
    return os.getpid(), c.get("k%d" % i), float(arr.sum())
