"""Security: the claims of SECURITY.md that no other suite proves.

The threat is a local user who shares /dev/shm (sticky, world-writable) with
the victim.  Tests that play that user fork a child that drops to uid/gid
65534 (``nobody``) after closing every inherited descriptor, so it holds
nothing of the victim's; they need root and are skipped otherwise.  Reads of
crafted regions run in forked children too, so that a crash is reported as a
failure of one test instead of killing the session.

Already proven elsewhere (SECURITY.md cites them): same-user symlinks,
directories, non-region files, other magic/format, bad geometry, hard links,
loose modes (tests/python/test_badinput.py, tests/c/test_badinput.c), numpy
refusing writes and PROT_READ mappings (tests/python/test_api.py), corrupt
regions in the engine (core/l0 FuzzCorruptRegion).
"""
import ast  # noqa: F401  (imported before any fork: meta.c imports it lazily)
import ctypes
import errno
import faulthandler
import gc
import hashlib
import io
import json
import os
import pwd
import re
import select
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import tokenize

import numpy as np
import pytest

import cachee
import cachee_testutil as tu
from cachee import SharedCache

NOBODY = 65534
IS_ROOT = os.geteuid() == 0


def _nobody_exists():
    try:
        pwd.getpwuid(NOBODY)
        return True
    except KeyError:
        return False


needs_root = pytest.mark.skipif(not IS_ROOT or not _nobody_exists(),
                                reason="needs root and a uid 65534 to play the attacker")

# ------------------------------------------------------------------ helpers


