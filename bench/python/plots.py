"""Merge the results of one benchmark run into latest.json and draw its plots.

    python bench/python/plots.py --parts DIR --out DIR

Reads DIR/peers.json, scaling.json, memory.json and hitratio.json (those that
exist: a part not run is left out), writes OUT/latest.json, OUT/summary.md
(the tables of bench/README.md, in Markdown) and, when
matplotlib is installed, OUT/plots/{latency-uniform,latency-zipf,scaling,
memory,hitratio}.png (small PNGs, 80 dpi).  Without matplotlib it says so and
still writes latest.json.
"""
import argparse
import datetime
import json
import os
import sys

import common

PARTS = ("peers", "scaling", "memory", "hitratio")
COLORS = {"cachee": "#d62728", "dict": "#7f7f7f", "dict[ndarray]": "#bcbcbc",
          "lmdb": "#1f77b4", "lmdb buffers=True": "#aec7e8", "redis tcp": "#2ca02c",
          "redis unix": "#98df8a", "diskcache": "#9467bd", "Manager().dict()": "#ff7f0e",
          "Manager": "#ff7f0e", "redis": "#2ca02c"}
PANELS = [("64B", "get"), ("512B", "get"), ("4KiB", "get"), ("emb128f32", "get_numpy"),
          ("64B", "set"), ("512B", "set"), ("4KiB", "set"), ("emb128f32", "batch")]


def merge(parts_dir):
    out = {"generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": common.machine()}
    try:
        out["loadavg"] = open("/proc/loadavg").read().split()[:3]
    except OSError:
        pass
    for p in PARTS:
        f = os.path.join(parts_dir, p + ".json")
        if os.path.exists(f):
            with open(f) as fh:
                out[p] = json.load(fh)
    return out


