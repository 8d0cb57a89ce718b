#!/usr/bin/env python3
"""torture.py -- kill campaign and soak of cachee, on the public Python API.

A supervisor process creates a region under /dev/shm and forks worker
processes that hammer it; it measures and checks, from the outside, the
properties the engine promises (include/cachee_l0.h, CRASH RECOVERY and PINS):

Kill campaign (phase "kill")
    W writer processes (set, set_numpy, overwrite, delete, TTL) over a key
    space several times larger than a deliberately small region, so that
    eviction runs all the time; values from 64 B to a few hundred KiB, some
    larger than a segment.  R reader processes (get, get_numpy, get_view,
    get_buffer, get_many, ``in``) that hold some views for random times and
    verify every value they read.  The supervisor SIGKILLs a random worker
    (sometimes two) after a random delay, restarts it, and after every kill
    checks that
      (a) no operation of any worker took more than the stall limit
          (--stall-seconds, 1 s; worst recorded per kill and overall;
          operations still running are watched too),
      (b) SharedCache.check() passes,
      (c) every value read verifies (torn/corrupt reads, stale reads, reads
          of a value past its expiry: all 0),
      (d) the pins of a dead reader are reclaimed: with every worker paused
          at an operation boundary, stats()['pinned_bytes'] and ['pins']
          equal exactly what the live readers say they hold, and
          ['live_processes'] counts exactly the live processes (polled for
          up to 1 s after the kill; the supervisor's waits scale with the
          stall limit).
    After --minutes the campaign goes on, choosing its victims among the
    kind not killed yet, until it has killed writers and readers and seen
    evictions, hits and held views (a slow machine may not have in time).
    Every 20 s (8 s in --short) a hoarding episode: the readers keep every
    view they get until writers see CacheFullError (they must fail fast,
    not stall), then the biggest hoarder is killed and writes must succeed
    again.  Some kills hit a worker while it starts up (fork hooks, slot
    adoption); half the workers use the handle inherited through fork, the
    others open the region by path.

Soak (phase "soak")
    One mixed worker per core (90% reads / 10% writes, large and small
    values, same verification) for a bounded time.  The supervisor samples
    every worker's memory (/proc/PID/status: VmRSS, RssAnon, RssShmem) and
    the region's usage (stats(): used, limbo, pinned bytes, entries) and
    checks that memory does not keep growing (second half's max within 10%
    -- or 4 MiB, whichever is larger -- of the first half's max) and that
    pins, pinned and limbo bytes are back to 0 once the workers let go.

Every value carries its own proof: a 64-byte header (magic, writer, key id,
sequence number, length, expiry, dtype, shape) and a 16-byte BLAKE2b digest
of header and payload.  Keys of writer w are "t<w>:<id>", and w's sequence
numbers only grow (persisted in shared memory across restarts), so a reader
that sees a key's sequence number go backwards has read a stale value.

This file parses the options and runs the phases; the modules beside it do
the rest: values.py (the value format), shared.py (the state supervisor and
workers share), worker.py (a worker process), supervisor.py (forks, watches,
kills and restarts workers), kill_campaign.py and soak.py (the two phases),
report.py (the tables), diagnostics.py (what a failure dumps).

Usage:
    torture.py [--short] [--minutes M] [--soak-seconds S] [--phase kill|soak|both]
               [--writers W] [--readers R] [--victims any|writers|readers]
               [--hoard-every S] [--seed N] [--stall-seconds S] [--json PATH] [-v]
               [--diag-pins]

Diagnostics for failures (they read the region layout of include/cachee_l0.h,
nothing else does): a pin mismatch dumps every process slot (pid, pins,
pinned bytes, pinned segments) beside what each worker says it holds; an
operation running over the stall limit dumps the worker's kernel wait channel, the lock
(futex word) it waits on, its owner, and a gdb backtrace when gdb is
installed; --diag-pins makes readers compare their own slot with what they
hold after every operation.

Figures are printed as a table and written as JSON (default
tests/torture/results/torture-<time>-<mode>.json).  Exit status 0 when every
must-be-0 figure is 0 and nothing else failed, 1 otherwise, 2 on usage or
setup errors.  Regions are named /dev/shm/cachee-torture-<pid>-..., unlinked
at the end (also on failure or Ctrl-C); leftovers of dead runs are removed.
"""
import argparse
import json
import os
import signal
import sys
import time

