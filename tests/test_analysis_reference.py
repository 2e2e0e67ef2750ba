"""analysis.reference: the held-out split, the CLI's file, and every way a file is refused."""

import numpy as np
import pytest
from PIL import Image

from analysis.ood import TESTS, OODReference
from analysis.reference import (FORMAT, HOLDOUT_FRACTION, REGENERATE, ReferenceFileError, held_out, load_photos,
                                load_reference, main, save_reference)
from qkvae.weights import WEIGHTS_NAME, file_sha256


def test_held_out_split_is_a_fixed_share_by_name():
    names = [f"imagenet_{i:05d}.jpg" for i in range(4000)]
    share = np.mean([held_out(n) for n in names])
    assert share == pytest.approx(HOLDOUT_FRACTION, abs=0.02)
    assert [held_out(n) for n in names[:50]] == [held_out(n) for n in names[:50]]  # no state, no order


def test_only_photos_with_the_prefix_calibrate_and_held_out_ones_are_never_fit(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    names = [f"{source}_{i:03d}.png" for source in ("imagenet", "catsdogs") for i in range(20)]
    for name in names:
        Image.new("RGB", (120, 100), (10, 20, 30)).save(folder / name)
    fitting, calibration = load_photos(folder, 96, hold_out=True, prefix="imagenet_")
    held = [n for n in names if held_out(n)]
    assert len(fitting) == len(names) - len(held)
    assert len(calibration) == 2 * sum(n.startswith("imagenet_") for n in held)
    _, everything = load_photos(folder, 96, hold_out=False, prefix="")
    assert everything.shape == (2 * len(names), 96, 96, 3)


def test_the_cli_file_loads_for_its_weights_and_scores(ood_reference_path, weights_dir, rgb):
    sha = file_sha256(weights_dir / WEIGHTS_NAME)
    reference = load_reference(ood_reference_path, weights_sha256=sha)
    assert isinstance(reference, OODReference)
    assert reference.weights_sha256 == sha and reference.data_name == "train"
    assert reference.num_images + int(np.sum([held_out(f"photo_{i:03d}.png") for i in range(24)])) == 24
    held = sum(held_out(f"photo_{i:03d}.png") for i in range(24))
    assert len(reference.calibration.values) == 2 * (12 + held)  # resized and cropped
    assert reference.calibration.values.shape[1] == len(TESTS)
    unusual, outside = reference.calibration.thresholds
    assert 0 <= unusual <= outside
    ids = np.random.default_rng(0).integers(0, 15360, 2304)
    score = reference.score(rgb, ids)
    assert score.score >= 0 and set(score.percentiles) == {t.name for t in TESTS}
    assert reference.token_map(rgb, ids).shape == (48, 48)


def test_save_and_load_round_trip(ood_reference_path, tmp_path, rgb):
    reference = load_reference(ood_reference_path)
    again = load_reference(save_reference(reference, tmp_path / "sub" / "again.npz"))
    ids = np.random.default_rng(1).integers(0, 15360, 2304)
    assert again.score(rgb, ids) == reference.score(rgb, ids)
    np.testing.assert_array_equal(again.token_map(rgb, ids), reference.token_map(rgb, ids))
    assert (again.calibration.thresholds, again.complexity_line, again.map_line) == (
        reference.calibration.thresholds, reference.complexity_line, reference.map_line)


def test_other_weights_are_refused_naming_both_hashes(ood_reference_path):
    reference = load_reference(ood_reference_path)
    with pytest.raises(ReferenceFileError) as e:
        load_reference(ood_reference_path, weights_sha256="f" * 64)
    assert reference.weights_sha256 in str(e.value) and "f" * 64 in str(e.value) and REGENERATE in str(e.value)


def test_missing_broken_and_outdated_files_are_refused(tmp_path):
    with pytest.raises(ReferenceFileError, match="python -m analysis.reference"):
        load_reference(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ReferenceFileError, match="not an OOD reference"):
        load_reference(tmp_path / "bad.npz")
    np.savez(tmp_path / "old.npz", counts=np.arange(5), ood_thresholds=np.array([4.2, 5.3]))  # the unigram file
    with pytest.raises(ReferenceFileError, match="another version"):
        load_reference(tmp_path / "old.npz")
    np.savez(tmp_path / "v2.npz", format=2, levels=np.array([8, 8, 8, 6, 5]))  # five tests, no photo statistics
    with pytest.raises(ReferenceFileError, match=f"format 2.*reads format {FORMAT}: regenerate it with"):
        load_reference(tmp_path / "v2.npz")
    np.savez(tmp_path / "partial.npz", format=FORMAT, levels=np.array([8, 8, 8, 6, 5]))
    with pytest.raises(ReferenceFileError, match="not a complete"):
        load_reference(tmp_path / "partial.npz")


@pytest.mark.parametrize("data", ["missing", "empty", "bad.bin"])
def test_cli_reports_bad_data_in_one_line(tmp_path, weights_dir, capsys, data):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.bin").write_bytes(b"\0" * 1000)
    code = main(["--data", str(tmp_path / data), "--calibration", str(tmp_path / data),
                 "--out", str(tmp_path / "ref.npz"), "--weights", str(weights_dir)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "ref.npz").exists()