def run_forked(fn, uid=None, gid=None, timeout=120.0):
    """Run fn() in a forked child, as uid/gid when given (every inherited
    descriptor closed first).  Returns (wait status, result): result is
    {"ok": fn's JSON-able return value} or {"exc": class name, "errno": ...}.
    A child that does not finish in time (a hang guard: generous, for a
    slow, loaded machine) is killed and the test fails."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r)
            faulthandler.disable()  # a crash is reported by the wait status
            if uid is not None:
                os.closerange(3, w)
                os.closerange(w + 1, 1 << 16)
                os.setgroups([])
                os.setgid(gid if gid is not None else uid)
                os.setuid(uid)
            try:
                out = {"ok": fn()}
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                out = {"exc": type(e).__name__, "errno": getattr(e, "errno", None),
                       "msg": str(e)[:300]}
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("child did not finish within %.0f s (hang)" % timeout)
            b = os.read(r, 65536)
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(r)
    _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    return status, (json.loads(data) if data else None)


def as_nobody(fn, timeout=120.0):
    return run_forked(fn, uid=NOBODY, gid=NOBODY, timeout=timeout)


def assert_clean_exit(status, what):
    """The child finished its work (it always exits 0 once it reported)."""
    if os.WIFSIGNALED(status):
        pytest.fail("%s: the child was killed by signal %d (%s)"
                    % (what, os.WTERMSIG(status), signal.Signals(os.WTERMSIG(status)).name))
    if os.WEXITSTATUS(status) != 0:
        pytest.fail("%s: the child died with exit status %d before reporting (a crash "
                    "caught by a sanitizer prints its report above)"
                    % (what, os.WEXITSTATUS(status)))


def fingerprint(path):
    """What must not change about a victim's file: content, size, mode,
    owner, link count and modification time."""
    st = os.lstat(path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return (digest, st.st_size, st.st_mode, st.st_uid, st.st_nlink, st.st_mtime_ns)


def write_file(path, data, mode=0o600):
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, mode)


def make_filled_region(path, **kw):
    with SharedCache(path, size_bytes=tu.REGION_BYTES, **kw) as c:
        c.set("victim:secret", b"s3cret" * 10)
        c.set_numpy("victim:array", np.arange(16, dtype=np.float32))


def assert_victim_region_intact(path):
    with SharedCache.open(path) as c:
        assert c.get("victim:secret") == b"s3cret" * 10
        np.testing.assert_array_equal(c.get_numpy("victim:array"),
                                      np.arange(16, dtype=np.float32))
        c.check()


def open_attempts(path):
    """Every way a victim opens a path, create=True first."""
    return [
        ("create", lambda: SharedCache(path, size_bytes=tu.REGION_BYTES, create=True)),
        ("attach", lambda: SharedCache(path)),
        ("open", lambda: SharedCache.open(path)),
        ("create_mode", lambda: SharedCache(path, size_bytes=tu.REGION_BYTES,
                                            mode=0o600)),
    ]


def assert_all_refused(path, exc):
    for name, call in open_attempts(path):
        with pytest.raises(exc):
            call()
            pytest.fail("%s opened %s" % (name, path))


@pytest.fixture
def victim_tmpdir():
    """A private directory of the victim outside /dev/shm."""
    d = tempfile.mkdtemp(prefix="cachee-sec-victim-")
    yield d
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)


# ===================================================== (a) pre-created names


@needs_root
@pytest.mark.parametrize("target", ["victim_file", "victim_shm_file", "victim_region",
                                    "dangling"])
def test_attacker_symlink_is_refused(make_path, victim_tmpdir, target):
    """The attacker plants /dev/shm/NAME -> a file of the victim.  The
    victim's SharedCache(NAME, create=True) and every other open raise
    UnsafePathError (O_NOFOLLOW), cachee.unlink refuses too, and the target
    is untouched (bytes, mode, mtime) or, dangling, not created."""
    if target == "victim_file":
        tgt = os.path.join(victim_tmpdir, "model.bin")
        write_file(tgt, os.urandom(20000))
    elif target == "victim_shm_file":
        tgt = make_path("victimfile")
        write_file(tgt, os.urandom(20000))
    elif target == "victim_region":
        tgt = make_path("victimregion")
        make_filled_region(tgt)
    else:
        tgt = os.path.join(victim_tmpdir, "would-be-created")
    before = fingerprint(tgt) if target != "dangling" else None
    ctime = os.lstat(tgt).st_ctime_ns if before else None
    name = make_path("planted")

    status, res = as_nobody(lambda: os.symlink(tgt, name))
    assert_clean_exit(status, "attacker")
    assert res == {"ok": None}, res
    assert os.lstat(name).st_uid == NOBODY and os.path.islink(name)

    assert_all_refused(name, cachee.UnsafePathError)
    with pytest.raises(cachee.UnsafePathError):
        cachee.unlink(name)
    assert os.path.islink(name) and os.readlink(name) == tgt
    if before is None:
        assert not os.path.exists(tgt)
    else:
        assert fingerprint(tgt) == before
        assert os.lstat(tgt).st_ctime_ns == ctime
    if target == "victim_region":
        assert_victim_region_intact(tgt)


def _protected_hardlinks():
    try:
        with open("/proc/sys/fs/protected_hardlinks") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


@needs_root
@pytest.mark.parametrize("target", ["victim_file", "victim_region"])
def test_attacker_hard_link_is_refused(make_path, target):
    """The attacker hard-links a file of the victim (same filesystem) to
    /dev/shm/NAME.  With fs.protected_hardlinks=1 the kernel already refuses
    (EPERM); the link is then made as root, as on a kernel without that
    protection, and cachee must refuse it by itself: a region with two links
    is UnsafePathError, a file that is not a region NotARegionError (checked
    before the link count), and the file is untouched."""
    tgt = make_path("victim")
    if target == "victim_file":
        write_file(tgt, os.urandom(3 << 20))
    else:
        make_filled_region(tgt)
    name = make_path("planted")

    status, res = as_nobody(lambda: os.link(tgt, name))
    assert_clean_exit(status, "attacker")
    if _protected_hardlinks():
        assert res.get("errno") == errno.EPERM, res
    if not os.path.exists(name):
        os.link(tgt, name)  # what a kernel without protected_hardlinks allows
    before = fingerprint(tgt)
    exc = cachee.UnsafePathError if target == "victim_region" else (
        cachee.UnsafePathError, cachee.NotARegionError)
    assert_all_refused(name, exc)
    # the victim's own name is hard-linked as well now: refused the same way
    assert_all_refused(tgt, exc)
    assert fingerprint(tgt) == before
    if target == "victim_region":
        os.unlink(name)
        assert_victim_region_intact(tgt)


@needs_root
@pytest.mark.parametrize("mode", [0o600, 0o666], ids=["0600", "0666"])
def test_attacker_precreated_region_is_refused(make_path, mode):
    """The attacker creates a valid region of its own at the victim's name,
    with a planted value.  The victim's SharedCache(NAME, create=True) raises
    RegionOwnerError (a PermissionError) and does not touch it; only
    allow_foreign_owner=True (and, for a loose mode, allow_loose_mode=True)
    makes the victim use it -- which means trusting that user."""
    name = make_path("squatted")

    def attacker():
        with SharedCache(name, size_bytes=tu.REGION_BYTES, mode=mode) as c:
            c.set("victim:secret", b"planted by the attacker")
        return oct(os.stat(name).st_mode & 0o777)

    status, res = as_nobody(attacker)
    assert_clean_exit(status, "attacker")
    assert res == {"ok": oct(mode)}, res
    assert os.stat(name).st_uid == NOBODY
    before = fingerprint(name)

    assert_all_refused(name, cachee.RegionOwnerError)
    assert issubclass(cachee.RegionOwnerError, PermissionError)
    assert fingerprint(name) == before
    if mode == 0o666:
        with pytest.raises(cachee.LoosePermissionsError):
            SharedCache.open(name, allow_foreign_owner=True)
        assert fingerprint(name) == before
    with SharedCache.open(name, allow_foreign_owner=True,
                          allow_loose_mode=mode != 0o600) as c:
        assert c.get("victim:secret") == b"planted by the attacker"


@needs_root
@pytest.mark.parametrize("kind", ["junk_file", "empty_file", "fifo"])
def test_attacker_precreated_file_is_refused(make_path, kind):
    """A file (or FIFO) of the attacker at the victim's name: refused
    (RegionOwnerError for a regular file, UnsafePathError for a FIFO) at
    once, without blocking and without writing to it."""
    name = make_path(kind)

    def attacker():
        if kind == "fifo":
            os.mkfifo(name, 0o666)
        else:
            write_file(name, b"" if kind == "empty_file" else os.urandom(1 << 20), 0o666)
        os.chmod(name, 0o666)

    status, res = as_nobody(attacker)
    assert_clean_exit(status, "attacker")
    assert res == {"ok": None}, res
    before = os.lstat(name)
    digest = fingerprint(name) if kind != "fifo" else None
    exc = cachee.UnsafePathError if kind == "fifo" else cachee.RegionOwnerError

    def victim():
        for label, call in open_attempts(name):
            try:
                call()
                return "%s opened it" % label
            except exc:
                pass
        return "refused"

    status, res = run_forked(victim, timeout=120)
    assert_clean_exit(status, "victim")
    assert res == {"ok": "refused"}, res
    after = os.lstat(name)
    assert (after.st_mode, after.st_uid, after.st_size, after.st_mtime_ns) == (
        before.st_mode, before.st_uid, before.st_size, before.st_mtime_ns)
    if digest:
        assert fingerprint(name) == digest


@needs_root
def test_unlink_refuses_a_fifo_without_blocking(make_path):
    """cachee.unlink() on a FIFO planted at a region's name must refuse it
    (UnsafePathError) at once, not wait for a writer to open the FIFO."""
    name = make_path("fifo_unlink")
    status, res = as_nobody(lambda: os.mkfifo(name, 0o666))
    assert_clean_exit(status, "attacker")

    def victim():
        try:
            cachee.unlink(name)
        except cachee.UnsafePathError:
            return "refused"
        return "removed"

    status, res = run_forked(victim, timeout=120)  # a FIFO open would block forever
    assert_clean_exit(status, "victim")
    assert res == {"ok": "refused"}, res
    assert stat.S_ISFIFO(os.lstat(name).st_mode)


# ============================================== (b), (c) who may open a region


@needs_root
def test_other_user_cannot_open_or_remove_a_region(region_path):
    """A region created with the default mode is 0600: another uid cannot
    open it (PermissionError/EACCES from open(2), an OSError, whatever the
    allow_* flags), cannot read its bytes, and cannot remove or rename its
    name (sticky /dev/shm).  The region is unchanged afterwards."""
    old = os.umask(0)
    try:
        make_filled_region(region_path)
    finally:
        os.umask(old)
    assert os.stat(region_path).st_mode & 0o7777 == 0o600
    gc.collect()
    assert tu.region_mappings(region_path) == []  # the attacker inherits no mapping
    before = fingerprint(region_path)

    def attacker():
        out = {}
        tries = {
            "open": lambda: SharedCache.open(region_path),
            "open_allow_all": lambda: SharedCache.open(region_path, allow_foreign_owner=True,
                                                       allow_loose_mode=True, mode=0o777),
            "create": lambda: SharedCache(region_path, size_bytes=tu.REGION_BYTES),
            "os_open_read": lambda: os.open(region_path, os.O_RDONLY),
            "cachee_unlink": lambda: cachee.unlink(region_path),
            "os_unlink": lambda: os.unlink(region_path),
            "os_rename": lambda: os.rename(region_path, region_path + "-stolen"),
        }
        for label, call in tries.items():
            try:
                call()
                out[label] = "succeeded"
            except OSError as e:
                out[label] = [type(e).__name__, errno.errorcode.get(e.errno, e.errno),
                              isinstance(e, cachee.CacheError)]
        return out

    status, res = as_nobody(attacker)
    assert_clean_exit(status, "attacker")
    out = res["ok"]
    for label in ("open", "open_allow_all", "create", "os_open_read", "cachee_unlink"):
        assert out[label] == ["PermissionError", "EACCES", False], (label, out)
    for label in ("os_unlink", "os_rename"):
        assert out[label] == ["PermissionError", "EPERM", False], (label, out)
    assert fingerprint(region_path) == before
    assert not os.path.exists(region_path + "-stolen")
    assert_victim_region_intact(region_path)


def test_mode_is_exact_and_umask_is_not_applied(make_path):
    """A region gets exactly the mode asked for: the umask neither narrows
    nor is needed to narrow it."""
    cases = [(0o077, None, 0o600), (0o000, None, 0o600), (0o077, 0o660, 0o660),
             (0o022, 0o666, 0o666), (0o277, 0o640, 0o640)]
    for umask, mode, want in cases:
        p = make_path("mode%o" % want)
        old = os.umask(umask)
        try:
            kw = {} if mode is None else {"mode": mode}
            with SharedCache(p, size_bytes=tu.REGION_BYTES, **kw) as c:
                c.set("k", b"v")
        finally:
            os.umask(old)
        got = os.stat(p).st_mode & 0o7777
        assert got == want, "umask %o mode %r: got %o" % (umask, mode, got)


def test_loose_mode_refused_unless_allowed(make_path):
    """A region created with mode 0o660 is refused by an opener asking for
    0o600 (LoosePermissionsError, a PermissionError) and accepted with
    allow_loose_mode=True or mode=0o660."""
    p = make_path("loose660")
    with SharedCache(p, size_bytes=tu.REGION_BYTES, mode=0o660) as c:
        c.set("k", b"v")
    before = fingerprint(p)
    for call in (lambda: SharedCache.open(p),
                 lambda: SharedCache.open(p, mode=0o600),
                 lambda: SharedCache(p, size_bytes=tu.REGION_BYTES),
                 lambda: SharedCache(p, mode=0o640)):
        with pytest.raises(cachee.LoosePermissionsError):
            call()
    assert issubclass(cachee.LoosePermissionsError, PermissionError)
    assert fingerprint(p) == before
    for kw in (dict(allow_loose_mode=True), dict(mode=0o660), dict(mode=0o666)):
        with SharedCache.open(p, **kw) as c:
            assert c.get("k") == b"v"


@needs_root
def test_group_sharing_needs_write_access_and_allow_foreign_owner(make_path):
    """Sharing with another user works only by granting it write access:
    every process that opens a region writes to it (process slots, pins,
    counters).  A group member of a 0640 region gets EACCES; of a 0660
    region, RegionOwnerError unless it passes allow_foreign_owner=True."""
    ro, rw = make_path("group640"), make_path("group660")
    make_filled_region(ro, mode=0o640)
    make_filled_region(rw, mode=0o660)
    for p in (ro, rw):
        os.chown(p, 0, NOBODY)

    def member():
        out = {}
        try:
            SharedCache.open(ro, mode=0o640, allow_foreign_owner=True)
            out["640"] = "opened"
        except OSError as e:
            out["640"] = [type(e).__name__, errno.errorcode.get(e.errno)]
        try:
            SharedCache.open(rw, mode=0o660)
            out["660_plain"] = "opened"
        except cachee.CacheError as e:
            out["660_plain"] = type(e).__name__
        with SharedCache.open(rw, mode=0o660, allow_foreign_owner=True) as c:
            out["660_read"] = c.get("victim:secret").decode()
            c.set("from:member", b"hello")
        return out

    status, res = as_nobody(member)
    assert_clean_exit(status, "group member")
    assert res["ok"] == {"640": ["PermissionError", "EACCES"],
                         "660_plain": "RegionOwnerError",
                         "660_read": "s3cret" * 10}, res
    with SharedCache.open(rw, mode=0o660) as c:
        assert c.get("from:member") == b"hello"


# ========================================================== (d) read-only views

WRITE_ROUTES = {
    "get_numpy_memmove": """
