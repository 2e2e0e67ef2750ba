"""Weights and datasets from the Hugging Face Hub, named by ``hf://`` references.

    hf://Glint-Research/QKVAE-1m                 a model repo: its model.safetensors (+ config.json)
    hf://Glint-Research/QKVAE-1m@v1              ... at a branch, tag or commit
    hf://Glint-Research/QKVAE-1m/sub/w.safetensors   one file of it (a config.json beside it is used)
    hf://datasets/tanganke/stl10@49ae7f9...      a dataset repo: the Parquet files of one split

The grammar is huggingface_hub's own (``parse_hf_uri``). Files come through ``hf_hub_download``
and ``snapshot_download``, so through the local Hub cache (``HF_HUB_CACHE``, or ``HF_HOME``/hub):
with ``HF_HUB_OFFLINE=1`` a cache filled earlier, or by a Space's ``preload_from_hub``, is enough.
A file that is neither cached nor downloadable raises ``HubError`` saying which, and how to fix it.
This is the only module that imports huggingface_hub, and it does so inside the functions, so
``import qkvae`` never loads it.
"""

from dataclasses import dataclass
from pathlib import Path

HUB_PREFIX = "hf://"


class HubError(ValueError):
    """A Hub reference that is malformed, or whose files cannot be had (offline, missing, private)."""


def is_hub_ref(spec) -> bool:
    """Whether ``spec`` is an ``hf://`` reference (a str; paths never are)."""
    return isinstance(spec, str) and spec.startswith(HUB_PREFIX)


@dataclass(frozen=True)
class HubRef:
    spec: str  # as written, for messages
    repo_type: str  # "model" or "dataset"
    repo_id: str  # OWNER/NAME
    revision: str | None  # None = the default branch
    path: str  # inside the repo; "" for its root

    @classmethod
    def parse(cls, spec: str, repo_type: str) -> "HubRef":
        """Parse ``spec``, which must name a repo of ``repo_type``; raises ``HubError``."""
        from huggingface_hub import parse_hf_uri
        from huggingface_hub.errors import HfUriError

        try:
            uri = parse_hf_uri(spec)
        except HfUriError as e:
            raise HubError(str(e)) from None
        if uri.type != repo_type:
            prefix = "datasets/" if repo_type == "dataset" else ""
            raise HubError(f"{spec} names a {uri.type}, not a {repo_type}: "
                           f"write {HUB_PREFIX}{prefix}OWNER/NAME[@revision]")
        return cls(spec, uri.type, uri.id, uri.revision, uri.path_in_repo)

    def download_command(self) -> str:
        """The ``hf`` command that puts this repo into the local cache."""
        options = (" --repo-type dataset" if self.repo_type == "dataset" else "") + \
                  (f" --revision {self.revision}" if self.revision else "")
        return f"`hf download {self.repo_id}{options}`"


def _not_cached(ref: HubRef, what: str) -> HubError:
    from huggingface_hub import constants

    why = ("offline mode is on (HF_HUB_OFFLINE=1)" if constants.HF_HUB_OFFLINE
           else "the Hub could not be reached")
    if ref.repo_type == "model":
        elsewhere = (f"on a Space list {ref.repo_id} under `preload_from_hub` in its README, "
                     "or use a local weights file or folder instead")
    else:
        elsewhere = "point HF_HOME at a cache that holds it, or use a local image folder or Parquet file instead"
    return HubError(
        f"{ref.spec}: {what} cannot be found in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and {why}. "
        f"To fix it, download it once with network access ({ref.download_command()}, or any run without "
        f"HF_HUB_OFFLINE), or {elsewhere}."
    )


def _fetch(ref: HubRef, what: str, call):
    """``call()``, with huggingface_hub's errors turned into one-line ``HubError``s."""
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RemoteEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    try:
        return call()
    except LocalEntryNotFoundError:
        raise _not_cached(ref, what) from None
    except GatedRepoError:
        raise HubError(f"{ref.spec}: the repo is gated; accept its terms on the Hub and log in "
                       "(`hf auth login`, or set HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise HubError(f"{ref.spec}: no such {ref.repo_type} repo on the Hub, or it is private "
                       "(log in with `hf auth login`, or set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise HubError(f"{ref.spec}: the repo has no revision {ref.revision!r}") from None
    except RemoteEntryNotFoundError:
        raise HubError(f"{ref.spec}: the repo has no {what}") from None
    except (HfHubHTTPError, OSError) as e:
        raise HubError(f"{ref.spec}: cannot get {what} ({e})") from None


def hub_file(ref: HubRef, filename: str, optional: bool = False) -> Path | None:
    """The local path of ``filename`` (relative to the repo root) at ``ref``'s revision, downloaded
    into the cache when it is not there. With ``optional``, None when the repo has no such file,
    or when offline the cache does not hold it."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    def download():
        try:
            return hf_hub_download(ref.repo_id, filename, repo_type=ref.repo_type, revision=ref.revision)
        except EntryNotFoundError:  # not in the repo (remote), or not cached while offline (local)
            if optional:
                return None
            raise

    path = _fetch(ref, filename, download)
    return None if path is None else Path(path)


def hub_snapshot(ref: HubRef, allow_patterns: list[str], what: str) -> Path:
    """The local snapshot folder of ``ref`` holding (at least) the files matching ``allow_patterns``."""
    from huggingface_hub import snapshot_download

    return Path(_fetch(ref, what, lambda: snapshot_download(
        ref.repo_id, repo_type=ref.repo_type, revision=ref.revision, allow_patterns=allow_patterns)))
