"""L1 from Python: what an L1 hit costs next to an L0 hit, and what L1 with
promotion buys in hit ratio at equal memory (the Python counterpart of
bench/tiers/promote, same parameters).

1. Read cost.  A region of --region bytes and an L1 of --l1 bytes
   (l1_promote="never", so that L1 hits stay L1 hits); --writes keys of 64 B
   are written, L0 keeps some, the rest is demoted into L1 by the writes
   that evict them.  Then get() over L0-resident keys, L1-resident keys and
   absent keys, interleaved, median of --reps repetitions, loop overhead
   subtracted (bench/python/common.loop_ns).

2. Hit ratio.  A Zipf(0.99) stream over a key space 10x what an L0 of M
   bytes holds (256 B values), cache-aside from Python (a miss sets the
   value): L0 alone of M (and of M/2), against L0 of M/2 + L1 of M/2 with
   l1_promote "tinylfu" and "always".  Hit ratio over the last two thirds of the
   stream; L1 hits from the tier stats.

    PYTHONPATH=python .venv/bin/python bench/tiers/l1_py.py [--mem 16777216] [--requests 600000]
"""
import argparse
import gc
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import common  # noqa: E402

import cachee  # noqa: E402


def path(tag):
    return "/dev/shm/cachee-bench-l1py-%d-%s" % (os.getpid(), tag)


def l1_stats(c):
    return {t["name"]: t for t in c.stats()["tiers"]}["l1"]


def read_cost(args):
    p = path("read")
    c = cachee.SharedCache(p, size_bytes=args.region, l1_bytes=args.l1, l1_promote="never")
    try:
        assert c.get("absent") is None  # loads the tiers: from now on writes demote
        keys = ["key-%09d" % i for i in range(args.writes)]
        val = b"v" * 64
        for k in keys:
            c.set(k, val)
        st = c.stats()
        in_l0 = [k for k in keys if c._l0_contains(k)]
        in_l1 = [k for k in keys if not c._l0_contains(k) and k in c]  # `in`: no promotion
        rng = np.random.default_rng(1)
        n = min(args.sample, len(in_l0), len(in_l1))
        s0 = [in_l0[i] for i in rng.choice(len(in_l0), n, replace=False)]
        s1 = [in_l1[i] for i in rng.choice(len(in_l1), n, replace=False)]
        sm = ["absent-%09d" % i for i in range(n)]
        print("read cost: region %d MiB, L1 %d MiB, %d writes of 64 B: L0 holds %d, L1 %d "
              "(demoted %d, queue dropped %d); %d keys per pass, %d reps" % (
                  args.region >> 20, args.l1 >> 20, args.writes, len(in_l0), len(in_l1),
                  l1_stats(c)["demotions"], st["demotion"]["dropped"], n, args.reps))
        assert all(c.get(k) == val for k in s1[:1000]) and all(c.get(k) == val for k in s0[:1000])
        get = c.get
        res = {"L0 hit": [], "L1 hit": [], "miss (L0 and L1)": []}
        gc.disable()
        try:
            for _ in range(args.reps):  # interleaved
                res["L0 hit"].append(common.loop_ns(get, s0))
                res["L1 hit"].append(common.loop_ns(get, s1))
                res["miss (L0 and L1)"].append(common.loop_ns(get, sm))
        finally:
            gc.enable()
        assert l1_stats(c)["promotions"] == 0
        rows = []
        for name, xs in res.items():
            s = common.summary(xs)
            rows.append([name, "%.0f" % s["median"], "%.0f-%.0f" % (s["min"], s["max"])])
        r = common.ratio_summary(res["L1 hit"], res["L0 hit"])
        print(common.table(["get()", "ns/op (median)", "min-max"], rows, right=[1, 2]))
        print("L1 hit / L0 hit: %.1fx (median of per-rep ratios)" % r["median"])
    finally:
        c.unlink()
        c.close()