a = c.get_numpy(KEY)
src = bytes(range(64))
report(a.ctypes.data)
ctypes.memmove(a.ctypes.data, src, 64)
""",
    "get_buffer_memset": """
mv = c.get_buffer(KEY)
addr = np.frombuffer(mv, dtype=np.uint8).ctypes.data
report(addr)
ctypes.memset(addr, 0xAB, 64)
""",
    "view_dlpack_memmove": """
v = c.get_view(KEY)
d = np.from_dlpack(v)
report(d.ctypes.data)
ctypes.memmove(d.ctypes.data + 8, b"\\xff" * 8, 8)
""",
    "torch_from_numpy_add_": """
import torch, warnings
warnings.simplefilter("ignore")
t = torch.from_numpy(c.get_numpy(KEY))
report(t.data_ptr())
t.add_(1)
""",
    "torch_from_dlpack_add_": """
import torch
t = torch.from_dlpack(c.get_view(KEY))
report(t.data_ptr())
t.add_(1)
""",
}

WRITER_PRELUDE = """
import ctypes, sys, numpy as np, cachee
KEY = "shared:weights"
c = cachee.SharedCache.open(sys.argv[1])
def report(addr):
    sys.stdout.write("about to write at %#x\\n" % addr)
    sys.stdout.flush()
