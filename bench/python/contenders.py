"""The stores a Python ML team reaches for instead of cachee, behind one small
interface, plus a private redis-server for the run.

Each contender's `open(name, keys, values, dtype)` loads one data set (keys:
key strings; values: bytes objects; dtype: numpy dtype of the values when they
are arrays, else None) and returns a dict of operations:

    get(key)              the value (bytes, or a buffer where noted)
    get_numpy(key)        an ndarray of the value     (array data sets only)
    set(key, value)       store a value (bytes)
    batch(keys)           ndarray (len(keys), dim)    (array data sets only)
    kind                  "str" or "bytes": the key form the operations take

Every contender gets the key form it takes natively (the benchmark prepares
both before timing) and its fastest documented way of doing the operation:
py-lmdb reads in one long-lived read transaction, Redis goes through redis-py
with the hiredis parser over TCP loopback and over a unix socket, MGET for a
batch.  A contender whose module is missing raises Missing(reason).
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import numpy as np


class Missing(Exception):
    """A peer cannot run here (module or program not installed)."""


def _stack(arrs):
    return np.stack(arrs)


# ------------------------------------------------------------ cachee


def bytes_store_ops(get, put, kind, dtype, read=None, read_many=None):
    """The operations of a store that holds bytes: get and set as given;
    with a dtype, get_numpy and batch decode what `read` (default: get)
    returns with np.frombuffer, batch joining the values of `read_many`
    (default: read of each key)."""
    ops = {"get": get, "set": put, "kind": kind}
    if dtype is not None:
        g = read or get
        fb = np.frombuffer
        ops["get_numpy"] = lambda k: fb(g(k), dtype)
        if read_many is None:
            ops["batch"] = lambda ks: fb(b"".join(map(g, ks)), dtype).reshape(len(ks), -1)
        else:
            ops["batch"] = lambda ks: fb(b"".join(read_many(ks)), dtype).reshape(len(ks), -1)
    return ops


class Cachee:
    label = "cachee"
    kind = "str"

    def __init__(self, tmp):
        import cachee
        self.cachee = cachee
        self.regions = []
        self.prefix = "/dev/shm/cachee-bench-peers-%d" % os.getpid()

    def open(self, name, keys, values, dtype):
        n = len(keys)
        vsize = len(values[0])
        path = "%s-%s" % (self.prefix, name)
        # Room for every value three times over: sets overwrite, and the
        # log-structured region must never need to evict (peers.py checks
        # that no get missed).
        c = self.cachee.SharedCache(path, size_bytes=max(64 << 20, 3 * n * (vsize + 256)),
                                    max_entries=2 * n)
        self.regions.append(c)
        if dtype is None:
            c.set_many(zip(keys, values))
        else:
            for k, v in zip(keys, values):
                c.set_numpy(k, np.frombuffer(v, dtype))
        ops = {"get": c.get, "set": c.set, "kind": "str"}
        if dtype is not None:
            ops["get_numpy"] = c.get_numpy
            ops["batch"] = c.get_numpy_batch
        return ops

    def close(self):
        for c in self.regions:
            try:
                c.unlink()
            except Exception:
                pass
            c.close()
        self.regions = []


# ------------------------------------------------------------ dict


class Dict:
    """A per-process dict of bytes; get_numpy = np.frombuffer on the bytes (the
    dict equivalent of a zero-copy view)."""
    label = "dict"
    kind = "str"

    def __init__(self, tmp):
        self.keep = []

    def open(self, name, keys, values, dtype):
        d = dict(zip(keys, values))
        self.keep.append(d)
        return bytes_store_ops(d.get, d.__setitem__, "str", dtype, read=d.__getitem__)

    def close(self):
        self.keep = []


class DictArrays:
    """A per-process dict of ndarrays (what ML code often keeps): get_numpy is
    a plain lookup; batch is np.stack."""
    label = "dict[ndarray]"
    kind = "str"
    arrays_only = True

    def __init__(self, tmp):
        self.keep = []

    def open(self, name, keys, values, dtype):
        if dtype is None:
            return None
        d = {k: np.frombuffer(v, dtype).copy() for k, v in zip(keys, values)}
        self.keep.append(d)
        g = d.__getitem__
        return {"get_numpy": d.get, "batch": lambda ks: _stack(list(map(g, ks))),
                "kind": "str"}

    def close(self):
        self.keep = []


# ------------------------------------------------------------ multiprocessing


class ManagerDict:
    label = "Manager().dict()"
    kind = "str"

    def __init__(self, tmp):
        import multiprocessing
        self.mgr = multiprocessing.get_context("fork").Manager()

    def open(self, name, keys, values, dtype):
        d = self.mgr.dict()
        for i in range(0, len(keys), 5000):
            d.update(zip(keys[i:i + 5000], values[i:i + 5000]))
        return bytes_store_ops(d.get, d.__setitem__, "str", dtype)

    def close(self):
        self.mgr.shutdown()


# ------------------------------------------------------------ lmdb


class Lmdb:
    """py-lmdb, values copied out (buffers=False)."""
    label = "lmdb"
    kind = "bytes"
    buffers = False

    def __init__(self, tmp):
        try:
            import lmdb
        except ImportError as e:
            raise Missing("pip install lmdb (%s)" % e)
        self.lmdb = lmdb
        self.dir = os.path.join(tmp, "lmdb-%s" % ("buf" if self.buffers else "copy"))
        os.makedirs(self.dir, exist_ok=True)
        self.envs = []

    def open(self, name, keys, values, dtype):
        env = self.lmdb.open(os.path.join(self.dir, name), map_size=1 << 34, readahead=False,
                             metasync=False, sync=False, max_readers=256)
        self.envs.append(env)
        bkeys = [k.encode() for k in keys]
        with env.begin(write=True) as txn:
            for k, v in zip(bkeys, values):
                txn.put(k, v)
        txn = env.begin(buffers=self.buffers)  # one long-lived read transaction
        self.envs.append(txn)
        g = txn.get

        def put(k, v, env=env):
            with env.begin(write=True) as t:
                t.put(k, v)

        return bytes_store_ops(g, put, "bytes", dtype)

    def close(self):
        for e in reversed(self.envs):
            try:
                e.abort() if hasattr(e, "abort") else e.close()
            except Exception:
                pass
        self.envs = []


class LmdbBuffers(Lmdb):
    """py-lmdb with buffers=True: get returns a memoryview into the map, valid
    only until the transaction ends (no copy, unsafe to keep)."""
    label = "lmdb buffers=True"
    buffers = True

    def open(self, name, keys, values, dtype):
        ops = super().open(name, keys, values, dtype)
        ops.pop("set")  # writes are the same as lmdb's
        return ops


# ------------------------------------------------------------ diskcache


class DiskCache:
    label = "diskcache"
    kind = "str"

    def __init__(self, tmp):
        try:
            import diskcache
        except ImportError as e:
            raise Missing("pip install diskcache (%s)" % e)
        self.diskcache = diskcache
        self.tmp = tmp
        self.caches = []

    def open(self, name, keys, values, dtype):
        c = self.diskcache.Cache(os.path.join(self.tmp, "diskcache-" + name),
                                 size_limit=1 << 34, eviction_policy="none")
        self.caches.append(c)
        with c.transact():
            for k, v in zip(keys, values):
                c.set(k, v)
        return bytes_store_ops(c.get, c.set, "str", dtype)

    def close(self):
        for c in self.caches:
            c.close()
        self.caches = []


# ------------------------------------------------------------ redis


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private redis-server on a free loopback port and a unix socket in a
    temporary directory, without persistence; stop() (or the context
    manager's exit) terminates it and removes the directory."""

    def __init__(self, binary=None):
        self.binary = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.access(self.binary, os.X_OK):
            raise Missing("redis-server not found (apt-get install redis-server)")
        self.dir = tempfile.mkdtemp(prefix="cachee-bench-redis-")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.port = free_port()
        self.loaded = set()
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--unixsocket", self.sock, "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--maxmemory", "0", "--protected-mode", "yes", "--loglevel", "warning",
             "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)  # Ctrl-C on the terminal does not reach it; stop() does
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise Missing("redis-server did not start")
            time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Redis:
    """redis-py (hiredis parser) against the bench's own redis-server."""
    label = "redis tcp"
    kind = "bytes"
    unix = False

    def __init__(self, tmp, server=None):
        try:
            import redis
            from redis.utils import HIREDIS_AVAILABLE
        except ImportError as e:
            raise Missing("pip install redis hiredis (%s)" % e)
        if not HIREDIS_AVAILABLE:
            raise Missing("pip install hiredis (redis-py would use its pure-Python parser)")
        if server is None:
            raise Missing("no redis-server")
        self.server = server
        if self.unix:
            self.r = redis.Redis(unix_socket_path=server.sock)
        else:
            self.r = redis.Redis(host="127.0.0.1", port=server.port)
        self.r.ping()

    def open(self, name, keys, values, dtype):
        r = self.r
        prefix = (name + ":").encode()
        bkeys = [prefix + k.encode() for k in keys]
        if name not in self.server.loaded:  # both clients share the server: load once
            self.server.loaded.add(name)
            p = r.pipeline(transaction=False)
            for i, (k, v) in enumerate(zip(bkeys, values)):
                p.set(k, v)
                if i % 5000 == 4999:
                    p.execute()
            p.execute()
        ops = bytes_store_ops(r.get, r.set, "bytes", dtype, read_many=r.mget)
        # The key stream prepared for this contender carries the prefix.
        ops["prefix"] = prefix
        return ops

    def close(self):
        self.r.close()


class RedisUnix(Redis):
    label = "redis unix"
    unix = True


ALL = [Cachee, Dict, DictArrays, Lmdb, LmdbBuffers, Redis, RedisUnix, DiskCache, ManagerDict]
