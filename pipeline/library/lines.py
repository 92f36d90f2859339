"""Subtitle lines, dialogue segments, their words and clips: the rows a line edit, a join, a split, a clip trim and
a subtitle re-decode change (the labelling edits' undo records are in pipeline.library.edits)."""

from __future__ import annotations

import json

from ..types import Line
from .values import dumps


def _tags_json(tags: list[str]) -> str:
    return dumps(tags) if tags else "[]"  # most cues have no tags: skip the encoder


def insert_segment(db, media_id: int, ln: Line, *, line_id: int | None, origin: str, idx: int | None = None) -> int:
    """Insert one dialogue segment (with its words) and its clip row."""
    if idx is None:  # callers inserting many segments pass idx (this lookup scans the item's segments)
        idx = next_segment_idx(db, media_id)
    seg_id = db.execute(
        "INSERT INTO segments (media_id, line_id, idx, start, end, text, origin, confidence, speaker_cue, tags)"
        " VALUES (?,?,?,?,?,?,?,?,?,?)",
        [media_id, line_id, idx, ln.start, ln.end, ln.text, origin, ln.confidence, ln.speaker_cue, _tags_json(ln.tags)]).lastrowid
    if ln.words:
        db.conn.executemany("INSERT INTO words (segment_id, idx, start, end, text, probability) VALUES (?,?,?,?,?,?)",
                            [[seg_id, j, w.start, w.end, w.text, w.probability] for j, w in enumerate(ln.words)])
    db.execute("INSERT INTO clips (media_id, segment_id) VALUES (?, ?)", [media_id, seg_id])
    return seg_id


def next_segment_idx(db, media_id: int) -> int:
    return db.execute("SELECT coalesce(max(idx) + 1, 0) FROM segments WHERE media_id = ?", [media_id]).fetchone()[0]


def primary_lines(db, media_id: int) -> list[dict]:
    """The lines of the item's primary subtitle track, tags decoded."""
    rows = list(db.query(
        "SELECT l.idx, l.start, l.end, l.text, l.speaker_cue, l.tags FROM lines l JOIN subtitle_tracks t ON t.id = l.track_id"
        " WHERE l.media_id = ? AND t.is_primary = 1 ORDER BY l.idx", [media_id]))
    for r in rows:
        r["tags"] = json.loads(r["tags"] or "[]")
    return rows


def segments(db, media_id: int, character: str | None = None) -> list[dict]:
    """Dialogue segments with their clip edits, speaker and character names (optionally one character's)."""
    sql = ("SELECT s.id, s.idx, s.start, s.end, s.text, s.origin, s.confidence, s.attribution_source, s.overlap,"
           " s.speaker_cue, s.user_text, s.user_join, s.text_source, s.text_score, s.check_text, sp.label AS speaker, coalesce(sp.name, NULL) AS speaker_name, c.name AS character,"
           " cl.id AS clip_id, cl.trim_start, cl.trim_end, cl.status"
           " FROM segments s LEFT JOIN speakers sp ON sp.id = s.speaker_id"
           " LEFT JOIN characters c ON c.id = s.character_id LEFT JOIN clips cl ON cl.segment_id = s.id"
           " WHERE s.media_id = ?")
    args: list = [media_id]
    if character is not None:
        sql += " AND lower(c.name) = lower(?)"
        args.append(character)
    return list(db.query(sql + " ORDER BY s.start, s.idx", args))


def words(db, segment_id: int) -> list[dict]:
    """Every column of a segment's words, in order."""
    return list(db.query("SELECT * FROM words WHERE segment_id = ? ORDER BY idx", [segment_id]))


def word_spans(db, segment_id: int) -> list[dict]:
    return list(db.query("SELECT start, end, text FROM words WHERE segment_id = ? ORDER BY idx", [segment_id]))


