"""Token ids on disk and for language models: validation, .npy/.json files, token shards, LM sequences.

A token file holds the ids of one image (``config.num_tokens``: 2,304 for QKVAE-1m), row-major
over the square grid, as a ``.npy`` array (any integer dtype, flat or (grid, grid)) or a ``.json``
list (flat or nested). Every function takes the ``QKVAEConfig`` the ids belong to (default: QKVAE-1m's).
``load_tokens`` also reads one row of a token shard, written ``shard-00003.parquet:17``.
``read_shards`` reads a folder of shards (``python -m qkvae.tokenize``) back, whole or in batches.
"""

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qkvae.atomic import atomic_write
from qkvae.model import QKVAEConfig

SPECIAL_TOKENS = ("<img_start>", "<img_end>", "<img_newrow>")
TOKEN_SUFFIXES = (".npy", ".json")


class TokenError(ValueError):
    """Token ids that do not describe one image."""


def validate_indices(ids, config: QKVAEConfig = QKVAEConfig()) -> np.ndarray:
    """Check ids and return them as int64 (grid, grid); raises ``TokenError`` saying what is wrong."""
    a = np.asarray(ids)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise TokenError(f"token ids must be a flat or {config.grid_size}x{config.grid_size} array of integers, "
                         f"got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise TokenError("token ids must be whole numbers")
    if a.size != config.num_tokens:
        raise TokenError(f"expected {config.num_tokens} token ids ({config.grid_size}x{config.grid_size}), got {a.size}")
    a = a.astype(np.int64).reshape(config.grid_size, config.grid_size)
    bad = (a < 0) | (a >= config.codebook_size)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise TokenError(
            f"token ids must lie in 0..{config.codebook_size - 1}; "
            f"{int(bad.sum())} do not, the first being {a[r, c]} at row {r}, column {c}"
        )
    return a


def save_tokens(indices, path, config: QKVAEConfig = QKVAEConfig()) -> Path:
    """Write the ids of one image as .npy (int64, (grid, grid)) or .json (one list per grid row)."""
    a, path = validate_indices(indices, config), Path(path)
    _check_suffix(path)
    if path.suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, a)
        return atomic_write(path, buffer.getvalue())
    return atomic_write(path, json.dumps(a.tolist()) + "\n")


def _check_suffix(path: Path) -> None:
    if path.suffix not in TOKEN_SUFFIXES:
        raise TokenError(f"token files end in {' or '.join(TOKEN_SUFFIXES)}, not {path.suffix or 'nothing'}")


def load_tokens(path, config: QKVAEConfig = QKVAEConfig()) -> np.ndarray:
    """Read and validate a token file, or row ``R`` of a shard given as ``SHARD.parquet:R``;
    returns int64 (grid, grid)."""
    shard, sep, row = str(path).rpartition(":")
    if sep and shard.endswith(".parquet"):
        return validate_indices(shard_row(shard, row), config)
    path = Path(path)
    if not path.is_file():
        raise TokenError(f"no such token file: {path}")
    _check_suffix(path)
    try:
        ids = np.load(path, allow_pickle=False) if path.suffix == ".npy" else json.loads(path.read_text())
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise TokenError(f"{path.name} is not a readable {path.suffix} token file ({e})") from None
    try:
        return validate_indices(ids, config)
    except TokenError:
        raise
    except (TypeError, ValueError) as e:
        raise TokenError(f"{path.name} does not hold a flat or {config.grid_size}x{config.grid_size} "
                         f"list of ids ({e})") from None


@dataclass(frozen=True)
class LMVocab:
    """Where the image tokens go in a language model's vocabulary (``lm_vocab``)."""

    code_offset: int  # code i is id code_offset + i
    img_start: int
    img_end: int
    img_newrow: int
    vocab_size: int  # the base vocabulary, the codes and the three special tokens

    def special_tokens(self) -> dict[str, int]:
        """The special tokens by name (``<img_start>``, ``<img_end>``, ``<img_newrow>``)."""
        return {name: getattr(self, name.strip("<>")) for name in SPECIAL_TOKENS}

    def to_json(self) -> dict[str, int]:
        """``code_offset``, the special tokens by name, ``vocab_size``: the layout the files carry."""
        return {"code_offset": self.code_offset, **self.special_tokens(), "vocab_size": self.vocab_size}


def lm_vocab(base_vocab_size: int, config: QKVAEConfig = QKVAEConfig()) -> LMVocab:
    """Where the image tokens go when appended to a vocabulary of ``base_vocab_size`` entries.

    Code ``i`` becomes ``base_vocab_size + i``; the three special tokens follow the codes.
    """
    if base_vocab_size < 0:
        raise ValueError("the base vocabulary size cannot be negative")
    first = base_vocab_size + config.codebook_size
    return LMVocab(base_vocab_size, first, first + 1, first + 2, first + len(SPECIAL_TOKENS))


