"""Image sources: every place images come from, as one sequence of named images.

    source = open_source("photos/")        # or list.txt, test_X.bin, stl10_binary/, data.parquet
    len(source), source.names[0]           # names are stable: relative path, or the index
    item = source[0]                       # SourceImage(name, rgb uint8 (H, W, 3), label)

A source is opened from:
- an image folder, searched recursively and sorted by relative path (the name);
- a ``.txt`` file listing image paths, one per line (relative to the list's folder; blank lines
  and ``#`` comments ignored); the name is the path as written;
- an STL-10 ``*_X.bin`` file (uint8, N x 3 x 96 x 96, column-major per image), with labels
  from the ``*_y.bin`` beside it when there is one; the name is ``<stem>_<index>``;
- an ``stl10_binary/`` folder (any folder holding ``*_X.bin``): its test split;
- Parquet files, or a folder of them, in the Hugging Face ``datasets`` layout: an image column
  that is a struct of ``bytes`` and ``path``, and an optional integer ``label``/``labels``
  column; ``split`` picks the files of one split (``test-00000-of-00001.parquet``,
  ``test/...``). The name is the image's ``path`` when every row has a distinct one, else
  ``<file stem>/<row>``;
- a dataset repo on the Hugging Face Hub, ``hf://datasets/OWNER/NAME[@revision]``, or a folder
  or Parquet file in it (``.../NAME/data``): only the Parquet files of ``split`` are downloaded
  (``snapshot_download``, through the local Hub cache; see ``qkvae.hub``), then read as above.

Opening a source that does not exist or holds no images raises ``SourceError``. Decoding is
lazy, one image at a time: an entry that cannot be decoded raises ``ImageError`` naming the
entry, so callers that go on can record it and skip it.
"""

import bisect
import posixpath
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qkvae.hub import HubError, HubRef, hub_snapshot, is_hub_ref
from qkvae.image import ImageError, open_rgb

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
LIST_SUFFIXES = {".txt"}
STL10_SIDE = 96
STL10_SPLITS = ("test", "train", "unlabeled")  # the split an stl10_binary/ folder gives, by preference
LABEL_COLUMNS = ("label", "labels")


class SourceError(ValueError):
    """A path that cannot be read as a set of images."""


@dataclass(frozen=True)
class Skipped:
    """An entry of a source that could not be decoded, and why (a line of the tokenizer's
    ``errors.jsonl``, a ``skipped`` entry of results.json)."""

    name: str
    reason: str
    index: int | None = None  # its position in the source, when it comes from one

    def to_json(self) -> dict:
        return {"name": self.name, "reason": self.reason}


@dataclass(frozen=True)
class SourceImage:
    name: str
    rgb: np.ndarray  # uint8 (H, W, 3)
    label: int | None = None


class ImageSource(Sequence):
    """Named images, decoded on access. Subclasses set ``description``, ``names``, ``labels``
    (a list of ints, or None) and implement ``_read(i)``."""

    description: str
    names: list[str]
    labels: list[int] | None = None

    def _read(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> SourceImage:
        if not -len(self) <= i < len(self):
            raise IndexError(f"image {i} of a source of {len(self)}")
        i %= len(self)
        label = None if self.labels is None else self.labels[i]
        return SourceImage(self.names[i], self._read(i), label)


def read_entries(source: ImageSource, positions: Iterable[int], skipped: list[Skipped]) -> Iterator[SourceImage]:
    """The images of ``source`` at ``positions``, decoded one at a time: the one loop that skips.
    Each entry that cannot be decoded is appended to ``skipped`` (with its position) and passed over."""
    for i in positions:
        try:
            yield source[i]
        except ImageError as e:
            skipped.append(Skipped(source.names[i], str(e), i))


def read_all(source: ImageSource, skipped: list[Skipped], limit: int | None = None,
             desc: str = "loading", progress_from: int = 200) -> Iterator[SourceImage]:
    """``read_entries`` over the first ``limit`` entries of ``source`` (all by default), with a
    progress bar for ``progress_from`` entries or more."""
    count = len(source) if limit is None else min(limit, len(source))
    yield from read_entries(source, tqdm(range(count), desc=desc, unit="img", disable=count < progress_from), skipped)


class FileSource(ImageSource):
    """Image files, each read with ``qkvae.image.open_rgb``."""

    def __init__(self, description: str, names: list[str], paths: list[Path]):
        self.description, self.names, self.paths = description, names, paths

    def _read(self, i: int) -> np.ndarray:
        return np.asarray(open_rgb(self.paths[i], name=self.names[i]))


class Stl10Source(ImageSource):
    """An STL-10 ``*_X.bin``, memory-mapped so that even the 2.7 GB unlabeled split opens at once."""

    PER_IMAGE = 3 * STL10_SIDE * STL10_SIDE

    def __init__(self, path: Path):
        size = path.stat().st_size
        if size == 0 or size % self.PER_IMAGE:
            raise SourceError(f"{path} is not an STL-10 image file ({size:,} bytes, not a multiple of "
                              f"{self.PER_IMAGE:,})")
        self.description = str(path)
        self.images = np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, 3, STL10_SIDE, STL10_SIDE)
        self.names = [f"{path.stem}_{i:05d}" for i in range(len(self.images))]
        self.labels = _stl10_labels(path, len(self.names))

    def _read(self, i: int) -> np.ndarray:
        return np.ascontiguousarray(self.images[i].transpose(2, 1, 0))  # column-major -> (H, W, 3)


