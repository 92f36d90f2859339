"""Import a media file into the library as a resumable job: decode → subtitles → commit.

Validation (probe, subtitle parsing) happens before any row or file is written, so bad input leaves the
library exactly as it was. Work in progress lives in the job's work folder; the commit stage inserts every
row in one transaction and moves the files into ``media/<id>/`` inside it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import media as media_io
from pipeline.errors import BadInputError, StorageError, WeaverError
from pipeline.jobs import JobRunner, Stage, StageContext, storage_error
from pipeline.library import Library, dumps, now
from pipeline.library import items
from pipeline.library import jobs as job_rows
from pipeline.types import Line, line_from_dict


@dataclass
class IngestRequest:
    path: str
    subtitles: str | None = None
    audio_track: int | None = None
    channel_mode: str = "auto"  # auto | centre | mix
    title: str | None = None
    kind: str = "file"
    resync: bool = False  # a subtitle sync pass follows: keep cues it can still move inside the media
    subtitle_encoding: str | None = None  # the user's pick (else detected)
    subtitle_language: str | None = None  # a hint for the detection ("fr", "pl", "ru")

    def key(self, fingerprint: str) -> str:
        extra = f"{self.subtitles}|{self.audio_track}|{self.channel_mode}"
        if self.subtitle_encoding:
            extra += f"|{self.subtitle_encoding}"
        return f"ingest:{fingerprint}:{hashlib.sha1(extra.encode()).hexdigest()[:10]}"


def validate(req: IngestRequest) -> tuple[media_io.MediaInfo, str]:
    """Probe the media and parse sidecar subtitles; raise BadInputError before anything is written."""
    path = Path(req.path).expanduser()
    info = media_io.probe(path)
    media_io.check_complete(path, info, req.audio_track)
    if req.channel_mode not in ("auto", "centre", "mix"):
        raise BadInputError(f"unknown channel mode '{req.channel_mode}' (auto, centre, mix)")
    if req.subtitles:
        sig = _file_signature(req.subtitles)
        # kept for this process's subtitles stage: a 50k-cue file is then parsed once, not twice
        req.__dict__["_parsed_subtitles"] = (sig, _read_sidecar(req))
    return info, media_io.fingerprint(path)


def _file_signature(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _sidecar_subtitles(req: IngestRequest):
    """The sidecar file parsed by validate() when it is unchanged since, else read again (a resumed job)."""
    cached = req.__dict__.pop("_parsed_subtitles", None)
    if cached is not None and cached[0] is not None and cached[0] == _file_signature(req.subtitles):
        return cached[1]
    return _read_sidecar(req)


def _read_sidecar(req: IngestRequest):
    from pipeline.text.subtitles import read_subtitle_file

    if req.subtitle_encoding:
        from pipeline.text.encoding import normalise_encoding

        normalise_encoding(req.subtitle_encoding)  # an unknown name is refused before the file is read
    return read_subtitle_file(req.subtitles, encoding=req.subtitle_encoding, language=req.subtitle_language)


def sidecar_track(path: str, doc, duration: float | None, *, resync: bool) -> tuple[dict, list[Line], list[str], int]:
    """(track row, usable lines, warnings, dropped cue count) of a parsed sidecar subtitle file: cues that cannot be
    cut from the decoded audio are left out and counted; an unsure encoding is said."""
    track = {"source": "sidecar", "path": str(Path(path).resolve()), "stream_index": None}
    return (track, *_usable_lines(track, doc, duration, resync=resync))


def _usable_lines(track: dict, doc, duration: float | None, *, resync: bool) -> tuple[list[Line], list[str], int]:
    from pipeline.text.subtitles import describe_dropped, drop_bad_cues, sync_slack

    track.update({"format": doc.format, "encoding": doc.encoding, "encoding_info": doc.encoding_info})
    lines, dropped = drop_bad_cues(doc.lines, duration, slack=sync_slack(duration) if resync else 0.0)
    for reason, n in doc.dropped.items():
        dropped[reason] = dropped.get(reason, 0) + n
    warnings = [w for w in [describe_dropped(dropped, duration)] if w]
    if doc.encoding_unsure:
        others = [c["encoding"] for c in doc.encoding_info["candidates"][1:4]]
        warnings.append(f"subtitle encoding unsure: read as {doc.encoding}" + (f" (or {', '.join(others)})" if others else "")
                        + "; pick another with `weaver encoding TRACK ENCODING` or in the Transcript view")
    return lines, warnings, sum(dropped.values())


def _line_dict(ln: Line) -> dict:
    """Line.to_dict() without dataclasses.asdict's deep copy (a tenth of the time on 50k cues)."""
    return {"start": ln.start, "end": ln.end, "text": ln.text,
            "words": [{"start": w.start, "end": w.end, "text": w.text, "probability": w.probability} for w in ln.words],
            "speaker_cue": ln.speaker_cue, "tags": list(ln.tags), "confidence": ln.confidence, "index": ln.index,
            "turn": ln.turn}


def existing_media(lib: Library, fingerprint: str) -> int | None:
    return items.by_fingerprint(lib.db, fingerprint)


