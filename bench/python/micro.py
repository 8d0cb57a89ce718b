"""Per-operation cost of cachee from Python, side by side with what users do
today, on one random key stream.

Each loop is timed as collections.deque(map(fn, stream), maxlen=0) with the
cost of the bare loop (map(id, stream)) subtracted.  Every round measures all
contenders one after the other on the same stream; a result is the median
over the rounds, and every ratio is the median of the per-round ratios (the
machine's noise moves both sides of a round together).

    python bench/python/micro.py [--keys 100000] [--lookups 1000000]
                                 [--rounds 7] [--dist uniform|zipf]
                                 [--quick] [--json FILE]

Contenders: a per-process dict (what users do today), cachee get /
get_numpy, and py-lmdb (txn.get, and txn.get + numpy.frombuffer) when the
lmdb module is installed; a missing peer is reported as missing.
"""
import argparse
import collections
import json
import os
import random
import statistics
import sys
import tempfile
import time

import numpy as np

import cachee
from common import bare, loop, machine  # shared with peers.py and the others


def key_stream(names, n, dist, rng):
    """n keys drawn uniformly, or by Zipf(0.99) over a random ranking."""
    if dist == "uniform":
        return [names[rng.randrange(len(names))] for _ in range(n)]
    ranks = np.arange(1, len(names) + 1, dtype=np.float64)
    cdf = np.cumsum(ranks ** -0.99)
    cdf /= cdf[-1]
    order = list(names)
    rng.shuffle(order)
    u = np.random.default_rng(rng.randrange(1 << 30)).random(n)
    return [order[i] for i in np.searchsorted(cdf, u)]


class Suite:
    """One data set (N keys of one kind of value) and its contenders."""

    def __init__(self, name, stream, contenders):
        self.name = name
        self.stream = stream
        self.contenders = contenders  # [(label, fn)]
        self.samples = collections.defaultdict(list)  # label -> ns/op per round

    def round(self):
        n = len(self.stream)
        base = bare(self.stream)
        for label, fn in self.contenders:
            self.samples[label].append(max(loop(fn, self.stream) - base, 0.0) / n * 1e9)

    def ratio(self, a, b):
        """Median over rounds of a/b, and its spread (min, max)."""
        rs = [x / y for x, y in zip(self.samples[a], self.samples[b]) if y > 0]
        return statistics.median(rs), min(rs), max(rs)


