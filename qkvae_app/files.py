"""Files the app serves: an image's token ids (.npy, .json), its LM-ready sequence (.json) and
the PNG of every image it shows.

They are written under ``<tmp>/qkvae-app/``, named by a digest of their content, so the same
tokens or pixels always map to the same small files and repeated requests do not pile up copies.
"""

import hashlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from qkvae.tokens import lm_sequence, lm_vocab, save_tokens

OUT_DIR = Path(tempfile.gettempdir()) / "qkvae-app"
PNG_DIR = OUT_DIR / "png"
PNG_LIFETIME = 3600  # seconds; older PNGs are deleted when a new one is written (Gradio keeps its own copy)


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


def png_file(image: np.ndarray) -> str:
    """A uint8 image (H, W[, 3]) as a PNG file named by its content, written atomically.

    Gradio saves an array output by rewriting its cache file in place, on every event that
    returns it. The same pixels shown twice (the reconstruction is also the Tokens tab's
    decoding) could then be fetched half-written and stay broken in the browser. A file path
    output is instead copied into Gradio's cache under a temporary name and renamed.
    """
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="png")
    data = buffer.getvalue()
    path = PNG_DIR / f"{hashlib.sha1(data).hexdigest()[:20]}.png"
    try:
        os.utime(path)  # reused: it now counts as new, so no pruning removes it before Gradio copies it
        return str(path)
    except FileNotFoundError:
        pass
    PNG_DIR.mkdir(parents=True, exist_ok=True)
    _delete_older_than(PNG_DIR, PNG_LIFETIME)
    fd, staging = tempfile.mkstemp(dir=PNG_DIR, prefix=".", suffix=".png")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(staging, path)
    return str(path)


def _delete_older_than(folder: Path, seconds: float) -> None:
    cutoff = time.time() - seconds
    for path in folder.glob("*.png"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:  # another worker deleted it first
            pass
