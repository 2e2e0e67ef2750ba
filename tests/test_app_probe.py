"""The LM probe tab's handler called as a plain function: a seed gives the same images, which are
the app model's decode of the probe's grids; a missing probe or bad input gets a clear message."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from qkvae_app import gpu
from qkvae_app.probe_tab import PROBE_FOLDER, ProbeTab, probe_note
from qkvae_app.settings import Settings
from qkvae_app.studio import Studio

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def studio(weights_dir, tmp_path_factory):
    yield Studio.load(Settings(weights=weights_dir, data=tmp_path_factory.mktemp("no-data")))
    gpu._loaded.clear()


def tiny_probe(folder, **config):
    """A tiny random probe saved in ``folder``, with the shipped probe's numbers beside it."""
    pytest.importorskip("transformers")
    from qkvae.lm.probe import Probe, ProbeConfig, save_probe

    save_probe(Probe(ProbeConfig(hidden=16, layers=1, attention_heads=2, intermediate=32, window=64, **config)), folder)
    shutil.copy(PROBE_FOLDER / "comparison.json", folder)
    return folder


@pytest.fixture(scope="module")
def probe_folder(tmp_path_factory):
    return tiny_probe(tmp_path_factory.mktemp("probe"))


def test_a_seed_gives_the_same_images_decoded_by_the_apps_model(studio, probe_folder):
    tab = ProbeTab(studio, probe_folder)
    view = tab.sample(3, 2)
    images = np.stack([image for image, _ in view.probe_gallery])
    assert images.shape == (2, 96, 96, 3) and images.dtype == np.uint8
    assert [caption for _, caption in view.probe_gallery] == ["seed 3, sample 1", "seed 3, sample 2"]
    assert view.probe_summary.startswith("2 samples from seed 3 in ")
    np.testing.assert_array_equal(images, np.stack([image for image, _ in tab.sample(3, 2).probe_gallery]))
    from qkvae.lm.probe import sample_grids

    np.testing.assert_array_equal(images, gpu.decode(sample_grids(tab._probe, 2, 3)))
    assert not np.array_equal(images[:1], np.stack([image for image, _ in tab.sample(4, 1).probe_gallery]))


def test_the_note_reads_the_probes_numbers(probe_folder):
    bits = json.loads((probe_folder / "comparison.json").read_text())
    note = probe_note(probe_folder)
    assert "1-layer, 16-wide" in note
    for key in ("probe_bits", "context_prior_bits", "unigram_bits"):
        assert f"{bits[key]:.2f}" in note


def test_a_missing_probe_or_bad_input_is_refused_clearly(studio, tmp_path):
    assert probe_note(tmp_path) == f"No probe LM in {tmp_path} (missing config.json, model.safetensors, comparison.json)."
    with pytest.raises(gr.Error, match="No probe LM in"):
        ProbeTab(studio, tmp_path).sample(0, 1)
    tab = ProbeTab(studio, PROBE_FOLDER)
    with pytest.raises(gr.Error, match="1 to 4"):
        tab.sample(0, 5)
    with pytest.raises(gr.Error, match="whole number"):
        tab.sample(-1, 1)
    assert tab._probe is None  # refused before loading anything
    with pytest.raises(gr.Error, match=r"levels \(8, 5, 5, 5\) at 96 px; the app's model has \(8, 8, 8, 6, 5\)"):
        ProbeTab(studio, tiny_probe(tmp_path / "other", levels=(8, 5, 5, 5))).sample(0, 1)


def test_without_transformers_the_note_says_how_to_install_it(monkeypatch):
    from qkvae_app import probe_tab

    monkeypatch.setattr(probe_tab.importlib.util, "find_spec", lambda name: None)
    assert probe_note(PROBE_FOLDER) == "The probe LM needs transformers, the lm extra: pip install '.[lm]'."


def test_the_app_builds_without_importing_transformers():
    code = "import sys, qkvae_app.demo, qkvae_app.probe_tab; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"
