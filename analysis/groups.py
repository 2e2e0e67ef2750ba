"""Images in groups: each image's group from its name, and per group how it reconstructs and scores.

The rule (``group_of``): an image's group is its folder, the name without its file name
(``faces/a.png`` -> ``faces``; ``set.zip/faces/a.png`` -> ``set.zip/faces``); an image without a
folder is grouped by its file name's prefix before the first ``_`` or ``-`` (``face_01.png`` ->
``face``); one with neither is in ``other``. ``analysis.evaluate`` groups by folders only
(``folder_of``; images at the top of the data folder are in ``TOP``), and only when there are at
least two.

``group_table`` gives per group the image count, the mean PSNR, SSIM and PSNR residual
(``analysis.complexity``), the median OOD score, the share flagged (the verdict "out of
distribution"), and the AUROC of the OOD score for telling the group (higher) from a reference
group the caller picks (``analysis.ood.auroc``; 0.5 is chance).
"""

import re
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath

import numpy as np

from analysis.ood import OUT_OF_DISTRIBUTION, auroc

OTHER = "other"  # the group of a name with neither a folder nor a prefix
TOP = "(top folder)"  # analysis.evaluate's group of the images outside any subfolder
PREFIX = re.compile(r"^(.+?)[_-]")


def folder_of(name: str) -> str | None:
    """The folder part of ``name`` (``a/b/x.png`` -> ``a/b``), or None for a bare file name."""
    parent = str(PurePosixPath(name.replace("\\", "/")).parent)
    return None if parent == "." else parent


def group_of(name: str) -> str:
    """The folder of ``name``, else its file name's prefix before the first ``_`` or ``-``, else ``OTHER``."""
    folder = folder_of(name)
    if folder is not None:
        return folder
    prefix = PREFIX.match(PurePosixPath(name).name)
    return prefix.group(1) if prefix else OTHER


class GroupError(ValueError):
    """A reference group that is not one of the groups."""


@dataclass(frozen=True)
class GroupedImage:
    """What ``group_table`` reads of one image."""

    group: str
    psnr: float
    ssim: float
    psnr_residual: float
    ood_score: float | None  # None without an OOD reference
    verdict: str  # the OOD verdict's label, "" without a reference


@dataclass(frozen=True)
class GroupRow:
    group: str
    count: int
    psnr: float  # mean, dB
    ssim: float  # mean
    psnr_residual: float  # mean, dB: below 0 when the group does worse than photos as detailed
    ood_score: float | None  # median; None without scores
    flagged: float | None  # share with the verdict "out of distribution"; None without scores
    auroc: float | None  # OOD score, this group against the reference group; None for the reference itself


@dataclass(frozen=True)
class GroupTable:
    reference: str | None  # the group the AUROCs are against
    rows: list[GroupRow]

    @property
    def names(self) -> list[str]:
        return [r.group for r in self.rows]

    def to_json(self) -> dict:
        return {"reference": self.reference, "groups": [asdict(r) for r in self.rows]}


def largest_group(groups: list[str]) -> str:
    """The group with the most images (the first by name among equals): the default reference."""
    names, counts = np.unique(groups, return_counts=True)
    return str(names[np.argmax(counts)])


def _scores(images: list[GroupedImage]) -> np.ndarray:
    return np.array([im.ood_score for im in images if im.ood_score is not None], dtype=np.float64)


def group_table(images: list[GroupedImage], reference: str | None = None) -> GroupTable:
    """Per group (sorted by name), its row of the table; the AUROCs against ``reference`` (default:
    ``largest_group``). Raises ``GroupError`` for a reference that is not one of the groups."""
    if not images:
        raise ValueError("group_table needs at least one image")
    by_group: dict[str, list[GroupedImage]] = {}
    for im in images:
        by_group.setdefault(im.group, []).append(im)
    reference = largest_group([im.group for im in images]) if reference is None else reference
    if reference not in by_group:
        raise GroupError(f"the reference group {reference!r} is not one of the groups: {', '.join(sorted(by_group))}")
    reference_scores = _scores(by_group[reference])
    rows = []
    for name in sorted(by_group):
        members = by_group[name]
        scores = _scores(members)
        scored = scores.size > 0
        rows.append(GroupRow(
            group=name, count=len(members),
            psnr=float(np.mean([m.psnr for m in members])), ssim=float(np.mean([m.ssim for m in members])),
            psnr_residual=float(np.mean([m.psnr_residual for m in members])),
            ood_score=float(np.median(scores)) if scored else None,
            flagged=float(np.mean([m.verdict == OUT_OF_DISTRIBUTION for m in members if m.ood_score is not None]))
            if scored else None,
            auroc=auroc(reference_scores, scores) if scored and reference_scores.size and name != reference else None,
        ))
    return GroupTable(reference, rows)


def from_entry(group: str, entry: dict) -> GroupedImage:
    """A ``results.json`` image entry (``analysis.evaluate``) as a ``GroupedImage`` of ``group``."""
    score = entry.get("ood_score")
    return GroupedImage(group, entry["psnr"], entry["ssim"], entry["psnr_residual"],
                        None if score is None else score["score"], "" if score is None else score["verdict"]["label"])


def check_reference_group(reference: str | None, names: list[str]) -> None:
    """Before a pass: raise ``GroupError`` unless ``reference`` (when given) is the folder of one of ``names``."""
    folders = {folder_of(n) or TOP for n in names}
    if reference is not None and reference not in folders:
        raise GroupError(f"the reference group {reference!r} is not a folder of the data: {', '.join(sorted(folders))}")


def folder_groups(entries: list[dict], reference: str | None = None) -> GroupTable | None:
    """``results.json``'s ``groups``: the table of ``entries`` grouped by their folders (``TOP``
    for those outside any), or None with fewer than two groups."""
    folders = [folder_of(e["name"]) or TOP for e in entries]
    if len(set(folders)) < 2:
        return None
    return group_table([from_entry(f, e) for f, e in zip(folders, entries, strict=True)], reference)
