"""The app's typed API, which is also its MCP server's tool list: tokenize, decode, reconstruct,
stress and compare one image.

``Tools(studio, cache)`` holds them as plain methods with type hints and a docstring whose ``Args:``
lines Gradio turns into the API page's entry and the MCP tool's description and input schema;
``wire`` registers each with ``gr.api`` and leaves every other endpoint of the page (the tabs'
clicks, timers and helpers) callable but undocumented, so the API page and MCP list these five
only. An image comes in as a file (over MCP an http(s) URL or a ``data:image/...;base64,`` URI)
and is fit to the model's square as the Reconstruct tab fits it; one goes out as a PNG (over
MCP an image content and its URL). Ids are the grid, ``grid_size`` rows of ``grid_size`` ids
(48 x 48 for the shipped weights), row by row. Scores and summaries go out as JSON text: Gradio
6.31's MCP server writes every output that is not a file with ``str()`` (a ``gr.JSON`` output, a
``dict`` annotation or ``structured_output`` alike), which for a dict is Python's repr, not JSON.
The model runs only through ``qkvae_app.gpu``; ``compare_image`` takes checkpoint B from the
Compare tab's bounded ``CheckpointCache``, so B is loaded once, not on every call.

The tools run outside Gradio's queue (``queue=False``): on that path Gradio 6.31's MCP server
gives each output its own content, where through the queue it joins a result of several
outputs into one string.
"""

import json
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import gradio as gr
import numpy as np
from gradio.data_classes import FileData

from analysis.compare import SHIPPED_NAME, CompareError, checkpoint_name, compare_images
from analysis.stress import ImageStress
from qkvae import WeightsError
from qkvae.image import RESIZE_MODES, fit_rgb, open_rgb, to_tensor
from qkvae.stream import FittedImages
from qkvae.tokens import validate_indices
from qkvae_app import files, gpu
from qkvae_app.checkpoints import CheckpointCache
from qkvae_app.errors import refuse
from qkvae_app.studio import Studio

Fit = Literal[RESIZE_MODES]  # "resize", "center_crop", "pad": an enum in the tools' schemas


def _path_and_name(image: FileData | dict | str) -> tuple[str, str]:
    """Gradio's file payload (a dict, as ``gr.api`` passes it unprocessed), a ``FileData`` or a path
    -> (path on this server, the name the sender gave it)."""
    if isinstance(image, FileData):
        image = image.model_dump()
    if isinstance(image, dict):
        return image["path"], image.get("orig_name") or Path(image["path"]).name
    return str(image), Path(image).name


def _png(rgb: np.ndarray) -> FileData:
    return FileData(path=files.png_file(rgb), mime_type="image/png")


