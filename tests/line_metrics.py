"""Real-release-like subtitles made from the three-voice fixture's truth, and the line measures of issue 12.

:func:`release_cues`: every third long line condensed (its first and last words left out, the cue starting late
and ending early by their share of the line's time), other long lines split over two cues with a three-word
fragment last (the first cue without closing punctuation), the rest as spoken.

:func:`measure`: per character precision/recall (each segment matched to the true line it overlaps most, the
overlap weighed by text similarity where true lines overlap), word
error rate of the segments' texts against the spoken text (jiwer, over all true lines: each true line against
its segments' texts joined in order), speech-edge error median/p95 (per true line the first matched segment's
start and the last one's end against the true edges) and how many true lines came out as more than one clip.

:func:`dataset_ready`: how many lines the dataset builder would take and how many of them hold one true speaker.
"""

from __future__ import annotations

import re

import numpy as np

_PUNCT = re.compile(r"[^\w' ]+")


def release_cues(lines) -> tuple[list[tuple[float, float, str]], dict]:
    """(cues, counts {"condensed", "split"})."""
    cues: list[tuple[float, float, str]] = []
    counts = {"condensed": 0, "split": 0}
    for i, ln in enumerate(lines):
        words = ln.text.split()
        n, dur = len(words), ln.end - ln.start
        if n >= 7 and i % 3 == 0:
            kept = words[1:-2]
            text = " ".join(kept).rstrip(",;") + "."
            cues.append((ln.start + dur * 1 / n, ln.end - dur * 2 / n, text[0].upper() + text[1:]))
            counts["condensed"] += 1
        elif n >= 7 and i % 3 == 1:
            cut = ln.start + dur * (n - 3) / n
            cues.append((ln.start, cut - 0.02, " ".join(words[:-3]).rstrip(",;")))
            cues.append((cut + 0.02, ln.end, " ".join(words[-3:])))
            counts["split"] += 1
        else:
            cues.append((ln.start, ln.end, ln.text))
    return cues, counts


def _norm(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower().replace("’", "'")).split())


def measure(segs: list[dict], truth, characters: list[str]) -> dict:
    found = {c: 0 for c in characters}
    correct = {c: 0 for c in characters}
    hit = {c: set() for c in characters}
    per_truth: dict[int, list[dict]] = {}
    from rapidfuzz import fuzz

    for s in segs:
        best, best_fit = None, 0.0
        for i, t in enumerate(truth):
            ov = min(s["end"], t.end) - max(s["start"], t.start)
            if ov <= 0:
                continue
            # time overlap, weighed by how alike the texts are: an interruption lies inside the tail of the line it
            # cuts into, and only its words say which of the two overlapping true lines it is
            fit = ov * (0.25 + fuzz.ratio(_norm(s["text"] or ""), _norm(t.text)) / 100.0)
            if fit > best_fit:
                best, best_fit = i, fit
        if best is not None:
            per_truth.setdefault(best, []).append(s)
        name = (s.get("character") or "").upper()
        if name in found:
            found[name] += 1
            if best is not None and truth[best].character == name:
                correct[name] += 1
                hit[name].add(best)
    pr = {}
    for c in characters:
        total = sum(1 for t in truth if t.character == c)
        pr[c] = (correct[c] / found[c] if found[c] else 0.0, len(hit[c]) / total if total else 0.0)
    import jiwer

    refs, hyps, edges = [], [], []
    fragments = 0
    for i, t in enumerate(truth):
        mine = sorted(per_truth.get(i, []), key=lambda s: s["start"])
        refs.append(_norm(t.text))
        hyps.append(_norm(" ".join(s["text"] for s in mine)))
        if mine:
            edges += [abs(mine[0]["start"] - t.start), abs(mine[-1]["end"] - t.end)]
            fragments += len(mine) > 1
    wer = jiwer.wer(refs, [h or "<none>" for h in hyps])
    e = np.asarray(edges) if edges else np.asarray([np.inf])
    return {"pr": pr, "wer": round(float(wer), 4), "edge_median_ms": round(float(np.median(e)) * 1000),
            "edge_p95_ms": round(float(np.percentile(e, 95)) * 1000), "fragmented": fragments, "segments": len(segs),
            "sources": {k: sum(1 for s in segs if s.get("text_source") == k) for k in ("script", "subtitle", "subtitle+asr", "asr", "user")},
            "check_text": sum(1 for s in segs if s.get("check_text"))}


def describe(name: str, m: dict) -> str:
    pr = " ".join(f"{c}: P={p:.2f} R={r:.2f}" for c, (p, r) in m["pr"].items())
    return (f"{name}: {pr} | WER {m['wer'] * 100:.1f}% | edge median {m['edge_median_ms']} ms p95 {m['edge_p95_ms']} ms"
            f" | {m['segments']} lines, {m['fragmented']} split true lines | text from {m['sources']}, "
            f"{m['check_text']} to check")


def dataset_ready(rows: list[dict], truth) -> dict:
    """How many rows the dataset builder would take, how many hold a single true speaker, how many the right one."""
    from pipeline.voices.dataset import MIN_CONFIDENCE

    ready = single = right = 0
    for r in rows:
        s, e = r["start"] + (r["trim_start"] or 0), r["end"] + (r["trim_end"] or 0)
        conf = 1.0 if r["confidence"] is None else r["confidence"]
        if (r["status"] == "rejected" or not r["character"] or not (r["text"] or "").strip() or r.get("check_text")
                or r["overlap"] or conf < MIN_CONFIDENCE or not 2.0 <= e - s <= 15.0):
            continue
        ready += 1
        who = {t.character for t in truth if min(e, t.end) - max(s, t.start) > 0.05}
        if len(who) == 1:
            single += 1
            right += who == {r["character"].upper()}
    return {"ready": ready, "single": single, "right": right}
