"""Fixtures of the cachee Python test suite.

Every test that needs a region gets a unique name under /dev/shm starting
with ``cachee-pytest-<pid>-``; whatever the test left there (a region, a junk
file, a symlink, a directory) is removed after it.  Leftovers of crashed runs
(our prefix, dead pid) are removed when a session starts.
"""
import gc
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cachee  # noqa: E402
import cachee_testutil as tu  # noqa: E402


def pytest_sessionstart(session):
    tu.remove_leftovers()


@pytest.fixture
def region_path(request):
    """A unique region path, removed after the test."""
    p = tu.new_region_path(request.node.name)
    yield p
    gc.collect()
    tu.remove_path(p)


@pytest.fixture
def make_path(request):
    """A factory of unique paths, all removed after the test."""
    made = []

    def make(tag="x"):
        p = tu.new_region_path(request.node.name + "_" + tag)
        made.append(p)
        return p

    yield make
    gc.collect()
    for p in made:
        tu.remove_path(p)


@pytest.fixture
def cache(region_path):
    """A fresh 16 MiB region; closed (and unlinked) after the test."""
    c = cachee.SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    yield c
    c.close()