"""


def _has_torch():
    r = subprocess.run([sys.executable, "-c", "import torch"], env=tu.child_env(),
                       capture_output=True, timeout=300)
    return r.returncode == 0


_TORCH = None


@pytest.mark.parametrize("route", list(WRITE_ROUTES))
def test_writing_through_a_view_kills_only_the_writer(region_path, route):
    """ctypes (or torch) writing through a view crashes the writing process
    with SIGSEGV (the view is a PROT_READ mapping); the value is unchanged
    for this process and for a fresh one."""
    global _TORCH
    if route.startswith("torch"):
        if _TORCH is None:
            _TORCH = _has_torch()
        if not _TORCH:
            pytest.skip("torch is not installed")
    value = np.arange(64, dtype=np.uint8)
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    c.set_numpy("shared:weights", value)
    keep = c.get_numpy("shared:weights")
    r = subprocess.run([sys.executable, "-c", WRITER_PRELUDE + WRITE_ROUTES[route]
                        + "\nprint('WROTE')\n", region_path],
                       env=tu.child_env(), capture_output=True, text=True, timeout=300)
    assert "about to write" in r.stdout, (r.stdout, r.stderr)
    assert "WROTE" not in r.stdout
    asan_segv = "AddressSanitizer" in r.stderr and "SEGV" in r.stderr
    assert r.returncode == -signal.SIGSEGV or asan_segv, (r.returncode, r.stderr[-2000:])
    np.testing.assert_array_equal(keep, value)
    np.testing.assert_array_equal(c.get_numpy("shared:weights"), value)
    check = subprocess.run(
        [sys.executable, "-c",
         "import sys, cachee; c = cachee.SharedCache.open(sys.argv[1]);"
         "print(bytes(c.get_numpy('shared:weights')).hex())", region_path],
        env=tu.child_env(), capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == value.tobytes().hex()
    c.check()
    del keep
    c.close()


def _get_writable_buffer(obj):
    """PyObject_GetBuffer(obj, PyBUF_WRITABLE): what a C consumer asking for
    a writable buffer gets."""
    fn = ctypes.pythonapi.PyObject_GetBuffer
    fn.argtypes = [ctypes.py_object, ctypes.c_void_p, ctypes.c_int]
    fn.restype = ctypes.c_int
    view = ctypes.create_string_buffer(256)  # a Py_buffer is 80 bytes
    PyBUF_WRITABLE = 0x0001
    rc = fn(obj, view, PyBUF_WRITABLE)
    if rc == 0:  # pragma: no cover - would be the bug
        ctypes.pythonapi.PyBuffer_Release.argtypes = [ctypes.c_void_p]
        ctypes.pythonapi.PyBuffer_Release(view)
    return rc


def test_no_writable_buffer_can_be_obtained(cache):
    """Nothing cachee hands out exports a writable buffer: View refuses with
    BufferError, the memoryview of get_buffer() with BufferError, and numpy
    refuses for the arrays of get_numpy() (ValueError), also after a
    setflags(write=True) attempt."""
    cache.set_numpy("a", np.arange(8, dtype=np.int64))
    v = cache.get_view("a")
    with pytest.raises(BufferError, match="read-only"):
        _get_writable_buffer(v)
    with pytest.raises(BufferError):
        _get_writable_buffer(cache.get_buffer("a"))
    arr = cache.get_numpy("a")
    with pytest.raises(ValueError):
        arr.setflags(write=True)
    with pytest.raises((ValueError, BufferError)):
        _get_writable_buffer(arr)
    with pytest.raises(ValueError):
        _get_writable_buffer(v.numpy())
    with pytest.raises(TypeError):
        ctypes.c_int64.from_buffer(arr)
    np.testing.assert_array_equal(cache.get_numpy("a"), np.arange(8))


# ====================================================== (e) crafted regions

K_ARRAY = b"sec:crafted:array"
K_STRUCT = b"sec:crafted:struct"
K_RAW = b"sec:crafted:raw"
OTHER_BYTES = b"other:bytes"
OTHER_ARRAY = b"other:array"
# struct cachee_l0_shm_record (include/cachee_l0.h): a 32-byte header, then
# the key and the metadata.
REC_HEADER = 32
# Byte-swapped, so stored in the 'N1' form (dtype string and int64 shape);
# COMPACT in the compact 'n' form (dtype code and uint32 shape).
ARRAY = np.arange(4, dtype=">f8").reshape(2, 2)  # 'N1', ndim 2, ">f8"
K_COMPACT = b"sec:crafted:compact"
COMPACT = np.arange(4, dtype=np.float64).reshape(2, 2)  # 'n', code of "<f8", ndim 2
RAW = bytes(range(256)) * 4


def _long_structured_dtype():
    """A structured dtype whose repr(descr) is ~3.9 KB: room to plant large
    crafted literals in its stored metadata without moving anything."""
    fields, n = [], 0
    while True:
        fields.append(("f%03d_" % n + "x" * 90, "<f8"))
        n += 1
        if len(repr(np.dtype(fields).descr)) > 3700:
            return np.dtype(fields)


STRUCT_DTYPE = _long_structured_dtype()


def _locate(img, key):
    """(offset of the record header, key_len, meta_len) of key's record."""
    i = img.find(key)
    assert i > 32 and img.find(key, i + 1) == -1, key
    h = i - REC_HEADER
    magic, = struct.unpack_from("=H", img, h + 4)
    assert magic == 0x5230, hex(magic)
    key_len, meta_len = struct.unpack_from("=HH", img, h + 28)
    assert key_len == len(key)
    return h, key_len, meta_len


