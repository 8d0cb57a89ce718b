"""torch interop (skipped when torch is not installed): tensors built from
cachee arrays and views share the shared memory, and keep it alive."""
import gc
import warnings

import numpy as np
import pytest

import cachee_testutil as tu
from cachee import SharedCache

torch = pytest.importorskip("torch")


def test_from_numpy_shares_memory(cache, region_path):
    a = np.arange(64, dtype=np.float32).reshape(8, 8)
    cache.set_numpy("emb", a)
    arr = cache.get_numpy("emb", shape=(8, 8), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the given NumPy array is not writable"
        t = torch.from_numpy(arr)
    assert t.data_ptr() == arr.ctypes.data
    assert tu.in_region(region_path, t.data_ptr(), t.numel() * 4, writable=False)
    assert t.shape == (8, 8) and t.dtype == torch.float32
    assert torch.equal(t, torch.arange(64, dtype=torch.float32).reshape(8, 8))
    assert float((t @ t.T)[0, 0]) == float((a @ a.T)[0, 0])


def test_from_numpy_tensor_keeps_the_value(region_path):
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES, view_cache=0)
    c.set_numpy("k", np.full(100, 3, dtype=np.int64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        t = torch.from_numpy(c.get_numpy("k"))
    gc.collect()
    assert c.stats()["pins"] == 1  # the tensor holds the array, which holds the pin
    for i in range(20):
        c.set_numpy("k", np.full(100, i, dtype=np.int64))
    c.delete("k")
    assert torch.equal(t, torch.full((100,), 3, dtype=torch.int64))
    del t
    gc.collect()
    assert c.stats()["pins"] == 0
    c.close()


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int64", "int8",
                                   "uint8", "bool", "complex64"])
def test_from_dlpack_on_view(cache, region_path, dtype):
    a = (np.arange(24) % 7).astype(dtype).reshape(2, 3, 4)
    cache.set_numpy("a", a)
    v = cache.get_view("a")
    t = torch.from_dlpack(v)
    assert tuple(t.shape) == (2, 3, 4)
    assert t.device.type == "cpu"
    assert t.data_ptr() == np.frombuffer(v, dtype=np.uint8).ctypes.data
    assert tu.in_region(region_path, t.data_ptr(), a.nbytes, writable=False)
    np.testing.assert_array_equal(t.numpy(), a)
    # the tensor alone keeps the pinned value
    del v
    cache.set_numpy("a", np.zeros_like(a))
    cache.delete("a")
    gc.collect()
    np.testing.assert_array_equal(t.numpy(), a)


def test_from_dlpack_releases_the_pin(region_path):
    c = SharedCache(region_path, size_bytes=tu.REGION_BYTES, view_cache=0)
    c.set_numpy("a", np.ones(16, dtype=np.float32))
    t = torch.from_dlpack(c.get_view("a"))
    gc.collect()
    assert c.stats()["pins"] == 1
    del t
    gc.collect()
    assert c.stats()["pins"] == 0
    c.close()
