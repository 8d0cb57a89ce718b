"""get_or_load and memoize: compute a missing value once across processes.

``SharedCache.get_or_load`` and ``SharedCache.memoize`` (methods of the C type)
forward here.  The waiting is native (``SharedCache._load_lock``): it polls L0
and retries the key's loader lock with the GIL released.  The loader lock is an
OFD lock of the L0 engine (``cachee_l0_load_trylock``): one per key (keys whose
hashes agree in their low 40 bits share one), exclusive across processes and
across threads of one process, and dropped by the kernel when the process
holding it dies, so a waiter takes over.

Values.  ``fn`` returns either a bytes-like object (stored with ``set``; the
caller gets ``bytes``) or a numpy array (stored with ``set_numpy``; the caller
gets a read-only array, a view on shared memory, as ``get_numpy`` returns).
Every caller, the one that computed the value included, gets the value the way
a later hit returns it, so code never depends on who computed.  Anything else
is refused with TypeError and nothing is stored; ``memoize(serializer="pickle")``
stores other objects, and only when asked for by name (SECURITY.md: cachee
never unpickles bytes unless told to).
"""

import functools
import hashlib
import math
import sys

from cachee._errors import MismatchError

__all__ = ["get_or_load", "memoize"]

_MISSING = object()

#: Prefix of values stored by memoize(serializer="pickle").
PICKLE_MAGIC = b"cachee-pickle:1\n"

#: Default keys longer than this are replaced by a digest of their arguments.
KEY_INLINE_MAX = 240


def _pickle_codec():
    """(dumps, loads) of pickle: imported here, and only called by
    memoize(serializer="pickle").  Nothing else in cachee unpickles
    (SECURITY.md, section 4)."""
    import pickle  # opt-in by name only

    def dumps(value):
        return PICKLE_MAGIC + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(data):
        return pickle.loads(memoryview(data)[len(PICKLE_MAGIC):])

    return dumps, loads


def _check_timeout(timeout):
    if timeout is None:
        return -1.0
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("timeout is a number of seconds or None, not %s"
                        % type(timeout).__name__)
    t = float(timeout)
    if math.isnan(t) or t < 0:
        raise ValueError("timeout must be >= 0 seconds or None (got %r)" % (timeout,))
    return t


def _is_ndarray(value):
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.ndarray)


def _check_value(value, what):
    """Refuse what cannot be stored, before anything is stored."""
    if _is_ndarray(value):
        return "array"
    if isinstance(value, str):
        raise TypeError("%s returned a str; cachee stores bytes-like values and "
                        "numpy arrays (encode it, e.g. value.encode())" % what)
    try:
        memoryview(value).release()
    except TypeError:
        raise TypeError(
            "%s returned %s; cachee stores bytes-like values and numpy arrays "
            "(memoize(serializer='pickle') stores other objects)"
            % (what, type(value).__name__)) from None
    return "bytes"


def _store_and_read(cache, key, value, kind, ttl):
    if kind == "array":
        cache.set_numpy(key, value, ttl=ttl)
    else:
        cache.set(key, value, ttl=ttl)
    got = cache._get_stored(key, _MISSING)
    if got is not _MISSING:
        return got
    # Evicted or expired at once (tiny region, tiny ttl): hand back what was
    # computed, in the form a hit would have had.
    if kind == "array":
        out = value.copy()
        out.flags.writeable = False
        return out
    return value if type(value) is bytes else bytes(memoryview(value))


