"""Checks that the benchmark's helpers compute what they claim (no timing
assertions): key streams, statistics, smaps parsing, table formatting.

    .venv/bin/python -m pytest -q bench/python
"""
import os

import numpy as np
import pytest

import common


def test_uniform_stream_is_seeded_and_in_range():
    a = common.key_indices(1000, 50_000, "uniform", seed=3)
    b = common.key_indices(1000, 50_000, "uniform", seed=3)
    assert np.array_equal(a, b)
    assert a.min() >= 0 and a.max() < 1000
    counts = np.bincount(a, minlength=1000)
    # 50 expected per key; a uniform stream never leaves a key 4x over.
    assert counts.max() < 200 and counts.min() > 0


def test_zipf_stream_follows_its_distribution():
    n_keys, n, alpha = 1000, 400_000, 0.99
    s = common.key_indices(n_keys, n, "zipf", alpha=alpha, seed=5)
    assert s.min() >= 0 and s.max() < n_keys
    freq = np.sort(np.bincount(s, minlength=n_keys))[::-1] / n
    w = np.arange(1, n_keys + 1, dtype=float) ** -alpha
    w /= w.sum()
    # The most popular keys get the expected shares (within 5% relative).
    assert np.allclose(freq[:10], w[:10], rtol=0.05)
    # The hot 10% of the keys carry the expected share of the requests.
    assert abs(freq[:100].sum() - w[:100].sum()) < 0.01
    # Rank 1 is a random key, not key 0, and the ranking depends on the seed.
    top = np.argmax(np.bincount(s, minlength=n_keys))
    other = common.key_indices(n_keys, n, "zipf", alpha=alpha, seed=6)
    assert top != np.argmax(np.bincount(other, minlength=n_keys)) or top != 0


def test_zipf_alpha_changes_skew():
    lo = common.key_indices(10_000, 200_000, "zipf", alpha=0.8, seed=1)
    hi = common.key_indices(10_000, 200_000, "zipf", alpha=0.99, seed=1)
    share = lambda s: np.sort(np.bincount(s, minlength=10_000))[::-1][:100].sum() / len(s)
    assert share(hi) > share(lo) + 0.1


def test_bad_dist():
    with pytest.raises(ValueError):
        common.key_indices(10, 10, "pareto")


def test_summary_median_and_spread():
    s = common.summary([5, 1, 3, 2, 4])
    assert s["median"] == 3 and s["min"] == 1 and s["max"] == 5 and s["n"] == 5
    assert s["q1"] == 2 and s["q3"] == 4
    assert common.summary([7])["median"] == 7
    assert common.summary([1, 2, 3, 10])["median"] == 2.5
    with pytest.raises(ValueError):
        common.summary([])


def test_ratio_summary_pairs_repetitions():
    r = common.ratio_summary([2, 4, 9], [1, 2, 3])
    assert r["median"] == 2 and r["min"] == 2 and r["max"] == 3
    assert common.ratio_summary([1], [0]) is None


def test_percentile():
    xs = list(range(1, 101))
    assert common.percentile(xs, 50) == pytest.approx(50.5)
    assert common.percentile(xs, 99) == pytest.approx(99.01)


def test_chunks_drop_short_tail():
    assert common.chunks(list(range(7)), 3) == [(0, 1, 2), (3, 4, 5)]


def test_batch_latencies_shape_and_sign():
    batches = common.chunks(list(range(1600)), 16)
    out = common.batch_latencies(abs, batches)
    assert out.shape == (100,) and (out >= 0).all()
    out2 = common.batch_latencies(max, batches, batches)
    assert out2.shape == (100,) and (out2 >= 0).all()


SMAPS = """\
7f0000000000-7f0000200000 rw-s 00000000 00:1a 123   /dev/shm/cachee-x
Size:               2048 kB
Rss:                1024 kB
Pss:                 512 kB
Shared_Clean:          0 kB
VmFlags: rd wr sh mr mw me ms sd
7f0000200000-7f0000300000 r--s 00000000 00:1a 123   /dev/shm/cachee-x
Size:               1024 kB
Rss:                 100 kB
Pss:                  50 kB
VmFlags: rd sh mr mw me ms sd
7f1000000000-7f1000100000 rw-p 00000000 00:00 0 
Size:               1024 kB
Pss:                 300 kB
7f2000000000-7f2000100000 r-xp 00000000 08:01 77    /usr/lib/libc.so.6
Pss:                  20 kB
"""


def test_parse_smaps_sums_per_path():
    m = common.parse_smaps(SMAPS)
    assert m["/dev/shm/cachee-x"]["Pss"] == 562 * 1024
    assert m["/dev/shm/cachee-x"]["Rss"] == 1124 * 1024
    assert m[""]["Pss"] == 300 * 1024
    assert m["/usr/lib/libc.so.6"]["Pss"] == 20 * 1024


def test_parse_rollup():
    text = ("55d000000000-7ffd00000000 ---p 00000000 00:00 0    [rollup]\n"
            "Rss:               20480 kB\nPss:               10240 kB\n"
            "Pss_Anon:           4096 kB\n")
    assert common.parse_rollup_pss(text) == 10240 * 1024
    assert common.parse_rollup_pss("Rss: 1 kB\n") is None


def test_own_pss_is_plausible():
    pss = common.pss_bytes(os.getpid())
    assert 1 << 20 < pss < 1 << 34
    assert common.pss_bytes(2 ** 22 + 12345) == 0  # no such process


def test_table_aligns():
    t = common.table(["a", "bb"], [["x", 1], ["yyy", 22]])
    lines = t.splitlines()
    assert len(lines) == 4 and len({len(l) for l in lines}) == 1
