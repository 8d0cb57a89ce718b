"""Process models: no runtime or thread at import; regions created in a
parent are usable at once in fork/spawn/forkserver children, grandchildren
and Pool workers; children's writes are visible to the parent; views
inherited through fork stay valid in the child; dead processes are reaped."""
import gc
import json
import multiprocessing as mp
import os
import select
import subprocess
import sys
import time

import numpy as np
import pytest

import cachee_testutil as tu
import procs_helper as ph
from cachee import SharedCache

METHODS = [m for m in ("fork", "spawn", "forkserver") if m in mp.get_all_start_methods()]


def test_import_and_cache_start_no_thread_and_no_runtime(region_path):
    code = r"""
import json, os, sys, threading
def tasks():
    return len(os.listdir("/proc/self/task"))
import numpy  # numpy's BLAS may start threads of its own: count after it
out = {"before": [threading.active_count(), tasks()]}
import cachee
out["after_import"] = [threading.active_count(), tasks()]
c = cachee.SharedCache(sys.argv[1], size_bytes=16 << 20)
c.set("a", b"1"); c.get("a"); c.set_numpy("n", numpy.ones(4)); c.get_numpy("n")
c.get_view("a"); c.stats(); c.check(); "a" in c; c.delete("a")
out["after_use"] = [threading.active_count(), tasks()]
pid = os.fork()
if pid == 0:
    ok = c.get_numpy("n") is not None and threading.active_count() == 1 and tasks() == 1
    os._exit(0 if ok else 3)
out["child_status"] = os.waitpid(pid, 0)[1]
c.close()
out["after_close"] = [threading.active_count(), tasks()]
maps = open("/proc/self/maps").read()
out["runtime_libs"] = sorted({l.split()[-1] for l in maps.splitlines()
                              if any(s in l for s in ("libcachee", "libgo", "golang"))})
print(json.dumps(out))
"""
    env = tu.child_env(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code, region_path], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["after_import"] == out["before"], out
    assert out["after_use"] == out["before"], out
    assert out["after_close"] == out["before"], out
    assert out["child_status"] == 0, out
    assert out["runtime_libs"] == [], out


@pytest.mark.parametrize("method", METHODS)
def test_children_and_grandchildren(region_path, method):
    cache = SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    ph.fill(cache)
    ctx = mp.get_context(method)
    arg = cache if method == "fork" else region_path
    p = ctx.Process(target=ph.process_main, args=(arg, method, 1, 2))
    p.start()
    try:
        p.join(300)
        assert p.exitcode == 0
    finally:
        tu.stop_processes([p])
    # what the child and the grandchild wrote is visible in the parent
    assert cache.get("from-%s-depth1" % method) == b"%d" % p.pid
    gpid = cache.get("from-%s-depth2" % method)
    assert gpid is not None and int(gpid) not in (os.getpid(), p.pid)
    for d in (1, 2):
        assert cache.get_numpy("arr-%s-depth%d" % (method, d)).tolist() == [d] * 8
    ph.verify(cache)
    cache.check()
    cache.close()


@pytest.mark.parametrize("method", [m for m in METHODS if m in ("fork", "spawn")])
def test_pool(region_path, method):
    cache = SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    ph.fill(cache)
    ctx = mp.get_context(method)
    if method == "fork":
        ph.set_pool_cache(cache)  # inherited by the workers
        pool = ctx.Pool(3)
    else:
        pool = ctx.Pool(3, initializer=ph.pool_init, initargs=(region_path,))
    try:
        results = pool.map(ph.pool_task, range(ph.N), chunksize=1)
    finally:
        pool.close()
        pool.join()
        ph.set_pool_cache(None)
    for i, (pid, val, total) in enumerate(results):
        assert pid != os.getpid()
        assert val == ph.value(i)
        assert total == pytest.approx(float(ph.vector(i).sum()))
        assert cache.get("pool-%d" % i) == b"%d:%d" % (i, pid)
    cache.close()


# ------------------------------------------------- views through fork


def _wait_readable(fd, timeout=300):
    r, _, _ = select.select([fd], [], [], timeout)
    assert r, "timed out waiting for the other process"


