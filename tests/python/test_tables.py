"""The lists the repository keeps in several languages agree: error codes
(C header, strerror, Go sentinels, the extension's exception mapping),
exception classes (module, stubs, the extension's module state), compile
flags (Makefile, setup.py, cgo) and the engine's source list.  The checker
is tools/check_tables.py; `make lint` runs it too."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_tables_agree():
    checker = os.path.join(ROOT, "tools", "check_tables.py")
    if not os.path.exists(checker):  # an installed package without the source tree
        import pytest
        pytest.skip("tools/check_tables.py is not in this tree")
    r = subprocess.run([sys.executable, checker], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "agree" in r.stdout
