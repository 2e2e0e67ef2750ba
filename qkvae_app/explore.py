"""The Explore tab's computation: many uploaded images (files and ``.zip`` archives) through the
tokenizer, each scored as in ``results.json``, ranked to show where the tokenizer fails.

``open_uploads`` checks the upload before decoding anything. A file or archive entry that
cannot be taken is skipped, listed with why, and the rest is processed: an archive that is not a
readable zip or declares more bytes than a run may hold (a zip bomb), an entry compressed more
than ``MAX_ZIP_RATIO`` times, a zip inside a zip, an absolute or ``../`` path, a symbolic link,
an encrypted entry, a file that is not an image by its name, an image over
``qkvae.image.MAX_PIXELS`` or unreadable by its header. Only the run's own limits refuse it as a
whole, with an ``UploadError``, before any decoding: too many images, too many bytes, too many
pixels to decode (``MAX_RUN_MEGAPIXELS``, summed from the images' headers). Archive members are
read in memory, never extracted to disk, and never more bytes than the archive declares.

``explore`` runs the model's pass over the upload a chunk at a time (``qkvae.stream``, through
``qkvae.pipeline.reconstruct_set`` or its GPU call in ``qkvae_app.gpu``) and adds to each row
``analysis.report.image_summary``'s rate and OOD score and verdict and ``analysis.complexity``'s
expected PSNR and residual, into an ``Exploration``: a table, the worst images, and CSV and JSON files (the JSON's ``images`` entries are those of
results.json, without ``stability``, which would cost another encoding pass).
"""

import json
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass
from html import escape
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from analysis.complexity import expectation
from analysis.figures import describe, jsonable
from analysis.groups import GroupedImage, GroupTable, group_of, group_table
from analysis.report import ImageSummary
from qkvae.image import MAX_PIXELS, ImageError, image_pixels, open_rgb
from qkvae.sources import IMAGE_SUFFIXES, ImageSource, Skipped, SourceError
from qkvae.stream import FittedImages, ReconstructedImage, SetReconstruction, ahead, read_chunks
from qkvae_app import files

MAX_IMAGES = 500  # images in one upload, loose files and archive members together
MAX_TOTAL_BYTES = 200 * 2**20  # uncompressed bytes of one upload (archive members by their declared size)
MAX_RUN_MEGAPIXELS = 2000  # decoded pixels of one run, summed from the headers (4 Mpixel each for 500 images)
MAX_ZIP_RATIO = 100  # an archive member may expand at most this many times...
RATIO_FROM_BYTES = 2**20  # ...once it is this large (small flat BMPs legitimately compress more)
CHUNK = 64  # images per call of the reconstruct function (one GPU call each on ZeroGPU) and per progress step
GALLERY_SIZE = 12  # worst images shown
IGNORED_MEMBERS = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$)")  # macOS metadata, not content
TABLE_COLUMNS = {"name": "name", "psnr": "PSNR (dB)", "ssim": "SSIM", "expected_psnr": "expected PSNR (dB)",
                 "psnr_residual": "residual (dB)", "ood_score": "OOD score", "verdict": "verdict"}
WORST_BY = ("PSNR", "residual", "OOD score")
FORMULA_STARTS = ("=", "+", "-", "@")  # a CSV cell starting so is a formula to a spreadsheet
LIMITS = (f"A run takes up to {MAX_IMAGES} images, {MAX_TOTAL_BYTES // 2**20} MB uncompressed and "
          f"{MAX_RUN_MEGAPIXELS:,} megapixels in all, each image at most {MAX_PIXELS / 1e6:.0f} megapixels. "
          "Files it cannot take (archives in archives, links, absolute or `../` paths, members compressed more "
          f"than {MAX_ZIP_RATIO}x, encrypted or unreadable files) are skipped and listed with why.")


class UploadError(ValueError):
    """An upload refused as a whole: it breaks one of the run's own limits."""


@dataclass(frozen=True)
class _Member:
    archive: Path
    info: zipfile.ZipInfo


