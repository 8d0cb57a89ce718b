"""The public API of cachee.SharedCache, View and the module functions:
every method, its semantics, TTLs, zero-copy views (and their lifetime across
overwrite, delete, expiry, eviction and close), DLPack, statistics."""
import array
import ast
import ctypes
import gc
import hashlib
import inspect
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import cachee
import cachee_testutil as tu
from cachee import SharedCache


def pins(c):
    return c.stats()["pins"]


def addr_of(buf):
    """Address of the first byte of a buffer-protocol object."""
    return np.frombuffer(buf, dtype=np.uint8).ctypes.data


def pattern(n, seed):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


# --------------------------------------------------------------- module


def test_module_exports():
    for name in ["SharedCache", "View", "unlink", "key_hash", "KEY_MAX", "CacheError",
                 "ClosedError", "MismatchError", "KeyTooLargeError",
                 "ValueTooLargeError", "CacheFullError", "NotARegionError",
                 "FormatError", "UnsafePathError", "RegionNotFoundError"]:
        assert name in cachee.__all__, name
        assert hasattr(cachee, name), name
    assert cachee.KEY_MAX == 65535
    assert issubclass(cachee.MismatchError, ValueError)
    for name in cachee.__all__:
        obj = getattr(cachee, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, cachee.CacheError), name


def test_key_hash():
    h = cachee.key_hash("user:1")
    assert isinstance(h, int) and 0 <= h < 2 ** 64
    assert h == cachee.key_hash(b"user:1") == cachee.key_hash("user:1")
    assert cachee.key_hash("é") == cachee.key_hash("é".encode("utf-8"))
    assert cachee.key_hash("a") != cachee.key_hash("b")


def public_names_of(obj):
    return [n for n in dir(obj) if not n.startswith("_")]


def test_docstrings_on_every_public_name():
    missing = []
    if not (cachee.__doc__ or "").strip():
        missing.append("cachee")
    for name in cachee.__all__:
        obj = getattr(cachee, name)
        if isinstance(obj, int):
            continue
        if not (getattr(obj, "__doc__", None) or "").strip():
            missing.append(name)
    for cls in (cachee.SharedCache, cachee.View):
        for name in public_names_of(cls):
            if not (getattr(cls, name).__doc__ or "").strip():
                missing.append("%s.%s" % (cls.__name__, name))
    for name in ("__dlpack__", "__dlpack_device__"):
        if not (getattr(cachee.View, name).__doc__ or "").strip():
            missing.append("View." + name)
    assert not missing, "public names without a docstring: %s" % missing


