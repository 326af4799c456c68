"""Suite-wide test settings: CPU only, deterministic, and light on the 2-core CI machine."""

import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402  (after the environment is set)

torch.set_num_threads(1)

import errno  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def make_demo_data_tool():
    """``tools/make_demo_data.py`` as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_demo_data", REPO / "tools" / "make_demo_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_demo_data", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def small_demo_data(tmp_path_factory, make_demo_data_tool) -> Path:
    """Every demo layout at 4 images per class, 64 px: shared read-only by the tests of one worker."""
    out = tmp_path_factory.mktemp("small_demo_data")
    make_demo_data_tool.make_demo_data(out, images_per_class=4, size=64)
    return out


_HOLD_LOCK = """
import sys, time
from core.lock import exclusive_output
with exclusive_output(sys.argv[1], sys.argv[2]):
    print("locked", flush=True)
    time.sleep(300)
"""


@pytest.fixture
def hold_output_lock():
    """``hold_output_lock(folder, what) -> Popen``: another process holding ``core.lock`` on ``folder``
    (killed at the end of the test)."""
    import subprocess

    processes = []

    def start(folder: Path, what: str) -> "subprocess.Popen":
        process = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(folder), what], stdout=subprocess.PIPE,
                                   text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
        processes.append(process)
        assert process.stdout.readline().strip() == "locked"
        return process

    yield start
    for process in processes:
        process.kill()
        process.wait()


class FullDiskFile:
    """A binary file object whose writes fail with ENOSPC once ``capacity`` bytes were written (a full disk)."""

    def __init__(self, handle, capacity: int = 0):
        self._handle, self._capacity = handle, capacity

    def write(self, data) -> int:
        if self._handle.tell() + len(data) > self._capacity:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._handle.write(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()


@pytest.fixture
def fill_disk(monkeypatch):
    """``fill_disk(capacity)``: from then on, files opened by ``core.atomic`` accept ``capacity`` bytes and then
    fail like a full disk."""
    real_fdopen = os.fdopen

    def fill(capacity: int = 0) -> None:
        monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullDiskFile(real_fdopen(fd, mode), capacity))

    return fill