def channel_layout(info: media_io.MediaInfo, req: IngestRequest) -> tuple[media_io.AudioStream, str, str]:
    """(stream, channel_mode actually used, channels argument for media.iter_audio)."""
    stream = media_io._pick_stream(info, req.audio_track)
    mode = req.channel_mode
    if mode == "auto":
        mode = "centre" if stream.has_centre else "mix"
    if mode == "centre" and not stream.has_centre:
        raise BadInputError(f"audio track {stream.index} ({stream.layout or stream.channels} ch) has no centre channel; use --channels mix")
    if mode == "centre":
        return stream, mode, "centre"
    return stream, mode, ("stereo" if stream.channels >= 2 else "mono")


def stage_decode(req: IngestRequest, info: media_io.MediaInfo):
    def run(ctx: StageContext) -> dict:
        import soundfile as sf

        stream, mode, channels = channel_layout(info, req)
        out = ctx.work_dir / "files"
        out.mkdir(parents=True, exist_ok=True)
        dialogue = out / "dialogue.flac"
        analysis = out / "analysis.flac"
        tmp = out / "dialogue.flac.part"
        an_tmp = out / "analysis.flac.part"
        n = 0
        nch = 1 if channels in ("mono", "centre") else 2
        # one pass, block by block: the native-rate dialogue copy and the 16 kHz mono analysis copy are written as
        # the audio decodes, so memory stays at a few blocks whatever the file's length
        to_analysis = media_io.StreamResampler(stream.sample_rate, media_io.ANALYSIS_RATE, nch, layout="mono")
        try:
            with sf.SoundFile(str(tmp), "w", samplerate=stream.sample_rate, channels=nch, format="FLAC", subtype="PCM_16") as f, \
                 sf.SoundFile(str(an_tmp), "w", samplerate=media_io.ANALYSIS_RATE, channels=1, format="FLAC",
                              subtype="PCM_16") as g:
                for block in media_io.iter_audio(req.path, sample_rate=stream.sample_rate, audio_track=stream.index,
                                                 channels=channels, progress=lambda fr, m: ctx.progress(0.95 * fr, m),
                                                 cancel=ctx.cancel):
                    block = np.clip(block, -1, 1)
                    f.write(block)
                    g.write(np.clip(to_analysis.push(block), -1, 1))
                    n += len(block)
                g.write(np.clip(to_analysis.flush(), -1, 1))
        except BaseException as e:
            # a full disk often arrives disguised (libsndfile's "System error"): recognise it while the partial files
            # still show it, then remove them
            full = storage_error(e, ctx.work_dir) if isinstance(e, Exception) and not isinstance(e, WeaverError) else None
            tmp.unlink(missing_ok=True)
            an_tmp.unlink(missing_ok=True)
            if full is None and isinstance(e, OSError):
                full = StorageError(f"cannot write decoded audio ({e.strerror or e}); the library is unchanged")
            if full is not None:
                raise full from None
            raise
        declared = info.duration or 0.0
        if n == 0 or n / stream.sample_rate < 0.9 * declared - 1.0:
            tmp.unlink(missing_ok=True)
            an_tmp.unlink(missing_ok=True)
            raise BadInputError(f"{Path(req.path).name} looks truncated or damaged: only {n / stream.sample_rate:.1f} s "
                                f"of {declared:.1f} s could be decoded")
        os.replace(an_tmp, analysis)
        os.replace(tmp, dialogue)
        ctx.progress(1.0, "decoded")
        return {"channel_mode": mode, "audio_track": stream.index, "dialogue_rate": stream.sample_rate,
                "duration": n / stream.sample_rate}

    return Stage("decode", run, weight=5.0, label="decoding audio")


def stage_subtitles(req: IngestRequest, info: media_io.MediaInfo):
    def run(ctx: StageContext) -> dict:
        from pipeline.text.subtitles import extract_embedded_subtitles

        duration = (ctx.results.get("decode") or {}).get("duration")
        if req.subtitles:
            track, lines, warnings, dropped = sidecar_track(req.subtitles, _sidecar_subtitles(req), duration, resync=req.resync)
        else:
            text_streams = [s for s in info.subtitles if s.text_based]
            if not text_streams:
                return {"track": None, "lines": []}
            pick = next((s for s in text_streams if (s.language or "").startswith("en")), text_streams[0])
            try:
                doc = extract_embedded_subtitles(req.path, pick.index)
            except WeaverError as e:
                return {"track": None, "lines": [], "warnings": [f"embedded subtitles unreadable: {e}"]}
            track = {"source": "embedded", "path": None, "stream_index": pick.stream_index, "language": pick.language}
            lines, warnings, dropped = _usable_lines(track, doc, duration, resync=req.resync)
        ctx.progress(1.0, f"{len(lines)} subtitle lines" + (f", {dropped} bad cues dropped" if dropped else ""))
        return {"track": track, "lines": [_line_dict(ln) for ln in lines], "warnings": warnings, "dropped_cues": dropped}

    return Stage("subtitles", run, weight=0.5, label="reading subtitles")


