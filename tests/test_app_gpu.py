"""The app's model work for ZeroGPU: functions of arrays whose arguments and results pickle (ZeroGPU
runs them in another process), equal to the model's own calls, and a decorator that is a no-op
without ``spaces``."""

import pickle

import numpy as np
import pytest
from PIL import Image

from analysis.reference import load_reference
from analysis.report import analyze_image
from qkvae.image import to_tensor
from qkvae.pipeline import load_fitted, reconstruct_set
from qkvae.sources import open_source
from qkvae_app import gpu


@pytest.fixture
def model_in_use(model):
    gpu.use_model(model)
    yield model
    gpu._loaded.clear()


def _round_trip(value):
    return pickle.loads(pickle.dumps(value))


def test_functions_match_the_model_and_pickle(model_in_use, rgb, tmp_path):
    model = model_in_use
    images = np.stack([rgb, rgb[::-1]])
    indices = model.encode(to_tensor(images)).numpy()
    decoded = gpu.decode(_round_trip(indices.reshape(2, 48, 48)))
    assert decoded.dtype == np.uint8 and decoded.shape == (2, 96, 96, 3)
    np.testing.assert_array_equal(_round_trip(decoded), gpu.decode(indices))

    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    fitted = _round_trip(load_fitted(open_source(tmp_path)))
    result = _round_trip(gpu.reconstruct_images(fitted))
    expected = reconstruct_set(model, fitted)
    np.testing.assert_array_equal(result.indices, expected.indices)
    np.testing.assert_array_equal(result.psnr, expected.psnr)
    np.testing.assert_array_equal(result.reconstructions, decoded)


def test_the_image_analysis_matches_and_pickles(model_in_use, rgb, ood_reference_path):
    reference = load_reference(ood_reference_path)  # made for the seeded weights
    gpu.use_reference(reference)
    x = to_tensor(rgb)
    report = _round_trip(gpu.analyze(_round_trip(x.numpy())))
    expected = analyze_image(model_in_use, x, reference, stability=False)
    np.testing.assert_array_equal(report.indices, expected.indices)
    np.testing.assert_array_equal(report.reconstruction, expected.reconstruction)
    assert report.summary.to_json() == expected.summary.to_json() and report.summary.ood_score is not None


def test_without_a_model_the_error_says_so():
    gpu._loaded.clear()
    with pytest.raises(RuntimeError, match="use_model"):
        gpu.decode(np.zeros((1, 2304), np.int64))


def test_the_decorator_is_spaces_gpu_when_installed_else_a_no_op(monkeypatch):
    def f(x):
        return x

    monkeypatch.setattr(gpu, "spaces", None)
    assert gpu.gpu(30)(f) is f

    class FakeSpaces:
        @staticmethod
        def GPU(duration):  # noqa: N802 — spaces' own name
            return lambda fn: ("on a GPU for", duration, fn)

    monkeypatch.setattr(gpu, "spaces", FakeSpaces)
    assert gpu.gpu(30)(f) == ("on a GPU for", 30, f)


def test_on_zerogpu_the_dataset_pass_runs_on_the_cpu_not_in_a_gpu_call(model_in_use, monkeypatch, tmp_path):
    """The Dataset tab's pass runs in a thread, with no visitor: on ZeroGPU (``spaces`` installed)
    a GPU call there would spend the Space's own quota, so the pass must not make one."""
    from qkvae_app import files
    from qkvae_app.dataset import DatasetPass

    monkeypatch.setattr(files, "OUT_DIR", tmp_path / "app-files")
    gpu_calls = []

    class FakeSpaces:  # as on a ZeroGPU Space: the decorated function is what a GPU call runs
        @staticmethod
        def GPU(duration):  # noqa: N802 — spaces' own name
            return lambda fn: fn

    def reconstruct_on_a_gpu(fitted):
        gpu_calls.append(len(fitted.names))
        raise RuntimeError("ZeroGPU: no visitor in this thread (the Space's own quota)")

    monkeypatch.setattr(gpu, "spaces", FakeSpaces)
    monkeypatch.setattr(gpu, "reconstruct_images", reconstruct_on_a_gpu)
    for i in range(3):
        Image.fromarray(np.full((96, 96, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    background = gpu.background_reconstruct()
    assert next(background.args[0].parameters()).device.type == "cpu"  # a CPU copy of the model
    job = DatasetPass(str(tmp_path), None, "sha", background)
    job.start()
    assert job.wait(60).stage == "done" and len(job.metrics.names) == 3 and gpu_calls == []
    expected = reconstruct_set(model_in_use, load_fitted(open_source(tmp_path)))
    np.testing.assert_array_equal(job.metrics.psnr, expected.psnr)

    monkeypatch.setattr(gpu, "spaces", None)
    assert gpu.background_reconstruct() is gpu.reconstruct_images  # elsewhere: the same function