def test_type_stubs_cover_the_public_api():
    pkg = os.path.dirname(cachee.__file__)
    src = os.path.join(tu.TESTS_DIR, "..", "..", "python", "cachee")
    for d in (pkg, src):
        if os.path.exists(os.path.join(d, "__init__.pyi")):
            break
    assert os.path.exists(os.path.join(d, "py.typed"))
    tree = ast.parse(open(os.path.join(d, "__init__.pyi")).read())
    top = {}
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            top[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            top[node.target.id] = node
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    top[t.id] = node
        elif isinstance(node, ast.ImportFrom) and node.module == "cachee._errors":
            for alias in node.names:
                top[alias.asname or alias.name] = alias
    # The exceptions are typed by cachee/_errors.py itself (plain classes,
    # no stub of their own): each must be a class there.
    errors_tree = ast.parse(open(os.path.join(d, "_errors.py")).read())
    error_classes = {n.name for n in errors_tree.body if isinstance(n, ast.ClassDef)}
    for name in cachee._errors.__all__:
        assert name in error_classes, "_errors.py lacks %s" % name
    for name in cachee.__all__:
        assert name in top, "stub lacks %s" % name
    for cls in (cachee.SharedCache, cachee.View):
        members = set()
        for node in ast.walk(top[cls.__name__]):
            if isinstance(node, ast.FunctionDef):
                members.add(node.name)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                members.add(node.target.id)
        for name in public_names_of(cls):
            assert name in members, "stub of %s lacks %s" % (cls.__name__, name)
    shared = {n.name for n in ast.walk(top["SharedCache"]) if isinstance(n, ast.FunctionDef)}
    for dunder in ("__getitem__", "__setitem__", "__delitem__", "__contains__", "__len__",
                   "__enter__", "__exit__", "__init__"):
        assert dunder in shared, dunder


# ------------------------------------------------------- open and close


def test_default_region_size_is_2_gib(region_path):
    # The documented signature: SharedCache(path="/dev/shm/cachee", size_gb=2, ...)
    st = os.statvfs("/dev/shm")
    if st.f_bavail * st.f_frsize < (6 << 30):
        pytest.skip("/dev/shm too small for a 2 GiB region")
    c = SharedCache(region_path)
    try:
        assert c.stats()["region_size"] == 2 << 30
    finally:
        c.close()


def test_create_then_open(region_path):
    with pytest.raises(cachee.RegionNotFoundError):
        SharedCache.open(region_path)
    assert not os.path.exists(region_path)
    a = SharedCache(region_path, size_gb=16 / 1024)
    assert os.path.exists(region_path)
    assert oct(os.stat(region_path).st_mode & 0o777) == oct(0o600)
    assert a.path == region_path
    assert not a.closed
    assert region_path in repr(a)
    a.set("k", b"v")
    b = SharedCache.open(region_path)
    assert b.get("k") == b"v"
    b.set("k2", b"v2")
    assert a.get("k2") == b"v2"
    c = SharedCache(region_path)  # no size: attach to what exists
    assert c.get("k") == b"v"
    assert a.stats()["region_size"] == 16 << 20
    for x in (a, b, c):
        x.close()


def test_bare_name_means_dev_shm(make_path):
    path = make_path("bare")
    name = os.path.basename(path)
    c = SharedCache(name, size_bytes=tu.REGION_BYTES)
    assert c.path == path
    assert os.path.exists(path)
    c.close()
    cachee.unlink(name)
    assert not os.path.exists(path)


def test_mode(region_path):
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES, mode=0o640)
    assert os.stat(region_path).st_mode & 0o777 == 0o640
    c.close()


def test_unlink_keeps_open_handles_working(region_path):
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    c.set("a", b"1")
    c.unlink()
    assert not os.path.exists(region_path)
    assert c.get("a") == b"1"
    c.set("b", b"2")
    assert c.get("b") == b"2"
    c.unlink()  # nothing there any more: not an error
    c.close()
    with pytest.raises(cachee.RegionNotFoundError):
        cachee.unlink(region_path)


def test_close_and_context_manager(region_path):
    with SharedCache(region_path, size_bytes=tu.REGION_BYTES) as c:
        assert not c.closed
        c.set("a", b"x" * 100)
        c.set_numpy("n", np.arange(10, dtype=np.int64))
        arr = c.get_numpy("n")
        buf = c.get_buffer("a")
        view = c.get_view("a")
    assert c.closed
    assert "closed" in repr(c)
    # views handed out before close() stay valid
    assert bytes(buf) == b"x" * 100
    assert bytes(view) == b"x" * 100
    assert arr.tolist() == list(range(10))
    assert tu.region_mappings(region_path)
    c.close()  # twice is fine
    with pytest.raises(cachee.ClosedError):
        c.get("a")
    with pytest.raises(cachee.ClosedError):
        with c:
            pass
    # the mapping goes away with the last view
    del arr, buf, view
    gc.collect()
    assert tu.region_mappings(region_path) == []
    # and the data is still in the region
    with SharedCache.open(region_path) as d:
        assert d.get("a") == b"x" * 100


def test_close_without_views_unmaps(region_path):
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    assert tu.region_mappings(region_path)
    c.close()
    gc.collect()
    assert tu.region_mappings(region_path) == []


# ------------------------------------------------------------ get / set


def test_set_get_bytes(cache):
    cache.set("a", b"hello")
    assert cache.get("a") == b"hello"
    assert type(cache.get("a")) is bytes
    assert cache.get("missing") is None
    assert cache.get("missing", b"dflt") == b"dflt"
    sentinel = object()
    assert cache.get("missing", sentinel) is sentinel
    cache.set(key="kw", value=b"v", ttl=None)
    assert cache.get("kw") == b"v"


