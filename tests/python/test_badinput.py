"""Bad input: every case raises its specific exception, changes nothing that
is stored, and does not crash.  Each test checks the exception class AND
that the keys stored before are unchanged."""
import hashlib
import math
import os
import struct

import numpy as np
import pytest

import cachee
import cachee_testutil as tu
from cachee import SharedCache

ARR = np.arange(12, dtype=np.float32).reshape(3, 4)
STORED = {"a": b"alpha", b"b": b"beta", "\u00e9t\u00e9": b"summer"}


@pytest.fixture
def filled(cache):
    for k, v in STORED.items():
        cache.set(k, v)
    cache.set_numpy("n", ARR)
    cache.set("raw", np.arange(6, dtype=np.float32).tobytes())
    return cache


def snapshot(c):
    s = c.stats()
    return {
        "values": {k: c.get(k) for k in STORED},
        "n": (c.get_numpy("n").tobytes(), c.get_numpy("n").shape, str(c.get_numpy("n").dtype)),
        "raw": c.get("raw"),
        "len": len(c),
        "sets": s["sets"],
        "deletes": s["deletes"],
        "entries": s["entries"],
    }


def expected_snapshot():
    return {
        "values": dict(STORED),
        "n": (ARR.tobytes(), ARR.shape, "float32"),
        "raw": np.arange(6, dtype=np.float32).tobytes(),
        "len": len(STORED) + 2,
        "sets": len(STORED) + 2,
        "deletes": 0,
        "entries": len(STORED) + 2,
    }


def assert_unchanged(c):
    assert snapshot(c) == expected_snapshot()
    c.check()


def key_calls(k):
    """Every call that takes a key, as (name, callable(cache))."""
    return [
        ("get", lambda c: c.get(k)),
        ("get_default", lambda c: c.get(k, b"d")),
        ("set", lambda c: c.set(k, b"v")),
        ("add", lambda c: c.add(k, b"v")),
        ("set_numpy", lambda c: c.set_numpy(k, ARR)),
        ("get_numpy", lambda c: c.get_numpy(k)),
        ("get_numpy_checked", lambda c: c.get_numpy(k, shape=(3, 4), dtype=np.float32)),
        ("get_buffer", lambda c: c.get_buffer(k)),
        ("get_view", lambda c: c.get_view(k)),
        ("delete", lambda c: c.delete(k)),
        ("contains", lambda c: k in c),
        ("getitem", lambda c: c[k]),
        ("setitem", lambda c: c.__setitem__(k, b"v")),
        ("delitem", lambda c: c.__delitem__(k)),
        ("get_many", lambda c: c.get_many(["a", k])),
        ("set_many", lambda c: c.set_many([("fresh", b"v"), (k, b"v")])),
        ("get_numpy_batch", lambda c: c.get_numpy_batch(["n", k])),
        ("key_hash", lambda c: cachee.key_hash(k)),
    ]


def check_all(c, key, exc, match=None):
    for name, call in key_calls(key):
        with pytest.raises(exc, match=match):
            call(c)
            pytest.fail("%s accepted %r" % (name, key))
        assert "fresh" not in c, name
        assert_unchanged(c)


# ----------------------------------------------------------------- keys


@pytest.mark.parametrize("key", [1, 1.5, None, ("a",), ["a"], bytearray(b"a"),
                                 memoryview(b"a"), object(), True, 2 ** 70],
                         ids=["int", "float", "None", "tuple", "list", "bytearray",
                              "memoryview", "object", "bool", "bigint"])
def test_wrong_key_type(filled, key):
    check_all(filled, key, TypeError, match="str or bytes")


@pytest.mark.parametrize("key", ["", b""], ids=["str", "bytes"])
def test_empty_key(filled, key):
    check_all(filled, key, ValueError, match="empty")


