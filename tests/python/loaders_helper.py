"""Targets for the child processes of test_loaders.py (importable by spawn
children: this directory is on their sys.path)."""
import os
import time

import cachee


def record(path, line):
    """Append one line to a file (O_APPEND: lines from many processes never
    mix)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def value_of(key):
    return ("value-of-" + key).encode() * 10


def miss_together(cache, keys, calls_path, barrier, delay):
    """One of N processes missing the same keys at the same moment: every
    load is recorded in calls_path; every value read must be right."""
    def load(key):
        record(calls_path, "%d %s" % (os.getpid(), key))
        time.sleep(delay)
        return value_of(key)

    barrier.wait(300)
    for k in keys:
        got = cache.get_or_load(k, load, timeout=300)
        assert got == value_of(k), (k, got)


def stuck_loader(path, key, started_path):
    """Take the load of key and never finish (killed by the test)."""
    cache = cachee.SharedCache.open(path)

    def load(k):
        record(started_path, str(os.getpid()))
        time.sleep(3600)
        return b"never"

    cache.get_or_load(key, load)
