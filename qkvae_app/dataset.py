"""The Dataset tab's computation: one pass over a whole split, in the background, with progress, cached.

    job = DatasetPass("hf://datasets/tanganke/stl10@49ae7f9...", "test", weights_sha256, reconstruct)
    job.start()              # at most one thread per pass; returns at once
    job.status()             # PassStatus: stage, images done of total, message
    job.grid("worst first")  # 16 images and their reconstructions: the set's worst once it is measured
    job.metrics              # SplitMetrics over the whole split, once it is done

The source is anything ``qkvae.sources.open_source`` opens: a Hub dataset (downloaded first, into
the Hub cache), an image folder, an STL-10 ``*_X.bin`` or ``stl10_binary/`` folder, Parquet
files. Its first ``GRID_SIZE`` images are reconstructed at once for the grid, then the whole
split, read in chunks of ``CHUNK`` images by ``qkvae.stream.read_chunks``, through
``reconstruct``. The pass runs in a thread, outside
any visitor's request, so on a ZeroGPU Space ``reconstruct`` runs on the CPU
(``qkvae_app.gpu.background_reconstruct``): a GPU call there would spend the Space's own quota.
The metrics (per-image PSNR and SSIM, code counts) are saved under the app's ``datasets`` folder
(``qkvae_app.files``), keyed by the dataset reference (with its revision), the split and the
weights' SHA-256, so a restart reuses them. Once they exist, the grid shows the whole set's
worst (or best) images, reconstructed again on demand."""

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from analysis.codebook import CodebookStats, CodebookSummary
from qkvae.atomic import atomic_path
from qkvae.hub import is_hub_ref
from qkvae.model import QKVAEConfig
from qkvae.sources import ImageSource, Skipped, SourceError, open_source
from qkvae.stream import Chunk, FittedImages, SetReconstruction, read_chunk, read_chunks
from qkvae_app import files

log = logging.getLogger(__name__)

GRID_SIZE = 16  # images in the Dataset tab's grid
CHUNK = 512  # images per call of the reconstruct function
ORDERS = ("file order", "worst first", "best first")


@dataclass(frozen=True)
class SplitMetrics:
    """Metrics of every image of a split (skipped entries excluded) and its codebook statistics."""

    names: list[str]
    psnr: np.ndarray  # (N,) dB
    ssim: np.ndarray  # (N,)
    code_counts: np.ndarray  # (codebook_size,) tokens per code id over the split
    usage_curve: np.ndarray  # (N, 2) images seen, distinct codes seen (CodebookStats.usage_curve)
    skipped: list[Skipped] = field(default_factory=list)

    def codebook(self, config: QKVAEConfig) -> CodebookSummary:
        """The codebook's usage over the split."""
        return CodebookStats.from_state(self.code_counts, self.usage_curve, config.levels, config.num_tokens).result()

    def save(self, path: Path) -> None:
        """Write as .npz, atomically (a reader never sees half a file)."""
        skipped = np.array([[s.name, s.reason] for s in self.skipped], dtype=str).reshape(-1, 2)
        with atomic_path(path) as staging, open(staging, "wb") as f:
            np.savez(f, names=np.array(self.names, dtype=str), psnr=self.psnr, ssim=self.ssim,
                     code_counts=self.code_counts, usage_curve=self.usage_curve, skipped=skipped)

    @classmethod
    def load(cls, path: Path) -> "SplitMetrics":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["names"].tolist(), z["psnr"], z["ssim"], z["code_counts"], z["usage_curve"],
                       [Skipped(name, reason) for name, reason in z["skipped"].tolist()])


@dataclass(frozen=True)
class PassStatus:
    stage: str  # "idle", "opening", "reconstructing", "done" or "failed"
    done: int = 0  # images reconstructed so far
    total: int = 0  # entries in the split (0 until it is open)
    message: str = ""  # what is happening, or what went wrong and how to fix it


def cache_key(spec: str, split: str | None, weights_sha256: str) -> str:
    return hashlib.sha256(f"{spec}\n{split}\n{weights_sha256}".encode()).hexdigest()[:24]


def has_splits(spec: str) -> bool:
    """Whether the source has splits to choose from (a Hub dataset or Parquet files; not a folder of images)."""
    return is_hub_ref(spec) or spec.endswith(".parquet") or any(Path(spec).glob("**/*.parquet"))


def missing_message(spec: str, split: str | None, reason: str) -> str:
    """What went wrong with the tab's dataset, and how to point the app at one."""
    return (f"No dataset: {reason.rstrip('.')}. Set `QKVAE_DATA` to a Hub dataset (`hf://datasets/OWNER/NAME[@revision]`, "
            f"split from `QKVAE_DATA_SPLIT`, now {split!r}), an image folder, an STL-10 `*_X.bin` or "
            "`stl10_binary/` folder, or Parquet files, then restart the app.")


def _pick(images: SetReconstruction, positions) -> SetReconstruction:
    positions = list(positions)
    return SetReconstruction([images.names[i] for i in positions], [images.labels[i] for i in positions],
                             images.originals[positions], images.indices[positions], images.reconstructions[positions],
                             images.psnr[positions], images.ssim[positions], images.skipped)


