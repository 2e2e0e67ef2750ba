"""The Ray Data engine of ``python -m qkvae.tokenize --engine ray [--ray-address ADDR]``.

The job is the local engine's, spread over Ray workers:

1. the run's chunks (inputs [start, stop) of one shard, at most one batch) become a dataset;
2. ``map_batches`` hands each chunk to ``RayTokenizer``, a callable class that opens the source
   and loads the model once per worker (on a GPU through ``num_gpus`` with ``--device cuda``),
   then reads, fits and encodes the chunk: one output row per input, with its ids or the reason
   it was skipped;
3. this process takes the rows in input order (``preserve_order``) and writes the shards with
   the local engine's writer (``ShardAssembler``).

Writing here rather than with ``Dataset.write_parquet`` is what keeps the output identical to
the local engine's, byte for byte: shard k holds exactly inputs [k*S, (k+1)*S), carries the
run's metadata, is renamed into place only when complete and is recorded in the manifest, so a
killed run resumes by shard. Each chunk is encoded as one batch, as locally, so the ids are the
same too. The source's path must be readable from every worker (on a cluster: a shared disk).

Without ``--ray-address`` a local Ray starts with a bounded object store and no dashboard; with
one, the run joins that cluster (``ray start --head`` on one machine, ``ray start --address``
on the others).
"""

import contextlib
import os
import re
from pathlib import Path

import numpy as np
import ray
import torch
from tqdm import tqdm

from qkvae.shards import METRIC_COLUMNS
from qkvae.sources import Skipped
from qkvae.stream import Chunk, read_chunk
from qkvae.tokenize_engine import (ChunkTokenizer, EngineError, OodScorerFactory, RunCounts, TokenizedChunk, chunks,
                                   reopen_source)
from qkvae.weights import load_qkvae

OBJECT_STORE_BYTES = 512 * 2**20  # a local Ray's object store: chunks of ids are small


class RayTokenizer:
    """One Ray worker: the source and the model, opened once; each call tokenizes one chunk."""

    def __init__(self, spec: str, split: str | None, names_sha256: str, weights: str | None, device: str | None,
                 precision: str, mode: str, with_metrics: bool, ood_scorer: OodScorerFactory | None,
                 weights_sha256: str, threads: int):
        torch.set_num_threads(threads)
        self.source = reopen_source(spec, split, names_sha256)
        model = load_qkvae(weights, device=device)
        scorer = ood_scorer(weights_sha256) if ood_scorer else None
        self.tokenizer = ChunkTokenizer(model, precision, with_metrics, scorer)
        self.mode = mode

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        (shard,), (start,), (stop,) = batch["shard"], batch["start"], batch["stop"]
        chunk = Chunk(int(shard), int(start), int(stop))
        t = self.tokenizer(read_chunk(self.source, chunk, self.tokenizer.model.config.image_size, self.mode))
        return rows_of(t)


