"""Reads under continuous eviction by other processes: never a spurious error.

Regression test for a race found by the torture harness (tests/torture):
get_numpy decoded the dtype/shape metadata of an optimistic, unpinned read,
so when the segment was reused between the read and the decode it raised
CorruptRegionError on a healthy region.  It now pins before decoding.
"""
import os
import random
import time

import pytest

import cachee

np = pytest.importorskip("numpy")

SECONDS = 3.0
KEYS = 300
SIZES = (16, 200, 3000, 20000)


def _churn(path, seed, seconds):
    """Child: overwrite KEYS arrays of mixed sizes in a small region."""
    code = 1
    try:
        c = cachee.SharedCache.open(path)
        rng = random.Random(seed)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
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
    pids = []
    for seed in (1, 2):
        pid = os.fork()
        if pid == 0:
            _churn(region_path, seed, SECONDS)
        pids.append(pid)
    errors, hits = [], 0
    rng = random.Random(9)
    end = time.monotonic() + SECONDS
    try:
        while time.monotonic() < end:
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
        statuses = [os.waitpid(p, 0)[1] for p in pids]
    assert statuses == [0, 0]
    assert errors == [], errors[:5]
    assert hits > 0
    assert c.stats()["evictions"] > 0
    c.check()
    c.close()
