"""Files offered for download: an image's token ids (.npy, .json) and its LM-ready sequence (.json).

They are written under ``<tmp>/qkvae-app/<digest of the ids>/``, so the same tokens always map
to the same small files and repeated requests do not pile up copies.
"""

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

from qkvae.tokens import lm_sequence, lm_vocab, save_tokens

OUT_DIR = Path(tempfile.gettempdir()) / "qkvae-app"


def _folder(grid: np.ndarray) -> Path:
    folder = OUT_DIR / hashlib.sha1(np.ascontiguousarray(grid, dtype=np.int64).tobytes()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def token_files(grid: np.ndarray, stem: str) -> list[str]:
    """Write the ids as ``<stem>-tokens.npy`` and ``.json``; returns both paths."""
    folder = _folder(grid)
    return [str(save_tokens(grid, folder / f"{stem}-tokens{suffix}")) for suffix in (".npy", ".json")]


def lm_file(grid: np.ndarray, base_vocab_size: int, stem: str) -> tuple[np.ndarray, str]:
    """The LM sequence and a JSON file holding it with its vocabulary layout (special-token ids)."""
    seq = lm_sequence(grid, base_vocab_size)
    path = _folder(grid) / f"{stem}-lm-{base_vocab_size}.json"
    path.write_text(json.dumps({**lm_vocab(base_vocab_size), "ids": seq.tolist()}) + "\n")
    return seq, str(path)
