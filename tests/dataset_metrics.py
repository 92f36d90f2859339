"""Dataset measures of issue 12 against a fixture's truth: how many kept dataset clips hold one speaker only.

A kept clip (its trimmed window of the dialogue track) is *single-speaker* when no true line of another
character overlaps it by more than ``tolerance`` seconds, and *right* when the character it was built for speaks
most of its true speech.
"""

from __future__ import annotations


def dataset_purity(svc, media_id: int, summary: dict, character: str, truth, *, tolerance: float = 0.1) -> dict:
    """{"clips", "single_speaker", "right_speaker", "impure": [(clip_id, other characters)]} of one built dataset."""
    windows = {s["clip_id"]: (s["start"] + (s["trim_start"] or 0), s["end"] + (s["trim_end"] or 0))
               for s in svc.segments(media_id)}
    single = right = 0
    impure = []
    for item in summary["items"]:
        a, b = windows[item["clip_id"]]
        speech: dict[str, float] = {}
        for t in truth:
            ov = min(b, t.end) - max(a, t.start)
            if ov > 0:
                speech[t.character] = speech.get(t.character, 0.0) + ov
        others = sorted(c for c, s in speech.items() if c != character and s > tolerance)
        single += not others
        right += bool(speech) and max(speech, key=speech.get) == character
        if others:
            impure.append((item["clip_id"], others))
    n = len(summary["items"])
    return {"clips": n, "single_speaker": single / n if n else None, "right_speaker": right / n if n else None,
            "impure": impure}
