"""The analysis chain on a library item, as job stages: VAD → ASR (when needed) → subtitle sync →
forced alignment → diarization → voiceprint matching → attribution → save.

Each stage reads the item's 16 kHz analysis audio and earlier stages' cached results and returns plain JSON;
only the final ``save`` stage writes to the database, in one transaction.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from pipeline import media as media_io
from pipeline.jobs import Stage, StageContext
from pipeline.library import Library
from pipeline.library import edits as edit_rows
from pipeline.library import labels as label_rows
from pipeline.library import lines as line_rows
from pipeline.library import scripts as script_rows
from pipeline.types import NO_CUE, Diarization, Line, Region, Turn, line_from_dict


@dataclass
class AnalysisOptions:
    asr: str = "auto"  # auto (only without subtitles) | always | never
    asr_model: str | None = None
    align: bool = True
    diarize: bool = True
    sync: bool = True
    script_id: int | None = None
    script_path: str | None = None
    backends: dict | None = None  # stage -> backend name
    verbatim: bool = True  # join split cues, speech edges, text chosen against the audio (workflows/utterances)


# Long media is analysed in windows of this many seconds of the 16 kHz analysis copy (≈ 38 MB of float32 each),
# so memory does not grow with the item's length; media no longer than one window is analysed whole, as before.
ANALYSIS_WINDOW = 600.0
VAD_OVERLAP = 5.0  # seconds of context read on each side of a VAD window (the network's state warms up)
ALIGN_MARGIN = 1.0  # seconds of audio beyond an aligner's own padding around a chunk of lines
DIARIZE_MARGIN = 0.05  # seconds of context around a stretch of embedding windows (> the mel frames' half width)


def analysis_path(lib: Library, media_id: int) -> Path:
    return Path(lib.abspath(lib.media(media_id)["analysis_path"]))


def analysis_duration(lib: Library, media_id: int) -> float:
    """Length in seconds of the item's analysis copy (read from the file header)."""
    import soundfile as sf

    info = sf.info(str(analysis_path(lib, media_id)))
    return info.frames / info.samplerate


def _as_analysis(audio: np.ndarray, rate: int) -> np.ndarray:
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate != media_io.ANALYSIS_RATE:
        audio = media_io.resample(audio, rate, media_io.ANALYSIS_RATE)
    return np.ascontiguousarray(audio, dtype=np.float32)


def analysis_span(lib: Library, media_id: int, start: float, end: float) -> np.ndarray:
    """[start, end) seconds of the item's 16 kHz mono analysis audio, read without decoding the rest."""
    audio, rate = media_io.read_audio_span(analysis_path(lib, media_id), start, end)
    return _as_analysis(audio, rate)


def analysis_audio(lib: Library, media_id: int) -> np.ndarray:
    """The item's whole 16 kHz mono analysis audio (for one-off commands; the analysis stages read windows)."""
    audio, rate = media_io.read_audio_file(analysis_path(lib, media_id))
    return _as_analysis(audio, rate)


def _scaled(progress, lo: float, hi: float):
    return lambda f, m="": progress(lo + (hi - lo) * min(1.0, max(0.0, f)), m)


def windowed_speech_regions(vad, lib: Library, media_id: int, *, min_speech: float = 0.25, min_silence: float = 0.3,
                            pad: float = 0.05, progress=lambda f, m="": None, cancel=None) -> tuple[list[Region], float]:
    """(speech regions, RMS of the whole file) from a VAD backend run window by window over the analysis copy.

    Each window is read with VAD_OVERLAP seconds of context each side; its raw spans are kept only inside the part
    it owns, then merged, filtered and padded once over the whole file (the same post-processing as
    ``speech_regions`` on the whole array, which is what a file of one window gets)."""
    from pipeline.stages.vad import RATE, postprocess

    duration = analysis_duration(lib, media_id)
    n = max(1, int(np.ceil(duration / ANALYSIS_WINDOW - 1e-9)))
    spans: list[tuple[float, float]] = []
    square_sum, count = 0.0, 0
    for i in range(n):
        own0, own1 = i * ANALYSIS_WINDOW, (duration if i == n - 1 else (i + 1) * ANALYSIS_WINDOW)
        read0 = 0.0 if n == 1 else max(0.0, own0 - VAD_OVERLAP)
        read1 = duration if n == 1 else min(duration, own1 + VAD_OVERLAP)
        audio = analysis_span(lib, media_id, read0, read1)
        own = audio[int(round((own0 - read0) * RATE)): int(round((own1 - read0) * RATE))]
        square_sum += float(np.sum(np.square(own, dtype=np.float64)))
        count += len(own)
        raw = vad.speech_regions(audio, RATE, min_speech=0.0, min_silence=0.0, pad=0.0,
                                 progress=_scaled(progress, i / n, (i + 1) / n), cancel=cancel)
        for r in raw:
            a, b = max(own0, r.start + read0), min(own1, r.end + read0)
            if b > a:
                spans.append((a, b))
        del audio, own
    regions = postprocess(spans, duration, min_speech=min_speech, min_silence=min_silence, pad=pad)
    progress(1.0, f"{len(regions)} speech regions")
    return regions, (float(np.sqrt(square_sum / count)) if count else 0.0)


def silence_windows(duration: float, regions: list[Region], window: float | None = None) -> list[tuple[float, float]]:
    """Cut [0, duration] into consecutive windows of at most ``window`` seconds, each cut placed in a pause between
    speech regions where one exists in the window's second half (so no word is cut in two)."""
    window = window or ANALYSIS_WINDOW
    if duration <= window:
        return [(0.0, duration)]
    spans = sorted((r.start, r.end) for r in regions)
    gaps, last = [], 0.0
    for s, e in spans:
        if s > last:
            gaps.append((last, s))
        last = max(last, e)
    if duration > last:
        gaps.append((last, duration))
    out, cur = [], 0.0
    while duration - cur > window:
        lo, hi = cur + window / 2, cur + window
        best = None
        for a, b in gaps:
            a, b = max(a, lo), min(b, hi)
            if b - a < 0.2:
                continue
            cut = b - min(1.0, (b - a) / 2)  # near the pause's end but inside it
            if best is None or cut > best:
                best = cut
        cut = best if best is not None else hi
        out.append((cur, cut))
        cur = cut
    out.append((cur, duration))
    return out


