"""kill_campaign.py -- phase "kill": writers and readers SIGKILLed at random.

W writers and R readers hammer a deliberately small region; the supervisor
kills a random worker (sometimes two, sometimes one still starting up) after
a random delay, restarts it, and after every kill checks that no operation
stalled, that SharedCache.check() passes and that the pins of the dead are
reclaimed; now and then a hoarding episode fills the region with pins until
writers get CacheFullError.  It runs for --minutes, then on (choosing its
victims among the kind not killed yet) until it has killed writers and
readers and seen evictions, hits and held views -- what a slow machine may
not have got to in time -- within a hang guard.  See the docstring of
torture.py.
"""
import sys
import time

from shared import (F_DELS, F_FULL, F_HELD, F_HITS, F_OPSTART, F_READY, F_SETS, F_VBYTES,
                    F_VIEWS, G_EPOCH, G_HOARD, ROLE_NAMES, ROLE_READER, ROLE_WRITER)
from supervisor import OPS_DETAIL, Supervisor, region_idle, region_stats_subset

# the figures of the kill campaign that must be 0
KILL_ZERO = ("torn_or_corrupt_reads", "stale_reads", "reads_past_expiry", "worker_errors",
             "unexpected_worker_exits", "stalls_over_limit", "pin_accounting_mismatches",
             "check_failures", "writes_not_resumed")

# How long the campaign may go on past --minutes for the work it must have
# done (a hang guard).
EXTRA_S = 120.0


def writes_done(sup, W):
    return sum(sup.sh.get(s, F_SETS) + sup.sh.get(s, F_DELS) for s in range(W))


def fulls(sup, W):
    return sum(sup.sh.get(s, F_FULL) for s in range(W))


def hoard_episode(sup, W, timeout=4.0):
    """Readers hoard views until writers see CacheFullError (or timeout,
    times the supervisor's patience)."""
    timeout *= sup.patience
    f0 = fulls(sup, W)
    t0 = time.monotonic()
    sup.sh.q[G_HOARD] = 1
    full = False
    while time.monotonic() - t0 < timeout:
        sup.watch(0.02)
        if fulls(sup, W) > f0:
            full = True
            sup.watch(0.2)  # stay full a moment: writers keep failing, quickly
            break
    st = sup.cache.stats()
    return {"full": full, "ms_to_full": round((time.monotonic() - t0) * 1e3) if full else None,
            "full_writes": fulls(sup, W) - f0, "pinned_bytes": st["pinned_bytes"],
            "pins": st["pins"], "limbo_bytes": st["limbo_bytes"], "free_bytes": st["free_bytes"]}


def writes_resume(sup, W, timeout=5.0):
    """ms until writers succeed again after a hoard (None: they did not
    within timeout, times the supervisor's patience)."""
    timeout *= sup.patience
    t0 = time.monotonic()
    n0 = writes_done(sup, W)
    while time.monotonic() - t0 < timeout:
        if writes_done(sup, W) > n0 + 10:
            return round((time.monotonic() - t0) * 1e3)
        sup.watch(0.005)
    return None


