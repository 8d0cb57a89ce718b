"""Memory is really shared: W worker processes that read every byte of a
D-byte data set from cachee add about D to the machine's total PSS (one copy,
split among the processes), where per-process dicts of the same arrays add
about W x D.  Loose bounds: this is a smoke test of the design, not a
benchmark."""
import gc
import os
import select

import numpy as np
import pytest

import cachee_testutil as tu
from cachee import SharedCache

MIB = 1 << 20
W = 4
N = 2048
DIM = 4096           # float32: 16 KiB per value
D = N * DIM * 4      # 32 MiB of data


def _send(fd, b):
    os.write(fd, b)


def _recv(fd, timeout=120):
    r, _, _ = select.select([fd], [], [], timeout)
    assert r, "timed out"
    b = os.read(fd, 1)
    assert b, "peer died"
    return b


def _worker(cache, cmd_r, ack_w):
    keys = ["v%d" % i for i in range(N)]
    gc.collect()
    _send(ack_w, b"b")                 # baseline: nothing touched yet
    _recv(cmd_r)
    total = 0.0
    for k in keys:                     # touch every byte of every value
        total += float(cache.get_numpy(k).sum())
    _send(ack_w, b"t")
    _recv(cmd_r)
    own = {k: np.array(cache.get_numpy(k)) for k in keys}  # a per-process dict
    total2 = sum(float(a.sum()) for a in own.values())
    _send(ack_w, b"d" if total2 == total else b"x")
    _recv(cmd_r)


def test_workers_share_one_copy(region_path):
    st = os.statvfs("/dev/shm")
    if st.f_bavail * st.f_frsize < 4 * D:
        pytest.skip("/dev/shm too small")
    cache = SharedCache(region_path, size_bytes=5 * D)
    rng = np.random.default_rng(0)
    for i in range(N):
        cache.set_numpy("v%d" % i, rng.random(DIM, dtype=np.float32))
    assert len(cache) == N
    workers = []
    try:
        for _ in range(W):
            cmd_r, cmd_w = os.pipe()
            ack_r, ack_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    _worker(cache, cmd_r, ack_w)
                    code = 0
                finally:
                    os._exit(code)
            workers.append((pid, cmd_w, ack_r))

        def step(expect):
            for pid, cmd_w, ack_r in workers:
                assert _recv(ack_r) == expect
            return [tu.pss_kib(pid) * 1024 for pid, _, _ in workers]

        def go():
            for _, cmd_w, _ in workers:
                _send(cmd_w, b"g")

        base = step(b"b")
        go()
        touched = step(b"t")
        go()
        dicts = step(b"d")
        go()
    except BaseException:
        tu.kill_all([pid for pid, _, _ in workers])  # a failed test leaves none behind
        raise
    finally:
        for pid, cmd_w, ack_r in workers:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    shared_growth = sum(touched) - sum(base)
    dict_growth = sum(dicts) - sum(touched)
    report = ("data %.1f MiB, %d workers: PSS baseline %s MiB, after reading via "
              "cachee %s MiB (+%.1f MiB in total), after copying into dicts %s MiB "
              "(+%.1f MiB)" % (
                  D / MIB, W, [round(x / MIB, 1) for x in base],
                  [round(x / MIB, 1) for x in touched], shared_growth / MIB,
                  [round(x / MIB, 1) for x in dicts], dict_growth / MIB))
    print(report)
    # one copy of the data, plus a little per process
    assert shared_growth <= 1.15 * D + W * 4 * MIB, report
    assert sum(touched) <= D + sum(base) + 0.15 * D + W * 4 * MIB, report
    # the per-process dicts really cost about W x D: the measurement works
    assert dict_growth >= 0.8 * W * D, report
    assert shared_growth < 0.5 * dict_growth, report
    cache.close()