def shift_line(ln: Line, dt: float) -> Line:
    """A copy of a line (and its words) moved by dt seconds."""
    from dataclasses import replace

    from pipeline.types import Word

    if dt == 0:
        return ln
    words = [Word(round(w.start + dt, 3), round(w.end + dt, 3), w.text, w.probability) for w in ln.words]
    return replace(ln, start=round(ln.start + dt, 3), end=round(ln.end + dt, 3), words=words, tags=list(ln.tags))


def subtitle_lines(lib: Library, media_id: int) -> tuple[int | None, list[Line], list[int]]:
    """(primary track id, its dialogue lines as Line objects, their line ids) for the item."""
    track_id, rows = line_rows.primary_track_lines(lib.db, media_id)
    if track_id is None:
        return None, [], []
    lines = [Line(start=r["start"], end=r["end"], text=r["text"], speaker_cue=r["speaker_cue"],
                  tags=json.loads(r["tags"] or "[]"), index=i, turn=bool(r["turn"])) for i, r in enumerate(rows)]
    return track_id, lines, [r["id"] for r in rows]


def _backend(ctx: StageContext, stage: str, **options):
    from pipeline.config import Settings
    from pipeline.stages import get_backend

    names = (ctx.params.get("backends") or {}) | {}
    name = names.get(stage) or Settings.load(ctx.library.home).backends.get(stage) or None
    return get_backend(stage, name, **options)


def _asr_backend(ctx: StageContext, opts: AnalysisOptions) -> tuple:
    """(ASR backend, model name) of this analysis: the options' model, else the settings'."""
    from pipeline.config import Settings

    model = opts.asr_model or Settings.load(ctx.library.home).asr_model
    return _backend(ctx, "asr", model=model), model


def _media_id(ctx: StageContext) -> int:
    return ctx.params.get("media_id") or ctx.results["commit"]["media_id"]


def stage_vad() -> Stage:
    def run(ctx: StageContext) -> dict:
        vad = _backend(ctx, "vad")
        regions, _ = windowed_speech_regions(vad, ctx.library, _media_id(ctx), progress=ctx.progress, cancel=ctx.cancel)
        return {"backend": vad.name, "regions": [[r.start, r.end] for r in regions]}

    return Stage("vad", run, weight=1.0, label="finding speech")


def stage_asr(opts: AnalysisOptions) -> Stage:
    def run(ctx: StageContext) -> dict:
        mid = _media_id(ctx)
        _, lines, _ = subtitle_lines(ctx.library, mid)
        if opts.asr == "never" or (opts.asr == "auto" and lines):
            return {"skipped": True, "lines": []}
        asr, _ = _asr_backend(ctx, opts)
        duration = analysis_duration(ctx.library, mid)
        regions = [Region(a, b) for a, b in (ctx.results.get("vad") or {}).get("regions", [])]
        windows = silence_windows(duration, regions)
        lines: list[Line] = []
        language = None
        for i, (w0, w1) in enumerate(windows):  # one window at a time, cut in pauses; times moved back to the file's
            audio = analysis_span(ctx.library, mid, w0, w1)
            tr = asr.transcribe(audio, media_io.ANALYSIS_RATE, cancel=ctx.cancel,
                                progress=_scaled(ctx.progress, i / len(windows), (i + 1) / len(windows)))
            language = language or tr.language
            for ln in tr.lines:
                lines.append(shift_line(ln, w0))
                lines[-1].index = len(lines) - 1
            del audio
        return {"skipped": False, "backend": asr.name, "language": language, "lines": [ln.to_dict() for ln in lines]}

    return Stage("asr", run, weight=8.0, label="transcribing")


def stage_sync(opts: AnalysisOptions) -> Stage:
    def run(ctx: StageContext) -> dict:
        from pipeline.text.subtitles import describe_dropped, drop_bad_cues
        from pipeline.text.sync import apply_sync, estimate_sync

        mid = _media_id(ctx)
        _, lines, _ = subtitle_lines(ctx.library, mid)
        if not lines or not opts.sync:
            return {"applied": False, "lines": None}
        regions = [Region(a, b) for a, b in ctx.results["vad"]["regions"]]
        words = [w for d in ctx.results["asr"]["lines"] for w in line_from_dict(d).words] or None
        duration = ctx.library.media(mid)["duration"]
        res = estimate_sync(lines, speech=regions, asr_words=words, duration=duration)
        ctx.progress(1.0, res.describe())
        applied = res.reliable and not res.is_identity()
        new_lines = apply_sync(lines, res) if applied else lines
        # the import kept cues a sync could still move inside the media; what is still outside now is dropped
        new_lines, dropped = drop_bad_cues(new_lines, duration)
        warning = describe_dropped(dropped, duration)
        return {"applied": applied, "sync": res.record(applied),
                "lines": [ln.to_dict() for ln in new_lines], "dropped_cues": sum(dropped.values()),
                "warnings": [f"after sync: {warning}"] if warning else []}

    return Stage("sync", run, weight=0.5, label="syncing subtitles")


FILL_PAD = 0.2  # seconds of audio around a stretch of speech without cues given to ASR
FILL_MIN_PROBABILITY = 0.5  # mean word probability an ASR line there must reach (music and effects are misheard)


