"""Where the app finds its weights, STL-10 data and reference statistics, and loading the model once.

Each location can be overridden with an environment variable (a relative value is taken from the
current directory, as on a command line); the defaults are anchored to the repository root, so
the app behaves the same whatever directory it is started from.

    QKVAE_WEIGHTS    a .safetensors file or a folder with model.safetensors + config.json
                     (default: the weights shipped in assets/)
    QKVAE_DATA       any image source qkvae.open_source reads: a folder, a .txt list, an STL-10
                     *_X.bin file, the stl10_binary/ folder, Parquet files
                     (default: ../shared/data/stl10-samples next to the repository)
    QKVAE_REFERENCE  the OOD reference (context prior and calibration) for the OOD score and map
                     (default: the file shipped with analysis.reference)
"""

import os
from dataclasses import dataclass
from pathlib import Path

from analysis.ood import OODReference
from analysis.reference import ReferenceFileError, load_reference
from qkvae import QKVAE, WeightsError, load_qkvae
from qkvae.weights import ASSETS

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ASSETS / "examples"
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "stl10-samples"


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser().resolve() if value else None


@dataclass(frozen=True)
class Settings:
    weights: Path | None = None  # None = the shipped weights
    data: Path = DEFAULT_DATA
    reference: Path | None = None  # None = analysis.reference's default

    @classmethod
    def from_env(cls, env=os.environ) -> "Settings":
        return cls(
            weights=_path(env.get("QKVAE_WEIGHTS")),
            data=_path(env.get("QKVAE_DATA")) or DEFAULT_DATA,
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
