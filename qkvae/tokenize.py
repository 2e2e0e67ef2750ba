"""Tokenize a whole image dataset into Parquet shards of token ids, resumably, and export them
for language models.

    python -m qkvae.tokenize INPUT --out DIR [--mode resize] [--batch-size 64] [--device cpu]
        [--precision fp32|bf16] [--shard-size 10000] [--workers N] [--with-metrics]
        [--resume] [--limit N] [--engine local|ray] [--ray-address ADDR] [--weights W] [--split S]
    python -m qkvae.tokenize export DIR --base-vocab-size V --out train.bin

INPUT is anything ``qkvae.sources.open_source`` reads: an image folder, a .txt list, an STL-10
``*_X.bin``, an ``stl10_binary/`` folder, or Parquet files with an image column. DIR receives
``shard-00000.parquet``, ... (see ``qkvae.shards`` for the schema and metadata), ``manifest.json``
and ``errors.jsonl`` (inputs that could not be decoded, with the reason). A killed run continued
with ``--resume`` gives the same files, byte for byte, as an uninterrupted one. ``--with-metrics``
adds PSNR and SSIM columns; ``python -m analysis.tokenize`` is this CLI with the OOD score too.

The local engine decodes in ``--workers`` processes (0: in this process), a bounded number of
batches ahead, and encodes in this process; ``--engine ray`` runs the same job on Ray Data
(``qkvae.tokenize_ray``). Ends with one summary line; bad input exits 2 with one line on stderr.
"""

import argparse
import contextlib
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from qkvae.cli import common_options, positive, run_cli
from qkvae.image import RESIZE_MODES
from qkvae.lm_export import ExportError, export_lm
from qkvae.shards import (METRIC_COLUMNS, Manifest, RunSettings, ShardError, prepare_folder, schema,
                          shard_metadata)
from qkvae.sources import ImageSource, SourceError, open_source
from qkvae.stream import PRECISIONS, Chunk, read_chunk
from qkvae.tokenize_engine import (ChunkTokenizer, EngineError, OodScorerFactory, RunCounts, ShardAssembler, chunks,
                                   names_sha256, reopen_source, shard_ranges)
from qkvae.weights import default_device, load_qkvae

