"""Images in groups: the naming rule, the per-group table with its AUROCs, results.json's groups
from ``analysis.evaluate``, and the STL-10 PSNR reference."""

import json

import numpy as np
import pytest
from PIL import Image

from analysis import evaluate, psnr_reference
from analysis.groups import (
    OTHER,
    TOP,
    GroupedImage,
    GroupError,
    check_reference_group,
    folder_groups,
    group_of,
    group_table,
)
from analysis.ood import OUT_OF_DISTRIBUTION, UNUSUAL
from qkvae.pipeline import reconstruct_set
from qkvae.stream import FittedImages


@pytest.mark.parametrize(("name", "group"), [
    ("faces/a.png", "faces"), ("set.zip/faces/a_1.png", "set.zip/faces"), ("a/b/c.png", "a/b"),
    ("face_01.png", "face"), ("photo-cat.png", "photo"), ("x_ray-3.png", "x"), ("cat.png", OTHER),
])
def test_the_group_is_the_folder_else_the_prefix_else_other(name, group):
    assert group_of(name) == group


def _image(group, psnr, score, verdict=UNUSUAL, residual=0.0):
    return GroupedImage(group, psnr, 0.5, residual, score, verdict)


def test_the_table_holds_each_groups_means_share_flagged_and_auroc():
    images = [_image("stl", 30, 0.1), _image("stl", 32, 0.2), _image("stl", 34, 0.3, residual=1.0),
              _image("xray", 38, 0.9, OUT_OF_DISTRIBUTION, -2.0), _image("xray", 40, 0.8),
              _image("mixed", 25, 0.15), _image("mixed", 26, 0.25, OUT_OF_DISTRIBUTION)]
    table = group_table(images, reference="stl")
    rows = {r.group: r for r in table.rows}
    assert table.names == ["mixed", "stl", "xray"] and table.reference == "stl"
    assert (rows["stl"].count, rows["stl"].psnr, rows["stl"].ood_score) == (3, 32, pytest.approx(0.2))
    assert rows["stl"].psnr_residual == pytest.approx(1 / 3) and rows["xray"].psnr_residual == -1.0
    assert rows["xray"].flagged == 0.5 and rows["stl"].flagged == 0.0
    assert rows["xray"].auroc == 1.0  # every x-ray scores above every reference image
    assert rows["mixed"].auroc == pytest.approx(0.5)  # 0.15 beats 1 of 3, 0.25 beats 2 of 3
    assert rows["stl"].auroc is None  # the reference against itself
    assert group_table(images).reference == "stl"  # by default the largest group
    assert group_table(images, reference="xray").rows[1].auroc == 0.0
    assert json.loads(json.dumps(table.to_json()))["groups"][2]["auroc"] == 1.0


def test_without_scores_the_ood_columns_are_empty_and_a_bad_reference_is_refused():
    images = [_image("a", 30, None, ""), _image("b", 31, None, "")]
    rows = group_table(images).rows
    assert [(r.ood_score, r.flagged, r.auroc) for r in rows] == [(None, None, None)] * 2
    with pytest.raises(GroupError, match="'c' is not one of the groups: a, b"):
        group_table(images, reference="c")


def test_folder_groups_need_two_folders_and_put_loose_images_in_the_top_group():
    entry = {"psnr": 30.0, "ssim": 0.9, "psnr_residual": -1.0,
             "ood_score": {"score": 0.5, "verdict": {"label": OUT_OF_DISTRIBUTION}}}
    assert folder_groups([{"name": "a.png", **entry}, {"name": "b.png", **entry}]) is None
    assert folder_groups([{"name": "x/a.png", **entry}, {"name": "x/b.png", **entry}]) is None
    table = folder_groups([{"name": "a.png", **entry}, {"name": "x/b.png", **entry}, {"name": "x/c.png", **entry}])
    assert table.names == [TOP, "x"] and table.reference == "x" and table.rows[0].flagged == 1.0
    check_reference_group("x", ["a.png", "x/b.png"])
    with pytest.raises(GroupError, match="not a folder of the data"):
        check_reference_group("y", ["a.png", "x/b.png"])


def test_evaluate_writes_groups_for_a_folder_with_subfolders(model, rgb, tmp_path, weights_dir, capsys):
    names = ["plain/a.png", "plain/b.png", "noisy/c.png"]
    noisy = np.clip(rgb.astype(int) + np.random.default_rng(0).integers(-60, 60, rgb.shape), 0, 255).astype(np.uint8)
    images = FittedImages(names, np.stack([rgb, rgb[::-1], noisy]), [None] * 3, [])
    results, _ = evaluate.evaluate(model, [reconstruct_set(model, images)], precision_images=0, stability=False,
                                   reference_group="plain")
    groups = {g["group"]: g for g in results["groups"]["groups"]}
    assert results["groups"]["reference"] == "plain" and sorted(groups) == ["noisy", "plain"]
    assert groups["plain"]["count"] == 2
    assert groups["plain"]["psnr"] == pytest.approx(np.mean([im["psnr"] for im in results["images"][:2]]))
    assert groups["noisy"]["psnr_residual"] == pytest.approx(results["images"][2]["psnr_residual"])
    assert groups["noisy"]["auroc"] is None  # no OOD reference, no scores

    for name in names:  # the CLI refuses a reference group that is no folder before any work
        (tmp_path / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(tmp_path / "data" / name)
    code = evaluate.main(["--data", str(tmp_path / "data"), "--weights", str(weights_dir), "--out", str(tmp_path / "o"),
                          "--reference-group", "photos"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: the reference group 'photos'") and err.count("\n") == 1


def test_the_shipped_stl10_psnr_reference_is_a_rising_distribution_of_the_shipped_weights():
    from qkvae.weights import load_qkvae, weights_fingerprint

    ref = psnr_reference.load_psnr_reference()
    assert ref.quantiles == psnr_reference.QUANTILES and ref.images == 80
    assert np.all(np.diff(ref.psnr) >= 0) and 20 < ref.psnr[10] < 45
    assert ref.weights_sha256 == weights_fingerprint(load_qkvae(None, device="cpu"))[1]
    assert psnr_reference.psnr_quantiles([1, 2, 3], (0, 0.5, 1)) == [1, 2, 3]
