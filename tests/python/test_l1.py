"""L1 filled from Python: what the extension's own L0 handle evicts is
demoted into this process's L1 (cachee_demote), and served from there,
never after another process (or this one) rewrote or deleted the key, and
never after its TTL.

The process with L1 is a child (l1_helper.py, driven one JSON command per
line), because the pytest process must not start a Go runtime (its other
tests fork).  The pytest process plays the OTHER process: it writes L0
without tiers, as any worker does."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import cachee
import cachee_testutil as tu

pytestmark = pytest.mark.skipif(not tu.libcachee_available(), reason=tu.NO_LIBCACHEE)

SMALL = 4 << 20  # a small L0, so that a few thousand writes evict
L1 = 64 << 20


class L1Process:
    """A child process with a SharedCache(l1_bytes=L1) on path."""

    def __init__(self, path, l1_bytes=L1, promote="tinylfu"):
        self.p = subprocess.Popen(
            [sys.executable, os.path.join(tu.TESTS_DIR, "l1_helper.py"), path, str(l1_bytes),
             promote],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=tu.child_env(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"))

    def __call__(self, op, **kw):
        kw["op"] = op
        self.p.stdin.write(json.dumps(kw) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise AssertionError("the L1 process died: " + self.p.stderr.read())
        out = json.loads(line)
        assert "error" not in out, (op, kw, out)
        return out["ok"]

    def close(self):
        try:
            self("close")
        finally:
            self.p.stdin.close()
            try:
                self.p.wait(120)
            finally:
                if self.p.poll() is None:  # hung: stopped all the same
                    self.p.kill()
                    self.p.wait()
                self.p.stdout.close()
                self.p.stderr.close()


@pytest.fixture
def small(region_path):
    """(this process's cache without tiers, an L1 process) on a small region."""
    c = cachee.SharedCache(region_path, size_bytes=SMALL)
    a = L1Process(region_path)
    yield c, a
    a.close()
    c.close()


def demoted(a, prefix, value=lambda i: b"v%06d" % i * 64, n=8):
    """Set keys prefix-0.., evict each from L0 in turn, return those that L1
    now serves with their value (a key can lose its L1 copy to a write of
    another key that shares its generation counter: a spurious miss; and a
    key can stay in L0, see l1_helper.evict)."""
    keys = []
    for i in range(n):
        k = "%s-%d" % (prefix, i)
        a("set", key=k, value=value(i).hex())
        if a("evict", key=k, prefix="fill-%s-%d" % (prefix, i)) >= 0 and a("l1_has", key=k):
            keys.append((k, value(i)))
    assert keys, "no key of %s was demoted into L1" % prefix
    return keys


def test_values_evicted_from_l0_are_served_from_l1(small):
    c, a = small
    # far more than the 4 MiB region holds (~1 KiB each)
    n_bulk = 4000
    for i in range(n_bulk):
        a("set", key="b%d" % i, value=(b"%06d" % i * 170).hex())
    st = a("stats")
    assert st["l0_evictions"] > 0 and st["demotion"]["queued"] > 0, st
    assert st["tiers"]["l1"]["demotions"] > 0 and st["demotion"]["failed"] == 0, st
    served = wrong = 0
    for i in range(n_bulk):
        k = "b%d" % i
        if a("in_l0", key=k):
            continue
        got = a("get", key=k)
        if got["value"] is None:
            continue  # its L1 copy was invalidated by a counter it shares
        served += 1
        wrong += bytes.fromhex(got["value"]) != b"%06d" % i * 170
    assert wrong == 0 and served > n_bulk // 4, (served, wrong)
    st = a("stats")
    assert st["tiers"]["l1"]["hits"] >= served, st

    # get_buffer and get_numpy of L1 hits: exact copies, read-only
    keys = demoted(a, "buf")
    k, v = keys[0]
    got = a("get_buffer", key=k)
    assert bytes.fromhex(got["value"]) == v and got["readonly"] is True, got
    # arrays: get_numpy of an L1 hit is a read-only copy with dtype and shape
    arr = np.arange(300, dtype=np.float32).reshape(20, 15)
    for i in range(8):
        k = "arr-%d" % i
        a("set_numpy", key=k, array=(arr + i).tolist(), dtype=arr.dtype.str)
        if a("evict", key=k, prefix="fill-" + k) >= 0 and a("l1_has", key=k):
            break
    else:
        raise AssertionError("no array was demoted into L1")
    got = a("get_numpy", key=k)["value"]
    assert got["dtype"] == "<f4" and got["writeable"] is False, got
    assert np.array_equal(np.array(got["array"], dtype=np.float32), arr + i), got


def test_another_process_overwriting_or_deleting_is_never_undone(small):
    """A holds k in L1 (evicted from its L0); B (this process) rewrites or
    deletes k; A gets B's value or None, never its old copy, also once B's
    value has itself been evicted from L0."""
    b, a = small
    keys = demoted(a, "x", value=lambda i: b"OLD-%d" % i * 50)
    assert len(keys) >= 3, keys
    (k_over, _), (k_del, _) = keys[1:3]
    spare = [keys[0][0]] + [k for k, _ in keys[3:]]  # keys A holds in L1

    # B overwrites with a value that then leaves L0 without a new write
    # (it expires): A misses L0, finds its old copy, and must drop it.  A
    # must read B's value while it lives: a machine too slow for that (A is
    # another process) tries again, with another of A's keys, for longer.
    used = []

    def live(ttl):
        assert spare, "no key of A left to try"
        used[:] = [spare.pop(0)]
        b.set(used[0], b"NEW" * 50, ttl=ttl)
        got = a("get", key=used[0])
        assert got["value"] is not None and bytes.fromhex(got["value"]) == b"NEW" * 50, got

    tu.sleep_past(*tu.while_alive(live, ttl=0.3))
    k_exp = used[0]
    got = a("get", key=k_exp)
    assert got["value"] is None and not got["l1"], ("resurrected", got)

    # B overwrites, then B's value is evicted from L0 by B's writes (B has no
    # L1), when L0 lets it go: A gets B's value or nothing.
    b.set(k_over, b"NEW" * 50)
    got = a("get", key=k_over)
    assert bytes.fromhex(got["value"]) == b"NEW" * 50, got
    filler = b"g" * 4096
    for i in range(4 * SMALL // 4096):
        if k_over not in b:  # L0 only (no tiers here), frequency untouched
            break
        b.set("bfill-%d" % i, filler)
    got = a("get", key=k_over)
    assert got["value"] is None or bytes.fromhex(got["value"]) == b"NEW" * 50, got

    b.delete(k_del)
    got = a("get", key=k_del)
    assert got["value"] is None and not got["l1"], ("resurrected after delete", got)
    # the rest of A's L1 copies still serve (only the keys written moved)
    for k, v in keys[3:]:
        if k not in spare:
            continue  # written by B above
        got = a("get", key=k)
        assert got["value"] is None or bytes.fromhex(got["value"]) == v, got


def test_ttl_is_honoured_in_l1(small):
    _, a = small
    a("set", key="t", value=(b"ttl" * 100).hex(), ttl=2.0)
    t0 = time.monotonic()
    a("evict", key="t", prefix="fill-t")
    has = a("l1_has", key="t")
    if time.monotonic() - t0 < 1.5:
        assert has, "the TTL'd value was not demoted"
        assert bytes.fromhex(a("get", key="t")["value"]) == b"ttl" * 100
    time.sleep(max(0.0, 2.2 - (time.monotonic() - t0)))
    got = a("get", key="t")
    assert got["value"] is None and not got["l1"], got
    # a value already expired when it is evicted is not demoted at all
    a("set", key="t2", value=b"x".hex(), ttl=0.05)
    time.sleep(0.1)
    a("evict", key="t2", prefix="fill-t2")
    got = a("get", key="t2")
    assert got["value"] is None and not got["l1"], got


def test_own_delete_and_overwrite_drop_the_l1_copy(small):
    _, a = small
    keys = demoted(a, "own", value=lambda i: b"mine-%d" % i * 40)
    assert len(keys) >= 2, keys
    (k1, _), (k2, _) = keys[0], keys[1]
    assert a("delete", key=k1) is True  # it was in L1
    assert a("get", key=k1)["value"] is None
    assert a("delete", key=k1) is False
    a("set", key=k2, value=(b"second" * 40).hex())
    assert bytes.fromhex(a("get", key=k2)["value"]) == b"second" * 40
    a("evict", key=k2, prefix="fill-own2")
    got = a("get", key=k2)
    assert got["value"] is None or bytes.fromhex(got["value"]) == b"second" * 40, got


def test_repeated_l1_hits_promote_back_into_l0(small):
    _, a = small
    keys = demoted(a, "hot", value=lambda i: b"hot-%d" % i * 30)
    k, v = keys[0]
    before = a("stats")["tiers"]
    for _ in range(30):
        got = a("get", key=k)
        assert got["value"] is None or bytes.fromhex(got["value"]) == v, got
        if a("in_l0", key=k):
            break
    assert a("in_l0", key=k), "a key hit 30 times in L1 never came back into L0"
    after = a("stats")["tiers"]
    assert after["l1"]["promotions"] > before["l1"]["promotions"], (before, after)
    assert after["l0"]["promotions"] > before["l0"]["promotions"], (before, after)
    # now an L0 hit, no longer an L1 one
    got = a("get", key=k)
    assert bytes.fromhex(got["value"]) == v and not got["l1"], got


def test_l1_promote_never_keeps_hits_in_l1(region_path):
    c = cachee.SharedCache(region_path, size_bytes=SMALL)
    a = L1Process(region_path, promote="never")
    try:
        k, v = demoted(a, "cold")[0]
        for _ in range(20):
            got = a("get", key=k)
            assert bytes.fromhex(got["value"]) == v and got["l1"], got
        assert not a("in_l0", key=k)
        assert a("stats")["tiers"]["l1"]["promotions"] == 0
    finally:
        a.close()
        c.close()
    with pytest.raises(ValueError, match="l1_promote"):
        cachee.SharedCache(region_path, size_bytes=SMALL, l1_promote="sometimes")


def test_bounded_queue_counts_what_it_drops(region_path):
    """One write that evicts more than the queue holds: the rest is dropped
    and counted, nothing fails, memory stays bounded."""
    c = cachee.SharedCache(region_path, size_bytes=32 << 20)
    a = L1Process(region_path, l1_bytes=1 << 20)  # queue of 8 MiB (its minimum)
    try:
        for i in range(6):  # ~24 MiB of 4 MiB values
            a("set", key="big%d" % i, value=(b"%d" % i * (4 << 20))[: 4 << 20].hex())
        st = a("stats")
        d = st["demotion"]
        assert d["cap_bytes"] == 8 << 20 and d["failed"] == 0 and d["pending_bytes"] == 0, d
        # 4 MiB values do not fit a 1 MiB L1: offered, not stored
        assert st["tiers"]["l1"]["bytes"] <= 1 << 20, st
    finally:
        a.close()
        c.close()


def test_fork_child_of_a_process_with_l1_writes_and_evicts_without_tiers(region_path):
    """The hook of a fork child (whose parent loaded libcachee) queues nothing
    and takes no lock: a child that evicts a lot neither hangs nor calls Go."""
    code = r"""
import json, os, sys, cachee
c = cachee.SharedCache(sys.argv[1], size_bytes=4 << 20, l1_bytes=1 << 26)
c.get("absent")
for i in range(2000):
    c.set("p%d" % i, b"x" * 2048)
q0 = c.stats()["demotion"]["queued"]
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    for i in range(3000):
        c.set("c%d" % i, b"y" * 2048)
    ok = c.get("c2999") == b"y" * 2048
    os.write(w, json.dumps({"ok": ok, "evictions": c.stats()["evictions"]}).encode())
    os._exit(0)
os.close(w)
child = json.loads(os.read(r, 4096))
os.waitpid(pid, 0)
c.set("after", b"z")
print(json.dumps({"child": child, "q0": q0, "q1": c.stats()["demotion"]["queued"],
                  "failed": c.stats()["demotion"]["failed"]}))
"""
    r = subprocess.run([sys.executable, "-c", code, region_path], env=tu.child_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["child"]["ok"] and out["q0"] > 0 and out["failed"] == 0, out


def test_threads_writing_large_values_while_demoting(region_path):
    """Writers release the GIL for large values: hooks on many threads at
    once, drains racing each other and close()."""
    code = r"""
import json, sys, threading, cachee
c = cachee.SharedCache(sys.argv[1], size_bytes=8 << 20, l1_bytes=1 << 26)
c.get("absent")
errs = []
def writer(t):
    try:
        for i in range(150):
            v = bytes([t]) * (70 << 10)
            c.set("t%d-%d" % (t, i), v)
            got = c.get("t%d-%d" % (t, i // 2))
            if got is not None and got != bytes([t]) * (70 << 10):
                errs.append("wrong value")
    except cachee.ClosedError:
        pass
    except Exception as e:
        errs.append(repr(e))
ths = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
for t in ths: t.start()
for t in ths: t.join()
st = c.stats()
c2 = threading.Thread(target=writer, args=(9,)); c2.start()
c.close(); c2.join()
print(json.dumps({"errs": errs, "demotion": st["demotion"],
                  "l1": [t for t in st["tiers"] if t["name"] == "l1"][0]["demotions"]}))
"""
    r = subprocess.run([sys.executable, "-c", code, region_path], env=tu.child_env(),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["errs"] == [] and out["demotion"]["failed"] == 0, out
    assert out["l1"] > 0 and out["demotion"]["queued"] > 0, out
