"""QKVAE Studio: see what the QKVAE-1m tokenizer keeps and loses, one image or a dataset at a time.

    python app.py        # then open http://127.0.0.1:7860

Settings come from the environment: QKVAE_WEIGHTS, QKVAE_DATA, QKVAE_DATA_SPLIT, QKVAE_REFERENCE
(``qkvae_app/settings.py``). The page is built by ``qkvae_app.demo.build_demo``, one builder per
tab; the model runs only inside ``qkvae_app.gpu``'s functions, GPU calls on a ZeroGPU Space.
"""

from qkvae_app import gpu  # noqa: F401, I001 — first: on ZeroGPU, `spaces` must come before any CUDA work

from qkvae_app import files
from qkvae_app.demo import build_demo, launch_options
from qkvae_app.settings import Settings

demo = build_demo(Settings.from_env()).blocks  # a Space's runner looks for `demo`

if __name__ == "__main__":
    files.start_pruning()
    demo.launch(**launch_options())