def test_str_and_bytes_keys_are_the_same_key(cache):
    cache.set("clé", b"1")
    assert cache.get("clé".encode("utf-8")) == b"1"
    cache.set(b"raw\x00\xff", b"2")
    assert cache.get(b"raw\x00\xff") == b"2"
    assert len(cache) == 2


def test_bytes_like_values(cache):
    cache.set("ba", bytearray(b"abc"))
    cache.set("mv", memoryview(b"defg"))
    arr = array.array("i", [1, 2, 3])
    cache.set("arr", arr)
    nd = np.arange(6, dtype=np.float64).reshape(2, 3)
    cache.set("nd", nd)
    cache.set("empty", b"")
    assert cache.get("ba") == b"abc"
    assert cache.get("mv") == b"defg"
    assert cache.get("arr") == arr.tobytes()
    assert cache.get("nd") == nd.tobytes()
    assert cache.get("empty") == b""
    assert "empty" in cache
    assert bytes(cache.get_buffer("empty")) == b""


def test_overwrite(cache):
    cache.set("a", b"1")
    cache.set("a", b"22")
    assert cache.get("a") == b"22"
    assert len(cache) == 1


def test_longest_key_and_largest_value(cache):
    key = "k" * cachee.KEY_MAX
    cache.set(key, b"v")
    assert cache.get(key) == b"v"
    assert key in cache
    vmax = cache.stats()["value_max"]
    big = pattern(vmax, 1)
    cache.set("big", big)
    assert cache.get("big") == big


def test_mapping_protocol(cache):
    cache["a"] = b"1"
    assert cache["a"] == b"1"
    assert "a" in cache
    assert "b" not in cache
    assert len(cache) == 1
    with pytest.raises(KeyError):
        cache["b"]
    del cache["a"]
    assert "a" not in cache
    with pytest.raises(KeyError):
        del cache["a"]
    assert len(cache) == 0


def test_delete(cache):
    cache.set("a", b"1")
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    assert cache.get("a") is None


def test_add(cache):
    assert cache.add("a", b"first") is True
    assert cache.add("a", b"second") is False
    assert cache.get("a") == b"first"
    cache.delete("a")
    assert cache.add("a", b"third") is True
    assert cache.get("a") == b"third"
    assert cache.add("t", b"x", ttl=0.05) is True
    time.sleep(0.1)
    assert cache.add("t", b"y") is True  # an expired key counts as absent
    assert cache.get("t") == b"y"


def test_set_many_get_many(cache):
    cache.set_many({"a": b"1", b"b": b"2"})
    cache.set_many([("c", b"3"), ("d", bytearray(b"4"))])
    cache.set_many((("e%d" % i, b"%d" % i) for i in range(3)))
    got = cache.get_many(["a", b"b", "c", "d", "e2", "missing"])
    assert got == {"a": b"1", b"b": b"2", "c": b"3", "d": b"4", "e2": b"2"}
    assert cache.get_many([]) == {}

    def live(ttl):
        cache.set_many({"t1": b"x", "t2": b"y"}, ttl=ttl)
        assert cache.get_many(["t1", "t2"]) == {"t1": b"x", "t2": b"y"}

    tu.sleep_past(*tu.while_alive(live, ttl=0.3))
    assert cache.get_many(["t1", "t2"]) == {}


# ------------------------------------------------------------------ TTL


def test_ttl_expiry(cache):
    cache.set("int", b"i", ttl=100)
    cache.set("never", b"n")

    def live(ttl):
        cache.set("short", b"s", ttl=ttl)
        cache.set_numpy("arr", np.ones(4), ttl=ttl)
        assert cache.get("short") == b"s"
        assert "short" in cache
        assert cache.get_numpy("arr") is not None

    tu.sleep_past(*tu.while_alive(live, ttl=0.3))
    assert cache.get("short") is None
    assert "short" not in cache
    assert cache.get_buffer("short") is None
    assert cache.get_view("short") is None
    assert cache.get_numpy("arr") is None
    with pytest.raises(KeyError):
        cache["short"]
    assert cache.get("int") == b"i"
    assert cache.get("never") == b"n"
    # a new set without ttl makes the key permanent again
    cache.set("short", b"again")
    time.sleep(0.15)
    assert cache.get("short") == b"again"


