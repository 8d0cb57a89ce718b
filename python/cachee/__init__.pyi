"""Type stubs of cachee: one shared copy of your hot data for every worker
process.  The implementation is the C extension cachee._cachee and the
exception classes of cachee._errors."""

import os
import sys
from types import TracebackType
from typing import Any, Callable, Final, Iterable, Literal, Mapping, Sequence, SupportsIndex, TypeVar, Union, overload

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer, Self, final

from cachee._errors import (
    CacheError as CacheError,
    ClosedError as ClosedError,
    MismatchError as MismatchError,
    InvalidKeyError as InvalidKeyError,
    KeyTooLargeError as KeyTooLargeError,
    ValueTooLargeError as ValueTooLargeError,
    CacheFullError as CacheFullError,
    TooManyPinsError as TooManyPinsError,
    TooManyProcessesError as TooManyProcessesError,
    NotARegionError as NotARegionError,
    FormatError as FormatError,
    CorruptRegionError as CorruptRegionError,
    RegionSizeError as RegionSizeError,
    RegionOwnerError as RegionOwnerError,
    LoosePermissionsError as LoosePermissionsError,
    UnsafePathError as UnsafePathError,
    NotSharedMemoryError as NotSharedMemoryError,
    NoSpaceError as NoSpaceError,
    NotReadyError as NotReadyError,
    RegionNotFoundError as RegionNotFoundError,
    RegionExistsError as RegionExistsError,
    LockError as LockError,
    LoadTimeoutError as LoadTimeoutError,
    ForkError as ForkError,
    TiersUnavailableError as TiersUnavailableError,
    TierError as TierError,
)