def _stl10_labels(x_path: Path, count: int) -> list[int] | None:
    y_path = x_path.with_name(x_path.name.replace("_X.bin", "_y.bin"))
    if y_path == x_path or not y_path.is_file():
        return None
    labels = np.fromfile(y_path, dtype=np.uint8)
    if len(labels) != count:
        raise SourceError(f"{y_path} holds {len(labels):,} labels for {count:,} images in {x_path.name}")
    return labels.astype(int).tolist()


class ParquetSource(ImageSource):
    """Parquet files with an image column (``{bytes, path}`` structs), read a row group at a time."""

    def __init__(self, description: str, files: list[Path]):
        import pyarrow.parquet as pq

        self.description = description
        schema = pq.read_schema(files[0])
        self.column = _image_column(schema, files[0])
        label_column = next((c for c in LABEL_COLUMNS if c in schema.names), None)
        self.groups, self.starts = [], []  # (ParquetFile, row group) and the index of its first row
        paths, fallback, labels = [], [], []
        for path in files:
            file = pq.ParquetFile(path)
            if self.column not in file.schema_arrow.names:
                raise SourceError(f"{path} has no image column {self.column!r} like {files[0].name}")
            for g in range(file.metadata.num_row_groups):
                self.groups.append((file, g))
                self.starts.append(len(fallback) + sum(file.metadata.row_group(k).num_rows for k in range(g)))
            fallback += [f"{path.stem}/{row:06d}" for row in range(file.metadata.num_rows)]
            if _has_path(file.schema_arrow, self.column):
                paths += file.read(columns=[f"{self.column}.path"]).column(self.column).combine_chunks() \
                    .field("path").to_pylist()
            else:
                paths += [None] * file.metadata.num_rows
            if label_column:
                labels += file.read(columns=[label_column]).column(label_column).to_pylist()
        self.names = paths if all(paths) and len(set(paths)) == len(paths) else fallback
        self.labels = labels if label_column else None
        self._cached = (None, [])  # the last row group read, and its image bytes

    def _read(self, i: int) -> np.ndarray:
        g = bisect.bisect_right(self.starts, i) - 1
        if self._cached[0] != g:
            file, group = self.groups[g]
            column = file.read_row_group(group, columns=[self.column]).column(self.column)
            self._cached = (g, column.combine_chunks().field("bytes").to_pylist())
        data = self._cached[1][i - self.starts[g]]
        if not data:
            raise ImageError(f"{self.names[i]}: the entry has no image bytes")
        return np.asarray(open_rgb(data, name=self.names[i]))


def _has_path(schema, column: str) -> bool:
    return "path" in [f.name for f in schema.field(column).type]