def plot_latency(plt, peers, dist, path):
    rows = [r for r in peers["rows"] if r["dist"] == dist]
    if not rows:
        return False
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.2))
    for ax, (ds, op) in zip(axes.flat, PANELS):
        rs = [r for r in rows if r["dataset"] == ds and r["op"] == op]
        labels = [r["contender"] for r in rs]
        p50 = [max(r["p50_ns"]["median"], 1) for r in rs]
        p99 = [max(r["p99_ns"]["median"], 1) for r in rs]
        y = range(len(rs))
        ax.barh(y, p50, color=[COLORS.get(l, "#333333") for l in labels])
        ax.scatter(p99, y, marker="|", s=120, color="black", zorder=3, label="p99")
        ax.set_yticks(list(y))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.tick_params(axis="x", labelsize=7)
        title = "get_numpy_batch(256)" if op == "batch" else op
        ax.set_title("%s, %s" % (title, ds), fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("p50 latency per %s (bar) and p99 (|), ns, log scale - %s keys, %s"
                 % ("op", peers["dists"][dist], peers.get("machine", "")), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def plot_scaling(plt, sc, path):
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    modes = []
    for pt in sc["points"]:
        if pt["mode"] not in modes:
            modes.append(pt["mode"])
    for m in modes:
        pts = [p for p in sc["points"] if p["mode"] == m]
        n = [p["procs"] for p in pts]
        a1.plot(n, [p["aggregate_per_s"]["median"] / 1e6 for p in pts], marker="o", label=m)
        a2.plot(n, [(p.get("efficiency_clean") or p["efficiency"])["median"] for p in pts],
                marker="o", label=m)
    a1.set_xlabel("processes")
    a1.set_ylabel("aggregate reads, M/s")
    a1.set_xticks(sorted({p["procs"] for p in sc["points"]}))
    a1.legend(fontsize=7)
    a1.grid(alpha=0.3)
    a2.axhline(0.9, color="red", lw=0.8, ls="--", label="goal 0.9")
    a2.set_xlabel("processes")
    a2.set_ylabel("efficiency (clean repetitions)")
    a2.set_ylim(0, 1.3)
    a2.set_xticks(sorted({p["procs"] for p in sc["points"]}))
    a2.legend(fontsize=7)
    a2.grid(alpha=0.3)
    fig.suptitle("read scaling from Python (%d keys)" % sc["keys"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_memory(plt, mem, path):
    import numpy as np
    kinds = []
    for r in mem["runs"]:
        if r["kind"] not in kinds:
            kinds.append(r["kind"])
    ws = mem["workers"]
    by = {(r["kind"], r["workers"]): r for r in mem["runs"]}
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / max(1, len(kinds))
    x = np.arange(len(ws))
    for i, k in enumerate(kinds):
        vals = [by[(k, w)]["total_pss"] / 2**20 if (k, w) in by else 0 for w in ws]
        ax.bar(x + i * width, vals, width, label=k, color=COLORS.get(k, None))
    D = mem["data_bytes"]
    bound = [(1.1 * D + sum(by[("cachee", w)]["reader_base"])) / 2**20
             if ("cachee", w) in by else None for w in ws]
    for j, b in enumerate(bound):
        if b is not None:
            ax.hlines(b, x[j] - 0.1, x[j] + 0.9, colors="black", linestyles="dashed",
                      label="goal: 1.1 D + W x baseline" if j == 0 else None)
    ax.set_xticks(x + 0.4 - width / 2)
    ax.set_xticklabels(["W=%d" % w for w in ws])
    ax.set_ylabel("total PSS, MiB")
    ax.set_title("memory of W readers sharing D = %.0f MiB" % (D / 2**20), fontsize=9)
    ax.legend(fontsize=7, ncol=3)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_hitratio(plt, hr, path):
    traces = []
    for r in hr["rows"]:
        if r["trace"] not in traces:
            traces.append(r["trace"])
    fig, axes = plt.subplots(1, len(traces), figsize=(4 * len(traces), 3.4), squeeze=False)
    for ax, t in zip(axes[0], traces):
        rs = sorted((r for r in hr["rows"] if r["trace"] == t), key=lambda r: r["capacity_pct"])
        cap = [r["capacity_pct"] for r in rs]
        for key, label, color in (("l0", "cachee L0 (S3-FIFO)", COLORS["cachee"]),
                                  ("otter", "otter W-TinyLFU", "#1f77b4"),
                                  ("lru", "exact LRU", "#7f7f7f")):
            ax.plot(cap, [100 * r[key] for r in rs], marker="o", label=label, color=color)
        ax.set_xscale("log")
        ax.set_xlabel("capacity, % of keys")
        ax.set_ylabel("hit ratio, %")
        ax.set_title(t, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("hit ratio, %d keys, %d requests per trace" % (hr["keys"], hr["requests"]),
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


OPCOLS = [("64B", "get", "get 64 B"), ("512B", "get", "get 512 B"), ("4KiB", "get", "get 4 KiB"),
          ("512B", "set", "set 512 B"), ("emb128f32", "get_numpy", "get_numpy 128 f32"),
          ("emb128f32", "batch", "batch of 256 (per key)")]


def _ns(x):
    if x >= 1e6:
        return "%.1f ms" % (x / 1e6)
    if x >= 1e4:
        return "%.0f us" % (x / 1e3)
    if x >= 1e3:
        return "%.1f us" % (x / 1e3)
    return "%.0f" % x


def _md(head, rows):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def markdown(res):
    """The result tables in Markdown (pasted into bench/README.md)."""
    md = ["Taken %s on %s." % (res["generated"], res["machine"])]
    if "loadavg" in res:
        md[-1] += " Load average at the end: %s." % " ".join(res["loadavg"])
    peers = res.get("peers")
    if peers:
        labels = []
        for r in peers["rows"]:
            if r["contender"] not in labels:
                labels.append(r["contender"])
        for dist, dname in peers["dists"].items():
            by = {(r["dataset"], r["op"], r["contender"]): r for r in peers["rows"]
                  if r["dist"] == dist}
            md.append("\n**%s keys** (%d keys, %d repetitions): mean time per operation, "
                      "x = its ratio to cachee's (median of per-repetition ratios)\n"
                      % (dname, peers["keys"], peers["reps"]))
            rows = []
            for l in labels:
                row = ["**%s**" % l if l == "cachee" else l]
                for ds, op, _ in OPCOLS:
                    r = by.get((ds, op, l))
                    if r is None:
                        row.append("")
                        continue
                    m = r["mean_ns"]["median"] / (peers["batch"] if op == "batch" else 1)
                    x = r["vs_cachee"]["median"] if r["vs_cachee"] else None
                    row.append(_ns(m) + ("" if l == "cachee" or x is None else " (x%.2g)" % x))
                rows.append(row)
            md.append(_md(["ns per op"] + [c[2] for c in OPCOLS], rows))
            md.append("\np50 / p99, ns (%s keys)\n" % dname)
            rows = []
            for l in labels:
                row = ["**%s**" % l if l == "cachee" else l]
                for ds, op, _ in OPCOLS:
                    r = by.get((ds, op, l))
                    if r is None:
                        row.append("")
                        continue
                    d = peers["batch"] if op == "batch" else 1
                    row.append("%s / %s" % (_ns(r["p50_ns"]["median"] / d),
                                            _ns(r["p99_ns"]["median"] / d)))
                rows.append(row)
            md.append(_md(["p50 / p99"] + [c[2] for c in OPCOLS], rows))
        if peers.get("missing"):
            md.append("\nMissing peers: " + "; ".join("%s (%s)" % kv for kv in peers["missing"].items()))
        rows = []
        for g in peers.get("goals", []):
            v = g["value"]
            what = {"faster": "peer p50 / cachee p50 >= %g", "p50": "peer p50 / cachee p50 >= %g",
                    "within": "cachee p50 / peer p50 <= %g"}[g["kind"]] % g["bound"]
            rows.append([peers["dists"][g["dist"]], "%s %s vs %s" % (g["op"], g["dataset"], g["peer"]),
                         what, "%.2f (%.2f-%.2f)" % (v["median"], v["min"], v["max"]) if v else "missing",
                         {True: "met", False: "**missed**", None: "-"}[g["met"]]])
        md.append("\n**Goals** (median over the repetitions of the per-repetition ratio of p50s)\n")
        md.append(_md(["keys", "comparison", "goal", "measured (min-max)", ""], rows))
    sc = res.get("scaling")
    if sc:
        modes = []
        for p in sc["points"]:
            if p["mode"] not in modes:
                modes.append(p["mode"])
        rows = []
        for n in sorted({p["procs"] for p in sc["points"]}):
            row = [n]
            for m in modes:
                p = [q for q in sc["points"] if q["mode"] == m and q["procs"] == n][0]
                c = p.get("efficiency_clean")
                row.append("%.2f M/s, %.2f; clean %s" % (
                    p["aggregate_per_s"]["median"] / 1e6, p["efficiency"]["median"],
                    "%d/%d: %.2f" % (p["clean_reps"], sc["reps"], c["median"]) if c
                    else "%d/%d" % (p.get("clean_reps", 0), sc["reps"])))
            oth = [q["other_cpus"]["median"] for q in sc["points"]
                   if q["procs"] == n and "other_cpus" in q]
            row.append("%.2f" % max(oth) if oth else "")
            rows.append(row)
        md.append("\n**Read scaling from Python** (%d keys, %g s per point, %d repetitions): "
                  "aggregate (median), efficiency over all repetitions; over the clean ones "
                  "(other processes took < 0.25 CPU)\n" % (sc["keys"], sc["seconds"], sc["reps"]))
        md.append(_md(["processes"] + modes + ["other CPUs (median)"], rows))
    mem = res.get("memory")
    if mem and mem["runs"]:
        M = 2 ** 20
        D = mem["data_bytes"]
        by = {(r["kind"], r["workers"]): r for r in mem["runs"]}
        kinds = []
        for r in mem["runs"]:
            if r["kind"] not in kinds:
                kinds.append(r["kind"])
        rows = []
        for k in kinds:
            row = [k]
            for w in mem["workers"]:
                r = by.get((k, w))
                if r is None:
                    row.append("")
                    continue
                cell = "%.0f" % (r["total_pss"] / M)
                if r["file_bytes"]:
                    cell += " (%.0f)" % (r["total_file_whole"] / M)
                row.append(cell)
            rows.append(row)
        base = ["%.0f" % (sum(by[("cachee", w)]["reader_base"]) / M) if ("cachee", w) in by else ""
                for w in mem["workers"]]
        bound = ["%.0f" % ((1.1 * D + sum(by[("cachee", w)]["reader_base"])) / M)
                 if ("cachee", w) in by else "" for w in mem["workers"]]
        rows.append(["readers' baseline (cachee run)"] + base)
        rows.append(["goal for cachee: 1.1 D + baseline"] + bound)
        md.append("\n**Memory**: total PSS in MiB of W readers sharing D = %.0f MiB "
                  "(in parentheses: the shared file counted whole)\n" % (D / M))
        md.append(_md(["store"] + ["W=%d" % w for w in mem["workers"]], rows))
    hr = res.get("hitratio")
    if hr:
        rows = []
        for r in hr["rows"]:
            rows.append([r["trace"], "%.2f%%" % r["capacity_pct"], r["entries"],
                         "%.2f%%" % (100 * r["l0"]), "%.2f%%" % (100 * r["lru"]),
                         "%.2f%%" % (100 * r["otter"]), "%+.2f" % (100 * (r["l0"] - r["lru"])),
                         "%+.2f" % (100 * (r["l0"] - r["otter"]))])
        md.append("\n**Hit ratio** (%d keys, %d requests per trace, LRU and otter bounded to "
                  "the entries the region holds)\n" % (hr["keys"], hr["requests"]))
        md.append(_md(["trace", "capacity", "entries", "L0", "exact LRU", "otter W-TinyLFU",
                       "L0 - LRU", "L0 - otter"], rows))
    return "\n".join(md) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    res = merge(a.parts)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "latest.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write(markdown(res))
    print("wrote %s (parts: %s)" % (os.path.join(a.out, "latest.json"),
                                    ", ".join(k for k in PARTS if k in res) or "none"))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print("MISSING matplotlib (%s): no plots" % e)
        return 0
    pdir = os.path.join(a.out, "plots")
    os.makedirs(pdir, exist_ok=True)
    made = []
    if "peers" in res:
        for d in res["peers"]["dists"]:
            f = os.path.join(pdir, "latency-%s.png" % d)
            if plot_latency(plt, res["peers"], d, f):
                made.append(f)
    if "scaling" in res:
        plot_scaling(plt, res["scaling"], os.path.join(pdir, "scaling.png"))
        made.append(os.path.join(pdir, "scaling.png"))
    if "memory" in res and res["memory"]["runs"]:
        plot_memory(plt, res["memory"], os.path.join(pdir, "memory.png"))
        made.append(os.path.join(pdir, "memory.png"))
    if "hitratio" in res:
        plot_hitratio(plt, res["hitratio"], os.path.join(pdir, "hitratio.png"))
        made.append(os.path.join(pdir, "hitratio.png"))
    for f in made:
        print("plot %s (%d KB)" % (f, os.path.getsize(f) // 1024))
    return 0


if __name__ == "__main__":
    sys.exit(main())
