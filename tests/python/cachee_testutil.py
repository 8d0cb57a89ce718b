"""Helpers shared by the cachee test modules (and their child processes)."""
import itertools
import os
import re
import shutil
import signal
import stat
import time

import cachee

SHM = "/dev/shm"
PREFIX = "cachee-pytest-"
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
# The directory holding the cachee package actually imported (the in-place
# build, an installed copy, or the sanitizer build of run.sh --sanitize).
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cachee.__file__)))
REGION_BYTES = 16 << 20

_counter = itertools.count()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_path(path):
    """Remove whatever is at path (a region, a file, a symlink, a directory)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path, ignore_errors=True)
        return
    if stat.S_ISREG(st.st_mode):
        try:
            cachee.unlink(path)
            return
        except (cachee.CacheError, OSError):
            pass  # not a region, or a damaged one: ours anyway
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_leftovers(prefix=PREFIX):
    """Remove /dev/shm entries named `prefix<pid>-...` whose process is dead
    (left by killed test runs; the torture harness passes its own prefix)."""
    pat = re.compile(r"^" + re.escape(prefix) + r"(\d+)-")
    try:
        names = os.listdir(SHM)
    except OSError:
        return
    for name in names:
        m = pat.match(name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            remove_path(os.path.join(SHM, name))


def new_region_path(tag="r"):
    tag = re.sub(r"[^A-Za-z0-9_]+", "_", tag)[:40]
    return os.path.join(SHM, "%s%d-%d-%s" % (PREFIX, os.getpid(), next(_counter), tag))


def child_env(**extra):
    """Environment for subprocesses: they import the same cachee build and
    can import the helper modules of this directory."""
    env = dict(os.environ)
    parts = [PACKAGE_ROOT, TESTS_DIR]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.update(extra)
    return env


def region_mappings(path, writable=None):
    """(start, end) of every mapping of the region file in this process
    (matched by device and inode: /proc/self/maps shows the name the file
    had when it was created).  writable=False: only read-only mappings."""
    st = os.stat(path)
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) < 5 or int(parts[4]) != st.st_ino:
                continue
            major, minor = (int(x, 16) for x in parts[3].split(":"))
            if os.makedev(major, minor) != st.st_dev:
                continue
            if writable is not None and ("w" in parts[1]) != writable:
                continue
            a, b = parts[0].split("-")
            out.append((int(a, 16), int(b, 16)))
    return out


def in_region(path, address, nbytes=1, writable=None):
    """True when [address, address+nbytes) lies inside a mapping of the region."""
    return any(a <= address and address + nbytes <= b
               for a, b in region_mappings(path, writable))


def pss_kib(pid):
    """Proportional set size of a process in KiB (from smaps_rollup)."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError("no Pss line for pid %d" % pid)


NO_LIBCACHEE = ("libcachee.so is not built (no Go toolchain when the package was "
                "built): the tier tests need it")


def libcachee_available():
    """Is libcachee.so beside the imported extension (or named by
    $CACHEE_LIBCACHEE)?  Checked without loading it."""
    env = os.environ.get("CACHEE_LIBCACHEE")
    if env:
        return os.path.exists(env)
    return os.path.exists(os.path.join(os.path.dirname(os.path.abspath(cachee.__file__)),
                                       "libcachee.so"))


def while_alive(body, ttl=0.3, longest=60.0):
    """Check what keys with a TTL do while they live, on any machine.

    body(ttl) stores keys with that TTL and checks them (asserts) while they
    should still live.  A failed check only counts if body finished before
    the TTL ran out: a slow, loaded machine that was preempted past it tries
    again with a TTL four times as long (body must store its keys afresh).
    Returns (ttl, end): the TTL of the run that counted and time.monotonic()
    when it ended; every key it stored has expired at end + ttl (see
    sleep_past).
    """
    while True:
        t0 = time.monotonic()
        try:
            body(ttl)
        except AssertionError:
            if time.monotonic() - t0 < ttl or ttl * 4 > longest:
                raise
            ttl *= 4
            continue
        return ttl, time.monotonic()


def sleep_past(ttl, end, margin=0.1):
    """Sleep until keys stored before `end` with this TTL have expired."""
    time.sleep(max(0.0, end + ttl + margin - time.monotonic()))


def kill_all(pids):
    """SIGKILL and reap those of these child processes (os.fork pids) that
    have not been reaped yet; for a finally: clause, so that a failed test
    leaves none behind.  A pid already reaped is left alone (it may name
    another process by now)."""
    for pid in pids:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue  # reaped already: not ours any more
        if done == pid:
            continue
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def stop_processes(procs):
    """The same for multiprocessing.Process objects."""
    for p in procs:
        if p.pid is not None and p.exitcode is None:
            p.kill()
            p.join()
