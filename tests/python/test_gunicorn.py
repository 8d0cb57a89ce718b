"""gunicorn --preload with 4 workers, started for real: the master fills the
cache at import (gunicorn_app.py), the workers serve the master's values,
and a value one worker stores is read by the others."""
import concurrent.futures
import http.client
import itertools
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

import cachee
import cachee_testutil as tu

pytest.importorskip("gunicorn")

WORKERS = 4
# How long the tests keep sending rounds of concurrent requests until they
# have seen more than one worker answer: workers still booting on a slow,
# loaded machine leave the first rounds to the others (a hang guard).
ROUNDS_FOR = 120.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, timeout=120):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        data = r.read()
        assert r.status == 200, (r.status, data)
        return json.loads(data)
    finally:
        conn.close()


def concurrent_gets(port, paths):
    with concurrent.futures.ThreadPoolExecutor(len(paths)) as ex:
        return list(ex.map(lambda p: request(port, "GET", p), paths))


@pytest.fixture
def server(region_path):
    yield from start_server(region_path)


def start_server(region_path, **env):
    port = free_port()
    log = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "gunicorn", "--preload", "-w", str(WORKERS),
           "-k", "sync", "-b", "127.0.0.1:%d" % port, "--chdir", tu.TESTS_DIR,
           "--timeout", "60", "--graceful-timeout", "5", "gunicorn_app:app"]
    proc = subprocess.Popen(cmd, env=tu.child_env(CACHEE_TEST_REGION=region_path, **env),
                            stdout=log, stderr=subprocess.STDOUT)

    def output():
        log.seek(0)
        return log.read().decode(errors="replace")[-4000:]

    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail("gunicorn exited with %s:\n%s" % (proc.returncode, output()))
            try:
                request(port, "GET", "/get?key=filled_by", timeout=5)
                break
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    pytest.fail("gunicorn did not answer:\n%s" % output())
                time.sleep(0.1)
        yield proc, port, output
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        log.close()


def test_gunicorn_preload_workers_share_the_cache(server, region_path):
    proc, port, output = server
    master = proc.pid

    # 1. every worker serves the values the master stored before fork
    pids = set()
    deadline = time.monotonic() + ROUNDS_FOR
    for round_ in itertools.count():
        keys = [(round_ * 8 + i) % 100 for i in range(8)]  # the master stored 100
        paths = ["/get?key=master:%d&sleep=0.2" % k for k in keys]
        for k, r in zip(keys, concurrent_gets(port, paths)):
            assert r["value"] == "master-value-%d" % k, r
            assert r["master_pid"] == master, r  # filled in the master at import
            assert r["ppid"] == master and r["pid"] != master, r
            pids.add(r["pid"])
        if len(pids) >= WORKERS or (
                round_ >= 2 and (len(pids) >= 2 or time.monotonic() > deadline)):
            break
    assert len(pids) >= 2, "requests all went to one worker: %s\n%s" % (pids, output())
    for r in concurrent_gets(port, ["/numpy?key=vec:%d&sleep=0.05" % i for i in range(8)]):
        assert r["shape"] == [32] and r["dtype"] == "float32", r
    nums = concurrent_gets(port, ["/numpy?key=vec:7", "/numpy?key=vec:50"])
    assert nums[0]["sum"] == 7 * 32 and nums[1]["sum"] == 50 * 32

    # 2. a value one worker stores is read by the others
    stored = request(port, "POST", "/set?key=from-worker", body=b"written by a worker")
    writer = stored["pid"]
    assert writer != master
    others = set()
    deadline = time.monotonic() + ROUNDS_FOR
    while not others and time.monotonic() < deadline:
        rs = concurrent_gets(port, ["/get?key=from-worker&sleep=0.2"] * 8)
        for r in rs:
            assert r["value"] == "written by a worker", r
            if r["pid"] != writer:
                others.add(r["pid"])
    assert others, "no other worker answered (writer %d)\n%s" % (writer, output())

    # 3. the test process, outside gunicorn, sees the same region
    with cachee.SharedCache.open(region_path) as c:
        assert c.get("from-worker") == b"written by a worker"
        assert c.get("filled_by") == b"%d" % master
        c.set("from-outside", b"hello workers")
    rs = concurrent_gets(port, ["/get?key=from-outside&sleep=0.1"] * 4)
    assert all(r["value"] == "hello workers" for r in rs)
    stats = request(port, "GET", "/stats")["stats"]
    # the master and every worker that answered are attached
    assert stats["live_processes"] >= len(pids | others | {writer}) + 1, stats


@pytest.fixture
def server_l1(region_path):
    yield from start_server(region_path, CACHEE_TEST_L1=str(1 << 20))


def test_gunicorn_preload_tiers_configured_at_import_used_after_fork(server_l1, region_path):
    """The app configures L1 (l1_bytes) at import in the master, which does
    not load libcachee; each worker loads its own Go runtime at its first
    miss and uses the tiers; the master never loads them."""
    if not tu.libcachee_available():
        pytest.skip(tu.NO_LIBCACHEE)
    proc, port, output = server_l1
    master = proc.pid
    seen = {}
    deadline = time.monotonic() + ROUNDS_FOR
    for round_ in itertools.count():
        if round_ >= 6 and time.monotonic() > deadline:
            break
        rs = concurrent_gets(port, ["/tiers?key=absent-%d-%d&sleep=0.2" % (round_, i)
                                    for i in range(8)])
        for r in rs:
            assert r["value"] is None, r
            assert r["pid"] != master and r["ppid"] == master, r
            st = r["state"]
            # loaded in this very worker, after the fork
            assert st["loaded"] and st["usable"] and not st["forked"], (r, output())
            assert st["pid"] == r["pid"], r
            names = [t["name"] for t in r["tiers"]]
            assert "l1" in names, r
            seen[r["pid"]] = r
        if len(seen) >= 2:
            break
    assert len(seen) >= 2, "requests all went to one worker\n%s" % output()
    # L0 still serves what the master stored, with tiers loaded
    r = request(port, "GET", "/tiers?key=master:3")
    assert r["value"] == "master-value-3", r
    # the master never loaded the library
    with open("/proc/%d/maps" % master) as f:
        assert "libcachee" not in f.read()
