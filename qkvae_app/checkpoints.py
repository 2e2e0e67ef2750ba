"""The Compare tab's checkpoint B: where it comes from, and the bounded cache of loaded models.

B is one of three things, each turned into a spec ``load_qkvae`` takes:
- a shipped variant, a folder under ``assets/variants/`` holding ``model.safetensors`` (listed
  once, when the app starts: ``variants``);
- an upload of ``model.safetensors`` (any ``.safetensors`` name) and, for any other config than
  the card's, its ``config.json``: staged by ``stage_upload`` into a folder named by the weights'
  SHA-256 under the app's ``checkpoints`` folder (``qkvae_app.files``), so the same upload is
  staged once and a model evicted from the cache can be loaded again;
- a Hub model ``hf://OWNER/NAME[@revision]``, through the local Hub cache.

``CheckpointCache`` keeps at most ``CACHE_SIZE`` loaded models, keyed by their weights' SHA-256,
the least recently used dropped first: a 1 M-parameter model holds about 4 MB of float32 weights,
so the cache holds at most ``CACHE_SIZE`` x the largest model's size. A config whose model would
exceed ``MAX_PARAMETERS`` is refused before any weight is allocated. Every failure is a
``WeightsError`` (or a ``CompareError`` for a B that cannot run on A's inputs) with one line saying why.
"""

import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from html import escape
from pathlib import Path

import torch

from analysis.compare import CompareError
from qkvae import QKVAE, WeightsError, load_qkvae
from qkvae.atomic import atomic_path
from qkvae.hub import is_hub_ref
from qkvae.weights import ASSETS, CONFIG_NAME, WEIGHTS_NAME, _read_config, file_sha256, weights_sha256
from qkvae_app import files

VARIANTS = ASSETS / "variants"
CACHE_SIZE = 3  # loaded B models kept at once
MAX_PARAMETERS = 50_000_000  # a B config asking for more is refused before its model is built


@dataclass(frozen=True)
class CheckpointB:
    """A chosen checkpoint B: what to call it, where to load it from, and which weights it is."""

    name: str
    spec: str  # a folder or an hf:// reference: what load_qkvae takes
    sha256: str
    parameters: int
    config: dict

    def describe(self) -> str:
        """One line for the page: name, short SHA-256, parameters and levels."""
        return (f"<b>{escape(self.name)}</b> (SHA-256 <code>{self.sha256[:12]}</code>, {self.parameters:,} parameters, "
                f"levels {tuple(self.config['levels'])}, width {self.config['channels']}, "
                f"{self.config['num_res_blocks']} ResBlocks)")


def variants(folder: Path = VARIANTS) -> list[str]:
    """The names of the shipped variants: folders under ``folder`` that hold weights, sorted."""
    return sorted(p.parent.name for p in folder.glob(f"*/{WEIGHTS_NAME}")) if folder.is_dir() else []


def variant_spec(name: str, folder: Path = VARIANTS) -> str:
    """The folder of the shipped variant ``name`` (one of ``variants``)."""
    if name not in variants(folder):
        raise WeightsError(f"no shipped variant called {name!r}; there are: {', '.join(variants(folder)) or 'none'}")
    return str(folder / name)


def stage_upload(paths: list[Path]) -> str:
    """Uploaded files (one ``.safetensors``, at most one ``.json`` config) staged as a checkpoint
    folder named by the weights' SHA-256; returns the folder."""
    weights = [p for p in paths if p.suffix.lower() == ".safetensors"]
    configs = [p for p in paths if p.suffix.lower() == ".json"]
    others = [p.name for p in paths if p not in weights and p not in configs]
    if len(weights) != 1 or len(configs) > 1 or others:
        raise WeightsError("upload one .safetensors weights file and, for any config other than QKVAE-1m's, its "
                           f"config.json (got {', '.join(p.name for p in paths) or 'nothing'})")
    folder = files.folder("checkpoints") / file_sha256(weights[0])
    folder.mkdir(exist_ok=True)
    for source, name in [(weights[0], WEIGHTS_NAME), *((c, CONFIG_NAME) for c in configs)]:
        with atomic_path(folder / name) as staging:
            shutil.copyfile(source, staging)
    if not configs:
        (folder / CONFIG_NAME).unlink(missing_ok=True)
    return str(folder)


def _check_size(spec: str) -> None:
    """Refuse a local checkpoint whose config asks for more than ``MAX_PARAMETERS`` (counted on
    the meta device, where nothing is allocated)."""
    if is_hub_ref(spec):
        return
    config_path = Path(spec) / CONFIG_NAME
    config = _read_config(config_path if config_path.is_file() else None)
    try:
        with torch.device("meta"):
            count = sum(p.numel() for p in QKVAE(config).parameters())
    except (ValueError, TypeError, RuntimeError) as e:
        raise WeightsError(f"{config_path} does not describe a QKVAE ({e})") from None
    if count > MAX_PARAMETERS:
        raise WeightsError(f"{config_path} asks for a model of {count:,} parameters; the app takes at most "
                           f"{MAX_PARAMETERS:,}")


class CheckpointCache:
    """At most ``size`` loaded models, by SHA-256 of their weights, least recently used dropped first."""

    def __init__(self, size: int = CACHE_SIZE, device=None):
        self.size, self.device = size, device
        self._models: OrderedDict[str, QKVAE] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._models)

    def _cached(self, sha256: str) -> QKVAE | None:
        """The model of the weights ``sha256`` when the cache holds it (now the most recently used)."""
        with self._lock:
            model = self._models.get(sha256)
            if model is not None:
                self._models.move_to_end(sha256)
            return model

    def _keep(self, sha256: str, model: QKVAE) -> QKVAE:
        with self._lock:
            model = self._models.setdefault(sha256, model)
            self._models.move_to_end(sha256)
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        return model

    def load(self, name: str, spec: str, image_size: int) -> CheckpointB:
        """B from ``spec`` (a folder or an hf:// reference): the cached model when the cache holds
        its weights (by their SHA-256), else loaded; checked to take ``image_size`` px images (A's)
        and cached. Returns what the page shows of it."""
        _check_size(spec)
        model = self._cached(weights_sha256(spec))
        if model is None:
            model = load_qkvae(spec, self.device)
        if model.config.image_size != image_size:
            raise CompareError(f"B takes {model.config.image_size} px images and A {image_size} px: they cannot "
                               "be compared on the same inputs")
        sha = model.weights_file.sha256
        model = self._keep(sha, model)
        return CheckpointB(name, spec, sha, sum(p.numel() for p in model.parameters()), model.config.to_dict())

    def model(self, b: CheckpointB) -> QKVAE:
        """B's model: from the cache, or loaded again from its spec when it was dropped."""
        model = self._cached(b.sha256)
        if model is not None:
            return model
        model = load_qkvae(b.spec, self.device)
        if model.weights_file.sha256 != b.sha256:
            raise WeightsError(f"the weights at {b.spec} changed since B was chosen: choose B again")
        return self._keep(b.sha256, model)