def lmdb_env(tmp, name, items):
    try:
        import lmdb
    except ImportError:
        return None
    env = lmdb.open(os.path.join(tmp, name), map_size=1 << 32, lock=True,
                    readahead=False, metasync=False, sync=False)
    with env.begin(write=True) as txn:
        for k, v in items:
            txn.put(k.encode(), v)
    return env


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--lookups", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--dist", choices=("uniform", "zipf"), default="uniform",
                   help="key distribution of the lookup stream")
    p.add_argument("--quick", action="store_true", help="10k keys, 200k lookups, 3 rounds")
    p.add_argument("--json", help="write the results here")
    a = p.parse_args(argv)
    if a.quick:
        a.keys, a.lookups, a.rounds = 10_000, 200_000, 3
    rng = random.Random(1)
    names = ["key:%08d" % i for i in range(a.keys)]
    stream = key_stream(names, a.lookups, a.dist, rng)
    print("machine: " + machine())
    print("keys %d, lookups %d (%s), rounds %d" % (a.keys, a.lookups,
          "uniform random" if a.dist == "uniform" else "Zipf 0.99", a.rounds))
    if a.quick:
        print("--quick: a smoke run; at this size a dict fits in the CPU caches, "
              "so the ratios below are not the ones to quote")

    tmp = tempfile.mkdtemp(prefix="cachee-bench-")
    path = "/dev/shm/cachee-bench-micro-%d" % os.getpid()
    results = {"machine": machine(), "keys": a.keys, "lookups": a.lookups,
               "rounds": a.rounds, "dist": a.dist}
    suites = []
    caches = []
    try:
        for size in (64, 512):
            values = {k: rng.randbytes(size) for k in names}
            c = cachee.SharedCache("%s-%d" % (path, size),
                                   size_bytes=max(64 << 20, a.keys * (size + 192) * 2))
            caches.append(c)
            c.set_many(values.items())
            cont = [("dict.get", values.get), ("cachee.get", c.get)]
            env = lmdb_env(tmp, "bytes", [(k, values[k]) for k in names]) if size == 512 else None
            if env is not None:
                txn = env.begin(buffers=False)
                bstream_get = txn.get
                cont.append(("lmdb txn.get", lambda k, g=bstream_get: g(k.encode())))
            suites.append(Suite("%d B values" % size, stream, cont))

        nrng = np.random.default_rng(7)
        arrays = {k: nrng.random(128, dtype=np.float32) for k in names}
        c = cachee.SharedCache(path + "-np", size_bytes=max(64 << 20, a.keys * 768 * 2))
        caches.append(c)
        for k, v in arrays.items():
            c.set_numpy(k, v)
        # The same region through a handle whose array cache holds every key
        # (a hot set that fits the view cache).
        c_all = cachee.SharedCache.open(path + "-np", view_cache=1 << (a.keys - 1).bit_length())
        caches.append(c_all)
        cont = [("dict.get", arrays.get), ("cachee.get_numpy", c.get_numpy),
                ("get_numpy, view cache >= keys", c_all.get_numpy)]
        env = lmdb_env(tmp, "arrays", [(k, arrays[k].tobytes()) for k in names])
        if env is not None:
            txn = env.begin(buffers=True)
            cont.append(("lmdb txn.get+frombuffer",
                         lambda k, g=txn.get: np.frombuffer(g(k.encode()), dtype=np.float32)))
        suites.append(Suite("128 x float32", stream, cont))

        for s in suites:  # warm up
            s.round()
            s.samples.clear()
        for _ in range(a.rounds):
            for s in suites:
                s.round()

        print()
        print("%-15s %-30s %10s %10s" % ("values", "operation", "ns/op", "spread"))
        for s in suites:
            for label, _ in s.contenders:
                xs = s.samples[label]
                print("%-15s %-30s %10.1f %5.0f-%-5.0f" % (
                    s.name, label, statistics.median(xs), min(xs), max(xs)))
                results.setdefault(s.name, {})[label] = {
                    "ns_median": statistics.median(xs), "ns_min": min(xs), "ns_max": max(xs)}
        print()
        print("ratios (median of per-round ratios, min-max):")
        goals = [("64 B values", "cachee.get", "dict.get", "within 1.7x"),
                 ("512 B values", "cachee.get", "dict.get", "within 3x"),
                 ("512 B values", "lmdb txn.get", "cachee.get", "cachee >= 2x faster"),
                 ("128 x float32", "cachee.get_numpy", "dict.get", "within 3x"),
                 ("128 x float32", "get_numpy, view cache >= keys", "dict.get", "within 3x"),
                 ("128 x float32", "lmdb txn.get+frombuffer", "cachee.get_numpy",
                  "cachee >= 2x faster")]
        by_name = {s.name: s for s in suites}
        for sname, x, y, goal in goals:
            s = by_name[sname]
            if x not in s.samples or y not in s.samples:
                print("  %-15s %s / %s: missing peer (pip install lmdb)" % (sname, x, y))
                continue
            r, lo, hi = s.ratio(x, y)
            print("  %-15s %-30s / %-18s %5.2f  (%4.2f-%4.2f)   goal: %s" % (
                sname, x, y, r, lo, hi, goal))
            results.setdefault("ratios", []).append(
                {"values": sname, "a": x, "b": y, "median": r, "min": lo, "max": hi, "goal": goal})

        # Writes: 512 B values, one process, keys reused so nothing is evicted.
        c = caches[1]
        v = rng.randbytes(512)
        ks = names[:1000]
        best = 0.0
        for _ in range(a.rounds):
            t = time.perf_counter()
            for _ in range(20):
                for k in ks:
                    c.set(k, v)
            best = max(best, 20 * len(ks) / (time.perf_counter() - t))
        print("\nset 512 B from one process: %.2f M/s (best of %d rounds; goal >= 1.5 M/s)"
              % (best / 1e6, a.rounds))
        results["set_512_per_s"] = best
    finally:
        for c in caches:
            try:
                c.unlink()
                c.close()
            except Exception:
                pass
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
