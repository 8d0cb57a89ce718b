"""values.py -- the self-verifying value format of the torture harness.

Every value carries its own proof, so that a reader can tell a torn, corrupt
or misplaced value from a good one without asking anybody:

header (64 bytes): magic u32, kind u8 (0 bytes, 1 numpy), dtype u8, pad u16,
writer u32, key u32, seq u64, length u64, expires_ns i64 (0: none),
cols u64 (2-D arrays: columns; 0: 1-D), digest 16 bytes = BLAKE2b-128 of
the first 48 bytes and the payload.
"""
import hashlib
import math
import struct

import numpy as np

MAGIC = 0x31545254  # "TRT1"
HDR = struct.Struct("<IBBHIIQQqQ")
assert HDR.size == 48
HEADER_LEN = 64
DTYPES = {1: np.dtype(np.uint8), 2: np.dtype(np.float32), 3: np.dtype(np.int64),
          4: np.dtype(np.float64)}


class Bad(Exception):
    """A value that does not verify."""


def digest_of(mv):
    d = hashlib.blake2b(mv[:48], digest_size=16)
    d.update(mv[HEADER_LEN:])
    return d.digest()


def make_value(rng, pool, writer, key, seq, length, expires_ns, kind, dcode):
    """bytes of one value, and (dtype, shape) when kind == numpy."""
    plen = length - HEADER_LEN
    off = rng.randrange(len(pool) - plen + 1)
    payload = pool[off:off + plen]
    shape = None
    cols = 0
    if kind == 1:
        dt = DTYPES[dcode]
        n = length // dt.itemsize
        if n % 8 == 0 and rng.random() < 0.5:
            cols = 8
            shape = (n // 8, 8)
        else:
            shape = (n,)
    h = HDR.pack(MAGIC, kind, dcode if kind else 0, 0, writer, key, seq, length,
                 expires_ns, cols)
    d = hashlib.blake2b(h, digest_size=16)
    d.update(payload)
    return b"".join((h, d.digest(), payload)), shape


def value_size(rng):
    r = rng.random()
    if r < 0.55:
        lo, hi = 64, 2048          # small
    elif r < 0.85:
        lo, hi = 2048, 48 << 10    # medium
    else:
        lo, hi = 80 << 10, 384 << 10  # large: more than a 64 KiB segment
    n = int(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return max(HEADER_LEN, n - n % 8)


def verify(mv, writer, key):
    """Check a value (a 1-D 'B' memoryview); return its header fields."""
    if len(mv) < HEADER_LEN:
        raise Bad("short value: %d bytes" % len(mv))
    magic, kind, dcode, _, w, k, seq, length, exp, cols = HDR.unpack_from(mv, 0)
    if magic != MAGIC:
        raise Bad("bad magic %#x" % magic)
    if (w, k) != (writer, key):
        raise Bad("value of t%d:%d under key t%d:%d" % (w, k, writer, key))
    if length != len(mv):
        raise Bad("length %d, header says %d (seq %d)" % (len(mv), length, seq))
    if digest_of(mv) != bytes(mv[48:64]):
        raise Bad("digest mismatch (seq %d, length %d)" % (seq, length))
    return seq, exp, kind, dcode, cols


def check_layout(obj_dtype, obj_shape, kind, dcode, cols, length):
    """dtype/shape reported by get_numpy / View against what was stored."""
    if kind == 1:
        dt = DTYPES.get(dcode)
        want = (length // dt.itemsize // 8, 8) if cols else (length // dt.itemsize,)
    else:
        dt = np.dtype(np.uint8)
        want = (length,)
    if np.dtype(obj_dtype) != dt or tuple(obj_shape) != want:
        raise Bad("layout %s%s, stored %s%s" % (np.dtype(obj_dtype), tuple(obj_shape), dt, want))
