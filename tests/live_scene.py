"""Test/bench material: a multi-speaker scene spoken by the offline Piper default voice and espeak-ng voices.

:func:`scene` returns 16 kHz mono audio and the truth ``[(start, end, speaker, text)]`` with exact times (each line
trimmed of its own silence, joined by pauses)."""

from __future__ import annotations

import numpy as np

from tests.speech_samples import RATE, espeak, silence, trim

LINES = [
    ("joe", "Good morning, I brought the maps you asked for."),
    ("anna", "Thank you, put them on the table by the window."),
    ("joe", "The road to the harbor is closed after the storm."),
    ("anna", "Then we will take the boat along the river instead."),
    ("joe", "The boat is old, but the engine still works well."),
    ("anna", "We should leave before the sun goes down tonight."),
    ("joe", "I will pack some bread, water and a warm blanket."),
    ("anna", "Bring the lamp too, the nights are very dark here."),
]
EXTRA = [
    "The village market opens early on every Saturday morning.",
    "My brother repairs bicycles in a small shop near the station.",
    "We planted apple trees in the garden behind the house.",
    "The children walked to school along the quiet country road.",
    "A cold wind came down from the mountains in the evening.",
    "She wrote a long letter to her friend in the city.",
    "The train was late again because of the snow on the tracks.",
    "He painted the old fence white before the summer began.",
]


def speak(speaker: str, text: str) -> np.ndarray:
    """One line in a speaker's voice at 16 kHz: 'joe' is Piper's default voice (espeak 'en+m3' if Piper is
    missing), 'anna' espeak-ng's 'en+f3'."""
    if speaker == "joe":
        from pipeline.media import resample
        from pipeline.voices.default_voice import piper_voice

        v = piper_voice()
        if v is not None:
            a = np.concatenate(list(v.sentences(text)))
            return trim(resample(a, v.config.sample_rate, RATE))
        return trim(espeak(text, voice="en+m3"))
    return trim(espeak(text, voice="en+f3", speed=150))


def scene(seconds: float = 0.0, *, gap: float = 1.0, lead: float = 1.0) -> tuple[np.ndarray, list[tuple[float, float, str, str]]]:
    """The scene's lines (repeated with extra sentences, alternating speakers, until `seconds` long)."""
    lines = list(LINES)
    i = 0
    parts, truth, t = [silence(lead)], [], lead
    while True:
        for speaker, text in lines:
            a = speak(speaker, text)
            truth.append((t, t + len(a) / RATE, speaker, text))
            parts += [a, silence(gap)]
            t += len(a) / RATE + gap
        if t >= seconds:
            break
        lines = [(("joe", "anna")[(i + k) % 2], EXTRA[(i + k) % len(EXTRA)]) for k in range(4)]
        i += 4
    return np.concatenate(parts), truth


def wer(ref: str, hyp: str) -> float:
    """Word error rate (lower case, punctuation ignored)."""
    import re

    r = re.sub(r"[^\w' ]+", " ", ref.lower()).split()
    h = re.sub(r"[^\w' ]+", " ", hyp.lower()).split()
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(h)] / max(1, len(r))


def speaker_consistency(truth, lines) -> tuple[float, dict[str, str]]:
    """Share of final live lines whose label is their true speaker's majority label, and that mapping."""
    from collections import Counter

    pairs = []
    for ln in lines:
        if not ln.get("final") or not ln.get("speaker"):
            continue
        best = max(truth, key=lambda tr: min(tr[1], ln["end"]) - max(tr[0], ln["start"]))
        if min(best[1], ln["end"]) - max(best[0], ln["start"]) > 0:
            pairs.append((best[2], ln.get("name") or ln["speaker"]))
    if not pairs:
        return 0.0, {}
    mapping = {spk: Counter(lab for s, lab in pairs if s == spk).most_common(1)[0][0] for spk in {s for s, _ in pairs}}
    return sum(mapping[s] == lab for s, lab in pairs) / len(pairs), mapping
