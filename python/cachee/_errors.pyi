"""Type stubs of cachee._errors: the exceptions cachee raises.  Every failing
call leaves the cache as it was."""

__all__ = [
    "CacheError",
    "ClosedError",
    "MismatchError",
    "InvalidKeyError",
    "KeyTooLargeError",
    "ValueTooLargeError",
    "CacheFullError",
    "TooManyPinsError",
    "TooManyProcessesError",
    "NotARegionError",
    "FormatError",
    "CorruptRegionError",
    "RegionSizeError",
    "RegionOwnerError",
    "LoosePermissionsError",
    "UnsafePathError",
    "NotSharedMemoryError",
    "NoSpaceError",
    "NotReadyError",
    "RegionNotFoundError",
    "RegionExistsError",
    "LockError",
    "LoadTimeoutError",
    "ForkError",
    "TiersUnavailableError",
    "TierError",
]


class CacheError(Exception):
    """Base class of every error cachee raises."""

class ClosedError(CacheError, ValueError):
    """The cache was closed (or unlinked) in this process."""

class MismatchError(CacheError, ValueError):
    """A stored value does not have the dtype or shape the caller asked for,
    or values of a batch do not stack."""

class InvalidKeyError(CacheError, ValueError):
    """The key is empty."""

class KeyTooLargeError(CacheError, ValueError):
    """The key is longer than 65535 bytes (UTF-8 for str keys)."""

class ValueTooLargeError(CacheError, ValueError):
    """The value is larger than the region accepts (stats()['value_max'])."""

class CacheFullError(CacheError, MemoryError):
    """No space could be made: what is left is pinned by live views or being
    written."""

class TooManyPinsError(CacheFullError):
    """One process holds 65535 views into one segment of the region."""

class TooManyProcessesError(CacheError):
    """Every process slot of the region belongs to a live process."""

class NotARegionError(CacheError):
    """The file at the path is not a cachee region."""

class FormatError(CacheError):
    """The region was created by an incompatible version of cachee."""

class CorruptRegionError(CacheError):
    """The region failed a consistency check."""

class RegionSizeError(CacheError, ValueError):
    """The size is invalid, or an existing region has another size."""

class RegionOwnerError(CacheError, PermissionError):
    """The region file belongs to another user."""

class LoosePermissionsError(CacheError, PermissionError):
    """The region file grants more access than mode."""

class UnsafePathError(CacheError, ValueError):
    """The path is a symbolic link, not a regular file, has hard links, or is
    not a valid region name."""

class NotSharedMemoryError(CacheError):
    """The path is not on tmpfs or hugetlbfs."""

class NoSpaceError(CacheError, OSError):
    """The filesystem cannot hold the region."""

class NotReadyError(CacheError, TimeoutError):
    """The region's creator did not finish it in time (or died)."""

class RegionNotFoundError(CacheError, FileNotFoundError):
    """The region does not exist and create is false."""

class RegionExistsError(CacheError, FileExistsError):
    """The region exists and exclusive creation was asked for."""

class LockError(CacheError):
    """A lock of the region could not be recovered."""


class LoadTimeoutError(CacheError, TimeoutError):
    """get_or_load() waited ``timeout`` seconds for another process or thread
    computing the same key."""


class ForkError(CacheError, RuntimeError):
    """A tier beyond L0 was used in a fork() child of the process that loaded
    the tiers (the Go runtime does not survive fork).  L0 keeps working."""


class TiersUnavailableError(CacheError, RuntimeError):
    """libcachee.so (the Go core, needed for l1_bytes) is missing or could not
    be loaded."""


class TierError(CacheError):
    """A tier beyond L0 failed."""
