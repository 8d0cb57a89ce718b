"""supervisor.py -- the supervisor: forks, watches, kills and restarts workers.

A Supervisor owns one region under /dev/shm and the Shared state of its
workers: it forks them, notices operations running over the stall limit
(--stall-seconds, 1 s by default) and workers that die on their own,
SIGKILLs and restarts them, pauses them at an operation boundary to compare
the region's pin totals with what they hold, and sums their counters.  Regions of dead runs are removed with the pytest suite's helpers
(tests/python/cachee_testutil.py).
"""
import os
import random
import signal
import sys
import time

import cachee

# The region clean-up helpers are the pytest suite's (tests/python).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import cachee_testutil as testutil  # noqa: E402
from diagnostics import dump_slots, stall_dump
from shared import (
    F_ACK, F_BYTES_RD, F_BYTES_WR, F_CONTAINS, F_DELS, F_ERRORS, F_EXPIRED, F_FULL, F_GETBUF,
    F_GETMANY, F_GETNP, F_GETS, F_GETVIEW, F_HELD, F_HIST, F_HITS, F_LAT_E, F_LAT_M,
    F_LATMAX, F_MISSES, F_OPS, F_OPSTART, F_PID, F_READY, F_REVERIFY, F_SETNP, F_SETS,
    F_SLOW, F_STALE, F_TORN, F_TTLSETS, F_VBYTES, F_VIEWS, G_FREEZE_ON, G_FREEZE_REQ, G_STOP,
    NHIST, ROLE_NAMES, ROLE_READER, STALL_NS, Shared)
from worker import worker_main

SHM = "/dev/shm"
PREFIX = "cachee-torture-"
# With the default stall limit of 1 s; the supervisor scales them with it
# (Supervisor.patience), so that a slow, loaded machine run with a generous
# limit does not fail them either.
PIN_POLL_S = 1.0                  # how long pins may take to be reclaimed
FREEZE_TIMEOUT_S = 3.0


def remove_leftovers():
    """Remove the regions of dead torture runs (the pytest suite's helper)."""
    testutil.remove_leftovers(PREFIX)


