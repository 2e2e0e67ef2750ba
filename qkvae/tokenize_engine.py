"""The work of a dataset tokenization, shared by its engines (local processes, Ray Data).

A run is cut into shards (inputs [k*S, (k+1)*S) of the sorted source) and each shard into
chunks of at most one batch. ``fit_range`` decodes and fits one chunk, ``ChunkTokenizer``
encodes it (and, with metrics, decodes the ids to score the reconstruction), and
``ShardAssembler`` takes the tokenized chunks in input order and writes each shard when its last
chunk arrives. Because chunks never straddle a shard and each shard always starts at k*S, the
batches, and so the ids and the bytes of every shard, are the same in a resumed run.

The ``ood_score`` column belongs to ``analysis`` (its reference distribution and score), which
the core never imports: a layer above passes an ``OodScorerFactory`` in (``analysis.tokenize``).
"""

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from qkvae.image import ImageError, fit, open_rgb, to_tensor, to_uint8
from qkvae.metrics import psnr, ssim
from qkvae.model import QKVAE
from qkvae.shards import (Manifest, ShardRecord, ShardRows, SkippedInput, keep_errors, record_errors,
                          shard_index, write_shard)
from qkvae.sources import ImageSource, SourceError, open_source

PRECISIONS = ("fp32", "bf16")
# weights SHA-256 -> ((rgb (B, 96, 96, 3), ids (B, 2304)) -> scores (B,)), or None when it has no
# score for those weights
OodScorerFactory = Callable[[str], Callable[[np.ndarray, np.ndarray], np.ndarray] | None]


class EngineError(RuntimeError):
    """An engine that cannot run here, or whose workers failed."""


@dataclass(frozen=True)
class Chunk:
    """Inputs [start, stop) of the source, all inside shard ``shard``."""

    shard: int
    start: int
    stop: int


def shard_ranges(count: int, shard_size: int) -> dict[int, tuple[int, int]]:
    """Shard k -> its inputs [k*S, min((k+1)*S, count))."""
    return {k: (a, min(a + shard_size, count)) for k, a in enumerate(range(0, count, shard_size))}


def chunks(ranges: dict[int, tuple[int, int]], batch_size: int) -> Iterator[Chunk]:
    for k, (start, stop) in sorted(ranges.items()):
        for a in range(start, stop, batch_size):
            yield Chunk(k, a, min(a + batch_size, stop))