def skip_columns(chunk: Chunk, names: list[str], skipped: list[Skipped]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A chunk's inputs as Ray row columns: which were read (``ok``), every input's name, and
    the reason of each skipped one (empty for the others)."""
    n = chunk.stop - chunk.start
    ok = np.ones(n, bool)
    ok[[s.index - chunk.start for s in skipped]] = False
    column, reasons = np.empty(n, object), np.full(n, "", object)
    column[ok] = names
    for s in skipped:
        column[s.index - chunk.start], reasons[s.index - chunk.start] = s.name, s.reason
    return ok, column, reasons


def skipped_of(rows: dict[str, np.ndarray], names: np.ndarray) -> tuple[np.ndarray, list[Skipped]]:
    """The inverse of ``skip_columns``: which rows were read, and the skipped ones' records."""
    ok = rows["reason"] == ""
    return ok, [Skipped(str(name), str(reason), int(i))
                for i, name, reason in zip(rows["index"][~ok], names[~ok], rows["reason"][~ok], strict=True)]


def rows_of(t: TokenizedChunk) -> dict[str, np.ndarray]:
    """A tokenized chunk as one row per input, in input order; skipped inputs have a reason."""
    ok, names, reasons = skip_columns(t.chunk, t.names, t.skipped)
    n = len(ok)
    tokens = np.zeros((n, t.tokens.shape[1]), np.uint16)
    tokens[ok] = t.tokens
    labels, has_label = np.zeros(n, np.int64), np.zeros(n, bool)  # a label may be None, or -1 as a value
    has_label[ok] = [x is not None for x in t.labels]
    labels[has_label] = [x for x in t.labels if x is not None]
    rows = {"shard": np.full(n, t.chunk.shard), "index": np.arange(t.chunk.start, t.chunk.stop),
            "image_id": names, "tokens": tokens, "label": labels, "has_label": has_label, "reason": reasons}
    for name, values in t.metrics.items():
        full = np.zeros(n, np.float32)
        full[ok] = values
        rows[name] = full
    return rows


def chunk_of(rows: dict[str, np.ndarray], chunk: Chunk) -> TokenizedChunk:
    """The inverse of ``rows_of``."""
    ok, skipped = skipped_of(rows, rows["image_id"])
    metrics = {k: v[ok] for k, v in rows.items() if k in METRIC_COLUMNS}
    labels = [int(x) if has else None for x, has in zip(rows["label"][ok], rows["has_label"][ok], strict=True)]
    return TokenizedChunk(chunk, [str(x) for x in rows["image_id"][ok]], rows["tokens"][ok], labels, metrics, skipped)


def start_ray(address: str | None) -> bool:
    """Connect to Ray; True when this call started it (and so should stop it)."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network calls
    if address:
        ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    else:
        ray.init(object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    return True


def root_error(text: str) -> str | None:
    """The line naming the first exception of a worker's traceback, as a Ray error's text carries it:
    a chained traceback lists the root cause first, and Ray Data chains its own exception (and a
    note on retries) after it."""
    root = re.split(r"^(?:The above exception was the direct cause|During handling of the above exception)",
                    text, maxsplit=1, flags=re.MULTILINE)[0]
    lines = [line.strip() for line in root.splitlines() if line.strip()]
    return lines[-1] if lines else None


@contextlib.contextmanager
def ray_session(address: str | None):
    """Ray for one job: started (``start_ray``) and, if this job started it, shut down after; a
    worker's failure, which arrives wrapped in Ray's traceback, becomes one ``EngineError`` line."""
    started = start_ray(address)
    try:
        yield
    except ray.exceptions.RayError as e:
        raise EngineError(f"the Ray job failed: {root_error(str(e)) or e.__class__.__name__}") from None
    finally:
        if started:
            ray.shutdown()


def absolute(path: str | None) -> str | None:
    """A local path made absolute, since workers may run elsewhere; anything else as it is."""
    return str(Path(path).resolve()) if path is not None and Path(path).exists() else path


def cpus_per_worker(workers: int) -> int:
    """The cluster's CPUs shared among ``workers`` (each one's torch threads), but no more than
    the largest node has."""
    nodes = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
    return max(1, min(int(sum(nodes)) // workers, int(max(nodes, default=1))))


def run_ray(run) -> RunCounts:
    """Tokenize ``run``'s pending chunks on Ray (see the module docstring); ``run`` is a
    ``qkvae.tokenize.Run``."""
    o = run.options
    todo = list(chunks(run.pending, o.batch_size))
    if not todo:
        return run.assembler.counts
    with ray_session(o.ray_address):
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        on_gpu = (o.device or "").startswith("cuda")
        workers = max(1, o.workers)
        threads = 1 if on_gpu else cpus_per_worker(workers)
        dataset = ray.data.from_items([{"shard": c.shard, "start": c.start, "stop": c.stop} for c in todo])
        tokenized = dataset.map_batches(
            RayTokenizer, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=threads,
            num_gpus=1 if on_gpu else 0,
            fn_constructor_args=(absolute(o.input), o.split, run.manifest.settings.source_names_sha256,
                                 absolute(o.weights), o.device,
                                 o.precision, o.mode, o.with_metrics, run.ood_scorer,
                                 run.manifest.settings.metadata["weights_sha256"], threads))
        blocks = tokenized.iter_batches(batch_size=None, batch_format="numpy")
        with tqdm(total=run.pending_inputs, desc="tokenizing (ray)", unit="img", smoothing=0.1) as bar:
            for chunk, rows in chunk_rows(blocks, todo):
                run.assembler.add(chunk_of(rows, chunk))
                bar.update(chunk.stop - chunk.start)
    return run.assembler.counts


def chunk_rows(blocks, todo: list[Chunk]):
    """Regroup the output rows (in input order, cut into blocks anyhow) into (chunk, its rows)."""
    pending = iter(todo)
    chunk, buffer = next(pending, None), None
    for rows in blocks:
        buffer = rows if buffer is None else {k: np.concatenate([buffer[k], rows[k]]) for k in rows}
        while chunk is not None and len(buffer["index"]) >= chunk.stop - chunk.start:
            n = chunk.stop - chunk.start
            if buffer["index"][0] != chunk.start:
                raise RuntimeError(f"Ray returned input {buffer['index'][0]} where {chunk.start} was due")
            yield chunk, {k: v[:n] for k, v in buffer.items()}
            buffer = {k: v[n:] for k, v in buffer.items()}
            chunk = next(pending, None)