def _order(psnr: np.ndarray, order: str) -> np.ndarray:
    """Positions in ``order``: as given, lowest PSNR first, or highest first."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    if order == "file order":
        return np.arange(len(psnr))
    ranked = np.argsort(psnr, kind="stable")
    return ranked if order == "worst first" else ranked[::-1]


class DatasetPass:
    """One split's pass, run at most once per object in a daemon thread (see the module docstring)."""

    def __init__(self, spec: str, split: str | None, weights_sha256: str,
                 reconstruct: Callable[[FittedImages], SetReconstruction], config: QKVAEConfig = QKVAEConfig(),
                 chunk: int = CHUNK, grid_size: int = GRID_SIZE):
        self.spec, self.split, self.reconstruct, self.config = spec, split, reconstruct, config
        self.chunk, self.grid_size = chunk, grid_size
        self.description = spec  # then the source's own, which names the split where it has one
        self.cache_path = files.folder("datasets") / f"{cache_key(spec, split, weights_sha256)}.npz"
        self.source: ImageSource | None = None
        self.first: SetReconstruction | None = None  # the split's first grid_size images
        self.metrics: SplitMetrics | None = None
        self._ranked: dict[str, SetReconstruction] = {}  # order -> the whole set's first grid_size in it
        self._status = PassStatus("idle", message="not started")
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def status(self) -> PassStatus:
        return self._status

    def start(self) -> None:
        """Start the pass in the background, unless it has started already."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="qkvae-dataset-pass", daemon=True)
                self._thread.start()

    def wait(self, timeout: float | None = None) -> PassStatus:
        """Wait for the pass to end (for tests and scripts); returns its status."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._status

    def grid(self, order: str) -> SetReconstruction | None:
        """``grid_size`` images and their reconstructions in ``order`` (one of ``ORDERS``): the
        whole set's first in that order once it is measured, until then the set's first images
        in that order; None until those are done."""
        if self.metrics is None:
            return None if self.first is None else _pick(self.first, _order(self.first.psnr, order))
        if order not in self._ranked:
            position = {name: i for i, name in enumerate(self.source.names)}
            chosen = _order(self.metrics.psnr, order)[:self.grid_size]
            images = self.reconstruct(self._fitted([position[self.metrics.names[i]] for i in chosen]))
            # The figures the set was ranked by (a batch of other images may round a last digit otherwise).
            self._ranked[order] = replace(images, psnr=self.metrics.psnr[chosen], ssim=self.metrics.ssim[chosen])
        return self._ranked[order]

    def grid_note(self) -> str:
        """What the grid shows: the set's worst/best, or (while it is measured) its first images."""
        if self.metrics is None:
            return f"its first {self.grid_size} images until every image is measured"
        return f"the {self.grid_size} worst or best of all {len(self.metrics.names):,} images"

    def _fitted(self, positions: list[int]) -> FittedImages:
        """The source's entries at ``positions`` (in that order), fit to the model's square."""
        parts = [read_chunk(self.source, Chunk(0, p, p + 1), self.config.image_size) for p in positions]
        return FittedImages([n for f in parts for n in f.names], np.concatenate([f.images for f in parts]),
                            [label for f in parts for label in f.labels], [s for f in parts for s in f.skipped])

    def _run(self) -> None:
        try:
            fetching = "downloading (once, into the Hub cache) and opening" if is_hub_ref(self.spec) else "opening"
            split = f" (split {self.split})" if self.split and has_splits(self.spec) else ""
            self._status = PassStatus("opening", message=f"{fetching} {self.spec}{split}")
            self.source = open_source(self.spec, self.split)
            self.description, total = self.source.description, len(self.source)
            self.first = self.reconstruct(read_chunk(self.source, Chunk(0, 0, min(self.grid_size, total)),
                                                     self.config.image_size))
            self.metrics = self._cached(total) or self._measure(total)
            self._status = PassStatus("done", total, total, f"{self.description}: {total:,} images")
        except (SourceError, OSError) as e:
            self._status = PassStatus("failed", message=missing_message(self.spec, self.split, str(e)))
        except Exception as e:  # noqa: BLE001 — the thread must say why it stopped, not die silently
            log.exception("dataset pass over %s failed", self.description)
            self._status = PassStatus("failed", message=f"The dataset pass failed: {type(e).__name__}: {e}")

    def _cached(self, total: int) -> SplitMetrics | None:
        try:
            metrics = SplitMetrics.load(self.cache_path)
        except (OSError, ValueError, KeyError) as e:
            if self.cache_path.exists():
                log.warning("ignoring the unreadable cache %s (%s)", self.cache_path, e)
            return None
        if len(metrics.names) + len(metrics.skipped) != total:
            return None
        os.utime(self.cache_path)  # used: pruning keeps it
        return metrics

    def _measure(self, total: int) -> SplitMetrics:
        names, psnr, ssim, skipped = [], [], [], []
        stats = CodebookStats(self.config.levels, self.config.num_tokens)
        for fitted in read_chunks(self.source, self.chunk, self.config.image_size):
            self._status = PassStatus("reconstructing", fitted.chunk.start, total, f"reconstructing {self.description}")
            result = self.reconstruct(fitted)
            names += result.names
            psnr.append(result.psnr)
            ssim.append(result.ssim)
            skipped += result.skipped
            stats.update(result.indices)
        if not names:
            raise SourceError(f"none of the {total:,} entries of {self.description} could be decoded")
        metrics = SplitMetrics(names, np.concatenate(psnr), np.concatenate(ssim), stats.counts,
                               np.array(stats.usage_curve, dtype=np.int64).reshape(-1, 2), skipped)
        metrics.save(self.cache_path)
        return metrics
