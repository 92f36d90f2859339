"""The one facade every face (CLI, panel API, tray) calls. It wires sources, store, jobs and stages."""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from pipeline.workflows import ingest as ingest_mod
from . import media as media_io
from .config import Settings
from .errors import BackendUnavailableError, BadInputError, NotFoundError, WeaverError
from .files import safe_child, slug  # noqa: F401 - part of the facade's API
from .jobs import JobOutcome, JobRunner, PreparedJob, ProgressListener  # noqa: F401 - facade API
from .progress import CancelToken, stage_callback
from .library import Library
from .library import edits as edit_rows
from .library import items, labels, lines as line_rows, scripts as script_rows
from .library import jobs as job_rows
from .library import voices as voice_rows
from .text.lines import join_text
from .workflows.training import voice_slug

MAX_LINE_TEXT = 2000  # characters; a line is one utterance, not a page


class Service:
    """Operations on one library. Open one per thread (SQLite connections are per thread)."""

    def __init__(self, library: Library | None = None, home: str | os.PathLike | None = None):
        self.lib = library or Library(home)
        self.runner = JobRunner(self.lib)

    def close(self) -> None:
        """Close the library's database connection (the service is unusable afterwards)."""
        self.lib.close()

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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

    # -- re-import: subtitle tracks and the screenplay of an item already in the library ---------------------
    def subtitle_tracks(self, media_id: int) -> list[dict]:
        from .workflows import reimport

        return reimport.tracks(self, media_id)

    def add_subtitles(self, media_id: int, path: str, *, encoding: str | None = None, primary: bool = True) -> dict:
        """Add a subtitle file to an item (the item, its labels and voices stay); as primary, its lines are the
        ones the next analysis uses (``prepare_analyze``), carrying every user edit over."""
        from .workflows import reimport

        return reimport.add_subtitles(self, media_id, path, encoding=encoding, primary=primary)

    def set_primary_subtitles(self, track_id: int) -> dict:
        from .workflows import reimport

        return reimport.set_primary(self, track_id)

    def remove_subtitle_track(self, track_id: int) -> dict:
        from .workflows import reimport

        return reimport.remove_track(self, track_id)

    def attach_script(self, media_id: int, script: "str | int | None") -> dict:
        """Attach a screenplay (file path or script id) to an item, or detach it (None); analyse again to apply."""
        from .workflows import reimport

        return reimport.attach_script(self, media_id, script)

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
        from .workflows.export import export_clips

        return export_clips(self, media_id, out_dir, character=character, video=video, isolate=isolate, fmt=fmt,
                            include_rejected=include_rejected, listener=listener, cancel=cancel)

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
    # Labelling edits (label, merge, reassign, split, line text, join — below) each record exactly the rows they changed (pipeline.library.edits),
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
        """Name a speaker cluster: every line of that cluster gets the character (user labels win), but for lines
        the user gave someone else and lines an SDH label or the screenplay names after another character than the
        one the cluster mostly is ("kept": how many; the clustering merged their voice in); the cluster's voice is
        enrolled as a voiceprint so the name is recognised in later recordings."""
        sp = self._speaker(media_id, speaker)
        with self._edit(media_id, {"op": "label", "speaker": sp["label"], "name": name},
                        ("speaker_id = ?", [sp["id"]])) as db:
            cid = self._character_id(db, media_id, name)
            kept = labels.name_speaker(db, sp["id"], name, cid)
            if enroll and sp["embedding"]:
                from .library import voiceprints as vplib

                secs = vplib.speaker_seconds(db, sp["id"])
                vplib.add(db, name, np.frombuffer(sp["embedding"], dtype=np.float32), "named", media_id=media_id,
                          speaker=sp["label"], seconds=round(float(secs), 2))
            self._drop_unused_characters(db, media_id)
        return {"speaker": sp["label"], "name": name, "kept": kept}

    def merge_speakers(self, media_id: int, source: str, target: str) -> dict:
        """Move every line of speaker `source` into speaker `target` (same character when target has one, as
        label_speaker gives it; "kept": lines keeping a name of their own)."""
        a, b = self._speaker(media_id, source), self._speaker(media_id, target)
        if a["id"] == b["id"]:
            raise BadInputError("cannot merge a speaker into itself")
        with self._edit(media_id, {"op": "merge", "from": a["label"], "into": b["label"]},
                        ("speaker_id IN (?, ?)", [a["id"], b["id"]])) as db:
            kept = labels.merge_speakers(db, a["id"], b["id"])
            self._drop_unused_characters(db, media_id)
        return {"merged": a["label"], "into": b["label"], "kept": kept}

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

    # == line text: edit, join (undoable labelling edits), re-decode a subtitle file ======================
    def edit_line_text(self, segment_id: int, text: str) -> dict:
        """Give a line the text the user typed (undoable); it wins over every automatic source from now on."""
        seg = self.lib.row("segments", segment_id, "line")
        new = " ".join(str(text or "").split())
        if not new:
            raise BadInputError(f"the text of line {segment_id} cannot be empty (reject its clip to leave it out)")
        if len(new) > MAX_LINE_TEXT:
            raise BadInputError(f"line text too long ({len(new)} characters, limit {MAX_LINE_TEXT})")
        with self._edit(seg["media_id"], {"op": "text", "segment": segment_id, "text": new},
                        ("id = ?", [segment_id])) as db:
            line_rows.set_segment_text(db, segment_id, new)
        return {"segment": segment_id, "text": new, "previous": seg["text"]}

    def join_lines(self, segment_id: int, next_id: int, *, force: bool = False) -> dict:
        """Join a line with the next one of the same item into one line with one clip (undoable).

        Refused unless the two are neighbours in the item's line order; lines of two different characters are
        refused unless ``force``. Returns {"segment": kept id, "joined": removed id, "text": joined text}."""
        a = self.lib.row("segments", segment_id, "line")
        b = self.lib.row("segments", next_id, "line")
        if a["id"] == b["id"]:
            raise BadInputError(f"cannot join line {segment_id} with itself")
        if a["media_id"] != b["media_id"]:
            raise BadInputError(f"lines {segment_id} and {next_id} are in different items "
                                f"({a['media_id']} and {b['media_id']}); only lines of one item can be joined")
        mid = a["media_id"]
        order = line_rows.segment_order(self.lib.db, mid)
        ia, ib = order.index(a["id"]), order.index(b["id"])
        if ib < ia:
            a, b, ia, ib = b, a, ib, ia
        if ib != ia + 1:
            raise BadInputError(f"lines {a['id']} and {b['id']} are not adjacent ({ib - ia - 1} line"
                                f"{'s' if ib - ia - 1 != 1 else ''} between them); only neighbouring lines can be joined")
        if a["character_id"] != b["character_id"] and not force:
            names = labels.character_names_by_id(self.lib.db, [a["character_id"], b["character_id"]])
            who = lambda s: f"{names[s['character_id']]}'s" if s["character_id"] in names else "unattributed"  # noqa: E731
            raise BadInputError(f"line {a['id']} is {who(a)} and line {b['id']} is {who(b)}: joining lines of two "
                                f"characters needs force (CLI --force)")
        ca = line_rows.clips_of_segment(self.lib.db, a["id"])
        cb = line_rows.clips_of_segment(self.lib.db, b["id"])
        text = join_text(a["text"], b["text"])
        tags = list(dict.fromkeys(json.loads(a["tags"] or "[]") + json.loads(b["tags"] or "[]")))
        conf = [c for c in (a["confidence"], b["confidence"]) if c is not None]
        with self._edit(mid, {"op": "join", "segment": a["id"], "next": b["id"], "force": bool(force)},
                        ("id IN (?, ?)", [a["id"], b["id"]]), words_of=(a["id"], b["id"])) as db:
            line_rows.join_segments(db, a, b, ca, cb, text, tags, min(conf) if conf else None)
        return {"segment": a["id"], "joined": b["id"], "text": text}

    # -- subtitle encodings ------------------------------------------------------------------------
    def subtitle_encoding(self, track_id: int) -> dict:
        """How a subtitle track's encoding was chosen: {track, encoding, unsure, method, candidates}."""
        t = self.lib.row("subtitle_tracks", track_id, "subtitle track")
        info = json.loads(t.get("encoding_info") or "null") or {}
        return {"track": track_id, "media_id": t["media_id"], "encoding": t["encoding"],
                "unsure": bool(info.get("unsure")), "method": info.get("method"),
                "candidates": info.get("candidates") or [], "path": t["path"]}

    def set_subtitle_encoding(self, track_id: int, encoding: str) -> dict:
        """Read a sidecar subtitle file again with ``encoding`` and replace the track's lines; the item stays.

        Where the new reading has the same cues (the usual case: only the accented letters change), each line
        and each segment still holding that line's automatic text gets the new text (words too, when they count
        the same); user-edited text is left alone. Where the cues differ, the track's lines are replaced and, on
        the primary track, its segments are made again from them (run the analysis again)."""
        from pipeline.text.subtitles import drop_bad_cues, read_subtitle_file
        from pipeline.text.encoding import normalise_encoding

        t = self.lib.row("subtitle_tracks", track_id, "subtitle track")
        enc = normalise_encoding(encoding)
        if t["source"] != "sidecar" or not t["path"]:
            raise BadInputError(f"subtitle track {track_id} is {'an embedded stream' if t['source'] == 'embedded' else 'not a file'}"
                                "; only a subtitle file can be read again with another encoding")
        doc = read_subtitle_file(t["path"], encoding=enc)
        m = self.lib.media(t["media_id"])
        new, _ = drop_bad_cues(doc.lines, m["duration"] or None)
        old = line_rows.track_lines(self.lib.db, track_id)
        same = len(old) == len(new) and all(abs(o["start"] - n.start) < 1e-3 and abs(o["end"] - n.end) < 1e-3
                                            for o, n in zip(old, new))
        previous = json.loads(t.get("encoding_info") or "null") or {}
        info = {"encoding": enc, "unsure": False, "method": "user", "detected": previous.get("encoding", t["encoding"]),
                "candidates": previous.get("candidates") or []}
        changed, rebuilt = 0, False
        with self.lib.atomic() as db:
            if same:
                retext: dict[int, tuple[str, str]] = {}
                for o, n in zip(old, new):
                    if (o["text"], o["speaker_cue"]) == (n.text, n.speaker_cue):
                        continue
                    changed += 1
                    retext[o["id"]] = (o["text"], n.text)
                    line_rows.retext_line(db, o["id"], o["text"], n)
                edit_rows.retext_open_edits(db, t["media_id"], retext)
            else:
                rebuilt = bool(t["is_primary"])
                line_rows.replace_track_lines(db, t["media_id"], track_id, new, rebuild_segments=rebuilt)
                changed = len(new)
            line_rows.set_track_encoding(db, track_id, enc, info)
        return {"track": track_id, "media_id": t["media_id"], "encoding": enc, "lines": len(new), "changed": changed,
                "rebuilt": rebuilt}

    # == chat: personas, conversations, streamed replies in the character's voice ===========================
    def chat_models(self) -> list[dict]:
        """Each provider: reachable or not (with the reason) and its models."""
        from .chat.providers import describe_providers

        return describe_providers(self.settings)

    # -- personas ----------------------------------------------------------------------------------
    def persona_for(self, media_id: int, character: str) -> dict:
        """The character's persona, drafted from their own lines on first use (then editable)."""
        from .chat.persona import draft_persona
        from .library.chat import list_personas, save_persona

        m = self.lib.media(media_id)
        row = labels.character_in(self.lib.db, media_id, character)
        if row is None:
            raise NotFoundError(f"no character '{character}' in item {media_id}")
        existing = list_personas(self.lib.db, character_id=row[0])
        if existing:
            return existing[0].to_dict()
        lines = [s["text"] for s in self.segments(media_id, character=row[1])]
        voices = {v["name"]: v for v in self.voices()}
        voice = next((n for n, v in voices.items() if (v.get("character") or "").lower() == row[1].lower()
                      and v.get("status") == "ready"), "default")
        persona = draft_persona(row[1].title(), lines, m["title"], voice=voice,
                                provider=self.settings.chat_provider, model=self.settings.chat_model)
        persona.character_id = row[0]
        with self.lib.atomic() as db:
            persona.id = save_persona(db, persona)
        return persona.to_dict()

    def personas(self) -> list[dict]:
        from .library.chat import list_personas

        return [p.to_dict() for p in list_personas(self.lib.db)]

    def persona(self, persona_id: int):
        from .library.chat import load_persona

        return load_persona(self.lib.db, persona_id)

    def update_persona(self, persona_id: int, changes: dict) -> dict:
        """Edit a persona's prompt, model, provider, temperature, options or voice, and its generation controls
        (max_tokens, top_p, repetition_penalty, max_chars, stop: typed, range-checked, kept in ``options``)."""
        from .chat.persona import CONTROL_ALIASES, GENERATION_CONTROLS, Persona, generation_control
        from .library.chat import save_persona

        current = self.persona(persona_id).to_dict()
        changes = dict(changes)
        controls = {k: changes.pop(k) for k in list(changes)
                    if k != "temperature" and (k in GENERATION_CONTROLS or k in CONTROL_ALIASES)}
        if controls:
            options = dict(changes.get("options", current.get("options")) or {})
            for k, v in controls.items():
                key, value = generation_control(k, v)
                options.pop(k, None)
                options[key] = value
            changes["options"] = options
        if "example_lines" in changes:  # the editor's lines: whole lines, and the prompt's example block follows
            from .chat.persona import with_examples

            lines = changes["example_lines"]
            if isinstance(lines, str):
                lines = lines.splitlines()
            if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
                raise BadInputError("example_lines must be a list of lines")
            changes["example_lines"] = [x.strip() for x in lines if x.strip()]
            if changes["example_lines"] != current.get("example_lines"):
                prompt = changes.get("system_prompt", current.get("system_prompt") or "")
                changes["system_prompt"] = with_examples(prompt, current["name"], changes["example_lines"],
                                                         current.get("source_title"))
        allowed = {"name", "system_prompt", "model", "provider", "temperature", "options", "voice", "greeting",
                   "example_lines"}
        unknown = set(changes) - allowed
        if unknown:
            raise BadInputError(f"cannot change {', '.join(sorted(unknown))} (editable: {', '.join(sorted(allowed))})")
        current.update(changes)
        if "temperature" in changes:
            t = float(changes["temperature"])
            if not 0.0 <= t <= 2.0:
                raise BadInputError("temperature must be between 0 and 2")
        persona = Persona.from_dict(current)
        with self.lib.atomic() as db:
            save_persona(db, persona)
        return persona.to_dict()

    def import_card(self, path: str) -> dict:
        """Import a card file; the same card again updates its persona (pipeline.workflows.chat)."""
        from .workflows.chat import import_card_file

        return import_card_file(self, path)

    def export_card(self, persona_id: int, path: str) -> str:
        from .workflows.chat import export_card_file

        return export_card_file(self, persona_id, path)

    # -- conversations -------------------------------------------------------------------------------
    def start_conversation(self, persona_id: int) -> int:
        from .library.chat import append_message, create_conversation

        persona = self.persona(persona_id)
        with self.lib.atomic() as db:
            cid = create_conversation(db, persona_id, title=persona.name)
            if (persona.greeting or "").strip():
                append_message(db, cid, "assistant", persona.greeting.strip())
        s = self.settings
        s.last_persona_id = persona_id
        s.save(self.lib.home)
        return cid

    def conversation(self, conversation_id: int) -> list[dict]:
        from .library.chat import conversation_persona, history

        if conversation_persona(self.lib.db, conversation_id) is None:
            raise NotFoundError(f"conversation {conversation_id} does not exist")
        return history(self.lib.db, conversation_id)

    def _provider_for(self, persona):
        from .chat.providers import provider_config

        name = persona.provider or self.settings.chat_provider
        from .chat.providers import shared_provider

        return shared_provider(name, **{k: v for k, v in provider_config(self.settings).get(name, {}).items() if v})

    def chat_send(self, conversation_id: int, text: str, *, speak: bool = False,
                  on_delta: Callable[[str], None] | None = None,
                  on_sentence_audio: Callable[[int, str, np.ndarray, int], None] | None = None,
                  player: Callable[[np.ndarray, int], None] | None = None,
                  cancel: CancelToken | None = None, summarise: bool = True):
        """Send a user message; the reply streams through on_delta and (with speak) each finished sentence is
        synthesised in the persona's voice while the next is generated. Returns pipeline.chat.conversation.Reply.
        When older messages no longer fit the context the model then summarises them (``summarise=False``: the
        caller does it later with :meth:`chat_update_summary`)."""
        from .chat.conversation import Conversation, voice_tts
        from .library.chat import append_message, conversation_persona, history

        persona_id = conversation_persona(self.lib.db, conversation_id)
        if persona_id is None:
            raise NotFoundError(f"conversation {conversation_id} does not exist")
        persona = self.persona(persona_id)
        lib = self.lib

        def store(message: dict) -> None:
            with lib.atomic() as db:
                append_message(db, conversation_id, message["role"], message["content"], partial=message.get("partial", False))

        from .workflows.chat import summary, update_summary

        tts = voice_tts(persona.voice or "default", self.voices_dir) if speak else None
        provider, model = self._provider_for(persona), persona.model or self.settings.chat_model
        conv = Conversation(provider, persona, history(self.lib.db, conversation_id), model=model, tts=tts,
                            player=player, on_message=store, summary=summary(self, conversation_id)[0])
        reply = conv.send(text, on_delta=on_delta, on_sentence_audio=on_sentence_audio, cancel=cancel)
        if summarise and reply.dropped_messages and not reply.cancelled:  # older messages left the window
            update_summary(self, conversation_id, persona, provider, model, reply.dropped_messages)
        return reply

    def listen(self, audio: np.ndarray, rate: int) -> str:
        """Push-to-talk: the text of a short recording (the ASR stage)."""
        from .chat.conversation import transcribe_utterance

        text = transcribe_utterance(audio, rate)
        if not text.strip():
            raise BadInputError("no speech was recognised in the recording")
        return text

    # -- gallery, export, regenerate, summaries (pipeline.workflows.chat) ---------------------------
    def import_card_bytes(self, data: bytes) -> dict:
        from .workflows.chat import import_card_bytes

        return import_card_bytes(self, data)

    def persona_avatar(self, persona_id: int) -> bytes | None:
        from .workflows.chat import avatar_jpeg

        return avatar_jpeg(self, persona_id)

    def persona_card_png(self, persona_id: int) -> bytes:
        from .workflows.chat import card_png

        return card_png(self, persona_id)

    def persona_gallery(self) -> list[dict]:
        from .workflows.chat import gallery

        return gallery(self)

    def export_conversation(self, conversation_id: int, fmt: str = "txt") -> tuple[bytes, str, str]:
        from .workflows.chat import export_conversation

        return export_conversation(self, conversation_id, fmt)

    def chat_undo_last(self, conversation_id: int, expected: str | None = None) -> str:
        from .workflows.chat import undo_last_exchange

        return undo_last_exchange(self, conversation_id, expected)

    def conversation_summary(self, conversation_id: int) -> tuple[str, int]:
        from .workflows.chat import summary

        return summary(self, conversation_id)

    def chat_update_summary(self, conversation_id: int, dropped: int) -> str | None:
        """Summarise the oldest ``dropped`` messages (a Reply's ``dropped_messages``) if no summary covers them."""
        from .library.chat import conversation_persona_id
        from .workflows.chat import update_summary

        persona = self.persona(conversation_persona_id(self.lib.db, conversation_id))
        return update_summary(self, conversation_id, persona, self._provider_for(persona),
                              persona.model or self.settings.chat_model, dropped)

    def persona_conversations(self, persona_id: int) -> list[dict]:
        """A persona's conversations, newest first (NotFoundError for an unknown persona)."""
        from .library.chat import list_conversations

        self.persona(persona_id)
        return list_conversations(self.lib.db, persona_id)

    def conversation_messages(self, conversation_id: int) -> list[dict]:
        """The conversation's chat messages as shown (no summaries): id, role, content, partial, created_at."""
        from .library.chat import messages

        return messages(self.lib.db, conversation_id)

    # == voices: dataset → training job / instant clone → synthesis; voice management =======================
    @property
    def voices_dir(self) -> Path:
        return self.lib.home / "voices"

    def build_voice_dataset(self, media_id: int, character: str, *, min_s: float = 2.0, max_s: float = 15.0,
                            for_backend: str = "orpheus", isolate: bool | None = None, include_check_text: bool = False,
                            listener: ProgressListener | None = None, cancel: CancelToken | None = None) -> dict:
        """Build a training dataset from a character's kept and pending clips; returns the dataset row + summary.

        ``for_backend`` sets the sample rate (BACKEND_RATES); ``isolate`` None isolates the dialogue whenever a
        separation backend can run (the settings' choice, else the best available), True requires one."""
        from .voices.dataset import BACKEND_RATES, build_dataset
        from .workflows.instant_voice import clip_samples

        if for_backend not in BACKEND_RATES:
            raise BadInputError(f"unknown TTS backend {for_backend!r} (known: {', '.join(BACKEND_RATES)})")
        samples = clip_samples(self, media_id, character, "build a dataset from")
        separator = self.separator(required=isolate is True) if isolate is not False else None
        char_id = labels.character_in(self.lib.db, media_id, character)[0]
        out = self.lib.home / "datasets" / f"item{media_id}-{voice_slug(character)}-{int(time.time())}"
        summary = build_dataset(samples, out, min_s=min_s, max_s=max_s, target_rate=BACKEND_RATES[for_backend],
                                isolate=separator.isolate if separator else None,
                                isolation_name=separator.name if separator else None,
                                include_check_text=include_check_text, progress=stage_callback(listener), cancel=cancel)
        with self.lib.atomic() as db:
            ds_id = voice_rows.add_dataset(db, char_id, self.lib.relpath(out), summary.to_dict())
        return {"id": ds_id, "path": str(out), "character": character, "summary": summary.to_dict()}

    def separator(self, *, required: bool = False):
        """The dialogue separation backend (settings' choice, else the best available); None when none can run
        (or BackendUnavailableError when ``required``)."""
        from .stages import get_backend

        try:
            return get_backend("separation", self.settings.backends.get("separation") or None)
        except BackendUnavailableError:
            if required:
                raise
            return None

    def datasets(self) -> list[dict]:
        rows = voice_rows.datasets(self.lib.db)
        for r in rows:
            s = json.loads(r.pop("summary_json") or "{}")
            r["summary"] = {k: s.get(k) for k in ("kept", "rejected", "minutes_kept", "train", "val", "warning", "loudness",
                                                  "rate", "isolation", "isolated", "dnsmos", "dnsmos_mean", "speaker_check")}
            r["summary"]["rejected_clips"] = s.get("rejected_clips", [])
        return rows

    def prepare_training(self, name: str, dataset_id: int, *, backend: str = "auto", steps: int = 60,
                         base_model: str | None = None, snac_dir: str | None = None, save_every: int = 20,
                         lora_r: int = 16) -> PreparedJob:
        """Validate and create (or resume) a training job for voice `name` on a stored dataset: ``pocket-lora`` (a
        LoRA on Pocket TTS, CPU-sized; ``base_model`` = its language) or Orpheus (unsloth on a GPU, cpu: small bases)."""
        if backend == "pocket-lora":
            from .workflows import pocket_finetune
            return pocket_finetune.prepare(self, name, dataset_id, steps=steps, language=base_model, save_every=save_every)
        from .workflows.training import prepare_orpheus
        return prepare_orpheus(self, name, dataset_id, backend=backend, steps=steps, base_model=base_model,
                               snac_dir=snac_dir, save_every=save_every, lora_r=lora_r)

    def train_voice(self, name: str, dataset_id: int, *, listener: ProgressListener | None = None,
                    cancel: CancelToken | None = None, **kwargs):
        return self.prepare_training(name, dataset_id, **kwargs).run(self, listener, cancel)

    def voices(self) -> list[dict]:
        """Every voice (the built-in `default` first) with adapter size beside its base model's size, and the voice
        check's numbers (``check``: similarity, wer, dnsmos, ok, reasons, default = the default voice's numbers)."""
        from .voices.synth import list_voices

        rows = voice_rows.voice_rows(self.lib.db)
        out = []
        for v in list_voices(self.voices_dir):
            r = rows.get(v.name, {})
            out.append({**v.to_dict(), "status": r.get("status", "ready"), "base_bytes": r.get("base_bytes"),
                        "adapter_mb": round(v.adapter_bytes / 1e6, 2),
                        "base_mb": round(r["base_bytes"] / 1e6, 1) if r.get("base_bytes") else None,
                        "check": json.loads(r["check_json"]) if r.get("check_json") else None})
        for name, r in rows.items():  # voices still training, and voices whose check failed (they say why); a failed
            # or cancelled training run is no voice (see training_runs)
            listed = r["status"] == "training" or (r["status"] == "failed" and r.get("check_json"))
            if listed and not any(o["name"] == name for o in out):
                out.append({"name": name, "status": r["status"], "base_model": r["base_model"], "adapter_bytes": 0,
                            "builtin": False, "character": None,
                            "check": json.loads(r["check_json"]) if r.get("check_json") else None})
        checked = [o["check"]["default"] for o in out if o.get("check") and o["check"].get("default")]
        if out and out[0].get("builtin"):  # the default voice: its WER / DNSMOS from the latest check that measured it
            out[0]["check"] = {"similarity": None, "wer": checked[-1]["wer"], "dnsmos": checked[-1]["dnsmos"], "ok": True,
                               "reasons": [], "default": None} if checked else None
        return out

    def training_runs(self) -> list[dict]:
        rows = voice_rows.training_runs(self.lib.db)
        for r in rows:
            r["losses"] = json.loads(r.pop("losses_json") or "[]")
        return rows

    def say_stream(self, voice: str, text: str, *, cancel: CancelToken | None = None) -> Iterator[tuple[np.ndarray, int]]:
        """Synthesise text in a voice, sentence chunk by chunk (any length)."""
        from .voices.synth import synthesize_stream

        return synthesize_stream(voice, text, voices_dir=self.voices_dir, cancel=cancel)

    def say(self, voice: str, text: str, *, max_chars: int | None = None) -> tuple[np.ndarray, int]:
        """Whole-text synthesis (refuses text over the per-request cap; use say_stream for more)."""
        from .voices.synth import MAX_CHARS, synthesize

        return synthesize(voice, text, voices_dir=self.voices_dir, max_chars=max_chars or MAX_CHARS)

    def remove_voice(self, name: str) -> None:
        """Delete a trained voice into the trash (personas using it get the default voice); see delete_voice."""
        self.delete_voice(name, reassign=True)

    # voice management (pipeline.workflows.voice_admin): rename, trash/restore/purge, storage, who uses what
    def rename_voice(self, old: str, new: str) -> dict:
        from .workflows import voice_admin
        return voice_admin.rename(self.lib, self.voices_dir, old, new)

    def delete_voice(self, name: str, *, reassign: bool = False) -> dict:
        from .workflows import voice_admin
        return voice_admin.delete(self.lib, self.voices_dir, name, reassign=reassign)

    def restore_voice(self, name: str) -> dict:
        from .workflows import voice_admin
        return voice_admin.restore(self.lib, self.voices_dir, name)

    def purge_voices(self, name: str | None = None) -> dict:
        from .workflows import voice_admin
        return voice_admin.purge(self.voices_dir, name)

    def voice_storage(self) -> dict:
        from .workflows import voice_admin
        return voice_admin.storage(self.lib, self.voices_dir)

    # -- instant voices (Pocket TTS clone; pipeline.workflows.instant_voice) -------------------------
    def prepare_instant_voice(self, media_id: int, character: str, *, name: str | None = None, language: str | None = None):
        from .workflows.instant_voice import prepare_instant_voice

        return prepare_instant_voice(self, media_id, character, name=name, language=language)

    def instant_voice(self, media_id: int, character: str, *, name: str | None = None, language: str | None = None,
                      listener: ProgressListener | None = None, cancel: CancelToken | None = None) -> JobOutcome:
        return self.prepare_instant_voice(media_id, character, name=name, language=language).run(self, listener, cancel)
