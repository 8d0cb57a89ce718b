"""report.py -- the figures of each phase, printed as a table.

One row per figure: its value and its bound; a must-be-0 figure that is not 0
is marked "<-- FAIL".
"""
from kill_campaign import KILL_ZERO
from soak import SOAK_ZERO


def mib(x):
    """bytes as MiB, one decimal"""
    return "%.1f" % (x / 1048576)


def latency(pct):
    """p50 / p99 / p99.9 of a latency_pct_us figure"""
    return " / ".join(str(pct.get(p, "-")) for p in ("p50", "p99", "p99.9"))


def print_kill(k):
    rows = [
        ("duration (s)", k["duration_s"], ""),
        ("  of which past the set length", k["extended_s"],
         ", ".join(k["work_missing"]) or ""),
        ("workers", "%d writers + %d readers" % (k["writers"], k["readers"]), ""),
        ("region / segment / value_max", "%s MiB / %d KiB / %s MiB" % (
            mib(k["region_bytes"]), k["segment_size"] >> 10, mib(k["value_max"])), ""),
        ("kills survived (writer / reader)", "%d (%d / %d)" % (k["kills"], k["kills_writer"],
                                                            k["kills_reader"]), ""),
        ("  of which during start-up", k["kills_during_startup"], ""),
        ("operations (ops/s)", "%d (%d)" % (k["ops"], k["ops_per_s"]), ""),
        ("evictions", k["evictions"], ""),
        ("writes refused: CacheFullError", k["cache_full_writes"], ""),
        ("hoards: episodes / region full / max pinned",
         "%d / %d / %s MiB" % (k["hoard_episodes"], k["hoard_full_reached"],
                               mib(k["hoard_pinned_max"])), ""),
        ("pins of killed processes reclaimed", "%d views, %s MiB" % (
            k["pins_reclaimed_views"], mib(k["pins_reclaimed_bytes"])), ""),
        ("latency p50 / p99 / p99.9 (us)", latency(k["latency_pct_us"]), ""),
        ("worst stall, any op (ms)", k["worst_stall_ms"], "< %d" % k["stall_limit_ms"]),
        ("worst op in a kill window (ms)", k["worst_stall_after_kill_ms"],
         "< %d" % k["stall_limit_ms"]),
        ("pin check time max (ms)", k["pin_check_ms_max"], ""),
        ("check() time max (ms)", k["check_ms_max"], ""),
    ] + [(name.replace("_", " "), k[name], "must be 0") for name in KILL_ZERO]
    print_table("kill campaign", rows)


def print_soak(s):
    rows = [
        ("duration (s)", s["duration_s"], ""),
        ("warm-up before it (s)", s["warmup_s"], ""),
        ("workers (mixed 90/10)", s["workers"], ""),
        ("operations (ops/s)", "%d (%d)" % (s["ops"], s["ops_per_s"]), ""),
        ("evictions", s["evictions"], ""),
        ("latency p50 / p99 / p99.9 (us)", latency(s["latency_pct_us"]), ""),
        ("worst stall (ms)", s["worst_stall_ms"], "< %d" % s["stall_limit_ms"]),
    ]
    for slot, w in sorted(s["rss_per_worker"].items(), key=lambda x: int(x[0])):
        v, a = w["vmrss_kib"], w["rssanon_kib"]
        if v:
            rows.append(("worker %s VmRSS start/end/max (MiB)" % slot,
                         "%s / %s / %s" % (mib(v["start"] * 1024), mib(v["end"] * 1024),
                                           mib(v["max"] * 1024)),
                         "halves %s -> %s" % (mib(v["first_half_max"] * 1024),
                                              mib(v["second_half_max"] * 1024))))
            rows.append(("worker %s RssAnon start/end/max (MiB)" % slot,
                         "%s / %s / %s" % (mib(a["start"] * 1024), mib(a["end"] * 1024),
                                           mib(a["max"] * 1024)),
                         "halves %s -> %s" % (mib(a["first_half_max"] * 1024),
                                              mib(a["second_half_max"] * 1024))))
    for k in ("used_bytes", "limbo_bytes", "pinned_bytes"):
        r = s["region_usage"].get(k)
        if r:
            rows.append(("region %s min/mean/max (MiB)" % k,
                         "%s / %s / %s" % (mib(r["min"]), mib(r["mean"]), mib(r["max"])),
                         "halves %s -> %s" % (mib(r["first_half_max"]), mib(r["second_half_max"]))))
    r = s["region_usage"].get("entries")
    if r:
        rows.append(("region entries min/mean/max", "%d / %d / %d" % (r["min"], r["mean"], r["max"]), ""))
    e = s["region_end"]
    rows.append(("at the end: pins / pinned / limbo", "%d / %d B / %d B" % (
        e["pins"], e["pinned_bytes"], e["limbo_bytes"]), "must be 0"))
    rows += [(name.replace("_", " "), s[name], "must be 0") for name in SOAK_ZERO]
    print_table("soak", rows)


def print_table(title, rows):
    w1 = max(len(str(r[0])) for r in rows)
    w2 = max(len(str(r[1])) for r in rows)
    print()
    print("== %s" % title)
    print("%-*s  %-*s  %s" % (w1, "figure", w2, "value", "bound"))
    print("%s  %s  %s" % ("-" * w1, "-" * w2, "-" * 12))
    for a, b, c in rows:
        bad = c == "must be 0" and b not in (0, "0 / 0 B / 0 B")
        print("%-*s  %-*s  %s%s" % (w1, a, w2, b, c, "   <-- FAIL" if bad else ""))