def stage_commit(req: IngestRequest, info: media_io.MediaInfo, fingerprint: str):
    def run(ctx: StageContext) -> dict:
        lib = ctx.library
        dec = ctx.results["decode"]
        subs = ctx.results["subtitles"]
        files = ctx.work_dir / "files"
        # the decoded length is what clips can be cut from; a container may declare more (a truncated file)
        duration = float(dec["duration"]) if dec.get("duration") else (info.duration or 0.0)
        warnings = list(subs.get("warnings") or ([subs["warning"]] if subs.get("warning") else []))
        declared = info.duration or 0.0
        if declared and declared - duration > max(1.0, 0.005 * declared):
            warnings.insert(0, f"decoded {duration:.1f} s of {declared:.1f} s declared; "
                               f"{Path(req.path).name} looks truncated, only the decoded part was imported")
        meta = {}
        if warnings:
            meta["import_warnings"] = warnings
        if declared and abs(declared - duration) > 1e-3:
            meta["declared_duration"] = round(declared, 3)
        meta["dropped_cues"] = int(subs.get("dropped_cues") or 0)
        summary = {"duration": duration, "warnings": warnings, "dropped_cues": meta["dropped_cues"]}

        def own(db, media_id: int) -> dict:
            """The job owns the item and its stage record goes into the same transaction as the rows: a kill after
            the commit resumes with the analysis instead of finding "already in the library"."""
            result = {"media_id": media_id, **summary}
            job_rows.link_media(db, ctx.job_id, media_id)
            ctx.record(db, result)
            return result

        with lib.atomic() as db:
            if (mid := existing_media(lib, fingerprint)) is not None:
                if own_item(lib, ctx.job_id, mid):  # committed by this job before a kill: resume past it
                    return own(db, mid)
                raise BadInputError(f"{Path(req.path).name} is already in the library")
            media_id = items.insert_media(db, {
                "kind": req.kind, "title": req.title or Path(req.path).stem,
                "source_path": str(Path(req.path).resolve()), "fingerprint": fingerprint,
                "duration": duration, "container": info.format,
                "has_video": int(info.video), "width": info.width, "height": info.height, "fps": info.fps,
                "audio_track": dec["audio_track"], "channel_mode": dec["channel_mode"],
                "dialogue_rate": dec["dialogue_rate"], "created_at": now(), "meta": dumps(meta),
            })
            items.insert_audio_tracks(db, [
                {"media_id": media_id, "idx": a.index, "stream_index": a.stream_index, "codec": a.codec,
                 "channels": a.channels, "layout": a.layout, "sample_rate": a.sample_rate,
                 "language": a.language, "title": a.title, "is_default": int(a.default)} for a in info.audio])
            if subs.get("track"):
                items.insert_subtitle_track(db, media_id, subs["track"], [line_from_dict(d) for d in subs["lines"]], primary=True)
            target = lib.media_dir(media_id)
            if not files.exists() and target.exists() and (target / "dialogue.flac").exists():
                pass  # killed after moving the files, before the commit: the rolled-back id is handed out again
            else:
                if target.exists():  # leftover of a crashed earlier commit with the same id
                    shutil.rmtree(target)
                os.replace(files, target)
            result = own(db, media_id)
        ctx.progress(1.0, f"imported as item {media_id}")
        return result

    return Stage("commit", run, weight=0.5, label="saving to library")


def own_item(lib: Library, job_id: int, media_id: int) -> bool:
    """Whether this job's commit created the item: the job is linked to it, or (a library from before the
    commit linked its job) the item was made after the job started and no other job claims it."""
    job = job_rows.media_and_start(lib.db, job_id)
    if job is None:
        return False
    if job[0] is not None:
        return job[0] == media_id
    made = items.created_at(lib.db, media_id)
    return made is not None and made >= job[1] and not job_rows.claimed_by_other(lib.db, media_id, job_id)


def plan(lib: Library, req: IngestRequest, extra_stages: list[Stage] | None = None) -> tuple[int, list[Stage], bool]:
    """Validate the request and return (job id, stages, resumed?), resuming an interrupted import of the same file."""
    info, fp = validate(req)
    runner = JobRunner(lib)
    key = req.key(fp)
    if (active := runner.find_active(key)) is not None:
        raise WeaverError(f"{Path(req.path).name} is already being imported by job {active}")
    resumed = runner.find_resumable(key)
    if resumed is None and (mid := existing_media(lib, fp)) is not None:
        raise AlreadyImported(mid)
    job_id = resumed or runner.create("ingest", {"path": str(Path(req.path).resolve()), "subtitles": req.subtitles,
                                                 "audio_track": req.audio_track, "channel_mode": req.channel_mode}, key=key)
    stages = [stage_decode(req, info), stage_subtitles(req, info), stage_commit(req, info, fp)] + list(extra_stages or [])
    return job_id, stages, resumed is not None


class AlreadyImported(WeaverError):
    def __init__(self, media_id: int):
        self.media_id = media_id
        super().__init__(f"already in the library as item {media_id}")
