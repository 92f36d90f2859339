"""Voiceprints learnt from imported items: each character a screenplay/SDH named gets an automatic voiceprint
(embedded by pipeline.stages.voiceprint, stored by pipeline.library.voiceprints)."""

from __future__ import annotations

import numpy as np

from ..library import voiceprints as vplib


def enrol_auto(lib, media_id: int, read_span, *, embed=None) -> list[int]:
    """Enrol (again) the automatic voiceprint of each character of an item whose lines a screenplay/SDH named.

    ``read_span(start, end)`` gives that stretch of the item's 16 kHz analysis audio. Each character's lines (up to
    vplib.AUTO_MAX_SECONDS, spread over the item) are embedded together; characters with under vplib.AUTO_MIN_SECONDS are
    skipped. The item's previous automatic voiceprints are replaced; named and file voiceprints stay."""
    if embed is None:
        from ..stages.voiceprint import embed
    spans = vplib.auto_spans(lib.db, media_id)
    prints = []
    for name, sp in sorted(spans.items()):
        total = sum(e - s for s, e in sp)
        if total < vplib.AUTO_MIN_SECONDS:
            continue
        if total > vplib.AUTO_MAX_SECONDS:  # an even spread over the item rather than its first minute
            step = total / vplib.AUTO_MAX_SECONDS
            sp = sp[:: max(1, int(np.ceil(step)))]
        audio = np.concatenate([read_span(s, e) for s, e in sp])
        seconds = len(audio) / 16000
        if seconds < vplib.AUTO_MIN_SECONDS:
            continue
        prints.append((name, embed(audio, 16000), seconds))
    with lib.atomic() as db:
        return vplib.replace_auto(db, media_id, prints)
