"""Where the app finds its weights, STL-10 data and reference statistics, and loading the model once.

Each location can be overridden with an environment variable (a relative path is taken from the
current directory, as on a command line; an ``hf://`` reference is kept as written); the
defaults do not depend on the directory the app is started from.

    QKVAE_WEIGHTS     a .safetensors file, a folder with model.safetensors + config.json, or a Hub
                      model, hf://OWNER/NAME[@revision] (default: the weights shipped in assets/)
    QKVAE_DATA        the Dataset tab's images: any source qkvae.open_source reads, a Hub dataset
                      hf://datasets/OWNER/NAME[@revision], a folder, a .txt list, an STL-10
                      *_X.bin file, the stl10_binary/ folder, Parquet files
                      (default: STL-10 on the Hub, DEFAULT_DATA, pinned to a commit)
    QKVAE_DATA_SPLIT  the split of a Hub or Parquet dataset (default: test)
    QKVAE_REFERENCE   the OOD reference (context prior and calibration) for the OOD score and map
                      (default: the file shipped with analysis.reference)
"""

import os
from dataclasses import dataclass
from pathlib import Path

from analysis.ood import OODReference
from analysis.reference import ReferenceFileError, load_reference
from qkvae import QKVAE, WeightsError, load_qkvae
from qkvae.hub import is_hub_ref
from qkvae.weights import ASSETS

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ASSETS / "examples"
# STL-10 as the `datasets` library writes it (an image struct and a label; test 8,000 images in
# data/test-00000-of-00001.parquet, train 5,000), at the commit we read: a branch could move.
DEFAULT_DATA = "hf://datasets/tanganke/stl10@49ae7f94508f7feae62baf836db284306eab0b0f"
DEFAULT_SPLIT = "test"


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser().resolve() if value else None


def _location(value: str | None) -> str | Path | None:
    """A Hub reference as written, a path made absolute, or None when unset."""
    return value if is_hub_ref(value) else _path(value)


@dataclass(frozen=True)
class Settings:
    weights: str | Path | None = None  # None = the shipped weights
    data: str | Path = DEFAULT_DATA
    data_split: str = DEFAULT_SPLIT
    reference: Path | None = None  # None = analysis.reference's default

    @classmethod
    def from_env(cls, env=os.environ) -> "Settings":
        return cls(
            weights=_location(env.get("QKVAE_WEIGHTS")),
            data=_location(env.get("QKVAE_DATA")) or DEFAULT_DATA,
            data_split=env.get("QKVAE_DATA_SPLIT") or DEFAULT_SPLIT,
            reference=_path(env.get("QKVAE_REFERENCE")),
        )


def load_model(settings: Settings) -> tuple[QKVAE | None, str | None]:
    """(model, None), or (None, why not) when no usable weights exist; never raises for bad weights."""
    try:
        return load_qkvae(settings.weights), None
    except WeightsError as e:
        return None, str(e)


def load_ood_reference(settings: Settings, weights_sha256: str) -> tuple[OODReference | None, str | None]:
    """(the OOD reference for the weights of SHA-256 ``weights_sha256``, None), or (None, why not):
    missing, unreadable, or made with other weights; see ``analysis.reference``."""
    try:
        return load_reference(settings.reference, weights_sha256), None
    except ReferenceFileError as e:
        return None, str(e)