class UploadSource(ImageSource):
    """Uploaded image files and image members of uploaded archives, decoded on access."""

    def __init__(self, names: list[str], entries: list[Path | _Member], unlisted: list[Skipped]):
        self.description = "the upload"
        self.names, self.entries, self.unlisted = names, entries, unlisted
        self._archives: dict[Path, zipfile.ZipFile] = {}

    def _bytes(self, member: _Member, name: str) -> bytes:
        if member.archive not in self._archives:  # opened once, closed by ``close``
            self._archives[member.archive] = zipfile.ZipFile(member.archive)
        try:
            with self._archives[member.archive].open(member.info) as f:
                return f.read(member.info.file_size)  # zipfile stops at the declared size and checks the CRC
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, OSError) as e:
            raise ImageError(f"{name} cannot be read from its archive ({e})") from None

    def _data(self, i: int) -> Path | bytes:
        entry = self.entries[i]
        return entry if isinstance(entry, Path) else self._bytes(entry, self.names[i])

    def pixels(self, i: int) -> int:
        """Entry ``i``'s pixel count from its header (``ImageError`` when unreadable or too large)."""
        return image_pixels(self._data(i), name=self.names[i])

    def _read(self, i: int) -> np.ndarray:
        return np.asarray(open_rgb(self._data(i), name=self.names[i]))

    def close(self) -> None:
        for archive in self._archives.values():
            archive.close()
        self._archives.clear()


def _unsafe_path(name: str) -> bool:
    posix = name.replace("\\", "/")
    return posix.startswith("/") or bool(re.match(r"[A-Za-z]:", posix)) or ".." in PurePosixPath(posix).parts


def _refusal(info: zipfile.ZipInfo) -> str | None:
    """Why an archive entry is not read, or None."""
    if _unsafe_path(info.filename):
        return "has an absolute or '../' path, which could write outside a folder"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link; archives may hold only files"
    if info.filename.lower().endswith(".zip"):
        return "is a zip inside the zip; upload the inner archive itself"
    if info.flag_bits & 0x1:
        return "is encrypted; upload it without a password"
    if info.file_size >= RATIO_FROM_BYTES and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
        return (f"expands {info.file_size / max(info.compress_size, 1):,.0f} times ({info.compress_size:,} to "
                f"{info.file_size:,} bytes); the limit is {MAX_ZIP_RATIO}x: it looks like a zip bomb")
    if Path(info.filename).suffix.lower() not in IMAGE_SUFFIXES:
        return "not an image file (by its name)"
    return None


def _members(archive: Path, label: str, skipped: list[Skipped]) -> list[zipfile.ZipInfo]:
    """The archive's image members, sorted by path; every other entry (or the whole archive)
    added to ``skipped`` with why."""
    try:
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        skipped.append(Skipped(label, f"not a readable zip archive ({e})"))
        return []
    declared = sum(info.file_size for info in infos)
    if declared > MAX_TOTAL_BYTES:
        skipped.append(Skipped(label, f"would expand to {declared / 2**20:,.0f} MB (the sizes its entries declare); "
                                      f"a run may hold {MAX_TOTAL_BYTES // 2**20} MB: it looks like a zip bomb"))
        return []
    kept = []
    for info in sorted(infos, key=lambda i: i.filename):
        if info.is_dir() or IGNORED_MEMBERS.search(info.filename):
            continue
        why = _refusal(info)
        if why is None:
            kept.append(info)
        else:
            skipped.append(Skipped(f"{label}/{info.filename}", why))
    return kept


