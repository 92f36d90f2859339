"""Test/bench harness: score the offline diarizer on the AMI excerpts (DER per file, pyannote.metrics, collar 0,
overlap scored, inside the UEM), with VAD regions and window embeddings cached on disk so re-runs only re-cluster."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from data_paths import read_rttm, read_uem

URIS = [f"trn{i:02d}" for i in range(10)]


def der_parts(turns, ref, uem, collar=0.0) -> dict:
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    hyp, r = Annotation(), Annotation()
    for t in turns:
        hyp[Segment(t.start, t.end)] = t.speaker
    for s, e, spk in ref:
        r[Segment(s, e)] = spk
    m = DiarizationErrorRate(collar=collar)
    d = m(r, hyp, uem=Timeline([Segment(*uem)]), detailed=True)
    tot = max(d["total"], 1e-9)
    return {"der": d["diarization error rate"], "miss_s": d["missed detection"], "false_alarm_s": d["false alarm"],
            "confusion_s": d["confusion"], "total": d["total"], "miss": d["missed detection"] / tot,
            "false_alarm": d["false alarm"] / tot, "confusion": d["confusion"] / tot}


def _cached(cache: Path | None, key: str, make):
    if cache is None:
        return make()
    cache.mkdir(parents=True, exist_ok=True)
    f = cache / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".npz")
    if f.is_file():
        z = np.load(f, allow_pickle=False)
        return [z[k] for k in sorted(z.files)]
    out = make()
    np.savez(f, **{f"a{i}": v for i, v in enumerate(out)})
    return out


def diarize_file(ami: Path, uri: str, *, cache: Path | None = None, oracle_vad: bool = False, params=None,
                 overlap: bool = False, lo: int = 1):
    from pipeline import media
    from pipeline.stages import voiceprint as vp
    from pipeline.stages.diarize import ResemblyzerDiarizer, clip_regions, speech_regions
    from pipeline.types import Region

    dia = ResemblyzerDiarizer(**(params or {}))
    wav = ami / f"{uri}.wav"
    audio = media.load_audio(wav)
    duration = len(audio) / 16000
    if oracle_vad:
        from pyannote.core import Annotation, Segment

        ann = Annotation()
        for s, e, spk in read_rttm(ami / "train.rttm")[uri]:
            ann[Segment(s, e)] = spk
        regions = [Region(s.start, s.end) for s in ann.get_timeline().support()]
    else:
        (reg,) = _cached(cache, f"vad2|{wav}|{wav.stat().st_size}",
                         lambda: [np.array([[r.start, r.end] for r in speech_regions(audio)], dtype=np.float64)
                                  .reshape(-1, 2)])
        regions = [Region(float(s), float(e)) for s, e in reg]
    regions = clip_regions(regions, duration)
    starts = dia.window_starts(regions, duration)
    p = dia.params
    key = f"emb3|{wav}|{p.window}|{p.per_window_gain}|" + ",".join(f"{s:.2f}" for s in starts)
    (x,) = _cached(cache, key, lambda: [dia.embed_span(vp.normalize_volume(audio), 0, starts)])
    counts = None
    if overlap:
        from pipeline.stages import overlap as ov

        (counts,) = _cached(cache, f"counts1|{wav}|{wav.stat().st_size}", lambda: [ov.speaker_counts(audio)])
    return dia.diarize_embedded(duration, regions, starts, x, counts=counts, min_speakers=lo), audio


def report(ami: Path, *, cache: Path | None = None, oracle_vad: bool = False, params=None, uris=URIS,
           overlap: bool = False, lo: int = 1, backend: str | None = None) -> dict:
    """Per-file and pooled DER of the window-clustering backend (cached pieces), or of ``backend`` run whole."""
    refs = read_rttm(ami / "train.rttm")
    uems = read_uem(ami / "train.uem")
    files = []
    for uri in uris:
        if backend:
            from pipeline import media
            from pipeline.stages import get_backend

            d = get_backend("diarize", backend, **(params or {})).diarize(media.load_audio(ami / f"{uri}.wav"), 16000,
                                                                          min_speakers=lo)
        else:
            d, _ = diarize_file(ami, uri, cache=cache, oracle_vad=oracle_vad, params=params, overlap=overlap, lo=lo)
        parts = der_parts(d.turns, refs[uri], uems[uri])
        parts.update(uri=uri, ref_speakers=len({s for *_, s in refs[uri]}), hyp_speakers=len(d.speakers()))
        files.append(parts)
    tot = sum(f["total"] for f in files)
    out = {"files": files, "mean": float(np.mean([f["der"] for f in files]))}
    for k in ("miss", "false_alarm", "confusion"):
        out[k] = sum(f[k + "_s"] for f in files) / tot
    out["total"] = out["miss"] + out["false_alarm"] + out["confusion"]
    return out
