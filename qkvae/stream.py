"""The one pass of the model over a set of images, a chunk at a time.

    runner = ChunkRunner(model, metrics=True)          # encode, decode, PSNR and SSIM
    for rows in stream(runner, read_chunks(source, 64, size=96)):
        rows.names, rows.indices, rows.psnr, rows.skipped

Every feature that runs the model over a set goes through these three steps: ``read_chunk``
decodes the entries [start, stop) of a source and fits each to the model's square
(``qkvae.image.fit_rgb``), recording an entry that cannot be decoded as a ``Skipped`` (its
position, name and why) rather than raising; ``ChunkRunner`` encodes the chunk as one batch and,
as asked, decodes the ids and scores each reconstruction (PSNR and SSIM, computed here once);
``stream`` chains them over ``read_chunks`` (a source) or ``split`` (images already in memory).
``qkvae.pipeline.reconstruct_set`` is the pass gathered into one ``SetReconstruction``; the
tokenizer, ``analysis.evaluate`` (also on Ray Data: ``analysis.evaluate_ray``), the OOD
reference and the app's Dataset and Explore tabs use the pass directly.

Each chunk is one batch of the model, so the ids of an image depend only on the chunk it is in:
the same chunks give the same ids on one machine or spread over Ray workers.
"""

import contextvars
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import torch
from tqdm import tqdm

from qkvae.image import fit_rgb, to_tensor, to_uint8
from qkvae.metrics import psnr, ssim
from qkvae.model import QKVAE
from qkvae.sources import ImageSource, Skipped, read_entries

PRECISIONS = ("fp32", "bf16")
PROGRESS_FROM = 200  # a progress bar shows for sets of at least this many images


@dataclass(frozen=True)
class Chunk:
    """Inputs [start, stop) of a source; ``shard`` is the tokenizer's shard holding them (else 0)."""

    shard: int
    start: int
    stop: int


def spans(start: int, stop: int, size: int, shard: int = 0) -> Iterator[Chunk]:
    """[start, stop) cut into chunks of at most ``size`` inputs."""
    for a in range(start, stop, size):
        yield Chunk(shard, a, min(a + size, stop))


@dataclass(frozen=True)
class FittedImages:
    """Decoded images fit to the model's square, with the entries of their span that were skipped."""

    names: list[str]
    images: np.ndarray  # uint8 (n, size, size, 3)
    labels: list[int | None]
    skipped: list[Skipped]
    chunk: Chunk | None = None  # the inputs they come from, when read from a source

    def part(self, start: int, stop: int) -> "FittedImages":
        """Images [start, stop) of these, with no skipped entries (those stay with the whole)."""
        return FittedImages(self.names[start:stop], self.images[start:stop], self.labels[start:stop], [])


def read_chunk(source: ImageSource, chunk: Chunk, size: int, mode: str = "resize") -> FittedImages:
    """Decode the inputs of ``chunk`` and fit each to ``size`` x ``size`` with ``mode``; entries
    that cannot be decoded are listed in ``skipped``, not raised."""
    names, images, labels, skipped = [], [], [], []
    for item in read_entries(source, range(chunk.start, chunk.stop), skipped):
        names.append(item.name)
        images.append(fit_rgb(item.rgb, size, mode))
        labels.append(item.label)
    rgb = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return FittedImages(names, rgb, labels, skipped, chunk)


def read_chunks(source: ImageSource, chunk_size: int, size: int, mode: str = "resize",
                limit: int | None = None) -> Iterator[FittedImages]:
    """The source's first ``limit`` entries (all by default), a chunk of ``chunk_size`` at a time."""
    count = len(source) if limit is None else min(limit, len(source))
    return (read_chunk(source, c, size, mode) for c in spans(0, count, chunk_size))


def split(images: FittedImages, chunk_size: int) -> Iterator[FittedImages]:
    """Images in memory, a chunk of ``chunk_size`` at a time (their skipped entries with the first)."""
    n = len(images.names)
    for c in spans(0, n, chunk_size):
        part = images.part(c.start, c.stop)
        yield replace(part, skipped=images.skipped) if c.start == 0 else part
    if n == 0:
        yield images


@dataclass(frozen=True)
class ReconstructedImage:
    """One row of a scored ``SetReconstruction``."""

    name: str
    original: np.ndarray  # uint8 (96, 96, 3), the model input
    indices: np.ndarray  # int64 (num_tokens,)
    reconstruction: np.ndarray  # uint8 (96, 96, 3)
    psnr: float  # dB
    ssim: float


