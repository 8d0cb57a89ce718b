"""soak.py -- phase "soak": mixed workers for a while, memory must stay flat.

One mixed worker per core (90% reads / 10% writes) for a bounded time; the
supervisor samples every worker's memory (/proc/PID/status) and the region's
usage, checks that memory does not keep growing (second half's max within 10%
-- or 4 MiB -- of the first half's max) and that nothing stays pinned or in
limbo once the workers let go.  Sampling starts once the workers have
written the region over WARM_REGIONS times (each has then touched its pages,
which a worker's RSS counts): a warm-up measured in work, not in time, so
that a slow machine still warming up in the first half does not look like
growth.  See the docstring of torture.py.
"""
import os
import time

from shared import F_BYTES_WR, G_DROP, ROLE_MIXED
from supervisor import OPS_DETAIL, Supervisor, region_idle, region_stats_subset

# the figures of the soak that must be 0
SOAK_ZERO = ("torn_or_corrupt_reads", "stale_reads", "reads_past_expiry", "worker_errors",
             "unexpected_worker_exits", "stalls_over_limit", "memory_growth_violations",
             "end_state_failures")

WARM_REGIONS = 4      # bytes written before sampling, in region sizes
WARM_MAX_S = 120.0    # a hang guard for the warm-up


def read_status(pid):
    """Resident memory of a process (KiB, /proc/PID/status); None once gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "RssAnon:", "RssShmem:", "RssFile:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])  # KiB
    except OSError:
        return None
    return out


def summarize(series):
    if not series:
        return {}
    n = len(series)
    h = max(1, n // 2)
    a, b = series[:h], series[h:] or series[:h]
    return {"start": series[0], "end": series[-1], "min": min(series), "max": max(series),
            "mean": round(sum(series) / n), "first_half_max": max(a), "second_half_max": max(b)}


def bounded(first_max, second_max, slack_kib=4096):
    return second_max <= max(first_max * 1.10, first_max + slack_kib)


def soak(args):
    """Run the soak; its figures (the "soak" object of the JSON)."""
    n = args.soak_workers or max(2, os.cpu_count() or 2)
    region_bytes = args.soak_region_mib << 20
    sup = Supervisor(args.seed, "soak", n, region_bytes, 64 << 10,
                     stall_ns=int(args.stall_seconds * 1e9))
    sup.cfg = dict(path=sup.path, targets=list(range(n)), nkeys=args.nkeys,
                   hold_p=0.25, hold_max=16, hold_bytes=2 << 20, hold_mean_s=0.05,
                   hold_cap_s=1.0, stall_ns=sup.stall_ns,
                   expiry_slack_ns=max(1_000_000_000, sup.stall_ns))
    out = {"phase": "soak", "region": sup.path, "workers": n}
    samples = []
    rss = {}
    failures = []
    try:
        for s in range(n):
            sup.spawn(s, ROLE_MIXED)
        sup.wait_ready()
        # warm-up: the region written over WARM_REGIONS times
        t_warm = time.monotonic()

        def written():
            return sum(sup.sh.get(s, F_BYTES_WR) for s in range(n))
        w0 = written()
        while (written() - w0 < WARM_REGIONS * region_bytes and
               time.monotonic() - t_warm < WARM_MAX_S):
            sup.watch(0.05)
        warmup_s = time.monotonic() - t_warm
        t_start = time.monotonic()
        ops0 = sup.totals()["ops"]
        st0 = sup.cache.stats()
        deadline = t_start + args.soak_seconds
        period = max(0.1, min(1.0, args.soak_seconds / 120))
        while time.monotonic() < deadline:
            sup.watch(period)
            t = round(time.monotonic() - t_start, 2)
            st = sup.cache.stats()
            samples.append({"t": t, "used_bytes": st["used_bytes"], "limbo_bytes": st["limbo_bytes"],
                            "pinned_bytes": st["pinned_bytes"], "pins": st["pins"],
                            "entries": st["entries"], "free_bytes": st["free_bytes"]})
            for slot, pid in sup.pids.items():
                s = read_status(pid)
                if s:
                    rss.setdefault(slot, []).append((t, s.get("VmRSS", 0), s.get("RssAnon", 0),
                                                     s.get("RssShmem", 0)))
        duration = time.monotonic() - t_start
        ops = sup.totals()["ops"] - ops0
        # release every view, then compare: nothing may stay pinned
        sup.sh.q[G_DROP] = 1
        pc = sup.pin_check(writer_slack=0)
        sup.sh.q[G_DROP] = 0
        if not pc["ok"] or pc.get("pins") != 0 or pc.get("pinned_bytes") != 0:
            failures.append("after the workers released their views: %s" % pc)
        hung = sup.stop_all()
        st_end = sup.cache.stats()
        ok, msg, cms = sup.check()
        if not ok:
            failures.append("check(): %s" % msg)
        tot = sup.totals()
        per_worker = {}
        growth = []
        for slot, ser in sorted(rss.items()):
            vm = [x[1] for x in ser]
            anon = [x[2] for x in ser]
            shm = [x[3] for x in ser]
            sv, sa = summarize(vm), summarize(anon)
            per_worker[slot] = {"vmrss_kib": sv, "rssanon_kib": sa, "rssshmem_kib": summarize(shm),
                                "samples": len(ser)}
            for name, s in (("VmRSS", sv), ("RssAnon", sa)):
                if s and not bounded(s["first_half_max"], s["second_half_max"]):
                    growth.append("worker %d %s: first half max %d KiB, second half max %d KiB" %
                                  (slot, name, s["first_half_max"], s["second_half_max"]))
        region = {k: summarize([x[k] for x in samples])
                  for k in ("used_bytes", "limbo_bytes", "pinned_bytes", "pins", "entries")}
        if not region_idle(st_end):
            failures.append("region at the end: pins %d, pinned %d B, limbo %d B, live %d" %
                            (st_end["pins"], st_end["pinned_bytes"], st_end["limbo_bytes"],
                             st_end["live_processes"]))
        out.update({
            "duration_s": round(duration, 1),
            "warmup_s": round(warmup_s, 1),
            "region_bytes": region_bytes,
            "ops": ops, "ops_per_s": round(ops / duration) if duration else 0,
            "torn_or_corrupt_reads": tot["torn"], "stale_reads": tot["stale"],
            "reads_past_expiry": tot["expired_reads"], "worker_errors": tot["errors"],
            "unexpected_worker_exits": len(sup.unexpected) + len(hung),
            "stall_limit_ms": round(sup.stall_ns / 1e6),
            "stalls_over_limit": tot["slow_ops"] + sup.inprogress_stalls,
            "worst_stall_ms": round(max(tot["lat_max_ns"], sup.inprogress_max) / 1e6, 2),
            "memory_growth_violations": len(growth),
            "end_state_failures": len(failures),
            "cache_full_writes": tot["cache_full"],
            "evictions": st_end["evictions"] - st0["evictions"],
            "latency_pct_us": tot["latency_pct_us"],
            "ops_detail": {k: tot[k] for k in OPS_DETAIL},
            "rss_per_worker": per_worker,
            "region_usage": region,
            "region_after_release": pc,
            "region_end": region_stats_subset(st_end),
            "growth_detail": growth,
            "failure_detail": failures,
            "failure_texts": tot["texts"][:20],
            "unexpected": sup.unexpected,
            "stall_dumps": sup.stall_dumps,
            "region_samples": samples if len(samples) <= 400 else samples[::max(1, len(samples) // 400)],
        })
        return out
    finally:
        sup.destroy()