class Supervisor:
    """Forks, watches, kills and restarts workers of one region."""

    def __init__(self, seed, tag, nslots, region_bytes, segment_size, stall_ns=STALL_NS):
        self.path = os.path.join(SHM, "%s%d-%s-%d" % (PREFIX, os.getpid(), tag, int(time.time())))
        self.sh = Shared(nslots)
        self.rng = random.Random(seed)
        self.pids = {}       # slot -> pid
        self.roles = {}      # slot -> role
        self.cache = cachee.SharedCache(self.path, size_bytes=region_bytes,
                                        segment_size=segment_size, view_cache=0)
        self.unexpected = []  # (slot, role, status, text)
        self.inprogress_max = 0
        self.inprogress_stalls = 0
        self._stalled = set()
        self.stall_dumps = []
        self.killed = []      # (pid, worker, time, in_op, during_startup)
        self.t0 = time.monotonic()
        self.cfg = None
        # an operation running longer than stall_ns is a stall; the waits of
        # the supervisor that must outlast a slow machine scale with it
        self.stall_ns = stall_ns
        self.patience = max(1.0, stall_ns / STALL_NS)

    def name(self, slot):
        """The worker of a slot as the reports name it: w0, r3, m1, ..."""
        return "%s%d" % (ROLE_NAMES[self.roles[slot]][0], slot)

    # -- processes
    def spawn(self, slot, role):
        sh = self.sh
        sh.set(slot, F_READY, 0)
        sh.set(slot, F_OPSTART, 0)
        sh.set(slot, F_VIEWS, 0)
        sh.set(slot, F_VBYTES, 0)
        sh.set(slot, F_ACK, sh.q[G_FREEZE_REQ])
        seed = self.rng.getrandbits(62)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            worker_main(sh, slot, role, self.cfg, self.cache, seed)
        sh.set(slot, F_PID, pid)
        self.pids[slot] = pid
        self.roles[slot] = role
        return pid

    def reap_unexpected(self):
        """Workers that died on their own: counted, restarted."""
        for slot, pid in list(self.pids.items()):
            try:
                p, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                p, status = pid, -1
            if p == pid:
                del self.pids[slot]
                desc = "signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status) else \
                    "exit %d" % (os.WEXITSTATUS(status) if status >= 0 else -1)
                self.unexpected.append({"slot": slot, "role": ROLE_NAMES[self.roles[slot]],
                                        "status": desc, "text": self.sh.text(slot)})
                sys.stderr.write("torture: worker slot %d (%s) died on its own: %s\n" %
                                 (slot, ROLE_NAMES[self.roles[slot]], desc))
                self.sh.set(slot, F_VIEWS, 0)
                self.sh.set(slot, F_VBYTES, 0)
                self.sh.set(slot, F_OPSTART, 0)
                if not self.sh.q[G_STOP]:
                    self.spawn(slot, self.roles[slot])

    def wait_ready(self, timeout=10.0):
        """Watch until every worker has done its first operation."""
        end = time.monotonic() + timeout * self.patience
        while time.monotonic() < end and not all(self.sh.get(s, F_READY) for s in self.pids):
            self.watch(0.02)

    def watch(self, seconds):
        """Sleep `seconds` while watching for operations running too long and
        workers dying on their own."""
        end = time.monotonic() + seconds
        while True:
            self.watch_once()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.01, left))

    def watch_once(self):
        now = time.monotonic_ns()
        q = self.sh.q
        for slot in self.pids:
            t0 = q[self.sh.base(slot) + F_OPSTART]
            if t0 and now - t0 > self.inprogress_max:
                self.inprogress_max = now - t0
            if t0 and now - t0 > self.stall_ns and (slot, t0) not in self._stalled:
                self._stalled.add((slot, t0))
                self.inprogress_stalls += 1
                sys.stderr.write("torture: slot %d (%s) in an operation for %.2f s\n" %
                                 (slot, ROLE_NAMES[self.roles[slot]], (now - t0) / 1e9))
                if len(self.stall_dumps) < 3:
                    self.stall_dumps.append(stall_dump(self.pids[slot], slot,
                                                       ROLE_NAMES[self.roles[slot]],
                                                       self.path, self.who))
        self.reap_unexpected()

    def who(self, pid):
        """What the harness knows of a pid: a live worker, a killed one, ..."""
        for s, p in self.pids.items():
            if p == pid:
                return {"worker": self.name(s), "alive": True,
                        "in_op": bool(self.sh.get(s, F_OPSTART)),
                        "paused": self.sh.get(s, F_ACK) == self.sh.q[G_FREEZE_REQ] and
                        bool(self.sh.q[G_FREEZE_ON])}
        if pid == os.getpid():
            return {"worker": "supervisor"}
        for k in reversed(self.killed[-50:]):
            if k[0] == pid:
                return {"worker": k[1], "killed_at_s": round(k[2] - self.t0, 3),
                        "killed_in_op": k[3], "killed_during_startup": k[4],
                        "seconds_ago": round(time.monotonic() - k[2], 3)}
        return {"worker": "unknown"}

    def kill(self, slot):
        pid = self.pids[slot]
        self.killed.append((pid, self.name(slot), time.monotonic(),
                            bool(self.sh.get(slot, F_OPSTART)), not self.sh.get(slot, F_READY)))
        del self.pids[slot]
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)  # the process is gone: its descriptors are closed
        s = self.sh
        s.set(slot, F_OPSTART, 0)
        s.set(slot, F_VIEWS, 0)   # a dead reader holds nothing
        s.set(slot, F_VBYTES, 0)

    def freeze(self):
        """Stop the workers at an operation boundary; True when all did."""
        q = self.sh.q
        q[G_FREEZE_ON] = 1
        req = q[G_FREEZE_REQ] + 1
        q[G_FREEZE_REQ] = req
        end = time.monotonic() + FREEZE_TIMEOUT_S * self.patience
        while time.monotonic() < end:
            if all(q[self.sh.base(s) + F_ACK] == req for s in self.pids):
                return True
            self.watch_once()
            time.sleep(0.0005)
        return False

    def thaw(self):
        self.sh.q[G_FREEZE_ON] = 0

    def held(self):
        views = sum(self.sh.get(s, F_VIEWS) for s in self.pids)
        nbytes = sum(self.sh.get(s, F_VBYTES) for s in self.pids)
        return views, nbytes

    def pin_check(self, writer_slack):
        """Compare the region's pin totals and live processes with what the
        (frozen) workers hold; polls up to PIN_POLL_S (times patience).
        Returns a dict."""
        t0 = time.monotonic()
        res = {"ok": False}
        if not self.freeze():
            self.thaw()
            res["why"] = "workers did not pause within %.0f s" % (
                FREEZE_TIMEOUT_S * self.patience)
            return res
        try:
            views, nbytes = self.held()
            nwriters = sum(1 for s in self.pids if self.roles[s] != ROLE_READER)
            nproc = 1 + len(self.pids)
            all_ready = all(self.sh.get(s, F_READY) for s in self.pids)
            polls = 0
            while True:
                st = self.cache.stats()
                polls += 1
                ok = (st["pinned_bytes"] == nbytes and
                      views <= st["pins"] <= views + writer_slack * nwriters and
                      (not all_ready or st["live_processes"] == nproc))
                res.update(ok=ok, polls=polls, pins=st["pins"], pinned_bytes=st["pinned_bytes"],
                           live_processes=st["live_processes"], expected_views=views,
                           expected_bytes=nbytes, expected_processes=nproc,
                           limbo_bytes=st["limbo_bytes"], ms=round((time.monotonic() - t0) * 1e3, 1))
                if ok or time.monotonic() - t0 > PIN_POLL_S * self.patience:
                    break
                time.sleep(0.02)
            if not res["ok"]:
                # who holds what, still frozen: region slots vs what workers say
                bypid = {self.sh.get(s, F_PID): s for s in self.pids}
                res["slots"] = dump_slots(self.path)
                for d in res["slots"]:
                    ws = bypid.get(d.get("pid"))
                    if ws is not None:
                        d["worker"] = self.name(ws)
                        d["says_views"] = self.sh.get(ws, F_VIEWS)
                        d["says_bytes"] = self.sh.get(ws, F_VBYTES)
        finally:
            self.thaw()
        return res

    def check(self):
        t0 = time.monotonic()
        try:
            self.cache.check()
            return True, None, (time.monotonic() - t0) * 1e3
        except cachee.CacheError as e:
            return False, "%s: %s" % (type(e).__name__, e), (time.monotonic() - t0) * 1e3

    def epoch_max(self, e):
        """Worst latency (ns) of operations that ended in epoch e."""
        m = 0
        q = self.sh.q
        for slot in range(self.sh.nslots):
            b = self.sh.base(slot)
            i = e & 3
            if q[b + F_LAT_E + i] == e:
                m = max(m, q[b + F_LAT_M + i])
        return m

    def stop_all(self, timeout=10.0):
        """Ask the workers to finish, wait, kill what is left."""
        q = self.sh.q
        q[G_STOP] = 1
        q[G_FREEZE_ON] = 0
        end = time.monotonic() + timeout * self.patience
        hung = []
        while self.pids and time.monotonic() < end:
            for slot, pid in list(self.pids.items()):
                p, status = os.waitpid(pid, os.WNOHANG)
                if p == pid:
                    del self.pids[slot]
                    if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                        self.unexpected.append({"slot": slot, "role": ROLE_NAMES[self.roles[slot]],
                                                "status": "at stop: %d" % status,
                                                "text": self.sh.text(slot)})
            time.sleep(0.01)
        for slot, pid in list(self.pids.items()):
            hung.append(slot)
            self.kill(slot)
        return hung

    def destroy(self):
        """Kill our workers (only them, by pid) and unlink the region."""
        for slot, pid in list(self.pids.items()):
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self.pids.clear()
        try:
            self.cache.close()
        except Exception:
            pass
        testutil.remove_path(self.path)

    def totals(self):
        q = self.sh.q
        tot = {}
        names = {"ops": F_OPS, "hits": F_HITS, "misses": F_MISSES, "sets": F_SETS,
                 "set_numpy": F_SETNP, "deletes": F_DELS, "ttl_sets": F_TTLSETS,
                 "cache_full": F_FULL, "torn": F_TORN, "stale": F_STALE,
                 "expired_reads": F_EXPIRED, "errors": F_ERRORS, "slow_ops": F_SLOW,
                 "views_held": F_HELD, "reverified": F_REVERIFY, "bytes_read": F_BYTES_RD,
                 "bytes_written": F_BYTES_WR, "get": F_GETS, "get_numpy": F_GETNP,
                 "get_view": F_GETVIEW, "get_buffer": F_GETBUF, "get_many": F_GETMANY,
                 "contains": F_CONTAINS}
        for n, f in names.items():
            tot[n] = sum(q[self.sh.base(s) + f] for s in range(self.sh.nslots))
        tot["lat_max_ns"] = max(q[self.sh.base(s) + F_LATMAX] for s in range(self.sh.nslots))
        hist = [sum(q[self.sh.base(s) + F_HIST + i] for s in range(self.sh.nslots)) for i in range(NHIST)]
        tot["latency_hist_us"] = {bucket_label(i): h for i, h in enumerate(hist) if h}
        tot["latency_pct_us"] = percentiles(hist)
        tot["texts"] = [t for t in (self.sh.text(s) for s in range(self.sh.nslots)) if t]
        return tot