@pytest.mark.parametrize("key", [
    "x" * (cachee.KEY_MAX + 1),
    b"x" * (cachee.KEY_MAX + 1),
    "\u00e9" * (cachee.KEY_MAX // 2 + 1),  # fewer chars than the limit, more UTF-8 bytes
    "k" * (10 * cachee.KEY_MAX),
], ids=["str", "bytes", "utf8", "huge"])
def test_key_too_long(filled, key):
    check_all(filled, key, cachee.KeyTooLargeError)
    assert issubclass(cachee.KeyTooLargeError, ValueError)


def test_key_not_encodable(filled):
    check_all(filled, "bad\ud800surrogate", UnicodeEncodeError)


# --------------------------------------------------------------- values


def test_value_too_large(filled):
    vmax = filled.stats()["value_max"]
    big = b"\x01" * (vmax + 1)
    for call in [lambda c: c.set("a", big), lambda c: c.set("new", big),
                 lambda c: c.add("new", big), lambda c: c.__setitem__("a", big),
                 lambda c: c.set("a", memoryview(big)),
                 lambda c: c.set_many({"new1": b"small", "new2": big}),
                 lambda c: c.set_numpy("n", np.zeros(vmax // 8 + 1, dtype=np.float64)),
                 lambda c: c.set_numpy("new", np.zeros(vmax + 1, dtype=np.uint8))]:
        with pytest.raises(cachee.ValueTooLargeError):
            call(filled)
        for k in ("new", "new1", "new2"):
            assert k not in filled
        assert_unchanged(filled)


@pytest.mark.parametrize("value", ["text", 12, None, 1.5, [1, 2], {"a": 1}, object(),
                                   memoryview(b"abcdef")[::2]],
                         ids=["str", "int", "None", "float", "list", "dict", "object",
                              "strided"])
def test_bad_value_type(filled, value):
    for call in [lambda c: c.set("a", value), lambda c: c.set("new", value),
                 lambda c: c.add("new", value), lambda c: c.__setitem__("a", value),
                 lambda c: c.set_many([("new", b"ok"), ("a", value)])]:
        with pytest.raises(TypeError):
            call(filled)
        assert "new" not in filled
        assert_unchanged(filled)


# --------------------------------------------------------------- arrays


@pytest.mark.parametrize("array,match", [
    (np.array([1, "a", None], dtype=object), "object"),
    (np.zeros((2, 2), dtype=object), "object"),
    (np.zeros(3, dtype=[("a", "<i4"), ("o", "O")]), "object"),
    (np.arange(20, dtype=np.float32).reshape(4, 5)[:, ::2], "contiguous"),
    (np.arange(20, dtype=np.float32)[::3], "contiguous"),
    (np.asfortranarray(np.ones((3, 4))), "contiguous"),
    (np.ones((3, 4)).T, "contiguous"),
    (np.broadcast_to(np.arange(4.0), (100, 4)), "contiguous"),
], ids=["object", "object2d", "structured_object", "strided2d", "strided1d", "fortran",
        "transposed", "broadcast"])
def test_set_numpy_rejects_array(filled, array, match):
    for key in ("n", "new"):
        with pytest.raises(TypeError, match=match):
            filled.set_numpy(key, array)
        assert "new" not in filled
        assert_unchanged(filled)


@pytest.mark.parametrize("obj", [[1, 2, 3], b"bytes", 3, None, memoryview(b"abc")],
                         ids=["list", "bytes", "int", "None", "memoryview"])
def test_set_numpy_needs_an_ndarray(filled, obj):
    with pytest.raises(TypeError):
        filled.set_numpy("n", obj)
    assert_unchanged(filled)


# ------------------------------------------------------------------ TTL


@pytest.mark.parametrize("ttl", [-1, -0.001, -math.inf, math.nan, float("-nan")],
                         ids=["neg", "negsmall", "neginf", "nan", "negnan"])
def test_bad_ttl(filled, ttl):
    for call in [lambda c: c.set("a", b"new", ttl=ttl), lambda c: c.set("new", b"v", ttl),
                 lambda c: c.add("new", b"v", ttl=ttl),
                 lambda c: c.set_numpy("n", ARR * 2, ttl=ttl),
                 lambda c: c.set_many({"new": b"v", "a": b"x"}, ttl=ttl)]:
        with pytest.raises(ValueError):
            call(filled)
        assert "new" not in filled
        assert_unchanged(filled)


@pytest.mark.parametrize("ttl", ["10", b"1", [1], object()], ids=["str", "bytes", "list", "object"])
def test_ttl_wrong_type(filled, ttl):
    for call in [lambda c: c.set("a", b"new", ttl=ttl), lambda c: c.add("new", b"v", ttl=ttl),
                 lambda c: c.set_numpy("n", ARR * 2, ttl=ttl),
                 lambda c: c.set_many({"new": b"v"}, ttl=ttl)]:
        with pytest.raises(TypeError):
            call(filled)
        assert "new" not in filled
        assert_unchanged(filled)


# ------------------------------------------------------ shape and dtype


@pytest.mark.parametrize("kw", [
    dict(shape=(4, 3)), dict(shape=(12,)), dict(shape=(3, 4, 1)), dict(shape=()),
    dict(shape=(-3, -4)), dict(dtype=np.float64), dict(dtype=np.int32),
    dict(dtype="f2"), dict(shape=(3, 4), dtype=np.uint32), dict(dtype=object),
], ids=lambda kw: "-".join("%s=%s" % i for i in kw.items()))
def test_get_numpy_mismatch(filled, kw):
    with pytest.raises(cachee.MismatchError):
        filled.get_numpy("n", **kw)
    with pytest.raises(ValueError):  # MismatchError is a ValueError
        filled.get_numpy("n", **kw)
    assert_unchanged(filled)


@pytest.mark.parametrize("kw", [
    dict(shape=(7,), dtype=np.float32),
    dict(shape=(1000,), dtype=np.float64),     # would read past the value
    dict(shape=(25,)),                         # 25 bytes of a 24-byte value
    dict(shape=()),                            # a scalar is 1 byte, not 24
    dict(shape=(-24,)),
    dict(shape=(2, -12)),
    dict(dtype=np.dtype("V5")),                # 24 is not a multiple of 5
    dict(dtype=np.float64, shape=(2, 2)),
    # element counts whose product wraps around 2**64 to exactly 24 bytes
    dict(shape=(4, 2 ** 62 + 6), dtype=np.uint8),
    dict(shape=(8, 2 ** 61 + 3)),
    dict(shape=(2, 2 ** 61 + 3), dtype=np.float32),
], ids=["7f4", "1000f8", "25", "scalar", "neg", "neg2", "V5", "f8x4", "wrap_u8", "wrap_raw",
        "wrap_f4"])
def test_get_numpy_raw_mismatch(filled, kw):
    with pytest.raises(cachee.MismatchError):
        filled.get_numpy("raw", **kw)
    assert_unchanged(filled)


def test_get_numpy_raw_as_object_dtype(filled):
    with pytest.raises(TypeError):
        filled.get_numpy("raw", dtype=object)
    with pytest.raises(TypeError):
        filled.get_numpy("raw", dtype="U0")
    assert_unchanged(filled)


@pytest.mark.parametrize("kw,exc", [
    (dict(dtype="not-a-dtype"), TypeError),
    (dict(shape="abc"), TypeError),
    (dict(shape=3.5), TypeError),
    (dict(nonsense=1), TypeError),
], ids=["dtype", "shape_str", "shape_float", "kw"])
def test_get_numpy_bad_arguments(filled, kw, exc):
    with pytest.raises(exc):
        filled.get_numpy("n", **kw)
    assert_unchanged(filled)


def test_get_numpy_batch_errors(filled):
    filled.set_numpy("v1", np.zeros(4, dtype=np.float32))
    filled.set_numpy("v2", np.zeros(5, dtype=np.float32))
    filled.set_numpy("v3", np.zeros(4, dtype=np.int32))
    filled.set_numpy("v4", np.zeros((2, 2), dtype=np.float32))
    base = filled.stats()
    with pytest.raises(KeyError, match="missing"):
        filled.get_numpy_batch(["v1", "missing"])
    with pytest.raises(cachee.MismatchError):
        filled.get_numpy_batch(["v1", "v2"])
    with pytest.raises(cachee.MismatchError):
        filled.get_numpy_batch(["v1", "v3"])
    with pytest.raises(cachee.MismatchError):
        filled.get_numpy_batch(["v1", "v4"])
    with pytest.raises(cachee.MismatchError):
        filled.get_numpy_batch(["v1"], dtype=np.float64)
    with pytest.raises(ValueError):
        filled.get_numpy_batch([])
    with pytest.raises(TypeError):
        filled.get_numpy_batch(["v1", 3])
    with pytest.raises(TypeError):
        filled.get_numpy_batch(7)
    s = filled.stats()
    assert s["sets"] == base["sets"] and s["entries"] == base["entries"]
    assert s["pins"] == base["pins"]  # every error path released its pins


# ------------------------------------------------------- use after close


def test_use_after_close(region_path):
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    c.set("a", b"1")
    keep = c.get_numpy("a")
    c.close()
    calls = [lambda: c.get("a"), lambda: c.set("a", b"2"), lambda: c.add("b", b"2"),
             lambda: c.set_numpy("a", ARR), lambda: c.get_numpy("a"),
             lambda: c.get_buffer("a"), lambda: c.get_view("a"), lambda: c.delete("a"),
             lambda: "a" in c, lambda: len(c), lambda: c["a"],
             lambda: c.__setitem__("a", b"2"), lambda: c.__delitem__("a"),
             lambda: c.get_many(["a"]), lambda: c.set_many({"a": b"2"}),
             lambda: c.get_numpy_batch(["a"]), lambda: c.stats(), lambda: c.check(),
             lambda: c.unlink(), lambda: c.__enter__()]
    for i, call in enumerate(calls):
        with pytest.raises(cachee.ClosedError):
            call()
            pytest.fail("call %d worked on a closed cache" % i)
    assert issubclass(cachee.ClosedError, cachee.CacheError)
    assert keep.tobytes() == b"1"
    assert os.path.exists(region_path)  # unlink() refused
    with SharedCache.open(region_path) as d:
        assert d.get("a") == b"1"
        assert len(d) == 1


# ---------------------------------------------------------- bad regions


def file_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def open_calls(path):
    return [("open", lambda: SharedCache.open(path)),
            ("create", lambda: SharedCache(path, size_bytes=tu.REGION_BYTES)),
            ("attach", lambda: SharedCache(path))]


def assert_refused(path, exc, other):
    """Every way of opening path raises exc; the file and the other region
    (a filled cache) are unchanged."""
    before = file_digest(path) if os.path.isfile(path) and not os.path.islink(path) else None
    for name, call in open_calls(path):
        with pytest.raises(exc):
            call()
            pytest.fail("%s opened %s" % (name, path))
        if before is not None:
            assert file_digest(path) == before, name
    assert_unchanged(other)


def test_open_symlink(filled, region_path, make_path):
    link = make_path("link")
    os.symlink(region_path, link)
    assert_refused(link, cachee.UnsafePathError, filled)
    assert os.path.islink(link)
    # a dangling symlink must not create its target
    target = make_path("target")
    dangling = make_path("dangling")
    os.symlink(target, dangling)
    assert_refused(dangling, cachee.UnsafePathError, filled)
    assert not os.path.exists(target)
    # unlink() refuses symlinks too, and leaves the region alone
    with pytest.raises(cachee.UnsafePathError):
        cachee.unlink(link)
    assert os.path.exists(region_path)


def test_open_directory(filled, make_path):
    d = make_path("dir")
    os.mkdir(d, 0o700)
    assert_refused(d, cachee.UnsafePathError, filled)
    with pytest.raises(cachee.UnsafePathError):
        cachee.unlink(d)
    assert os.path.isdir(d)


@pytest.mark.parametrize("content", [b"", b"short", os.urandom(2 << 20),
                                     b"\x00" * (2 << 20), b"cacheeL1" + b"\x00" * 8192],
                         ids=["empty", "short", "random", "zeros", "othermagic"])
def test_open_non_region_file(filled, make_path, content):
    p = make_path("junk")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    os.write(fd, content)
    os.close(fd)
    assert_refused(p, cachee.NotARegionError, filled)
    with pytest.raises(cachee.NotARegionError):
        cachee.unlink(p)
    assert os.path.exists(p)


def make_region(path):
    c = SharedCache(path, size_bytes=tu.REGION_BYTES)
    c.set("inside", b"data")
    c.close()


def patch_u64(path, offset, fn):
    fd = os.open(path, os.O_RDWR)
    try:
        old = struct.unpack("=Q", os.pread(fd, 8, offset))[0]
        os.pwrite(fd, struct.pack("=Q", fn(old)), offset)
    finally:
        os.close(fd)
    return old


def test_open_region_of_another_format(filled, make_path):
    p = make_path("format")
    make_region(p)
    old = patch_u64(p, 8, lambda f: f ^ 1)  # the format word (layout version)
    assert_refused(p, cachee.FormatError, filled)
    patch_u64(p, 8, lambda f: old)
    with SharedCache.open(p) as c:
        assert c.get("inside") == b"data"


def test_open_region_with_other_magic(filled, make_path):
    p = make_path("magic")
    make_region(p)
    old = patch_u64(p, 0, lambda m: m ^ 0xFF)
    assert_refused(p, cachee.NotARegionError, filled)
    patch_u64(p, 0, lambda m: old)
    with SharedCache.open(p) as c:
        assert c.get("inside") == b"data"


def test_open_region_with_bad_geometry(filled, make_path):
    p = make_path("geometry")
    make_region(p)
    patch_u64(p, 64, lambda s: s * 2)  # segment size
    for name, call in open_calls(p):
        with pytest.raises(cachee.CorruptRegionError):
            call()
    assert_unchanged(filled)


def test_open_hard_linked_region(filled, region_path, make_path):
    link = make_path("hardlink")
    os.link(region_path, link)
    assert_refused(link, cachee.UnsafePathError, filled)
    assert_refused(region_path, cachee.UnsafePathError, filled)


def test_open_region_with_loose_permissions(filled, make_path):
    p = make_path("loose")
    make_region(p)
    os.chmod(p, 0o644)
    assert_refused(p, cachee.LoosePermissionsError, filled)
    with SharedCache.open(p, allow_loose_mode=True) as c:
        assert c.get("inside") == b"data"
    with SharedCache.open(p, mode=0o644) as c:
        assert c.get("inside") == b"data"


def test_open_not_on_shared_memory(filled):
    d = tu.TESTS_DIR
    with open("/proc/self/mounts") as f:
        mounts = [line.split() for line in f]
    best = max((m for m in mounts if d.startswith(m[1].rstrip("/") + "/") or d == m[1]),
               key=lambda m: len(m[1]))
    if best[2] in ("tmpfs", "hugetlbfs"):
        pytest.skip("the tests directory is on tmpfs")
    p = os.path.join(d, "%snotshm-%d" % (tu.PREFIX, os.getpid()))
    try:
        with pytest.raises(cachee.NotSharedMemoryError):
            SharedCache(p, size_bytes=tu.REGION_BYTES)
        assert not os.path.exists(p)
    finally:
        if os.path.exists(p):
            os.unlink(p)
    assert_unchanged(filled)


def test_open_missing(filled, make_path):
    p = make_path("missing")
    with pytest.raises(cachee.RegionNotFoundError):
        SharedCache.open(p)
    with pytest.raises(FileNotFoundError):
        SharedCache(p, create=False)
    assert not os.path.exists(p)
    with pytest.raises(cachee.RegionNotFoundError):
        cachee.unlink(p)
    assert_unchanged(filled)


@pytest.mark.parametrize("path,exc", [
    ("", cachee.UnsafePathError), (".", cachee.UnsafePathError),
    ("..", cachee.UnsafePathError), ("a" * 5000, cachee.UnsafePathError),
    ("/dev/shm/" + "b" * 300, (cachee.UnsafePathError, OSError)),  # ENAMETOOLONG
], ids=["empty", "dot", "dotdot", "long", "longname"])
def test_bad_path(filled, path, exc):
    for name, call in open_calls(path):
        with pytest.raises(exc):
            call()
    with pytest.raises(exc):
        cachee.unlink(path)
    assert_unchanged(filled)


def test_path_with_nul(filled):
    for name, call in open_calls("a\0b"):
        with pytest.raises(ValueError):
            call()
    assert_unchanged(filled)


@pytest.mark.parametrize("kw,exc", [
    (dict(size_gb=0), cachee.RegionSizeError),
    (dict(size_gb=-1), cachee.RegionSizeError),
    (dict(size_gb=math.nan), cachee.RegionSizeError),
    (dict(size_gb=math.inf), cachee.RegionSizeError),
    (dict(size_gb="2"), TypeError),
    (dict(size_bytes=100), cachee.RegionSizeError),
    (dict(size_bytes=0), cachee.RegionSizeError),
    (dict(size_bytes=-1), cachee.RegionSizeError),
    (dict(size_bytes=1 << 50), cachee.RegionSizeError),
    (dict(size_gb=1, mode=0o7777), ValueError),
    (dict(size_gb=1, mode=-1), (ValueError, OverflowError)),
    (dict(size_gb=1, open_timeout=-1), ValueError),
    (dict(size_gb=1, view_cache=-1), ValueError),
    (dict(size_gb=1, nonsense=True), TypeError),
], ids=lambda x: str(x)[:30])
def test_bad_creation_parameters(filled, make_path, kw, exc):
    p = make_path("params")
    with pytest.raises(exc):
        SharedCache(p, **kw)
    assert not os.path.exists(p)
    assert_unchanged(filled)


def test_existing_region_of_another_size(filled, region_path):
    for size in (tu.REGION_BYTES * 2, tu.REGION_BYTES // 2):
        with pytest.raises(cachee.RegionSizeError):
            SharedCache(region_path, size_bytes=size)
    with pytest.raises(cachee.RegionSizeError):
        SharedCache(region_path, size_gb=1)
    assert os.path.getsize(region_path) == tu.REGION_BYTES
    assert_unchanged(filled)


def test_exceptions_are_cache_errors():
    for name in cachee._errors.__all__:
        cls = getattr(cachee, name)
        assert issubclass(cls, cachee.CacheError)
        assert cls.__doc__