def _unique(names: list[tuple[str, str]]) -> list[str]:
    """Each entry's short name, or where short names repeat its archive-qualified one
    (``photos.zip/img.png``), with " (2)", " (3)", ... added to any that still repeat."""
    short = [s for s, _ in names]
    chosen = [s if short.count(s) == 1 else q for s, q in names]
    seen: dict[str, int] = {}
    out = []
    for name in chosen:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def _entries(paths) -> tuple[list[tuple[str, str]], list[Path | _Member], list[Skipped], int]:
    """(short name, qualified name) and entry of each image of the upload, what was skipped and
    why, and the upload's uncompressed bytes; nothing decoded."""
    names, entries, skipped, total = [], [], [], 0
    for path in map(Path, paths):
        if path.suffix.lower() == ".zip":
            for info in _members(path, path.name, skipped):
                names.append((info.filename, f"{path.name}/{info.filename}"))
                entries.append(_Member(path, info))
                total += info.file_size
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            names.append((path.name, path.name))
            entries.append(path)
            total += path.stat().st_size
        else:
            skipped.append(Skipped(path.name, "not an image file or a .zip archive (by its name)"))
    return names, entries, skipped, total


def open_uploads(paths) -> UploadSource:
    """The images of uploaded files and ``.zip`` archives, in upload order (an archive's members
    sorted by path), checked against the limits from their headers; raises ``UploadError`` for
    a run over its own limits. Entries skipped before decoding are listed in ``unlisted``."""
    names, entries, skipped, total = _entries(paths)
    if len(entries) > MAX_IMAGES:
        raise UploadError(f"the upload holds {len(entries):,} images; the limit is {MAX_IMAGES} per run")
    if total > MAX_TOTAL_BYTES:
        raise UploadError(f"the upload holds {total / 2**20:,.0f} MB uncompressed; the limit is "
                          f"{MAX_TOTAL_BYTES // 2**20} MB per run")
    source = UploadSource(_unique(names), entries, [])
    try:
        readable, pixels = [], 0
        for i, name in enumerate(source.names):
            try:
                pixels += source.pixels(i)
                readable.append(i)
            except ImageError as e:
                skipped.append(Skipped(name, str(e)))
    finally:
        source.close()
    if pixels > MAX_RUN_MEGAPIXELS * 1e6:
        raise UploadError(f"the upload's images hold {pixels / 1e6:,.0f} megapixels to decode; the limit is "
                          f"{MAX_RUN_MEGAPIXELS:,} per run")
    if not readable:
        raise UploadError("the upload holds no readable image files" + (f" ({len(skipped)} skipped: "
                          f"{skipped[0].name}: {skipped[0].reason}" + (", ..." if len(skipped) > 1 else "") + ")"
                          if skipped else ""))
    return UploadSource([source.names[i] for i in readable], [entries[i] for i in readable], skipped)


def describe_upload(paths) -> str:
    """What a run of these files would take, in a line of HTML: images, skipped entries, or why it
    would be refused. Files added to the box join the ones already there."""
    if not paths:
        return ""
    files = f"{len(paths)} file{'s' if len(paths) != 1 else ''} in the box"
    try:
        source = open_uploads(paths)
    except UploadError as e:
        return f'<p class="qk-note">{files}; a run would be refused: {escape(str(e))}.</p>'
    skipped = f", {len(source.unlisted)} skipped" if source.unlisted else ""
    return (f'<p class="qk-note">{files}: a run takes <b>{len(source)}</b> images{skipped}. A new upload adds '
            "to these; clear the box (×) to start afresh.</p>")


def ood_reading(summary: ImageSummary) -> tuple[float | None, str]:
    """An image's OOD score (higher is more unusual) and the verdict's label; (None, "") without
    a reference. The one place that reads the score's layout."""
    score = summary.ood_score
    return (None, "") if score is None else (float(score.score), score.verdict.label)


@dataclass(frozen=True)
class Row:
    """One image's line of the table (and of the CSV)."""

    name: str
    psnr: float
    ssim: float
    expected_psnr: float  # analysis.complexity: what a photo this detailed gets
    psnr_residual: float  # psnr - expected_psnr
    ood_score: float | None
    verdict: str