ENGINES = ("local", "ray")
SHARD_SIZE = 10_000  # ~38 MB shards
BATCH_SIZE = 64
PREFETCH_PER_WORKER = 2  # batches each decoding process may be ahead of the encoder
# A quarter of the cores, up to 8. On 2-3 cores none: a decoding process then only competes with
# the encoder's threads (2 cores: 256 photos in 18.9 s with one, 14.2 s without; bench/README.md).
DEFAULT_WORKERS = min(8, (os.cpu_count() or 1) // 4)
RAY_INSTALL = "pip install 'qkvae-studio[ray]'"


@dataclass(frozen=True)
class TokenizeOptions:
    input: str
    out: Path
    weights: str | None = None
    split: str | None = None
    mode: str = "resize"
    batch_size: int = BATCH_SIZE
    device: str | None = None
    precision: str = "fp32"
    shard_size: int = SHARD_SIZE
    workers: int = DEFAULT_WORKERS
    with_metrics: bool = False
    resume: bool = False
    limit: int | None = None
    engine: str = "local"
    ray_address: str | None = None


@dataclass(frozen=True)
class TokenizeSummary:
    out: Path
    images: int  # tokenized by this run
    skipped: int  # inputs of this run that could not be decoded
    shards: int  # written by this run
    shards_kept: int  # already done by an earlier run (--resume)
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        kept = f" (+{self.shards_kept} kept from the earlier run)" if self.shards_kept else ""
        return (f"tokenized {self.images:,} images, skipped {self.skipped:,}, {self.shards} shards{kept}, "
                f"{self.seconds:.1f} s, {self.images_per_s:.1f} images/s -> {self.out}")


@dataclass
class Run:
    """A run ready to go: its source, model, output folder and the shards still to write."""

    options: TokenizeOptions
    source: ImageSource
    tokenizer: ChunkTokenizer
    manifest: Manifest
    pending: dict[int, tuple[int, int]]  # shard -> inputs still to tokenize
    assembler: ShardAssembler
    ood_scorer: OodScorerFactory | None = None  # how the workers of other engines make the scorer
    pool: "multiprocessing.pool.Pool | None" = None  # the local engine's decoding processes

    @property
    def pending_inputs(self) -> int:
        return sum(b - a for a, b in self.pending.values())


def plan(o: TokenizeOptions, source: ImageSource, ood_scorer: OodScorerFactory | None = None) -> Run:
    """Load the model, claim (or take up) the output folder, list the shards still to write.
    With metrics, ``ood_scorer`` (from a higher layer) adds the ``ood_score`` column."""
    # The Ray engine's workers load their own model (on --device); here it only gives the metadata.
    model = load_qkvae(o.weights, device="cpu" if o.engine == "ray" else o.device or default_device())
    metadata = shard_metadata(model, o.mode, o.precision)
    scorer = ood_scorer(metadata["weights_sha256"]) if o.with_metrics and ood_scorer else None
    metrics = tuple(c for c in METRIC_COLUMNS if o.with_metrics and (c != "ood_score" or scorer))
    with_label = source.labels is not None
    arrow_schema = schema(metadata, model.config.num_tokens, with_label, metrics)
    settings = RunSettings(metadata, arrow_schema.names, source.description, len(source),
                           names_sha256(source.names), o.shard_size)
    count = len(source) if o.limit is None else min(o.limit, len(source))
    ranges = shard_ranges(count, o.shard_size)
    manifest = prepare_folder(Path(o.out), settings, o.limit, o.resume, ranges)
    if o.with_metrics and ood_scorer is None:
        print("note: psnr and ssim only; for ood_score too, run `python -m analysis.tokenize` "
              "(or `qkvae-tokenize`) with the same arguments", file=sys.stderr)
    done = {r.inputs for r in manifest.shards}
    pending = {k: r for k, r in ranges.items() if r not in done}
    return Run(o, source, ChunkTokenizer(model, o.precision, o.with_metrics, scorer), manifest, pending,
               ShardAssembler(Path(o.out), manifest, ranges, arrow_schema, with_label),
               ood_scorer if scorer else None)


_worker_source: ImageSource | SourceError | None = None


def _init_worker(spec: str, split: str | None, expected_names_sha256: str) -> None:
    global _worker_source
    try:
        _worker_source = reopen_source(spec, split, expected_names_sha256)
    except SourceError as e:  # raised from the first task: a failing initializer makes Pool respawn forever
        _worker_source = e


def _fit_in_worker(chunk: Chunk, size: int, mode: str):
    if isinstance(_worker_source, SourceError):
        raise _worker_source
    return read_chunk(_worker_source, chunk, size, mode)


def decoding_pool(o: TokenizeOptions, source: ImageSource):
    """The local engine's ``--workers`` decoding processes, each with ``source`` open again, or
    None. Started before the model loads, so that their start-up overlaps it."""
    if o.engine != "local" or o.workers == 0:
        return contextlib.nullcontext()
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch's threads
    return context.Pool(o.workers, _init_worker, (o.input, o.split, names_sha256(source.names)))


def fitted_chunks(run: Run) -> Iterator:
    """The pending chunks, decoded and fitted, in order: in this process, or in the pool's
    processes, which run at most ``PREFETCH_PER_WORKER`` batches each ahead of the caller."""
    o, size = run.options, run.tokenizer.model.config.image_size
    todo = chunks(run.pending, o.batch_size)
    if run.pool is None:
        yield from (read_chunk(run.source, c, size, o.mode) for c in todo)
        return
    ahead = deque()
    for c in todo:
        ahead.append(run.pool.apply_async(_fit_in_worker, (c, size, o.mode)))
        if len(ahead) >= o.workers * PREFETCH_PER_WORKER:
            yield ahead.popleft().get()
    while ahead:
        yield ahead.popleft().get()


def run_local(run: Run) -> RunCounts:
    with tqdm(total=run.pending_inputs, desc="tokenizing", unit="img", smoothing=0.1) as bar:
        for fitted in fitted_chunks(run):
            run.assembler.add(run.tokenizer(fitted))
            bar.update(fitted.chunk.stop - fitted.chunk.start)
    return run.assembler.counts


def engine(name: str):
    """The function that runs a planned ``Run`` with engine ``name``."""
    if name == "local":
        return run_local
    try:
        from qkvae.tokenize_ray import run_ray
    except ModuleNotFoundError as e:
        if e.name != "ray":
            raise
        raise EngineError(f"--engine ray needs Ray, which is not installed: {RAY_INSTALL}") from None
    return run_ray


def tokenize(o: TokenizeOptions, ood_scorer: OodScorerFactory | None = None) -> TokenizeSummary:
    """Run a tokenization with the chosen engine; returns what this run did. ``ood_scorer``
    gives the ``ood_score`` column with ``with_metrics`` (see ``analysis.tokenize``)."""
    started = time.perf_counter()
    run_with = engine(o.engine)
    source = open_source(o.input, split=o.split)
    with decoding_pool(o, source) as pool:
        run = plan(o, source, ood_scorer)
        run.pool = pool
        kept = len(run.manifest.shards)
        counts = run_with(run)
        run.assembler.close()
    return TokenizeSummary(Path(o.out), counts.images, counts.skipped, counts.shards, kept,
                           time.perf_counter() - started)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"cannot be negative, not {value}")
    return value


