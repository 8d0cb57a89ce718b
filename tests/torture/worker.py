"""worker.py -- a worker process: hammers the region and verifies every read.

A writer writes its own keys "t<w>:<id>" (set, set_numpy, add, delete, TTL)
with sequence numbers that only grow; a reader reads the writers' keys (get,
get_numpy, get_view, get_buffer, get_many, ``in``), verifies every value and
holds some views for a while (or every view, in a hoarding episode); a mixed
worker (the soak) does both.  Everything it counts goes to its slot of the
Shared state; it pauses at an operation boundary when the supervisor asks
(the freeze handshake).
"""
import ctypes
import os
import random
import signal
import sys
import time
import traceback

import numpy as np

import cachee
from diagnostics import SLOT_ACTIVE, map_region, process_slots, slot_pins
from shared import (
    F_ACK, F_BYTES_RD, F_BYTES_WR, F_CONTAINS, F_DELS, F_ERRORS, F_EXPIRED, F_FULL, F_GETBUF,
    F_GETMANY, F_GETNP, F_GETS, F_GETVIEW, F_HELD, F_HIST, F_HITS, F_LAT_E, F_LAT_M, F_LATMAX,
    F_MISSES, F_OPS, F_OPSTART, F_READY, F_REVERIFY, F_SEQ, F_SETNP, F_SETS, F_SLOW, F_STALE,
    F_TORN, F_TTLSETS, F_VBYTES, F_VIEWS, G_DROP, G_EPOCH, G_FREEZE_ON, G_FREEZE_REQ, G_HOARD,
    G_STOP, NHIST, ROLE_MIXED, ROLE_NAMES, ROLE_READER, ROLE_WRITER, STALL_NS)
from values import DTYPES, Bad, check_layout, make_value, value_size, verify

# A read this long after the expiry written in a value's header is an error
# (the default; cfg["expiry_slack_ns"] overrides it).  The header's expiry is
# taken before the value is built and stored, the engine's a little later: a
# writer preempted in between for longer than this makes a legitimate read
# look late, so the slack grows with the stall limit on a slow machine.
EXPIRY_SLACK_NS = 1_000_000_000


