"""The torture harness in --short mode (kill campaign ~25 s, soak ~10 s).

Runs tests/torture/torture.py in a subprocess (it forks and SIGKILLs its own
workers, which must not happen inside the pytest process) and asserts on the
figures it writes as JSON.  Run it with
    PYTHONPATH=python .venv/bin/python -m pytest tests/torture -q

Nothing here may fail because the machine is slow or loaded (make test runs
on shared 2-core CI machines): an operation is a stall only past
STALL_SECONDS (a hang, not a slow call: an idle machine's worst is ~0.1 s),
the harness goes on past its set length until it has done the work asserted
below, and its seed is fixed (it picks victims and delays; the timing of the
kills varies from run to run all the same).  Torn, stale or corrupt reads,
pin leaks, failed checks and hangs fail it as before.
"""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STALL_SECONDS = 10
SEED = 20250101


def _package_root():
    """The directory of the cachee package this interpreter imports (the
    in-place build, an installed copy, a sanitizer build), else python/."""
    try:
        import cachee
        return os.path.dirname(os.path.dirname(os.path.abspath(cachee.__file__)))
    except ImportError:
        return os.path.join(ROOT, "python")


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    out = tmp_path_factory.mktemp("torture") / "short.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [_package_root()] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    # timeout: a hang guard (a healthy run takes ~40 s idle, a few minutes
    # at worst on a loaded machine); the harness's workers die with it
    # (PR_SET_PDEATHSIG) and its region is removed by the next run
    proc = subprocess.run([sys.executable, os.path.join(HERE, "torture.py"), "--short",
                           "--seed", str(SEED), "--stall-seconds", str(STALL_SECONDS),
                           "--json", str(out)],
                          env=env, cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=900)
    print(proc.stdout)
    assert out.exists(), "torture.py wrote no figures (exit %d):\n%s" % (
        proc.returncode, proc.stdout[-4000:])
    with open(out) as f:
        data = json.load(f)
    data["_exit"] = proc.returncode
    data["_output"] = proc.stdout[-6000:]
    return data


KILL_ZERO = ("torn_or_corrupt_reads", "stale_reads", "reads_past_expiry", "worker_errors",
             "unexpected_worker_exits", "stalls_over_limit", "pin_accounting_mismatches",
             "check_failures", "writes_not_resumed")
SOAK_ZERO = ("torn_or_corrupt_reads", "stale_reads", "reads_past_expiry", "worker_errors",
             "unexpected_worker_exits", "stalls_over_limit", "memory_growth_violations",
             "end_state_failures")


@pytest.mark.parametrize("name", KILL_ZERO)
def test_kill_campaign_must_be_zero(figures, name):
    k = figures["kill"]
    assert k[name] == 0, "%s = %r\n%s" % (name, k[name], json.dumps(
        {"texts": k["failure_texts"], "pins": k["pin_mismatch_detail"][:3],
         "check": k["check_failure_detail"][:3], "unexpected": k["unexpected"]}, indent=1))


def test_kill_campaign_did_work(figures):
    k = figures["kill"]
    # the campaign runs on past its 25 s until it has done this work
    assert k["work_missing"] == [], k["work_missing"]
    assert k["kills_writer"] > 0 and k["kills_reader"] > 0, k
    assert k["ops"] > 0 and k["evictions"] > 0, k
    assert k["ops_detail"]["hits"] > 0 and k["ops_detail"]["views_held"] > 0, k
    assert k["stall_limit_ms"] == STALL_SECONDS * 1000, k["stall_limit_ms"]
    assert k["worst_stall_ms"] < k["stall_limit_ms"], k["worst_stall_ms"]


@pytest.mark.parametrize("name", SOAK_ZERO)
def test_soak_must_be_zero(figures, name):
    s = figures["soak"]
    assert s[name] == 0, "%s = %r\n%s" % (name, s[name], json.dumps(
        {"texts": s["failure_texts"], "growth": s["growth_detail"],
         "end": s["failure_detail"], "unexpected": s["unexpected"]}, indent=1))


def test_soak_end_state(figures):
    e = figures["soak"]["region_end"]
    assert (e["pins"], e["pinned_bytes"], e["limbo_bytes"], e["live_processes"]) == (0, 0, 0, 1), e


def test_harness_exit_status(figures):
    assert figures["_exit"] == 0 and figures["ok"], figures["_output"]
