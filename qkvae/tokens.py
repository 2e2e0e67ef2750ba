"""Token ids on disk and for language models: validation, .npy/.json files, LM sequences.

A token file holds the 2,304 ids of one image, row-major over the 48x48 grid, as a ``.npy``
array (any integer dtype, shape (2304,) or (48, 48)) or a ``.json`` list (flat or nested).
"""

import json
from pathlib import Path

import numpy as np

from qkvae.model import QKVAEConfig

SPECIAL_TOKENS = ("<img_start>", "<img_end>", "<img_newrow>")
TOKEN_SUFFIXES = (".npy", ".json")


class TokenError(ValueError):
    """Token ids that do not describe one image."""


def validate_indices(ids, config: QKVAEConfig = QKVAEConfig()) -> np.ndarray:
    """Check ids and return them as int64 (grid, grid); raises ``TokenError`` saying what is wrong."""
    a = np.asarray(ids)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise TokenError(f"token ids must be a flat or 48x48 array of integers, got dtype {a.dtype}")
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


def save_tokens(indices, path) -> Path:
    """Write the ids of one image as .npy (int64, 48x48) or .json (48 lists of 48 ints)."""
    a, path = validate_indices(indices), Path(path)
    _check_suffix(path)
    if path.suffix == ".npy":
        np.save(path, a)
    else:
        path.write_text(json.dumps(a.tolist()) + "\n")
    return path


def _check_suffix(path: Path) -> None:
    if path.suffix not in TOKEN_SUFFIXES:
        raise TokenError(f"token files end in {' or '.join(TOKEN_SUFFIXES)}, not {path.suffix or 'nothing'}")


def load_tokens(path) -> np.ndarray:
    """Read and validate a token file; returns int64 (48, 48)."""
    path = Path(path)
    if not path.is_file():
        raise TokenError(f"no such token file: {path}")
    _check_suffix(path)
    try:
        ids = np.load(path, allow_pickle=False) if path.suffix == ".npy" else json.loads(path.read_text())
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise TokenError(f"{path.name} is not a readable {path.suffix} token file ({e})") from None
    try:
        return validate_indices(ids)
    except TokenError:
        raise
    except (TypeError, ValueError) as e:
        raise TokenError(f"{path.name} does not hold a flat or 48x48 list of ids ({e})") from None


def lm_vocab(base_vocab_size: int, config: QKVAEConfig = QKVAEConfig()) -> dict[str, int]:
    """Where the image tokens go when appended to a vocabulary of ``base_vocab_size`` entries.

    Code ``i`` becomes ``base_vocab_size + i``; the three special tokens follow the codes.
    """
    if base_vocab_size < 0:
        raise ValueError("the base vocabulary size cannot be negative")
    first_special = base_vocab_size + config.codebook_size
    return {"code_offset": base_vocab_size,
            **{name: first_special + k for k, name in enumerate(SPECIAL_TOKENS)},
            "vocab_size": first_special + len(SPECIAL_TOKENS)}


def lm_sequence(indices, base_vocab_size: int, config: QKVAEConfig = QKVAEConfig()) -> np.ndarray:
    """``<img_start>``, each row of 48 offset ids followed by ``<img_newrow>``, then ``<img_end>``."""
    grid = validate_indices(indices, config)
    v = lm_vocab(base_vocab_size, config)
    rows = np.concatenate([grid + v["code_offset"], np.full((grid.shape[0], 1), v["<img_newrow>"])], axis=1)
    return np.concatenate([[v["<img_start>"]], rows.ravel(), [v["<img_end>"]]]).astype(np.int64)
