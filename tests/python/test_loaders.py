"""get_or_load and memoize: one computation per key across processes and
threads, waiters served from L0, takeover when the loader dies or fails,
timeouts, values of both kinds, and bad input that changes nothing."""
import multiprocessing as mp
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

import cachee
import cachee_testutil as tu
import loaders_helper as lh
from cachee import LoadTimeoutError, SharedCache


def test_miss_then_hit_bytes(cache):
    calls = []

    def load(k):
        calls.append(k)
        return bytearray(b"computed:" + k.encode())

    assert cache.get_or_load("a", load) == b"computed:a"
    assert type(cache.get_or_load("a", load)) is bytes
    assert calls == ["a"]
    assert cache.get("a") == b"computed:a"
    # a value that is already there is returned without calling fn
    cache.set("b", b"present")
    assert cache.get_or_load("b", load) == b"present"
    assert calls == ["a"]
    # bytes keys; memoryview values
    assert cache.get_or_load(b"c", lambda k: memoryview(k * 2)) == b"cc"


def test_numpy_values_come_back_as_read_only_views(cache):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    got = cache.get_or_load("arr", lambda k: arr)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == (3, 4)
    assert np.array_equal(got, arr)
    assert not got.flags.writeable
    assert tu.in_region(cache.path, got.ctypes.data, got.nbytes)  # a view, not a copy
    again = cache.get_or_load("arr", lambda k: 1 / 0)
    assert np.array_equal(again, arr)
    # a value stored with set() comes back as bytes, one with set_numpy as an array
    cache.set_numpy("n", np.ones(3))
    assert isinstance(cache.get_or_load("n", lambda k: b"x"), np.ndarray)


def test_ttl(cache):
    n = []
    key = []

    def load(k):
        n.append(1)
        return b"v%d" % len(n)

    def live(ttl):  # a new key for each try
        key[:] = ["t%g" % ttl]
        assert cache.get_or_load(key[0], load, ttl=ttl) == b"v%d" % len(n)
        first = len(n)
        assert cache.get_or_load(key[0], load, ttl=ttl) == b"v%d" % first
        assert len(n) == first  # served, not computed again

    tu.sleep_past(*tu.while_alive(live, ttl=0.2))
    before = len(n)
    assert cache.get_or_load(key[0], load, ttl=0.2) == b"v%d" % (before + 1)


def test_fn_raising_propagates_stores_nothing_and_releases(cache):
    class Boom(Exception):
        pass

    def bad(k):
        raise Boom(k)

    with pytest.raises(Boom):
        cache.get_or_load("k", bad)
    assert "k" not in cache
    # the lock was released: the next caller computes
    assert cache.get_or_load("k", lambda k: b"ok", timeout=1) == b"ok"


def test_waiter_takes_over_when_the_loader_raises(cache):
    entered, release = threading.Event(), threading.Event()
    order = []

    def failing(k):
        order.append("first")
        entered.set()
        release.wait(120)
        raise RuntimeError("loader failed")

    def second(k):
        order.append("second")
        return b"from-second"

    errs, results = [], []

    def t1():
        try:
            cache.get_or_load("k", failing)
        except RuntimeError as e:
            errs.append(e)

    th1 = threading.Thread(target=t1)
    th1.start()
    assert entered.wait(120)
    th2 = threading.Thread(target=lambda: results.append(
        cache.get_or_load("k", second, timeout=120)))
    th2.start()
    time.sleep(0.1)  # th2 is (most likely) waiting for th1's load
    assert order == ["first"]
    release.set()
    th1.join(120)
    th2.join(120)
    assert len(errs) == 1 and results == [b"from-second"]
    assert order == ["first", "second"]