def lm_sequence(indices, base_vocab_size: int, config: QKVAEConfig = QKVAEConfig()) -> np.ndarray:
    """``<img_start>``, each grid row of offset ids followed by ``<img_newrow>``, then ``<img_end>``."""
    return lm_sequences(validate_indices(indices, config)[None], base_vocab_size, config)[0]


def lm_sequences(ids: np.ndarray, base_vocab_size: int, config: QKVAEConfig = QKVAEConfig()) -> np.ndarray:
    """The LM sequences of a batch of images: ids (B, num_tokens) or (B, grid, grid), already in
    range -> int64 (B, 2 + grid * (grid + 1)), each as ``lm_sequence`` builds it."""
    g = config.grid_size
    grid = np.asarray(ids, dtype=np.int64).reshape(len(ids), g, g)
    v = lm_vocab(base_vocab_size, config)
    rows = np.concatenate([grid + v.code_offset, np.full((len(grid), g, 1), v.img_newrow)], axis=2)
    return np.concatenate([np.full((len(grid), 1), v.img_start), rows.reshape(len(grid), -1),
                           np.full((len(grid), 1), v.img_end)], axis=1)


@dataclass(frozen=True)
class TokenShards:
    """Rows of token shards: the whole folder from ``read_shards``, or one batch of it."""

    image_ids: list[str]
    tokens: np.ndarray  # uint16 (N, num_tokens), row-major over the grid
    labels: list[int] | None  # None when the source had no labels
    metadata: dict[str, str]  # the shards' key-value metadata (weights, levels, mode, ...)


def shard_files(folder) -> list[Path]:
    """The finished shards of a run folder, in input order (those the manifest lists), or a
    single shard file."""
    from qkvae.shards import ShardError, load_manifest, shard_index

    folder = Path(folder)
    if folder.is_file() and folder.suffix == ".parquet":
        return [folder]
    if not folder.is_dir():
        raise TokenError(f"no such folder of token shards: {folder}")
    try:
        manifest = load_manifest(folder)
    except ShardError as e:
        raise TokenError(f"{folder} is not a folder of token shards: {e}") from None
    files = [folder / r.file for r in sorted(manifest.shards, key=lambda r: shard_index(r.file))]
    if missing := [f.name for f in files if not f.is_file()]:
        raise TokenError(f"{folder} lacks shards its manifest lists: {', '.join(missing)}")
    return files


def _shard_batch(batch, metadata: dict[str, str]) -> TokenShards:
    tokens = batch.column("tokens")
    ids = tokens.flatten().to_numpy(zero_copy_only=False).reshape(len(batch), tokens.type.list_size)
    labels = batch.column("label").to_pylist() if "label" in batch.schema.names else None
    return TokenShards(batch.column("image_id").to_pylist(), ids.astype(np.uint16, copy=False), labels, metadata)


def iter_shards(folder, batch_size: int = 4096) -> Iterator[TokenShards]:
    """The rows of ``read_shards(folder)`` in batches of at most ``batch_size``, read lazily."""
    import pyarrow.parquet as pq

    from qkvae.shards import read_metadata

    for path in shard_files(folder):
        metadata = read_metadata(path)
        file = pq.ParquetFile(path)
        columns = [c for c in ("image_id", "tokens", "label") if c in file.schema_arrow.names]
        for batch in file.iter_batches(batch_size, columns=columns):
            yield _shard_batch(batch, metadata)


def read_shards(folder, batch_size: int | None = None) -> "TokenShards | Iterator[TokenShards]":
    """The ids of a folder of token shards (or one shard file): all rows as one ``TokenShards``
    with ``tokens`` uint16 (N, num_tokens), or, with ``batch_size``, an iterator of batches for data
    that does not fit in memory."""
    if batch_size is not None:
        return iter_shards(folder, batch_size)
    parts = list(iter_shards(folder))
    if not parts:
        return TokenShards([], np.zeros((0, QKVAEConfig().num_tokens), np.uint16), None, {})
    return TokenShards([i for p in parts for i in p.image_ids], np.concatenate([p.tokens for p in parts]),
                       None if parts[0].labels is None else [x for p in parts for x in p.labels],
                       parts[0].metadata)


def shard_row(path, row) -> np.ndarray:
    """The ids of row ``row`` (0-based, int or digits) of one shard file: uint16 (num_tokens,)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise TokenError(f"no such token shard: {path}")
    try:
        row = int(row)
        file = pq.ParquetFile(path)
    except ValueError as e:
        raise TokenError(f"cannot read row {row!r} of {path.name} ({e})") from None
    if "tokens" not in file.schema_arrow.names:
        raise TokenError(f"{path.name} is not a token shard (no tokens column)")
    if not 0 <= row < file.metadata.num_rows:
        raise TokenError(f"{path.name} has rows 0..{file.metadata.num_rows - 1}, not {row}")
    for g in range(file.num_row_groups):  # read only the row group holding the row
        n = file.metadata.row_group(g).num_rows
        if row < n:
            return file.read_row_group(g, columns=["tokens"]).column("tokens")[row].values.to_numpy(zero_copy_only=False)
        row -= n
    raise TokenError(f"{path.name}: row not found in its row groups")
