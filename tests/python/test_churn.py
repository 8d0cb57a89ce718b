"""Reads under continuous eviction by other processes: never a spurious error.

Regression test for a race found by the torture harness (tests/torture):
get_numpy decoded the dtype/shape metadata of an optimistic, unpinned read,
so when the segment was reused between the read and the decode it raised
CorruptRegionError on a healthy region.  It now pins before decoding.
"""
import mmap
import os
import random
import time

import pytest

import cachee

np = pytest.importorskip("numpy")

SECONDS = 3.0      # at least; then on until there were hits and evictions
CAP = 300.0        # a hang guard
KEYS = 300
SIZES = (16, 200, 3000, 20000)


def _churn(path, seed, stop):
    """Child: overwrite KEYS arrays of mixed sizes in a small region until
    the parent sets stop[0] (or CAP, should the parent be gone)."""
    code = 1
    try:
        c = cachee.SharedCache.open(path)
        rng = random.Random(seed)
        end = time.monotonic() + CAP
        while not stop[0] and time.monotonic() < end:
            n = rng.choice(SIZES)
            arr = np.full(n, seed, dtype=np.float32).reshape(-1, 4)
            try:
                c.set_numpy("k%d" % rng.randrange(KEYS), arr)
            except cachee.CacheFullError:
                pass
        code = 0
    finally:
        os._exit(code)


@pytest.mark.parametrize("view_cache", [0, 64])
def test_get_numpy_under_eviction_never_raises(region_path, view_cache):
    c = cachee.SharedCache(region_path, size_bytes=8 << 20, segment_size=16 << 10,
                           view_cache=view_cache)
    stop = mmap.mmap(-1, 1)  # shared with the writers (MAP_SHARED | MAP_ANONYMOUS)
    pids = []
    for seed in (1, 2):
        pid = os.fork()
        if pid == 0:
            _churn(region_path, seed, stop)
        pids.append(pid)
    errors, hits = [], 0
    rng = random.Random(9)
    t0 = time.monotonic()
    n = 0
    evicted = []

    def more():
        """At least SECONDS; then until there were hits and evictions (a
        slow machine needs longer), up to CAP."""
        el = time.monotonic() - t0
        if el > CAP:
            return False
        if not evicted and n % 64 == 0 and c.stats()["evictions"] > 0:
            evicted.append(True)
        return el < SECONDS or hits == 0 or not evicted

    try:
        while more():
            n += 1
            try:
                a = c.get_numpy("k%d" % rng.randrange(KEYS))
            except cachee.CacheError as e:
                errors.append(repr(e))
                continue
            if a is not None:
                hits += 1
                assert a.dtype == np.float32 and a.ndim == 2 and a.shape[1] == 4
                assert a.shape[0] * 4 in SIZES
                # every element was written by the same writer
                assert a[0, 0] in (1.0, 2.0) and (a == a[0, 0]).all()
    finally:
        stop[0] = 1
        statuses = [os.waitpid(p, 0)[1] for p in pids]
    assert statuses == [0, 0]
    assert errors == [], errors[:5]
    assert hits > 0
    assert c.stats()["evictions"] > 0
    c.check()
    c.close()