def words_near(db, media_id: int, lo: float, hi: float) -> list[dict]:
    """(start, end) of the item's words overlapping lo..hi."""
    return list(db.query(
        "SELECT w.start, w.end FROM words w JOIN segments s ON s.id = w.segment_id WHERE s.media_id = ?"
        " AND w.end > ? AND w.start < ?", [media_id, lo, hi]))


def set_clip_trim(db, clip_id: int, trim_start: float, trim_end: float) -> None:
    db.execute("UPDATE clips SET trim_start = ?, trim_end = ? WHERE id = ?", [trim_start, trim_end, clip_id])


def set_clip_status(db, clip_id: int, status: str) -> None:
    db.execute("UPDATE clips SET status = ? WHERE id = ?", [status, clip_id])


def clips_of_segment(db, segment_id: int) -> list[dict]:
    return list(db.query("SELECT * FROM clips WHERE segment_id = ?", [segment_id]))


def segment_order(db, media_id: int) -> list[int]:
    """The item's segment ids in line order."""
    return [r[0] for r in db.execute(
        "SELECT id FROM segments WHERE media_id = ? ORDER BY start, idx, id", [media_id]).fetchall()]


def set_segment_text(db, segment_id: int, text: str) -> None:
    """The user's text for a line (it wins over every automatic source)."""
    db.execute("UPDATE segments SET text = ?, user_text = 1 WHERE id = ?", [text, segment_id])
    mark_user_text(db, segment_id)


def split_segment(db, seg: dict, at: float, left_text: str, right: Line, moved_word_ids: list[int]) -> int:
    """Cut segment ``seg`` at ``at``: it keeps ``left_text`` up to ``at``; the moved words go; a new segment (with
    the words of ``right`` and its own clip) takes the rest with the first's speaker, character and marks."""
    segment_id = seg["id"]
    db.execute("UPDATE segments SET end = ?, text = ? WHERE id = ?", [at, left_text, segment_id])
    for word_id in moved_word_ids:
        db.execute("DELETE FROM words WHERE id = ?", [word_id])
    new_id = insert_segment(db, seg["media_id"], right, line_id=None, origin=seg["origin"], idx=seg["idx"])
    db.execute("UPDATE segments SET speaker_id = ?, character_id = ?, attribution_source = ?, overlap = ?,"
               " speaker_cue = ?, tags = ?, user_split = 1, user_text = ? WHERE id = ?",
               [seg["speaker_id"], seg["character_id"], seg["attribution_source"], seg["overlap"],
                seg["speaker_cue"], seg["tags"], seg["user_text"], new_id])
    return new_id


def join_segments(db, a: dict, b: dict, ca: list[dict], cb: list[dict], text: str, tags: list[str],
                  confidence: float | None) -> None:
    """Join segment ``b`` into ``a`` (words appended, end extended, ``user_join``); the clip of ``a`` keeps its start
    trim and takes ``b``'s end trim (its mark stays when both agree, else pending); ``b`` and its clip go."""
    n = db.execute("SELECT coalesce(max(idx) + 1, 0) FROM words WHERE segment_id = ?", [a["id"]]).fetchone()[0]
    db.execute("UPDATE words SET segment_id = ?, idx = idx + ? WHERE segment_id = ?", [a["id"], n, b["id"]])
    db.execute("UPDATE segments SET end = ?, text = ?, tags = ?, overlap = ?, confidence = ?, user_text = ?,"
               " user_join = 1 WHERE id = ?",
               [max(a["end"], b["end"]), text, dumps(tags) if tags else "[]", max(a["overlap"], b["overlap"]),
                confidence, int(bool(a["user_text"] or b["user_text"])), a["id"]])
    if ca and cb:
        status = ca[0]["status"] if ca[0]["status"] == cb[0]["status"] else "pending"
        end_shift = b["end"] + cb[0]["trim_end"] - max(a["end"], b["end"])
        db.execute("UPDATE clips SET trim_end = ?, status = ? WHERE id = ?", [end_shift, status, ca[0]["id"]])
    db.execute("DELETE FROM segments WHERE id = ?", [b["id"]])  # its clip goes with it


