"""Play audio on the default output (chat --speak, tray quick chat) through soundcard."""

from __future__ import annotations

import numpy as np


def play_audio(audio: np.ndarray, rate: int) -> None:
    """Blocking playback of float mono audio; silently does nothing when no output device exists."""
    from capture.devices import soundcard_module

    try:
        sc = soundcard_module()
        speaker = sc.default_speaker()
        speaker.play(np.asarray(audio, dtype=np.float32), samplerate=rate)
    except Exception:  # no sound server / device: the text reply is still there
        pass