def test_ttl_overwrite_resets(cache):
    cache.set("k", b"1", ttl=0.1)
    cache.set("k", b"2", ttl=60)
    time.sleep(0.15)
    assert cache.get("k") == b"2"


# ---------------------------------------------------------------- numpy

DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64",
          "uint8", "uint16", "uint32", "uint64", "bool", "complex64", "complex128",
          ">f4", ">i8", "datetime64[ns]", "timedelta64[s]", "S7", "U3", "V8",
          "longdouble"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_roundtrip_dtypes(cache, dtype):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, 2 * 3 * np.dtype(dtype).itemsize, dtype=np.uint8)
    a = raw.view(dtype).reshape(2, 3)
    if np.dtype(dtype).kind == "b":
        a = a.astype(bool)
    cache.set_numpy("a", a)
    b = cache.get_numpy("a")
    assert b.dtype == a.dtype
    assert b.shape == a.shape
    assert b.tobytes() == a.tobytes()
    assert not b.flags.writeable
    assert b.flags.c_contiguous


@pytest.mark.parametrize("shape", [(), (0,), (5,), (3, 0), (2, 3, 4), (1,) * 10])
def test_numpy_roundtrip_shapes(cache, shape):
    a = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    cache.set_numpy("a", a)
    b = cache.get_numpy("a")
    assert b.shape == shape
    assert b.dtype == np.int32
    np.testing.assert_array_equal(a, b)


def test_a_vector_takes_little_more_than_its_bytes(cache):
    """A 512-byte float32 vector with a short key takes 560 bytes of the
    region (32-byte record header, the key, 6 bytes of compact dtype/shape
    metadata, 16-byte alignment): 1.094 x its bytes, where a 48-byte header,
    the long metadata form and 64-byte alignment took 640."""
    n = 4000
    vec = np.arange(128, dtype=np.float32)
    before = cache.stats()["used_bytes"]
    for i in range(n):
        cache.set_numpy("v:%d" % i, vec)
    st = cache.stats()
    assert st["entries"] == n and st["evictions"] == 0
    per = (st["used_bytes"] - before) / n
    assert 560 <= per < 600, per  # segment tails and open segments: < 40 B each
    np.testing.assert_array_equal(cache.get_numpy("v:17"), vec)


def test_numpy_structured_dtype_roundtrip(cache):
    # "any C-contiguous array of a fixed-size non-object dtype"
    dt = np.dtype([("id", "<i4"), ("score", "<f8"), ("tag", "S3")])
    a = np.zeros(4, dtype=dt)
    a["id"] = [1, 2, 3, 4]
    a["score"] = [0.5, 1.5, 2.5, 3.5]
    a["tag"] = [b"a", b"bb", b"ccc", b""]
    cache.set_numpy("s", a)
    b = cache.get_numpy("s")
    assert b.dtype == dt
    np.testing.assert_array_equal(a, b)


def test_get_numpy_is_zero_copy(cache, region_path):
    a = np.arange(1000, dtype=np.float32)
    cache.set_numpy("a", a)
    b = cache.get_numpy("a")
    assert tu.in_region(region_path, b.ctypes.data, b.nbytes, writable=False)
    assert isinstance(b.base, cachee.View)
    assert not b.flags.writeable
    assert not b.flags.owndata
    with pytest.raises(ValueError):
        b[0] = 1
    with pytest.raises(ValueError):
        b.setflags(write=True)
    with pytest.raises(ValueError):
        np.add(b, 1, out=b)


def test_get_numpy_checked(cache):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.set_numpy("a", a)
    np.testing.assert_array_equal(cache.get_numpy("a", shape=(3, 4), dtype=np.float32), a)
    np.testing.assert_array_equal(cache.get_numpy("a", shape=[3, 4]), a)
    np.testing.assert_array_equal(cache.get_numpy("a", dtype="float32"), a)
    np.testing.assert_array_equal(cache.get_numpy("a", dtype="<f4"), a)
    with pytest.raises(cachee.MismatchError):
        cache.get_numpy("a", shape=(4, 3))
    with pytest.raises(cachee.MismatchError):
        cache.get_numpy("a", shape=(12,))
    with pytest.raises(ValueError):
        cache.get_numpy("a", dtype=np.float64)
    with pytest.raises(cachee.MismatchError):
        cache.get_numpy("a", dtype=np.int32)
    assert cache.get_numpy("missing", shape=(3, 4)) is None
    assert cache.get_numpy("missing", default=7) == 7