def l0_capacity(mem, value_len):
    """Entries an L0 of mem bytes holds with value_len-byte values (fill
    until it evicts, as bench/tiers/promote does)."""
    p = path("cap")
    c = cachee.SharedCache(p, size_bytes=mem)
    try:
        val = b"x" * value_len
        i = 0
        while True:
            c.set("key-%09d" % i, val)
            if i % 10000 == 0 and c.stats()["evictions"] > 0:
                break
            i += 1
        return c.stats()["entries"]
    finally:
        c.unlink()
        c.close()


def hit_ratio(args):
    cap = l0_capacity(args.mem, args.value)
    nkeys = 10 * cap
    trace = common.key_indices(nkeys, args.requests, "zipf", args.zipf, seed=42)
    names = ["key-%09d" % i for i in range(nkeys)]
    stream = [names[i] for i in trace]
    val = b"x" * args.value
    warm = len(stream) // 3
    print("\nhit ratio: M = %d MiB, values %d B: L0 of M holds ~%d entries; key space %d "
          "(10x); %d Zipf(%.2f) reads, cache-aside, counted over the last 2/3" % (
              args.mem >> 20, args.value, cap, nkeys, args.requests, args.zipf))
    rows = []
    for name, l0_bytes, l1_bytes, promote in [
            ("L0 alone (M)", args.mem, None, None),
            ("L0 alone (M/2)", args.mem // 2, None, None),
            ("L0 (M/2) + L1 (M/2), tinylfu", args.mem // 2, args.mem // 2, "tinylfu"),
            ("L0 (M/2) + L1 (M/2), always", args.mem // 2, args.mem // 2, "always")]:
        p = path("hr")
        kw = {"l1_bytes": l1_bytes, "l1_promote": promote} if l1_bytes else {}
        c = cachee.SharedCache(p, size_bytes=l0_bytes, **kw)
        try:
            get, set_ = c.get, c.set
            if l1_bytes:
                get("absent")  # load the tiers before the stream
            l1_hits0 = 0
            misses = 0
            t0 = time.perf_counter()
            for i, k in enumerate(stream):
                if i == warm:
                    l1_hits0 = l1_stats(c)["hits"] if l1_bytes else 0
                    misses = 0
                if get(k) is None:
                    set_(k, val)
                    misses += 1
            el = time.perf_counter() - t0
            n = len(stream) - warm
            l1_hits = (l1_stats(c)["hits"] - l1_hits0) if l1_bytes else 0
            hits = n - misses
            extra = ""
            if l1_bytes:
                l1 = l1_stats(c)
                extra = "promoted %d, demoted %d, dropped %d" % (
                    l1["promotions"], l1["demotions"], c.stats()["demotion"]["dropped"])
            rows.append([name, "%.2f%%" % (100 * hits / n), "%.2f%%" % (100 * (hits - l1_hits) / n),
                         "%.2f%%" % (100 * l1_hits / n) if l1_bytes else "-",
                         "%.0f" % (el / len(stream) * 1e9), extra])
        finally:
            c.unlink()
            c.close()
    print(common.table(["configuration", "hit ratio", "L0", "L1", "ns/request", ""], rows,
                       right=[1, 2, 3, 4]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--region", type=int, default=32 << 20)
    ap.add_argument("--l1", type=int, default=512 << 20)
    ap.add_argument("--writes", type=int, default=300000)
    ap.add_argument("--sample", type=int, default=50000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--mem", type=int, default=16 << 20)
    ap.add_argument("--value", type=int, default=256)
    ap.add_argument("--requests", type=int, default=600000)
    ap.add_argument("--zipf", type=float, default=0.99)
    ap.add_argument("--skip-hit-ratio", action="store_true")
    args = ap.parse_args()
    print(common.machine())
    read_cost(args)
    if not args.skip_hit_ratio:
        hit_ratio(args)


if __name__ == "__main__":
    main()
