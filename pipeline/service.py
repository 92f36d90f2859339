"""The one facade every face (CLI, panel API, tray) calls. It wires sources, store, jobs and stages."""

from __future__ import annotations

import csv
import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pipeline.workflows import ingest as ingest_mod
from . import media as media_io
from .config import Settings
from .errors import BadInputError, NotFoundError, WeaverError
from .files import safe_child, slug  # noqa: F401 - part of the facade's API
from .jobs import JobOutcome, JobRunner, PreparedJob, ProgressListener  # noqa: F401 - facade API
from .progress import CancelToken, stage_callback
from .service_chat import ChatMixin
from .service_lines import LinesMixin
from .service_voices import VoicesMixin
from .library import Library
from .library import edits as edit_rows
from .library import items, labels, lines as line_rows, scripts as script_rows
from .library import jobs as job_rows


class Service(VoicesMixin, ChatMixin, LinesMixin):
    """Operations on one library. Open one per thread (SQLite connections are per thread)."""

    def __init__(self, library: Library | None = None, home: str | os.PathLike | None = None):
        self.lib = library or Library(home)
        self.runner = JobRunner(self.lib)

    @property
    def settings(self) -> Settings:
        return Settings.load(self.lib.home)

    def settings_dict(self) -> dict:
        """Every setting with its current value."""
        from dataclasses import asdict

        return asdict(self.settings)

    def get_setting(self, key: str):
        """One setting's value (BadInputError listing the valid keys for an unknown one)."""
        from .config import parse_setting, setting_keys

        if key not in setting_keys():
            parse_setting(key, None)  # raises the unknown-key error
        return getattr(self.settings, key)

    def update_settings(self, changes: dict) -> dict:
        """Set several settings at once, each typed by its declared type; nothing is saved if one is bad."""
        from dataclasses import replace

        from .config import parse_setting

        typed = {k: parse_setting(k, v) for k, v in changes.items()}
        s = replace(self.settings, **typed)
        s.save(self.lib.home)
        return self.settings_dict()

    def set_setting(self, key: str, value) -> object:
        """Set one setting (a string is parsed as the setting's type); returns the stored value."""
        return self.update_settings({key: value})[key]

    # -- import --------------------------------------------------------------------------------
    def prepare_ingest(self, path: str, *, subtitles: str | None = None, audio_track: int | None = None,
                       channel_mode: str | None = None, title: str | None = None, script: str | None = None,
                       analyze: bool = True, analysis: "AnalysisOptions | None" = None, kind: str = "file",
                       subtitle_encoding: str | None = None) -> "PreparedJob":
        """Validate an import (raising BadInputError before anything is written) and create or resume its job.

        Returns a PreparedJob whose ``run(listener, cancel)`` does the work (in this thread or a worker)."""
        from pipeline.workflows.analysis import AnalysisOptions, analysis_stages

        req = ingest_mod.IngestRequest(str(path), subtitles=subtitles, audio_track=audio_track,
                                       channel_mode=channel_mode or self.settings.channel_mode, title=title, kind=kind,
                                       subtitle_encoding=subtitle_encoding or None,
                                       subtitle_language=getattr(self.settings, "subtitle_language", None))
        opts = analysis or AnalysisOptions()
        req.resync = bool(analyze and opts.sync)
        if script and not str(script).isdigit():
            from pipeline.text.scripts import parse_script

            parse_script(script)  # validate before anything is written
        extra = analysis_stages(opts) if analyze else []
        job_id, stages, resumed = ingest_mod.plan(self.lib, req, extra)
        if script:
            opts.script_id = int(script) if str(script).isdigit() else self.add_script(script)["id"]

        def run(svc: "Service", listener=None, cancel=None) -> JobOutcome:
            results = svc.runner.run(job_id, stages, listener=listener, cancel=cancel)
            media_id = results["commit"]["media_id"]
            svc._link_job(job_id, media_id, opts)
            extra_res = {"analysis": results["save"]} if "save" in results else {}
            return JobOutcome(job_id, {**results["commit"], **extra_res}, resumed)

        return PreparedJob(job_id, resumed, run)

    def ingest(self, path: str, *, listener: ProgressListener | None = None, cancel: CancelToken | None = None,
               **kwargs) -> JobOutcome:
        """Import a media file and (by default) run the analysis chain, as one resumable job."""
        prepared = self.prepare_ingest(path, **kwargs)
        return prepared.run(self, listener, cancel)

    def _link_job(self, job_id: int, media_id: int, opts) -> None:
        with self.lib.atomic() as db:
            job_rows.link_media(db, job_id, media_id)
            if opts.script_id:
                items.set_script(db, media_id, opts.script_id)

    def prepare_analyze(self, media_id: int, *, options: "AnalysisOptions | None" = None) -> "PreparedJob":
        """Create (or resume) an analysis job for an item already in the library."""
        from pipeline.workflows.analysis import AnalysisOptions, analysis_stages

        m = self.lib.media(media_id)
        opts = options or AnalysisOptions(script_id=m.get("script_id"))
        key = f"analyze:{media_id}"
        resumed = self.runner.find_resumable(key)
        if (active := self.runner.find_active(key)) is not None:
            raise WeaverError(f"item {media_id} is already being analysed by job {active}")
        job_id = resumed or self.runner.create("analyze", {"media_id": media_id}, key=key, media_id=media_id)
        stages = analysis_stages(opts)

        def run(svc: "Service", listener=None, cancel=None) -> JobOutcome:
            results = svc.runner.run(job_id, stages, listener=listener, cancel=cancel)
            return JobOutcome(job_id, results["save"], resumed is not None)

        return PreparedJob(job_id, resumed is not None, run)

    def analyze(self, media_id: int, *, options: "AnalysisOptions | None" = None,
                listener: ProgressListener | None = None, cancel: CancelToken | None = None) -> JobOutcome:
        """(Re)run the analysis chain on an item already in the library."""
        return self.prepare_analyze(media_id, options=options).run(self, listener, cancel)

    # -- library -------------------------------------------------------------------------------
    def list_media(self) -> list[dict]:
        return items.list_media(self.lib.db)

    def show_media(self, media_id: int) -> dict:
        m = self.lib.media(media_id)
        return items.add_details(self.lib.db, m)

    def remove_media(self, media_id: int) -> None:
        """Delete an item with its rows, files and jobs (a job still running elsewhere is asked to cancel)."""
        self.lib.remove_media(media_id)

    def lines(self, media_id: int) -> list[dict]:
        """Subtitle lines of the primary track (falls back to segments when there is none)."""
        self.lib.media(media_id)
        return line_rows.primary_lines(self.lib.db, media_id)

    def segments(self, media_id: int, *, character: str | None = None) -> list[dict]:
        """Dialogue segments with their clip edits, speaker and character names."""
        self.lib.media(media_id)
        return line_rows.segments(self.lib.db, media_id, character)

    # -- clips ---------------------------------------------------------------------------------
    def export_clips(self, media_id: int, out_dir: str | os.PathLike, *, character: str | None = None,
                     video: bool = False, isolate: bool = False, fmt: str = "wav", include_rejected: bool = False,
                     listener: ProgressListener | None = None, cancel: CancelToken | None = None) -> Path:
        """Write one audio clip (and optionally a video clip) per dialogue segment plus metadata.csv."""
        m = self.lib.media(media_id)
        segs = self.segments(media_id, character=character)
        if character is not None and not segs:
            names = labels.character_names(self.lib.db, media_id)
            raise NotFoundError(f"no lines for character '{character}' in item {media_id}"
                                + (f" (characters: {', '.join(names)})" if names else ""))
        if not include_rejected:
            segs = [s for s in segs if s["status"] != "rejected"]
        if fmt not in ("wav", "flac"):
            raise BadInputError("clip format must be wav or flac")
        source = Path(m["source_path"]) if m["source_path"] else None
        if video and (not m["has_video"] or source is None or not source.exists()):
            raise BadInputError(f"item {media_id} has no video to cut (source file {'missing' if m['has_video'] else 'has no video stream'})")
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BadInputError(f"cannot create {out}: {e.strerror}") from None
        dialogue = self.lib.abspath(m["dialogue_path"])
        separator = None
        if isolate:
            from .stages import get_backend

            separator = get_backend("separation", self.settings.backends.get("separation") or None)
        rows = []
        report = stage_callback(listener)
        for i, s in enumerate(segs):
            if cancel:
                cancel.check()
            start = max(0.0, s["start"] + (s["trim_start"] or 0))
            end = min(m["duration"] or 1e9, s["end"] + (s["trim_end"] or 0))
            if end <= start:
                continue
            audio, rate = media_io.read_audio_span(dialogue, start, end)
            if separator is not None:
                audio = separator.isolate(audio, rate)
            name = f"{i + 1:04d}_{slug(s['character'] or s['speaker'] or 'line', 16)}_{slug(s['text'], 32)}"
            audio_path = media_io.write_audio(out / f"{name}.{fmt}", audio, rate)
            row = {"file": audio_path.name, "text": s["text"], "start": round(start, 3), "end": round(end, 3),
                   "confidence": None if s["confidence"] is None else round(s["confidence"], 3),
                   "source": s["attribution_source"] or s["origin"], "character": s["character"] or "",
                   "speaker": s["speaker"] or "", "overlap": int(s["overlap"] or 0),
                   "text_source": s.get("text_source") or "", "check_text": int(s.get("check_text") or 0)}
            if video:
                vpath = media_io.cut_video(source, start, end, out / f"{name}.mp4", audio=audio_path)
                row["video"] = vpath.name
            rows.append(row)
            report((i + 1) / max(1, len(segs)), f"clip {i + 1}/{len(segs)}")
        fields = ["file", "text", "start", "end", "confidence", "source", "character", "speaker", "overlap", "text_source", "check_text"] + (["video"] if video else [])
        with open(out / "metadata.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
        return out

    # -- jobs ----------------------------------------------------------------------------------
    def jobs(self, limit: int = 50) -> list[dict]:
        return self.runner.list(limit)

    def job(self, job_id: int) -> dict:
        return self.runner.get(job_id)

    def cancel_job(self, job_id: int) -> dict:
        """Stop a job: a running one stops at its next progress report; one whose process is gone is cancelled
        at once and its work folder removed."""
        self.runner.request_cancel(job_id)
        return self.runner.get(job_id)

    # -- models --------------------------------------------------------------------------------
    def models(self) -> list[dict]:
        """Every stage's backends with availability, needed model files and the command to fetch them."""
        from .models import model_report

        return model_report()

    # -- scripts (the screenplay library) ---------------------------------------------------------
    def add_script(self, path: str, *, title: str | None = None, year: int | None = None) -> dict:
        """Parse a screenplay/subtitle file and store it with full-text search; returns the script row."""
        from .media import fingerprint
        from pipeline.text.scripts import parse_script

        script = parse_script(path)
        fp = fingerprint(path)
        existing = script_rows.by_fingerprint(self.lib.db, fp)
        if existing:
            return existing
        with self.lib.atomic() as db:
            sid = script_rows.insert(db, script, title=title or script.title or Path(path).stem, year=year,
                                     path=str(Path(path).resolve()), fingerprint=fp)
        return self.lib.row("scripts", sid, "script")

    def search_scripts(self, query: str, limit: int = 50) -> list[dict]:
        """Full-text search over titles, character names and dialogue."""
        return script_rows.search(self.lib.db, query, limit)

    def show_script(self, script_id: int) -> dict:
        row = self.lib.row("scripts", script_id, "script")
        row["lines"] = script_rows.lines(self.lib.db, script_id)
        chars: dict[str, int] = {}
        for ln in row["lines"]:
            chars[ln["character"]] = chars.get(ln["character"], 0) + 1
        row["characters"] = [{"name": k, "lines": v} for k, v in chars.items()]
        return row

    def list_scripts(self) -> list[dict]:
        return script_rows.list_scripts(self.lib.db)

    # -- characters and speakers -----------------------------------------------------------------
    def characters(self, media_id: int) -> list[dict]:
        """Characters of an item with line count and total speech time (seconds)."""
        self.lib.media(media_id)
        return labels.characters_summary(self.lib.db, media_id)

    def speakers(self, media_id: int) -> list[dict]:
        """Speaker clusters with their name (user label or matched voiceprint), match score and segments."""
        self.lib.media(media_id)
        return labels.speakers_summary(self.lib.db, media_id)

    # -- labelling (undoable) ----------------------------------------------------------------------
    # Labelling edits (label, merge, reassign, split, line text, join — see service_lines) each record exactly the rows they changed (pipeline.library.edits),
    # and undo puts back the latest one and nothing else. Clip trims and keep/reject marks are not labelling
    # edits: they set a value the panel shows and can set again, and no labelling undo touches them.
    @contextmanager
    def _edit(self, media_id: int, action: dict, segments: tuple[str, list], *, words_of: tuple[int, ...] = ()):
        """Run a labelling edit in one transaction and record the rows it inserted, deleted and updated (plus a
        voiceprint it enrolled) for undo; ``segments`` (a WHERE clause and its args) names the segments it works
        on (see pipeline.library.edits.edit_scope). An edit that changed nothing is not recorded."""
        self.lib.media(media_id)
        with self.lib.atomic() as db:
            scope = edit_rows.edit_scope(db, media_id, segments, words_of=words_of)
            before = edit_rows.snapshot(db, scope)
            yield db
            changes = edit_rows.diff(before, edit_rows.snapshot(db, scope))
            if changes:
                edit_rows.store(db, media_id, action, changes)

    def _character_id(self, db, media_id: int, name: str) -> int:
        name = name.strip()
        if not name:
            raise BadInputError("a character name cannot be empty")
        return labels.character_id(db, media_id, name)

    def _speaker(self, media_id: int, label: str) -> dict:
        sp = labels.find_speaker(self.lib.db, media_id, label)
        if sp is None:
            raise NotFoundError(f"speaker '{label}' not found in item {media_id}")
        return sp

    def label_speaker(self, media_id: int, speaker: str, name: str, *, enroll: bool = True) -> dict:
        """Name a speaker cluster: every line of that cluster gets the character (user labels win);
        the cluster's voice is enrolled as a voiceprint so the name is recognised in later recordings."""
        sp = self._speaker(media_id, speaker)
        with self._edit(media_id, {"op": "label", "speaker": sp["label"], "name": name},
                        ("speaker_id = ?", [sp["id"]])) as db:
            cid = self._character_id(db, media_id, name)
            labels.name_speaker(db, sp["id"], name, cid)
            if enroll and sp["embedding"]:
                from .library import voiceprints as vplib

                secs = vplib.speaker_seconds(db, sp["id"])
                vplib.add(db, name, np.frombuffer(sp["embedding"], dtype=np.float32), "named", media_id=media_id,
                          speaker=sp["label"], seconds=round(float(secs), 2))
            self._drop_unused_characters(db, media_id)
        return {"speaker": sp["label"], "name": name}

    def merge_speakers(self, media_id: int, source: str, target: str) -> dict:
        """Move every line of speaker `source` into speaker `target` (same character when target has one)."""
        a, b = self._speaker(media_id, source), self._speaker(media_id, target)
        if a["id"] == b["id"]:
            raise BadInputError("cannot merge a speaker into itself")
        with self._edit(media_id, {"op": "merge", "from": a["label"], "into": b["label"]},
                        ("speaker_id IN (?, ?)", [a["id"], b["id"]])) as db:
            labels.merge_speakers(db, a["id"], b["id"])
            self._drop_unused_characters(db, media_id)
        return {"merged": a["label"], "into": b["label"]}

    def reassign_line(self, segment_id: int, character: str) -> dict:
        """Give one line to a character (a user label for that line only)."""
        seg = self.lib.row("segments", segment_id, "line")
        with self._edit(seg["media_id"], {"op": "reassign", "segment": segment_id, "character": character},
                        ("id = ?", [segment_id])) as db:
            cid = self._character_id(db, seg["media_id"], character)
            labels.assign_line(db, segment_id, cid)
            self._drop_unused_characters(db, seg["media_id"])
        return {"segment": segment_id, "character": character}

    def split_line(self, segment_id: int, at: float) -> dict:
        """Split a line at a time (seconds from media start) into two lines with their own clips."""
        from pipeline.text.lines import split_line_at
        from .types import Line, Word

        seg = self.lib.row("segments", segment_id, "line")
        if not seg["start"] < at < seg["end"]:
            raise BadInputError(f"split time {at:.2f} s is outside line {segment_id} ({seg['start']:.2f}–{seg['end']:.2f} s)")
        words = line_rows.words(self.lib.db, segment_id)
        line = Line(start=seg["start"], end=seg["end"], text=seg["text"], confidence=seg["confidence"] or 1.0,
                    words=[Word(w["start"], w["end"], w["text"], w["probability"] or 1.0) for w in words])
        left, right = split_line_at(line, at)
        if seg["user_text"]:  # the user's text is cut where the words are, not rebuilt from the words' own text
            toks = seg["text"].split()
            k = round(len(toks) * len(left.words) / len(words)) if words else \
                round(len(toks) * (at - seg["start"]) / (seg["end"] - seg["start"]))
            left.text, right.text = " ".join(toks[:k]), " ".join(toks[k:])
        moved = [w["id"] for w in words if (w["start"] + w["end"]) / 2 >= at]
        with self._edit(seg["media_id"], {"op": "split", "segment": segment_id, "at": at}, ("id = ?", [segment_id]),
                        words_of=(segment_id,)) as db:
            new_id = line_rows.split_segment(db, seg, at, left.text, right, moved)
        return {"segment": segment_id, "new_segment": new_id}

    def undo(self, media_id: int) -> dict | None:
        """Undo the item's latest labelling edit: exactly the rows it changed, and the voiceprint a label enrolled.
        Returns the undone action, or None when nothing is left (an analysis run closes the edits before it)."""
        self.lib.media(media_id)
        with self.lib.atomic() as db:
            row = edit_rows.latest_open(db, media_id)
            if row is None:
                return None
            edit_rows.revert(db, json.loads(row["undo"]))
            edit_rows.mark_undone(db, row["id"])
        return json.loads(row["action"])

    def edits(self, media_id: int) -> list[dict]:
        """The item's labelling edits, oldest first; ``closed`` says why one can no longer be undone."""
        return edit_rows.list_edits(self.lib.db, media_id)

    @staticmethod
    def _drop_unused_characters(db, media_id: int) -> None:
        labels.drop_unused_characters(db, media_id)

    # -- clip editing ----------------------------------------------------------------------------
    def clip(self, clip_id: int) -> dict:
        c = self.lib.row("clips", clip_id, "clip")
        seg = self.lib.row("segments", c["segment_id"], "line")
        words = line_rows.word_spans(self.lib.db, seg["id"])
        return {**c, "segment_start": seg["start"], "segment_end": seg["end"], "text": seg["text"],
                "start": seg["start"] + c["trim_start"], "end": seg["end"] + c["trim_end"], "words": words}

    def trim_clip(self, clip_id: int, *, start: float | None = None, end: float | None = None,
                  relative: bool = True, snap: bool = False) -> dict:
        """Move a clip's edges (relative seconds, or absolute media times) and optionally snap them to word edges."""
        c = self.clip(clip_id)
        m = self.lib.media(c["media_id"])
        new_start = c["start"] if start is None else (c["start"] + start if relative else start)
        new_end = c["end"] if end is None else (c["end"] + end if relative else end)
        if snap:
            near = line_rows.words_near(self.lib.db, c["media_id"], new_start - 2.0, new_end + 2.0)
            if near:
                new_start = min((w["start"] for w in near), key=lambda t: abs(t - new_start))
                new_end = min((w["end"] for w in near), key=lambda t: abs(t - new_end))
        new_start = max(0.0, new_start)
        new_end = min(m["duration"] or new_end, new_end)
        if new_end - new_start < 0.05:
            raise BadInputError(f"clip would be empty ({new_start:.2f}–{new_end:.2f} s)")
        with self.lib.atomic() as db:
            line_rows.set_clip_trim(db, clip_id, new_start - c["segment_start"], new_end - c["segment_end"])
        return self.clip(clip_id)

    def set_clip_status(self, clip_id: int, status: str) -> dict:
        """Mark a clip pending, kept or rejected (a plain setter like trim_clip: not on the labelling undo stack)."""
        if status not in ("pending", "kept", "rejected"):
            raise BadInputError("clip status must be pending, kept or rejected")
        self.lib.row("clips", clip_id, "clip")
        with self.lib.atomic() as db:
            line_rows.set_clip_status(db, clip_id, status)
        return self.clip(clip_id)

    def clip_audio(self, clip_id: int, *, pad: float = 0.0) -> tuple:
        """(audio, rate) of a clip from the full-quality dialogue track, for playback."""
        c = self.clip(clip_id)
        m = self.lib.media(c["media_id"])
        return media_io.read_audio_span(self.lib.abspath(m["dialogue_path"]), max(0.0, c["start"] - pad), c["end"] + pad)

    # -- voiceprints -----------------------------------------------------------------------------
    def enroll_voiceprint(self, name: str, audio_path: str, *, start: float | None = None, end: float | None = None) -> int:
        """Store a named voiceprint from a recording (optionally a time window of it)."""
        from .stages import voiceprint as vp

        audio = media_io.load_audio(audio_path, media_io.ANALYSIS_RATE, start=start or 0.0, end=end)
        if len(audio) < media_io.ANALYSIS_RATE * 1.0:
            raise BadInputError(f"need at least 1 s of speech to enroll a voiceprint (got {len(audio) / media_io.ANALYSIS_RATE:.2f} s)")
        emb = np.asarray(vp.embed(audio, media_io.ANALYSIS_RATE), dtype=np.float32)
        with self.lib.atomic() as db:
            from .library import voiceprints as vplib

            return vplib.add(db, name, emb, "file", path=str(audio_path), seconds=round(len(audio) / media_io.ANALYSIS_RATE, 2))

    def voiceprints(self) -> list[dict]:
        from .library import voiceprints as vplib

        return vplib.listing(self.lib.db)

    # -- one-off analysis on a file or item --------------------------------------------------------
    def audio_for(self, source: str) -> np.ndarray:
        """16 kHz mono audio of a library item (by id) or of any media file path."""
        if str(source).isdigit() and not Path(str(source)).exists():
            from pipeline.workflows.analysis import analysis_audio

            return analysis_audio(self.lib, int(source))
        return media_io.load_audio(source, media_io.ANALYSIS_RATE)

    def transcribe(self, source: str, *, backend: str | None = None, model: str | None = None,
                   listener: ProgressListener | None = None, cancel: CancelToken | None = None):
        """Transcribe an item or file with word times; returns a pipeline.types.Transcript."""
        from .stages import get_backend

        audio = self.audio_for(source)
        asr = get_backend("asr", backend or self.settings.backends.get("asr") or None, model=model or self.settings.asr_model)
        return asr.transcribe(audio, media_io.ANALYSIS_RATE, progress=stage_callback(listener), cancel=cancel)

    def diarize(self, source: str, *, backend: str | None = None, num_speakers: int | None = None,
                listener: ProgressListener | None = None, cancel: CancelToken | None = None):
        """Diarize an item or file; returns a pipeline.types.Diarization."""
        from .stages import get_backend

        audio = self.audio_for(source)
        dia = get_backend("diarize", backend or self.settings.backends.get("diarize") or None)
        return dia.diarize(audio, media_io.ANALYSIS_RATE, num_speakers=num_speakers,
                           progress=stage_callback(listener), cancel=cancel)

    # -- frames ------------------------------------------------------------------------------------
    def frame_at(self, media_id: int, t: float, *, width: int = 320) -> bytes | None:
        """A JPEG of what was on screen at time t: the video frame of a file, or the nearest captured frame."""
        m = self.lib.media(media_id)
        if m["frames_path"]:
            folder = self.lib.abspath(m["frames_path"])
            frames = sorted(folder.glob("*.jpg")) + sorted(folder.glob("*.webp"))
            if frames:
                def stamp(p: Path) -> float:
                    try:
                        return float(p.stem.split("_")[-1])
                    except ValueError:
                        return 0.0
                return min(frames, key=lambda p: abs(stamp(p) - t)).read_bytes()
        source = Path(m["source_path"]) if m["source_path"] else None
        if not m["has_video"] or source is None or not source.exists():
            return None
        return media_io.video_frame_jpeg(source, t, width=width)

    # -- online sources (off by default) -------------------------------------------------------------
    def online_sources(self) -> list[dict]:
        from pipeline.text.online_sources import list_sources

        return list_sources(self.settings)

    def search_online(self, source: str, query: str, *, year: int | None = None, transport=None) -> list[dict]:
        from dataclasses import asdict

        from pipeline.text.online_sources import get_source

        return [asdict(h) for h in get_source(source, self.settings, transport).search(query, year=year)]

    def fetch_online(self, source: str, query: str, *, year: int | None = None, pick: int = 0, transport=None) -> dict:
        """Search a source and download hit number `pick`; screenplays are added to the script library."""
        from pipeline.text.online_sources import get_source

        src = get_source(source, self.settings, transport)
        hits = src.search(query, year=year)
        if not hits:
            raise NotFoundError(f"{source}: nothing found for '{query}'")
        if not 0 <= pick < len(hits):
            raise BadInputError(f"--pick must be 0..{len(hits) - 1}")
        path = src.download(hits[pick], self.lib.home / "downloads")
        result = {"path": str(path), "kind": hits[pick].kind, "title": hits[pick].title}
        if hits[pick].kind == "screenplay":
            result["script_id"] = self.add_script(str(path), title=hits[pick].title, year=hits[pick].year)["id"]
        return result

    # -- small queries the faces need ----------------------------------------------------------------
    def busy_jobs(self) -> int:
        """How many jobs are queued or running (the tray shows 'processing' while any is)."""
        return job_rows.busy_count(self.lib.db)

    def interrupt_queued(self, job_ids: list[int]) -> None:
        """Queued jobs this process owned and will never run (shutting down) become resumable ('interrupted')."""
        with self.lib.atomic() as db:
            for jid in job_ids:
                job_rows.interrupt_queued(db, jid)

    def find_character(self, name: str, media_id: int | None = None) -> tuple[int, str] | None:
        """(item id, name) of the newest item's character of this name (any case), in one item or any."""
        return labels.find_character(self.lib.db, name, media_id)

    # -- voiceprint management (pipeline.library.voiceprints) ---------------------------------------
    def rename_voiceprint(self, voiceprint_id: int, name: str) -> dict:
        from .library import voiceprints as vplib

        with self.lib.atomic() as db:
            return vplib.rename(db, voiceprint_id, name)

    def merge_voiceprints(self, source_id: int, target_id: int) -> dict:
        from .library import voiceprints as vplib

        with self.lib.atomic() as db:
            return vplib.merge(db, source_id, target_id)

    def delete_voiceprint(self, voiceprint_id: int) -> dict:
        from .library import voiceprints as vplib

        with self.lib.atomic() as db:
            return vplib.remove(db, voiceprint_id)
