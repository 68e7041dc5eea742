"""Starts a real gfnd (GFND_PATH) on an ipc:// socket in a temp dir."""
import os
import subprocess
import tempfile

import pytest


@pytest.fixture(scope="module")
def gfnd_url():
    path = os.environ.get("GFND_PATH")
    if not path:
        pytest.skip("GFND_PATH not set")
    with tempfile.TemporaryDirectory(prefix="gfnd-py-") as d:
        url = f"ipc://{d}/run/gfnd.sock"
        r, w = os.pipe()
        proc = subprocess.Popen(
            [path, "--listen", url, "--ready_fd", str(w), "--backends",
             "cpu", "--cpu_devices", "2", "--store_capacity", "128M",
             "--inline_max", "65536", "--log_level", "warn"],
            pass_fds=(w,))
        os.close(w)
        with os.fdopen(r) as f:
            assert f.readline() == "ready\n", "gfnd did not start"
        yield url
        proc.terminate()
        assert proc.wait(timeout=30) == 0