def stage_fill(opts: AnalysisOptions) -> Stage:
    """Speech no cue covers after sync (a scene the subtitles' edit lacks, lines left out) transcribed into lines
    of their own among the subtitle lines (index NO_CUE); the screenplay and the voices name them as any line."""
    def run(ctx: StageContext) -> dict:
        from pipeline.errors import WeaverError
        from pipeline.text.sync import uncovered_speech

        sync = ctx.results.get("sync") or {}
        if not sync.get("lines") or opts.asr == "never":
            return {"skipped": True, "lines": None}
        lines = [line_from_dict(d) for d in sync["lines"]]
        regions = [Region(a, b) for a, b in ctx.results["vad"]["regions"]]
        spans = uncovered_speech(regions, lines)
        if not spans:
            return {"skipped": True, "lines": None}
        from pipeline.stages.asr import model_language

        mid = _media_id(ctx)
        duration = analysis_duration(ctx.library, mid)
        added: list[Line] = []
        try:
            asr, model = _asr_backend(ctx, opts)
            for i, (a, b) in enumerate(spans):
                t0, t1 = max(0.0, a - FILL_PAD), min(duration, b + FILL_PAD)
                tr = asr.transcribe(analysis_span(ctx.library, mid, t0, t1), media_io.ANALYSIS_RATE, cancel=ctx.cancel,
                                    language=model_language(model))
                for ln in tr.lines:
                    heard = np.mean([w.probability for w in ln.words]) if ln.words else 0.0
                    if ln.text.strip() and heard >= FILL_MIN_PROBABILITY:
                        added.append(replace(shift_line(ln, t0), index=NO_CUE, confidence=round(float(heard), 3)))
                ctx.progress((i + 1) / len(spans), "transcribing speech the subtitles leave out")
        except (WeaverError, ImportError, OSError) as e:
            return {"skipped": True, "lines": None, "warnings": [
                f"speech without subtitles not transcribed ({str(e).splitlines()[0][:160]})"]}
        merged = sorted(lines + added, key=lambda ln: (ln.start, ln.end))
        seconds = sum(b - a for a, b in spans)
        note = f"{len(added)} line{'s' if len(added) != 1 else ''} transcribed in {seconds:.0f} s of speech without subtitles"
        ctx.progress(1.0, note)
        return {"skipped": False, "lines": [ln.to_dict() for ln in merged], "added": len(added),
                "spans": [list(s) for s in spans], "warnings": [note] if added else []}

    return Stage("fill", run, weight=0.5, label="transcribing speech without subtitles")


def current_lines(ctx: StageContext) -> tuple[list[Line], str]:
    """The dialogue lines as they stand after sync: subtitles (synced, with the lines transcribed where no cue
    covers the speech) or, without subtitles, ASR lines."""
    fill = ctx.results.get("fill") or {}
    if fill.get("lines"):
        return [line_from_dict(d) for d in fill["lines"]], "subtitle"
    sync = ctx.results.get("sync") or {}
    if sync.get("lines"):
        return [line_from_dict(d) for d in sync["lines"]], "subtitle"
    _, lines, _ = subtitle_lines(ctx.library, _media_id(ctx))
    if lines:
        return lines, "subtitle"
    return [line_from_dict(d) for d in ctx.results.get("asr", {}).get("lines", [])], "asr"


def line_chunks(lines: list[Line], duration: float, margin: float,
                window: float | None = None) -> list[tuple[float, float, list[int]]]:
    """Consecutive lines grouped into (start, end, line indexes) spans of at most about ``window`` seconds, each
    span reaching ``margin`` seconds past its lines; the whole file is one span when it fits one window."""
    window = window or ANALYSIS_WINDOW
    if duration <= window:
        return [(0.0, duration, list(range(len(lines))))]
    out: list[tuple[float, float, list[int]]] = []
    idx: list[int] = []
    lo = hi = 0.0
    for j, ln in enumerate(lines):
        s, e = ln.start, max(ln.start, ln.end)
        if idx and max(hi, e) - min(lo, s) > window - 2 * margin:
            out.append((lo, hi, idx))
            idx = []
        lo, hi = (min(lo, s), max(hi, e)) if idx else (s, e)
        idx.append(j)
    if idx:
        out.append((lo, hi, idx))
    # start on a 10 ms boundary (a whole number of samples); reach margin past the lines, inside the file
    return [(max(0.0, np.floor((a - margin) * 100) / 100), min(duration, b + margin), i) for a, b, i in out]


def stage_align(opts: AnalysisOptions) -> Stage:
    def run(ctx: StageContext) -> dict:
        lines, origin = current_lines(ctx)
        if not opts.align or not lines or origin == "asr":  # ASR lines already carry word times
            return {"skipped": True, "lines": None}
        aligner = _backend(ctx, "align")
        mid = _media_id(ctx)
        written = None
        from pipeline.text.sync import place_crowded_turns

        regions = [Region(a, b) for a, b in (ctx.results.get("vad") or {}).get("regions", [])]
        lines, turns_moved = place_crowded_turns(lines, regions)
        if opts.verbatim:  # the screenplay's fuller text where it holds the subtitle's (split and condensed cues)
            lines, written = script_fuller_lines(lines, load_script(ctx.library, opts))
        duration = analysis_duration(ctx.library, mid)
        margin = float(getattr(aligner, "pad", 0.75)) + ALIGN_MARGIN
        chunks = line_chunks(lines, duration, margin)
        aligned: list[Line] = []
        for i, (t0, t1, idx) in enumerate(chunks):  # only the audio around each chunk of lines is read
            audio = analysis_span(ctx.library, mid, t0, t1)
            part = aligner.align(audio, media_io.ANALYSIS_RATE, [shift_line(lines[j], -t0) for j in idx],
                                 progress=_scaled(ctx.progress, i / len(chunks), (i + 1) / len(chunks)),
                                 cancel=ctx.cancel)
            aligned.extend(shift_line(ln, t0) for ln in part)
            del audio
        return {"skipped": False, "backend": aligner.name, "lines": [ln.to_dict() for ln in aligned],
                "subtitle_texts": written, "turns_moved": turns_moved}

    return Stage("align", run, weight=3.0, label="aligning words")


def script_fuller_lines(lines: list[Line], script) -> tuple[list[Line], list[str] | None]:
    """Subtitle lines with the screenplay's fuller text (pipeline.text.utterances.fuller_from_script) when a
    screenplay that fits them is given; the lines unchanged and None otherwise. Second: each line's subtitle text."""
    from pipeline.text.attribution import DEFAULT_MIN_SCRIPT_SCORE, two_speaker_cue, align_script, is_group_name
    from pipeline.text.utterances import fuller_from_script

    if script is None or not script.lines or not lines:
        return lines, None
    al = align_script(lines, script)
    if al.score < DEFAULT_MIN_SCRIPT_SCORE:
        return lines, None
    matches = [j if (j is not None and q > 0 and not is_group_name(script.lines[j].character)
                     and not two_speaker_cue(ln.text)) else None
               for ln, j, q in zip(lines, al.matches, al.quality)]
    return fuller_from_script(lines, matches, [sl.text for sl in script.lines])


