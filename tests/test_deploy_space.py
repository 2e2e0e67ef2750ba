"""The Space: ``python -m scripts.deploy_space`` builds exactly the files it needs, refuses big
files, uploads through HfApi (faked here: no network), and the app starts from the bundle alone,
answers ``/reconstruct``, and refuses an oversized upload while it keeps serving."""

import os
import re
import subprocess
import time
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from gradio_client import Client, handle_file

from qkvae_app.settings import EXAMPLES_DIR, REPO_ROOT
from scripts import deploy_space
from tests.helpers import free_port, wait_until_up

CAT = EXAMPLES_DIR / "photo-cat.png"


def _front_matter(readme: Path) -> dict:
    _, block, _ = readme.read_text().split("---\n", 2)
    return yaml.safe_load(block)


def test_the_bundle_holds_exactly_the_spaces_files(tmp_path):
    assert deploy_space.main(["--bundle", str(tmp_path / "space")]) == 0
    bundle = tmp_path / "space"
    files = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    packages = {p.relative_to(REPO_ROOT).as_posix() for name in ("qkvae", "analysis", "qkvae_app")
                for p in (REPO_ROOT / name).rglob("*.py") if "__pycache__" not in p.parts}
    assert "analysis/ood_images/__init__.py" in packages
    examples = {f"assets/examples/{p.name}" for p in EXAMPLES_DIR.glob("*.png")}
    assert files == packages | examples | {
        "app.py", "README.md", "requirements.txt", "assets/model.safetensors", "assets/config.json",
        "assets/ood_reference.npz", "assets/MODEL_CARD.md"}
    requirements = (bundle / "requirements.txt").read_text()
    assert "torch==" in requirements
    assert not any(tool in requirements for tool in ("pytest", "playwright", "gradio"))

    meta = _front_matter(bundle / "README.md")
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["python_version"] in ("3.10", "3.12")  # the versions ZeroGPU supports
    assert meta["models"] == ["Glint-Research/QKVAE-1m"] and meta["suggested_hardware"] == "cpu-basic"


def test_a_file_over_the_limit_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(deploy_space, "MAX_FILE_BYTES", 1_000_000)
    assert deploy_space.main(["--bundle", str(tmp_path / "space")]) == 2
    err = capsys.readouterr().err
    assert "assets/model.safetensors" in err and "limit" in err and err.count("\n") == 1
    assert not (tmp_path / "space").exists()


def test_a_non_empty_folder_is_refused(tmp_path, capsys):
    (tmp_path / "old.txt").write_text("stale")
    assert deploy_space.main(["--bundle", str(tmp_path)]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_upload_creates_the_space_and_uploads_the_bundle_alone(monkeypatch, capsys):
    import huggingface_hub

    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            folder = Path(kwargs["folder_path"])
            calls.append(("upload_folder", sorted(p.name for p in folder.iterdir()), kwargs))

        def request_space_hardware(self, repo_id, hardware):
            calls.append(("request_space_hardware", repo_id, hardware))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert deploy_space.main(["--repo", "me/qkvae-studio", "--hardware", "zero-a10g"]) == 0
    (_, repo, create), (_, top, upload), hardware = calls
    assert repo == "me/qkvae-studio" and hardware == ("request_space_hardware", repo, "zero-a10g")
    assert create == {"repo_type": "space", "space_sdk": "gradio", "private": False, "exist_ok": True}
    assert top == ["README.md", "analysis", "app.py", "assets", "qkvae", "qkvae_app", "requirements.txt"]
    assert upload["repo_id"] == "me/qkvae-studio" and upload["repo_type"] == "space"
    assert upload["delete_patterns"] == "*"  # the Space holds the bundle and nothing else
    out = capsys.readouterr().out
    size = (REPO_ROOT / "assets/model.safetensors").stat().st_size
    assert re.search(rf"^assets/model\.safetensors +{size:,}$", out, re.M)  # every file, with its size
    assert "uploaded to https://huggingface.co/spaces/me/qkvae-studio" in out


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    """The URL of the app started from a bundle alone: its own folder, another HOME, no QKVAE_* settings,
    the Hub offline with an empty cache."""
    root = tmp_path_factory.mktemp("space")
    bundle, home = root / "bundle", root / "home"
    home.mkdir()
    assert deploy_space.main(["--bundle", str(bundle)]) == 0
    port, log = free_port(), root / "app.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QKVAE_", "HF_", "PYTHON"))}
    env.update({"HOME": str(home), "HF_HOME": str(home / "hf"), "HF_HUB_OFFLINE": "1",
                "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
                "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(root / "gradio")})
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=bundle, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(url, process, log)
        yield url, bundle
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_app_runs_from_the_bundle_alone(space, tmp_path):
    url, bundle = space
    client = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))
    out = client.predict(handle_file(CAT), "resize", api_name="/reconstruct")
    assert Path(out[1]).is_file() and 15 < out[3] < 100
    assert not (bundle / "tests").exists() and not (bundle.parent / "shared").exists()
    where = subprocess.run([sys.executable, "-c", "import qkvae, qkvae_app; print(qkvae.__file__, qkvae_app.__file__)"],
                           cwd=bundle, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(bundle) for p in where)  # the bundle's packages, not the checkout's


def _upload(url: str, name: str, data: bytes) -> tuple[int, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_an_oversized_upload_is_refused_and_the_app_keeps_serving(space, tmp_path):
    url, _ = space
    status, text = _upload(url, "huge.png", b"\0" * (11 * 2**20))
    assert status == 413 and "maximum allowed size" in text
    status, _ = _upload(url, "cat.png", CAT.read_bytes())
    assert status == 200
    client = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))
    assert client.predict(handle_file(CAT), "resize", api_name="/reconstruct")[3] > 15


def test_the_default_dataset_offline_says_what_is_missing(space, tmp_path):
    url, _ = space
    client = Client(url, verbose=False, analytics_enabled=False, download_files=str(tmp_path))
    deadline = time.monotonic() + 60
    while True:
        summary = client.predict("worst first", "", api_name="/evaluate_dataset")[1]
        if "no dataset" in summary or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert "hf://datasets/tanganke/stl10@" in summary and "HF_HUB_OFFLINE=1" in summary
    assert "hf download tanganke/stl10 --repo-type dataset" in summary and "QKVAE_DATA" in summary
