"""Shared pieces of the Python benchmarks: key streams, statistics, timing,
memory accounting (PSS) and the machine line.

Every contender of a benchmark reads the SAME key stream: an array of key
indices drawn once from a seeded generator (`key_indices`), turned into the
key form each contender takes natively (str or bytes) before timing starts,
so no contender pays for encoding keys.

Timing (see bench/README.md, "Method"):

- `loop_ns` times `collections.deque(map(fn, keys), maxlen=0)` and subtracts
  the fastest of three passes of the same loop over a builtin that does
  nothing (`id`), so the result is the cost of the call itself; this gives
  the mean and hence the throughput.
- `batch_latencies` gives the latency distribution (p50, p99): it times
  batches of B consecutive operations with `time.perf_counter_ns` and
  subtracts the median time of the same batch over `id`; a sample is the
  batch time / B.  For B = 1 this is per-operation timing minus the timer's
  own overhead; B = 16 is used for sub-microsecond operations, where the
  timer call (~50-80 ns) is as long as the operation, so the p99 of those is
  the p99 of 16-operation averages (tails are smoothed, medians are not).
"""
import collections
import os
import platform
import statistics
import time

import numpy as np


# ------------------------------------------------------------ key streams


def zipf_cdf(n_keys, alpha):
    """Cumulative weights of ranks 1..n_keys with weight 1/r^alpha (normalised)."""
    ranks = np.arange(1, n_keys + 1, dtype=np.float64)
    cdf = np.cumsum(ranks ** -float(alpha))
    cdf /= cdf[-1]
    return cdf


def key_indices(n_keys, n, dist="uniform", alpha=0.99, seed=1):
    """n key indices in [0, n_keys): uniform, or Zipf(alpha) by inverse CDF
    over a random ranking of the keys (rank 1 is a random key, not key 0).
    The same arguments give the same array on every run and machine."""
    rng = np.random.default_rng(seed)
    if dist == "uniform":
        return rng.integers(0, n_keys, n, dtype=np.int64)
    if dist != "zipf":
        raise ValueError("dist must be 'uniform' or 'zipf', not %r" % (dist,))
    order = rng.permutation(n_keys)
    ranks = np.searchsorted(zipf_cdf(n_keys, alpha), rng.random(n), side="right")
    return order[np.minimum(ranks, n_keys - 1)]


def key_name(i):
    """The key string of index i (16 bytes)."""
    return "key:%012d" % i


def key_names(n_keys):
    return [key_name(i) for i in range(n_keys)]


# ------------------------------------------------------------ statistics


def summary(xs):
    """Median and spread of repetitions: median, min, max, q1, q3, n."""
    xs = sorted(float(x) for x in xs)
    if not xs:
        raise ValueError("summary of no values")
    if len(xs) >= 2:
        q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    else:
        q1 = q3 = xs[0]
    return {"median": statistics.median(xs), "min": xs[0], "max": xs[-1],
            "q1": q1, "q3": q3, "n": len(xs)}


def percentile(samples, q):
    """The q-th percentile (0..100) of samples, by linear interpolation."""
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


def ratio_summary(a, b):
    """Median and spread of per-repetition ratios a[i] / b[i]: repetition i
    of both sides ran back to back, so the machine's drift cancels."""
    rs = [x / y for x, y in zip(a, b) if y > 0]
    return summary(rs) if rs else None


def fmt_ns(ns):
    """A duration in ns, human-sized: 95 ns, 1.24 us, 3.10 ms."""
    if ns < 1e3:
        return "%.0f ns" % ns
    if ns < 1e6:
        return "%.2f us" % (ns / 1e3)
    if ns < 1e9:
        return "%.2f ms" % (ns / 1e6)
    return "%.2f s" % (ns / 1e9)


def fmt_rate(per_s):
    if per_s >= 1e6:
        return "%.2f M/s" % (per_s / 1e6)
    if per_s >= 1e3:
        return "%.1f k/s" % (per_s / 1e3)
    return "%.0f /s" % per_s


# ------------------------------------------------------------ timing


def bare(stream):
    """Seconds of the measuring loop itself (map over id)."""
    t = time.perf_counter()
    collections.deque(map(id, stream), maxlen=0)
    return time.perf_counter() - t


def loop(fn, *streams):
    """Seconds of collections.deque(map(fn, *streams), maxlen=0)."""
    t = time.perf_counter()
    collections.deque(map(fn, *streams), maxlen=0)
    return time.perf_counter() - t