def track_lines(db, track_id: int) -> list[dict]:
    return list(db.query("SELECT * FROM lines WHERE track_id = ? ORDER BY idx", [track_id]))


def retext_line(db, line_id: int, old_text: str, new: Line) -> None:
    """A subtitle line read again with another encoding (same cue): its text, and the text (and words, when they
    count the same) of each segment still holding the line's automatic text; user-edited text stays."""
    db.execute("UPDATE lines SET text = ?, speaker_cue = ?, tags = ? WHERE id = ?",
               [new.text, new.speaker_cue, dumps(new.tags) if new.tags else "[]", line_id])
    for s in db.query("SELECT id FROM segments WHERE line_id = ? AND text = ? AND user_text = 0", [line_id, old_text]):
        db.execute("UPDATE segments SET text = ?, speaker_cue = ? WHERE id = ?", [new.text, new.speaker_cue, s["id"]])
        word_ids = [w["id"] for w in db.query("SELECT id FROM words WHERE segment_id = ? ORDER BY idx", [s["id"]])]
        tokens = new.text.split()
        if word_ids and len(word_ids) == len(tokens):
            for wid, tok in zip(word_ids, tokens):
                db.execute("UPDATE words SET text = ? WHERE id = ?", [tok, wid])


def replace_track_lines(db, media_id: int, track_id: int, new: list[Line], *, rebuild_segments: bool) -> None:
    """The track's lines replaced by ``new``; with ``rebuild_segments`` (the primary track) the segments made
    from its old lines go (the item's open edits are closed) and new ones are made from the new lines."""
    if rebuild_segments:
        db.execute("DELETE FROM segments WHERE media_id = ? AND line_id IN (SELECT id FROM lines WHERE track_id = ?)",
                   [media_id, track_id])
        db.execute("UPDATE edits SET closed = 'the subtitle lines were read again' WHERE media_id = ?"
                   " AND undone = 0 AND closed IS NULL", [media_id])
    db.execute("DELETE FROM lines WHERE track_id = ?", [track_id])
    next_idx = next_segment_idx(db, media_id)
    for i, n in enumerate(new):
        line_id = db.execute("INSERT INTO lines (media_id, track_id, idx, start, end, text, speaker_cue, tags)"
                             " VALUES (?,?,?,?,?,?,?,?)",
                             [media_id, track_id, i, n.start, n.end, n.text, n.speaker_cue,
                              dumps(n.tags) if n.tags else "[]"]).lastrowid
        if rebuild_segments and n.text.strip():
            insert_segment(db, media_id, Line(n.start, n.end, n.text, speaker_cue=n.speaker_cue, tags=n.tags),
                           line_id=line_id, origin="subtitle", idx=next_idx)
            next_idx += 1


def set_track_encoding(db, track_id: int, encoding: str, info: dict) -> None:
    db.execute("UPDATE subtitle_tracks SET encoding = ?, encoding_info = ? WHERE id = ?", [encoding, dumps(info), track_id])


def line_of_segments(db, line_ids: list[int]) -> dict[int, int]:
    """segment id -> line id for the segments made from these lines."""
    marks = ", ".join("?" * len(line_ids))
    return {r["id"]: r["line_id"] for r in db.query(
        f"SELECT id, line_id FROM segments WHERE line_id IN ({marks})", list(line_ids))}


def primary_track_lines(db, media_id: int) -> tuple[int | None, list[dict]]:
    """(primary subtitle track id, its non-empty lines in order) of the item; (None, []) without one."""
    track = list(db.query("SELECT id FROM subtitle_tracks WHERE media_id = ? AND is_primary = 1", [media_id]))
    if not track:
        return None, []
    rows = list(db.query(
        "SELECT id, idx, start, end, text, speaker_cue, tags, turn FROM lines WHERE track_id = ? AND text != ''"
        " ORDER BY idx",
        [track[0]["id"]]))
    return track[0]["id"], rows


