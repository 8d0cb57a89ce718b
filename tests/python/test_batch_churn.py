"""Batch reads (get_many, get_numpy_batch) while other processes overwrite
and evict the same keys: every value returned is one whole version of its
key, never a mix of two writes nor another key's value.

The batch calls copy values optimistically (no pin) and validate each copy;
a key rewritten under the copy is read again alone.  Here two writers
rewrite 400 keys of 8 KiB in a region that holds fewer (so segments are
evicted and reused under the reader) while the test process reads batches.
Nothing depends on timing: the reader goes on until it has read BATCHES
batches AND the writers have written WRITES values since it started (a
writer counts its writes in shared memory); a writer that dies fails the
test.
"""
import mmap
import os
import random
import signal
import struct

import numpy as np

import cachee

KEYS = 400
DIM = 1024
BATCHES = 300
WRITES = 3000


def _writer(path, seed, counter, slot):
    """Child: rewrite keys forever, until killed by the test."""
    try:
        c = cachee.SharedCache.open(path)
        rng = random.Random(seed)
        version = 0
        while True:
            version += 1
            struct.pack_into("Q", counter, 8 * slot, version)
            k = rng.randrange(KEYS)
            stamp = k * 1_000_000 + (version % 1_000_000)
            try:
                c.set_numpy("v%d" % k, np.full(DIM, stamp, dtype=np.float64))
                c.set("b%d" % k, stamp.to_bytes(8, "little") * (1 + k % 40))
            except cachee.CacheFullError:
                pass
    finally:
        os._exit(1)


def _rows_are_whole(arr, keys):
    for row, key in zip(arr, keys):
        assert (row == row[0]).all(), "a row mixes two writes"
        assert int(row[0]) // 1_000_000 == int(key[1:]), "another key's value"


def test_batches_under_overwrite_and_eviction_return_whole_versions(region_path):
    c = cachee.SharedCache(region_path, size_bytes=4 << 20, segment_size=16 << 10)
    for k in range(KEYS):  # as many keys as fit, before the writers start
        c.set_numpy("v%d" % k, np.full(DIM, k * 1_000_000, dtype=np.float64))
        c.set("b%d" % k, (k * 1_000_000).to_bytes(8, "little") * (1 + k % 40))
    counter = mmap.mmap(-1, 16)  # the writers' write counts, shared
    pids = []
    try:
        for slot, seed in enumerate((1, 2)):
            pid = os.fork()
            if pid == 0:
                _writer(region_path, seed, counter, slot)
            pids.append(pid)

        def writes():
            return sum(struct.unpack_from("QQ", counter))

        def writers_alive():
            for pid in pids:
                if os.waitpid(pid, os.WNOHANG)[0] != 0:
                    raise AssertionError("writer %d died on its own" % pid)

        rng = random.Random(5)
        stacked = missing = values = 0
        start = writes()
        rounds = 0
        while rounds < BATCHES or writes() - start < WRITES:
            rounds += 1
            if rounds % 50 == 0:
                writers_alive()
            keys = ["v%d" % rng.randrange(KEYS) for _ in range(rng.choice((1, 17, 64, 130)))]
            try:
                arr = c.get_numpy_batch(keys)
            except KeyError:
                missing += 1  # evicted between the writes: allowed
            else:
                assert arr.shape == (len(keys), DIM) and arr.dtype == np.float64
                _rows_are_whole(arr, keys)
                stacked += 1
            bkeys = ["b%d" % rng.randrange(KEYS) for _ in range(rng.choice((1, 40, 100)))]
            for key, v in c.get_many(bkeys).items():
                k = int(key[1:])
                assert len(v) == 8 * (1 + k % 40)
                stamp = v[:8]
                assert v == stamp * (1 + k % 40), "a value mixes two writes"
                assert int.from_bytes(stamp, "little") // 1_000_000 == k
                values += 1
        assert stacked > 0 and values > 0, (stacked, missing, values)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        statuses = [os.waitpid(pid, 0)[1] for pid in pids]
    assert all(os.WIFSIGNALED(s) and os.WTERMSIG(s) == signal.SIGKILL for s in statuses), \
        "a writer died on its own: %r" % statuses
    assert c.stats()["evictions"] > 0
    c.check()
    c.close()
