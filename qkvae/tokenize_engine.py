"""The work of a dataset tokenization, shared by its engines (local processes, Ray Data).

A run is cut into shards (inputs [k*S, (k+1)*S) of the sorted source) and each shard into
chunks of at most one batch. ``qkvae.stream.read_chunk`` decodes and fits one chunk,
``ChunkTokenizer`` encodes it (and, with metrics, decodes the ids to score the reconstruction), and
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

from qkvae.model import QKVAE
from qkvae.shards import Manifest, ShardRecord, ShardRows, keep_errors, record_errors, shard_index, write_shard
from qkvae.sources import ImageSource, Skipped, SourceError, open_source
from qkvae.stream import Chunk, ChunkRunner, FittedImages, spans

# weights SHA-256 -> ((rgb (B, 96, 96, 3), ids (B, 2304)) -> scores (B,)), or None when it has no
# score for those weights
OodScorerFactory = Callable[[str], Callable[[np.ndarray, np.ndarray], np.ndarray] | None]


class EngineError(RuntimeError):
    """An engine that cannot run here, or whose workers failed."""


def shard_ranges(count: int, shard_size: int) -> dict[int, tuple[int, int]]:
    """Shard k -> its inputs [k*S, min((k+1)*S, count))."""
    return {k: (a, min(a + shard_size, count)) for k, a in enumerate(range(0, count, shard_size))}


def chunks(ranges: dict[int, tuple[int, int]], batch_size: int) -> Iterator[Chunk]:
    for k, (start, stop) in sorted(ranges.items()):
        yield from spans(start, stop, batch_size, shard=k)


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
class TokenizedChunk:
    chunk: Chunk
    names: list[str]
    tokens: np.ndarray  # uint16 (n, num_tokens)
    labels: list[int | None]
    metrics: dict[str, np.ndarray]  # column -> float32 (n,)
    skipped: list[Skipped]


class ChunkTokenizer:
    """Encode fitted chunks with ``model`` at ``precision`` (``qkvae.stream.ChunkRunner``); with
    ``with_metrics``, also decode the ids and score each reconstruction (PSNR, SSIM, and
    ``ood_score`` when a scorer is given)."""

    def __init__(self, model: QKVAE, precision: str = "fp32", with_metrics: bool = False,
                 ood_score: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None):
        if model.config.codebook_size > 1 << 16:
            raise ValueError(f"a codebook of {model.config.codebook_size:,} codes does not fit in uint16 tokens")
        self.runner = ChunkRunner(model, precision, decode=with_metrics, metrics=with_metrics)
        self.model, self.with_metrics, self.ood_score = model, with_metrics, ood_score

    def __call__(self, fitted: FittedImages) -> TokenizedChunk:
        rows = self.runner(fitted)
        metrics = {}
        if self.with_metrics:
            metrics["psnr"], metrics["ssim"] = rows.psnr.astype(np.float32), rows.ssim.astype(np.float32)
            if self.ood_score is not None:
                scores = self.ood_score(rows.originals, rows.indices)
                metrics["ood_score"] = np.asarray(scores, np.float32).reshape(len(rows))
        return TokenizedChunk(rows.chunk, rows.names, rows.indices.astype(np.uint16), rows.labels, metrics,
                              rows.skipped)


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