@dataclass(frozen=True)
class SetReconstruction:
    """The model's output for images, one row each: their ids and, as asked, reconstructions and
    scores. One chunk's rows, or a whole set's (``concat``)."""

    names: list[str]
    labels: list[int | None]
    originals: np.ndarray  # uint8 (N, 96, 96, 3), the model inputs
    indices: np.ndarray  # int64 (N, num_tokens)
    reconstructions: np.ndarray | None  # uint8 (N, 96, 96, 3); None when not decoded
    psnr: np.ndarray | None  # (N,) dB; None when not scored
    ssim: np.ndarray | None  # (N,)
    skipped: list[Skipped]
    chunk: Chunk | None = None

    def __len__(self) -> int:
        return len(self.names)

    def rows(self) -> Iterator[ReconstructedImage]:
        """Each image as a ``ReconstructedImage`` (the set must have been decoded and scored)."""
        for i, name in enumerate(self.names):
            yield ReconstructedImage(name, self.originals[i], self.indices[i], self.reconstructions[i],
                                     float(self.psnr[i]), float(self.ssim[i]))

    @staticmethod
    def concat(parts: list["SetReconstruction"]) -> "SetReconstruction":
        """The rows of ``parts`` (at least one), in order, as one set."""
        def join(field):
            values = [getattr(p, field) for p in parts]
            return None if values[0] is None else np.concatenate(values)

        return SetReconstruction([n for p in parts for n in p.names], [x for p in parts for x in p.labels],
                                 join("originals"), join("indices"), join("reconstructions"), join("psnr"),
                                 join("ssim"), [s for p in parts for s in p.skipped])


class ChunkRunner:
    """Runs ``model`` at ``precision`` on fitted chunks, one batch each: encodes; with ``decode``
    also decodes the ids; with ``metrics`` also scores each reconstruction (PSNR and SSIM of the
    8-bit images, ``qkvae.metrics``)."""

    def __init__(self, model: QKVAE, precision: str = "fp32", decode: bool = True, metrics: bool = True):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        self.model, self.precision, self.decode, self.metrics = model, precision, decode or metrics, metrics

    def __call__(self, fitted: FittedImages) -> SetReconstruction:
        rgb, x_hat = fitted.images, None
        if len(rgb):
            with torch.autocast(self.model.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                ids = self.model.encode(to_tensor(rgb).to(self.model.device))
                if self.decode:
                    x_hat = to_uint8(self.model.decode(ids))
            ids = ids.cpu().numpy()
        else:
            ids = np.zeros((0, self.model.config.num_tokens), np.int64)
            x_hat = np.zeros_like(rgb) if self.decode else None
        scores = None, None
        if self.metrics:
            pairs = list(zip(rgb, x_hat, strict=True))
            scores = np.array([psnr(a, b) for a, b in pairs]), np.array([ssim(a, b) for a, b in pairs])
        return SetReconstruction(fitted.names, fitted.labels, rgb, ids, x_hat, *scores, fitted.skipped, fitted.chunk)


def with_progress(chunks: Iterable, count: int, desc: str) -> Iterator:
    """``chunks`` (of ``FittedImages`` or ``SetReconstruction``) with a progress bar by entries,
    for ``count`` of ``PROGRESS_FROM`` or more."""
    with tqdm(total=count, desc=desc, unit="img", disable=count < PROGRESS_FROM) as bar:
        for c in chunks:
            yield c
            bar.update(len(c.names) + len(c.skipped))


def stream(runner: Callable[[FittedImages], SetReconstruction],
           chunks: Iterable[FittedImages]) -> Iterator[SetReconstruction]:
    """``runner`` over each chunk, in order."""
    return (runner(fitted) for fitted in chunks)


_END = object()
T = TypeVar("T")


def ahead(items: Iterable[T]) -> Iterator[T]:
    """``items`` in order, the next one made in a background thread while the caller works on
    this one: the model's pass (torch releases the GIL) and the caller's per-image work overlap
    instead of taking turns on the cores. The thread runs in a copy of the caller's context (so
    a Gradio progress bar still hears it); an exception reaches the caller at the item that
    raised it; closing the iterator waits for the item in flight."""
    iterator = iter(items)
    with ThreadPoolExecutor(1, thread_name_prefix="qkvae-ahead") as pool:
        pending = pool.submit(contextvars.copy_context().run, next, iterator, _END)
        while (item := pending.result()) is not _END:
            pending = pool.submit(contextvars.copy_context().run, next, iterator, _END)
            yield item