def _crafted_region(path):
    with SharedCache(path, size_bytes=tu.REGION_BYTES) as c:
        c.set_numpy(K_ARRAY, ARRAY)
        c.set_numpy(K_COMPACT, COMPACT)
        # nonzero bytes: read as object pointers they point nowhere
        c.set_numpy(K_STRUCT, np.arange(2 * STRUCT_DTYPE.itemsize // 8,
                                        dtype=np.float64).view(STRUCT_DTYPE))
        c.set(K_RAW, RAW)
        c.set(OTHER_BYTES, b"still fine")
        c.set_numpy(OTHER_ARRAY, np.arange(10, dtype=np.int32))
    with open(path, "rb") as f:
        return f.read()


def _patch(path, offset, data):
    fd = os.open(path, os.O_RDWR)
    try:
        assert os.pwrite(fd, data, offset) == len(data)
    finally:
        os.close(fd)


def _read_crafted(path, key):
    """Every read of key (touching every element returned), then the other
    keys; in a forked child."""
    def child():
        out = {}
        c = SharedCache.open(path, view_cache=0)
        calls = {
            "get_numpy": lambda: c.get_numpy(key),
            "get_numpy_checked": lambda: c.get_numpy(key, shape=(2, 2), dtype=np.float64),
            "view_numpy": lambda: c.get_view(key).numpy(),
            "view_dtype": lambda: c.get_view(key).dtype,
            "batch": lambda: c.get_numpy_batch([key]),
            "get_buffer": lambda: c.get_buffer(key),
            "get": lambda: c.get(key),
        }
        for label, call in calls.items():
            try:
                r = call()
                if isinstance(r, np.ndarray):
                    repr(r), r.tolist()  # touch every element
                    r = "array %s %s" % (r.dtype, r.shape)
                elif isinstance(r, memoryview):
                    r = "buffer %d" % len(bytes(r))
                elif isinstance(r, bytes):
                    r = "bytes %d" % len(r)
                else:
                    r = repr(r)[:80]
                out[label] = "ok: " + r
            except BaseException as e:  # noqa: BLE001
                out[label] = type(e).__name__
        out["others"] = (c.get(OTHER_BYTES) == b"still fine" and
                         c.get_numpy(OTHER_ARRAY).tolist() == list(range(10)))
        c.close()
        return out

    status, res = run_forked(child, timeout=180)
    assert_clean_exit(status, "reader of a crafted region")
    assert "ok" in res, res
    return res["ok"]


NUMPY_ERRORS = {"CorruptRegionError", "MismatchError"}


def _assert_clean_refusal(out, array_calls=("get_numpy", "view_numpy", "batch")):
    for label in array_calls:
        assert out[label] in NUMPY_ERRORS, (label, out)
    assert out["view_dtype"] in NUMPY_ERRORS or out["view_dtype"].startswith(
        "ok: dtype("), out
    for label in ("get_buffer", "get"):
        assert out[label] in NUMPY_ERRORS or out[label].startswith("ok:"), (label, out)
    assert out["others"] is True, out


def _n1(dtype=b"<f8", ndim=2, dlen=None, shape=(2, 2)):
    """'N1' metadata of the same length as the stored one (19 + 16)."""
    d = dtype
    body = b"N1" + bytes([ndim, len(d) if dlen is None else dlen]) + d
    return body + b"".join(struct.pack("<Q", s % (1 << 64)) for s in shape)


ARRAY_CASES = {
    "object_dtype_O8": _n1(b"|O8"),
    "object_dtype_O4": _n1(b"|O4", shape=(2, 4)),
    "unknown_kind": _n1(b"<x8"),
    "size_zero": _n1(b"<f0"),
    "numpy_unknown_size": _n1(b"<f3"),
    "nul_dtype": _n1(b"\x00\x00\x00"),
    "ndim_200": _n1(ndim=200),
    "ndim_3_short_meta": _n1(ndim=3),
    "dtype_len_255": _n1(dlen=255),
    "dtype_len_0": _n1(dlen=0),
    "shape_3x3": _n1(shape=(3, 3)),
    "shape_0x4": _n1(shape=(0, 4)),
    "shape_negative": _n1(shape=(-2, -2)),
    "shape_over_int64": _n1(shape=(1 << 63, 2)),
    "shape_product_wraps": _n1(shape=(1 << 32, 1 << 32)),
    "bytes_wrap_to_len": _n1(shape=((1 << 61) + 4, 1)),   # (2**61+4)*8 == 32 mod 2**64
    "bytes_wrap_to_len2": _n1(shape=((1 << 62) + 1, 4)),
    "itemsize_wraps": _n1(b"<U9", shape=(1 << 62, 2)),
}


@pytest.mark.parametrize("case", list(ARRAY_CASES))
def test_crafted_array_metadata_is_a_clean_error(region_path, case):
    """A region whose stored numpy metadata ('N1': dtype string and shape)
    was crafted: get_numpy and friends raise CorruptRegionError or
    MismatchError, nothing crashes or reads outside the value, and other
    keys read fine."""
    img = _crafted_region(region_path)
    h, key_len, meta_len = _locate(img, K_ARRAY)
    meta = ARRAY_CASES[case]
    assert meta_len == len(_n1()) and len(meta) == meta_len
    _patch(region_path, h + REC_HEADER + key_len, meta)
    out = _read_crafted(region_path, K_ARRAY)
    _assert_clean_refusal(out)


def _compact(code_ndim, shape=(2, 2)):
    """'n' metadata: code_ndim byte (dtype code << 2 | ndim), uint32 dims."""
    return b"n" + bytes([code_ndim]) + b"".join(struct.pack("<I", s) for s in shape)


F8, F4 = 12, 11  # compact codes of "<f8" and "<f4" (python/cachee/_ext/meta.c)
COMPACT_CASES = {
    "code_0": _compact(0 << 2 | 2),
    "code_past_table": _compact(63 << 2 | 2),
    "ndim_3_short_meta": _compact(F8 << 2 | 3),
    "ndim_1_long_meta": _compact(F8 << 2 | 1),
    "shape_3x3": _compact(F8 << 2 | 2, (3, 3)),
    "shape_0x4": _compact(F8 << 2 | 2, (0, 4)),
    "shape_max": _compact(F8 << 2 | 2, (0xFFFFFFFF, 0xFFFFFFFF)),
    "other_itemsize": _compact(F4 << 2 | 2),
}