def test_inherited_views_stay_valid_in_child(region_path):
    """A child keeps the views it inherited even after the parent dropped
    them and the key was overwritten and its segment evicted many times."""
    c = SharedCache(region_path, size_bytes=2 << 20, view_cache=0)
    data = os.urandom(8192)
    arr0 = np.frombuffer(os.urandom(4096), dtype=np.float32)
    c.set("k", data)
    c.set_numpy("n", arr0)
    mv = c.get_buffer("k")
    view = c.get_view("k")
    arr = c.get_numpy("n")
    part = arr[100:200]
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 1
        try:
            os.close(go_w)
            _wait_readable(go_r)
            os.read(go_r, 1)
            ok = (bytes(mv) == data and bytes(view) == data and
                  arr.tobytes() == arr0.tobytes() and
                  part.tobytes() == arr0[100:200].tobytes())
            # the child can read and write the region as well
            c.set("child-wrote", b"yes")
            ok = ok and c.get("child-wrote") == b"yes"
            del mv, view, arr, part  # releasing inherited views is fine
            gc.collect()
            os.write(res_w, b"1" if ok else b"0")
            status = 0
        finally:
            os._exit(status)
    os.close(go_r)
    os.close(res_w)
    try:
        # the parent drops every view, then overwrites and churns the region
        del mv, view, arr, part
        gc.collect()
        assert c.stats()["pins"] >= 1, "the child's copies of the pins are gone"
        before = c.stats()["evictions"]
        for i in range(200):
            c.set("k", b"new-%d" % i)
            c.set_numpy("n", np.full(1024, i, dtype=np.float32))
        for i in range(1500):  # 6 MiB through a 2 MiB region
            c.set("filler%d" % (i % 400), os.urandom(4096))
        s = c.stats()
        assert s["evictions"] > before
        assert s["limbo_bytes"] > 0  # evicted segments kept only for the child's pins
        os.write(go_w, b"g")
        _wait_readable(res_r)
        assert os.read(res_r, 1) == b"1", "inherited views changed in the child"
        _, st = os.waitpid(pid, 0)
        assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0
    finally:
        tu.kill_all([pid])
    assert c.get("child-wrote") == b"yes"
    assert c.stats()["pins"] == 0
    c.check()
    c.close()


def test_dead_children_are_reaped(region_path):
    """Children that die holding pins (no cleanup: os._exit) are reaped: their
    slots and pins come back, live_processes counts only the living."""
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES, view_cache=0)
    c.set("k", b"x" * 1000)
    c.stats()
    for n in range(3):
        held = c.get_buffer("k")  # inherited by the child, copied pin
        pid = os.fork()
        if pid == 0:
            ok = False
            try:
                v = c.get_view("k")  # and one of its own
                ok = bytes(v) == b"x" * 1000 and bytes(held) == b"x" * 1000
                c.set("child%d" % n, b"alive")
            finally:
                os._exit(0 if ok else 1)  # dies holding both pins
        _, st = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(st) == 0
        del held
        gc.collect()
        assert c.get("child%d" % n) == b"alive"
        s = c.stats()  # reaps dead processes first
        assert s["live_processes"] == 1, "child %d still counted alive: %r" % (n, s)
        assert s["pins"] == 0, "child %d's pins leaked: %r" % (n, s)
    assert c.stats()["reaped_processes"] >= 3
    c.check()
    c.close()


def _reader(path, n, ready_w, step_r, done_w):
    c = SharedCache.open(path)
    os.write(ready_w, b"r")
    for i in range(n):
        _wait_readable(step_r)
        os.read(step_r, 1)
        x = c.get_numpy("weights")
        ok = x is not None and x[0] == i
        del x  # this process keeps no reference
        os.write(done_w, b"1" if ok else b"0")


def test_reader_process_does_not_block_writer(region_path):
    """A reader process that drops every array it reads must not keep old
    versions pinned: the writer can overwrite a large value forever."""
    w = SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    n = 60  # 60 versions of 1 MiB through a 16 MiB region
    ready_r, ready_w = os.pipe()
    step_r, step_w = os.pipe()
    done_r, done_w = os.pipe()
    ctx = mp.get_context("fork")
    p = ctx.Process(target=_reader, args=(region_path, n, ready_w, step_r, done_w))
    w.set_numpy("weights", np.full(1 << 17, -1, dtype=np.float64))
    p.start()
    try:
        _wait_readable(ready_r)
        os.read(ready_r, 1)
        for i in range(n):
            w.set_numpy("weights", np.full(1 << 17, i, dtype=np.float64))
            os.write(step_w, b"s")
            _wait_readable(done_r)
            assert os.read(done_r, 1) == b"1"
    finally:
        p.terminate()
        p.join(60)
        tu.stop_processes([p])
    w.close()


