"""Memory of W reader processes sharing a D-byte data set: total PSS (from
/proc/PID/smaps_rollup) for cachee and for the stores users pick instead.

    python bench/python/memory.py [--mib 200] [--workers 1,2,4,8]
                                  [--only cachee,dict,...] [--quick] [--json FILE]

The data set: D = --mib MiB of 128 x float32 embeddings (512 B each, D/512
keys), generated from a fixed seed.  Readers are separate interpreters
(subprocesses, as uvicorn --workers or gunicorn without --preload start
them), so nothing is shared through fork.  Each reader imports its modules
and reports (the "baseline": PSS of a reader holding no data), then opens the
store and reads values, reports again, and stays alive until every reader
has been measured.  Contenders:

    cachee        a loader process fills a region and exits; readers open it by
                  path and read every value with get_numpy (zero-copy)
    dict          each reader builds its own dict of ndarrays (per-process copy)
    lmdb          a loader writes an environment and exits; readers read every
                  value in a buffers=True read transaction (the map is shared
                  through the page cache)
    redis         the bench's redis-server holds the data; readers fetch a
                  sample of 5000 keys over the unix socket (a client keeps no
                  data, reading more changes nothing); the server counts once
    Manager       a multiprocessing manager server process holds a dict of bytes
                  (what Manager().dict() is); readers fetch a 2000-key sample
                  through a DictProxy; the server counts once

Columns: total = sum of the readers' PSS plus the server's (redis, Manager);
"file counted whole" replaces the readers' PSS of the region / lmdb file by
the bytes the file occupies (tmpfs or page cache hold every allocated page,
mapped or not), the honest figure when nothing else maps it.
Goal: total PSS for 8 cachee readers <= 1.1 x D + 8 x the reader baseline.
"""
import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import common

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1 << 20
DIM = 128
AUTH = b"cachee-bench"
KINDS = ("cachee", "dict", "lmdb", "redis", "Manager")


def vkey(i):
    """The key of embedding i: "v:<i>", as in issue 11's memory figure."""
    return "v:%d" % i


def make_data(n):
    return np.random.default_rng(1234).standard_normal((n, DIM), dtype=np.float32)


def manager_class():
    from multiprocessing.managers import BaseManager, DictProxy

    class StoreManager(BaseManager):
        pass

    store = {}
    StoreManager.register("store", callable=lambda: store, proxytype=DictProxy)
    return StoreManager


# ------------------------------------------------------------ child roles