def _prctl_pdeathsig():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Worker:
    """The loop of one worker process (writer, reader or mixed) on its slot."""

    def __init__(self, sh, slot, role, cache, cfg, rng):
        self.sh, self.slot, self.role, self.cache, self.cfg, self.rng = sh, slot, role, cache, cfg, rng
        self.q = sh.q
        self.b = sh.base(slot)
        self.pool = memoryview(rng.randbytes(1 << 20))
        self.holds = []          # [deadline_ns, obj, writer, key, nbytes, seq]
        self.held_bytes = 0
        self.last_seq = {}
        self.nerr_printed = 0
        self.ack = self.q[self.b + F_ACK]
        self.hoarding = False
        self.diag = None
        self.last_op = None
        self.targets = cfg["targets"]   # writer slots whose keys we read
        self.nkeys = cfg["nkeys"]
        self.stall_ns = cfg.get("stall_ns", STALL_NS)
        self.expiry_slack_ns = cfg.get("expiry_slack_ns", EXPIRY_SLACK_NS)

    # -- bookkeeping
    def bump(self, f, n=1):
        self.q[self.b + f] += n

    def fail(self, f, msg):
        self.bump(f)
        text = "%s slot %d pid %d: %s" % (ROLE_NAMES[self.role], self.slot, os.getpid(), msg)
        self.sh.set_text(self.slot, text)
        if self.nerr_printed < 5:
            self.nerr_printed += 1
            sys.stderr.write("torture: " + text + "\n")
            sys.stderr.flush()

    def timed_end(self, t0):
        t1 = time.monotonic_ns()
        q, b = self.q, self.b
        q[b + F_OPSTART] = 0
        dt = t1 - t0
        q[b + F_OPS] += 1
        e = q[G_EPOCH]
        i = e & 3
        if q[b + F_LAT_E + i] != e:
            q[b + F_LAT_M + i] = 0
            q[b + F_LAT_E + i] = e
        if dt > q[b + F_LAT_M + i]:
            q[b + F_LAT_M + i] = dt
        if dt > q[b + F_LATMAX]:
            q[b + F_LATMAX] = dt
        if dt > self.stall_ns:
            q[b + F_SLOW] += 1
        hb = (dt // 1000).bit_length()
        q[b + F_HIST + (hb if hb < NHIST else NHIST - 1)] += 1

    def start(self):
        t0 = time.monotonic_ns()
        self.q[self.b + F_OPSTART] = t0
        return t0

    def publish_holds(self):
        self.q[self.b + F_VIEWS] = len(self.holds)
        self.q[self.b + F_VBYTES] = self.held_bytes

    # -- keys
    def pick_key(self):
        w = self.rng.choice(self.targets)
        k = int(self.nkeys * self.rng.random() ** 2.5)
        return w, k

    # -- verification of what a read returned
    def seen(self, w, k, mv, wall0, what):
        """Verify a value read now; False (and counted) if it is bad."""
        try:
            seq, exp, kind, dcode, cols = verify(mv, w, k)
        except Bad as e:
            self.fail(F_TORN, "%s t%d:%d: %s" % (what, w, k, e))
            return None
        last = self.last_seq.get((w, k), 0)
        if seq < last:
            self.fail(F_STALE, "%s t%d:%d: seq %d after seq %d was read" % (what, w, k, seq, last))
        else:
            self.last_seq[(w, k)] = seq
        if exp and wall0 > exp + self.expiry_slack_ns:
            self.fail(F_EXPIRED, "%s t%d:%d: seq %d read %.3f s after its expiry" %
                      (what, w, k, seq, (wall0 - exp) / 1e9))
        self.bump(F_BYTES_RD, len(mv))
        return seq, kind, dcode, cols

    def check_obj(self, obj, w, k, wall0, what):
        """Verify an ndarray / View / memoryview over shared memory."""
        with memoryview(obj) as m0, m0.cast("B") as mv:
            r = self.seen(w, k, mv, wall0, what)
            if r is None:
                return None
            seq, kind, dcode, cols = r
            if what in ("get_numpy", "get_view"):
                try:
                    check_layout(obj.dtype, obj.shape, kind, dcode, cols, len(mv))
                except Bad as e:
                    self.fail(F_TORN, "%s t%d:%d: %s" % (what, w, k, e))
                    return None
            return seq, len(mv)

    def maybe_hold(self, obj, w, k, seq, nbytes):
        c = self.cfg
        if self.hoarding:
            # a hoarding episode: keep everything until the supervisor says
            # stop (the region fills up with pinned versions)
            if len(self.holds) < 20000:
                self.holds.append([1 << 62, obj, w, k, nbytes, seq])
                self.held_bytes += nbytes
                self.bump(F_HELD)
                self.publish_holds()
            return
        if (self.rng.random() < c["hold_p"] and len(self.holds) < c["hold_max"]
                and self.held_bytes + nbytes <= c["hold_bytes"]):
            hold = min(self.rng.expovariate(1.0 / c["hold_mean_s"]), c["hold_cap_s"])
            self.holds.append([time.monotonic_ns() + int(hold * 1e9), obj, w, k, nbytes, seq])
            self.held_bytes += nbytes
            self.bump(F_HELD)
            self.publish_holds()

    def release_one(self, i):
        dl, obj, w, k, nbytes, seq = self.holds[i]
        # the bytes of a held view must not have changed, whatever happened
        # to the key meanwhile
        with memoryview(obj) as m0, m0.cast("B") as mv:
            try:
                s2 = verify(mv, w, k)[0]
                if s2 != seq:
                    raise Bad("seq %d became %d" % (seq, s2))
            except Bad as e:
                self.fail(F_TORN, "held view t%d:%d changed under its pin: %s" % (w, k, e))
        self.bump(F_REVERIFY)
        self.holds[i] = self.holds[-1]
        self.holds.pop()
        self.held_bytes -= nbytes
        if self.diag is not None:
            kind = type(obj).__name__
            rc = sys.getrefcount(obj)
            n0 = slot_pins(*self.diag)
        del obj, dl
        if self.diag is not None:
            n1 = slot_pins(*self.diag)
            if n1 != (n0[0] - 1, n0[1] - nbytes):
                self.fail(F_ERRORS, "diag: releasing a %s of t%d:%d (%d B, seq %d, refcount %d, "
                          "inherited handle %s) took the slot from %s to %s" %
                          (kind, w, k, nbytes, seq, rc, self.cache is self.cfg.get("_sup"), n0, n1))
        self.publish_holds()

    def end_hoard(self):
        """Let go of the hoard over the next 0.3 s.  (A method, so that no
        loop variable outlives it holding a view.)"""
        now = time.monotonic_ns()
        for h in self.holds:
            if h[0] == 1 << 62:
                h[0] = now + self.rng.randrange(300_000_000)

    def release_due(self, all_=False):
        if not self.holds:
            return
        now = time.monotonic_ns()
        i = 0
        while i < len(self.holds):
            if all_ or self.holds[i][0] <= now:
                self.release_one(i)
            else:
                i += 1

    # -- the freeze handshake: stop at an operation boundary while the
    # supervisor compares the region's pin totals with ours
    def freeze_point(self):
        q = self.q
        req = q[G_FREEZE_REQ]
        if req == self.ack:
            return
        if q[G_DROP]:
            self.release_due(all_=True)
        self.publish_holds()
        self.ack = req
        q[self.b + F_ACK] = req
        while q[G_FREEZE_ON] and q[G_FREEZE_REQ] == req and not q[G_STOP]:
            time.sleep(0.0005)

    # -- operations
    def read_op(self):
        rng, cache = self.rng, self.cache
        w, k = self.pick_key()
        key = "t%d:%d" % (w, k)
        r = rng.random()
        wall0 = time.time_ns()
        op = "?"
        try:
            if r < 0.30:
                op = "get"
                t0 = self.start()
                v = cache.get(key)
                self.timed_end(t0)
                self.bump(F_GETS)
                if v is None:
                    self.bump(F_MISSES)
                else:
                    self.bump(F_HITS)
                    self.seen(w, k, memoryview(v), wall0, "get")
            elif r < 0.55:
                op = "get_numpy"
                t0 = self.start()
                a = cache.get_numpy(key)
                self.timed_end(t0)
                self.bump(F_GETNP)
                if a is None:
                    self.bump(F_MISSES)
                else:
                    self.bump(F_HITS)
                    res = self.check_obj(a, w, k, wall0, "get_numpy")
                    if res:
                        self.maybe_hold(a, w, k, *res)
                    del a
            elif r < 0.78:
                op = "get_view"
                t0 = self.start()
                v = cache.get_view(key)
                self.timed_end(t0)
                self.bump(F_GETVIEW)
                if v is None:
                    self.bump(F_MISSES)
                else:
                    self.bump(F_HITS)
                    res = self.check_obj(v, w, k, wall0, "get_view")
                    if res:
                        self.maybe_hold(v, w, k, *res)
                    del v
            elif r < 0.90:
                op = "get_buffer"
                t0 = self.start()
                b = cache.get_buffer(key)
                self.timed_end(t0)
                self.bump(F_GETBUF)
                if b is None:
                    self.bump(F_MISSES)
                else:
                    self.bump(F_HITS)
                    res = self.check_obj(b, w, k, wall0, "get_buffer")
                    if res:
                        self.maybe_hold(b, w, k, *res)
                    else:
                        b.release()
                    del b
            elif r < 0.95:
                keys = [self.pick_key() for _ in range(4)]
                op = "get_many"
                t0 = self.start()
                got = cache.get_many(["t%d:%d" % wk for wk in keys])
                self.timed_end(t0)
                self.bump(F_GETMANY)
                for wk in keys:
                    v = got.get("t%d:%d" % wk)
                    if v is None:
                        self.bump(F_MISSES)
                    else:
                        self.bump(F_HITS)
                        self.seen(wk[0], wk[1], memoryview(v), wall0, "get_many")
            else:
                op = "contains"
                t0 = self.start()
                present = key in cache
                self.timed_end(t0)
                self.bump(F_CONTAINS)
                self.bump(F_HITS if present else F_MISSES)
        except cachee.CacheError as e:
            self.q[self.b + F_OPSTART] = 0
            self.fail(F_ERRORS, "%s(%s): %s: %s" % (op, key, type(e).__name__, e))
        self.last_op = (op, key, "hoarding" if self.hoarding else "")

    def write_op(self):
        rng, cache = self.rng, self.cache
        w = self.slot
        k = int(self.nkeys * rng.random() ** 2.0)
        key = "t%d:%d" % (w, k)
        r = rng.random()
        try:
            if r < 0.10:
                t0 = self.start()
                cache.delete(key)
                self.timed_end(t0)
                self.bump(F_DELS)
                return
            use_add = r < 0.15
            seq = self.q[self.b + F_SEQ] + 1
            self.q[self.b + F_SEQ] = seq  # persisted before the write: never reused
            length = value_size(rng)
            ttl = rng.uniform(0.02, 2.0) if rng.random() < 0.15 else None
            numpy_kind = rng.random() < 0.4
            dcode = rng.choice((1, 2, 3, 4)) if numpy_kind else 0
            exp = time.time_ns() + int(ttl * 1e9) if ttl else 0
            val, shape = make_value(rng, self.pool, w, k, seq, length, exp,
                                    1 if numpy_kind else 0, dcode)
            if numpy_kind:
                arr = np.frombuffer(val, dtype=DTYPES[dcode]).reshape(shape)
                t0 = self.start()
                cache.set_numpy(key, arr, ttl=ttl)
                self.timed_end(t0)
                self.bump(F_SETNP)
            elif use_add:
                t0 = self.start()
                cache.add(key, val, ttl=ttl)  # only if absent
                self.timed_end(t0)
            else:
                t0 = self.start()
                cache.set(key, val, ttl=ttl)
                self.timed_end(t0)
            self.bump(F_SETS)
            self.bump(F_BYTES_WR, length)
            if ttl:
                self.bump(F_TTLSETS)
        except cachee.CacheFullError:
            self.q[self.b + F_OPSTART] = 0
            self.bump(F_FULL)
        except cachee.CacheError as e:
            self.q[self.b + F_OPSTART] = 0
            self.fail(F_ERRORS, "write %s: %s: %s" % (key, type(e).__name__, e))

    # -- diagnostics (--diag-pins): compare our own slot's pin totals in the
    # region (layout of include/cachee_l0.h) with what we hold, after every
    # operation; the first difference names the operation that caused it
    def diag_open(self):
        mm = map_region(self.cfg["path"])
        me = os.getpid()
        for _, o, state, _, pid in process_slots(mm):
            if state == SLOT_ACTIVE and pid == me:
                self.diag = (mm, o)
                self.diag_bad = False
                return

    def diag_pins(self):
        npins, pinned = slot_pins(*self.diag)
        bad = (npins, pinned) != (len(self.holds), self.held_bytes)
        if bad and not self.diag_bad:
            self.fail(F_ERRORS, "diag: after %s the slot has %d pins / %d B, we hold %d / %d B" %
                      (self.last_op, npins, pinned, len(self.holds), self.held_bytes))
        self.diag_bad = bad

    def run(self):
        q, b = self.q, self.b
        first = True
        write_p = {ROLE_WRITER: 1.0, ROLE_READER: 0.0, ROLE_MIXED: 0.10}[self.role]
        ppid = os.getppid()
        n = 0
        while not q[G_STOP]:
            self.freeze_point()
            if self.role == ROLE_READER and bool(q[G_HOARD]) != self.hoarding:
                self.hoarding = not self.hoarding
                if not self.hoarding:
                    self.end_hoard()
            if write_p >= 1.0 or (write_p > 0 and self.rng.random() < write_p):
                self.write_op()
            else:
                self.read_op()
            self.release_due()
            if self.diag is not None:
                self.diag_pins()
            if first:
                q[b + F_READY] = 1
                first = False
                if self.cfg.get("diag_pins") and self.role != ROLE_WRITER:
                    self.diag_open()
            n += 1
            if n & 255 == 0 and os.getppid() != ppid:
                break  # supervisor gone
        self.release_due(all_=True)


def worker_main(sh, slot, role, cfg, sup_cache, seed):
    """Body of a forked worker; never returns."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _prctl_pdeathsig()
        rng = random.Random(seed)
        # half the workers keep the handle inherited through fork (the
        # gunicorn --preload pattern), the others open the region by path
        cfg = dict(cfg, _sup=sup_cache)
        if rng.random() < 0.5:
            cache = sup_cache
        else:
            sup_cache.close()
            cache = cachee.SharedCache.open(cfg["path"], view_cache=0)
        if role == ROLE_READER and rng.random() < cfg.get("hog_p", 0):
            # a pin hog: holds many views, and big ones, for longer, so that
            # writers run into pinned space (CacheFullError is allowed)
            cfg = dict(cfg, hold_p=0.6, hold_max=64, hold_bytes=cfg["hog_bytes"],
                       hold_mean_s=0.5, hold_cap_s=3.0)
        Worker(sh, slot, role, cache, cfg, rng).run()
        cache.close()
    except BaseException:
        code = 3
        try:
            sh.set_text(slot, "worker crashed: " + traceback.format_exc()[-400:])
            traceback.print_exc()
        except BaseException:
            pass
    finally:
        os._exit(code)
