"""Targets for spawn/forkserver children of test_tiers.py."""
import os

import cachee
from cachee import _cachee


def use_tiers(path):
    c = cachee.SharedCache.open(path, l1_bytes=1 << 20)
    out = {"hit": c.get("a").decode(), "miss": c.get("absent"),
           "state": _cachee._tiers_state(), "pid": os.getpid(),
           "tiers": [t["name"] for t in c.stats()["tiers"]]}
    c.close()
    return out
