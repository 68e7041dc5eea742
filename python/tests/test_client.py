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
