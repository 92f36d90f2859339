"""Where the library lives and the user's settings (backend choices, offline switches)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
    cloud_enabled: bool = False  # cloud adapters and online sources stay off unless the user opts in
    opensubtitles_api_key: str | None = None  # the user's own key, for `weaver scripts fetch --source opensubtitles`
    screenplay_site_url: str | None = None  # a screenplay site (search page + <pre> script pages)
    screenplay_site_consent: bool = False  # the user agreed to fetch from that site
    chat_provider: str = "embedded"  # embedded (llama.cpp GGUF) | ollama | openai (LM Studio, llama.cpp server…)
    chat_model: str | None = None  # model name for Ollama/OpenAI-compatible servers
    chat_model_path: str | None = None  # GGUF file for the embedded provider (or a model Ollama pulled)
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
        home = home or weaver_home()
        home.mkdir(parents=True, exist_ok=True)
        tmp = home / "settings.json.part"
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(tmp, home / "settings.json")
