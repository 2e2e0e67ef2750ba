"""The house: layers import only downwards, `import qkvae` stays light, and the package installs."""

import ast
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["qkvae", "analysis", "qkvae_app", "app"]  # bottom to top
HEAVY = ["skimage", "matplotlib", "scipy", "gradio", "pandas", "analysis", "qkvae_app", "pyarrow", "huggingface_hub"]


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module a file imports, wherever the import statement stands."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_import_qkvae_loads_nothing_above_it():
    code = ("import sys, qkvae, qkvae.pipeline, qkvae.sources, qkvae.train, qkvae.inference; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("layer", LAYERS[:-1])
def test_no_layer_imports_a_higher_one(layer):
    higher = set(LAYERS[LAYERS.index(layer) + 1:])
    if layer == "qkvae":
        higher |= {"skimage", "matplotlib", "scipy", "gradio", "pandas"}
    for path in sorted((ROOT / layer).rglob("*.py")):
        assert not imported_modules(path) & higher, f"{path.name} imports {imported_modules(path) & higher}"


def _pins(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_pyproject_pins_equal_the_requirements_files():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == _pins(ROOT / "requirements.txt")
    assert project["optional-dependencies"]["dev"] == _pins(ROOT / "requirements-dev.txt")
    for extra in ("ray", "mcp"):
        assert set(project["optional-dependencies"][extra]) <= set(project["optional-dependencies"]["dev"])


def test_every_directly_imported_package_is_declared():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["ray"]
    declared = {pin.split("==")[0].split("[")[0].lower().replace("-", "_")
                for pin in _pins(ROOT / "requirements.txt") + extras}  # qkvae.tokenize_ray imports the ray extra
    distribution = {"PIL": "pillow", "skimage": "scikit_image"}
    ours = {"qkvae", "analysis", "qkvae_app", "app", "scripts", "bench"}
    optional = {"spaces"}  # imported when present (ZeroGPU Spaces provide it), see qkvae_app/gpu.py
    used = set()
    for layer in LAYERS[:-1]:
        for path in (ROOT / layer).rglob("*.py"):
            used |= imported_modules(path)
    used |= imported_modules(ROOT / "app.py")
    third_party = {m for m in used - ours - optional - set(sys.stdlib_module_names)}
    missing = {m for m in third_party if distribution.get(m, m).lower() not in declared}
    assert not missing, f"imported but not in requirements.txt: {missing}"


def test_console_scripts_point_at_main_functions():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert {"qkvae-encode", "qkvae-train", "qkvae-eval"} <= set(scripts)
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), target


@pytest.mark.slow
def test_pip_install_gives_working_console_scripts(tmp_path):
    """A fresh venv, `pip install .`, then the CLIs run from elsewhere with the packaged weights."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, str(ROOT)], check=True, cwd=tmp_path)
    example = ROOT / "assets" / "examples" / "photo-cat.png"
    out = subprocess.run([str(venv / "bin" / "qkvae-encode"), str(example), str(tmp_path / "out.png")],
                         cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "psnr=36.39dB" in out.stdout and (tmp_path / "out.png").is_file()
    bad = subprocess.run([str(venv / "bin" / "qkvae-eval"), "--data", str(tmp_path / "absent")],
                         cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 2 and "no such file or folder" in bad.stderr


def test_every_package_folder_is_declared():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {init.parent.relative_to(ROOT).as_posix().replace("/", ".") for layer in LAYERS[:-1]
             for init in (ROOT / layer).rglob("__init__.py")}
    assert found <= declared, f"not in pyproject's packages: {found - declared}"
