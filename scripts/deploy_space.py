"""Build the Hugging Face Space for the app, and upload it without git history.

    python -m scripts.deploy_space --bundle DIR                   # write the Space's files into DIR
    python -m scripts.deploy_space --repo USER/NAME               # build in a temporary folder, upload
    python -m scripts.deploy_space --bundle DIR --repo USER/NAME  # both (DIR is kept)

The bundle holds exactly what the Space runs: ``app.py``, the packages ``qkvae``, ``analysis``
and ``qkvae_app`` (their ``.py`` files, subpackages included), the assets the app reads (the shipped weights and
config, the OOD reference counts, the expected-PSNR fit, the STL-10 PSNR quantiles, the examples,
and the model card the README links to), the
Space's ``requirements.txt`` (the app's pins without gradio, which the Space installs from
``sdk_version``, and without test tools) and ``README.md``, whose front matter configures the
Space. No file may be over 10 MB (the Hub wants larger ones through LFS/Xet): the command
refuses, naming it. It lists every file with its size.

``--repo`` creates the Space if needed (``create_repo(..., repo_type="space", space_sdk="gradio")``)
and uploads the bundle with ``HfApi.upload_folder`` as one commit that also deletes any file the
bundle no longer has, so the Space holds the bundle and nothing else; no git history is pushed.
``--hardware`` then asks for that hardware (``request_space_hardware``; ZeroGPU is ``zero-a10g``).
It needs a write token (``hf auth login``, or ``HF_TOKEN``). Errors exit with status 2 and one line.
"""

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import SpaceHardware

from qkvae.atomic import atomic_write
from qkvae.cli import run_cli

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("qkvae", "analysis", "qkvae_app")
FILES = ("app.py", "README.md", "assets/model.safetensors", "assets/config.json", "assets/ood_reference.npz",
         "assets/expected_psnr.json", "assets/stl10_psnr.json", "assets/MODEL_CARD.md")
GLOBS = ("assets/examples/*.png",)
NOT_ON_THE_SPACE = ("gradio",)  # requirements the Space provides itself (gradio comes from sdk_version)
MAX_FILE_BYTES = 10 * 1024 * 1024


class DeployError(Exception):
    """A bundle that cannot be built or uploaded."""


@dataclass(frozen=True)
class BundleFile:
    path: str  # relative to the bundle, with "/"
    size: int  # bytes


def bundle_sources(root: Path = REPO_ROOT) -> list[str]:
    """The files of the Space, relative to the repository root (requirements.txt is written, not copied)."""
    names = [p.relative_to(root).as_posix() for package in PACKAGES for p in sorted((root / package).rglob("*.py"))]
    names += [p.relative_to(root).as_posix() for pattern in GLOBS for p in sorted(root.glob(pattern))]
    missing = [name for name in FILES if not (root / name).is_file()]
    if missing:
        raise DeployError(f"missing from {root}: {', '.join(missing)}")
    return sorted(set(names) | set(FILES))


def space_requirements(root: Path = REPO_ROOT) -> str:
    """The app's pinned requirements, less what the Space provides."""
    lines = (root / "requirements.txt").read_text().splitlines()
    keep = [line for line in lines if line.strip() and not line.lstrip().startswith("#")
            and line.split("==")[0].split("[")[0].strip().lower() not in NOT_ON_THE_SPACE]
    return "\n".join(keep) + "\n"


def build_bundle(out: Path, root: Path = REPO_ROOT) -> list[BundleFile]:
    """Write the Space's files into ``out`` (new or empty); returns them with their sizes."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DeployError(f"{out} exists and is not an empty folder: the bundle must hold the Space's files only")
    sources = bundle_sources(root)
    too_big = [f"{name} ({(root / name).stat().st_size:,} bytes)" for name in sources
               if (root / name).stat().st_size > MAX_FILE_BYTES]
    if too_big:
        raise DeployError(f"over the {MAX_FILE_BYTES // 2**20} MB limit for a Space file: {', '.join(too_big)}")
    for name in sources:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, out / name)
    atomic_write(out / "requirements.txt", space_requirements(root))
    return [BundleFile(name, (out / name).stat().st_size) for name in sorted([*sources, "requirements.txt"])]


def listing(files: list[BundleFile]) -> str:
    width = max(len(f.path) for f in files)
    rows = [f"{f.path:<{width}}  {f.size:>12,}" for f in files]
    return "\n".join([*rows, f"{len(files)} files, {sum(f.size for f in files):,} bytes"])


def upload(folder: Path, repo: str, hardware: str | None, private: bool) -> str:
    """Create the Space if needed and make its files exactly ``folder``'s, in one commit; returns its URL."""
    from huggingface_hub import HfApi  # looked up at call time, so that tests can stand in for it
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    try:
        api.create_repo(repo, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        api.upload_folder(folder_path=folder, repo_id=repo, repo_type="space", delete_patterns="*",
                          commit_message="Deploy QKVAE Studio (python -m scripts.deploy_space)")
        if hardware:  # also for a Space that exists already (create_repo would ignore it then)
            api.request_space_hardware(repo, hardware)
    except (HfHubHTTPError, OSError, ValueError) as e:
        raise DeployError(f"upload to the Space {repo} failed: {e}") from None
    return f"https://huggingface.co/spaces/{repo}"


def setup_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m scripts.deploy_space", description=__doc__.split("\n")[0])
    p.add_argument("--bundle", type=Path, help="write the Space's files into this new or empty folder")
    p.add_argument("--repo", metavar="USER/NAME", help="upload the bundle to this Space (created when missing)")
    p.add_argument("--hardware", choices=[h.value for h in SpaceHardware], metavar="FLAVOR",
                   help="hardware to request for the Space, e.g. cpu-basic, zero-a10g (ZeroGPU), t4-small")
    p.add_argument("--private", action="store_true", help="create the Space private")
    args = p.parse_args(argv)
    if not args.bundle and not args.repo:
        p.error("give --bundle DIR, --repo USER/NAME, or both")
    if args.repo and args.repo.count("/") != 1:
        p.error("--repo must be USER/NAME")
    return args


def run(args: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory(prefix="qkvae-space-") as scratch:
        folder = args.bundle or Path(scratch) / "bundle"
        files = build_bundle(folder)
        print(listing(files))
        if not args.repo:
            return f"bundle written to {folder}"
        return f"uploaded to {upload(folder, args.repo, args.hardware, args.private)}"


def main(argv=None) -> int:
    args = setup_args(argv)
    return run_cli(lambda: print(run(args)), DeployError)


if __name__ == "__main__":
    sys.exit(main())
