"""python -m cachee.demo: one copy of the data for every worker process.

A master process fills a cache with N float32 embeddings of dimension DIM,
then forks W workers that serve random lookups, the way gunicorn --preload or
a multiprocessing pool would.  The same job runs against per-process dicts of
the same arrays, measured the same way:

  cachee                 the master fills a SharedCache; workers get_numpy()
                         (zero-copy views on the one shared copy)
  dict, master + fork    the master builds a dict of the arrays, then forks
                         the workers (copy-on-write: pages stay shared until
                         something writes to them, e.g. reference counts)
  dict, per worker       each worker builds its own dict (the usual outcome
                         without --preload, or with per-process caches)

For each, the demo prints the proportional set size (PSS, from
/proc/PID/smaps_rollup) of the master and of each worker after the worker
has read every value once, the total, and the lookups per second of all
workers together; then where the data lives.  The region is removed at the
end, also on Ctrl-C.

    python -m cachee.demo [--workers 4] [--keys 200000] [--dim 128]
                          [--seconds 2] [--path /dev/shm/NAME]
"""
import argparse
import gc
import os
import select
import signal
import sys
import time

MIB = 1 << 20


# ------------------------------------------------------------ measuring


def pss_bytes(pid):
    """PSS of a process in bytes (0 if it cannot be read)."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def shm_usage(path):
    """(used, total) bytes of the filesystem holding path."""
    st = os.statvfs(os.path.dirname(path) or "/dev/shm")
    return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_blocks * st.f_frsize


def fmt_mib(b):
    return "%.1f" % (b / MIB)


# ------------------------------------------------------------ the data


def make_data(n, dim, seed=1234):
    import numpy as np
    return np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)


def make_keys(n):
    return ["emb:%d" % i for i in range(n)]


# ------------------------------------------------------------- plumbing


def _send(fd, msg):
    data = repr(msg).encode()
    os.write(fd, len(data).to_bytes(4, "little") + data)


def _recv(fd, timeout=600):
    import ast

    def read_exact(n):
        buf = b""
        while len(buf) < n:
            r, _, _ = select.select([fd], [], [], timeout)
            if not r:
                raise TimeoutError("a demo process did not answer")
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise EOFError("a demo process died")
            buf += chunk
        return buf

    n = int.from_bytes(read_exact(4), "little")
    return ast.literal_eval(read_exact(n).decode())


# -------------------------------------------------------------- workers


def _worker(kind, store, args, cmd_r, res_w):
    """One worker: report, touch all data, report, serve lookups, report."""
    import numpy as np

    n = args.keys
    gc.collect()
    _send(res_w, "base")
    _recv(cmd_r)
    if kind == "dict-worker":  # build our own copy, as a per-process cache would
        data = make_data(n, args.dim)
        store = {k: data[i].copy() for i, k in enumerate(make_keys(n))}
        del data
    if kind == "cachee":
        get = store.get_numpy
    else:
        get = store.__getitem__
    # Keys are built as they are used, not kept in a list: a list of N key
    # strings per worker would add the same private memory to every store.
    total = 0.0
    for i in range(n):  # read every byte of every value once
        total += float(get("emb:%d" % i).sum())
    gc.collect()
    _send(res_w, ("touched", total))
    _recv(cmd_r)
    rng = np.random.default_rng(os.getpid())
    picks = rng.integers(0, n, 1 << 16).tolist()
    count = 0
    start = time.perf_counter()
    end = start + args.seconds
    while True:
        for j in range(0, len(picks), 1024):
            for i in picks[j:j + 1024]:
                get("emb:%d" % i)
            count += 1024
            if time.perf_counter() >= end:
                break
        else:
            continue
        break
    elapsed = time.perf_counter() - start
    _send(res_w, ("lookups", count, elapsed))
    _recv(cmd_r)


def _phase_master(kind, args, path, out_w):
    """The master of one run: build the store, fork the workers, measure."""
    store = None
    cache = None
    if kind == "cachee":
        import cachee
        data = make_data(args.keys, args.dim)
        record = data.shape[1] * data.itemsize + 256  # value + header, key, padding
        size = max(64 * MIB, int(args.keys * record * 1.6) + 32 * MIB)
        cache = cachee.SharedCache(path, size_bytes=size)
        t0 = time.perf_counter()
        for i in range(args.keys):
            cache.set_numpy("emb:%d" % i, data[i])
        fill_s = time.perf_counter() - t0
        del data
        store = cache
        _send(out_w, ("filled", fill_s, size))
    elif kind == "dict-master":
        data = make_data(args.keys, args.dim)
        store = {k: data[i].copy() for i, k in enumerate(make_keys(args.keys))}
        del data
    gc.collect()
    workers = []
    for _ in range(args.workers):
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(cmd_w)
                os.close(res_r)
                _worker(kind, store, args, cmd_r, res_w)
                code = 0
            except KeyboardInterrupt:
                pass
            finally:
                os._exit(code)
        os.close(cmd_r)
        os.close(res_w)
        workers.append((pid, cmd_w, res_r))
    _send(out_w, ("pids", [w[0] for w in workers]))

    def gather(tag):
        got = []
        for _, _, res_r in workers:
            msg = _recv(res_r)
            assert msg == tag or msg[0] == tag, msg
            got.append(msg)
        return got

    def go():
        for _, cmd_w, _ in workers:
            _send(cmd_w, "go")

    gather("base")
    base = [pss_bytes(w[0]) for w in workers]
    go()
    touched = gather("touched")
    if len({t[1] for t in touched}) != 1:
        raise RuntimeError("workers read different data")
    pss = [pss_bytes(w[0]) for w in workers]
    master_pss = pss_bytes(os.getpid())
    go()
    lookups = gather("lookups")
    go()
    for pid, _, _ in workers:
        os.waitpid(pid, 0)
    result = {
        "kind": kind,
        "base": base,
        "pss": pss,
        "master": master_pss,
        "lookups": sum(c for _, c, _ in lookups),
        "seconds": max(e for _, _, e in lookups),
    }
    if cache is not None:
        st = cache.stats()
        result["used_bytes"] = st["used_bytes"]
        result["region_size"] = st["region_size"]
        result["shm"] = shm_usage(path)
        cache.close()
    _send(out_w, ("result", result))


# ------------------------------------------------------------------ main


class DemoError(Exception):
    """A run of the demo failed (the message says why)."""


KINDS = [("cachee", "cachee (shared memory)"),
         ("dict-master", "dict, master + fork"),
         ("dict-worker", "dict, per worker")]


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m cachee.demo",
        description="A master fills a cache with embeddings and forks workers "
                    "that serve lookups; PSS and lookups/s against per-process "
                    "dicts of the same arrays.")
    p.add_argument("--workers", "-w", type=int, default=4, help="worker processes (4)")
    p.add_argument("--keys", "-n", type=int, default=200_000, help="embeddings (200000)")
    p.add_argument("--dim", type=int, default=128, help="float32 values per embedding (128)")
    p.add_argument("--seconds", "-s", type=float, default=2.0,
                   help="seconds of lookups per run (2)")
    p.add_argument("--path", default=None,
                   help="region path (default /dev/shm/cachee-demo-PID; removed at the end)")
    a = p.parse_args(argv)
    if a.workers < 1 or a.keys < 1 or a.dim < 1 or not a.seconds > 0:
        p.error("--workers, --keys, --dim and --seconds must be positive")
    return a


def run_kind(kind, args, path, children):
    """Run one store kind in a forked master; returns its result dict."""
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(out_r)
            _phase_master(kind, args, path, out_w)
            code = 0
        except KeyboardInterrupt:
            pass
        except BaseException as e:
            try:
                _send(out_w, ("error", "%s: %s" % (type(e).__name__, e)))
            except BaseException:
                pass
        finally:
            os._exit(code)
    os.close(out_w)
    children.append(pid)
    extra = {}
    try:
        while True:
            msg = _recv(out_r)
            if msg[0] == "pids":
                children.extend(msg[1])
            elif msg[0] == "filled":
                extra["fill_s"], extra["size"] = msg[1], msg[2]
            elif msg[0] == "result":
                msg[1].update(extra)
                return msg[1]
            elif msg[0] == "error":
                raise DemoError(msg[1])
    finally:
        os.close(out_r)
        _, status = os.waitpid(pid, 0)
        children.remove(pid)


def print_report(args, results, path):
    data_bytes = args.keys * args.dim * 4
    w = args.workers
    print()
    print("cachee demo: %d float32 embeddings of dim %d (%s MiB of data), %d workers, "
          "%g s of random lookups each" % (args.keys, args.dim, fmt_mib(data_bytes), w,
                                           args.seconds))
    print()
    wcols = ["w%d" % i for i in range(w)] if w <= 8 else ["min", "avg", "max"]
    head1 = ["store", "master"] + wcols + ["total", "lookups/s"]
    rows = []
    for kind, label in KINDS:
        r = results.get(kind)
        if r is None:
            continue
        if w <= 8:
            per = [fmt_mib(x) for x in r["pss"]]
        else:
            per = [fmt_mib(min(r["pss"])), fmt_mib(sum(r["pss"]) / w), fmt_mib(max(r["pss"]))]
        total = r["master"] + sum(r["pss"])
        rate = r["lookups"] / r["seconds"] if r["seconds"] > 0 else 0.0
        rows.append([label, fmt_mib(r["master"])] + per + [fmt_mib(total),
                                                            "{:,.0f}".format(rate)])
    widths = [max(len(str(row[i])) for row in [head1] + rows) for i in range(len(head1))]

    def line(cells):
        out = [str(cells[0]).ljust(widths[0])]
        out += [str(c).rjust(widths[i + 1]) for i, c in enumerate(cells[1:])]
        return "  ".join(out)

    print("PSS in MiB after each worker read every value once (master: the process "
          "that built the store):")
    print(line(head1))
    print(line(["-" * x for x in widths]))
    for row in rows:
        print(line(row))
    base = [b for r in results.values() for b in r["base"]]
    if base:
        print("(per-process baseline, PSS of a worker before it reads anything: "
              "%s-%s MiB)" % (fmt_mib(min(base)), fmt_mib(max(base))))
    print()
    print("where the data lives:")
    c = results.get("cachee")
    if c:
        used, total = c["shm"]
        print("  cachee: one copy in %s, a %s MiB region on tmpfs (%s MiB holds records), "
              "mapped by every process; filled in %.2f s" % (
                  path, fmt_mib(c["region_size"]), fmt_mib(c["used_bytes"]), c["fill_s"]))
        print("          %s: %s MiB used of %s MiB while the demo ran" % (
            os.path.dirname(path), fmt_mib(used), fmt_mib(total)))
    print("  dict, master + fork: in the master's heap; workers share its pages "
          "copy-on-write until they write to them (reference counts do)")
    print("  dict, per worker: a private copy in each worker's heap")


def main(argv=None):
    args = parse_args(argv)
    path = args.path or "/dev/shm/cachee-demo-%d" % os.getpid()
    if "/" not in path:
        path = "/dev/shm/" + path
    if os.path.lexists(path):
        sys.exit("cachee.demo: %s exists; the demo removes its region at the end, so "
                 "it will not use an existing one (pick another --path)" % path)
    import cachee  # noqa: F401  (fail early if the extension is missing)

    children = []
    results = {}

    def on_term(signum, frame):
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, on_term)
    code = 0
    try:
        for kind, label in KINDS:
            print("running: %s ..." % label, file=sys.stderr, flush=True)
            results[kind] = run_kind(kind, args, path, children)
            if kind == "cachee":
                _unlink(path)
        print_report(args, results, path)
    except KeyboardInterrupt:
        print("\ncachee.demo: interrupted", file=sys.stderr)
        code = 130
    except (DemoError, EOFError, TimeoutError) as e:
        print("cachee.demo: %s" % e, file=sys.stderr)
        code = 1
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        _unlink(path)
        signal.signal(signal.SIGTERM, old_term)
    return code


def _unlink(path):
    import cachee
    try:
        cachee.unlink(path)
    except cachee.RegionNotFoundError:
        pass
    except cachee.CacheError as e:
        print("cachee.demo: could not remove %s: %s" % (path, e), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
