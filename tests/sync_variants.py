"""Generated subtitle timing variants of real releases (for tests/test_sync_sections.py and bench/bench_sync.py).

Each variant is synthetic dialogue in media time (tests.test_sync.dialogue), what a VAD and an ASR would say about
it, and subtitles in another clock: a constant shift, framerate drift, a cut scene, an ad break, all combined, and
another film's subtitles. ``truth`` holds each cue's true speech start (NaN for cues of a scene the media lacks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.types import Line, Region, Word
from tests.test_sync import NTSC, asr_words, dialogue, speech_regions

DURATION = 900.0


@dataclass
class Variant:
    name: str
    lines: list[Line]
    truth: np.ndarray  # true media start per cue, NaN where the media has no such speech
    regions: list[Region]
    words: list[Word]
    duration: float
    foreign: bool = False  # subtitles of another film: must not be applied
    sections: int = 1  # how many offsets the truth has


def _cues(utts, sub_times, seed: int, extra=()) -> tuple[list[Line], np.ndarray]:
    """Cues at subtitle-clock times ``sub_times`` (start, end) per utterance, plus ``extra`` cues with no truth."""
    rng = np.random.default_rng(seed)
    rows = []
    for (s, e, w), (cs, ce) in zip(utts, sub_times):
        rows.append((cs, ce + rng.uniform(0.0, 0.4), " ".join(w).capitalize() + ".", s))
    for cs, ce, text in extra:
        rows.append((cs, ce, text, np.nan))
    rows.sort(key=lambda r: r[0])
    for i in range(len(rows) - 1):  # a cue ends before the next starts, as in a real file
        if rows[i][1] > rows[i + 1][0] - 0.05:
            rows[i] = (rows[i][0], max(rows[i][0] + 0.2, rows[i + 1][0] - 0.05), rows[i][2], rows[i][3])
    lines = [Line(cs, ce, text, index=i) for i, (cs, ce, text, _) in enumerate(rows)]
    return lines, np.array([r[3] for r in rows], dtype=float)


def _removed_scene(seed: int, t0: float, length: float) -> list[tuple[float, float, str]]:
    """Cues of a scene the media lacks, in subtitle time [t0, t0 + length)."""
    return [(s + t0, e + t0, " ".join(w).capitalize() + ".") for s, e, w in dialogue(seed, length + 7.0) if e + t0 < t0 + length]


def make(name: str, seed: int = 1) -> Variant:
    """One named variant: shift, fps, cut, ad, combined, cut+ad or other-film."""
    utts = dialogue(seed, DURATION)
    duration = DURATION
    regions = speech_regions(utts, seed, duration)
    words = asr_words(utts, seed)
    # media time m ↔ subtitle time: m = scale * t + offset_k, k the section
    if name == "shift":
        subs, extra, k = [((s - 2.3), (e - 2.3)) for s, e, _ in utts], [], 1
    elif name == "fps":
        a, b = 25 / NTSC, -1.2
        subs, extra, k = [((s - b) / a, (e - b) / a) for s, e, _ in utts], [], 1
    elif name == "cut":  # the media lacks a 20 s scene at 5:00: later cues are 20 s late
        cut = 300.0
        subs = [(s, e) if s < cut else (s + 20.0, e + 20.0) for s, e, _ in utts]
        extra, k = _removed_scene(seed + 50, cut, 20.0), 2
    elif name == "ad":  # the media has a 90 s ad break after the middle: later speech is 90 s later
        brk = 450.0
        media = [(s, e, w) if s < brk else (s + 90.0, e + 90.0, w) for s, e, w in utts]
        subs, extra, k = [(s, e) for s, e, _ in utts], [], 2
        duration = DURATION + 90.0
        ad_talk = [(s + brk, e + brk, w) for s, e, w in dialogue(seed + 60, 90.0)]  # the ad's own speech
        regions = speech_regions(media + ad_talk, seed, duration)
        words = asr_words(media, seed) + asr_words(ad_talk, seed + 1)
        utts = media
    elif name == "combined":  # shift 2.3 s, 25→23.976 fps, and a 20 s cut at 10:00
        a, b, cut = 25 / NTSC, 2.3, 600.0
        subs = [((s - b) / a + (20.0 if s >= cut else 0.0), (e - b) / a + (20.0 if s >= cut else 0.0)) for s, e, _ in utts]
        extra, k = _removed_scene(seed + 50, (cut - b) / a, 20.0), 2
    elif name == "cut+ad":  # a 20 s cut at 4:00 and a 90 s ad break at 10:00: three sections
        cut, brk = 240.0, 600.0
        media = [(s, e, w) if s < brk else (s + 90.0, e + 90.0, w) for s, e, w in utts]
        subs = [(s, e) if s < cut else (s + 20.0, e + 20.0) for s, e, _ in utts]
        extra, k = _removed_scene(seed + 50, cut, 20.0), 3
        duration = DURATION + 90.0
        ad_talk = [(s + brk, e + brk, w) for s, e, w in dialogue(seed + 60, 90.0)]
        regions = speech_regions(media + ad_talk, seed, duration)
        words = asr_words(media, seed) + asr_words(ad_talk, seed + 1)
        utts = media
    elif name == "other-film":
        other = dialogue(seed + 6, DURATION)
        lines, _ = _cues(other, [(s - 3.0, e - 3.0) for s, e, _ in other], seed)
        return Variant(name, lines, np.full(len(lines), np.nan), regions, words, duration, foreign=True)
    else:
        raise ValueError(f"unknown variant {name!r}")
    lines, truth = _cues(utts, subs, seed, extra)
    return Variant(name, lines, truth, regions, words, duration, sections=k)


VARIANTS = ["shift", "fps", "cut", "ad", "combined", "cut+ad", "other-film"]