def test_get_numpy_on_raw_bytes(cache):
    data = np.arange(6, dtype=np.float32)
    cache.set("raw", data.tobytes())
    u8 = cache.get_numpy("raw")
    assert u8.dtype == np.uint8 and u8.shape == (24,)
    f = cache.get_numpy("raw", dtype=np.float32)
    np.testing.assert_array_equal(f, data)
    g = cache.get_numpy("raw", shape=(2, 3), dtype=np.float32)
    np.testing.assert_array_equal(g, data.reshape(2, 3))
    assert not g.flags.writeable
    with pytest.raises(cachee.MismatchError):
        cache.get_numpy("raw", shape=(7,), dtype=np.float32)
    with pytest.raises(cachee.MismatchError):
        cache.get_numpy("raw", dtype=np.dtype("V5"))  # 24 % 5 != 0
    with pytest.raises(cachee.MismatchError):  # never a read past the value
        cache.get_numpy("raw", shape=(1000,), dtype=np.float64)


def test_get_numpy_same_object_while_current(cache):
    cache.set_numpy("a", np.arange(4, dtype=np.int64))
    a1 = cache.get_numpy("a")
    a2 = cache.get_numpy("a")
    assert a1 is a2
    assert cache.get_numpy("a", shape=(4,), dtype=np.int64) is a1
    cache.set_numpy("a", np.arange(4, 8, dtype=np.int64))
    a3 = cache.get_numpy("a")
    assert a3 is not a1
    assert a3.tolist() == [4, 5, 6, 7]
    assert a1.tolist() == [0, 1, 2, 3]  # the old version is still readable
    assert cache.get_numpy("a") is a3


def test_get_numpy_fresh_array_after_caller_changed_it(cache):
    cache.set_numpy("a", np.arange(6, dtype=np.int64).reshape(2, 3))
    a1 = cache.get_numpy("a")
    a1.shape = (3, 2)  # the caller reshaped the array in place
    a2 = cache.get_numpy("a")
    assert a2 is not a1
    assert a2.shape == (2, 3)


def test_get_numpy_batch(cache):
    vecs = [np.full(8, i, dtype=np.float32) for i in range(5)]
    for i, v in enumerate(vecs):
        cache.set_numpy("v%d" % i, v)
    out = cache.get_numpy_batch(["v4", "v0", "v2"])
    assert out.shape == (3, 8) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.stack([vecs[4], vecs[0], vecs[2]]))
    assert out.flags.writeable and out.flags.owndata  # one copy, the caller's
    assert not np.shares_memory(out, cache.get_numpy("v4"))
    out2 = cache.get_numpy_batch(("v1",), dtype=np.float32)
    assert out2.shape == (1, 8)
    with pytest.raises(KeyError, match="nope"):
        cache.get_numpy_batch(["v1", "nope"])
    cache.set_numpy("other", np.zeros(9, dtype=np.float32))
    with pytest.raises(cachee.MismatchError):
        cache.get_numpy_batch(["v1", "other"])
    cache.set_numpy("otherdt", np.zeros(8, dtype=np.float64))
    with pytest.raises(cachee.MismatchError):
        cache.get_numpy_batch(["v1", "otherdt"])
    with pytest.raises(cachee.MismatchError):
        cache.get_numpy_batch(["v1"], dtype=np.int32)
    with pytest.raises(ValueError):
        cache.get_numpy_batch([])
    assert pins(cache) <= 8  # the batch released its pins


# ----------------------------------------------------- views and buffers


def test_get_buffer(cache, region_path):
    data = pattern(5000, 2)
    cache.set("a", data)
    mv = cache.get_buffer("a")
    assert isinstance(mv, memoryview)
    assert mv.readonly
    assert mv.nbytes == 5000
    assert bytes(mv) == data
    assert tu.in_region(region_path, addr_of(mv), 5000, writable=False)
    with pytest.raises(TypeError):
        mv[0] = 1
    assert cache.get_buffer("missing") is None


