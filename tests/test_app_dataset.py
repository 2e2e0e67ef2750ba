"""The Dataset tab's pass over a whole split, from a Hub dataset in a fake offline cache: progress,
parity with a direct reconstruction, the grid's orders, the cache, bad entries and missing data."""

import io
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qkvae.pipeline import load_fitted, reconstruct_set
from qkvae.sources import Skipped, open_source
from qkvae_app import files, gpu
from qkvae.model import QKVAEConfig
from qkvae_app.dataset import DatasetPass, PassStatus, SplitMetrics
from qkvae_app.panels import dataset_html
from tests.helpers import image_parquet

SPEC = "hf://datasets/someone/stl10-mini"
N = 20
GRID = 4  # the app shows 16


@pytest.fixture
def split_images(fake_hub, rgb, monkeypatch, tmp_path, model):
    """N varied test images in a cached Hub dataset; the app's files in tmp."""
    monkeypatch.setattr(files, "OUT_DIR", tmp_path / "app-files")
    gpu.use_model(model)
    rng = np.random.default_rng(0)
    images = [np.clip(np.roll(rgb, 5 * i, axis=i % 2) + rng.integers(0, 40 * (i % 4) + 1, rgb.shape), 0, 255)
              .astype(np.uint8) for i in range(N)]
    data = image_parquet(images, labels=list(range(N)), paths=[f"img{i:03d}.png" for i in range(N)])
    fake_hub.add("someone/stl10-mini", {"data/test-00000-of-00001.parquet": data}, repo_type="dataset")
    yield images
    gpu._loaded.clear()


class Recorder:
    """The reconstruct function, recording the pass's status at every call."""

    def __init__(self):
        self.calls, self.statuses, self.job = [], [], None

    def __call__(self, fitted):
        self.calls.append(len(fitted.names))
        self.statuses.append(self.job.status())
        return gpu.reconstruct_images(fitted)


def _run(weights="sha-a", chunk=8) -> tuple[DatasetPass, Recorder]:
    recorder = Recorder()
    job = recorder.job = DatasetPass(SPEC, "test", weights, recorder, chunk=chunk, grid_size=GRID)
    job.start()
    job.start()  # once only
    assert job.wait(120).stage == "done", job.status()
    return job, recorder


def test_the_whole_split_is_measured_with_progress_and_matches_a_direct_pass(split_images, model):
    job, recorder = _run()
    assert recorder.calls == [GRID, 8, 8, 4]  # the grid first, then the chunks
    assert [(s.stage, s.done, s.total) for s in recorder.statuses[1:]] == [
        ("reconstructing", 0, N), ("reconstructing", 8, N), ("reconstructing", 16, N)]
    direct = reconstruct_set(model, load_fitted(open_source(SPEC, "test")))
    np.testing.assert_array_equal(job.metrics.psnr, direct.psnr)
    np.testing.assert_allclose(job.metrics.ssim, direct.ssim)
    assert job.metrics.names == direct.names == [f"img{i:03d}.png" for i in range(N)]
    assert job.metrics.code_counts.sum() == N * 2304
    np.testing.assert_array_equal(job.metrics.code_counts, np.bincount(direct.indices.ravel(), minlength=15360))
    assert job.status().done == job.status().total == N

    assert job.first.names == direct.names[:GRID] and job.grid("file order").names == direct.names[:GRID]
    worst = job.grid("worst first")  # the whole split's worst, not its first images' (issue 15)
    ranked = np.argsort(direct.psnr, kind="stable")[:GRID]
    assert worst.names == [direct.names[i] for i in ranked] and list(worst.psnr) == sorted(direct.psnr)[:GRID]
    np.testing.assert_array_equal(worst.reconstructions, direct.reconstructions[ranked])
    assert list(job.grid("best first").psnr) == sorted(direct.psnr, reverse=True)[:GRID]
    with pytest.raises(ValueError, match="order"):
        job.grid("random")
    codebook = job.metrics.codebook(QKVAEConfig())
    assert codebook.num_images == N and codebook.num_tokens == N * 2304


def test_the_metrics_are_cached_by_dataset_and_weights(split_images):
    first, _ = _run()
    again, recorder = _run()
    assert recorder.calls == [GRID]  # only the grid: the whole split came from the cache
    np.testing.assert_array_equal(again.metrics.psnr, first.metrics.psnr)
    assert again.cache_path == first.cache_path and first.cache_path.parent == files.folder("datasets")
    other, recorder = _run(weights="sha-b")
    assert other.cache_path != first.cache_path and len(recorder.calls) == 4


