"""What the app serves, loaded once from its ``Settings``: the model (or why there is none), the
OOD reference (or why not), the Dataset tab's pass, and the status line.

``Studio.load`` is the one place that loads; nothing is loaded at import, so a test builds a
demo with other settings by loading another ``Studio``. The model runs only through
``qkvae_app.gpu``, which holds the model and reference of the process's last loaded studio.
"""

from dataclasses import dataclass

from analysis.ood import OODReference
from qkvae import QKVAE, QKVAEConfig
from qkvae.weights import weights_fingerprint
from qkvae_app import gpu, panels
from qkvae_app.dataset import DatasetPass
from qkvae_app.errors import refuse
from qkvae_app.settings import Settings, load_model, load_ood_reference


@dataclass(frozen=True)
class Studio:
    settings: Settings
    model: QKVAE | None
    model_error: str | None
    reference: OODReference | None
    reference_error: str | None
    dataset: DatasetPass | None  # None without a model

    @classmethod
    def load(cls, settings: Settings) -> "Studio":
        """Load the weights and reference named by ``settings`` and hand them to ``qkvae_app.gpu``;
        never raises for missing or bad files (the status line says what is missing)."""
        model, model_error = load_model(settings)
        sha = weights_fingerprint(model)[1] if model is not None else None
        reference, reference_error = load_ood_reference(settings, sha)
        if model is not None:
            gpu.use_model(model)
        gpu.use_reference(reference)
        dataset = None if model is None else DatasetPass(
            str(settings.data), settings.data_split, sha, gpu.background_reconstruct(), model.config)
        return cls(settings, model, model_error, reference, reference_error, dataset)

    @property
    def config(self) -> QKVAEConfig:
        """The model's configuration (the card's without a model): sizes, levels, codebook."""
        return self.model.config if self.model is not None else QKVAEConfig()

    @property
    def thresholds(self) -> tuple[float, float] | None:
        return self.reference.calibration.thresholds if self.reference is not None else None

    @property
    def status(self) -> str:
        """The status line's HTML: device, weights and reference, or what is missing."""
        return panels.status_html(self.model, self.model_error,
                                  panels.reference_note(self.reference, self.reference_error))

    def require_model(self) -> QKVAE:
        """The model, or a ``gr.Error`` saying there is none and why."""
        if self.model is None:
            raise refuse("No weights", f"No model is loaded: {self.model_error}")
        return self.model