def test_child_spawned_by_subprocess_sees_data(region_path):
    """A process started from scratch (exec, not fork) attaches by path."""
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    ph.fill(c)
    code = ("import sys, cachee, procs_helper as ph\n"
            "c = cachee.SharedCache.open(sys.argv[1])\n"
            "ph.verify(c)\n"
            "c.set('exec-child', b'ok')\n")
    r = subprocess.run([sys.executable, "-c", code, region_path], env=tu.child_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert c.get("exec-child") == b"ok"
    c.close()


def test_concurrent_writers_in_processes(region_path):
    """Several processes write and read the same keys at once; every read
    sees a complete value of one writer, never a torn one."""
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    ctx = mp.get_context("fork")
    deadline = time.monotonic() + 1.0

    def work(wid):
        i = 0
        while time.monotonic() < deadline:
            c.set_numpy("shared%d" % (i % 8), np.full(256, wid * 1000000 + i, dtype=np.int64))
            a = c.get_numpy("shared%d" % ((i + 3) % 8))
            if a is not None:
                assert (a == a[0]).all(), "torn value"
            b = c.get("shared%d" % ((i + 5) % 8))
            if b is not None:
                x = np.frombuffer(b, dtype=np.int64)
                assert (x == x[0]).all(), "torn copy"
            i += 1

    procs = [ctx.Process(target=work, args=(w,)) for w in range(3)]
    try:
        for p in procs:
            p.start()
        work(9)
        for p in procs:
            p.join(300)
            assert p.exitcode == 0
    finally:
        tu.stop_processes(procs)
    c.check()
    c.close()


def _mapped_inodes(path):
    """Inodes of this process's mappings shown under `path`, and the names
    under which mappings of the file at `path` appear otherwise."""
    ino = os.stat(path).st_ino
    named, other = set(), set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) < 6 or int(parts[4]) == 0:
                continue
            name = parts[5].rstrip("\n")
            if name == path:
                named.add(int(parts[4]))
            elif int(parts[4]) == ino and name.startswith("/dev/shm/"):
                other.add(name)
    return named, other


def test_many_processes_open_one_new_region_at_once(region_path):
    """What `uvicorn --workers 12` does at every start: 12 processes create
    or attach to one path at the same moment.  Every one succeeds, all map
    the same file, and every mapping carries the region's path (the
    creator's too).  Rounds alternate between a fresh path and an existing
    region; CACHEE_TEST_LONG=1 runs 2,000 rounds."""
    procs = 12
    rounds = 2000 if os.environ.get("CACHEE_TEST_LONG") else 40
    failures = []
    for rnd in range(rounds):
        if rnd % 2 == 0:
            tu.remove_path(region_path)
        gate_r, gate_w = os.pipe()
        res_r, res_w = os.pipe()
        pids = []
        for i in range(procs):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                code = 1
                try:
                    os.close(gate_w)
                    os.read(gate_r, 1)  # all start together
                    c = SharedCache(region_path, size_gb=0.0625, open_timeout=60)
                    named, other = _mapped_inodes(region_path)
                    c.set("p%d" % i, b"x")
                    msg = "%d %d %s\n" % (i, min(named) if len(named) == 1 else -1,
                                          "|".join(sorted(other)))
                    os.write(res_w, msg.encode())
                    c.close()
                    code = 0
                except BaseException as e:  # noqa: BLE001 - reported to the parent
                    os.write(res_w, ("%d error %s: %s\n" % (i, type(e).__name__, e)).encode())
                os._exit(code)
            pids.append(pid)
        os.close(gate_r)
        os.close(res_w)
        os.write(gate_w, b"g" * procs)
        os.close(gate_w)
        data = b""
        while True:
            chunk = os.read(res_r, 65536)
            if not chunk:
                break
            data += chunk
        os.close(res_r)
        codes = [os.waitpid(p, 0)[1] for p in pids]
        lines = data.decode().splitlines()
        ino = os.stat(region_path).st_ino
        bad = [l for l in lines if "error" in l or l.split(" ", 2)[1] != str(ino)
               or l.split(" ", 2)[2:] not in ([], [""])]
        if bad or any(codes) or len(lines) != procs:
            failures.append((rnd, codes, bad or lines))
    c = SharedCache(region_path)
    assert c.stats()["live_processes"] == 1
    c.close()
    assert failures == [], failures[:3]
    print("%d rounds of %d processes: 0 failures" % (rounds, procs))