def role_load(kind, target, n):
    """Fill the store at target with n embeddings, then exit."""
    data = make_data(n)
    names = [vkey(i) for i in range(n)]
    if kind == "cachee":
        import cachee
        c = cachee.SharedCache(target, size_bytes=region_size(n), max_entries=n + n // 4 + 1024)
        for i, k in enumerate(names):
            c.set_numpy(k, data[i])
        st = c.stats()
        c.close()
        if st["evictions"] or st["entries"] != n:
            raise SystemExit("memory.py: the region is too small (%r)" % st)
    elif kind == "lmdb":
        import lmdb
        env = lmdb.open(target, map_size=n * 2048 + (64 << 20), sync=False, metasync=False)
        with env.begin(write=True) as txn:
            for i, k in enumerate(names):
                txn.put(k.encode(), data[i].tobytes())
        env.sync(True)
        env.close()
    elif kind == "redis":
        import redis
        r = redis.Redis(unix_socket_path=target)
        p = r.pipeline(transaction=False)
        for i, k in enumerate(names):
            p.set(k, data[i].tobytes())
            if i % 5000 == 4999:
                p.execute()
        p.execute()
    elif kind == "Manager":
        m = manager_class()(address=target, authkey=AUTH)
        m.connect()
        d = m.store()
        for i in range(0, n, 5000):
            d.update({names[j]: data[j].tobytes() for j in range(i, min(n, i + 5000))})


def role_serve_manager(address):
    m = manager_class()(address=address, authkey=AUTH)
    srv = m.get_server()  # listening from here on
    say("ready")
    srv.serve_forever()


def region_size(n):
    """A region sized like a user would size it: the records (a 512 B vector
    takes 560 B with its key, header and metadata) plus ~10% and a few
    segments."""
    return (int(n * 560 * 1.1) + 4 * MIB + 4095) & ~4095


def role_reader(kind, target, n):
    """Report the baseline, open and read on "go", report, exit on "exit"."""
    import cachee  # noqa: F401  every reader imports the same modules
    try:
        import lmdb  # noqa: F401
        import redis  # noqa: F401
    except ImportError:
        pass
    gc.collect()
    say("base")
    wait("go")
    total = 0.0
    keep = None
    if kind == "cachee":
        c = cachee.SharedCache.open(target)
        keep = c
        for i in range(n):
            total += float(c.get_numpy(vkey(i)).sum())
    elif kind == "dict":
        data = make_data(n)
        keep = {vkey(i): data[i].copy() for i in range(n)}
        del data
        for i in range(n):
            total += float(keep[vkey(i)].sum())
    elif kind == "lmdb":
        import lmdb
        env = lmdb.open(target, readonly=True, lock=True, max_readers=64)
        txn = env.begin(buffers=True)
        keep = (env, txn)
        for i in range(n):
            total += float(np.frombuffer(txn.get(vkey(i).encode()), np.float32).sum())
    elif kind == "redis":
        import redis
        r = redis.Redis(unix_socket_path=target)
        keep = r
        for i in range(0, n, max(1, n // 5000)):
            total += float(np.frombuffer(r.get(vkey(i)), np.float32).sum())
    elif kind == "Manager":
        m = manager_class()(address=target, authkey=AUTH)
        m.connect()
        d = m.store()
        keep = (m, d)
        for i in range(0, n, max(1, n // 2000)):
            total += float(np.frombuffer(d[vkey(i)], np.float32).sum())
    gc.collect()
    say("touched %r" % total)
    wait("exit")
    del keep


def say(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def wait(word):
    line = sys.stdin.readline().strip()
    if line != word:
        raise SystemExit("reader: expected %r, got %r" % (word, line))


# ------------------------------------------------------------ the parent


def child(args, **kw):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [HERE] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return subprocess.Popen([sys.executable, os.path.join(HERE, "memory.py")] + args,
                            env=env, **kw)


def run_kind(kind, W, n, tmp, server):
    """One contender with W readers; returns the measurement dict."""
    procs = []
    extra = None
    target = None
    try:
        if kind == "cachee":
            target = "/dev/shm/cachee-bench-memory-%d" % os.getpid()
        elif kind == "lmdb":
            target = os.path.join(tmp, "lmdb")
        elif kind == "redis":
            server["redis"].proc  # started by main
            target = server["redis"].sock
        elif kind == "Manager":
            target = os.path.join(tmp, "manager-%d.sock" % W)
            extra = child(["--role", "serve-manager", "--target", target],
                          stdout=subprocess.PIPE, text=True)
            if extra.stdout.readline().strip() != "ready":
                raise RuntimeError("the manager server did not start")
        if kind in ("cachee", "lmdb", "Manager") or (kind == "redis" and not server.get("loaded")):
            loader = child(["--role", "load", "--kind", kind, "--target", target, "--n", str(n)])
            if loader.wait() != 0:
                raise RuntimeError("%s loader failed" % kind)
            if kind == "redis":
                server["loaded"] = True
        used = None
        if kind == "cachee":
            import cachee
            with cachee.SharedCache.open(target) as c:
                used = c.stats()["used_bytes"]
        for _ in range(W):
            procs.append(child(["--role", "reader", "--kind", kind, "--target", str(target),
                                "--n", str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True))

        def gather(word):
            out = []
            for p in procs:
                line = p.stdout.readline().strip()
                if not line.startswith(word):
                    raise RuntimeError("%s reader: expected %s, got %r (exit %s)"
                                       % (kind, word, line, p.poll()))
                out.append(line)
            return out

        def tell(word):
            for p in procs:
                p.stdin.write(word + "\n")
                p.stdin.flush()

        gather("base")
        base = [common.pss_bytes(p.pid) for p in procs]
        spid = {"redis": server["redis"].pid if "redis" in server else None,
                "Manager": extra.pid if extra else None}.get(kind)
        server_base = common.pss_bytes(spid) if spid else 0
        tell("go")
        touched = gather("touched")
        pss = [common.pss_bytes(p.pid) for p in procs]
        server_pss = common.pss_bytes(spid) if spid else 0
        file_pss = 0
        file_bytes = 0
        if kind in ("cachee", "lmdb"):
            file_pss = sum(common.mapped_pss(p.pid, target) for p in procs)
            file_bytes = common.allocated_bytes(target)
        if len(set(touched)) != 1 and kind in ("cachee", "dict", "lmdb"):
            raise RuntimeError("%s readers read different data: %s" % (kind, touched))
        tell("exit")
        for p in procs:
            if p.wait(60) != 0:
                raise RuntimeError("%s reader exited with %s" % (kind, p.returncode))
        total = sum(pss) + server_pss
        res = {"kind": kind, "workers": W, "reader_base": base, "reader_pss": pss,
               "server_pss": server_pss, "server_base": server_base,
               "total_pss": total, "file_pss": file_pss, "file_bytes": file_bytes,
               "total_file_whole": total - file_pss + file_bytes if file_bytes else total,
               "used_bytes": used}
        return res
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if extra is not None:
            extra.kill()
            extra.wait()
        if kind == "cachee" and target and os.path.exists(target):
            import cachee
            cachee.unlink(target)
        if kind == "lmdb" and target:
            shutil.rmtree(target, ignore_errors=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mib", type=float, default=200)
    p.add_argument("--workers", default="1,2,4,8")
    p.add_argument("--only", default="")
    p.add_argument("--quick", action="store_true", help="20 MiB, 2 readers")
    p.add_argument("--json")
    p.add_argument("--role", help=argparse.SUPPRESS)
    p.add_argument("--kind", help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.role == "load":
        role_load(a.kind, a.target, a.n)
        return 0
    if a.role == "serve-manager":
        role_serve_manager(a.target)
        return 0
    if a.role == "reader":
        role_reader(a.kind, a.target, a.n)
        return 0
    if a.quick:
        a.mib, a.workers = 20, "2"
    workers = [int(x) for x in a.workers.split(",")]
    n = int(a.mib * MIB) // (DIM * 4)
    D = n * DIM * 4
    only = [k for k in a.only.split(",") if k] or list(KINDS)
    print("machine: " + common.machine())
    print("data set D = %.1f MiB (%d embeddings of 128 x float32), readers %s"
          % (D / MIB, n, ",".join(map(str, workers))))
    result = {"machine": common.machine(), "data_bytes": D, "keys": n, "workers": workers,
              "quick": a.quick, "missing": {}, "runs": []}
    tmp = tempfile.mkdtemp(prefix="cachee-bench-memory-")
    server = {}
    kinds = []
    for k in only:
        if k == "lmdb":
            try:
                import lmdb  # noqa: F401
            except ImportError as e:
                result["missing"][k] = "pip install lmdb (%s)" % e
                continue
        if k == "redis":
            try:
                import redis  # noqa: F401
                import contenders
                server["redis"] = contenders.RedisServer()
            except (ImportError, Exception) as e:
                result["missing"][k] = "%s" % e
                continue
        kinds.append(k)
    for k, why in result["missing"].items():
        print("MISSING %s: %s" % (k, why))
    try:
        for W in workers:
            for kind in kinds:
                t0 = time.perf_counter()
                r = run_kind(kind, W, n, tmp, server)
                r["seconds"] = time.perf_counter() - t0
                result["runs"].append(r)
                print("%-8s W=%d  total PSS %7.1f MiB  (%.1f s)" % (
                    kind, W, r["total_pss"] / MIB, r["seconds"]), flush=True)
    finally:
        if "redis" in server:
            server["redis"].stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(result)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


def report(result):
    D = result["data_bytes"]
    rows = []
    by = {(r["kind"], r["workers"]): r for r in result["runs"]}
    for W in result["workers"]:
        c = by.get(("cachee", W))
        for kind in KINDS:
            r = by.get((kind, W))
            if r is None:
                continue
            rows.append([kind, W, "%.1f" % (r["total_pss"] / MIB),
                         "%.1f" % (r["total_file_whole"] / MIB),
                         "%.1f" % (sum(r["reader_base"]) / MIB),
                         "%.1f" % (r["server_pss"] / MIB) if r["server_pss"] else "-",
                         "%.2f" % (r["total_pss"] / D),
                         "%.2f" % (r["total_pss"] / c["total_pss"]) if c else "-"])
    print()
    print("## total PSS of W readers sharing D = %.1f MiB (MiB)" % (D / MIB))
    print(common.table(["store", "W", "total PSS", "file counted whole", "readers' baseline",
                        "server", "total / D", "x cachee"], rows))
    goals = []
    for W in result["workers"]:
        c = by.get(("cachee", W))
        if not c:
            continue
        bound = 1.1 * D + sum(c["reader_base"])
        goals.append({"workers": W, "total_pss": c["total_pss"], "bound": bound,
                      "total_file_whole": c["total_file_whole"],
                      "met": c["total_pss"] <= bound})
        if W == max(result["workers"]):
            print("goal: cachee, %d readers: total PSS %.1f MiB <= 1.1 x D + readers' baseline "
                  "= %.1f MiB: %s (file counted whole: %.1f MiB)" % (
                      W, c["total_pss"] / MIB, bound / MIB,
                      "met" if c["total_pss"] <= bound else "MISSED",
                      c["total_file_whole"] / MIB))
    result["goal"] = goals
    c = next((r for r in result["runs"] if r["kind"] == "cachee" and r.get("used_bytes")), None)
    if c:
        print("goal: the region holds D in %.3f x D (used_bytes %.1f MiB; goal <= 1.1): %s"
              % (c["used_bytes"] / D, c["used_bytes"] / MIB,
                 "met" if c["used_bytes"] <= 1.1 * D else "MISSED"))


if __name__ == "__main__":
    sys.exit(main())