import numpy as np

import cachee
from kill_campaign import KILL_ZERO, kill_campaign
from report import print_kill, print_soak
from soak import SOAK_ZERO, soak
from supervisor import remove_leftovers

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true",
                    help="CI version: 25 s kill campaign, 10 s soak")
    ap.add_argument("--minutes", type=float, default=None,
                    help="kill campaign length (default 3; --short: 25 s)")
    ap.add_argument("--soak-seconds", type=float, default=None,
                    help="soak length (default 60; --short: 10)")
    ap.add_argument("--phase", choices=("kill", "soak", "both"), default="both")
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--readers", type=int, default=3)
    ap.add_argument("--soak-workers", type=int, default=0, help="default: one per core (at least 2)")
    ap.add_argument("--nkeys", type=int, default=600, help="keys per writer")
    ap.add_argument("--kill-region-mib", type=int, default=32)
    ap.add_argument("--soak-region-mib", type=int, default=32)
    ap.add_argument("--kill-min", type=float, default=0.05, help="shortest delay before a kill (s)")
    ap.add_argument("--kill-max", type=float, default=0.8, help="longest delay before a kill (s)")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--hoard-every", type=float, default=None,
                    help="seconds between pin-hoarding episodes (default 20; --short: 8; 0: none)")
    ap.add_argument("--victims", choices=("any", "writers", "readers"), default="any",
                    help="which workers random kills pick (hoarding episodes still kill "
                         "their biggest hoarder, a reader; --hoard-every 0 turns them off)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--stall-seconds", type=float, default=1.0,
                    help="an operation running longer is a stall (a failure); the "
                         "supervisor's own waits scale with it (default 1; a slow, "
                         "loaded machine needs more, e.g. the pytest run passes 10)")
    ap.add_argument("--diag-pins", action="store_true",
                    help="diagnostics: readers compare their slot's pins in the region with "
                         "what they hold after every operation (reads the documented layout)")
    ap.add_argument("--json", default=None, help="where to write the figures")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per kill")
    args = ap.parse_args(argv)
    if args.minutes is None:
        args.minutes = 25 / 60 if args.short else 3.0
    if args.soak_seconds is None:
        args.soak_seconds = 10.0 if args.short else 60.0
    if args.hoard_every is None:
        args.hoard_every = 8.0 if args.short else 20.0
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")
    if args.writers < 1 or args.readers < 1:
        ap.error("at least one writer and one reader")
    if args.stall_seconds <= 0:
        ap.error("--stall-seconds must be > 0")
    mode = "short" if args.short else "full"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = args.json or os.path.join(HERE, "results", "torture-%s-%s.json" % (stamp, mode))

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C interrupts us even when started from a shell that ignores it
    signal.signal(signal.SIGINT, signal.default_int_handler)
    remove_leftovers()
    result = {"mode": mode, "seed": args.seed, "started": stamp, "host_cpus": os.cpu_count(),
              "python": sys.version.split()[0], "numpy": np.__version__,
              "cachee": os.path.dirname(cachee.__file__),
              "argv": sys.argv[1:] if argv is None else list(argv)}
    print("torture: %s mode, seed %d, kill campaign %.1f s, soak %.0f s" % (
        mode, args.seed, args.minutes * 60 if args.phase != "soak" else 0,
        args.soak_seconds if args.phase != "kill" else 0), flush=True)
    failed = []
    try:
        if args.phase in ("kill", "both"):
            k = kill_campaign(args)
            result["kill"] = k
            print_kill(k)
            failed += ["kill." + n for n in KILL_ZERO if k[n]]
            if args.victims == "any" and (k["kills_writer"] == 0 or k["kills_reader"] == 0):
                failed.append("kill.no_kills_of_some_kind")
        if args.phase in ("soak", "both"):
            s = soak(args)
            result["soak"] = s
            print_soak(s)
            failed += ["soak." + n for n in SOAK_ZERO if s[n]]
    except KeyboardInterrupt:
        print("\ntorture: interrupted; workers killed, regions unlinked", file=sys.stderr)
        result["interrupted"] = True
        failed.append("interrupted")
    result["failed"] = failed
    result["ok"] = not failed
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print()
    print("torture: %s; figures in %s" % ("PASS" if not failed else "FAIL: " + ", ".join(failed),
                                         os.path.relpath(path)))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