def get_or_load(cache, key, fn, *, ttl=None, timeout=30.0):
    """See SharedCache.get_or_load."""
    if not callable(fn):
        raise TypeError("get_or_load: fn must be callable, not %s" % type(fn).__name__)
    wait = _check_timeout(timeout)
    got = cache._get_stored(key, _MISSING)  # also checks the key and closed
    if got is not _MISSING:
        return got
    if ttl is not None:
        # Check the ttl now, not after fn ran.
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
            raise TypeError("ttl is a number of seconds or None, not %s"
                            % type(ttl).__name__)
        if not (ttl > 0) or math.isinf(ttl):
            raise ValueError("ttl must be a positive, finite number of seconds (got %r)"
                             % (ttl,))
    while True:
        token = cache._load_lock(key, wait)
        if token < 0:
            # Another process or thread stored it.
            got = cache._get_stored(key, _MISSING)
            if got is not _MISSING:
                return got
            continue  # gone again (evicted, expired, deleted): try again
        try:
            # Stored between our miss and our lock?
            got = cache._get_stored(key, _MISSING)
            if got is not _MISSING:
                return got
            value = fn(key)
            kind = _check_value(value, "get_or_load: fn(%r)" % (key,))
            return _store_and_read(cache, key, value, kind, ttl)
        finally:
            cache._load_unlock(token)


def _stable_repr(obj, where):
    r = repr(obj)
    if " at 0x" in r:
        raise TypeError(
            "memoize: %s has a repr that names a memory address (%s), which differs "
            "between processes; pass key=callable(*args, **kwargs) returning a str "
            "or bytes key" % (where, r[:80]))
    return r


def default_key(fn, args, kwargs):
    """The key memoize uses by default: the function's module and qualified
    name, then the repr of the positional and keyword arguments.  Keys longer
    than KEY_INLINE_MAX characters use a SHA-256 of that text instead."""
    name = "%s.%s" % (getattr(fn, "__module__", "?"), getattr(fn, "__qualname__", fn))
    parts = [_stable_repr(a, "argument %d" % i) for i, a in enumerate(args)]
    parts += ["%s=%s" % (k, _stable_repr(v, "argument %s" % k))
              for k, v in sorted(kwargs.items())]
    text = "memoize:%s(%s)" % (name, ", ".join(parts))
    if len(text) > KEY_INLINE_MAX:
        text = "memoize:%s#%s" % (name, hashlib.sha256(text.encode()).hexdigest())
    return text


def memoize(cache, ttl=None, key=None, serializer=None):
    """See SharedCache.memoize."""
    if key is not None and not callable(key):
        raise TypeError("memoize: key must be a callable(*args, **kwargs) -> str | bytes")
    if serializer not in (None, "pickle"):
        raise ValueError("memoize: serializer is None (bytes and numpy arrays only) or "
                         "'pickle' (asked for by name: cachee never unpickles otherwise)")
    if callable(ttl) and key is None and serializer is None:
        raise TypeError("memoize is a decorator factory: use @cache.memoize() "
                        "(with parentheses)")

    codec = _pickle_codec() if serializer == "pickle" else None

    def decorate(fn):
        if not callable(fn):
            raise TypeError("memoize decorates a callable, not %s" % type(fn).__name__)

        def cache_key(*args, **kwargs):
            k = key(*args, **kwargs) if key is not None else default_key(fn, args, kwargs)
            if not isinstance(k, (str, bytes)):
                raise TypeError("memoize: the key function returned %s, not str or bytes"
                                % type(k).__name__)
            return k

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            k = cache_key(*args, **kwargs)

            def load(_key):
                value = fn(*args, **kwargs)
                return codec[0](value) if codec is not None else value

            got = get_or_load(cache, k, load, ttl=ttl)
            if codec is not None:
                if not isinstance(got, bytes) or not got.startswith(PICKLE_MAGIC):
                    raise MismatchError(
                        "memoize: the value under %r was not stored by a pickling "
                        "memoize; refusing to unpickle it" % (k,))
                return codec[1](got)
            return got

        def invalidate(*args, **kwargs):
            """Delete the cached result for these arguments; True if present."""
            return cache.delete(cache_key(*args, **kwargs))

        wrapper.cache_key = cache_key
        wrapper.invalidate = invalidate
        wrapper.cache = cache
        return wrapper

    return decorate