# the operation counts of the totals that the phases report
OPS_DETAIL = ("get", "get_numpy", "get_view", "get_buffer", "get_many", "contains", "sets",
              "set_numpy", "deletes", "ttl_sets", "hits", "misses", "views_held", "reverified")


def bucket_label(i):
    """The latency bucket i of the histogram, in microseconds: <1, <2, ..."""
    return "<%d" % (1 << i) if i < NHIST - 1 else ">=%d" % (1 << (i - 1))


def percentiles(hist):
    """Upper bounds (us) of p50/p99/p99.9/max from the log2 histogram."""
    n = sum(hist)
    out = {}
    if not n:
        return out
    for name, p in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0)):
        acc = 0
        for i, h in enumerate(hist):
            acc += h
            if acc >= p * n:
                out[name] = bucket_label(i)
                break
    return out


def region_stats_subset(st):
    keys = ("hits", "misses", "sets", "deletes", "evictions", "expirations", "reinsertions",
            "set_failures", "entries", "used_bytes", "free_bytes", "limbo_bytes", "pinned_bytes",
            "pins", "live_processes", "reaped_processes", "capacity_bytes", "segment_size",
            "segments", "value_max", "region_size")
    return {k: st[k] for k in keys if k in st}


def region_idle(st):
    """Nothing pinned or in limbo and the supervisor the only process: the
    state a region must be in once every worker is gone."""
    return (st["pins"] == 0 and st["pinned_bytes"] == 0 and st["limbo_bytes"] == 0
            and st["live_processes"] == 1)
