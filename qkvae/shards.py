"""Token shards on disk: the Parquet schema and metadata, the atomic shard writer, the manifest,
``errors.jsonl`` and the check that decides what a resumed run may keep.

A run's folder holds ``shard-00000.parquet``, ... (zstd), ``manifest.json`` and ``errors.jsonl``.
Shard k holds the inputs [k*S, (k+1)*S) of the sorted source, one row per decodable input:

- ``image_id`` (string): the source's stable name for the input;
- ``tokens`` (fixed_size_list<uint16>[2304]): the ids, row-major over the 48x48 grid;
- ``label`` (int64), when the source has labels;
- ``psnr``, ``ssim``, ``ood_score`` (float32), when the run computed them.

Each file's key-value metadata (keys ``qkvae.*``) says how to read the ids without this repo:
the weights' SHA-256 and config, the FSQ levels, index order, grid and codebook size, the fit
mode, the precision and the tool's version. A shard is written to a temporary name and renamed;
it counts as done only once the manifest lists it with its SHA-256. pyarrow is imported inside
the functions that need it, so ``import qkvae`` stays light.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from qkvae.atomic import atomic_path, atomic_write
from qkvae.model import QKVAE
from qkvae.sources import Skipped
from qkvae.weights import file_sha256, weights_fingerprint

FORMAT = "qkvae-token-shards/1"
MANIFEST_NAME = "manifest.json"
ERRORS_NAME = "errors.jsonl"
SHARD_GLOB = "shard-*.parquet"
TMP_SUFFIX = ".tmp"
METADATA_PREFIX = "qkvae."
METRIC_COLUMNS = ("psnr", "ssim", "ood_score")
ROW_GROUP_SIZE = 1024
# Index order, written out so the ids can be used without this repo (see qkvae.fsq).
INDEX_ORDER = ("mixed radix over the FSQ levels, dimension 0 least significant: "
               "index = sum_d digit_d * prod(levels[:d]), digit_d in 0..levels[d]-1; "
               "tokens row-major over the grid (row r, column c at r * grid + c)")


class ShardError(ValueError):
    """An output folder that cannot hold, or continue, this run."""


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.parquet"


def shard_index(file: str) -> int:
    """``shard-00003.parquet`` -> 3."""
    return int(file.removeprefix("shard-").removesuffix(".parquet"))


def tool_version() -> str:
    """``qkvae-studio`` and its version: the installed package's, else this checkout's pyproject."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"qkvae-studio {version('qkvae-studio')}"
    except PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        return f"qkvae-studio {tomllib.loads(pyproject.read_text())['project']['version']}"


def shard_metadata(model: QKVAE, mode: str, precision: str) -> dict[str, str]:
    """The key-value metadata every shard of a run carries (without the ``qkvae.`` prefix)."""
    c = model.config
    return {
        "weights_sha256": weights_fingerprint(model)[1],
        "config": json.dumps(c.to_dict(), sort_keys=True),
        "levels": json.dumps(list(c.levels)),
        "index_order": INDEX_ORDER,
        "grid": json.dumps([c.grid_size, c.grid_size]),
        "codebook_size": str(c.codebook_size),
        "image_size": str(c.image_size),
        "mode": mode,
        "precision": precision,
        "version": tool_version(),
    }


def schema(metadata: dict[str, str], num_tokens: int, with_label: bool, metrics: tuple[str, ...] = ()):
    """The Arrow schema of a run's shards, with ``metadata`` under ``qkvae.`` keys."""
    import pyarrow as pa

    fields = [pa.field("image_id", pa.string(), nullable=False),
              pa.field("tokens", pa.list_(pa.field("item", pa.uint16(), nullable=False), num_tokens), nullable=False)]
    if with_label:
        fields.append(pa.field("label", pa.int64()))
    fields += [pa.field(name, pa.float32(), nullable=False) for name in metrics]
    return pa.schema(fields, metadata={METADATA_PREFIX + k: v for k, v in metadata.items()})


def read_metadata(path) -> dict[str, str]:
    """The ``qkvae.*`` key-value metadata of a shard, prefix removed."""
    import pyarrow.parquet as pq

    raw = pq.read_schema(path).metadata or {}
    return {k.decode()[len(METADATA_PREFIX):]: v.decode() for k, v in raw.items()
            if k.decode().startswith(METADATA_PREFIX)}