def setup_args(argv=None) -> TokenizeOptions:
    p = argparse.ArgumentParser(prog="python -m qkvae.tokenize", description=__doc__.split("\n")[0],
                                epilog="python -m qkvae.tokenize export --help: the LM export",
                                parents=[common_options(data=False, batch_size=BATCH_SIZE)])
    p.add_argument("input", metavar="INPUT", help="image folder, .txt list, STL-10 *_X.bin, or Parquet file(s)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the shards")
    p.add_argument("--mode", choices=RESIZE_MODES, default="resize", help="how images are fit to 96x96")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (exact, the default) or bf16 autocast (changes about 2.7%% of ids)")
    p.add_argument("--shard-size", type=positive, default=SHARD_SIZE, help="inputs per shard")
    p.add_argument("--workers", type=_count, default=DEFAULT_WORKERS,
                   help="decoding processes (0: decode in this process; default: a quarter of the cores, up to 8, "
                        f"here {DEFAULT_WORKERS}); with --engine ray, the number of Ray workers (at least 1)")
    p.add_argument("--with-metrics", action="store_true",
                   help="add psnr and ssim columns from a decode of the same ids (and ood_score with "
                        "python -m analysis.tokenize)")
    p.add_argument("--resume", action="store_true", help="continue the run in DIR, keeping its finished shards")
    p.add_argument("--limit", type=_count, help="tokenize only the first N inputs of the source")
    p.add_argument("--engine", choices=ENGINES, default="local")
    p.add_argument("--ray-address", help="join this Ray cluster (with --engine ray; default: a local Ray)")
    a = p.parse_args(argv)
    if a.ray_address and a.engine != "ray":
        p.error("--ray-address needs --engine ray")
    return TokenizeOptions(a.input, a.out, a.weights, a.split, a.mode, a.batch_size, a.device, a.precision,
                           a.shard_size, a.workers, a.with_metrics, a.resume, a.limit, a.engine, a.ray_address)


def setup_export_args(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m qkvae.tokenize export",
                                description="Write token shards as one flat binary of LM sequences (nanoGPT's "
                                            "train.bin), with a JSON sidecar of dtype, vocabulary and special ids.")
    p.add_argument("dir", metavar="DIR", type=Path, help="a folder of token shards")
    p.add_argument("--base-vocab-size", type=_count, required=True,
                   help="size of the text vocabulary the image ids are appended to (GPT-2: 50257)")
    p.add_argument("--out", type=Path, required=True, help="the .bin to write; the sidecar is OUT + .json")
    return p.parse_args(argv)


CLI_ERRORS = (ShardError, ExportError, EngineError)


def main(argv=None, ood_scorer: OodScorerFactory | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv[:1] == ["export"]:
            a = setup_export_args(argv[1:])
            return run_cli(lambda: print(export_lm(a.dir, a.base_vocab_size, a.out).line()), *CLI_ERRORS)
        options = setup_args(argv)
        return run_cli(lambda: print(tokenize(options, ood_scorer).line()), *CLI_ERRORS)
    except KeyboardInterrupt:
        print("interrupted: finished shards are kept; continue with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