def test_a_corrupt_entry_is_skipped_and_named(fake_hub, split_images):
    table = pq.read_table(io.BytesIO(image_parquet(split_images[:3], paths=["a.png", "b.png", "c.png"])))
    rows = table.column("image").to_pylist()
    rows[1]["bytes"] = b"not a png"
    sink = io.BytesIO()
    pq.write_table(table.set_column(0, "image", pa.array(rows, table.schema.field("image").type)), sink)
    fake_hub.add("someone/broken", {"test.parquet": sink.getvalue()}, repo_type="dataset")
    job = DatasetPass("hf://datasets/someone/broken", "test", "sha", gpu.reconstruct_images, chunk=2)
    job.start()
    assert job.wait(60).stage == "done"
    assert job.metrics.names == ["a.png", "c.png"]
    assert [s.name for s in job.metrics.skipped] == ["b.png"] and "b.png" in job.metrics.skipped[0].reason


def test_the_grid_is_there_before_the_whole_split_is_measured(split_images):
    class Paused:
        """Reconstructs the grid's images, then holds the pass until released."""

        def __init__(self):
            self.release, self.calls = threading.Event(), 0

        def __call__(self, fitted):
            self.calls += 1
            if self.calls > 1:
                self.release.wait(60)
            return gpu.reconstruct_images(fitted)

    paused = Paused()
    job = DatasetPass(SPEC, "test", "sha-paused", paused, chunk=8, grid_size=GRID)
    assert job.grid("file order") is None
    job.start()
    deadline = time.monotonic() + 60
    while job.status().stage != "reconstructing" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.status().stage == "reconstructing" and job.metrics is None
    assert list(job.grid("worst first").psnr) == sorted(job.first.psnr)
    paused.release.set()
    assert job.wait(120).stage == "done"


def test_missing_data_fails_with_how_to_fix_it(fake_hub, monkeypatch, tmp_path):
    monkeypatch.setattr(files, "OUT_DIR", tmp_path)
    job = DatasetPass("hf://datasets/someone/absent", "test", "sha", gpu.reconstruct_images)
    job.start()
    status = job.wait(60)
    assert status.stage == "failed" and job.first is None and job.grid("worst first") is None
    assert "hf download someone/absent --repo-type dataset" in status.message and "HF_HUB_OFFLINE=1" in status.message
    assert status.message.startswith("No dataset: hf://datasets/someone/absent") and "QKVAE_DATA" in status.message


def test_metrics_file_round_trip(tmp_path):
    metrics = SplitMetrics(["a", "b"], np.array([30.0, 31.5]), np.array([0.9, 0.95]), np.arange(4.0),
                           np.array([[1, 3], [2, 4]]), [Skipped("c", "broken")])
    metrics.save(tmp_path / "m.npz")
    loaded = SplitMetrics.load(tmp_path / "m.npz")
    assert loaded.names == ["a", "b"] and loaded.skipped == [Skipped("c", "broken")]
    for name in ("psnr", "ssim", "code_counts", "usage_curve"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(metrics, name))


def test_the_summary_says_progress_failure_or_figures():
    running = dataset_html("hf://datasets/a/b", PassStatus("reconstructing", 512, 8000, "reconstructing hf://datasets/a/b"))
    assert '<progress value="512" max="8000">' in running and "512 of 8,000 images" in running
    failed = dataset_html("x", PassStatus("failed", message="No dataset: <offline>. Set `QKVAE_DATA` ..."))
    assert "no dataset" in failed and "&lt;offline&gt;" in failed  # escaped
    metrics = SplitMetrics(["a", "b"], np.array([30.0, 32.0]), np.array([0.9, 0.92]), np.ones(15360),
                           np.array([[1, 15360], [2, 15360]]), [Skipped("c", "broken")])
    done = dataset_html("hf://datasets/a/b", PassStatus("done", 3, 3), metrics, metrics.codebook(QKVAEConfig()))
    assert "<b>2</b> images from <code>hf://datasets/a/b</code> (1 unreadable, skipped)" in done
    assert "PSNR mean 31.00 dB, min 30.00, max 32.00; SSIM mean 0.9100" in done and "15,360 of 15,360 codes" in done
