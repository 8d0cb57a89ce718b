"""plots.py merges the parts of a run and turns them into the README tables
(synthetic results; no timing).

    .venv/bin/python -m pytest -q bench/python
"""
import json

import plots


def _stat(x):
    return {"median": x, "min": x * 0.9, "max": x * 1.1, "q1": x, "q3": x, "n": 5}


PEERS = {
    "keys": 1000, "reps": 5, "batch": 256, "dists": {"zipf": "Zipf 0.99"},
    "missing": {"diskcache": "pip install diskcache"},
    "rows": [
        {"dist": "zipf", "dataset": "64B", "op": "get", "contender": "cachee",
         "mean_ns": _stat(200), "p50_ns": _stat(150), "p99_ns": _stat(400), "vs_cachee": _stat(1)},
        {"dist": "zipf", "dataset": "64B", "op": "get", "contender": "lmdb",
         "mean_ns": _stat(500), "p50_ns": _stat(450), "p99_ns": _stat(900), "vs_cachee": _stat(2.5)},
        {"dist": "zipf", "dataset": "emb128f32", "op": "batch", "contender": "cachee",
         "mean_ns": _stat(25600), "p50_ns": _stat(25600), "p99_ns": _stat(51200),
         "vs_cachee": _stat(1)},
    ],
    "goals": [{"dist": "zipf", "dataset": "64B", "op": "get", "peer": "lmdb", "kind": "faster",
               "bound": 2.0, "value": _stat(2.5), "met": True},
              {"dist": "zipf", "dataset": "64B", "op": "get", "peer": "diskcache",
               "kind": "faster", "bound": 2.0, "value": None, "met": None}],
}
MEMORY = {
    "data_bytes": 100 << 20, "workers": [1, 8], "runs": [
        {"kind": "cachee", "workers": 1, "total_pss": 150 << 20, "total_file_whole": 160 << 20,
         "file_bytes": 130 << 20, "reader_base": [30 << 20]},
        {"kind": "cachee", "workers": 8, "total_pss": 400 << 20, "total_file_whole": 410 << 20,
         "file_bytes": 130 << 20, "reader_base": [30 << 20] * 8},
        {"kind": "dict", "workers": 8, "total_pss": 1400 << 20, "total_file_whole": 1400 << 20,
         "file_bytes": 0, "reader_base": [30 << 20] * 8},
    ]}


def test_merge_and_markdown(tmp_path):
    (tmp_path / "peers.json").write_text(json.dumps(PEERS))
    (tmp_path / "memory.json").write_text(json.dumps(MEMORY))
    res = plots.merge(str(tmp_path))
    assert set(res) >= {"peers", "memory", "machine", "generated"}
    assert "scaling" not in res and "hitratio" not in res
    md = plots.markdown(res)
    # per-key time of a batch: 25600 ns / 256
    assert "| **cachee** | 200 |" in md and "| 100 |" in md
    assert "| lmdb | 500 (x2.5) |" in md
    assert "missing" in md and "diskcache" in md
    # memory: MiB, the file counted whole in parentheses, the goal bound
    assert "| cachee | 150 (160) | 400 (410) |" in md
    assert "| goal for cachee: 1.1 D + baseline | 140 | 350 |" in md


def test_ns_format():
    assert plots._ns(95) == "95"
    assert plots._ns(1500) == "1.5 us"
    assert plots._ns(150000) == "150 us"
    assert plots._ns(2.5e6) == "2.5 ms"
