"""The tiers beyond L0 (L1 through libcachee.so, the Go core), loaded lazily
and fork-safely: nothing at import or construction; the first L0 miss of a
cache with l1_bytes loads the library in the process that needs it; a fork
child of a process that loaded it keeps L0 and gets ForkError for the tiers;
processes forked before (children, grandchildren), spawned or forkserver
children load their own.  Every scenario that loads the library runs in a
fresh interpreter: the pytest process itself never starts a Go runtime (its
other tests fork)."""
import json
import subprocess
import sys

import pytest

import cachee
import cachee_testutil as tu

needs_lib = pytest.mark.skipif(not tu.libcachee_available(), reason=tu.NO_LIBCACHEE)

PRELUDE = r"""
import json, os, sys, threading
import cachee
from cachee import _cachee
PATH = sys.argv[1]
def tasks():
    return len(os.listdir("/proc/self/task"))
def mapped():
    return "libcachee" in open("/proc/self/maps").read()
def state():
    return _cachee._tiers_state()
def run_child(fn):
    # fork, run fn in the child, return what it printed as JSON
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = fn()
        except BaseException as e:
            out = {"crash": "%s: %s" % (type(e).__name__, e)}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.waitpid(pid, 0)
    return json.loads(data)
def err(fn):
    try:
        fn()
        return None
    except Exception as e:
        return [type(e).__name__, str(e)]
out = {}
"""