@dataclass(frozen=True)
class Exploration:
    rows: list[Row]
    images: list[dict]  # per row, its results.json entry: name and ImageSummary.to_json()
    originals: np.ndarray  # uint8 (N, 96, 96, 3), the model inputs
    reconstructions: np.ndarray  # uint8 (N, 96, 96, 3)
    skipped: list[Skipped]  # every entry not reconstructed, and why

    def table(self) -> pd.DataFrame:
        """The rows with readable headers, rounded for display; sort by any column."""
        frame = pd.DataFrame([vars(r) for r in self.rows], columns=list(TABLE_COLUMNS))
        return frame.round({"psnr": 2, "ssim": 4, "expected_psnr": 2, "psnr_residual": 2,
                            "ood_score": 3}).rename(columns=TABLE_COLUMNS)

    def position(self, name: str) -> int:
        """The row of the image called ``name``."""
        return [r.name for r in self.rows].index(name)

    def summary_html(self, shown: int = 10) -> str:
        """How many images, their PSNR spread, the verdicts, and the first ``shown`` skipped entries with why."""
        p = np.array([r.psnr for r in self.rows])
        verdicts = pd.Series([r.verdict for r in self.rows if r.verdict]).value_counts()
        counts = ", ".join(f"{n} {escape(v)}" for v, n in verdicts.items())
        text = (f"<p><b>{len(self.rows)}</b> images reconstructed: PSNR mean {p.mean():.2f} dB, min {p.min():.2f}, "
                f"max {p.max():.2f}" + (f"; verdicts: {counts}" if counts else "") + ".</p>")
        if self.skipped:
            listed = "".join(f"<li><code>{escape(s.name)}</code>: {escape(s.reason)}</li>"
                             for s in self.skipped[:shown])
            hidden = len(self.skipped) - shown
            more = f"<li>and {hidden} more (all in the JSON)</li>" if hidden > 0 else ""
            text += f"<p><b>{len(self.skipped)}</b> skipped:</p><ul>{listed}{more}</ul>"
        return f'<div class="qk-card">{text}</div>'

    def worst(self, by: str = "PSNR", count: int = GALLERY_SIZE) -> list[int]:
        """Positions of the ``count`` worst images: lowest PSNR, lowest residual (furthest below
        what a photo as detailed gets), or highest OOD score, first."""
        if by not in WORST_BY:
            raise ValueError(f"by must be one of {WORST_BY}, not {by!r}")
        if by == "PSNR":
            key = np.array([r.psnr for r in self.rows])
        elif by == "residual":
            key = np.array([r.psnr_residual for r in self.rows])
        else:
            key = -np.array([-np.inf if r.ood_score is None else r.ood_score for r in self.rows])
        return np.argsort(key, kind="stable")[:count].tolist()

    def gallery(self, by: str = "PSNR", count: int = GALLERY_SIZE) -> list[tuple[str, str]]:
        """The worst images as (PNG path, caption): original left, reconstruction right, captioned
        with the ranking value first (PSNR, or the residual or OOD score then PSNR), then the name."""
        items = []
        for i in self.worst(by, count):
            r = self.rows[i]
            first = {"OOD score": f"OOD {r.ood_score:.2f} · " if r.ood_score is not None else "",
                     "residual": f"{r.psnr_residual:+.2f} dB vs expected · "}.get(by, "")
            items.append((files.png_file(pair_tile(self.originals[i], self.reconstructions[i])),
                          f"{first}{r.psnr:.2f} dB · {r.name}"))
        return items

    def results_json(self) -> dict:
        """``images`` as in results.json (name, psnr, ssim, rate, ood_score, expected_psnr,
        psnr_residual), ``skipped``, the PSNR and SSIM spread in ``aggregate``, and ``groups``
        (``groups()``)."""
        return jsonable({
            "images": self.images,
            "groups": self.groups().to_json(),
            "skipped": [s.to_json() for s in self.skipped],
            "aggregate": {"num_images": len(self.images), "psnr": describe([r.psnr for r in self.rows]),
                          "ssim": describe([r.ssim for r in self.rows])},
        })

    def groups(self, reference: str | None = None) -> GroupTable:
        """The images by group (``analysis.groups``: folder, else file-name prefix), the AUROCs
        against ``reference`` (default: the largest group)."""
        return group_table([GroupedImage(group_of(r.name), r.psnr, r.ssim, r.psnr_residual, r.ood_score, r.verdict)
                            for r in self.rows], reference)

    def csv_text(self) -> str:
        """The table as CSV; a text cell that a spreadsheet would run as a formula (it starts
        with ``=``, ``+``, ``-`` or ``@``) is quoted with a leading apostrophe."""
        frame = pd.DataFrame([vars(r) for r in self.rows], columns=list(TABLE_COLUMNS))
        for column in ("name", "verdict"):
            frame[column] = frame[column].map(lambda text: f"'{text}" if text[:1] in FORMULA_STARTS else text)
        return frame.to_csv(index=False)

    def write_files(self) -> tuple[str, str]:
        """The CSV and JSON downloads, as files the app serves (``qkvae_app.files``)."""
        return files.result_files({"explore.csv": self.csv_text(),
                                   "explore.json": json.dumps(self.results_json(), indent=1) + "\n"})


