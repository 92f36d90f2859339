"""Clip export: one audio clip (and optionally a video clip) per dialogue line of an item, plus metadata.csv with
the line's chosen text, edges, speaker/character and flags (overlap, text source, check text)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from .. import media as media_io
from ..errors import BadInputError, NotFoundError
from ..files import slug
from ..library import labels
from ..progress import CancelToken, ProgressListener, stage_callback


def export_clips(svc, media_id: int, out_dir: str | os.PathLike, *, character: str | None = None,
                 video: bool = False, isolate: bool = False, fmt: str = "wav", include_rejected: bool = False,
                 listener: ProgressListener | None = None, cancel: CancelToken | None = None) -> Path:
    """Write the clips of an item (one character's, or all) into ``out_dir``; returns the folder."""
    m = svc.lib.media(media_id)
    segs = svc.segments(media_id, character=character)
    if character is not None and not segs:
        names = labels.character_names(svc.lib.db, media_id)
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
    dialogue = svc.lib.abspath(m["dialogue_path"])
    separator = svc.separator(required=True) if isolate else None
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