def names_sha256(names: list[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def reopen_source(spec: str, split: str | None, expected_names_sha256: str) -> ImageSource:
    """The run's source opened again in another process; raises ``SourceError`` if its entries
    changed meanwhile (the indices would no longer name the same inputs)."""
    source = open_source(spec, split=split)
    if names_sha256(source.names) != expected_names_sha256:
        raise SourceError(f"{spec} changed while the run was starting (its list of entries differs)")
    return source


@dataclass(frozen=True)
class FittedChunk:
    chunk: Chunk
    names: list[str]
    rgb: np.ndarray  # uint8 (n, size, size, 3)
    labels: list[int | None]
    skipped: list[SkippedInput]


def fit_range(source: ImageSource, chunk: Chunk, size: int, mode: str) -> FittedChunk:
    """Decode the inputs of ``chunk`` and fit each to ``size`` x ``size``, as
    ``qkvae.image.load_image`` does; entries that cannot be decoded are listed, not raised."""
    names, images, labels, skipped = [], [], [], []
    for i in range(chunk.start, chunk.stop):
        try:
            item = source[i]
        except ImageError as e:
            skipped.append(SkippedInput(i, source.names[i], str(e)))
            continue
        names.append(item.name)
        images.append(np.asarray(fit(open_rgb(item.rgb), size, mode)))
        labels.append(item.label)
    rgb = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return FittedChunk(chunk, names, rgb, labels, skipped)


@dataclass(frozen=True)
class TokenizedChunk:
    chunk: Chunk
    names: list[str]
    tokens: np.ndarray  # uint16 (n, num_tokens)
    labels: list[int | None]
    metrics: dict[str, np.ndarray]  # column -> float32 (n,)
    skipped: list[SkippedInput]


class ChunkTokenizer:
    """Encode fitted chunks with ``model`` at ``precision``; with ``with_metrics``, also decode the
    ids and score each reconstruction (PSNR, SSIM, and ``ood_score`` when a scorer is given)."""

    def __init__(self, model: QKVAE, precision: str = "fp32", with_metrics: bool = False,
                 ood_score: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        if model.config.codebook_size > 1 << 16:
            raise ValueError(f"a codebook of {model.config.codebook_size:,} codes does not fit in uint16 tokens")
        self.model, self.precision, self.with_metrics, self.ood_score = model, precision, with_metrics, ood_score

    def _autocast(self):
        return torch.autocast(self.model.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def __call__(self, fitted: FittedChunk) -> TokenizedChunk:
        num_tokens = self.model.config.num_tokens
        metrics = {}
        if len(fitted.rgb):
            with self._autocast():
                ids = self.model.encode(to_tensor(fitted.rgb).to(self.model.device))
                x_hat = to_uint8(self.model.decode(ids)) if self.with_metrics else None
            ids = ids.cpu().numpy()
        else:
            ids, x_hat = np.zeros((0, num_tokens), np.int64), np.zeros_like(fitted.rgb)
        if self.with_metrics:
            pairs = list(zip(fitted.rgb, x_hat, strict=True))
            metrics["psnr"] = np.array([psnr(a, b) for a, b in pairs], np.float32)
            metrics["ssim"] = np.array([ssim(a, b) for a, b in pairs], np.float32)
            if self.ood_score is not None:
                metrics["ood_score"] = np.asarray(self.ood_score(fitted.rgb, ids), np.float32).reshape(len(ids))
        return TokenizedChunk(fitted.chunk, fitted.names, ids.astype(np.uint16), fitted.labels, metrics,
                              fitted.skipped)


@dataclass
class RunCounts:
    """What this run did (not what earlier runs in the same folder did)."""

    images: int = 0
    skipped: int = 0
    shards: int = 0


class ShardAssembler:
    """Collects tokenized chunks, in input order, into shards; writes each shard (and its lines of
    ``errors.jsonl``, then the manifest) as soon as its last input is in."""

    def __init__(self, folder: Path, manifest: Manifest, ranges: dict[int, tuple[int, int]], arrow_schema,
                 with_label: bool):
        self.folder, self.manifest, self.ranges, self.schema = folder, manifest, ranges, arrow_schema
        self.with_label = with_label
        self.current: ShardRows | None = None
        self.counts = RunCounts()

    def add(self, t: TokenizedChunk) -> None:
        k = t.chunk.shard
        if self.current is None or self.current.index != k:
            if self.current is not None:
                raise RuntimeError(f"shard {self.current.index} is incomplete when shard {k} starts")
            self.current = ShardRows(k, *self.ranges[k])
        rows = self.current
        if t.chunk.start != rows.start + self._filled(rows):
            raise RuntimeError(f"chunk {t.chunk} arrived out of order")
        rows.image_ids += t.names
        rows.tokens.append(t.tokens)
        if self.with_label:
            rows.labels += t.labels
        for name, values in t.metrics.items():
            rows.metrics.setdefault(name, []).append(values)
        rows.skipped += t.skipped
        self.counts.images += len(t.names)
        self.counts.skipped += len(t.skipped)
        if self._filled(rows) == rows.stop - rows.start:
            self._finish(rows)

    @staticmethod
    def _filled(rows: ShardRows) -> int:
        return len(rows.image_ids) + len(rows.skipped)

    def _finish(self, rows: ShardRows) -> None:
        record = write_shard(self.folder, rows, self.schema)
        record_errors(self.folder, rows)
        self.manifest.shards.append(record)
        self.manifest.save(self.folder)
        self.counts.shards += 1
        self.current = None

    def close(self) -> list[ShardRecord]:
        """Check that every shard was written; put ``errors.jsonl`` in input order."""
        if self.current is not None:
            raise RuntimeError(f"shard {self.current.index} was left incomplete")
        keep_errors(self.folder, {shard_index(r.file) for r in self.manifest.shards})
        return self.manifest.shards