def pair_tile(original: np.ndarray, reconstruction: np.ndarray, gap: int = 2) -> np.ndarray:
    """An original and its reconstruction side by side, a white gap between them."""
    h = original.shape[0]
    return np.concatenate([original, np.full((h, gap, 3), 255, np.uint8), reconstruction], axis=1)


Progress = Callable[[float, str], None]  # (fraction done, what is running), e.g. a gr.Progress


def explore(paths, reconstruct: Callable[[FittedImages], SetReconstruction],
            summarize: Callable[[ReconstructedImage], ImageSummary], size: int = 96,
            mode: str = "resize", progress: Progress | None = None) -> Exploration:
    """Reconstruct and score every image of the upload ``paths`` (see ``open_uploads``), fit to
    ``size`` x ``size`` with ``mode``.

    The upload is read ``CHUNK`` images at a time (``qkvae.stream.read_chunks``) and each chunk
    goes to ``reconstruct``, which runs the model: ``reconstruct_set`` with the model, or
    ``qkvae_app.gpu.reconstruct_images`` (a GPU call on ZeroGPU); ``progress`` hears before each
    call. ``summarize(row)`` is ``analysis.report.image_summary`` with the OOD reference (and
    config) bound: it adds the rate and OOD score to the row's PSNR and SSIM; ``expectation`` adds
the PSNR expected for the image's detail and the residual. Raises
    ``UploadError`` for a refused upload, ``qkvae.SourceError`` when no image could be decoded.
    """
    report = progress if progress is not None else (lambda fraction, desc: None)  # a gr.Progress is falsy
    source = open_uploads(paths)
    n, rows, images, done = len(source), [], [], []

    def reconstructed() -> Iterator[SetReconstruction]:
        for fitted in read_chunks(source, CHUNK, size, mode):
            report(fitted.chunk.start / n, f"reconstructing: {fitted.chunk.start} of {n} images read")
            yield reconstruct(fitted)

    try:
        with closing(ahead(reconstructed())) as chunks:  # the next chunk runs while this one is scored
            for chunk in chunks:
                done.append(chunk)
                for row in chunk.rows():
                    summary, expected = summarize(row), expectation(row.original, row.psnr)
                    rows.append(Row(row.name, row.psnr, row.ssim, expected.expected_psnr, expected.psnr_residual,
                                    *ood_reading(summary)))
                    images.append({"name": row.name, **summary.to_json(), **asdict(expected)})
    finally:
        source.close()
    skipped = [s for d in done for s in d.skipped]
    if not rows:
        raise SourceError(f"none of the entries of {source.description} could be decoded"
                          + (f" (first: {skipped[0].reason})" if skipped else ""))
    return Exploration(rows=rows, images=images, originals=np.concatenate([d.originals for d in done]),
                       reconstructions=np.concatenate([d.reconstructions for d in done]),
                       skipped=skipped + source.unlisted)
