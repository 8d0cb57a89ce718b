"""Where the time of a cachee read goes from Python, side by side with a
dict, on the data set of issue 11: one region (1 GiB by default) holding N
keys with 512 B values and N 128 x float32 vectors, read along one key
stream (uniform or Zipf 0.99).

Every contender reads the same stream, timed as
collections.deque(map(fn, keys), maxlen=0) minus the bare loop (map over id);
all contenders run in each round, rounds are interleaved, a figure is the
median over rounds and a ratio the median of the per-round ratios.

    python bench/python/breakdown.py [--keys 100000] [--lookups 1000000]
        [--rounds 7] [--dist uniform|zipf] [--region-mb 1024] [--batch 256]
        [--path DIR] [--quick] [--json FILE]

Rows, each a step further along the read path:
    dict.get                     the same str objects as keys: no key bytes,
                                 no value bytes touched
    get, missing key             call, key (UTF-8), hash, one index probe
    key in cache (hit)           + the record: key compare, no copy
    get_buffer (hit)             + a pinned view (no copy)
    get (hit)                    + a copy of the value into a new bytes
    get_numpy (hit)              + an ndarray over the shared bytes
    dict.get (ndarray)           the dict of ndarrays users keep today
    lmdb txn.get                 py-lmdb, copy out (if installed)
and the batch calls per key (--batch random keys per call):
    get_many, get_numpy_batch    beside a dict comprehension / np.stack

--path DIR puts the region elsewhere, e.g. on a tmpfs mounted with
huge=always (see README, "Huge pages").
"""
import argparse
import json
import os
import statistics
import sys

import numpy as np

import cachee
import common

DIM = 128