@pytest.mark.parametrize("case", list(COMPACT_CASES))
def test_crafted_compact_metadata_is_a_clean_error(region_path, case):
    """The compact form ('n': a dtype code and uint32 dims) crafted: codes
    outside the table, a dimension count that disagrees with the length of
    the metadata, shapes that do not match the value's length or overflow:
    CorruptRegionError or MismatchError, never a wrong array or a crash."""
    img = _crafted_region(region_path)
    h, key_len, meta_len = _locate(img, K_COMPACT)
    meta = COMPACT_CASES[case]
    assert meta_len == 10 and len(meta) == meta_len
    _patch(region_path, h + REC_HEADER + key_len, meta)
    out = _read_crafted(region_path, K_COMPACT)
    _assert_clean_refusal(out)


def _struct_cases(rlen, isz, ndim):
    pad = lambda s: s.ljust(rlen)  # noqa: E731  literal_eval ignores trailing blanks
    n = isz // 8
    return {
        "object_field": (pad("[('a', '|O8', (%d,))]" % n), isz, ndim),
        "nested_object_field": (pad("[('a', [('b', 'O')], (%d,))]" % n), isz, ndim),
        "deep_unary": (pad("-" * (rlen - 1) + "1"), isz, ndim),
        "deep_invert": (pad("~" * (rlen - 1) + "1"), isz, ndim),
        "deep_parens": (pad("(" * (rlen // 2) + ")" * (rlen // 2)), isz, ndim),
        "deep_lists_199": (pad("[" * 199 + "]" * 199), isz, ndim),
        "deep_tuples_99": (pad("(" * 99 + "1" + ",)" * 99), isz, ndim),
        "huge_int": (pad("9" * (rlen - 10)), isz, ndim),
        "long_list": (pad("[" + "1," * ((rlen - 2) // 2) + "]"), isz, ndim),
        "huge_subarray": (pad("[('a', '<f8', (4294967296, 4294967296))]"), isz, ndim),
        "big_subarray_isz_lies": (pad("[('a', '<f8', (1000000,))]"), isz, ndim),
        "far_offsets": (pad("{'names': ['a'], 'formats': ['<f8'], "
                            "'offsets': [1152921504606846976], 'itemsize': %d}" % isz),
                        isz, ndim),
        "call_expression": (pad("__import__('os').system('touch /tmp/cachee-pwned')"),
                            isz, ndim),
        "unterminated": (pad("[('a', '<f8"), isz, ndim),
        "nul_bytes": ("\0" * rlen, isz, ndim),
        "isz_zero": (None, 0, ndim),
        "isz_huge": (None, 0xFFFFFFFF, ndim),
        "ndim_65": (None, isz, 65),
    }


@pytest.mark.parametrize("case", list(_struct_cases(4000, 800, 1)))
def test_crafted_structured_metadata_is_a_clean_error(region_path, case):
    """The structured form ('N2': a repr(dtype.descr) read back with
    ast.literal_eval) crafted: deeply nested or huge literals, code, object
    fields, bad sizes.  literal_eval runs no code; whatever it or numpy
    raises (SyntaxError, RecursionError, MemoryError, ValueError...) becomes
    CorruptRegionError; nothing crashes and other keys read fine."""
    try:
        os.unlink("/tmp/cachee-pwned")
    except FileNotFoundError:
        pass
    img = _crafted_region(region_path)
    h, key_len, meta_len = _locate(img, K_STRUCT)
    m = bytearray(img[h + REC_HEADER + key_len:h + REC_HEADER + key_len + meta_len])
    assert m[:2] == b"N2"
    rlen = m[8] | m[9] << 8
    isz = struct.unpack_from("<I", m, 4)[0]
    assert isz == STRUCT_DTYPE.itemsize and rlen > 3700
    descr, new_isz, ndim = _struct_cases(rlen, isz, m[2])[case]
    if descr is not None:
        raw = descr.encode()
        assert len(raw) == rlen
        m[10:10 + rlen] = raw
    struct.pack_into("<I", m, 4, new_isz)
    m[2] = ndim
    _patch(region_path, h + REC_HEADER + key_len, bytes(m))
    out = _read_crafted(region_path, K_STRUCT)
    _assert_clean_refusal(out)
    assert not os.path.exists("/tmp/cachee-pwned")


RECORD_CASES = {
    # offset in the 32-byte record header, bytes
    "value_len_2_31": (12, struct.pack("=I", 1 << 31)),
    "value_len_max": (12, struct.pack("=I", (1 << 32) - 1)),
    "value_len_past_segment": (12, struct.pack("=I", tu.REGION_BYTES)),
    "meta_len_max": (30, struct.pack("=H", 0xFFFF)),
    "key_len_max": (28, struct.pack("=H", 0xFFFF)),
    "magic": (4, b"XX"),
    "hash": (8, b"\xff" * 4),
}


@pytest.mark.parametrize("case", list(RECORD_CASES))
def test_crafted_record_header_is_a_clean_error(region_path, case):
    """A record header with wild lengths: readers get a miss or
    CorruptRegionError (every length is bounds-checked against the segment),
    never bytes from outside the value, never a crash."""
    img = _crafted_region(region_path)
    h, key_len, meta_len = _locate(img, K_RAW)
    off, data = RECORD_CASES[case]
    _patch(region_path, h + off, data)

    def child():
        out = {}
        c = SharedCache.open(region_path, view_cache=0)
        for label, call in {"get": lambda: c.get(K_RAW),
                            "get_buffer": lambda: c.get_buffer(K_RAW),
                            "get_numpy": lambda: c.get_numpy(K_RAW),
                            "contains": lambda: K_RAW in c,
                            "get_many": lambda: c.get_many([K_RAW, OTHER_BYTES])}.items():
            try:
                r = call()
                if isinstance(r, (bytes, memoryview)):
                    r = len(bytes(r))  # touches every byte
                elif isinstance(r, np.ndarray):
                    r = len(r.tobytes())
                elif isinstance(r, dict):
                    r = sorted((k.decode(), len(v)) for k, v in r.items())
                out[label] = ["ok", r]
            except BaseException as e:  # noqa: BLE001
                out[label] = [type(e).__name__]
        out["others"] = (c.get(OTHER_BYTES) == b"still fine" and
                         c.get_numpy(OTHER_ARRAY).tolist() == list(range(10)))
        c.close()
        return out

    status, res = run_forked(child, timeout=180)
    assert_clean_exit(status, "reader of a crafted record")
    out = res["ok"]
    for label in ("get", "get_buffer", "get_numpy"):
        assert out[label] in (["ok", None], ["CorruptRegionError"], ["ok", len(RAW)]), (
            label, out)
    assert out["others"] is True, out


def test_geometry_is_a_private_copy(region_path):
    """A process that scribbles on the header of a region others have open
    cannot make them use wild offsets: they keep their private copy of the
    geometry; a new opener refuses the region (CorruptRegionError)."""
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    c.set("k", b"v" * 100)
    c.set_numpy("n", np.arange(100, dtype=np.float32))
    fd = os.open(region_path, os.O_RDWR)
    try:
        saved = os.pread(fd, 128, 64)  # geometry: sizes and every offset
        os.pwrite(fd, b"\xff" * 64 + struct.pack("=8Q", *([1 << 62] * 8)), 64)

        def child():  # in a child: wild offsets would crash it, not the session
            out = [c.get("k") == b"v" * 100,
                   c.get_numpy("n").tolist() == list(range(100))]
            c.set("k2", b"w" * 5000)
            out.append(c.get("k2") == b"w" * 5000)
            for i in range(300):
                c.set("fill%d" % i, os.urandom(4000))
            out.append(len(c.get("fill299")) == 4000)
            try:
                SharedCache.open(region_path)
                out.append("opened")
            except cachee.CorruptRegionError:
                out.append("refused")
            return out

        status, res = run_forked(child)
        assert_clean_exit(status, "process using the region")
        assert res == {"ok": [True, True, True, True, "refused"]}, res
        with pytest.raises(cachee.CorruptRegionError):
            SharedCache.open(region_path)
        assert c.get("k") == b"v" * 100
    finally:
        os.pwrite(fd, saved, 64)
        os.close(fd)
    c.check()
    with SharedCache.open(region_path) as d:
        assert d.get("k2") == b"w" * 5000
    c.close()


# ============================================ liveness, space, deserialisation


def _starttime(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def test_dead_slot_is_reaped_even_if_its_pid_is_reused(region_path):
    """Liveness is an OFD lock held by the process, not a pid: a dead
    process's slot whose pid (and start time) now name a live process is
    reaped all the same, with its pins."""
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES, view_cache=0)
    c.set("k", b"x" * 1000)
    c.stats()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            v = c.get_view("k")  # dies holding a pin
            c.set("child", b"alive")
            assert bytes(v) == b"x" * 1000
        finally:
            os._exit(0)
    _, st = os.waitpid(pid, 0)
    assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0
    sleeper = subprocess.Popen(["sleep", "3600"])  # killed below
    try:
        fd = os.open(region_path, os.O_RDWR)
        try:
            hdr = os.pread(fd, 256, 0)
            max_procs, = struct.unpack_from("=Q", hdr, 104)
            slots_off, = struct.unpack_from("=Q", hdr, 128)
            found = None
            for s in range(min(max_procs, 64)):
                state, gen, spid = struct.unpack("=III", os.pread(fd, 12, slots_off + 128 * s + 64))
                if state == 1 and spid == pid:
                    found = s
            assert found is not None, "the dead child's slot was not found"
            # the pid is "reused" by a live process, start time included
            line1 = slots_off + 128 * found + 64
            os.pwrite(fd, struct.pack("=I", sleeper.pid), line1 + 8)
            os.pwrite(fd, struct.pack("=Q", _starttime(sleeper.pid)), line1 + 16)
        finally:
            os.close(fd)
        s = c.stats()
        assert s["live_processes"] == 1, s
        assert s["pins"] == 0, s
        assert s["reaped_processes"] >= 1, s
        assert c.get("child") == b"alive"
        c.check()
    finally:
        sleeper.kill()
        sleeper.wait()
        c.close()


@needs_root
def test_full_shared_memory_cannot_crash_a_region_in_use():
    """/dev/shm exhaustion: a region's memory is reserved when it is
    created, so an attacker who fills the filesystem afterwards cannot make
    its users die of SIGBUS; a new region that does not fit is a clear
    NoSpaceError, and leaves no file."""
    d = tempfile.mkdtemp(prefix="cachee-sec-mnt-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=1777", "tmpfs", d],
                       capture_output=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip("cannot mount a tmpfs here")
    try:
        path = os.path.join(d, "region")
        c = SharedCache(path, size_bytes=4 << 20, view_cache=0)

        def attacker():
            n = 0
            with open(os.path.join(d, "hog"), "wb", buffering=0) as f:
                try:
                    while True:
                        n += f.write(b"\xa5" * 65536)
                except OSError as e:
                    return [n, errno.errorcode.get(e.errno)]

        status, res = as_nobody(attacker)
        assert_clean_exit(status, "attacker")
        assert res["ok"][1] == "ENOSPC", res
        assert os.statvfs(d).f_bavail == 0

        def victim():  # writes every page of the arena several times over
            for i in range(1000):
                c.set("v%d" % (i % 50), bytes([i % 256]) * 12000)
            return [c.get("v%d" % (999 % 50)) == bytes([999 % 256]) * 12000,
                    c.stats()["sets"]]

        status, res = run_forked(victim, timeout=180)
        assert_clean_exit(status, "victim writing into a full /dev/shm")
        assert res["ok"][0] is True, res
        second = os.path.join(d, "second")
        with pytest.raises(cachee.NoSpaceError):
            SharedCache(second, size_bytes=2 << 20)
        assert not os.path.exists(second)
        assert sorted(os.listdir(d)) == ["hog", "region"]
        c.check()
        c.close()
    finally:
        subprocess.run(["umount", "-l", d], capture_output=True)
        os.rmdir(d)


# The package's sources in this checkout (the imported copy may be a build
# without its C sources, e.g. the sanitizer build of run.sh --sanitize).
PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(tu.TESTS_DIR)), "python", "cachee")
# Modules that turn bytes into objects or run code; never imported.
FORBIDDEN_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "marshal",
                     "shelve", "copyreg", "joblib"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "execfile", "input"}
ALLOWED_C_IMPORTS = {"cachee._errors", "ast", "cachee._loaders", "json"}
# The one opt-in: memoize(serializer="pickle") (asked for by name).  pickle
# may appear only in this file, only inside this function.
PICKLE_OPT_IN = ("_loaders.py", "_pickle_codec")


def _python_sources():
    for root, _, files in os.walk(PACKAGE_DIR):
        for f in files:
            if f.endswith((".py", ".pyi")):
                yield os.path.join(root, f)


def _c_sources():
    for root, _, files in os.walk(PACKAGE_DIR):
        for f in files:
            if f.endswith((".c", ".h")):
                yield os.path.join(root, f)


def _strip_c_comments(src):
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", src, flags=re.S)


def test_no_pickle_marshal_eval_or_exec():
    """No deserialisation of untrusted bytes: the package never imports
    pickle/marshal (or their relatives), never calls eval/exec/compile, and
    its C code imports only an allow-list of modules and runs no Python
    source.  ast.literal_eval (which evaluates literals only) is allowed."""
    py = list(_python_sources())
    c_files = list(_c_sources())
    assert any(p.endswith("__init__.py") for p in py) and c_files, PACKAGE_DIR
    bad = []
    for path in py:
        with open(path, "rb") as f:
            toks = list(tokenize.tokenize(io.BytesIO(f.read()).readline))
        opt_in = None
        if path.endswith(os.sep + PICKLE_OPT_IN[0]):
            with open(path) as f:
                tree = ast.parse(f.read())
            fn = [n for n in tree.body
                  if isinstance(n, ast.FunctionDef) and n.name == PICKLE_OPT_IN[1]]
            assert len(fn) == 1, "the pickle opt-in moved: update PICKLE_OPT_IN"
            opt_in = (fn[0].lineno, fn[0].end_lineno)
        for i, t in enumerate(toks):
            prev = toks[i - 1].string if i else ""
            if t.type == tokenize.NAME:
                inside = opt_in is not None and opt_in[0] <= t.start[0] <= opt_in[1]
                is_pickle = t.string in ("pickle",) and inside
                if (t.string in FORBIDDEN_MODULES and not is_pickle) or (
                        "pickle" in t.string.lower() and not inside
                        and t.string not in ("PICKLE_MAGIC", "_pickle_codec")):
                    bad.append((path, t.start[0], t.string))
                if t.string in FORBIDDEN_CALLS and prev != "." and \
                        i + 1 < len(toks) and toks[i + 1].string == "(":
                    bad.append((path, t.start[0], t.string + "("))
            elif t.type == tokenize.STRING:
                try:
                    value = ast.literal_eval(t.string)
                except Exception:  # noqa: BLE001 - f-strings
                    continue
                # the opt-in file compares the serializer name with "pickle"
                if isinstance(value, str) and value.strip() in FORBIDDEN_MODULES and \
                        not (opt_in is not None and value == "pickle"):
                    bad.append((path, t.start[0], t.string))
    for path in c_files:
        with open(path) as f:
            code = _strip_c_comments(f.read())
        for pat in (r"pickle", r"marshal", r"PyRun_\w+", r"Py_CompileString\w*",
                    r"PyEval_Eval\w*", r"\"(eval|exec|compile|loads|__import__)\"",
                    r"PyImport_ImportModuleLevel\w*", r"PyImport_Import\b"):
            for m in re.finditer(pat, code, flags=re.I):
                # tiers.c parses libcachee's statistics with json.loads (JSON
                # builds only dicts, lists, strings and numbers)
                if m.group(0) == '"loads"' and path.endswith("tiers.c") and \
                        'PyImport_ImportModule("json")' in code:
                    continue
                bad.append((path, code.count("\n", 0, m.start()) + 1, m.group(0)))
        for m in re.finditer(r"PyImport_ImportModule\w*\s*\(\s*\"([^\"]*)\"", code):
            if m.group(1) not in ALLOWED_C_IMPORTS:
                bad.append((path, code.count("\n", 0, m.start()) + 1, m.group(0)))
    assert bad == [], bad
    # the one place that reads a Python literal back uses literal_eval
    with open(os.path.join(PACKAGE_DIR, "_ext", "meta.c")) as f:
        meta = _strip_c_comments(f.read())
    assert '"literal_eval"' in meta and 'PyImport_ImportModule("ast")' in meta


def test_pickle_only_when_asked_for_by_name(region_path):
    """memoize(serializer="pickle") is the only path that unpickles; without
    it, bytes that look like a pickle come back as bytes, and get_or_load
    never unpickles.  The opt-in refuses values it did not store."""
    import cachee._loaders as loaders

    calls = []
    real = loaders._pickle_codec

    def spy():
        calls.append(1)
        return real()

    cache = cachee.SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    try:
        loaders._pickle_codec = spy

        @cache.memoize(key=lambda: "k")
        def plain():
            return b"unused"

        payload = loaders.PICKLE_MAGIC + b"\x80\x04K\x01."
        cache.set("k", payload)
        assert plain() == payload  # bytes, never unpickled
        assert cache.get_or_load("k", lambda k: b"") == payload
        assert calls == []

        @cache.memoize(key=lambda: "k2", serializer="pickle")
        def opted():
            return 1

        assert calls == [1]
        cache.set("k2", b"\x80\x04K\x01.")  # a pickle without cachee's marker
        with pytest.raises(cachee.MismatchError):
            opted()
    finally:
        loaders._pickle_codec = real
        cache.close()
