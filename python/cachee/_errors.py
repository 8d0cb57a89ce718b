"""Exceptions raised by cachee.

Every failing call leaves the cache as it was.  All exceptions derive from
:class:`CacheError`; where a built-in exception says the same thing, the
cachee class derives from it too (``except ValueError`` catches a
:class:`KeyTooLargeError`, ``except PermissionError`` a
:class:`RegionOwnerError`).
"""


class CacheError(Exception):
    """Base class of every error cachee raises."""


class ClosedError(CacheError, ValueError):
    """The cache was closed (or unlinked) in this process."""


class MismatchError(CacheError, ValueError):
    """A stored value does not have the dtype or shape the caller asked for,
    or values of a batch do not stack."""


class InvalidKeyError(CacheError, ValueError):
    """The key is empty (keys are 1 to 65535 bytes; str keys count in UTF-8)."""


class KeyTooLargeError(CacheError, ValueError):
    """The key is longer than 65535 bytes (UTF-8 for str keys)."""


class ValueTooLargeError(CacheError, ValueError):
    """The value is larger than the region accepts (``stats()['value_max']``:
    a quarter of the region), or its metadata is longer than 4096 bytes."""


class CacheFullError(CacheError, MemoryError):
    """No space could be made: what is left is pinned by live views (arrays
    or buffers returned by this cache in some process) or being written.
    Release views, or use a larger region."""


class TooManyPinsError(CacheFullError):
    """One process holds 65535 views into one segment of the region."""


class TooManyProcessesError(CacheError):
    """Every process slot of the region belongs to a live process (raise
    ``max_procs`` when the region is created)."""


class NotARegionError(CacheError):
    """The file at the path is not a cachee region."""


class FormatError(CacheError):
    """The region was created by an incompatible version of cachee."""


class CorruptRegionError(CacheError):
    """The region failed a consistency check."""


class RegionSizeError(CacheError, ValueError):
    """The size is invalid, or an existing region has another size."""


class RegionOwnerError(CacheError, PermissionError):
    """The region file belongs to another user (see ``allow_foreign_owner``)."""


class LoosePermissionsError(CacheError, PermissionError):
    """The region file grants more access than ``mode`` (see
    ``allow_loose_mode``)."""


class UnsafePathError(CacheError, ValueError):
    """The path is a symbolic link, not a regular file, has hard links, or is
    not a valid region name."""


class NotSharedMemoryError(CacheError):
    """The path is not on tmpfs or hugetlbfs."""


class NoSpaceError(CacheError, OSError):
    """The filesystem cannot hold the region.  In Docker, /dev/shm is 64 MiB
    unless ``--shm-size`` says otherwise."""


class NotReadyError(CacheError, TimeoutError):
    """The region's creator did not finish it in time (or died)."""


class RegionNotFoundError(CacheError, FileNotFoundError):
    """The region does not exist and ``create`` is false."""


class RegionExistsError(CacheError, FileExistsError):
    """The region exists and exclusive creation was asked for."""


class LockError(CacheError):
    """A lock of the region could not be recovered."""


class LoadTimeoutError(CacheError, TimeoutError):
    """get_or_load() (or a memoized function) waited ``timeout`` seconds for
    another process or thread to compute the value of a key, and neither did
    the value appear nor did the loader lock become free."""


class ForkError(CacheError, RuntimeError):
    """A tier beyond L0 (L1, ...) was used in a process forked from the
    process that loaded the tiers (libcachee.so, a Go runtime, which does not
    survive fork()).  L0 keeps working in the child; for tiers, configure them
    at import but use them only after fork (gunicorn ``post_fork``, Celery
    ``worker_process_init``), or start workers with spawn/forkserver."""


class TiersUnavailableError(CacheError, RuntimeError):
    """The tiers beyond L0 need libcachee.so (the Go core), which is missing
    from the package or could not be loaded.  Reinstall cachee with Go on the
    PATH (``pip install .`` builds it), or use the cache without ``l1_bytes``."""


class TierError(CacheError):
    """A tier beyond L0 failed (libcachee returned an error); the message
    carries libcachee's description."""


__all__ = [name for name, obj in list(globals().items())
           if isinstance(obj, type) and issubclass(obj, CacheError)]