def _image_column(schema, path: Path) -> str:
    """The first struct column with a binary ``bytes`` field (the ``datasets`` Image feature)."""
    import pyarrow as pa

    for field in schema:
        if pa.types.is_struct(field.type) and "bytes" in [f.name for f in field.type]:
            return field.name
    raise SourceError(f"{path} has no image column (a struct of bytes and path, as Hugging Face datasets "
                      f"writes images); its columns are {', '.join(schema.names)}")


def _split_files(files: list[Path], root: Path, split: str | None) -> list[Path]:
    """The Parquet files of ``split``: a path component equal to it, or a file name starting ``split-``."""
    if split is None:
        return files
    chosen = [f for f in files if split in f.relative_to(root).parts[:-1] or f.name.startswith(f"{split}-")
              or f.stem == split]
    if not chosen:
        raise SourceError(f"no Parquet files of split {split!r} in {root}")
    return chosen


def _image_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                  key=lambda p: p.relative_to(folder).as_posix())


def _list_file(path: Path) -> FileSource:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    if not entries:
        raise SourceError(f"{path} lists no image paths")
    paths = [p if p.is_absolute() else path.parent / p for p in map(Path, entries)]
    return FileSource(str(path), entries, paths)


def _stl10_bin(folder: Path) -> Path | None:
    bins = {p.name.removesuffix("_X.bin"): p for p in folder.glob("*_X.bin")}
    return next((bins[s] for s in STL10_SPLITS if s in bins), min(bins.values(), default=None))


def _split_patterns(split: str | None) -> list[str]:
    """``snapshot_download`` patterns for the Parquet files that ``_split_files`` can pick for ``split``."""
    if split is None:
        return ["*.parquet"]
    return [f"{split}-*.parquet", f"*/{split}-*.parquet", f"{split}/*.parquet", f"*/{split}/*.parquet",
            f"{split}.parquet", f"*/{split}.parquet"]


def _hub_dataset(spec: str, split: str | None) -> ImageSource:
    """A dataset repo, or a folder or Parquet file inside it (``hf://datasets/OWNER/NAME[@rev]/data``)."""
    what = f"the Parquet files of split {split!r}" if split else "its Parquet files"
    try:
        ref = HubRef.parse(spec, "dataset")
        patterns = [ref.path] if ref.path.endswith(".parquet") else [
            posixpath.join(ref.path, pattern) for pattern in _split_patterns(split)]
        local = hub_snapshot(ref, patterns, what) / ref.path
    except HubError as e:
        raise SourceError(str(e)) from None
    if local.is_file():
        return ParquetSource(spec, [local])
    files = sorted(local.rglob("*.parquet"), key=lambda p: p.relative_to(local).as_posix())
    if not files:
        raise SourceError(f"{spec} holds no Parquet files" + (f" of split {split!r}" if split else "")
                          + " (only datasets stored as Parquet, as `datasets` pushes them, can be read)")
    return ParquetSource(spec + (f" ({split})" if split else ""), _split_files(files, local, split))


def open_source(spec, split: str | None = None) -> ImageSource:
    """Open any image source (see the module docstring); raises ``SourceError`` when it has no images."""
    if is_hub_ref(spec):
        return _hub_dataset(spec, split)
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"no such file or folder: {path}")
    if path.is_file():
        suffix = path.suffix.lower()
        if path.name.endswith("_X.bin"):
            return Stl10Source(path)
        if suffix == ".parquet":
            return ParquetSource(str(path), [path])
        if suffix in LIST_SUFFIXES:
            return _list_file(path)
        if suffix in IMAGE_SUFFIXES:
            return FileSource(str(path), [path.name], [path])
        raise SourceError(f"{path} is not an image folder, a .txt list, an STL-10 *_X.bin or a Parquet file")
    if (stl10 := _stl10_bin(path)) is not None:
        return Stl10Source(stl10)
    if images := _image_files(path):
        return FileSource(str(path), [p.relative_to(path).as_posix() for p in images], images)
    if parquet := sorted(path.rglob("*.parquet"), key=lambda p: p.relative_to(path).as_posix()):
        return ParquetSource(f"{path}" + (f" ({split})" if split else ""), _split_files(parquet, path, split))
    raise SourceError(f"no images found in {path}")
