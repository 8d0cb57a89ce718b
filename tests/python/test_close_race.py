"""close() in one thread while other threads are inside calls that release
the GIL (large writes, stats, check, batches, loader waits): the region
stays mapped until they are done, and they finish or raise ClosedError --
never a crash or a use-after-free (the ASan run of run.sh --sanitize checks
the latter)."""
import threading

import numpy as np
import pytest

import cachee
import cachee_testutil as tu


@pytest.mark.parametrize("round_", range(5))
def test_close_while_calls_release_the_gil(region_path, round_):
    c = cachee.SharedCache(region_path, size_bytes=tu.REGION_BYTES)
    big = bytes(256 << 10)
    for i in range(4):
        c.set_numpy("v%d" % i, np.full(64 << 10, i, dtype=np.float32))
    start = threading.Barrier(5)
    errors = []

    def loop(op):
        start.wait()
        try:
            for i in range(200):
                op(i)
        except cachee.ClosedError:
            pass
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    ops = [
        lambda i: c.set("big%d" % (i % 8), big),
        lambda i: c.stats(),
        lambda i: c.check(),
        lambda i: c.get_numpy_batch(["v0", "v1", "v2", "v3"]),
    ]
    ths = [threading.Thread(target=loop, args=(op,)) for op in ops]
    for t in ths:
        t.start()
    start.wait()
    c.close()
    for t in ths:
        t.join(300)
    assert errors == []
