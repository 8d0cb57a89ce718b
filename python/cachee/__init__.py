"""cachee: one shared copy of your hot data for every worker process.

    >>> from cachee import SharedCache
    >>> cache = SharedCache("/dev/shm/cachee", size_gb=2)
    >>> cache.set_numpy("embedding:user:123", vec)
    >>> features = cache.get_numpy("embedding:user:123")   # zero-copy, read-only

A SharedCache is a hash table in shared memory (a file on /dev/shm) that every
process on the machine maps.  Reads take no lock and make no system call;
get_numpy() and get_buffer() return views on the shared memory itself.
Importing cachee starts no thread and loads no runtime.
"""

import os as _os
import weakref as _weakref

from cachee._errors import *  # noqa: F401,F403  (exception classes)
from cachee._errors import __all__ as _error_names
from cachee._cachee import KEY_MAX, SharedCache, View, key_hash, unlink
from cachee import _cachee

__version__ = "0.1.0"

# Regions opened in this process, for the fork hooks below.
_regions = _weakref.WeakSet()


def _track(region):
    _regions.add(region)


def _before_fork():
    for r in list(_regions):
        r._fork_prepare()


def _after_fork_parent():
    for r in list(_regions):
        r._fork_parent()


def _after_fork_child():
    for r in list(_regions):
        r._fork_child()


_cachee._set_region_hook(_track)
if hasattr(_os, "register_at_fork"):
    # A forked child gets its own process slot with a copy of the parent's
    # pins, so arrays and buffers it inherited stay valid in the child.
    _os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_parent,
                         after_in_child=_after_fork_child)

__all__ = ["SharedCache", "View", "unlink", "key_hash", "KEY_MAX"] + list(_error_names)
