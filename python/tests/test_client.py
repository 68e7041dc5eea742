"""The Python client against a real gfnd."""
import threading

import numpy as np
import pytest

import gfn_client


@pytest.fixture()
def client(gfnd_url):
    with gfn_client.Client(gfnd_url) as c:
        yield c


def test_hello_and_lists(client):
    h = client.hello()
    assert h["server"] == "gfnd" and h["protocol"] == 1
    assert len(client.devices()) == 2
    names = {f["name"] for f in client.functions()}
    assert {"gfn.vadd", "gfn.saxpy", "gfn.sum"} <= names


def test_put_get_roundtrip(client):
    for dt in (np.float32, np.float64, np.int32, np.int64, np.uint8):
        a = (np.arange(24) % 7).astype(dt).reshape(2, 3, 4)
        o = client.put(a)
        b = client.get(o)
        assert b.dtype == a.dtype and b.shape == a.shape
        np.testing.assert_array_equal(a, b)
        assert not b.flags.writeable
        client.release(o)


def test_call_builtins(client):
    x = np.linspace(-3, 3, 1001, dtype=np.float32)
    y = np.full_like(x, 0.25)
    (out,) = client.call("gfn.saxpy", x, y, params=[2.0])
    np.testing.assert_allclose(out, 2 * x + y, rtol=1e-6)
    (r,) = client.call("gfn.relu", x)
    np.testing.assert_array_equal(r, np.maximum(x, 0))
    (s,) = client.call("gfn.sum", y)
    assert s.shape == (1,) and abs(s[0] - 0.25 * x.size) < 1e-3


def test_large_input_through_store(client):
    # Above inline_max (64 KiB here): written into the shared store.
    x = np.random.default_rng(1).standard_normal(100_000).astype(np.float32)
    (r,) = client.call("gfn.relu", x)
    np.testing.assert_array_equal(r, np.maximum(x, 0))
    assert client.stats()["input_copies"] == 0


def _in_memfd_mapping(addr):
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= addr < hi:
                return "/memfd:" in line and " rw-s " in line
    return False


def test_large_output_by_reference(client):
    # Above inline_max: the output is this process's (the invocation ran
    # as its tenant), so get() maps it from the store instead of copying.
    x = np.random.default_rng(2).standard_normal(100_000).astype(np.float32)
    o = client.put(x)
    fut = client.invoke("gfn.relu", [o])
    fut.wait()
    (out,) = fut.outputs()
    fut.release()
    r = client.get(out)
    client.release(out)  # the store reference keeps the bytes
    client.release(o)
    np.testing.assert_array_equal(r, np.maximum(x, 0))
    assert gfn_client.mapped(r) and not r.flags.writeable
    raw = r.base
    while not hasattr(raw, "_gfn_owner"):
        raw = raw.base
    # The array is the mapped store memory itself, not a copy of it.
    assert np.shares_memory(r, np.frombuffer(raw, dtype=np.uint8))
    assert _in_memfd_mapping(r.ctypes.data)
    assert client.stats()["input_copies"] == 0
    small = client.call("gfn.relu", np.ones(4, np.float32))[0]
    assert not gfn_client.mapped(small)


def test_arrays_outlive_close(gfnd_url):
    c = gfn_client.Client(gfnd_url)
    (r,) = c.call("gfn.relu", np.ones(100_000, np.float32))
    c.close()  # deferred: r still lies in the store mapping
    assert gfn_client.mapped(r) and r.sum() == 100_000
    del r


def test_errors(client):
    with pytest.raises(gfn_client.GfnError) as e:
        client.call("gfn.vadd", np.zeros(3, np.float32), np.zeros(4, np.float32))
    assert e.value.name == "GFN_ESHAPE" and e.value.detail
    with pytest.raises(gfn_client.GfnError) as e:
        client.call("no.such.function")
    assert e.value.name == "GFN_ENOENT"
    with pytest.raises(TypeError):
        client.put(np.zeros(2, dtype=np.complex64))


def test_threads_share_a_client(client):
    bad = []

    def work(k):
        for i in range(20):
            a = np.full(64, k, np.float32)
            b = np.full(64, i, np.float32)
            (c,) = client.call("gfn.vadd", a, b)
            if not np.array_equal(c, a + b):
                bad.append((k, i))

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not bad
    st = client.stats()
    assert st["held_futures"] == 0
