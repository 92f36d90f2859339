"""Library items (media) and their tracks: the rows an import writes and the overview every face shows."""

from __future__ import annotations

import json

from ..types import Line
from .lines import insert_segment
from .values import dumps


def list_media(db) -> list[dict]:
    return list(db.query(
        "SELECT m.id, m.kind, m.title, m.source_path, m.duration, m.has_video, m.created_at,"
        " (SELECT count(*) FROM segments s WHERE s.media_id = m.id) AS segments,"
        " (SELECT state FROM jobs j WHERE j.media_id = m.id ORDER BY j.id DESC LIMIT 1) AS job_state"
        " FROM media m ORDER BY m.id"))


def subtitle_tracks(db, media_id: int) -> list[dict]:
    """The item's subtitle tracks (sync and encoding decoded, line count), oldest first."""
    out = list(db.query("SELECT * FROM subtitle_tracks WHERE media_id = ? ORDER BY id", [media_id]))
    for t in out:
        t["sync"] = json.loads(t["sync"]) if t["sync"] else None
        t["encoding_info"] = json.loads(t["encoding_info"]) if t.get("encoding_info") else None
        t["encoding_unsure"] = bool(t["encoding_info"] and t["encoding_info"].get("unsure"))
        t["lines"] = db.execute("SELECT count(*) FROM lines WHERE track_id = ?", [t["id"]]).fetchone()[0]
    return out


def add_details(db, m: dict) -> dict:
    """The media row ``m`` with its audio and subtitle tracks (line counts), segment count and jobs."""
    media_id = m["id"]
    m["meta"] = json.loads(m["meta"] or "{}")
    m["audio_tracks"] = list(db.query("SELECT * FROM audio_tracks WHERE media_id = ? ORDER BY idx", [media_id]))
    m["subtitle_tracks"] = subtitle_tracks(db, media_id)
    m["segments"] = db.execute("SELECT count(*) FROM segments WHERE media_id = ?", [media_id]).fetchone()[0]
    m["jobs"] = list(db.query(
        "SELECT id, kind, state, progress, stage, error FROM jobs WHERE media_id = ? ORDER BY id", [media_id]))
    return m


def set_script(db, media_id: int, script_id: int) -> None:
    db.execute("UPDATE media SET script_id = ? WHERE id = ?", [script_id, media_id])


def by_fingerprint(db, fingerprint: str) -> int | None:
    row = list(db.query("SELECT id FROM media WHERE fingerprint = ?", [fingerprint]))
    return row[0]["id"] if row else None


def created_at(db, media_id: int) -> float | None:
    made = db.execute("SELECT created_at FROM media WHERE id = ?", [media_id]).fetchone()
    return made[0] if made else None


def insert_media(db, values: dict) -> int:
    """A new media row (``values`` as the import decided them); its analysis/dialogue paths point into media/<id>."""
    db["media"].insert(values)
    media_id = db.execute("SELECT last_insert_rowid()").fetchone()[0]
    rel = f"media/{media_id}"
    db.execute("UPDATE media SET analysis_path=?, dialogue_path=? WHERE id=?",
               [f"{rel}/analysis.flac", f"{rel}/dialogue.flac", media_id])
    return media_id


def insert_audio_tracks(db, rows: list[dict]) -> None:
    db["audio_tracks"].insert_all(rows)


def set_capture_files(db, media_id: int, frames_path: str | None) -> None:
    """A recording's media row after its files moved in: its frames folder (if any); no source file outside."""
    if frames_path:
        db.execute("UPDATE media SET frames_path = ?, source_path = NULL WHERE id = ?", [frames_path, media_id])
    else:
        db.execute("UPDATE media SET source_path = NULL WHERE id = ?", [media_id])


def insert_subtitle_track(db, media_id: int, track: dict, lines: list[Line], *, primary: bool,
                          segments: bool = True) -> int:
    """Insert a subtitle track with its lines and (for the primary track, unless ``segments`` is False: the
    analysis that follows makes them) segments + clips per dialogue line."""
    if primary:
        db.execute("UPDATE subtitle_tracks SET is_primary = 0 WHERE media_id = ?", [media_id])
    db["subtitle_tracks"].insert({"media_id": media_id, "source": track["source"], "stream_index": track.get("stream_index"),
                                  "path": track.get("path"), "format": track.get("format"), "encoding": track.get("encoding"),
                                  "language": track.get("language"), "is_primary": int(primary),
                                  **({"encoding_info": dumps(track["encoding_info"])} if track.get("encoding_info") else {})})
    track_id = db.execute("SELECT last_insert_rowid()").fetchone()[0]
    # one max(idx) lookup for the whole track, not one per line (a per-line scan made 50k cues quadratic)
    segments = primary and segments
    next_idx = db.execute("SELECT coalesce(max(idx) + 1, 0) FROM segments WHERE media_id = ?", [media_id]).fetchone()[0] if segments else 0
    for i, ln in enumerate(lines):
        line_id = db.execute("INSERT INTO lines (media_id, track_id, idx, start, end, text, speaker_cue, tags, turn)"
                             " VALUES (?,?,?,?,?,?,?,?,?)", [media_id, track_id, i, ln.start, ln.end, ln.text,
                                                            ln.speaker_cue, _tags_json(ln.tags), int(ln.turn)]).lastrowid
        if segments and ln.text.strip():
            insert_segment(db, media_id, ln, line_id=line_id, origin="subtitle", idx=next_idx)
            next_idx += 1
    return track_id


def set_primary_track(db, media_id: int, track_id: int) -> None:
    """Make ``track_id`` the item's primary subtitle track (the others stay, not primary)."""
    db.execute("UPDATE subtitle_tracks SET is_primary = (id = ?) WHERE media_id = ?", [track_id, media_id])


def delete_subtitle_track(db, track_id: int) -> None:
    """A subtitle track and its lines go; segments made from its lines keep their text, no longer linked."""
    db.execute("UPDATE segments SET line_id = NULL WHERE line_id IN (SELECT id FROM lines WHERE track_id = ?)", [track_id])
    db.execute("DELETE FROM lines WHERE track_id = ?", [track_id])
    db.execute("DELETE FROM subtitle_tracks WHERE id = ?", [track_id])


def _tags_json(tags: list[str]) -> str:
    return dumps(tags) if tags else "[]"  # most cues have no tags: skip the encoder

