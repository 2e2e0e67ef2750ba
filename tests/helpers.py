"""Helpers shared by the test modules (fixtures live in conftest.py): images and Parquet files
to read, and starting a server to talk to. Test modules import these; none imports another."""

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def smooth_photos(folder, count: int, seed: int):
    """``count`` 160x128 PNGs of smooth random colour fields (bicubic blow-ups of 5x4 noise)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        small = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8))
        small.resize((160, 128), Image.Resampling.BICUBIC).save(folder / f"photo_{i:03d}.png")
    return folder


def image_parquet(images: list[np.ndarray], labels: list[int] | None = None, paths: list[str] | None = None) -> bytes:
    """A Parquet file in the Hugging Face ``datasets`` layout: an ``image`` struct of PNG bytes and
    path, and an int ``label`` column when labels are given."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pngs = []
    for rgb in images:
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="png")
        pngs.append(buffer.getvalue())
    columns = {"image": pa.array([{"bytes": data, "path": path} for data, path in
                                  zip(pngs, paths or [None] * len(pngs), strict=True)],
                                 pa.struct([("bytes", pa.binary()), ("path", pa.string())]))}
    if labels is not None:
        columns["label"] = pa.array(labels, pa.int64())
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def free_port() -> int:
    """A TCP port free on this machine now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 480) -> None:
    """Wait until ``url`` answers; fail with the server's log if it exits or stays silent ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited with status {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    pytest.fail(f"the app did not answer at {url} within {timeout} s:\n{log.read_text()}")


def two_folder_zip(path: Path, examples: Path) -> Path:
    """A zip of the example images in two folders by their kind: ``photos/`` and ``oods/``."""
    with zipfile.ZipFile(path, "w") as z:
        for example in sorted(examples.glob("*.png")):
            z.write(example, f"{example.stem.split('-')[0]}s/{example.name}")
    return path
REPO_ROOT = Path(__file__).resolve().parents[1]
STL10_SAMPLES = REPO_ROOT.parent / "shared" / "data" / "stl10-samples"  # 80 real STL-10 images (not committed)


@contextlib.contextmanager
def serving(weights_dir, log: Path, **settings):
    """The URL of ``python app.py`` serving ``weights_dir``, run in ``log``'s folder with its output
    in ``log``, with more settings (``GRADIO_MCP_SERVER="True"``) as environment variables."""
    port = free_port()
    env = {**os.environ, "QKVAE_WEIGHTS": str(weights_dir), "QKVAE_DATA": str(STL10_SAMPLES),
           "HF_HUB_OFFLINE": "1", "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", **settings}
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, str(REPO_ROOT / "app.py")], cwd=log.parent, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(url, process, log)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