class Tools:
    def __init__(self, studio: Studio, cache: CheckpointCache):
        self.studio, self.cache = studio, cache

    def _fit(self, image, mode: str) -> tuple[np.ndarray, str]:
        """The image as the model takes it: uint8 (size, size, 3), and its name; a clear error otherwise."""
        model = self.studio.require_model()
        path, name = _path_and_name(image)
        try:
            return fit_rgb(np.asarray(open_rgb(path, name=name)), model.config.image_size, mode), name
        except (ValueError, OSError) as e:  # ImageError, an unknown mode, an unreadable file
            raise refuse("Cannot read this image", str(e)) from None

    def tokenize_image(self, image: FileData, mode: Fit = "resize") -> list[list[int]]:
        """Encode an image into QKVAE token ids: the grid of FSQ code ids, as rows of ids.

        Args:
            image: the image (PNG, JPEG, WebP...), any size; it is fit to the model's square (96x96 px for the shipped weights).
            mode: how it is fit: "resize" (stretch), "center_crop" or "pad" (grey borders).
        Returns:
            The grid of ids, grid_size rows of grid_size ids each (48 x 48 = 2,304 ids in 0..15,359 for the shipped weights).
        """
        rgb, _ = self._fit(image, mode)
        return gpu.encode(to_tensor(rgb).numpy()).tolist()

    def decode_ids(self, ids: list[list[int]]) -> FileData:
        """Decode a grid of QKVAE token ids into the image they describe.

        Args:
            ids: the grid of ids as tokenize_image returns it (48 rows of 48 ids in 0..15,359 for the shipped weights); a flat list of 2,304 ids works too.
        Returns:
            The decoded image, a PNG (96x96 px for the shipped weights).
        """
        config = self.studio.require_model().config
        try:
            grid = validate_indices(ids, config)
        except ValueError as e:  # TokenError, or a ragged list numpy cannot shape
            raise refuse("Cannot decode these ids", str(e)) from None
        return _png(gpu.decode(grid[None])[0])

    def reconstruct_image(self, image: FileData, mode: Fit = "resize") -> tuple[FileData, str]:
        """Encode an image into tokens and decode it back: what the tokenizer keeps, with its quality and how unusual the image is.

        Args:
            image: the image (PNG, JPEG, WebP...), any size; it is fit to the model's square (96x96 px for the shipped weights).
            mode: how it is fit: "resize" (stretch), "center_crop" or "pad" (grey borders).
        Returns:
            The reconstruction, a PNG.
            Its scores, a JSON object: psnr (dB) and ssim against the fitted image; ood_score (higher = less like the photos the model was trained on), verdict (in distribution, unusual or out of distribution) and explanation, or null without the app's OOD reference.
        """
        rgb, _ = self._fit(image, mode)
        report = gpu.analyze(to_tensor(rgb).numpy())
        ood = report.summary.ood_score
        scores = {"psnr": report.summary.psnr, "ssim": report.summary.ssim,
                  "ood_score": None if ood is None else ood.score,
                  "verdict": None if ood is None else ood.verdict.label,
                  "explanation": None if ood is None else ood.verdict.explanation}
        return _png(report.reconstruction), json.dumps(scores)

    def stress_image(self, image: FileData, mode: Fit = "resize") -> str:
        """Stress-test the tokenizer on one image: how its reconstruction and tokens respond to scale, shift, corruption, quantization and token noise (about 150 encodes and decodes, seeded by the image's name).

        Args:
            image: the image (PNG, JPEG, WebP...), any size; it is fit to the model's square (96x96 px for the shipped weights).
            mode: how it is fit: "resize" (stretch), "center_crop" or "pad" (grey borders).
        Returns:
            The curves, summarised in a JSON object: psnr (clean, dB); scale (zoom factor -> PSNR); shift (pixels -> share of tokens unchanged); corruption (name -> PSNR and share of tokens changed at severities 1 to 5); quantization (PSNR of the ids and of the unrounded latent); token_noise ("digit" or "random" and the share of tokens hit -> PSNR).
        """
        rgb, name = self._fit(image, mode)
        return json.dumps(stress_summary(gpu.stress(rgb, name)))

    def compare_image(self, image: FileData, weights: str, mode: Fit = "resize") -> tuple[FileData, str]:
        """Compare the app's checkpoint (A) with another (B) on one image: quality under each and how many tokens agree.

        Args:
            image: the image (PNG, JPEG, WebP...), any size; it is fit to the models' square (96x96 px for the shipped weights).
            weights: checkpoint B: a Hub model hf://OWNER/NAME[@revision], or a folder (model.safetensors + config.json) or .safetensors file on the server.
            mode: how it is fit: "resize" (stretch), "center_crop" or "pad" (grey borders).
        Returns:
            The fitted image, A's and B's reconstructions side by side, a PNG.
            The comparison, a JSON object: a and b (names), psnr_a, psnr_b (dB), ssim_a, ssim_b, token_agreement (share of equal ids) and digit_agreement (per FSQ dimension), null when the two use other levels or grids.
        """
        model = self.studio.require_model()
        rgb, name = self._fit(image, mode)
        try:
            b = self.cache.load(checkpoint_name(weights), weights, model.config.image_size)
            model_b = self.cache.model(b)
        except (WeightsError, CompareError, OSError) as e:
            raise refuse("Cannot load checkpoint B", str(e)) from None
        fitted = FittedImages([name], rgb[None], [None], [])
        ra, rb = gpu.reconstruct_images(fitted), gpu.reconstruct_with(model_b, fitted)
        c = compare_images(name, rgb, ra.reconstructions[0], rb.reconstructions[0], ra.indices[0], rb.indices[0],
                           model.config, model_b.config)
        weights_a = self.studio.settings.weights
        names = {"a": SHIPPED_NAME if weights_a is None else checkpoint_name(str(weights_a)), "b": b.name}
        side_by_side = np.concatenate([rgb, ra.reconstructions[0], rb.reconstructions[0]], axis=1)
        return _png(side_by_side), json.dumps({**names, **asdict(c.pair)})

    def wire(self, blocks: gr.Blocks) -> None:
        """Inside ``blocks`` (last, after every tab): register the tools with ``gr.api`` and leave
        every other endpoint callable but undocumented, off the API page and the MCP tool list."""
        tools = (self.tokenize_image, self.decode_ids, self.reconstruct_image, self.stress_image, self.compare_image)
        for fn in blocks.fns.values():
            if fn.api_visibility == "public":
                fn.api_visibility = "undocumented"
        for tool in tools:
            gr.api(tool, api_name=tool.__name__, queue=False)


def stress_summary(s: ImageStress) -> dict:
    """One image's stress curves (``analysis.stress.ImageStress``) as a small JSON-ready dict."""
    corruption = {}
    for p in s.corruption:  # in order of severity, 1 to 5
        curves = corruption.setdefault(p.corruption, {"psnr": [], "tokens_changed": []})
        curves["psnr"].append(p.psnr)
        curves["tokens_changed"].append(p.tokens_changed)
    return {
        "name": s.name, "psnr": s.psnr,
        "scale": {f"{p.scale:g}x": p.psnr for p in s.scale},
        "shift": {f"{p.pixels} px": p.agreement for p in s.shift},
        "corruption": corruption,
        "quantization": {"psnr_quantized": s.quantization.psnr_quantized,
                         "psnr_continuous": s.quantization.psnr_continuous},
        "token_noise": {f"{p.kind} {p.fraction:.0%}": p.psnr for p in s.token_noise},
    }
