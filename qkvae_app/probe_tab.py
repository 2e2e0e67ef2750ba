"""The LM probe tab: images sampled from the shipped probe LM (``assets/lm_probe``), with a seed.

The probe (``qkvae.lm.probe``) samples token grids on the CPU with one torch thread; the app's
model decodes them (``qkvae_app.gpu.decode``). The probe needs the ``lm`` extra
(``transformers``): it is imported and loaded on the first click, so the app starts without it,
and without it (or without the probe's files) the tab says so and the button is refused.
``ProbeTab(studio)`` holds the handler; ``build`` lays the tab out and wires its event.
"""

import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from qkvae.weights import ASSETS
from qkvae_app import gpu
from qkvae_app.errors import refuse
from qkvae_app.outputs import Outputs
from qkvae_app.studio import Studio

PROBE_FOLDER = ASSETS / "lm_probe"
MAX_SAMPLES = 4
SECONDS_PER_DRAW = 3  # 1 or 2 images sampled together (2.8 s, 2.9 s), one torch thread, the shared 2-core machine


@dataclass(frozen=True)
class ProbeView(Outputs):
    probe_gallery: list[tuple[np.ndarray, str]]  # decoded samples, each captioned with its seed and number
    probe_summary: str  # how many, which seed, how long


def probe_missing(folder: Path) -> str | None:
    """Why the probe cannot run here (its files or ``transformers`` missing), or None."""
    absent = [name for name in ("config.json", "model.safetensors", "comparison.json") if not (folder / name).is_file()]
    if absent:
        return f"No probe LM in {folder} (missing {', '.join(absent)})."
    if importlib.util.find_spec("transformers") is None:
        return "The probe LM needs transformers, the lm extra: pip install '.[lm]'."
    return None


def probe_note(folder: Path) -> str:
    """One line: what the probe is and its held-out bits per code beside the context prior's and the unigram's."""
    missing = probe_missing(folder)
    if missing is not None:
        return missing
    config = json.loads((folder / "config.json").read_text())
    bits = json.loads((folder / "comparison.json").read_text())
    return (f"A {config['layers']}-layer, {config['hidden']}-wide causal transformer trained on the tokens of "
            f"{bits['train_images']:,} photos ({folder.name}/MODEL_CARD.md): {bits['probe_bits']:.2f} bits per code "
            f"on {bits['val_images']} held-out photos, against {bits['context_prior_bits']:.2f} for the context "
            f"prior and {bits['unigram_bits']:.2f} for the unigram. A draw (the images "
            f"are sampled together) takes about {SECONDS_PER_DRAW} s on one CPU thread. A probe, not a generator: colours and textures, no objects.")


class ProbeTab:
    def __init__(self, studio: Studio, folder: Path = PROBE_FOLDER):
        self.studio, self.folder = studio, Path(folder)
        self._probe = None  # loaded on the first sample

    def _load(self):
        missing = probe_missing(self.folder)
        if missing is not None:
            raise refuse("No probe LM", missing)
        if self._probe is None:
            # needs transformers: imported only here
            from qkvae.lm.probe import load_probe

            self._probe = load_probe(self.folder)
        return self._probe

    def sample(self, seed, count) -> ProbeView:
        """A seed and a count (1-4) -> that many images sampled from the probe, decoded by the app's model."""
        model = self.studio.require_model()
        if seed is None or seed < 0 or seed != int(seed):
            raise refuse("Seed", "The seed must be a whole number, 0 or more.")
        if count is None or not 1 <= count <= MAX_SAMPLES or count != int(count):
            raise refuse("Count", f"Sample 1 to {MAX_SAMPLES} images.")
        probe = self._load()
        if probe.config.qkvae.levels != model.config.levels or probe.config.image_size != model.config.image_size:
            raise refuse("The probe does not fit this model",
                         f"The probe models tokens of levels {probe.config.qkvae.levels} at {probe.config.image_size} "
                         f"px; the app's model has {model.config.levels} at {model.config.image_size} px.")
        from qkvae.lm.probe import sample_grids

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small steps: a second thread only waits (the probe trains with one too)
        start = time.perf_counter()
        try:
            grids = sample_grids(probe, int(count), int(seed))
        finally:
            torch.set_num_threads(threads)
        seconds = time.perf_counter() - start
        images = gpu.decode(grids)
        return ProbeView([(image, f"seed {int(seed)}, sample {k + 1}") for k, image in enumerate(images)],
                         f"{len(images)} sample{'s' if len(images) > 1 else ''} from seed {int(seed)} "
                         f"in {seconds:.1f} s (one torch thread).")

    def build(self) -> "ProbeTab":
        """Lay the tab out (inside ``gr.Tabs``) and wire its event."""
        with gr.Tab("LM probe", id="probe"):
            gr.Markdown(probe_note(self.folder), elem_classes="qk-note")
            with gr.Row():
                seed = gr.Number(0, label="Seed", precision=0, minimum=0)
                count = gr.Slider(1, MAX_SAMPLES, value=2, step=1, label="Count")
                button = gr.Button("Sample from the probe LM", variant="primary")
            self.probe_summary = gr.Markdown()
            self.probe_gallery = gr.Gallery(label="Samples from the probe LM, decoded by the app's model",
                                            columns=MAX_SAMPLES, height=280, object_fit="contain",
                                            elem_id="probe-gallery")
        outputs = ProbeView.components(self)
        button.click(ProbeView.handler(self.sample, len(outputs)), [seed, count], outputs, api_name="sample_probe",
                     api_visibility="undocumented", concurrency_limit=1)
        return self
