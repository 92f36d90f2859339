"""Where the library lives and the user's settings (backend choices, offline switches)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .files import part_path

APP_NAME = "voice-weaver"


def weaver_home() -> Path:
    """The library folder: $WEAVER_HOME, else the platform's user data dir."""
    env = os.environ.get("WEAVER_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


@dataclass
class Settings:
    """User settings stored as settings.json beside the database. Defaults keep everything offline."""

    backends: dict[str, str] = field(default_factory=dict)  # stage -> backend name ("" = best available)
    asr_model: str = "tiny.en"
    channel_mode: str = "auto"  # auto (centre when the track has one) | centre | mix
    subtitle_language: str | None = None  # language of legacy-encoded subtitle files ("fr", "pl"): a decoding hint
    cloud_enabled: bool = False  # cloud adapters and online sources stay off unless the user opts in
    opensubtitles_api_key: str | None = None  # the user's own key, for `weaver scripts fetch --source opensubtitles`
    screenplay_site_url: str | None = None  # a screenplay site (search page + <pre> script pages)
    screenplay_site_consent: bool = False  # the user agreed to fetch from that site
    chat_provider: str = "embedded"  # embedded (llama.cpp GGUF) | ollama | openai (LM Studio, llama.cpp server…)
    chat_model: str | None = None  # model name for Ollama/OpenAI-compatible servers
    chat_model_path: str | None = None  # GGUF file for the embedded provider (None: the packaged SmolLM2-135M)
    chat_threads: int = 1  # CPU threads of the embedded provider
    openai_api_key: str | None = None
    last_persona_id: int | None = None  # Quick chat opens this one
    ollama_host: str = "http://127.0.0.1:11434"
    openai_base_url: str = "http://127.0.0.1:1234/v1"
    buffer_minutes: float = 10.0
    voice_base_model: str = "unsloth/orpheus-3b-0.1-ft"  # hub name (from the local cache) or a local folder
    notice_accepted: bool = False

    @classmethod
    def load(cls, home: Path | None = None) -> "Settings":
        path = (home or weaver_home()) / "settings.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, home: Path | None = None) -> None:
        """Write settings.json atomically, readable by the owner only (it can hold API keys)."""
        home = private_dir(home or weaver_home())
        with part_path(home / "settings.json") as tmp, open_private(tmp, os.O_TRUNC) as f:
            f.write(json.dumps(asdict(self), indent=2).encode("utf-8"))


# -- typed access, for `weaver settings` and the panel ------------------------------------------
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
_NONE = {"", "none", "null", "-"}


def setting_keys() -> list[str]:
    """Every setting's name, in the order of the dataclass."""
    return list(Settings.__dataclass_fields__)


def setting_type(key: str) -> str:
    """The declared type of a setting as written in the dataclass ("str | None", "bool", ...)."""
    return str(Settings.__dataclass_fields__[key].type)


# values a setting may take beyond its type: key -> (check, what it must be)
SETTING_CHECKS = {
    "chat_provider": (lambda v: v in ("embedded", "ollama", "openai"), "one of embedded, ollama, openai"),
    "channel_mode": (lambda v: v in ("auto", "centre", "mix"), "one of auto, centre, mix"),
    "chat_threads": (lambda v: 1 <= v <= 256, "between 1 and 256"),
    "buffer_minutes": (lambda v: 0 < v <= 24 * 60, "more than 0 and at most 1440"),
    "ollama_host": (lambda v: v.startswith(("http://", "https://")), "an http:// or https:// address"),
    "openai_base_url": (lambda v: v.startswith(("http://", "https://")), "an http:// or https:// address"),
    "chat_model_path": (lambda v: _is_gguf(v), "an existing GGUF model file"),
}


def _is_gguf(path: str) -> bool:
    """An existing file that starts like a GGUF model (Ollama's pulled blobs have no .gguf suffix)."""
    try:
        with open(Path(path).expanduser(), "rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


def _checked(key: str, value):
    from .errors import BadInputError

    check = SETTING_CHECKS.get(key)
    if check is not None and not check[0](value):
        raise BadInputError(f"{key} must be {check[1]} (got {value!r})")
    return value


def parse_setting(key: str, value):
    """``value`` (a string from the command line, or JSON-typed from the panel) as the setting's declared type;
    BadInputError naming the valid keys for an unknown one, or the expected type for a bad value."""
    from .errors import BadInputError

    if key not in Settings.__dataclass_fields__:
        raise BadInputError(f"unknown setting '{key}' (valid: {', '.join(setting_keys())})")
    kinds = [k.strip() for k in setting_type(key).split("|")]
    optional = "None" in kinds
    kind = next((k for k in kinds if k != "None"), "str")
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in _NONE):
        if optional:
            return None
        raise BadInputError(f"{key} cannot be empty (type {setting_type(key)})")
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            v = str(value).strip().lower()
            if v in _TRUE | _FALSE:
                return v in _TRUE
            raise ValueError
        if kind == "int":
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return _checked(key, int(float(value)))
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return _checked(key, float(value))
        if kind.startswith("dict"):
            v = json.loads(value) if isinstance(value, str) else value
            if not isinstance(v, dict):
                raise ValueError
            return {str(k): str(x) for k, x in v.items()}
        if not isinstance(value, str):
            raise ValueError
        return _checked(key, value)
    except (TypeError, ValueError):
        want = {"bool": "true or false", "int": "a whole number", "float": "a number",
                "dict[str, str]": 'a JSON object like {"asr": "whisper"}'}.get(kind, "text")
        raise BadInputError(f"{key} must be {want} (got {value!r})") from None


# -- owner-only files ---------------------------------------------------------------------------
# The library holds API keys (settings.json), the panel's launch token (run/server.json) and everything the
# user imported: the folder and its subfolders are 0700, its database, settings, logs and runtime files 0600.
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
PRIVATE_FILES = ("library.db", "library.db-wal", "library.db-shm", "library.db-journal", "settings.json")
# the library's own subfolders (only these are tightened: WEAVER_HOME may point at a folder with other things)
LIBRARY_DIRS = ("media", "work", "run", "uploads", "exports", "voices", "datasets", "training", "captures",
                "downloads")


def private_dir(path: str | os.PathLike) -> Path:
    """Create a folder (and missing parents) mode 0700, or tighten an existing one to it; returns the path."""
    p = Path(path)
    p.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _tighten(p, PRIVATE_DIR)
    return p


def open_private(path: str | os.PathLike, flags: int = os.O_APPEND):
    """Open a file for binary writing, created 0600 (an existing one is tightened to 0600); never follows a
    symlink at ``path``. ``flags``: os.O_APPEND (logs), os.O_TRUNC, or os.O_EXCL (must not exist yet)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0),
                 PRIVATE_FILE)
    try:
        if os.name == "posix":
            os.fchmod(fd, PRIVATE_FILE)
        return os.fdopen(fd, "ab" if flags & os.O_APPEND else "wb")
    except BaseException:
        os.close(fd)
        raise


def secure_library(home: str | os.PathLike) -> None:
    """Tighten a library made before these modes existed: the folder and its own subfolders to 0700, the
    database, settings and the files in run/ (runtime records, logs) to 0600. Cheap (a few stats)."""
    home = Path(home)
    _tighten(home, PRIVATE_DIR)
    for name in LIBRARY_DIRS:
        _tighten(home / name, PRIVATE_DIR)
    for name in PRIVATE_FILES:
        _tighten(home / name, PRIVATE_FILE)
    run = home / "run"
    if run.is_dir():
        for p in run.iterdir():
            if p.is_file() and not p.is_symlink():
                _tighten(p, PRIVATE_FILE)


def _tighten(path: Path, mode: int) -> None:
    """chmod to mode when the path is ours and looser (no-op on Windows, for links and missing files)."""
    if os.name != "posix":
        return
    try:
        st = os.lstat(path)
    except OSError:
        return
    import stat

    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & ~mode == 0:
        return
    try:
        os.chmod(path, stat.S_IMODE(st.st_mode) & mode)
    except OSError:
        pass