def run(code, region, timeout=300, **env):
    r = subprocess.run([sys.executable, "-c", PRELUDE + code, region],
                       env=tu.child_env(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", **env),
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines, r.stderr
    return json.loads(lines[-1])


def test_l1_bytes_loads_nothing_until_a_miss(region_path):
    code = r"""
before = [threading.active_count(), tasks()]
c = cachee.SharedCache(PATH, size_bytes=16 << 20, l1_bytes=1 << 20)
c.set("a", b"1"); c.get("a"); c.set_numpy("n", __import__("numpy").ones(3)); c.get_numpy("n")
c.delete("a"); c.stats(); "n" in c; c.get_many(["n"])
out["after_use"] = [threading.active_count(), tasks()]
out["before"] = before
out["mapped"] = mapped()
out["state"] = state()
out["tiers_stat"] = c.stats().get("tiers", "absent")
out["l1_stat"] = c.stats().get("l1_bytes")
print(json.dumps(out))
"""
    out = run(code, region_path)
    assert out["after_use"] == out["before"], out
    assert out["mapped"] is False and out["state"]["loaded"] is False, out
    assert out["tiers_stat"] is None and out["l1_stat"] == 1 << 20, out


def test_without_l1_bytes_a_miss_never_loads(region_path):
    code = r"""
c = cachee.SharedCache(PATH, size_bytes=16 << 20)
c.get("zz"); "zz" in c; c.get_numpy("zz"); c.get_many(["zz"]); c.get_buffer("zz")
out["mapped"] = mapped()
out["tiers"] = c.stats().get("tiers", "absent")
print(json.dumps(out))
"""
    out = run(code, region_path)
    assert out == {"mapped": False, "tiers": "absent"}, out


def test_bad_l1_bytes(region_path):
    with pytest.raises(ValueError):
        cachee.SharedCache(region_path, size_bytes=tu.REGION_BYTES, l1_bytes=-1)
    with pytest.raises(TypeError):
        cachee.SharedCache(region_path, size_bytes=tu.REGION_BYTES, l1_bytes="1")
    with pytest.raises(TypeError):
        cachee.SharedCache(region_path, size_bytes=tu.REGION_BYTES, l1_bytes=True)
    with pytest.raises(ValueError):
        cachee.SharedCache(region_path, size_bytes=tu.REGION_BYTES, l1_bytes=1 << 60)
    c = cachee.SharedCache(region_path, size_bytes=tu.REGION_BYTES, l1_bytes=0)
    assert "tiers" not in c.stats()  # 0: no tiers at all
    c.close()


def test_missing_library_is_a_clear_error_and_l0_keeps_working(region_path):
    code = r"""
c = cachee.SharedCache(PATH, size_bytes=16 << 20, l1_bytes=1 << 20)
c.set("a", b"1")
out["miss"] = err(lambda: c.get("zz"))
out["again"] = err(lambda: "zz" in c)
out["hit"] = c.get("a").decode()
c.set("b", b"2"); out["b"] = c.get("b").decode()
out["subclass"] = issubclass(cachee.TiersUnavailableError, cachee.CacheError)
print(json.dumps(out))
"""
    out = run(code, region_path, CACHEE_LIBCACHEE="/nonexistent/libcachee.so")
    assert out["miss"][0] == "TiersUnavailableError", out
    assert "Go" in out["miss"][1] and "/nonexistent/libcachee.so" in out["miss"][1], out
    assert out["again"][0] == "TiersUnavailableError", out
    assert out["hit"] == "1" and out["b"] == "2" and out["subclass"], out


@needs_lib
def test_first_miss_loads_the_tiers_and_they_work(region_path):
    code = r"""
import numpy as np
c = cachee.SharedCache(PATH, size_bytes=16 << 20, l1_bytes=1 << 20)
c.set("a", b"1"); c.set_numpy("n", np.arange(4.0))
out["miss"] = c.get("zz", "dflt")
out["loaded"] = state()
out["mapped"] = mapped()
out["reads"] = [c.get("a").decode(), c.get_numpy("n").tolist(), "zz" in c, "a" in c,
                c.get_numpy("zz"), c.get_buffer("zz"), sorted(c.get_many(["a", "zz"]))]
out["getitem"] = err(lambda: c["zz"])
out["batch"] = err(lambda: c.get_numpy_batch(["n", "zz"]))
c.set("w", b"x"); out["del"] = [c.delete("w"), c.delete("w")]
c["w"] = b"y"; del c["w"]; out["delitem"] = err(lambda: c.__delitem__("w"))
out["get_or_load"] = c.get_or_load("computed", lambda k: b"v").decode()
tiers = c.stats()["tiers"]
out["names"] = [t["name"] for t in tiers]
out["l1_misses"] = [t["misses"] for t in tiers if t["name"] == "l1"][0]
out["goroutines_open"] = _cachee._tiers_goroutines()
c.close()
out["after_close"] = _cachee._tiers_goroutines()
print(json.dumps(out))
"""
    out = run(code, region_path)
    assert out["miss"] == "dflt"
    st = out["loaded"]
    assert st["loaded"] and st["usable"] and not st["forked"] and st["error"] == "", st
    assert st["path"].endswith("libcachee.so") and out["mapped"], out
    assert out["reads"] == ["1", [0.0, 1.0, 2.0, 3.0], False, True, None, None, ["a"]], out
    assert out["getitem"][0] == "KeyError" and out["batch"][0] == "KeyError", out
    assert out["del"] == [True, False] and out["delitem"][0] == "KeyError", out
    assert out["get_or_load"] == "v"
    assert "l1" in out["names"] and out["l1_misses"] >= 5, out
    assert out["goroutines_open"][1] == 1 and out["after_close"][1] == 0, out


@needs_lib
def test_fork_after_tiers_were_used_child_gets_fork_error_l0_works(region_path):
    code = r"""
import multiprocessing as mp
c = cachee.SharedCache(PATH, size_bytes=16 << 20, l1_bytes=1 << 20)
c.set("a", b"parent")
c.get("absent")  # loads the tiers here
def child():
    o = {"state": state()}
    o["hit"] = c.get("a").decode()
    o["miss"] = err(lambda: c.get("absent"))
    o["contains"] = err(lambda: "absent" in c)
    o["numpy"] = err(lambda: c.get_numpy("absent"))
    o["many"] = err(lambda: c.get_many(["a", "absent"]))
    c.set("from-child", b"c"); o["set"] = c.get("from-child").decode()
    o["delete"] = c.delete("from-child")
    o["stats_tiers"] = c.stats()["tiers"]
    o["fresh"] = err(lambda: cachee.SharedCache(PATH, l1_bytes=1 << 20).get("absent"))
    o["grandchild"] = run_child(lambda: {"miss": err(lambda: c.get("absent")),
                                         "hit": c.get("a").decode()})
    return o
out["child"] = run_child(child)
# multiprocessing's fork start method too
q = mp.get_context("fork").SimpleQueue()
def mp_child():
    q.put(err(lambda: c.get("absent")))
p = mp.get_context("fork").Process(target=mp_child); p.start(); p.join(300)
out["mp"] = q.get()
out["parent_still_works"] = c.get("absent", "d")
print(json.dumps(out))
"""
    out = run(code, region_path)
    ch = out["child"]
    assert "crash" not in ch, ch
    assert ch["state"]["forked"] and not ch["state"]["usable"], ch
    assert ch["hit"] == "parent" and ch["set"] == "c" and ch["delete"] is True, ch
    for k in ("miss", "contains", "numpy", "many", "fresh"):
        assert ch[k][0] == "ForkError", (k, ch)
    msg = ch["miss"][1]
    assert "fork" in msg and "post_fork" in msg and "spawn" in msg, msg
    assert ch["stats_tiers"] is None, ch
    assert ch["grandchild"]["miss"][0] == "ForkError" and ch["grandchild"]["hit"] == "parent"
    assert out["mp"][0] == "ForkError", out
    assert out["parent_still_works"] == "d"


@needs_lib
def test_fork_before_tiers_were_used_children_and_grandchildren_load_their_own(region_path):
    code = r"""
c = cachee.SharedCache(PATH, size_bytes=16 << 20, l1_bytes=1 << 20)
c.set("a", b"parent")
def child():
    o = {"miss": c.get("absent"), "state": state(), "pid": os.getpid()}
    o["tiers"] = [t["name"] for t in c.stats()["tiers"]]
    # a grandchild forked after this child loaded the tiers: ForkError
    o["grandchild_after"] = run_child(lambda: {"miss": err(lambda: c.get("absent")),
                                               "hit": c.get("a").decode()})
    return o
def child_that_forks_first():
    # this child has not loaded the tiers: its child loads its own
    return run_child(lambda: {"miss": c.get("absent"), "state": state(),
                              "pid": os.getpid()})
out["children"] = [run_child(child) for _ in range(2)]
out["grandchild_before"] = run_child(child_that_forks_first)
out["parent_state"] = state()
print(json.dumps(out))
"""
    out = run(code, region_path)
    for ch in out["children"]:
        assert "crash" not in ch, ch
        assert ch["miss"] is None and "l1" in ch["tiers"], ch
        st = ch["state"]
        assert st["loaded"] and st["usable"] and st["pid"] == ch["pid"], ch
        assert ch["grandchild_after"]["miss"][0] == "ForkError", ch
        assert ch["grandchild_after"]["hit"] == "parent", ch
    g = out["grandchild_before"]
    assert "crash" not in g and g["miss"] is None, g
    assert g["state"]["usable"] and g["state"]["pid"] == g["pid"], g
    assert out["parent_state"]["loaded"] is False, out  # the parent never loaded it


@needs_lib
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spawn_and_forkserver_children_use_tiers(region_path, method):
    code = r"""
import multiprocessing as mp
import tiers_helper
c = cachee.SharedCache(PATH, size_bytes=16 << 20, l1_bytes=1 << 20)
c.set("a", b"parent")
c.get("absent")  # the parent uses the tiers too
ctx = mp.get_context(sys.argv[2])
with ctx.Pool(2) as pool:
    out["children"] = pool.map(tiers_helper.use_tiers, [PATH] * 4)
print(json.dumps(out))
"""
    r = subprocess.run([sys.executable, "-c", PRELUDE + code, region_path, method],
                       env=tu.child_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for ch in out["children"]:
        assert ch["hit"] == "parent" and ch["miss"] is None, ch
        assert ch["state"]["usable"] and ch["state"]["pid"] == ch["pid"], ch
        assert "l1" in ch["tiers"], ch


@needs_lib
def test_threads_racing_to_load_the_tiers(region_path):
    code = r"""
c = cachee.SharedCache(PATH, size_bytes=16 << 20, l1_bytes=1 << 20)
errs = []
def reader():
    try:
        for i in range(50):
            assert c.get("absent-%d" % i) is None
    except Exception as e:
        errs.append(repr(e))
ths = [threading.Thread(target=reader) for _ in range(8)]
for t in ths: t.start()
for t in ths: t.join()
out["errs"] = errs
out["handles"] = _cachee._tiers_goroutines()[1]
print(json.dumps(out))
"""
    out = run(code, region_path)
    assert out == {"errs": [], "handles": 1}, out


@needs_lib
def test_close_racing_a_tier_read_is_closed_error_not_a_crash(region_path):
    code = r"""
c = cachee.SharedCache(PATH, size_bytes=16 << 20, l1_bytes=1 << 20)
c.get("absent")
results = []
def reader():
    for i in range(2000):
        try:
            c.get("absent-%d" % i)
        except cachee.ClosedError:
            results.append("closed")
            return
    results.append("done")
t = threading.Thread(target=reader); t.start()
c.close()
t.join()
out["results"] = results
out["handles"] = _cachee._tiers_goroutines()[1]
print(json.dumps(out))
"""
    out = run(code, region_path)
    assert out["results"] in (["closed"], ["done"]) and out["handles"] == 0, out



@needs_lib
@pytest.mark.parametrize("l1", [None, 1 << 20])
def test_one_process_is_one_slot_with_and_without_tiers(region_path, l1):
    """The Go core's L0 handle shares the extension's process slot: loading
    the tiers, demoting, promoting and reading their stats add no slot."""
    code = r"""
c = cachee.SharedCache(PATH, size_bytes=16 << 20, l1_bytes=%r)
def live():
    return c.stats()["live_processes"]
out["counts"] = [live()]
c.get("missing"); out["counts"].append(live())   # loads the tiers (with l1)
c.set("b", b"2"); out["counts"].append(live())
for i in range(3000):                             # evicts: demotion into L1
    c.set("fill-%%d" %% i, b"x" * 8192)
c.get("fill-1"); c.get("fill-2")                  # L1 hits, promoted
c.delete("b"); c.get_many(["x", "y"]); "z" in c
c.get_or_load("computed", lambda k: b"v")
out["counts"].append(live())
out["tiers"] = [t["name"] for t in (c.stats().get("tiers") or [])]
out["demoted"] = (c.stats().get("demotion") or {}).get("demoted", 0)
c.close()
o = cachee.SharedCache(PATH)
out["after_close"] = o.stats()["live_processes"]
print(json.dumps(out))
""" % (l1,)
    out = run(code, region_path)
    assert out["counts"] == [1, 1, 1, 1], out
    assert out["after_close"] == 1, out
    if l1:
        assert "l1" in out["tiers"] and out["demoted"] > 0, out


@needs_lib
def test_fork_workers_that_load_the_tiers_take_one_slot_each(region_path):
    code = r"""
import multiprocessing as mp
ctx = mp.get_context("fork")
c = cachee.SharedCache(PATH, size_bytes=16 << 20, l1_bytes=1 << 20)
c.set("a", b"parent")            # the parent never loads the tiers
met = ctx.Barrier(4, timeout=300)
done = ctx.Barrier(4, timeout=300)
q = ctx.SimpleQueue()
def worker(i):
    c.get("miss-%d" % i)           # loads this worker's own tiers
    c.set("w-%d" % i, b"x")
    met.wait()                     # all four registered
    q.put([state()["usable"], c.stats()["live_processes"]])
    done.wait()                    # nobody leaves before all have counted
ps = [ctx.Process(target=worker, args=(i,)) for i in range(4)]
for p in ps: p.start()
out["workers"] = sorted(q.get() for _ in ps)
for p in ps: p.join(120)
out["exit"] = [p.exitcode for p in ps]
out["parent_loaded"] = state()["loaded"]
out["after"] = c.stats()["live_processes"]
print(json.dumps(out))
"""
    out = run(code, region_path, timeout=600)
    assert out["workers"] == [[True, 5]] * 4, out
    assert out["exit"] == [0] * 4 and out["parent_loaded"] is False, out
    assert out["after"] == 1, out