def segments_for_reanalysis(db, media_id: int) -> list[dict]:
    """The item's segments with what the user owns of them (character + source, text, splits, joins, clip edits)."""
    return list(db.query(
        "SELECT s.id, s.line_id, s.start, s.end, s.text, s.attribution_source, s.user_split, s.user_text, s.user_join,"
        " c.name AS character,"
        " sp.label AS speaker, cl.trim_start, cl.trim_end, cl.status"
        " FROM segments s LEFT JOIN characters c ON c.id = s.character_id LEFT JOIN speakers sp ON sp.id = s.speaker_id"
        " LEFT JOIN clips cl ON cl.segment_id = s.id WHERE s.media_id = ? ORDER BY s.start, s.idx", [media_id]))


def clear_analysis(db, media_id: int) -> None:
    """An analysis pass starts over: the item's segments (their words and clips), speakers and characters go."""
    db.execute("DELETE FROM segments WHERE media_id = ?", [media_id])
    db.execute("DELETE FROM speakers WHERE media_id = ?", [media_id])
    db.execute("DELETE FROM characters WHERE media_id = ?", [media_id])


def set_track_sync(db, track_id: int, sync: dict) -> None:
    db.execute("UPDATE subtitle_tracks SET sync = ? WHERE id = ?", [dumps(sync), track_id])


def set_attribution(db, segment_id: int, *, speaker_id: int | None, character_id: int | None, source: str | None,
                    overlap: bool, user_split: bool, user_join: bool, user_text: bool) -> None:
    db.execute("UPDATE segments SET speaker_id = ?, character_id = ?, attribution_source = ?, overlap = ?,"
               " user_split = ?, user_join = ?, user_text = ? WHERE id = ?",
               [speaker_id, character_id, source, int(overlap), int(user_split), int(user_join), int(user_text),
                segment_id])


def restore_clip(db, segment_id: int, trim_start: float, trim_end: float, status: str) -> None:
    """The clip of a recreated segment takes back the user's trims and keep/reject mark."""
    db.execute("UPDATE clips SET trim_start = ?, trim_end = ?, status = ? WHERE segment_id = ?",
               [trim_start, trim_end, status, segment_id])


# -- a line's chosen text: which source won (script, subtitle, asr, user), its score, the "check text" mark --
TEXT_CHOICE_COLUMNS = ("text_source", "text_score", "check_text")


def set_text_choice(db, segment_id: int, choice: dict | None) -> None:
    """Record how a segment's text was chosen ({source, score, check}; None leaves the defaults)."""
    if not choice:
        return
    db.execute("UPDATE segments SET text_source = ?, text_score = ?, check_text = ? WHERE id = ?",
               [choice.get("source"), choice.get("score"), int(bool(choice.get("check"))), segment_id])


def mark_user_text(db, segment_id: int) -> None:
    """The user typed the text: it is the user's, nothing to check."""
    db.execute("UPDATE segments SET text_source = 'user', text_score = NULL, check_text = 0 WHERE id = ?", [segment_id])


def text_choices(db, media_id: int) -> dict[int, dict]:
    """Segment id -> {text_source, text_score, check_text} for an item."""
    return {r["id"]: {c: r[c] for c in TEXT_CHOICE_COLUMNS} for r in db.query(
        "SELECT id, text_source, text_score, check_text FROM segments WHERE media_id = ?", [media_id])}


def to_check(db, media_id: int) -> list[int]:
    """Ids of the item's segments marked "check text" (in line order)."""
    return [r["id"] for r in db.query(
        "SELECT id FROM segments WHERE media_id = ? AND check_text = 1 ORDER BY start, idx", [media_id])]