def test_view_object(cache, region_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.set_numpy("a", a)
    v = cache.get_view("a")
    assert isinstance(v, cachee.View)
    assert v.shape == (3, 4)
    assert v.dtype == np.float32
    assert v.nbytes == 48 == len(v)
    assert isinstance(v.version, int)
    n = v.numpy()
    np.testing.assert_array_equal(n, a)
    assert not n.flags.writeable
    m = memoryview(v)
    assert m.readonly and m.shape == (3, 4) and m.format == "f"
    assert tu.in_region(region_path, addr_of(v), 48, writable=False)
    old = v.version
    cache.set_numpy("a", a + 1)
    assert cache.get_view("a").version > old
    assert cache.get_view("missing") is None


def test_writing_through_views_fails(cache):
    cache.set_numpy("a", np.zeros(16, dtype=np.uint8))
    v = cache.get_view("a")
    arr = np.frombuffer(v, dtype=np.uint8)
    assert not arr.flags.writeable
    with pytest.raises(ValueError):
        arr[0] = 1
    with pytest.raises(TypeError):
        (ctypes.c_char * 16).from_buffer(v)
    with pytest.raises((BufferError, TypeError)):
        memoryview(v).cast("B")[0] = 1
    g = cache.get_numpy("a")
    with pytest.raises(ValueError):
        g[:] = 7
    with pytest.raises(ValueError):
        np.asarray(g)[0] = 1
    assert cache.get("a") == b"\x00" * 16


def test_shared_memory_is_mapped_read_only(cache, region_path):
    """Even ctypes cannot scribble on a view: the memory is PROT_READ."""
    cache.set("a", b"\x00" * 64)
    code = (
        "import ctypes, numpy as np, cachee, sys\n"
        "c = cachee.SharedCache.open(%r)\n"
        "v = c.get_view('a')\n"
        "p = np.frombuffer(v, dtype=np.uint8).ctypes.data\n"
        "sys.stdout.write('before\\n'); sys.stdout.flush()\n"
        "ctypes.memset(p, 0xff, 64)\n"
        "print('wrote')\n" % region_path)
    r = subprocess.run([sys.executable, "-c", code], env=tu.child_env(),
                       capture_output=True, text=True, timeout=300)
    assert "before" in r.stdout, r.stderr
    assert "wrote" not in r.stdout
    assert r.returncode != 0
    assert cache.get("a") == b"\x00" * 64


# ------------------------------------------- view lifetime (the pin)


def test_views_survive_overwrite_and_delete(region_path):
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES, view_cache=0)
    data = pattern(4096, 3)
    arr0 = np.frombuffer(pattern(800, 4), dtype=np.float64)
    c.set("b", data)
    c.set_numpy("n", arr0)
    mv = c.get_buffer("b")
    view = c.get_view("b")
    arr = c.get_numpy("n")
    part = arr[10:20]          # derived objects keep the pin too
    as_np = np.asarray(c.get_view("n").numpy())
    for i in range(50):
        c.set("b", pattern(4096, 100 + i))
        c.set_numpy("n", np.full(100, i, dtype=np.float64))
    assert c.get("b") == pattern(4096, 149)
    assert bytes(mv) == data
    assert bytes(view) == data
    assert arr.tobytes() == arr0.tobytes()
    assert part.tobytes() == arr0[10:20].tobytes()
    assert as_np.tobytes() == arr0.tobytes()
    c.delete("b")
    c.delete("n")
    assert c.get("b") is None
    assert bytes(mv) == data and bytes(view) == data
    assert arr.tobytes() == arr0.tobytes()
    c.close()


def test_views_survive_expiry(region_path):
    c = SharedCache(region_path, size_bytes=2 << 20, view_cache=0)
    data = pattern(3000, 5)
    got = {}

    def live(ttl):
        got.clear()
        c.set("e", data, ttl=ttl)
        c.set_numpy("en", np.frombuffer(data, dtype=np.uint8), ttl=ttl)
        got["v"] = c.get_view("e")
        got["a"] = c.get_numpy("en")
        assert got["v"] is not None and got["a"] is not None

    tu.sleep_past(*tu.while_alive(live, ttl=0.3))
    v, a = got.pop("v"), got.pop("a")
    assert c.get("e") is None and c.get_numpy("en") is None
    for i in range(2000):  # churn: 4x the region
        c.set("x%d" % (i % 500), pattern(4096, i % 7))
    assert bytes(v) == data
    assert a.tobytes() == data
    c.close()


