"""The Hugging Face model cache, read without the network: where a repo's files live, whether they are there,
and the command that fetches them on a machine with internet.

The one model-cache lookup of the house (stages, voices and the model report use it); it never downloads.
The cache folder follows huggingface_hub's own rules ($HF_HUB_CACHE, $HUGGINGFACE_HUB_CACHE, $HF_HOME/hub,
$XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub), read at call time.
"""

from __future__ import annotations

import os
from pathlib import Path


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder (it may not exist)."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def hub_repo_dir(repo: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder of one model repo (``models--owner--name``); present only once something fetched it."""
    return Path(cache_dir or hub_cache_dir()) / ("models--" + repo.replace("/", "--"))


def cached_hub_file(repo: str, filename: str, cache_dir: str | os.PathLike | None = None, revision: str | None = None) -> Path | None:
    """A file of a repo's cached snapshot (at ``revision``: a commit or branch, else main), or None when it is not in
    the cache (a broken cache reads as absent)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(repo, filename, cache_dir=str(cache_dir or hub_cache_dir()), revision=revision)
    except Exception:  # noqa: BLE001 - no huggingface_hub or an unreadable cache: absent
        return None
    return Path(hit) if isinstance(hit, str) and os.path.isfile(hit) else None


def cached_hub_folder(repo: str, required_file: str) -> Path | None:
    """The local snapshot folder of a repo if it holds required_file (never downloads)."""
    try:
        from huggingface_hub import snapshot_download

        found = Path(snapshot_download(repo, local_files_only=True, cache_dir=str(hub_cache_dir())))
    except Exception:  # noqa: BLE001 - not cached (or no huggingface_hub)
        return None
    return found if (found / required_file).is_file() else None


def hub_fetch_command(repo: str, local_dir: str | None = None) -> str:
    """The command that downloads a Hugging Face model repo on a machine with internet."""
    return f"hf download {repo}" + (f" --local-dir {local_dir}" if local_dir else "")
