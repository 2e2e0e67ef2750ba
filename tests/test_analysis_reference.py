"""analysis.reference: smoothing, surprisal, OOD scores, AUROC, verdicts, the counts file and its CLI."""

import math

import numpy as np
import pytest

from analysis.reference import (DEFAULT_ALPHA, ReferenceFileError, auroc, calibrate, load_reference, main,
                                ood_score, ood_verdict, save_reference, surprisal_map, token_probabilities)


def test_token_probabilities_smooth_unseen_codes():
    counts = np.array([6, 2, 0, 0])
    p = token_probabilities(counts, alpha=0.5)
    assert p.sum() == pytest.approx(1.0)
    assert p[2] == p[3] == pytest.approx(0.5 / 10)  # (0 + a) / (8 + 4a)
    assert p[0] == pytest.approx(6.5 / 10)
    np.testing.assert_allclose(token_probabilities(counts, alpha=0), [0.75, 0.25, 0, 0])
    with pytest.raises(ValueError):
        token_probabilities(counts, alpha=-1)
    assert DEFAULT_ALPHA == 0.5


def test_surprisal_of_a_known_distribution():
    probs = np.array([0.5, 0.25, 0.125, 0.125])
    ids = np.array([0, 1, 2, 3] * 576)  # 2304 tokens
    s = surprisal_map(ids, probs)
    assert s.shape == (48, 48)
    np.testing.assert_allclose(s[0, :4], [1, 2, 3, 3])
    assert s.mean() == pytest.approx(2.25)
    with pytest.raises(ValueError, match="square"):
        surprisal_map([0, 1, 2], probs)


def test_kl_is_zero_for_identical_histograms():
    ids = np.array([0, 0, 1, 2, 2, 2, 3, 3])
    probs = token_probabilities(np.bincount(ids, minlength=6), alpha=0)
    score = ood_score(ids, probs)
    assert score["kl"] == pytest.approx(0.0, abs=1e-12)
    assert score["mean_surprisal"] == pytest.approx(-np.log2(probs[ids]).mean())


def test_kl_and_mean_surprisal_of_a_skewed_image():
    probs = np.full(4, 0.25)
    score = ood_score([0, 0, 0, 0], probs)  # all mass on one code of a uniform reference
    assert score["mean_surprisal"] == pytest.approx(2.0)
    assert score["kl"] == pytest.approx(2.0)  # log2(1 / 0.25)
    score = ood_score([0, 1, 2, 3], probs)
    assert score == pytest.approx({"mean_surprisal": 2.0, "kl": 0.0})


def test_auroc_of_separated_reversed_identical_and_tied_scores():
    assert auroc([1, 2, 3], [4, 5]) == 1.0
    assert auroc([4, 5], [1, 2, 3]) == 0.0
    assert auroc([1, 2, 3], [1, 2, 3]) == pytest.approx(0.5)
    assert auroc([0, 2], [1, 3]) == pytest.approx(0.75)  # 3 of 4 pairs ordered
    with pytest.raises(ValueError):
        auroc([], [1])


def test_calibration_and_verdicts():
    scores = np.arange(1, 101, dtype=float)
    unusual, outside = calibrate(scores)
    assert unusual == pytest.approx(95.05) and outside == 100
    assert ood_verdict(50, (unusual, outside)).startswith("in distribution")
    assert ood_verdict(97, (unusual, outside)).startswith("unusual")
    assert ood_verdict(101, (unusual, outside)).startswith("out of distribution")


def test_reference_file_round_trip_and_errors(tmp_path):
    reference = {"counts": np.arange(5), "num_images": 3, "weights_name": "w.safetensors",
                 "ood_thresholds": np.array([1.0, 2.0])}
    loaded = load_reference(save_reference(reference, tmp_path / "sub" / "ref.npz"))
    np.testing.assert_array_equal(loaded["counts"], np.arange(5))
    assert loaded["num_images"] == 3 and loaded["weights_name"] == "w.safetensors"
    assert tuple(loaded["ood_thresholds"]) == (1.0, 2.0)
    with pytest.raises(ReferenceFileError, match="python -m analysis.reference"):
        load_reference(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ReferenceFileError, match="not a reference"):
        load_reference(tmp_path / "bad.npz")


@pytest.mark.parametrize("data", ["missing", "empty", "bad.bin"])
def test_cli_reports_bad_data_in_one_line(tmp_path, weights_dir, capsys, data):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.bin").write_bytes(b"\0" * 1000)
    code = main(["--data", str(tmp_path / data), "--out", str(tmp_path / "ref.npz"), "--weights", str(weights_dir)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "ref.npz").exists()


def test_max_surprisal_of_an_unseen_code_is_finite():
    counts = np.zeros(15360)
    counts[0] = 13_800_000
    p = token_probabilities(counts)
    assert -math.log2(p[1]) == pytest.approx(math.log2((13_800_000 + 0.5 * 15360) / 0.5))