def test_threads_of_one_process_load_once(cache):
    calls = []
    barrier = threading.Barrier(8)

    def load(k):
        calls.append(threading.get_ident())
        time.sleep(0.1)
        return b"v"

    results = []

    def run():
        barrier.wait()
        results.append(cache.get_or_load("shared", load))

    ths = [threading.Thread(target=run) for _ in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(30)
    assert results == [b"v"] * 8
    assert len(calls) == 1


def test_wait_releases_the_gil(cache):
    token = cache._load_lock("held", 0)  # this thread holds the key's loader lock
    assert token >= 0
    done = []
    waiting = threading.Event()

    def waiter():
        waiting.set()
        done.append(cache.get_or_load("held", lambda k: b"x", timeout=60))

    t = threading.Thread(target=waiter)
    t.start()
    assert waiting.wait(60)
    # The main thread keeps running while the other waits for the lock we
    # hold: it spins (at least 10000 times and 0.5 s, however slow the
    # machine) and the waiter is still waiting at the end.  A wait that held
    # the GIL would let the main thread spin only once the waiter gave up
    # (60 s), when it is no longer alive.
    spins = 0
    t0 = time.monotonic()
    while t.is_alive() and (spins <= 10000 or time.monotonic() - t0 < 0.5):
        spins += 1
    assert t.is_alive() and not done, "the waiter held the GIL until it gave up"
    cache._load_unlock(token)  # now the waiter takes the lock and loads
    t.join(60)
    assert done == [b"x"]
    assert spins > 10000


def test_timeout(cache):
    token = cache._load_lock("slow", 0)
    calls = []
    t0 = time.monotonic()
    with pytest.raises(LoadTimeoutError, match="slow") as ei:
        cache.get_or_load("slow", lambda k: calls.append(k) or b"x", timeout=0.3)
    elapsed = time.monotonic() - t0
    # waited its timeout, then gave up: long before the default of 30 s (a
    # loose bound, for a slow, loaded machine)
    assert 0.25 <= elapsed < 10.0
    assert isinstance(ei.value, TimeoutError) and isinstance(ei.value, cachee.CacheError)
    assert calls == []
    # timeout=0: one try
    with pytest.raises(LoadTimeoutError):
        cache.get_or_load("slow", lambda k: b"x", timeout=0)
    cache._load_unlock(token)
    assert cache.get_or_load("slow", lambda k: b"x", timeout=0) == b"x"


def test_value_appearing_while_waiting_is_returned(cache):
    token = cache._load_lock("late", 0)

    def writer():
        time.sleep(0.2)
        cache.set("late", b"written-by-holder")
        cache._load_unlock(token)

    t = threading.Thread(target=writer)
    t.start()
    assert cache.get_or_load("late", lambda k: b"not me", timeout=120) == b"written-by-holder"
    t.join()


@pytest.mark.parametrize("bad_value", ["text", 3, None, {"a": 1}, [1, 2]])
def test_wrong_value_type_stores_nothing(cache, bad_value):
    with pytest.raises(TypeError, match="bytes-like"):
        cache.get_or_load("k", lambda k: bad_value)
    assert "k" not in cache
    assert cache.get_or_load("k", lambda k: b"fine", timeout=1) == b"fine"  # lock released


def test_bad_arguments_change_nothing(cache):
    called = []

    def load(k):
        called.append(k)
        return b"x"

    with pytest.raises(TypeError, match="callable"):
        cache.get_or_load("k", b"not callable")
    with pytest.raises(TypeError):
        cache.get_or_load("k")
    with pytest.raises(cachee.InvalidKeyError):
        cache.get_or_load("", load)
    with pytest.raises(TypeError):
        cache.get_or_load(3, load)
    with pytest.raises(ValueError):
        cache.get_or_load("k", load, timeout=-1)
    with pytest.raises(ValueError):
        cache.get_or_load("k", load, timeout=float("nan"))
    with pytest.raises(TypeError):
        cache.get_or_load("k", load, timeout="1")
    with pytest.raises(ValueError):
        cache.get_or_load("k", load, ttl=0)
    with pytest.raises(TypeError):
        cache.get_or_load("k", load, ttl="1")
    with pytest.raises(TypeError):
        cache.get_or_load("k", load, 1.0)  # ttl and timeout are keyword-only
    assert called == [] and "k" not in cache and len(cache) == 0
    with pytest.raises(cachee.ValueTooLargeError):
        cache.get_or_load("big", lambda k: bytes(cache.stats()["value_max"] + 1))
    assert "big" not in cache
    cache.close()
    with pytest.raises(cachee.ClosedError):
        cache.get_or_load("k", load)
    assert called == []


# ------------------------------------------------------------ processes

@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs fork")
def test_32_processes_missing_the_same_keys_load_each_once(cache, tmp_path):
    nproc, keys = 32, ["key-%d" % i for i in range(6)]
    calls = str(tmp_path / "calls")
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(nproc)
    procs = [ctx.Process(target=lh.miss_together, args=(cache, keys, calls, barrier, 0.05))
             for _ in range(nproc)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(300)
        assert [p.exitcode for p in procs] == [0] * nproc
    finally:
        tu.stop_processes(procs)
    loaded = [line.split()[1] for line in lh.lines(calls)]
    assert sorted(loaded) == sorted(keys), loaded  # exactly once per distinct key


def test_loader_killed_mid_load_another_takes_over(region_path, tmp_path):
    cache = SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    started = str(tmp_path / "started")
    ctx = mp.get_context("spawn")
    stuck = ctx.Process(target=lh.stuck_loader, args=(region_path, "k", started))
    stuck.start()
    try:
        t0 = time.monotonic()
        while not lh.lines(started):
            assert time.monotonic() - t0 < 120, "the stuck loader never started"
            time.sleep(0.02)
        result = []
        waiter = threading.Thread(
            target=lambda: result.append(cache.get_or_load("k", lambda k: b"taken-over",
                                                           timeout=120)))
        waiter.start()
        time.sleep(0.3)
        assert waiter.is_alive() and result == []  # waiting for the stuck loader
        os.kill(stuck.pid, signal.SIGKILL)
        stuck.join(60)
        waiter.join(120)
    finally:
        tu.stop_processes([stuck])
    assert result == [b"taken-over"]
    assert cache.get("k") == b"taken-over"
    cache.close()


# ------------------------------------------------------------ memoize

def test_memoize_basic(cache):
    calls = []

    @cache.memoize()
    def embed(word, dim=4):
        calls.append((word, dim))
        return np.full(dim, len(word), dtype=np.float32)

    a = embed("hello")
    b = embed("hello")
    assert np.array_equal(a, np.full(4, 5, dtype=np.float32)) and not a.flags.writeable
    assert np.array_equal(a, b)
    assert calls == [("hello", 4)]
    embed("hello", dim=8)
    assert calls == [("hello", 4), ("hello", 8)]
    assert embed.cache_key("hello") == "memoize:%s.%s('hello')" % (
        __name__, embed.__qualname__)
    assert embed.__name__ == "embed" and embed.__wrapped__ is not None
    assert embed.invalidate("hello") is True
    embed("hello")
    assert len(calls) == 3


def test_memoize_bytes_ttl_and_custom_key(cache):
    calls = []

    fn = []

    def live(ttl):  # a new key for each try
        calls.clear()

        @cache.memoize(ttl=ttl, key=lambda user_id: "user:%d:%g" % (user_id, ttl))
        def profile(user_id):
            calls.append(user_id)
            return b"profile-%d" % user_id

        fn[:] = [profile]
        assert profile(7) == b"profile-7" == cache.get("user:7:%g" % ttl)
        assert profile(7) == b"profile-7"
        assert calls == [7]

    tu.sleep_past(*tu.while_alive(live, ttl=0.2))
    fn[0](7)
    assert calls == [7, 7]


def test_memoize_long_keys_are_hashed(cache):
    @cache.memoize()
    def f(s):
        return b"x"

    k = f.cache_key("y" * 100000)
    assert len(k) < 200 and "#" in k
    assert f("y" * 100000) == b"x"


def test_memoize_refuses_unpicklable_values_and_unstable_keys(cache):
    @cache.memoize()
    def obj(x):
        return {"x": x}

    with pytest.raises(TypeError, match="pickle"):
        obj(1)
    assert len(cache) == 0

    @cache.memoize()
    def f(o):
        return b"x"

    with pytest.raises(TypeError, match="memory address"):
        f(object())
    assert len(cache) == 0


def test_memoize_pickle_by_name_only(cache):
    with pytest.raises(ValueError, match="pickle"):
        cache.memoize(serializer="json")
    with pytest.raises(ValueError):
        cache.memoize(serializer=object())
    with pytest.raises(TypeError):
        cache.memoize(key="not callable")

    with pytest.raises(TypeError, match="parentheses"):
        @cache.memoize
        def g(x):
            return b""

    calls = []

    @cache.memoize(serializer="pickle")
    def obj(x):
        calls.append(x)
        return {"x": x, "list": [1, 2]}

    assert obj(1) == {"x": 1, "list": [1, 2]}
    assert obj(1) == {"x": 1, "list": [1, 2]}
    assert calls == [1]
    # bytes stored under the key by someone else are never unpickled
    cache.set(obj.cache_key(2), b"\x80\x04malicious")
    with pytest.raises(cachee.MismatchError, match="unpickle"):
        obj(2)
    assert calls == [1]


def test_memoize_key_function_must_return_str_or_bytes(cache):
    @cache.memoize(key=lambda x: x)
    def f(x):
        return b"v"

    with pytest.raises(TypeError, match="str or bytes"):
        f(3)
    assert f("ok") == b"v"