def kill_campaign(args):
    """Run the kill campaign; its figures (the "kill" object of the JSON)."""
    W, R = args.writers, args.readers
    nslots = W + R
    region_bytes = args.kill_region_mib << 20
    sup = Supervisor(args.seed, "kill", nslots, region_bytes, 64 << 10,
                     stall_ns=int(args.stall_seconds * 1e9))
    sup.cfg = dict(path=sup.path, targets=list(range(W)), nkeys=args.nkeys,
                   hold_p=0.35, hold_max=16, hold_bytes=2 << 20, hold_mean_s=0.08,
                   hold_cap_s=1.5, hog_p=0.2, hog_bytes=region_bytes // 6,
                   diag_pins=args.diag_pins, stall_ns=sup.stall_ns,
                   expiry_slack_ns=max(1_000_000_000, sup.stall_ns))
    rng = sup.rng
    want_role = ROLE_WRITER if args.victims == "writers" else ROLE_READER
    kills = []
    out = {"phase": "kill", "region": sup.path}
    t_start = time.monotonic()
    try:
        for s in range(W):
            sup.spawn(s, ROLE_WRITER)
        for s in range(W, W + R):
            sup.spawn(s, ROLE_READER)
        # warm-up: everyone running, the region full and evicting
        sup.wait_ready()
        sup.watch(args.warmup)
        st0 = sup.cache.stats()
        deadline = t_start + args.minutes * 60
        hard_end = deadline + EXTRA_S
        epoch = 0
        worst_stall = 0
        check_ms_max = 0.0
        pin_mismatch = []
        check_fail = []
        by_kind = {"writer": 0, "reader": 0}
        restarted = []
        hoards = []
        next_hoard = time.monotonic() + (args.hoard_every / 2 if args.hoard_every else 0)

        def kinds_missing():
            """Roles no kill has hit yet (when kills pick any worker)."""
            if args.victims != "any":
                return []
            return [r for r in (ROLE_WRITER, ROLE_READER) if not by_kind[ROLE_NAMES[r]]]

        def work_missing():
            """What the campaign must have done and has not yet."""
            out = [ROLE_NAMES[r] + " kills" for r in kinds_missing()]
            if not sum(sup.sh.get(s, F_HITS) for s in range(nslots)):
                out.append("hits")
            if not sum(sup.sh.get(s, F_HELD) for s in range(nslots)):
                out.append("held views")
            if sup.cache.stats()["evictions"] == st0["evictions"]:
                out.append("evictions")
            return out

        while True:
            if time.monotonic() >= deadline:
                # on past the deadline only for what is still missing
                if time.monotonic() >= hard_end or not work_missing():
                    break
            hoard = None
            if args.hoard_every and time.monotonic() >= next_hoard:
                # every reader keeps every view it gets until the region is
                # full of pins (writers get CacheFullError, and must not
                # stall), then the biggest hoarder is killed: its pins must
                # be reclaimed and writes must succeed again
                next_hoard = time.monotonic() + args.hoard_every
                hoard = hoard_episode(sup, W)
                victims = [max((s for s in sup.pids if sup.roles[s] == ROLE_READER),
                               key=lambda s: sup.sh.get(s, F_VBYTES))]
            elif restarted and rng.random() < 0.1:
                # kill a worker just restarted, while it starts up (fork
                # hooks, slot adoption, first operations)
                sup.watch(rng.uniform(0, 0.01))
                victims = [v for v in restarted if v in sup.pids
                           and (args.victims == "any" or sup.roles[v] == want_role)][:1]
            else:
                sup.watch(rng.uniform(args.kill_min, args.kill_max))
                # choose the victim(s); now and then two at once
                alive = sorted(sup.pids)
                if args.victims != "any":
                    alive = [a for a in alive if sup.roles[a] == want_role]
                elif time.monotonic() >= deadline and kinds_missing():
                    alive = [a for a in alive if sup.roles[a] in kinds_missing()]
                nv = 2 if rng.random() < 0.1 and len(alive) > 2 else 1
                victims = rng.sample(alive, nv)
            if not victims:
                continue
            epoch += 1
            sup.sh.q[G_EPOCH] = epoch
            tk = time.monotonic()
            vinfo = []
            for v in victims:
                role = sup.roles[v]
                held = (sup.sh.get(v, F_VIEWS), sup.sh.get(v, F_VBYTES))
                busy = bool(sup.sh.get(v, F_OPSTART))
                ready = bool(sup.sh.get(v, F_READY))
                vpid = sup.pids[v]
                sup.kill(v)
                by_kind[ROLE_NAMES[role]] += 1
                vinfo.append({"slot": v, "role": ROLE_NAMES[role], "pid": vpid,
                              "held_views": held[0],
                              "held_bytes": held[1], "in_op": busy, "started": ready})
            if hoard is not None:
                sup.sh.q[G_HOARD] = 0
            # (d) pins of the dead reclaimed; (b) the region is consistent
            pc = sup.pin_check(writer_slack=0)
            ok, msg, cms = sup.check()
            check_ms_max = max(check_ms_max, cms)
            for v in victims:
                sup.spawn(v, sup.roles[v])
            restarted = victims
            # (a) stalls: epoch-1 is complete now (ops that ended before this kill)
            if epoch >= 2:
                em = sup.epoch_max(epoch - 1)
                kills[-1]["worst_op_ms"] = round(em / 1e6, 3)
                worst_stall = max(worst_stall, em)
            rec = {"t": round(tk - t_start, 3), "victims": vinfo, "pins": pc,
                   "check_ok": ok, "check_ms": round(cms, 1)}
            if hoard is not None:
                hoard["recovered_ms"] = writes_resume(sup, W)
                rec["hoard"] = hoard
                hoards.append(hoard)
            if not pc["ok"]:
                pin_mismatch.append(rec)
                sys.stderr.write("torture: pin accounting mismatch after kill %d: %s\n" % (epoch, pc))
            if not ok:
                rec["check_msg"] = msg
                check_fail.append(rec)
                sys.stderr.write("torture: check() failed after kill %d: %s\n" % (epoch, msg))
            kills.append(rec)
            if args.verbose:
                print("kill %4d t=%6.1fs %-22s pins %s check %s" %
                      (epoch, tk - t_start, ",".join("%s%d" % (x["role"][0], x["slot"]) for x in vinfo),
                       "ok" if pc["ok"] else "MISMATCH", "ok" if ok else "FAIL"), flush=True)
        t_loop_end = time.monotonic()
        # the last epoch: let it run a moment, then stop everyone
        sup.watch(0.3)
        hung = sup.stop_all()
        for e in (epoch - 1, epoch):
            if e >= 1:
                em = sup.epoch_max(e)
                kills[e - 1]["worst_op_ms"] = round(em / 1e6, 3)
                worst_stall = max(worst_stall, em)
        ok, msg, cms = sup.check()
        if not ok:
            check_fail.append({"t": "end", "check_msg": msg})
        st = sup.cache.stats()
        duration = time.monotonic() - t_start
        tot = sup.totals()
        worst_stall = max(worst_stall, tot["lat_max_ns"], sup.inprogress_max)
        stalls = tot["slow_ops"] + sup.inprogress_stalls
        still_missing = work_missing()
        final_pins_ok = region_idle(st)
        out.update({
            "duration_s": round(duration, 1),
            "extended_s": round(max(0.0, t_loop_end - deadline), 1),
            "work_missing": still_missing,
            "writers": W, "readers": R,
            "region_bytes": region_bytes, "segment_size": st["segment_size"],
            "value_max": st["value_max"], "keys": W * args.nkeys,
            "kills": by_kind["writer"] + by_kind["reader"],
            "kills_writer": by_kind["writer"], "kills_reader": by_kind["reader"],
            "kill_events": len(kills),
            "kills_during_startup": sum(1 for k in kills for v in k["victims"] if not v["started"]),
            "ops": tot["ops"],
            "ops_per_s": round(tot["ops"] / duration),
            "torn_or_corrupt_reads": tot["torn"],
            "stale_reads": tot["stale"],
            "reads_past_expiry": tot["expired_reads"],
            "worker_errors": tot["errors"],
            "unexpected_worker_exits": len(sup.unexpected) + len(hung),
            "stall_limit_ms": round(sup.stall_ns / 1e6),
            "stalls_over_limit": stalls,
            "worst_stall_ms": round(worst_stall / 1e6, 2),
            "worst_stall_after_kill_ms": round(max([k.get("worst_op_ms", 0) for k in kills] or [0]), 2),
            "pin_accounting_mismatches": len(pin_mismatch) + (0 if final_pins_ok else 1),
            "check_failures": len(check_fail),
            "pin_checks": len(kills),
            "pin_check_ms_max": max([k["pins"].get("ms", 0) for k in kills] or [0]),
            "pins_reclaimed_bytes": sum(v["held_bytes"] for k in kills for v in k["victims"]),
            "pins_reclaimed_views": sum(v["held_views"] for k in kills for v in k["victims"]),
            "check_ms_max": round(check_ms_max, 1),
            "cache_full_writes": tot["cache_full"],
            "hoard_episodes": len(hoards),
            "hoard_full_reached": sum(1 for h in hoards if h["full"]),
            "hoard_pinned_max": max([h["pinned_bytes"] for h in hoards] or [0]),
            "writes_not_resumed": sum(1 for h in hoards if h["recovered_ms"] is None),
            "evictions": st["evictions"] - st0["evictions"],
            "reaped_processes": st["reaped_processes"],
            "ops_detail": {k: tot[k] for k in OPS_DETAIL + ("bytes_read", "bytes_written")},
            "latency_pct_us": tot["latency_pct_us"],
            "latency_hist_us": tot["latency_hist_us"],
            "region_end": region_stats_subset(st),
            "final_pins_ok": final_pins_ok,
            "unexpected": sup.unexpected + [{"slot": s, "status": "hung at stop"} for s in hung],
            "stall_dumps": sup.stall_dumps,
            "failure_texts": tot["texts"][:20],
            "pin_mismatch_detail": pin_mismatch[:20],
            "check_failure_detail": check_fail[:20],
            "kill_log": kills,
        })
        return out
    finally:
        sup.destroy()
