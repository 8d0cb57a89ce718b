"""A process with L1 (libcachee loaded), driven over stdin/stdout with one
JSON command per line, for test_l1.py: the pytest process itself never
loads the Go runtime (its other tests fork).

    python l1_helper.py PATH L1_BYTES [L1_PROMOTE]
"""
import json
import sys
import time

import numpy as np

import cachee

path, l1_bytes = sys.argv[1], int(sys.argv[2])
promote = sys.argv[3] if len(sys.argv) > 3 else "tinylfu"
c = cachee.SharedCache.open(path, l1_bytes=l1_bytes, l1_promote=promote)
assert c.get("__load_the_tiers__") is None  # the first miss loads them
# Bring L0 to its eviction regime first: records written from now on go
# through S3-FIFO's small queue and leave after about a tenth of the region
# has been written, unless read.  (Records copied forward while the region
# was filling sit in the main queue, which a stream of new keys never
# reaches.)
for i in range(3 * c.stats()["capacity_bytes"] // 4096):
    c.set("warm-%d" % i, b"w" * 4096)


def tiers():
    return {t["name"]: t for t in c.stats()["tiers"]}


def enc(v):
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        return {"array": v.tolist(), "dtype": v.dtype.str, "writeable": v.flags.writeable}
    return bytes(v).hex()


def in_l0(key):
    return c._l0_contains(key)  # L0 only, leaves the key's frequency alone


def evict(key, prefix, size=4096):
    """Write filler keys until key has left L0 (evicted by this process);
    the number written, or -1 if it stayed: a key whose hash hits L0's
    ghost filter goes to the main queue, which new keys never reach."""
    filler = b"f" * size
    for i in range(4 * c.stats()["capacity_bytes"] // size):
        if not in_l0(key):
            return i
        c.set("%s-%d" % (prefix, i), filler)
    return -1


def l1_has(key):
    """Is key served by this process's L1 (without promoting it)?"""
    before = tiers()["l1"]["hits"]
    present = key in c  # cachee_get with CACHEE_GET_NO_PROMOTE below L0
    return present and not in_l0(key) and tiers()["l1"]["hits"] == before + 1


def handle(cmd):
    op, key = cmd["op"], cmd.get("key")
    if op == "set":
        c.set(key, bytes.fromhex(cmd["value"]), ttl=cmd.get("ttl"))
        return None
    if op == "set_numpy":
        c.set_numpy(key, np.array(cmd["array"], dtype=cmd["dtype"]), ttl=cmd.get("ttl"))
        return None
    if op == "evict":
        return evict(key, cmd["prefix"], cmd.get("size", 4096))
    if op == "l1_has":
        return l1_has(key)
    if op == "in_l0":
        return in_l0(key)
    if op == "get":
        before = tiers()["l1"]["hits"]
        v = c.get(key)
        return {"value": enc(v), "l1": tiers()["l1"]["hits"] > before}
    if op == "get_buffer":
        v = c.get_buffer(key)
        return {"value": enc(v), "readonly": None if v is None else v.readonly}
    if op == "get_numpy":
        return {"value": enc(c.get_numpy(key))}
    if op == "delete":
        return c.delete(key)
    if op == "stats":
        st = c.stats()
        return {"tiers": tiers(), "demotion": st["demotion"], "l0_evictions": st["evictions"]}
    if op == "sleep":
        time.sleep(cmd["s"])
        return None
    if op == "close":
        c.close()
        return None
    raise ValueError(op)


for line in sys.stdin:
    try:
        out = {"ok": handle(json.loads(line))}
    except Exception as e:  # reported to the test
        out = {"error": "%s: %s" % (type(e).__name__, e)}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
