"""get_numpy raises CorruptRegionError under eviction, no process killed.

    PYTHONPATH=python .venv/bin/python tests/torture/repro/get_numpy_meta_race.py 20

Found by the torture harness; see the report.  Prints the errors seen by the
reader (expected: none).  get_view() under the same load sees none (it pins
before decoding the metadata); get_numpy() decodes the metadata of an
optimistic, unpinned read (python/cachee/_ext/cache.c, cache_get_numpy) and
raises instead of retrying when the segment was reused meanwhile.

2 writers overwrite numpy arrays (set_numpy) of mixed sizes in a small region
(continuous eviction); 1 reader calls get_numpy on the same keys.  Every
value is valid; the reader should only ever see arrays or misses."""
import os, sys, time, random
import numpy as np
import cachee
path = "/dev/shm/cachee-torture-%d-repro" % os.getpid()
c = cachee.SharedCache(path, size_bytes=8 << 20, segment_size=16 << 10, view_cache=0)
T = float(sys.argv[1]) if len(sys.argv) > 1 else 20
pids = []
for w in range(2):
    pid = os.fork()
    if pid == 0:
        rng = random.Random(w)
        end = time.time() + T
        while time.time() < end:
            n = rng.choice((16, 200, 3000, 20000))
            try:
                c.set_numpy("k%d" % rng.randrange(300), np.full(n, w, dtype=np.float32).reshape(-1, 4 if n % 4 == 0 else 1))
            except cachee.CacheFullError:
                pass
        os._exit(0)
    pids.append(pid)
errs = {}
ok = miss = 0
end = time.time() + T
rng = random.Random(9)
while time.time() < end:
    k = "k%d" % rng.randrange(300)
    try:
        a = c.get_numpy(k)
        if a is None: miss += 1
        else:
            ok += 1
            assert a.dtype == np.float32 and a.ndim == 2
    except cachee.CacheError as e:
        errs[type(e).__name__ + ": " + str(e)] = errs.get(type(e).__name__ + ": " + str(e), 0) + 1
        # the same key read again right away is fine
for p in pids: os.waitpid(p, 0)
c.check()
print("reads ok %d, misses %d, errors %s" % (ok, miss, errs))
print("stats:", {k: v for k, v in c.stats().items() if k in ("evictions", "reinsertions", "sets")})
c.unlink(); c.close()
sys.exit(1 if errs else 0)