def test_views_survive_eviction(region_path):
    c = SharedCache(region_path, size_bytes=2 << 20, view_cache=0)
    first = {}
    held = []
    for i in range(20):
        d = pattern(4096, 1000 + i)
        first["k%d" % i] = d
        c.set("k%d" % i, d)
        held.append((c.get_buffer("k%d" % i), d))
    for i in range(20):
        c.set_numpy("a%d" % i, np.frombuffer(first["k%d" % i], dtype=np.uint8))
        held.append((c.get_numpy("a%d" % i), first["k%d" % i]))
    before = c.stats()["evictions"]
    for i in range(3000):  # 12 MiB through a 2 MiB region
        c.set("filler%d" % i, pattern(4096, i % 13))
    s = c.stats()
    assert s["evictions"] > before
    assert s["pins"] >= 40 and s["pinned_bytes"] >= 40 * 4096
    assert sum(1 for i in range(20) if c.get("k%d" % i) is None) > 0, "nothing evicted"
    for obj, expected in held:
        assert np.asarray(obj).tobytes() == expected
    c.check()
    c.close()


def test_pins_released_with_last_reference(region_path):
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES, view_cache=0)
    c.set_numpy("a", np.arange(100, dtype=np.int32))
    base = pins(c)
    arr = c.get_numpy("a")
    part = arr[5:9]
    assert pins(c) == base + 1
    del arr
    gc.collect()
    assert pins(c) == base + 1  # the slice still holds it
    assert part.tolist() == [5, 6, 7, 8]
    del part
    gc.collect()
    assert pins(c) == base
    mv = c.get_buffer("a")
    v = c.get_view("a")
    d = np.from_dlpack(c.get_view("a"))
    assert pins(c) == base + 3
    del mv, v, d
    gc.collect()
    assert pins(c) == base
    assert c.stats()["pinned_bytes"] == 0
    c.close()


def test_view_cache_keeps_few_pins(cache):
    """get_numpy's cache of arrays pins at most its size, and stale entries
    do not keep old versions pinned forever."""
    for i in range(50):
        cache.set_numpy("k", np.full(64, i, dtype=np.int64))
        cache.get_numpy("k")
    gc.collect()
    assert cache.stats()["pins"] <= 2


# ------------------------------------------------------------- DLPack


def test_dlpack_from_view(cache):
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    cache.set_numpy("a", a)
    v = cache.get_view("a")
    assert v.__dlpack_device__() == (1, 0)
    d = np.from_dlpack(v)
    assert d.shape == (4, 6) and d.dtype == np.float32
    np.testing.assert_array_equal(d, a)
    assert d.ctypes.data == addr_of(v)  # no copy
    assert not d.flags.writeable
    # the exported tensor keeps the value alive on its own
    del v
    cache.set_numpy("a", a * 0)
    cache.delete("a")
    gc.collect()
    np.testing.assert_array_equal(d, a)


def test_dlpack_from_get_numpy(cache, region_path):
    a = np.arange(10, dtype=np.int16)
    cache.set_numpy("a", a)
    g = cache.get_numpy("a")
    d = np.from_dlpack(g)
    assert np.shares_memory(d, g)
    assert d.ctypes.data == g.ctypes.data
    assert tu.in_region(region_path, d.ctypes.data, d.nbytes)
    np.testing.assert_array_equal(d, a)


def test_dlpack_capsules(cache):
    cache.set_numpy("a", np.ones(3, dtype=np.float64))
    base = pins(cache)
    v = cache.get_view("a")
    legacy = v.__dlpack__()
    versioned = v.__dlpack__(max_version=(1, 0))
    assert "dltensor" in repr(legacy)
    assert "dltensor_versioned" in repr(versioned)
    with pytest.raises(BufferError):
        v.__dlpack__(stream=1)
    with pytest.raises(BufferError):
        v.__dlpack__(copy=True)
    with pytest.raises(BufferError):
        v.__dlpack__(dl_device=(2, 0))
    del v, legacy, versioned  # never consumed: freeing them releases the pin
    gc.collect()
    assert pins(cache) <= base


