"""Every file the app writes, and their pruning: an image's token ids (.npy, .json), its LM-ready
sequence (.json), the PNG of every image it shows (and, under their own names, the explored
images it opens in the Reconstruct tab), the cached metrics of dataset passes, and the
Explore tab's tables (.csv, .json).

They are written under ``<tmp>/qkvae-app/<kind>/``, named by a digest of their content (or, for a
dataset pass, of what it was computed from), so the same tokens or pixels always map to the same
small files and repeated requests do not pile up copies. A file counts as used when it is written
or reused (reuse touches it); ``prune`` deletes each kind's files unused for longer than its
lifetime, and ``start_pruning`` runs it on a schedule for as long as the app runs.
"""

import hashlib
import io
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from qkvae.atomic import atomic_write
from qkvae.tokens import lm_sequence, lm_vocab, save_tokens

OUT_DIR = Path(tempfile.gettempdir()) / "qkvae-app"
LIFETIMES = {  # kind (a folder under OUT_DIR) -> seconds a file may stay unused
    "png": 3600,  # Gradio copies a served file into its own cache at once
    "tokens": 3600,  # token and LM files, downloaded from Gradio's copies too
    "datasets": 7 * 24 * 3600,  # a whole split's metrics: costly to recompute
    "results": 3600,  # the Explore tab's CSV and JSON, downloaded from Gradio's copies too
}
PRUNE_EVERY = 600  # seconds between two prunings
_schedule_lock = threading.Lock()
_schedule: threading.Event | None = None  # the running schedule's stop signal


def folder(kind: str) -> Path:
    """The folder for one kind of file (a key of ``LIFETIMES``), created when missing."""
    if kind not in LIFETIMES:
        raise ValueError(f"unknown kind of app file {kind!r}; one of {sorted(LIFETIMES)}")
    path = OUT_DIR / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def prune(now: float | None = None) -> int:
    """Delete the app's files unused for longer than their kind's lifetime, and the folders left
    empty as long; returns how many files went."""
    now = time.time() if now is None else now
    deleted = 0
    for kind, lifetime in LIFETIMES.items():
        root = OUT_DIR / kind
        for path in sorted(root.rglob("*"), reverse=True) if root.is_dir() else []:  # files before their folder
            try:
                if path.stat().st_mtime >= now - lifetime:
                    continue
                if path.is_dir():
                    path.rmdir()  # only when empty: a folder just made for new files is not old
                else:
                    path.unlink()
                    deleted += 1
            except OSError:  # a folder that is not empty, or a file another process pruned first
                pass
    return deleted


def start_pruning(every: float = PRUNE_EVERY) -> bool:
    """Prune now, then every ``every`` seconds in a daemon thread, until ``stop_pruning``; one
    schedule per process (returns False when one is already running)."""
    global _schedule
    with _schedule_lock:
        if _schedule is not None:
            return False
        _schedule = stop = threading.Event()

    def loop():
        prune()
        while not stop.wait(every):
            prune()

    threading.Thread(target=loop, name="qkvae-app-pruning", daemon=True).start()
    return True


def stop_pruning() -> None:
    global _schedule
    with _schedule_lock:
        if _schedule is not None:
            _schedule.set()
            _schedule = None


def _grid_folder(grid: np.ndarray) -> Path:
    path = folder("tokens") / hashlib.sha1(np.ascontiguousarray(grid, dtype=np.int64).tobytes()).hexdigest()[:16]
    path.mkdir(parents=True, exist_ok=True)
    os.utime(path)  # in use again: pruning leaves it
    return path


def token_files(grid: np.ndarray, stem: str) -> list[str]:
    """Write the ids as ``<stem>-tokens.npy`` and ``.json``; returns both paths."""
    out = _grid_folder(grid)
    return [str(save_tokens(grid, out / f"{stem}-tokens{suffix}")) for suffix in (".npy", ".json")]


def lm_file(grid: np.ndarray, base_vocab_size: int, stem: str) -> tuple[np.ndarray, str]:
    """The LM sequence and a JSON file holding it with its vocabulary layout (special-token ids)."""
    seq = lm_sequence(grid, base_vocab_size)
    path = _grid_folder(grid) / f"{stem}-lm-{base_vocab_size}.json"
    atomic_write(path, json.dumps({**lm_vocab(base_vocab_size).to_json(), "ids": seq.tolist()}) + "\n")
    return seq, str(path)


def result_files(texts: dict[str, str]) -> tuple[str, ...]:
    """Text files (file name -> content), written together in a folder named by their content;
    returns their paths in order. An existing file already holds its text: it is only touched
    (in use again), so a download of it is never cut short by a rewrite."""
    digest = hashlib.sha1(json.dumps(texts, sort_keys=True).encode()).hexdigest()[:16]
    where = folder("results") / digest
    where.mkdir(exist_ok=True)
    os.utime(where)  # in use again: pruning leaves it
    paths = [where / name for name in texts]
    for path, text in zip(paths, texts.values(), strict=True):
        try:
            os.utime(path)
        except FileNotFoundError:
            atomic_write(path, text)
    return tuple(map(str, paths))


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
    png_dir = folder("png")
    path = png_dir / f"{hashlib.sha1(data).hexdigest()[:20]}.png"
    try:
        os.utime(path)  # reused: it now counts as new, so no pruning removes it before Gradio copies it
        return str(path)
    except FileNotFoundError:
        pass
    return str(atomic_write(path, data))



def named_png(image: np.ndarray, name: str) -> str:
    """``png_file``'s PNG under the file name ``name``'s stem + ``.png``, in a folder named by the
    content, so that what opens it (the Reconstruct tab) knows the image by its own name."""
    source = Path(png_file(image))
    where = source.parent / source.stem
    where.mkdir(exist_ok=True)
    os.utime(where)  # in use again: pruning leaves it
    path = where / f"{Path(name).stem[:200] or 'image'}.png"
    try:
        os.utime(path)
    except FileNotFoundError:
        fd, staging = tempfile.mkstemp(dir=where, prefix=".", suffix=".png")
        with os.fdopen(fd, "wb") as f:
            f.write(source.read_bytes())
        os.replace(staging, path)
    return str(path)
