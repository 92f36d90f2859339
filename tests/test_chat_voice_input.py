"""Push-to-talk: an espeak-ng utterance → transcribe_utterance (the asr stage) → Conversation.send."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess

import numpy as np
import pytest

from pipeline.chat.conversation import transcribe_utterance
from pipeline.errors import BadInputError

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pipeline.stages.asr") is None or shutil.which("espeak-ng") is None,
    reason="needs the asr stage (pipeline.stages.asr) and espeak-ng",
)


def espeak(text: str, tmp_path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    wav = tmp_path / "utt.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    audio, rate = sf.read(str(wav), dtype="float32")
    return audio, rate  # 22050 Hz: transcribe_utterance resamples to 16 kHz


def test_transcribe_utterance_returns_the_words(tmp_path):
    audio, rate = espeak("Hello there. What is your name?", tmp_path)
    assert rate != 16000
    text = transcribe_utterance(audio, rate).lower()
    assert "hello" in text and "name" in text


def test_empty_recording_is_refused():
    with pytest.raises(BadInputError, match="empty"):
        transcribe_utterance(np.zeros(0, dtype=np.float32), 16000)