def stage_diarize(opts: AnalysisOptions) -> Stage:
    def run(ctx: StageContext) -> dict:
        if not opts.diarize:
            return {"skipped": True}
        dia = _backend(ctx, "diarize")
        result = windowed_diarization(dia, ctx.library, _media_id(ctx), progress=ctx.progress, cancel=ctx.cancel)
        return {"skipped": False, "backend": dia.name, "turns": [asdict(t) for t in result.turns],
                "embeddings": {k: [float(x) for x in v] for k, v in result.embeddings.items()}}

    return Stage("diarize", run, weight=4.0, label="finding speakers")


def windowed_diarization(dia, lib: Library, media_id: int, *, progress=lambda f, m="": None,
                         cancel=None) -> Diarization:
    """Diarize the item without holding its audio whole.

    Speech regions come from the diarizer's permissive VAD settings (threshold 0.3, pad 0.25 s: on real meeting
    speech this halves the detection error compared with the line-edge VAD stage), run window by window. The
    offline backend then embeds its windows stretch by stretch and clusters them all at once — the same result as
    the whole file in memory. Other backends get the whole audio when it fits one window, else one window at a time,
    with speakers linked across windows by their (Resemblyzer) voice embeddings.
    """
    from pipeline.stages import get_backend
    from pipeline.stages import diarize as dz
    from pipeline.stages import voiceprint as vp

    rate = media_io.ANALYSIS_RATE
    duration = analysis_duration(lib, media_id)
    streaming = hasattr(dia, "diarize_embedded")
    if not streaming and duration <= 3 * ANALYSIS_WINDOW:  # whole-view backends (pyannote) take 30 min at once
        audio = analysis_span(lib, media_id, 0.0, duration)
        return dia.diarize(audio, rate, regions=None, max_speakers=dz.max_speakers_for([Region(0.0, duration)]),
                           progress=progress, cancel=cancel)
    progress(0.0, "finding speech")
    vad = get_backend("vad", threshold=dz.VAD_THRESHOLD)
    regions, rms = windowed_speech_regions(vad, lib, media_id, pad=dz.VAD_PAD, progress=_scaled(progress, 0.0, 0.1),
                                           cancel=cancel)
    regions = dz.clip_regions(regions, duration)
    rest = _scaled(progress, 0.1, 1.0)
    if not streaming:
        return _diarize_by_window(dia, lib, media_id, duration, regions, progress=rest, cancel=cancel)
    starts = dia.window_starts(regions, duration)
    gain = vp.loudness_gain(rms)
    hop = int(rate * dz.FRAME)
    embeddings = []
    pieces = _start_groups(starts, dia.params.window)
    for i, group in enumerate(pieces):
        if cancel is not None:
            cancel.check()
        first = max(0, int(np.floor((group[0] - DIARIZE_MARGIN) * rate / hop)) * hop)
        end = group[-1] + dia.params.window + DIARIZE_MARGIN
        audio = analysis_span(lib, media_id, first / rate, min(duration, end))
        if gain is not None:
            audio = (audio * gain).astype(np.float32)
        embeddings.append(dia.embed_span(audio, first, group, cancel=cancel,
                                         progress=_scaled(rest, 0.9 * i / len(pieces), 0.9 * (i + 1) / len(pieces))))
        del audio
    x = np.concatenate(embeddings) if embeddings else np.zeros((0, 256), np.float32)
    return dia.diarize_embedded(duration, regions, starts, x, max_speakers=dz.max_speakers_for(regions), progress=rest,
                                cancel=cancel)


def _start_groups(starts: np.ndarray, win: float, span: float | None = None) -> list[np.ndarray]:
    """Window starts split into runs whose audio (from first start to last start + win) spans at most ``span`` s."""
    span = span or ANALYSIS_WINDOW
    groups, cur = [], []
    for s in starts:
        if cur and s + win - cur[0] > span:
            groups.append(np.asarray(cur))
            cur = []
        cur.append(float(s))
    if cur:
        groups.append(np.asarray(cur))
    return groups


LINK_THRESHOLD = 0.76  # cosine over which two windows' clusters are one person (the same recording: looser than
# the cross-recording voiceprint threshold, pipeline.stages.voiceprint.DEFAULT_THRESHOLD)


def _diarize_by_window(dia, lib: Library, media_id: int, duration: float, regions: list[Region], *, progress,
                       cancel) -> Diarization:
    from pipeline.stages import diarize as dz
    from pipeline.stages import voiceprint as vp

    windows = silence_windows(duration, regions, 3 * ANALYSIS_WINDOW)
    turns: list[Turn] = []
    embs: dict[str, np.ndarray] = {}
    for i, (w0, w1) in enumerate(windows):
        audio = analysis_span(lib, media_id, w0, w1)
        inside = [Region(max(r.start, w0), min(r.end, w1)) for r in regions if r.end > w0 and r.start < w1]
        part = dia.diarize(audio, media_io.ANALYSIS_RATE, regions=None, cancel=cancel,
                           max_speakers=dz.max_speakers_for(inside),
                           progress=_scaled(progress, i / len(windows), (i + 1) / len(windows)))
        del audio
        turns += [Turn(t.start + w0, t.end + w0, f"{i}:{t.speaker}") for t in part.turns]
        embs.update({f"{i}:{k}": np.asarray(v, np.float32) for k, v in part.embeddings.items()})
    # link the windows' speakers: one person's clusters in two windows embed far closer than two people's do
    names = sorted(embs)
    link = {n: n for n in {t.speaker for t in turns}}
    if len(names) > 1:
        labels = dz._ahc(np.stack([vp.unit(embs[n]) for n in names]), 1.0 - LINK_THRESHOLD, None)
        for n, lab in zip(names, labels):
            link[n] = f"L{int(lab)}"
    merged: dict[str, list[np.ndarray]] = {}
    for n in names:
        merged.setdefault(link[n], []).append(embs[n])
    turns = [Turn(t.start, t.end, link[t.speaker]) for t in turns]
    turns, out = dz.relabel(turns, {k: vp.unit(np.mean(v, axis=0)) for k, v in merged.items()})
    return Diarization(turns=turns, embeddings=out, backend=getattr(dia, "name", ""))


