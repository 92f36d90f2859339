"""Service operations on a line's text: edit it, join two adjacent lines (both undoable labelling edits), and
re-decode a subtitle file with the encoding the user picked.

Edited text is the user's (``segments.user_text = 1``): clips, metadata.csv and re-analysis keep it (see
pipeline.workflows.analysis.save_analysis). A join keeps the first line's id, clip, character and speaker; words are
concatenated; the clip keeps the first line's start trim and the second's end trim; its keep/reject mark stays
when both lines agree, else it is pending again; it is marked ``user_join`` so re-analysis joins the new lines
covering it again.
"""

from __future__ import annotations

import json

from .errors import BadInputError
from .library.lines_extra import mark_user_text
from .store import dumps

MAX_LINE_TEXT = 2000  # characters; a line is one utterance, not a page


def join_text(a: str, b: str) -> str:
    a, b = a.strip(), b.strip()
    return f"{a} {b}".strip() if a and b else a or b


class LinesMixin:
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
            db.execute("UPDATE segments SET text = ?, user_text = 1 WHERE id = ?", [new, segment_id])
            mark_user_text(db, segment_id)
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
        order = [r[0] for r in self.lib.db.execute(
            "SELECT id FROM segments WHERE media_id = ? ORDER BY start, idx, id", [mid]).fetchall()]
        ia, ib = order.index(a["id"]), order.index(b["id"])
        if ib < ia:
            a, b, ia, ib = b, a, ib, ia
        if ib != ia + 1:
            raise BadInputError(f"lines {a['id']} and {b['id']} are not adjacent ({ib - ia - 1} line"
                                f"{'s' if ib - ia - 1 != 1 else ''} between them); only neighbouring lines can be joined")
        if a["character_id"] != b["character_id"] and not force:
            names = {r["id"]: r["name"] for r in self.lib.db.query(
                "SELECT id, name FROM characters WHERE id IN (?, ?)", [a["character_id"], b["character_id"]])}
            who = lambda s: f"{names[s['character_id']]}'s" if s["character_id"] in names else "unattributed"  # noqa: E731
            raise BadInputError(f"line {a['id']} is {who(a)} and line {b['id']} is {who(b)}: joining lines of two "
                                f"characters needs force (CLI --force)")
        ca = list(self.lib.db.query("SELECT * FROM clips WHERE segment_id = ?", [a["id"]]))
        cb = list(self.lib.db.query("SELECT * FROM clips WHERE segment_id = ?", [b["id"]]))
        text = join_text(a["text"], b["text"])
        tags = list(dict.fromkeys(json.loads(a["tags"] or "[]") + json.loads(b["tags"] or "[]")))
        conf = [c for c in (a["confidence"], b["confidence"]) if c is not None]
        with self._edit(mid, {"op": "join", "segment": a["id"], "next": b["id"], "force": bool(force)},
                        ("id IN (?, ?)", [a["id"], b["id"]]), words_of=(a["id"], b["id"])) as db:
            n = db.execute("SELECT coalesce(max(idx) + 1, 0) FROM words WHERE segment_id = ?", [a["id"]]).fetchone()[0]
            db.execute("UPDATE words SET segment_id = ?, idx = idx + ? WHERE segment_id = ?", [a["id"], n, b["id"]])
            db.execute("UPDATE segments SET end = ?, text = ?, tags = ?, overlap = ?, confidence = ?, user_text = ?,"
                       " user_join = 1 WHERE id = ?",
                       [max(a["end"], b["end"]), text, dumps(tags) if tags else "[]", max(a["overlap"], b["overlap"]),
                        min(conf) if conf else None, int(bool(a["user_text"] or b["user_text"])), a["id"]])
            if ca and cb:
                status = ca[0]["status"] if ca[0]["status"] == cb[0]["status"] else "pending"
                end_shift = b["end"] + cb[0]["trim_end"] - max(a["end"], b["end"])
                db.execute("UPDATE clips SET trim_end = ?, status = ? WHERE id = ?", [end_shift, status, ca[0]["id"]])
            db.execute("DELETE FROM segments WHERE id = ?", [b["id"]])  # its clip goes with it
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
        from pipeline.workflows.ingest import insert_segment
        from pipeline.text.subtitles import drop_bad_cues, read_subtitle_file
        from pipeline.text.encoding import normalise_encoding
        from .types import Line

        t = self.lib.row("subtitle_tracks", track_id, "subtitle track")
        enc = normalise_encoding(encoding)
        if t["source"] != "sidecar" or not t["path"]:
            raise BadInputError(f"subtitle track {track_id} is {'an embedded stream' if t['source'] == 'embedded' else 'not a file'}"
                                "; only a subtitle file can be read again with another encoding")
        doc = read_subtitle_file(t["path"], encoding=enc)
        m = self.lib.media(t["media_id"])
        new, _ = drop_bad_cues(doc.lines, m["duration"] or None)
        old = list(self.lib.db.query("SELECT * FROM lines WHERE track_id = ? ORDER BY idx", [track_id]))
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
                    db.execute("UPDATE lines SET text = ?, speaker_cue = ?, tags = ? WHERE id = ?",
                               [n.text, n.speaker_cue, dumps(n.tags) if n.tags else "[]", o["id"]])
                    for s in db.query("SELECT id FROM segments WHERE line_id = ? AND text = ? AND user_text = 0",
                                      [o["id"], o["text"]]):
                        db.execute("UPDATE segments SET text = ?, speaker_cue = ? WHERE id = ?", [n.text, n.speaker_cue, s["id"]])
                        words = [w["id"] for w in db.query("SELECT id FROM words WHERE segment_id = ? ORDER BY idx", [s["id"]])]
                        tokens = n.text.split()
                        if words and len(words) == len(tokens):
                            for wid, tok in zip(words, tokens):
                                db.execute("UPDATE words SET text = ? WHERE id = ?", [tok, wid])
                _retext_edits(db, t["media_id"], retext)
            else:
                rebuilt = bool(t["is_primary"])
                if rebuilt:
                    db.execute("DELETE FROM segments WHERE media_id = ? AND line_id IN (SELECT id FROM lines WHERE track_id = ?)",
                               [t["media_id"], track_id])
                    db.execute("UPDATE edits SET closed = 'the subtitle lines were read again' WHERE media_id = ?"
                               " AND undone = 0 AND closed IS NULL", [t["media_id"]])
                db.execute("DELETE FROM lines WHERE track_id = ?", [track_id])
                next_idx = db.execute("SELECT coalesce(max(idx) + 1, 0) FROM segments WHERE media_id = ?",
                                      [t["media_id"]]).fetchone()[0]
                for i, n in enumerate(new):
                    line_id = db.execute("INSERT INTO lines (media_id, track_id, idx, start, end, text, speaker_cue, tags)"
                                         " VALUES (?,?,?,?,?,?,?,?)",
                                         [t["media_id"], track_id, i, n.start, n.end, n.text, n.speaker_cue,
                                          dumps(n.tags) if n.tags else "[]"]).lastrowid
                    if rebuilt and n.text.strip():
                        insert_segment(db, t["media_id"], Line(n.start, n.end, n.text, speaker_cue=n.speaker_cue, tags=n.tags),
                                       line_id=line_id, origin="subtitle", idx=next_idx)
                        next_idx += 1
                changed = len(new)
            db.execute("UPDATE subtitle_tracks SET encoding = ?, encoding_info = ? WHERE id = ?", [enc, dumps(info), track_id])
        return {"track": track_id, "media_id": t["media_id"], "encoding": enc, "lines": len(new), "changed": changed,
                "rebuilt": rebuilt}


def _retext_edits(db, media_id: int, retext: dict[int, tuple[str, str]]) -> None:
    """In the item's open edits, a line's old automatic text becomes its new reading, so undoing an edit made
    before the re-decode gives back the new reading, not the mis-decoded text."""
    if not retext:
        return
    marks = ", ".join("?" * len(retext))
    seg_line = {r["id"]: r["line_id"] for r in db.query(
        f"SELECT id, line_id FROM segments WHERE line_id IN ({marks})", list(retext))}
    for e in list(db.query("SELECT id, undo FROM edits WHERE media_id = ? AND undone = 0 AND closed IS NULL", [media_id])):
        stored = json.loads(e["undo"])
        segs = (stored.get("rows") or {}).get("segments") or {}
        touched = False
        for u in segs.get("updated", []):
            pair = retext.get(seg_line.get(u["id"]))
            if pair and u["old"].get("text") == pair[0]:
                u["old"]["text"] = pair[1]
                touched = True
        for row in segs.get("deleted", []):
            pair = retext.get(row.get("line_id"))
            if pair and row.get("text") == pair[0]:
                row["text"] = pair[1]
                touched = True
        if touched:
            db.execute("UPDATE edits SET undo = ? WHERE id = ?", [dumps(stored), e["id"]])
