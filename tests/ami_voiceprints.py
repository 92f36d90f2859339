"""Test/bench harness: cross-recording voiceprint matching on the AMI excerpts.

Enrol every speaker of some files from all their clean speech there (stretches of their reference turns where
nobody else talks, >= 3 s in total), then match clean pieces (1.5-6 s) of every speaker in the *other* files
against those enrolments: a probe of an enrolled speaker counts right when the best-scoring voiceprint is theirs
and scores over the threshold; a probe of anybody else (not enrolled: a stranger) must score under it.
precision = right accepts / all accepts, recall = right accepts / probes of enrolled speakers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_paths import read_rttm

RATE = 16000
ENROL_FILES = ("trn00", "trn01", "trn06", "trn07")  # first meetings of the speakers who recur in later excerpts


def clean_spans(turns):
    out = []
    for i, (s, e, spk) in enumerate(turns):
        spans = [(s, min(e, 30.0))]
        for a, b, other in turns:
            if other == spk:
                continue
            spans = [p for x, y in spans for p in ((x, min(y, a)), (max(x, b), y)) if p[1] > p[0]]
        out += [(spk, x, y) for x, y in spans if y - x > 0.3]
    return out


def pieces(ami: Path, min_len=1.5, max_len=6.0):
    """(speaker, uri, audio) clean probe pieces and {uri: {speaker: clean audio}}."""
    from pipeline import media

    probes, clean = [], {}
    for uri, turns in sorted(read_rttm(ami / "train.rttm").items()):
        audio = media.load_audio(ami / f"{uri}.wav")
        for spk, x, y in clean_spans(turns):
            seg = audio[int(x * RATE): int(y * RATE)]
            clean.setdefault(uri, {}).setdefault(spk, []).append(seg)
            t = x
            while y - t >= min_len:
                b = min(y, t + max_len)
                probes.append((spk, uri, audio[int(t * RATE): int(b * RATE)]))
                t = b
    return probes, {u: {s: np.concatenate(v) for s, v in d.items()} for u, d in clean.items()}


def embeddings(ami: Path, embed, *, min_enrol=2.0):
    """({(uri, speaker): enrolment embedding}, [(speaker, uri, embedding)] probes) with embed(audio) -> unit vector."""
    probes, clean = pieces(ami)
    enr = {(u, s): embed(a) for u, d in clean.items() for s, a in sorted(d.items()) if len(a) >= min_enrol * RATE}
    return enr, [(spk, uri, embed(a)) for spk, uri, a in probes]


def cross_recording(enr: dict, probes: list, score_fn, min_recall=0.5):
    """Every excerpt in turn is the enrolment recording (its speakers enrolled), probes come from the other nine.
    Returns the best precision at recall >= min_recall with its threshold (see module docstring)."""
    best = []
    for uri in sorted({u for u, _ in enr}):
        names = [s for u, s in enr if u == uri]
        mat = np.stack([enr[(uri, s)] for s in names])
        for spk, puri, e in probes:
            if puri == uri:
                continue
            sc = score_fn(e, mat)
            i = int(np.argmax(sc))
            best.append((float(sc[i]), names[i] == spk, spk in names))
    n_pos = sum(1 for *_, enrolled in best if enrolled)
    out = (0.0, None, 0.0)
    for t in sorted({b[0] for b in best}):
        acc = [b for b in best if b[0] >= t]
        right = sum(1 for b in acc if b[1])
        rec = right / max(n_pos, 1)
        prec = right / len(acc) if acc else 0.0
        if rec >= min_recall and prec > out[0]:
            out = (prec, t, rec)
    return {"precision": out[0], "threshold": out[1], "recall": out[2], "trials": len(best), "enrolled_trials": n_pos}