__version__: str
__all__ = [
    "SharedCache",
    "View",
    "unlink",
    "key_hash",
    "KEY_MAX",
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

_T = TypeVar("_T")
#: A key: str (stored as its UTF-8 bytes) or bytes; 1 to KEY_MAX bytes.
_Key = Union[str, bytes]
_Path = Union[str, bytes, os.PathLike[str], os.PathLike[bytes]]
_Shape = Union[SupportsIndex, Sequence[SupportsIndex]]
_Items = Union[
    Mapping[str, Buffer], Mapping[bytes, Buffer], Mapping[_Key, Buffer],
    Iterable[tuple[_Key, Buffer]],
]

#: Longest key in bytes (65535).
KEY_MAX: Final[int]

def unlink(path: _Path, /) -> None:
    """Remove a region's name (a bare name means /dev/shm/NAME).  Refuses files
    that are not cachee regions (NotARegionError); RegionNotFoundError if
    nothing is there."""

def key_hash(key: _Key, /) -> int:
    """XXH3-64 of the key's bytes (str keys as UTF-8): the hash every cachee
    implementation uses."""

@final
class View:
    """A value in shared memory, pinned for as long as this object (or anything
    built on it: memoryview, ndarray, DLPack tensor) lives.  Read-only.
    Supports the buffer protocol and DLPack (numpy.from_dlpack,
    torch.from_dlpack).  Views are made by SharedCache.get_view()."""

    @property
    def nbytes(self) -> int:
        """Length of the value in bytes."""
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape stored with the value ((nbytes,) for raw bytes)."""
    @property
    def dtype(self) -> np.dtype[Any]:
        """numpy dtype stored with the value (uint8 for raw bytes)."""
    @property
    def version(self) -> int:
        """Version of the stored value (increases with every write to its shard)."""
    def numpy(self) -> npt.NDArray[Any]:
        """A read-only ndarray over the value (no copy)."""
    def __len__(self) -> int: ...
    def __dlpack__(
        self,
        *,
        stream: None = None,
        max_version: tuple[int, int] | None = None,
        dl_device: tuple[int, int] | None = None,
        copy: bool | None = None,
    ) -> Any:
        """Export the value as a DLPack capsule (read-only, CPU, no copy)."""
    def __dlpack_device__(self) -> tuple[int, int]:
        """The device of the value: (kDLCPU, 0) == (1, 0)."""
    if sys.version_info >= (3, 12):
        def __buffer__(self, flags: int, /) -> memoryview: ...
        def __release_buffer__(self, buffer: memoryview, /) -> None: ...

class SharedCache:
    """A cache in shared memory (a file on /dev/shm, mapped by every process
    that opens it) that every process on the machine reads without a copy.

    ``SharedCache(path, size_gb)`` creates the region if it does not exist and
    attaches to it otherwise; ``SharedCache.open(path)`` only attaches.
    Processes forked after the cache was opened (gunicorn --preload,
    multiprocessing, DataLoader workers) use it at once.  Every failing call
    raises a subclass of CacheError (or TypeError/ValueError/KeyError for bad
    arguments) and leaves the cache as it was.
    """

    def __init__(
        self,
        path: _Path = "/dev/shm/cachee",
        size_gb: float | None = ...,
        *,
        size_bytes: int | None = None,
        mode: int = 0o600,
        create: bool = True,
        max_entries: int = 0,
        segment_size: int = 0,
        max_procs: int = 0,
        huge_pages: bool = False,
        allow_foreign_owner: bool = False,
        allow_loose_mode: bool = False,
        allow_any_fs: bool = False,
        open_timeout: float = 5.0,
        view_cache: int = 1024,
        l1_bytes: int | None = None,
        l1_promote: Literal["tinylfu", "always", "never"] = "tinylfu",
    ) -> None:
        """``huge_pages``: give a new region 2 MiB pages (a random read then
        pays no TLB misses); on a tmpfs without a ``huge=`` mount option (a
        default /dev/shm) the creating process collapses the region into huge
        pages after creating it, about 3 s per GiB (Linux 6.1+; best effort).

        ``l1_bytes``: size of L1, a per-process cache in libcachee.so (the
        Go core) behind shared memory; None/0: none.  Nothing is loaded until
        a read in this process misses shared memory; in a fork() child of a
        process that loaded it, tier reads raise ForkError.  Once loaded, the
        values this process's writes evict from shared memory are kept in L1
        (demotion) and served from there as private copies, unless another
        process has written or deleted the key since.  ``l1_promote``: which
        L1 hits go back into shared memory: "tinylfu" (those read more often
        than what shared memory evicts), "always", "never"."""
    @classmethod
    def open(
        cls,
        path: _Path = "/dev/shm/cachee",
        *,
        size_gb: float | None = None,
        size_bytes: int | None = None,
        mode: int = 0o600,
        allow_foreign_owner: bool = False,
        allow_loose_mode: bool = False,
        allow_any_fs: bool = False,
        open_timeout: float = 5.0,
        view_cache: int = 1024,
        l1_bytes: int | None = None,
        l1_promote: Literal["tinylfu", "always", "never"] = "tinylfu",
    ) -> Self:
        """Attach to an existing region only (RegionNotFoundError if absent)."""
    @property
    def path(self) -> str | None:
        """Path of the region (None once closed)."""
    @property
    def closed(self) -> bool:
        """True after close()."""

    # -- reading
    @overload
    def get(self, key: _Key, /) -> bytes | None:
        """A copy of the value, or default (None)."""
    @overload
    def get(self, key: _Key, default: _T, /) -> bytes | _T: ...
    def get_buffer(self, key: _Key, /) -> memoryview | None:
        """A read-only memoryview of the value in shared memory (no copy),
        valid as long as it lives; None if the key is absent."""
    def get_view(self, key: _Key, /) -> View | None:
        """The value pinned in shared memory (buffer protocol, DLPack,
        .numpy()); None if the key is absent."""
    @overload
    def get_numpy(
        self,
        key: _Key,
        /,
        shape: _Shape | None = None,
        dtype: npt.DTypeLike | None = None,
    ) -> npt.NDArray[Any] | None:
        """A read-only ndarray whose buffer is the shared memory (no copy), or
        default.  shape and dtype, when given, must match what was stored
        (MismatchError otherwise); a value stored as raw bytes is viewed as
        that dtype and shape."""
    @overload
    def get_numpy(
        self,
        key: _Key,
        /,
        shape: _Shape | None = None,
        dtype: npt.DTypeLike | None = None,
        *,
        default: _T,
    ) -> npt.NDArray[Any] | _T: ...
    def get_numpy_batch(
        self, keys: Sequence[_Key], dtype: npt.DTypeLike | None = None
    ) -> npt.NDArray[Any]:
        """The values of keys stacked into one new array of shape
        (len(keys), *shape) (one copy).  KeyError for a missing key,
        MismatchError if they do not stack."""
    def get_many(self, keys: Iterable[_Key], /) -> dict[_Key, bytes]:
        """Copies of the values of the keys that are present."""
    def __getitem__(self, key: _Key, /) -> bytes:
        """A copy of the value; KeyError if absent."""
    def __contains__(self, key: object, /) -> bool:
        """True if the key is present and not expired."""
    def __len__(self) -> int:
        """Entries in the region (expired ones not yet purged included)."""

    # -- writing
    def set(self, key: _Key, value: Buffer, ttl: float | None = None) -> None:
        """Store a bytes-like value; ttl in seconds (None: never expires)."""
    def add(self, key: _Key, value: Buffer, ttl: float | None = None) -> bool:
        """Store only if the key is absent (or expired); True if stored."""
    def set_numpy(self, key: _Key, array: npt.NDArray[Any], ttl: float | None = None) -> None:
        """Store a C-contiguous array with its dtype and shape."""
    def set_many(self, items: _Items, ttl: float | None = None) -> None:
        """Store a mapping or iterable of (key, value) pairs.  All keys and
        values are checked before anything is stored."""
    def __setitem__(self, key: _Key, value: Buffer, /) -> None:
        """Store a bytes-like value without expiry."""
    def delete(self, key: _Key, /) -> bool:
        """Remove the key; True if it was present."""
    def __delitem__(self, key: _Key, /) -> None:
        """Remove the key; KeyError if absent."""

    # -- loaders
    @overload
    def get_or_load(
        self,
        key: _Key,
        fn: Callable[[_Key], npt.NDArray[Any]],
        *,
        ttl: float | None = None,
        timeout: float | None = 30.0,
    ) -> npt.NDArray[Any]:
        """The value of key; on a miss fn(key) computes it in ONE process or
        thread while the others that miss the same key wait for it (GIL
        released) at most ``timeout`` seconds (None: no limit), then raise
        LoadTimeoutError.  fn returns a bytes-like object (stored with set(),
        returned as bytes) or a numpy array (stored with set_numpy(), returned
        as a read-only view); anything else is a TypeError and stores nothing.
        If fn raises, the exception reaches its caller, nothing is stored, and
        a waiter calls its own fn.  If the loading process dies, a waiter
        takes over at once.  Every caller gets the value the way a hit returns
        it (a stored value's kind decides)."""
    @overload
    def get_or_load(
        self,
        key: _Key,
        fn: Callable[[_Key], Buffer],
        *,
        ttl: float | None = None,
        timeout: float | None = 30.0,
    ) -> bytes | npt.NDArray[Any]: ...
    def memoize(
        self,
        ttl: float | None = None,
        key: Callable[..., _Key] | None = None,
        serializer: str | None = None,
    ) -> Callable[[Callable[..., _T]], Callable[..., _T]]:
        """Decorator: cache a function's results with get_or_load (one
        computation per key across processes).  The key is
        ``"memoize:<module>.<qualname>(<repr of args>, k=<repr>)"`` (a SHA-256
        of it when longer than 240 characters), or ``key(*args, **kwargs)``.
        Arguments whose repr names a memory address are refused (pass
        ``key=``); f(1) and f(x=1) are different keys.  Results must be
        bytes-like or numpy arrays unless ``serializer="pickle"`` (by name
        only).  The wrapper has ``cache_key(*a, **kw)`` and
        ``invalidate(*a, **kw)``."""

    # -- administration
    def stats(self) -> dict[str, Any]:
        """Counters summed over every process using the region (hits, misses,
        sets, deletes, evictions, expirations, entries, used/free/pinned bytes,
        pins, live_processes, ...), sizes and the path.  With l1_bytes:
        "l1_bytes", and "tiers", the list of per-tier counters of
        libcachee (None until the tiers are loaded in this process, and in a
        fork child of a process that loaded them), and "demotion", the queue
        of values evicted by this process on their way to L1 ("queued",
        "dropped" past its bound "cap_bytes", "demoted" into L1, "failed"
        calls, "pending_bytes")."""
    def check(self) -> None:
        """Validate every invariant of the region; CorruptRegionError if one
        fails."""
    def close(self) -> None:
        """Close the cache in this process.  Views already handed out stay
        valid until they are freed."""
    def unlink(self) -> None:
        """Remove the region's name; processes using it keep it until they close."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> None:
        """close()."""