def loop_ns(fn, *streams):
    """Mean ns per call of fn over the streams, loop overhead subtracted
    (never below 0)."""
    n = len(streams[0])
    # The loop's own cost is a property of the interpreter: the fastest of
    # three passes estimates it (a pass slowed by another process would make
    # fn look faster than it is).
    if len(streams) == 1:
        base = min(bare(streams[0]) for _ in range(3))
    else:
        base = min(loop(_bare2, *streams) for _ in range(3))
    return max(loop(fn, *streams) - base, 0.0) / n * 1e9


def _bare2(a, b):
    """The do-nothing call of two-argument loops (baseline of sets)."""


def chunks(seq, size):
    """seq cut into consecutive tuples of `size` (the last may be shorter;
    dropped if so, so every batch has the same length)."""
    return [tuple(seq[i:i + size]) for i in range(0, len(seq) - size + 1, size)]


def batch_latencies(fn, batches, extra=None):
    """ns per operation of each batch: time each batch of calls with
    perf_counter_ns, subtract the median time of the same loop over a
    do-nothing builtin, divide by the batch length.  `extra` is a second
    argument stream cut the same way (values of a set)."""
    pc = time.perf_counter_ns
    dq = collections.deque
    B = len(batches[0])
    out = np.empty(len(batches), dtype=np.float64)
    if extra is None:
        base = np.empty(min(len(batches), 2000), dtype=np.float64)
        for j in range(len(base)):
            b = batches[j]
            t0 = pc()
            dq(map(id, b), 0)
            base[j] = pc() - t0
        for j, b in enumerate(batches):
            t0 = pc()
            dq(map(fn, b), 0)
            out[j] = pc() - t0
    else:
        base = np.empty(min(len(batches), 2000), dtype=np.float64)
        for j in range(len(base)):
            b, e = batches[j], extra[j]
            t0 = pc()
            dq(map(_bare2, b, e), 0)
            base[j] = pc() - t0
        for j, b in enumerate(batches):
            e = extra[j]
            t0 = pc()
            dq(map(fn, b, e), 0)
            out[j] = pc() - t0
    out -= float(np.median(base))
    np.maximum(out, 0.0, out=out)
    out /= B
    return out


# ------------------------------------------------------------ memory


def parse_rollup_pss(text):
    """Bytes of the Pss line of /proc/PID/smaps_rollup text (None if absent)."""
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return None


def parse_smaps(text):
    """{mapped path: {field: bytes}} summed over the mappings of
    /proc/PID/smaps text; anonymous mappings are under "".  Only the size
    fields ("Rss:", "Pss:", "Shared_Clean:" ..., in kB) are kept."""
    out = {}
    cur = None
    for line in text.splitlines():
        head = line.split(None, 5)
        if not head:
            continue
        if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            path = head[5].strip() if len(head) == 6 else ""
            cur = out.setdefault(path, {})
            continue
        if cur is None or not head[0].endswith(":"):
            continue
        if len(head) >= 3 and head[2] == "kB":
            field = head[0][:-1]
            cur[field] = cur.get(field, 0) + int(head[1]) * 1024
    return out


def pss_bytes(pid):
    """PSS of a process in bytes (0 if it cannot be read, e.g. it exited)."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            return parse_rollup_pss(f.read()) or 0
    except OSError:
        return 0


def mapped_pss(pid, path_prefix):
    """PSS bytes of the mappings of files whose path starts with path_prefix."""
    try:
        with open("/proc/%d/smaps" % pid) as f:
            maps = parse_smaps(f.read())
    except OSError:
        return 0
    return sum(v.get("Pss", 0) for p, v in maps.items() if p.startswith(path_prefix))


def allocated_bytes(path):
    """Bytes a file (or every file under a directory) occupies (st_blocks)."""
    if os.path.isdir(path):
        return sum(allocated_bytes(os.path.join(path, n)) for n in os.listdir(path))
    try:
        return os.stat(path).st_blocks * 512
    except OSError:
        return 0


# ------------------------------------------------------------ machine


def machine():
    """One line: CPU model, CPUs, kernel, Python, numpy."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs, Linux %s, Python %s, numpy %s" % (
        model, os.cpu_count(), platform.release(), platform.python_version(), np.__version__)


def table(head, rows, right=None):
    """Rows as an aligned text table (first column left, others right)."""
    rows = [[str(c) for c in r] for r in rows]
    w = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    out = []
    for r in [head] + rows:
        out.append("  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i])
                             for i, c in enumerate(map(str, r))))
        if r is head:
            out.append("  ".join("-" * x for x in w))
    return "\n".join(out)
