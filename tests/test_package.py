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
HEAVY = ["skimage", "matplotlib", "scipy", "gradio", "pandas", "analysis", "qkvae_app", "pyarrow", "huggingface_hub",
         "transformers", "datasets", "qkvae.lm"]


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module a file imports, wherever the import statement stands."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def module_edges(path: Path) -> set[str]:
    """Dotted names of the modules a file imports at module level (not inside functions): for
    ``from a.b import c``, ``a.b.c`` when that is a module of ours, else ``a.b``."""
    edges = set()
    for node in ast.parse(path.read_text()).body:
        statements = [node] + ([n for n in ast.walk(node)] if isinstance(node, (ast.If, ast.Try)) else [])
        for n in statements:
            if isinstance(n, ast.Import):
                edges |= {alias.name for alias in n.names}
            elif isinstance(n, ast.ImportFrom) and n.level == 0:
                for alias in n.names:
                    sub = f"{n.module}.{alias.name}"
                    is_module = (ROOT / sub.replace(".", "/")).with_suffix(".py").is_file()
                    edges.add(sub if is_module else n.module)
    return edges


def module_name(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")


EDGES = {path: module_edges(path) for layer in ["qkvae", "analysis", "qkvae_app", "tests", "bench"]
         for path in sorted((ROOT / layer).rglob("*.py"))} | {ROOT / "app.py": module_edges(ROOT / "app.py")}
ONE_PASS_USERS = ["qkvae.pipeline", "qkvae.tokenize", "qkvae.tokenize_engine", "qkvae.stream_ray", "analysis.evaluate",
                  "qkvae_app.dataset", "qkvae_app.explore"]  # issue 14: every pass over a set goes through it


def edges_of(module: str) -> set[str]:
    return next(e for p, e in EDGES.items() if module_name(p) == module)


@pytest.mark.parametrize("module", ONE_PASS_USERS)
def test_every_pass_over_a_set_runs_through_qkvae_stream(module):
    assert "qkvae.stream" in edges_of(module)


def test_the_app_does_not_import_the_evaluation_cli():
    for path, edges in EDGES.items():
        if module_name(path).startswith(("qkvae_app", "app")):
            assert "analysis.evaluate" not in edges, f"{module_name(path)} imports the evaluation CLI"


def test_the_package_init_imports_no_submodule():
    assert not {e for e in edges_of("qkvae") if e.startswith("qkvae.")}
    code = "import sys, qkvae; print(sorted(m for m in sys.modules if m.startswith('qkvae.')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_test_module_imports_another():
    for path, edges in EDGES.items():
        if module_name(path).startswith("tests."):
            assert {e for e in edges if e.startswith("tests.")} <= {"tests.helpers"}, module_name(path)


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
    for extra in ("ray", "lm", "mcp"):
        assert set(project["optional-dependencies"][extra]) <= set(project["optional-dependencies"]["dev"])


def test_every_directly_imported_package_is_declared():
    optional_dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    extras = optional_dependencies["ray"] + optional_dependencies["lm"]
    declared = {pin.split("==")[0].split("[")[0].lower().replace("-", "_")
                for pin in _pins(ROOT / "requirements.txt") + extras}  # qkvae.tokenize_ray imports the ray extra, qkvae.lm the lm extra
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