def final_lines(ctx: StageContext) -> tuple[list[Line], str]:
    al = ctx.results.get("align") or {}
    if al.get("lines"):
        return [line_from_dict(d) for d in al["lines"]], "subtitle"
    return current_lines(ctx)


def diarization_of(ctx: StageContext) -> Diarization | None:
    d = ctx.results.get("diarize") or {}
    if d.get("skipped", True):
        return None
    return Diarization([Turn(**t) for t in d["turns"]], {k: v for k, v in d["embeddings"].items()}, d.get("backend", ""))


def stage_attribute(opts: AnalysisOptions) -> Stage:
    def run(ctx: StageContext) -> dict:
        from pipeline.text.attribution import attribute, cluster_for_line
        from pipeline.stages import voiceprint as vp

        lib = ctx.library
        lines, origin = final_lines(ctx)
        dia = diarization_of(ctx)
        line_speakers = [cluster_for_line(ln, dia) for ln in lines] if dia else None
        voices: dict[int, np.ndarray] = {}  # line voiceprints, shared by the cluster split and the own-voice check
        split: dict[str, np.ndarray] = {}
        moved = 0
        kept: list[str] = []  # the clusters split (their labels stay, on their main voice)
        if dia and line_speakers:
            line_speakers, split, moved = split_by_line_voice(lib, _media_id(ctx), lines, line_speakers, voices,
                                                              dia.embeddings)
            kept = [k for k in split if k in dia.embeddings]
            if kept:
                ctx.progress(1.0, f"{len(kept)} speaker cluster{'s' if len(kept) != 1 else ''} holding more than one "
                                  f"voice split into {len(split)} by the lines' own voices")
            if moved:
                ctx.progress(1.0, f"{moved} line{'s' if moved != 1 else ''} moved to the speaker whose voice "
                                  f"{'they are' if moved != 1 else 'it is'} nearest")
        from pipeline.library import voiceprints as vplib

        known = vplib.known(lib.db, media_id=_media_id(ctx))
        vp_names: dict[str, tuple[str, float]] = {}
        cluster_voices = {**dia.embeddings, **split} if dia else {}  # every speaker label's centroid
        if dia and known:
            for label, emb in cluster_voices.items():
                name, score = vp.match(np.asarray(emb, dtype=np.float32), known)
                if name:
                    vp_names[label] = (name, float(score))
        script = load_script(lib, opts)
        result = attribute(lines, script=script, diarization=dia, line_speakers=line_speakers,
                           voiceprint_names=vp_names or None)
        renamed = 0
        if dia:
            result.attributions, renamed = own_voice_check(lib, _media_id(ctx), lines, result, script, voices,
                                                           line_clusters=line_speakers, cluster_voices=cluster_voices)
            if renamed:
                ctx.progress(1.0, f"{renamed} line{'s' if renamed != 1 else ''} a speaker cluster named re-decided by "
                                  "their own voice")
        for w in result.warnings:
            ctx.progress(1.0, w)
        return {"origin": origin, "lines": [ln.to_dict() for ln in lines], "line_speakers": line_speakers,
                "voiceprints": vp_names, "attributions": [asdict(a) for a in result.attributions],
                "overlaps": sorted(getattr(result, "overlaps", []) or []), "warnings": result.warnings,
                "script_score": getattr(result, "script_score", None), "script_used": getattr(result, "script_used", False),
                "own_voice_renamed": renamed,
                "clusters_split": len(kept), "lines_moved": moved,
                "cluster_embeddings": {k: [float(x) for x in v] for k, v in split.items()}}

    return Stage("attribute", run, weight=0.5, label="naming characters")


OWN_VOICE_PAD = 0.2  # seconds around a line too short for a voiceprint


