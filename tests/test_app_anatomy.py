"""The failure-anatomy handlers called as plain functions: the Reconstruct tab's stress test and
expected PSNR, and the Explore tab's groups."""

import shutil

import gradio as gr
import numpy as np
import pytest
from matplotlib.figure import Figure

from analysis.complexity import expectation
from analysis.psnr_reference import load_psnr_reference
from qkvae.metrics import psnr
from qkvae_app import gpu
from qkvae_app.demo import build_demo
from qkvae_app.groups_view import GROUP_COLUMNS, REFERENCE_LABEL
from qkvae_app.settings import EXAMPLES_DIR, Settings
from tests.helpers import two_folder_zip

CAT = EXAMPLES_DIR / "photo-cat.png"


@pytest.fixture(scope="module")
def app(weights_dir, ood_reference_path, tmp_path_factory):
    data = tmp_path_factory.mktemp("anatomy") / "data"
    data.mkdir()
    shutil.copy(CAT, data)
    yield build_demo(Settings(weights=weights_dir, reference=ood_reference_path, data=data))
    gpu._loaded.clear()


@pytest.fixture(scope="module")
def stressed(app):
    return app.reconstruct.stress({"path": str(CAT), "orig_name": "my cat.png"}, "resize")


def test_stress_gives_the_five_families_for_the_open_image(app, stressed):
    curves = stressed.stress_curves
    assert curves["name"] == "my cat.png" and "my cat.png" in stressed.stress_summary
    assert [p["scale"] for p in curves["scale"]] == [0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0]
    assert curves["shift"][0] == {"pixels": 0, "agreement": 1.0, "digit_change": [0.0] * 5}
    assert len(curves["corruption"]) >= 7 * 5 and {p["severity"] for p in curves["corruption"]} == {1, 2, 3, 4, 5}
    assert {p["kind"] for p in curves["token_noise"]} == {"digit", "random"}
    reconstructed = app.reconstruct.reconstruct(str(CAT), "resize")
    assert curves["psnr"] == pytest.approx(reconstructed.psnr, abs=0.005)  # the same model input, the same ids
    assert curves["quantization"]["psnr_quantized"] == curves["psnr"]
    for figure in (stressed.stress_scale, stressed.stress_shift, stressed.stress_corruption, stressed.stress_token_noise):
        assert isinstance(figure, Figure) and figure.axes
    assert stressed.rounding_map.shape == (48, 48, 3)


def test_stress_is_one_endpoint_with_one_output_per_field(app, stressed):
    served = app.blocks.fns[next(i for i, fn in app.blocks.fns.items() if fn.api_name == "stress")]
    assert len(served.outputs) == len(stressed.values())
    assert served.fn.__doc__.startswith("Stress-test one image") and "Returns:" in served.fn.__doc__  # the API's docs


def test_stress_without_an_image_or_with_a_bad_one_explains(app, tmp_path):
    with pytest.raises(gr.Error, match="Open an image in the Reconstruct tab first"):
        app.reconstruct.stress(None, "resize")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(gr.Error, match="not an image"):
        app.reconstruct.stress(str(text), "resize")


def test_reconstruct_says_how_the_psnr_compares_with_a_photo_as_detailed(app):
    view = app.reconstruct.reconstruct(str(CAT), "resize")
    e = expectation(view.model_input, psnr(view.model_input, view.reconstruction))
    side = "worse" if e.psnr_residual < 0 else "better"
    assert f"{abs(e.psnr_residual):.2f} dB {side}</b> than a photo this detailed" in view.expected
    assert f"expected {e.expected_psnr:.2f} dB" in view.expected


def test_explore_groups_the_folders_of_a_zip(app, tmp_path):
    result = app.explore.explore_uploads([str(two_folder_zip(tmp_path / "set.zip", EXAMPLES_DIR))], "resize", "residual").explored
    view = app.explore.groups.show(result)
    table = view.group_table
    assert list(table.columns) == list(GROUP_COLUMNS.values())
    assert table["group"].tolist() == ["oods", "photos"] and table["images"].tolist() == [4, 5]
    assert view.group_reference.value == "photos" and view.group_reference.choices == [("oods", "oods"),
                                                                                      ("photos", "photos")]
    photos = [r for r in result.rows if r.name.startswith("photos/")]
    assert table["PSNR (dB)"][1] == round(np.mean([r.psnr for r in photos]), 2)
    assert table["residual (dB)"][1] == round(np.mean([r.psnr_residual for r in photos]), 2)
    assert np.isnan(table["AUROC vs reference"][1]) and 0 <= table["AUROC vs reference"][0] <= 1
    assert sorted(view.group_scatter["group"]) == ["oods"] * 4 + ["photos"] * 5
    lines = view.group_distribution
    assert set(lines["group"]) == {"oods", "photos", REFERENCE_LABEL}
    assert lines[lines["group"] == REFERENCE_LABEL]["PSNR (dB)"].tolist() == list(load_psnr_reference().psnr)

    against_oods = app.explore.groups.show(result, "oods").group_table
    assert np.isnan(against_oods["AUROC vs reference"][0])
    assert against_oods["AUROC vs reference"][1] == pytest.approx(1 - table["AUROC vs reference"][0], abs=1e-3)
    assert app.explore.groups.show(None) is None