def lmdb_txn(tmp, items):
    try:
        import lmdb
    except ImportError:
        return None, None
    env = lmdb.open(tmp, map_size=1 << 32, lock=True, readahead=False,
                    metasync=False, sync=False)
    with env.begin(write=True) as txn:
        for k, v in items:
            txn.put(k, v)
    return env, env.begin(buffers=False)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--lookups", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--dist", choices=("uniform", "zipf"), default="uniform")
    p.add_argument("--region-mb", type=int, default=1024)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--path", default="/dev/shm", help="directory of the region")
    p.add_argument("--huge-pages", action="store_true",
                   help="create the region with huge_pages=True")
    p.add_argument("--quick", action="store_true", help="10k keys, 200k lookups, 3 rounds")
    p.add_argument("--json")
    a = p.parse_args(argv)
    if a.quick:
        a.keys, a.lookups, a.rounds = 10_000, 200_000, 3
    rng = np.random.default_rng(5)
    names = common.key_names(a.keys)
    vnames = ["vec:%012d" % i for i in range(a.keys)]
    idx = common.key_indices(a.keys, a.lookups, a.dist, seed=1)
    stream = [names[i] for i in idx]
    vstream = [vnames[i] for i in idx]
    missing = ["nokey:%010d" % i for i in idx]
    values = {k: rng.bytes(512) for k in names}
    arrays = {k: rng.standard_normal(DIM, dtype=np.float32) for k in vnames}

    path = os.path.join(a.path, "cachee-bench-breakdown-%d" % os.getpid())
    c = cachee.SharedCache(path, size_bytes=a.region_mb << 20,
                           **({"huge_pages": True} if a.huge_pages else {}))
    tmp = None
    env = None
    try:
        c.set_many(values.items())
        for k, v in arrays.items():
            c.set_numpy(k, v)
        st = c.stats()
        if st["entries"] != 2 * a.keys:
            raise SystemExit("breakdown.py: the region holds %d of %d entries; give it "
                             "more --region-mb" % (st["entries"], 2 * a.keys))
        contenders = [
            ("dict.get", values.get, stream),
            ("get, missing key", c.get, missing),
            ("key in cache (hit)", c.__contains__, stream),
            ("get_buffer (hit)", c.get_buffer, stream),
            ("get (hit)", c.get, stream),
            ("get_numpy (hit)", c.get_numpy, vstream),
            ("dict.get (ndarray)", arrays.get, vstream),
        ]
        import tempfile
        tmp = tempfile.mkdtemp(prefix="cachee-bench-lmdb-")
        env, txn = lmdb_txn(tmp, [(k.encode(), values[k]) for k in names])
        if txn is not None:
            bstream = [k.encode() for k in stream]
            contenders.append(("lmdb txn.get", txn.get, bstream))
        B = a.batch
        batches = common.chunks(stream, B)[: max(1, a.lookups // (4 * B))]
        vbatches = common.chunks(vstream, B)[: len(batches)]
        lists = [list(b) for b in batches]
        vlists = [list(b) for b in vbatches]

        def dict_many(ks, d=values):
            return {k: d[k] for k in ks}

        def dict_stack(ks, d=arrays):
            return np.stack([d[k] for k in ks])

        batch_contenders = [
            ("dict comprehension", dict_many, lists),
            ("get_many", c.get_many, lists),
            ("np.stack of dict ndarrays", dict_stack, vlists),
            ("get_numpy_batch", c.get_numpy_batch, vlists),
        ]

        samples = {name: [] for name, _, _ in contenders + batch_contenders}
        for r in range(a.rounds + 1):  # round 0 warms up
            for name, fn, keys in contenders:
                ns = common.loop_ns(fn, keys)
                if r:
                    samples[name].append(ns)
            for name, fn, ks in batch_contenders:
                ns = common.loop_ns(fn, ks) / B
                if r:
                    samples[name].append(ns)

        print("machine: " + common.machine())
        print("region %d MiB at %s%s, %d keys of 512 B + %d vectors of %d x float32, "
              "%d %s lookups, %d rounds, batches of %d"
              % (a.region_mb, a.path, " (huge_pages=True)" if a.huge_pages else "", a.keys, a.keys, DIM, a.lookups, a.dist, a.rounds, B))
        base = samples["dict.get"]
        rows = []
        for name, _, _ in contenders + batch_contenders:
            s = common.summary(samples[name])
            ref = samples["dict.get (ndarray)"] if "numpy" in name else base
            if name in ("get_many",):
                ref = samples["dict comprehension"]
            if name == "get_numpy_batch":
                ref = samples["np.stack of dict ndarrays"]
            r = common.ratio_summary(samples[name], ref)
            rows.append([name + (" (per key)" if name in dict(
                (n, 1) for n, _, _ in batch_contenders) else ""),
                "%.0f" % s["median"], "%.0f-%.0f" % (s["min"], s["max"]),
                "%.2f" % r["median"] if r else "-"])
        print(common.table(["call", "ns/op", "spread", "x reference"], rows))
        print("reference: dict.get for bytes rows, dict.get (ndarray) for get_numpy, "
              "the dict equivalents for the batch rows")
        goals = []

        def goal(label, a_, b_, op, bound):
            r = common.ratio_summary(samples[a_], samples[b_])
            if r is None:
                return
            ok = r["median"] <= bound if op == "<=" else r["median"] >= bound
            goals.append({"goal": label, "ratio": r["median"], "min": r["min"],
                          "max": r["max"], "met": ok})
            print("goal: %-40s %.2f (%.2f-%.2f) %s" % (label, r["median"], r["min"],
                                                         r["max"], "met" if ok else "MISSED"))

        goal("get / dict.get <= 1.7", "get (hit)", "dict.get", "<=", 1.7)
        goal("get_numpy / dict of ndarrays <= 3", "get_numpy (hit)", "dict.get (ndarray)",
             "<=", 3.0)
        if "lmdb txn.get" in samples:
            goal("lmdb txn.get / get >= 2", "lmdb txn.get", "get (hit)", ">=", 2.0)
        per_key = statistics.median(samples["get_numpy_batch"])
        print("get_numpy_batch of %d random keys: %.0f ns per key (goal <= 250 here)"
              % (B, per_key))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"machine": common.machine(), "args": vars(a),
                           "samples_ns": samples, "goals": goals}, f, indent=1)
    finally:
        c.close()
        cachee.unlink(path)
        if env is not None:
            env.close()
        if tmp:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