def line_voiceprints(lib: Library, media_id: int, lines: list[Line], wanted, into: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """``into`` with the unit voiceprint of each ``wanted`` line index it lacks (a line too short for one is read
    with OWN_VOICE_PAD seconds around it); raises ModelMissingError/ImportError without the speaker encoder."""
    from pipeline.errors import BadInputError
    from pipeline.stages import voiceprint as vp

    for i in wanted:
        if i in into:
            continue
        ln = lines[i]
        for pad in (0.0, OWN_VOICE_PAD):
            try:
                into[i] = vp.embed(analysis_span(lib, media_id, max(0.0, ln.start - pad), ln.end + pad),
                                   media_io.ANALYSIS_RATE)
                break
            except BadInputError:
                continue
    return into


def split_by_line_voice(lib: Library, media_id: int, lines: list[Line], line_speakers: list[str | None],
                        voices: dict[int, np.ndarray], centroids: dict[str, list[float]],
                        ) -> tuple[list[str | None], dict[str, np.ndarray], int]:
    """``line_speakers`` with the clusters that hold several voices split by the lines' own voiceprints
    (pipeline.text.attribution.split_mixed_clusters) and then each line moved to the cluster whose voice (of
    ``centroids``, the diarization's, and the new ones) is clearly nearest its own (move_to_nearest_voice); the
    centroids of the labels changed or added; and how many lines moved. Unchanged where the voiceprint model is
    missing. ``voices`` gains the voiceprints read."""
    from pipeline.errors import ModelMissingError
    from pipeline.text.attribution import (SPLIT_MIN_SECONDS, move_to_nearest_voice, split_mixed_clusters,
                                           two_speaker_cue)

    try:
        line_voiceprints(lib, media_id, lines, [i for i, s in enumerate(line_speakers) if s], voices)
    except (ModelMissingError, ImportError):
        return line_speakers, {}, 0
    mixed = {i for i, ln in enumerate(lines) if two_speaker_cue(ln.text)}  # two voices: neither's own
    clean = {i for i, ln in enumerate(lines) if ln.end - ln.start >= SPLIT_MIN_SECONDS and i not in mixed}
    speakers, split = split_mixed_clusters(line_speakers, voices, clean)
    moved_speakers, moved = move_to_nearest_voice(speakers, {i: v for i, v in voices.items() if i not in mixed},
                                                  {**centroids, **split})
    return moved_speakers, split, moved


def own_voice_check(lib: Library, media_id: int, lines: list[Line], result, script=None,
                    voices: dict[int, np.ndarray] | None = None, *, line_clusters: list[str | None] | None = None,
                    cluster_voices: dict | None = None) -> tuple[list, int]:
    """``result``'s attributions with the lines its clusters' majorities named re-decided by each line's own voice
    (pipeline.text.attribution.recheck_by_own_voice), and how many changed; unchanged where the voiceprint model
    is missing. ``voices``: line voiceprints already read (by line index); ``line_clusters``/``cluster_voices``:
    each line's speaker label and each label's centroid (for the characters labelled once)."""
    from pipeline.errors import ModelMissingError
    from pipeline.text.attribution import own_voice_lines, recheck_by_own_voice, script_names_of

    refs, checked = own_voice_lines(lines, result.attributions, set(getattr(result, "overlaps", []) or []))
    if not refs or not checked:
        return result.attributions, 0
    wanted = sorted({i for idx in refs.values() for i in idx} | set(checked))
    try:
        embeddings = line_voiceprints(lib, media_id, lines, wanted, dict(voices or {}))
    except (ModelMissingError, ImportError):
        return result.attributions, 0
    names = script_names_of(getattr(result, "alignment", None), script)
    return recheck_by_own_voice(lines, result.attributions, refs, checked, embeddings, names,
                                line_clusters=line_clusters, cluster_voices=cluster_voices)


def load_script(lib: Library, opts: AnalysisOptions):
    from pipeline.text.scripts import parse_script
    from pipeline.types import Script, ScriptLine

    if opts.script_path:
        return parse_script(opts.script_path)
    if opts.script_id:
        rows = script_rows.lines(lib.db, opts.script_id)
        title = lib.row("scripts", opts.script_id, "script")["title"]
        return Script(title, [ScriptLine(r["idx"], r["character"], r["text"], r["scene"], r["parenthetical"], r["extension"]) for r in rows])
    return None


def stage_save() -> Stage:
    def run(ctx: StageContext) -> dict:
        lib = ctx.library
        mid = _media_id(ctx)
        att = ctx.results.get("utterances") or ctx.results["attribute"]
        lines = [line_from_dict(d) for d in att["lines"]]
        sync = ctx.results.get("sync") or {}
        dia = ctx.results.get("diarize") or {}
        checked = sync.get("sync") if (sync.get("sync") or {}).get("method", "none") != "none" else None
        lost = save_analysis(lib, mid, lines, att, sync=checked,
                             embeddings={**(dia.get("embeddings") or {}), **(att.get("cluster_embeddings") or {})})
        names = sorted(label_rows.character_names(lib.db, mid))
        from pipeline.workflows.voiceprints import enrol_auto

        try:
            auto = enrol_auto(lib, mid, lambda s, e: analysis_span(lib, mid, s, e))
        except ImportError as e:  # no speaker encoder installed: the lines are saved, no voices are learnt
            ctx.progress(1.0, f"no automatic voiceprints ({e})")
            auto = []
        fill = ctx.results.get("fill") or {}
        return {"media_id": mid, "lines": len(lines), "characters": names, "auto_voiceprints": len(auto),
                "sync": {k: checked.get(k) for k in ("summary", "description", "applied", "sections")} if checked else None,
                "warnings": list(sync.get("warnings") or []) + list(fill.get("warnings") or []) + list(att["warnings"])
                + ([f"{lost} edited line(s) have no counterpart in the new lines: their edits were not carried over"]
                   if lost else [])}

    return Stage("save", run, weight=0.3, label="saving analysis")


USER_SOURCES = ("user", "user-line")  # attribution sources the user owns; no automatic pass overwrites them
_MIN_PIECE = 0.02  # seconds: a split point this close to a line edge does not cut it


def save_analysis(lib: Library, media_id: int, lines: list[Line], att: dict, *, sync: dict | None, embeddings: dict) -> int:
    """Replace the item's speakers/characters/segments with the analysis result, keeping every user edit; returns
    how many of the user's segments found no new line to go to (their edits are gone: said as a warning).

    The pass recreates the segments; each new line is paired with the old segment it continues
    (:func:`match_segments`) and keeps that segment's user-owned values: a character the user gave it (attribution
    source 'user' or 'user-line'), the text the user typed (user_text), its clip trims and its keep/reject mark.
    Lines the user split are split again at the same times first, and lines the user joined are joined again; a speaker the user named passes the name to the new cluster holding most of its lines,
    which names that cluster's other lines as label_speaker did. Labelling edits made before are closed for undo
    (the rows they changed are gone)."""
    from pipeline.library.lines import set_text_choice

    track_id, _, line_ids = subtitle_lines(lib, media_id)
    labels = att["line_speakers"] or [None] * len(lines)
    overlaps = set(att.get("overlaps") or [])
    at = att.get("line_index") or list(range(len(lines)))  # per line, its first subtitle line's position
    choices = att.get("text_choice") or [None] * len(lines)
    rows = [{"line": ln, "att": a, "label": labels[i], "overlap": i in overlaps, "user_split": False, "user_join": False,
             "line_id": line_ids[at[i]] if att["origin"] == "subtitle" and 0 <= at[i] < len(line_ids) else None,
             "choice": choices[i], "origin": "asr" if at[i] == NO_CUE else att["origin"]}
            for i, (ln, a) in enumerate(zip(lines, att["attributions"]))]
    with lib.atomic() as db:
        old = line_rows.segments_for_reanalysis(db, media_id)
        named = label_rows.user_named_speakers(db, media_id)
        rows = _join_again(_split_again(rows, old), old)
        pairs = match_segments(old, [{"start": r["line"].start, "end": r["line"].end, "text": r["line"].text,
                                      "line_id": r["line_id"]} for r in rows])
        paired = set(pairs.values())
        lost = sum(1 for k, o in enumerate(old) if k not in paired and user_owned(o))
        user_names = _carry_speaker_names(named, old, rows, pairs, set(embeddings))
        line_rows.clear_analysis(db, media_id)
        if sync and track_id:
            line_rows.set_track_sync(db, track_id, sync)
        speaker_ids = {}
        for label in sorted({r["label"] for r in rows if r["label"]} | set(embeddings)):
            vp_name, score = (att["voiceprints"].get(label) or (None, None))
            emb = embeddings.get(label)
            user = user_names.get(label)
            speaker_ids[label] = label_rows.insert_speaker(db, {
                "media_id": media_id, "label": label, "name": user or vp_name,
                "name_source": "user" if user else ("voiceprint" if vp_name else None), "match_score": score,
                "embedding": np.asarray(emb, dtype=np.float32).tobytes() if emb else None})
        char_ids: dict[str, int] = {}
        mostly = _mostly_named(rows)
        for i, r in enumerate(rows):
            ln, a, o = r["line"], r["att"], old[pairs[i]] if i in pairs else None
            if o is not None and o["attribution_source"] in USER_SOURCES and o["character"]:
                name, source, conf = o["character"], o["attribution_source"], 1.0
            elif r["label"] in user_names and not _keeps_own_name(a, user_names[r["label"]], mostly.get(r["label"])):
                name, source, conf = user_names[r["label"]], "user", 1.0
            else:
                name, source, conf = a["character"], a["source"], a["confidence"]
            ln.confidence = conf
            user_text = bool(o is not None and o["user_text"])
            if user_text:
                ln.text = o["text"]  # the user's text wins over the new subtitle/ASR text
            seg_id = line_rows.insert_segment(db, media_id, ln, line_id=r["line_id"], origin=r["origin"], idx=i)
            if name and name not in char_ids:
                char_ids[name] = label_rows.insert_character(db, media_id, name)
            line_rows.set_attribution(db, seg_id, speaker_id=speaker_ids.get(r["label"]), character_id=char_ids.get(name),
                                      source=source, overlap=r["overlap"], user_split=r["user_split"],
                                      user_join=r["user_join"], user_text=user_text)
            set_text_choice(db, seg_id, {"source": "user", "score": None, "check": False} if user_text else r.get("choice"))
            if o is not None and o["status"] is not None:
                line_rows.restore_clip(db, seg_id, o["trim_start"], o["trim_end"], o["status"])
        edit_rows.close_open(db, media_id, "the item was analysed again")
    return lost


def _mostly_named(rows: list[dict]) -> dict[str, str | None]:
    """Per speaker label, the character most of its new lines have (None: mostly unnamed)."""
    from collections import Counter

    names: dict[str, Counter] = {}
    for r in rows:
        if r["label"]:
            names.setdefault(r["label"], Counter())[r["att"]["character"]] += 1
    return {label: c.most_common(1)[0][0] for label, c in names.items()}


def _keeps_own_name(attribution: dict, cluster_name: str, mostly: str | None) -> bool:
    """Whether a new line keeps its own name against the name the user gave its cluster, as
    pipeline.library.labels.name_speaker decides: an SDH label or the screenplay names it after a character other
    than that name and than the one the cluster's lines mostly have (``mostly``)."""
    own = attribution.get("character")
    return bool(attribution.get("source") in label_rows.LABELLED_SOURCES and own and own != mostly
                and own.lower() != cluster_name.lower())


def _split_again(rows: list[dict], old: list[dict]) -> list[dict]:
    """Cut the new lines where the user split the old ones (an old segment with user_split starts at a split
    point): the new line holding the point and overlapping the old pieces most is cut there."""
    from pipeline.text.lines import split_line_at

    points = []
    for o in old:
        if o["user_split"]:
            lefts = [p["start"] for p in old if p["end"] == o["start"] and p["start"] < o["start"]]
            points.append((o["start"], min(lefts) if lefts else o["start"], o["end"]))
    for at, a, b in sorted(points):
        best = None
        for j, r in enumerate(rows):
            ln = r["line"]
            if ln.start + _MIN_PIECE < at < ln.end - _MIN_PIECE:
                ov = min(b, ln.end) - max(a, ln.start)
                if ov > 0 and (best is None or ov > best[0]):
                    best = (ov, j)
        if best is None:
            continue
        j = best[1]
        left, right = split_line_at(rows[j]["line"], at)
        rows[j:j + 1] = [{**rows[j], "line": left}, {**rows[j], "line": right, "line_id": None, "user_split": True}]
    return rows


def _join_again(rows: list[dict], old: list[dict]) -> list[dict]:
    """Join the new lines again where the user joined old ones: the consecutive new lines whose midpoints lie
    inside an old joined segment become one line (words concatenated, first line's cue, attribution and subtitle
    line), so the joined segment pairs with it and keeps its text, trims and mark."""
    from pipeline.text.lines import join_text

    for o in sorted((o for o in old if o["user_join"]), key=lambda o: o["start"]):
        inside = [j for j, r in enumerate(rows) if o["start"] <= (r["line"].start + r["line"].end) / 2 <= o["end"]]
        if len(inside) < 2 or inside != list(range(inside[0], inside[-1] + 1)):
            continue
        group = [rows[j] for j in inside]
        first, lines = group[0], [g["line"] for g in group]
        text = lines[0].text
        for ln in lines[1:]:
            text = join_text(text, ln.text)
        joined = Line(start=lines[0].start, end=max(ln.end for ln in lines), text=text,
                      words=[w for ln in lines for w in ln.words], speaker_cue=lines[0].speaker_cue,
                      tags=list(dict.fromkeys(t for ln in lines for t in ln.tags)),
                      confidence=min(ln.confidence for ln in lines), index=lines[0].index)
        rows[inside[0]:inside[-1] + 1] = [{**first, "line": joined, "user_join": True,
                                           "overlap": any(g["overlap"] for g in group)}]
    return rows


def match_segments(old: list[dict], new: list[dict], *, min_score: float = 0.5) -> dict[int, int]:
    """Pair new lines with the old segments they continue, one to one: {new index: old index}.

    Rows are dicts with start, end, text and line_id (the subtitle line, or None). A pair scores
    0.5 × time overlap (intersection over union) + 0.5 × text similarity (rapidfuzz ratio of the normalised
    texts), plus 1 when both come from the same subtitle line; it must overlap in time or share the line and
    score at least ``min_score``. Best pairs are taken first."""
    from bisect import bisect_left

    from rapidfuzz import fuzz

    from pipeline.text.attribution import normalise_text

    order = sorted(range(len(old)), key=lambda k: old[k]["start"])
    starts = [old[k]["start"] for k in order]
    longest = max((o["end"] - o["start"] for o in old), default=0.0)
    by_line: dict[int, list[int]] = {}
    for k, o in enumerate(old):
        if o["line_id"] is not None:
            by_line.setdefault(o["line_id"], []).append(k)
    old_text = [normalise_text(o["text"]) for o in old]
    scored = []
    for j, n in enumerate(new):
        near = set(by_line.get(n["line_id"], [])) if n["line_id"] is not None else set()
        near.update(order[bisect_left(starts, n["start"] - longest):bisect_left(starts, n["end"])])
        text = normalise_text(n["text"])
        for k in near:
            o = old[k]
            inter = min(o["end"], n["end"]) - max(o["start"], n["start"])
            union = max(o["end"], n["end"]) - min(o["start"], n["start"])
            iou = max(0.0, inter) / union if union > 0 else 0.0
            same_line = n["line_id"] is not None and n["line_id"] == o["line_id"]
            score = 0.5 * iou + 0.5 * fuzz.ratio(text, old_text[k]) / 100.0 + (1.0 if same_line else 0.0)
            if (inter > 0 or same_line) and score >= min_score:
                scored.append((score, j, k))
    pairs: dict[int, int] = {}
    used: set[int] = set()
    for _, j, k in sorted(scored, key=lambda x: (-x[0], x[1], x[2])):
        if j not in pairs and k not in used:
            pairs[j] = k
            used.add(k)
    _pair_owned_by_text(old, new, pairs, used, old_text)
    return pairs


def user_owned(o: dict) -> bool:
    """Whether an old segment holds something the user gave it (typed text, a character, a keep/reject mark)."""
    return bool(o.get("user_text") or o.get("attribution_source") in USER_SOURCES or o.get("status") in ("kept", "rejected"))


def _pair_owned_by_text(old: list[dict], new: list[dict], pairs: dict[int, int], used: set[int], old_text: list[str],
                        *, min_ratio: float = 80.0, window: float = 600.0) -> None:
    """Second pass for the user's segments that no new line overlaps (other subtitles swapped in: another release
    is shifted or cut differently): the unpaired new line with the most similar text (rapidfuzz ratio ≥ min_ratio),
    the nearest in time within ``window`` seconds among equals."""
    from rapidfuzz import fuzz

    from pipeline.text.attribution import normalise_text

    free = [j for j in range(len(new)) if j not in pairs]
    texts = {j: normalise_text(new[j]["text"]) for j in free}
    for k in sorted((k for k in range(len(old)) if k not in used and user_owned(old[k])), key=lambda k: old[k]["start"]):
        best = None
        for j in free:
            if j in pairs or abs(new[j]["start"] - old[k]["start"]) > window:
                continue
            ratio = fuzz.ratio(texts[j], old_text[k])
            key = (ratio, -abs(new[j]["start"] - old[k]["start"]))
            if ratio >= min_ratio and (best is None or key > best[0]):
                best = (key, j)
        if best is not None:
            pairs[best[1]] = k
            used.add(k)


def _carry_speaker_names(named: dict[str, str], old: list[dict], rows: list[dict], pairs: dict[int, int],
                         new_labels: set[str]) -> dict[str, str]:
    """{new cluster label: user name}: each speaker the user named goes to the new cluster holding most of its
    old lines (seconds of paired lines), or to the cluster with the same label when none of its lines paired."""
    weight: dict[tuple[str, str], float] = {}
    for j, k in pairs.items():
        o, label = old[k], rows[j]["label"]
        if o["speaker"] in named and label:
            ln = rows[j]["line"]
            shared = max(0.01, min(o["end"], ln.end) - max(o["start"], ln.start))
            weight[(o["speaker"], label)] = weight.get((o["speaker"], label), 0.0) + shared
    out: dict[str, str] = {}
    placed: set[str] = set()
    for (speaker, label), _ in sorted(weight.items(), key=lambda kv: (-kv[1], kv[0])):
        if speaker not in placed and label not in out:
            out[label] = named[speaker]
            placed.add(speaker)
    labels = new_labels | {r["label"] for r in rows if r["label"]}
    for speaker, name in sorted(named.items()):
        if speaker not in placed and speaker in labels and speaker not in out:
            out[speaker] = name
    return out


def stage_utterances(opts: AnalysisOptions) -> Stage:
    """Split cues joined, speech edges, text chosen against the audio (pipeline.workflows.utterances)."""
    def run(ctx: StageContext) -> dict:
        from pipeline.workflows.utterances import AudioAccess, utterances

        lib, mid = ctx.library, _media_id(ctx)
        io = AudioAccess(read=lambda a, b: analysis_span(lib, mid, a, b), duration=analysis_duration(lib, mid),
                         asr=lambda: _asr_backend(ctx, opts), script=lambda: load_script(lib, opts))
        return utterances(ctx, opts, io)

    return Stage("utterances", run, weight=1.0, label="finding utterances")


def analysis_stages(opts: AnalysisOptions) -> list[Stage]:
    return [stage_vad(), stage_asr(opts), stage_sync(opts), stage_fill(opts), stage_align(opts), stage_diarize(opts),
            stage_attribute(opts), stage_utterances(opts), stage_save()]
