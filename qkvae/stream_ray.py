"""The pass of ``qkvae.stream`` on Ray Data: ``python -m analysis.evaluate --engine ray``.

The source's chunks (of one batch each) become a dataset of (start, stop) rows; ``map_batches``
hands each chunk to ``RayRunner``, a callable class that opens the source and loads the model
once per worker, then reads, fits, encodes, decodes and scores the chunk with the same
``read_chunk`` and ``ChunkRunner`` as the local pass: one output row per input. This process
takes the rows back in input order (``preserve_order``) and rebuilds each chunk's
``SetReconstruction``, so whatever runs after the pass sees exactly what the local pass gives,
to the bit (same chunks, same batches, same code).

Ray's start-up, the workers' model loading and cluster addresses are as for the tokenizer
(``qkvae.tokenize_ray``): without an address a local Ray starts; with one the run joins that
cluster, whose workers must all read the source and the weights at the same path.
"""

from collections.abc import Iterator

import numpy as np
import ray
import torch

from qkvae.sources import ImageSource
from qkvae.stream import Chunk, ChunkRunner, SetReconstruction, read_chunk, spans
from qkvae.tokenize_engine import names_sha256, reopen_source
from qkvae.tokenize_ray import absolute, chunk_rows, cpus_per_worker, skip_columns, ray_session, skipped_of
from qkvae.weights import load_qkvae


class RayRunner:
    """One Ray worker: the source and the model, opened once; each call runs one chunk."""

    def __init__(self, spec: str, split: str | None, names_sha256: str, weights: str | None, device: str | None,
                 mode: str, threads: int):
        torch.set_num_threads(threads)
        self.source = reopen_source(spec, split, names_sha256)
        self.runner = ChunkRunner(load_qkvae(weights, device=device))
        self.mode = mode

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        (start,), (stop,) = batch["start"], batch["stop"]
        size = self.runner.model.config.image_size
        return rows_of(self.runner(read_chunk(self.source, Chunk(0, int(start), int(stop)), size, self.mode)))


def rows_of(r: SetReconstruction) -> dict[str, np.ndarray]:
    """A chunk's result as one row per input, in input order; skipped inputs have a reason."""
    chunk = r.chunk
    ok, names, reasons = skip_columns(chunk, r.names, r.skipped)
    n = len(ok)
    rows = {"index": np.arange(chunk.start, chunk.stop), "name": names, "reason": reasons}
    for field in ("originals", "indices", "reconstructions", "psnr", "ssim"):
        values = getattr(r, field)
        full = np.zeros((n, *values.shape[1:]), values.dtype)
        full[ok] = values
        rows[field] = full
    return rows


def chunk_of(rows: dict[str, np.ndarray], chunk: Chunk) -> SetReconstruction:
    """The inverse of ``rows_of`` (labels are not carried: evaluation does not read them)."""
    ok, skipped = skipped_of(rows, rows["name"])
    names = [str(x) for x in rows["name"][ok]]
    return SetReconstruction(names, [None] * len(names), rows["originals"][ok], rows["indices"][ok],
                             rows["reconstructions"][ok], rows["psnr"][ok], rows["ssim"][ok], skipped, chunk)


def ray_stream(source: ImageSource, spec: str, split: str | None, weights: str | None, device: str | None,
               batch_size: int, mode: str = "resize", workers: int = 1,
               address: str | None = None) -> Iterator[SetReconstruction]:
    """The pass over ``source`` (opened from ``spec`` and ``split``, which every worker opens
    again) on Ray, a ``SetReconstruction`` per chunk of ``batch_size`` inputs, in order."""
    todo = list(spans(0, len(source), batch_size))
    with ray_session(address):
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        on_gpu = (device or "").startswith("cuda")
        threads = 1 if on_gpu else cpus_per_worker(max(1, workers))
        dataset = ray.data.from_items([{"start": c.start, "stop": c.stop} for c in todo])
        passed = dataset.map_batches(
            RayRunner, batch_size=1, compute=ray.data.ActorPoolStrategy(size=max(1, workers)), num_cpus=threads,
            num_gpus=1 if on_gpu else 0,
            fn_constructor_args=(absolute(spec), split, names_sha256(source.names), absolute(weights), device, mode,
                                 threads))
        for chunk, rows in chunk_rows(passed.iter_batches(batch_size=None, batch_format="numpy"), todo):
            yield chunk_of(rows, chunk)
