"""Files written whole or not at all: every file the project writes goes through here.

    atomic_write(path, text_or_bytes)
    with atomic_path(path) as staging:    # for writers that want a path (Parquet, torch.save, savefig)
        write_to(staging)

The content goes to a hidden staging file beside ``path`` (``.<name>.<random>.tmp``, so that
concurrent writers never share one), which is renamed onto ``path`` only once it is complete:
a reader sees the old file or the new one, never half of one, and a killed writer leaves the old
file and at most a staging file, which ``*.tmp`` globs find.
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o644  # as a plain open() would create it (mkstemp makes 0o600)


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A staging path to write ``path``'s content to; renamed onto ``path`` when the block ends,
    removed if it raises."""
    path = Path(path)
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(staging)
        os.chmod(staging, FILE_MODE)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def atomic_write(path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as staging:
        staging.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)
