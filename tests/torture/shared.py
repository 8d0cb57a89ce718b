"""shared.py -- the state the supervisor and its workers share.

One anonymous MAP_SHARED mapping, created before the first fork, read and
written as int64 through a memoryview: a block of globals (G_*), then one
block per worker slot (fields F_*).  A slot's block survives the worker: a
restarted worker continues its counters (and a writer its sequence numbers).
A second mapping holds, per slot, the text of the first failure.
"""
import mmap

STALL_NS = 1_000_000_000          # an operation slower than this is a stall
                                  # (the default of --stall-seconds)

G_EPOCH, G_FREEZE_REQ, G_FREEZE_ON, G_DROP, G_STOP, G_HOARD = range(6)
GLOBALS = 16
(F_PID, F_READY, F_OPSTART, F_OPS, F_HITS, F_MISSES, F_SETS, F_SETNP,
 F_DELS, F_TTLSETS, F_FULL, F_TORN, F_STALE, F_EXPIRED, F_ERRORS, F_SLOW,
 F_LATMAX, F_VIEWS, F_VBYTES, F_ACK, F_SEQ, F_HELD, F_REVERIFY, F_BYTES_RD,
 F_BYTES_WR, F_GETS, F_GETNP, F_GETVIEW, F_GETBUF, F_GETMANY,
 F_CONTAINS) = range(31)
F_LAT_E = 36   # 4 epoch tags
F_LAT_M = 40   # 4 maxima (ns) of operations that ended in that epoch
F_HIST = 44    # 20 buckets: latency < 2**b microseconds (b = 0..19), last: more
NHIST = 20
BLOCK = 64
TEXT = 512     # bytes of text per slot: the first failure, for the report

ROLE_WRITER, ROLE_READER, ROLE_MIXED = 1, 2, 3
ROLE_NAMES = {ROLE_WRITER: "writer", ROLE_READER: "reader", ROLE_MIXED: "mixed"}


class Shared:
    def __init__(self, nslots):
        self.nslots = nslots
        n = (GLOBALS + nslots * BLOCK) * 8
        self.mm = mmap.mmap(-1, n)  # MAP_SHARED | MAP_ANONYMOUS
        self.q = memoryview(self.mm).cast("q")
        self.tm = mmap.mmap(-1, nslots * TEXT)

    def base(self, slot):
        return GLOBALS + slot * BLOCK

    def get(self, slot, f):
        return self.q[GLOBALS + slot * BLOCK + f]

    def set(self, slot, f, v):
        self.q[GLOBALS + slot * BLOCK + f] = v

    def text(self, slot):
        raw = self.tm[slot * TEXT:(slot + 1) * TEXT]
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    def set_text(self, slot, s):
        if self.tm[slot * TEXT] != 0:
            return  # keep the first
        b = s.encode("utf-8", "replace")[:TEXT - 1]
        self.tm[slot * TEXT:slot * TEXT + len(b)] = b