# -------------------------------------------------------------- stats


def test_stats_counters(region_path):
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES, view_cache=0)
    s0 = c.stats()
    for k in ("hits", "misses", "sets", "deletes", "evictions", "expirations",
              "entries", "capacity_bytes", "used_bytes", "free_bytes", "pinned_bytes",
              "pins", "live_processes", "region_size", "value_max", "path"):
        assert k in s0, k
    assert s0["path"] == region_path
    assert s0["region_size"] == tu.REGION_BYTES
    assert s0["live_processes"] == 1
    assert s0["hits"] == s0["misses"] == s0["sets"] == s0["entries"] == 0
    c.set("a", b"1")
    c.set("b", b"2")
    c.set_numpy("n", np.zeros(4))
    c.get("a")
    c.get("a")
    c.get("zzz")
    c.get_numpy("n")
    "a" in c  # contains counts as neither hit nor miss
    c.delete("b")
    c.delete("b")
    s = c.stats()
    assert s["sets"] == 3
    assert s["hits"] == 3
    assert s["misses"] == 1
    assert s["deletes"] == 1
    assert s["entries"] == 2 == len(c)
    assert s["used_bytes"] > 0
    assert s["capacity_bytes"] >= s["used_bytes"]
    c.close()


# ------------------------------------------------------------ threads


def test_threads(cache):
    errors = []
    stop = time.monotonic() + 0.5

    def work(t):
        try:
            i = 0
            while time.monotonic() < stop:
                k = "t%d-%d" % (t, i % 50)
                v = np.full(32, i, dtype=np.int64)
                cache.set_numpy(k, v)
                got = cache.get_numpy(k)
                assert got is not None and got[0] == i
                cache.set("shared", b"%d" % i)
                assert cache.get("shared") is not None
                i += 1
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    cache.check()


def test_check_passes_after_a_workout(cache):
    for i in range(500):
        cache.set("k%d" % (i % 97), hashlib.sha256(b"%d" % i).digest() * (i % 20 + 1))
        if i % 7 == 0:
            cache.delete("k%d" % (i % 13))
    cache.check()


def test_signature_in_docstrings():
    doc = SharedCache.__doc__
    assert "size_gb" in doc and "mode" in doc and "create" in doc
    assert inspect.isclass(SharedCache)


def test_dropped_arrays_do_not_block_writers(region_path):
    """A reader that drops every array it gets must not keep old versions
    pinned: a writer (another handle here, another process in production)
    must be able to overwrite a large value again and again."""
    w = SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    r = SharedCache.open(region_path)
    for i in range(60):  # 60 MiB of 1 MiB versions through a 16 MiB region
        w.set_numpy("weights", np.full(1 << 17, i, dtype=np.float64))
        x = r.get_numpy("weights")
        assert x[0] == i
        del x
    w.close()
    r.close()


def test_views_that_hold_the_region_full_give_cache_full_error(region_path):
    """When every byte is pinned by live views, a write cannot evict: it
    raises CacheFullError at once (no stall), stores nothing, loses nothing
    held; once the views are dropped the same write succeeds."""
    c = SharedCache(region_path, size_bytes=8 << 20, segment_size=64 << 10)
    held = []
    blob = b"x" * 20000
    with pytest.raises(cachee.CacheFullError):
        for i in range(10000):  # far more than the region holds
            c.set("k%d" % i, blob)
            held.append(c.get_buffer("k%d" % i))
    n = len(held)
    assert n > 100
    assert all(bytes(v) == blob for v in held)
    t = time.monotonic()
    with pytest.raises(cachee.CacheFullError):
        c.set("one-more", blob)
    # at once: microseconds on an idle machine; a write that waited for the
    # space (there is none to come) would hang; the bound allows a slow,
    # loaded machine (ASan, shared cores)
    assert time.monotonic() - t < 10.0
    assert c.get("one-more") is None
    del held
    gc.collect()
    c.set("one-more", blob)
    assert c.get("one-more") == blob
    c.check()
    c.close()