@dataclass
class ShardRows:
    """The rows of one shard, filled in input order."""

    index: int
    start: int  # first input of the shard
    stop: int  # one past its last input
    image_ids: list[str] = field(default_factory=list)
    tokens: list[np.ndarray] = field(default_factory=list)  # uint16 (n, num_tokens) per batch
    labels: list[int] = field(default_factory=list)
    metrics: dict[str, list[np.ndarray]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)  # each with its index


@dataclass(frozen=True)
class ShardRecord:
    """A finished shard, as the manifest lists it."""

    file: str
    inputs: tuple[int, int]  # [start, stop) of the sorted source
    rows: int
    skipped: int
    bytes: int
    sha256: str


def write_shard(folder: Path, rows: ShardRows, arrow_schema) -> ShardRecord:
    """Write ``rows`` as ``shard-KKKKK.parquet`` through a temporary name; returns its record."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    num_tokens = arrow_schema.field("tokens").type.list_size
    tokens = np.concatenate(rows.tokens) if rows.tokens else np.zeros((0, num_tokens), np.uint16)
    columns = {"image_id": pa.array(rows.image_ids, pa.string()),
               "tokens": pa.FixedSizeListArray.from_arrays(pa.array(tokens.ravel(), pa.uint16()), num_tokens)}
    if "label" in arrow_schema.names:
        columns["label"] = pa.array(rows.labels, pa.int64())
    for name in METRIC_COLUMNS:
        if name in arrow_schema.names:
            values = np.concatenate(rows.metrics[name]) if rows.metrics.get(name) else np.zeros(0)
            columns[name] = pa.array(values.astype(np.float32), pa.float32())
    table = pa.Table.from_pydict(columns, schema=arrow_schema)
    path = folder / shard_name(rows.index)
    with atomic_path(path) as staging:
        # Byte-stream split + zstd: 16-bit ids shrink to ~3.8 KB an image, below their raw 4.6 KB.
        pq.write_table(table, staging, compression="zstd", row_group_size=ROW_GROUP_SIZE, use_dictionary=["image_id"],
                       use_byte_stream_split=["tokens.list.element"], write_statistics=["image_id"])
    return ShardRecord(path.name, (rows.start, rows.stop), len(rows.image_ids), len(rows.skipped),
                       path.stat().st_size, file_sha256(path))


@dataclass(frozen=True)
class RunSettings:
    """What a run is: two runs may share a folder only when these are equal."""

    metadata: dict[str, str]  # the shards' key-value metadata
    columns: list[str]
    source: str
    source_entries: int
    source_names_sha256: str
    shard_size: int


@dataclass
class Manifest:
    settings: RunSettings
    limit: int | None
    shards: list[ShardRecord] = field(default_factory=list)

    def planned(self) -> int:
        """How many shards the whole run has."""
        return -(-self.inputs() // self.settings.shard_size)

    def inputs(self) -> int:
        entries = self.settings.source_entries
        return entries if self.limit is None else min(self.limit, entries)

    def to_json(self) -> str:
        s = self.settings
        done = sorted(self.shards, key=lambda r: r.inputs)
        rows, skipped = sum(r.rows for r in done), sum(r.skipped for r in done)
        size = sum(r.bytes for r in done)
        return json.dumps({
            "format": FORMAT,
            "metadata": s.metadata,
            "columns": s.columns,
            "source": {"spec": s.source, "entries": s.source_entries, "names_sha256": s.source_names_sha256},
            "shard_size": s.shard_size,
            "limit": self.limit,
            "complete": len(done) == self.planned(),
            "totals": {"inputs": sum(r.inputs[1] - r.inputs[0] for r in done), "images": rows,
                       "skipped": skipped, "shards": len(done), "bytes": size,
                       "bytes_per_image": round(size / rows, 1) if rows else None},
            "shards": [{**asdict(r), "inputs": list(r.inputs)} for r in done],
        }, indent=1) + "\n"

    def save(self, folder: Path) -> None:
        atomic_write(folder / MANIFEST_NAME, self.to_json())


def load_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_NAME
    try:
        d = json.loads(path.read_text())
        if d.get("format") != FORMAT:
            raise ShardError(f"{path} is not a token-shard manifest (format {d.get('format')!r})")
        settings = RunSettings(d["metadata"], d["columns"], d["source"]["spec"], d["source"]["entries"],
                               d["source"]["names_sha256"], d["shard_size"])
        shards = [ShardRecord(r["file"], tuple(r["inputs"]), r["rows"], r["skipped"], r["bytes"], r["sha256"])
                  for r in d["shards"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ShardError(f"{path} is unreadable ({e.__class__.__name__}: {e})") from None
    return Manifest(settings, d.get("limit"), shards)


def differences(old: RunSettings, new: RunSettings) -> list[str]:
    """The settings that differ, as ``name: old -> new`` (metadata keys by name)."""
    out = [f"{k}: {old.metadata.get(k)!r} -> {new.metadata.get(k)!r}"
           for k in sorted(set(old.metadata) | set(new.metadata))
           if k != "version" and old.metadata.get(k) != new.metadata.get(k)]
    for name in ("columns", "source_entries", "source_names_sha256", "shard_size"):
        if getattr(old, name) != getattr(new, name):
            out.append(f"{name}: {getattr(old, name)!r} -> {getattr(new, name)!r}")
    return out


def valid_shards(folder: Path, manifest: Manifest, ranges: dict[int, tuple[int, int]]) -> list[ShardRecord]:
    """The manifest's shards that a resumed run keeps: the planned input range, the file present
    with the recorded size and SHA-256."""
    keep = []
    for r in manifest.shards:
        k = shard_index(r.file)
        path = folder / r.file
        if (ranges.get(k) == r.inputs and path.is_file() and path.stat().st_size == r.bytes
                and file_sha256(path) == r.sha256):
            keep.append(r)
    return keep


def prepare_folder(folder: Path, settings: RunSettings, limit: int | None, resume: bool,
                   ranges: dict[int, tuple[int, int]]) -> Manifest:
    """Claim ``folder`` for a run, or take up the run it holds (``resume``); returns the manifest
    with the shards already done. Raises ``ShardError`` for a folder holding another run."""
    if folder.exists() and not folder.is_dir():
        raise ShardError(f"--out {folder} is a file, not a folder")
    manifest_path = folder / MANIFEST_NAME
    if manifest_path.is_file():
        old = load_manifest(folder)
        if not resume:
            raise ShardError(f"{folder} already holds a tokenization run ({len(old.shards)} shards); "
                             f"pass --resume to continue it, or choose another --out")
        if diff := differences(old.settings, settings):
            raise ShardError(f"cannot resume {folder}: it holds a run with other settings ({'; '.join(diff)})")
        done = valid_shards(folder, old, ranges)
    elif folder.is_dir() and any(folder.iterdir()):
        raise ShardError(f"{folder} is not empty and holds no {MANIFEST_NAME}; choose an empty or new folder")
    else:
        done = []
    folder.mkdir(parents=True, exist_ok=True)
    for tmp in folder.glob("*" + TMP_SUFFIX):
        tmp.unlink()
    kept = {r.file for r in done}
    for stale in folder.glob(SHARD_GLOB):
        if stale.name not in kept:
            stale.unlink()
    keep_errors(folder, {shard_index(r.file) for r in done})
    manifest = Manifest(settings, limit, done)
    manifest.save(folder)
    return manifest


def _error_lines(folder: Path) -> list[str]:
    path = folder / ERRORS_NAME
    return path.read_text().splitlines(keepends=True) if path.is_file() else []


def keep_errors(folder: Path, shards: set[int]) -> None:
    """Keep in ``errors.jsonl`` only the entries of ``shards`` (the others will be redone), in
    input order, so that a resumed run's file equals an uninterrupted run's."""
    entries = []
    for line in _error_lines(folder):
        try:
            entry = json.loads(line)
            if entry["shard"] in shards:
                entries.append((entry["index"], line))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill
    atomic_write(folder / ERRORS_NAME, "".join(line for _, line in sorted(entries)))


def record_errors(folder: Path, rows: ShardRows) -> None:
    """Append a shard's skipped inputs to ``errors.jsonl``: one JSON object a line (shard, index,
    name, reason), in input order."""
    if rows.skipped:
        with open(folder / ERRORS_NAME, "a") as f:
            f.writelines(json.dumps({"shard": rows.index, "index": s.index, **s.to_json()}) + "\n" for s in rows.skipped)
