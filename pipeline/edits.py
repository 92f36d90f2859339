"""Row-level records of labelling edits: what one edit inserted, deleted and updated, and its exact inverse.

An edit runs in one transaction between two snapshots of the rows it may touch (:func:`edit_scope`,
:func:`snapshot`); their difference (:func:`diff`) is stored with the edit (``edits.undo``) and :func:`revert`
applies its inverse: deleted rows come back, updated columns get their old values — only where they still hold
the value the edit wrote, so a later change made by something else stays — and inserted rows go (a voiceprint
the edit enrolled included). Rows the edit did not change are never written.

Also here: :func:`split_line_at`, the one way a line is cut in two (a user split, and the same split made again
when an analysis run recreates the lines).
"""

from __future__ import annotations

import sqlite3

from .errors import WeaverError
from .types import Line, Word

# every table an edit may change, parents first: revert re-inserts in this order and deletes in reverse
TABLES = ("voiceprints", "characters", "speakers", "segments", "words", "clips")
FORMAT = 2  # edits.undo = {"format": 2, "rows": diff}; format 1 (a whole-item snapshot) is closed by migration


def edit_scope(db, media_id: int, segments: tuple[str, list], *, words_of: tuple[int, ...] = ()) -> dict[str, tuple[str, list]]:
    """Per table, the WHERE clause of the rows an edit of this item may change, plus any row it inserts.

    ``segments`` is the (clause, args) of the segments the edit works on; their clips go with them, and the
    item's characters and speakers are watched whole (a few rows). Membership must depend only on values the edit
    never changes (ids, media id, the speaker of a label), so the same clause selects the same rows before and
    after. Words are many: only those of ``words_of`` segments are watched (only a split changes words)."""
    top = {t: db.execute(f"SELECT coalesce(max(id), 0) FROM [{t}]").fetchone()[0] for t in TABLES}
    where, args = segments
    scope = {t: ("media_id = ? OR id > ?", [media_id, top[t]]) for t in ("characters", "speakers")}
    scope["segments"] = (f"(media_id = ? AND ({where})) OR id > ?", [media_id, *args, top["segments"]])
    scope["clips"] = (f"segment_id IN (SELECT id FROM segments WHERE media_id = ? AND ({where})) OR id > ?",
                      [media_id, *args, top["clips"]])
    scope["voiceprints"] = ("id > ?", [top["voiceprints"]])
    ids = [int(i) for i in words_of]
    marks = ", ".join("?" * len(ids))
    scope["words"] = (f"segment_id IN ({marks}) OR id > ?" if ids else "id > ?", [*ids, top["words"]])
    return scope


def snapshot(db, scope: dict[str, tuple[str, list]]) -> dict[str, dict[int, dict]]:
    return {t: {r["id"]: r for r in db.query(f"SELECT * FROM [{t}] WHERE {where}", args)}
            for t, (where, args) in scope.items()}


def _enc(value):
    return {"$hex": value.hex()} if isinstance(value, (bytes, bytearray, memoryview)) else value


def _dec(value):
    return bytes.fromhex(value["$hex"]) if isinstance(value, dict) and "$hex" in value else value


def _enc_row(row: dict) -> dict:
    return {k: _enc(v) for k, v in row.items()}


def _dec_row(row: dict) -> dict:
    return {k: _dec(v) for k, v in row.items()}


def diff(before: dict[str, dict[int, dict]], after: dict[str, dict[int, dict]]) -> dict:
    """{table: {"inserted": [row], "deleted": [row], "updated": [{"id", "old": {col: v}, "new": {col: v}}]}},
    JSON-ready (blobs as {"$hex": ...}); tables without a change are left out, so no change gives {}."""
    out = {}
    for t in TABLES:
        b, a = before.get(t, {}), after.get(t, {})
        inserted = [_enc_row(a[i]) for i in sorted(a.keys() - b.keys())]
        deleted = [_enc_row(b[i]) for i in sorted(b.keys() - a.keys())]
        updated = []
        for i in sorted(a.keys() & b.keys()):
            cols = [c for c, v in b[i].items() if a[i].get(c) != v]
            if cols:
                updated.append({"id": i, "old": {c: _enc(b[i][c]) for c in cols}, "new": {c: _enc(a[i][c]) for c in cols}})
        if inserted or deleted or updated:
            out[t] = {"inserted": inserted, "deleted": deleted, "updated": updated}
    return out


def record(changes: dict) -> dict:
    return {"format": FORMAT, "rows": changes}


def revert(db, stored: dict) -> None:
    """Apply the inverse of one recorded edit (inside the caller's transaction)."""
    if stored.get("format") != FORMAT:
        raise WeaverError("this edit was recorded by an older version as a whole-item snapshot and cannot be undone alone")
    changes = stored["rows"]
    for t in TABLES:  # rows the edit deleted come back (parents first)
        for row in changes.get(t, {}).get("deleted", []):
            row = _dec_row(row)
            cols = list(row)
            try:
                db.execute(f"INSERT OR IGNORE INTO [{t}] ({', '.join(f'[{c}]' for c in cols)})"
                           f" VALUES ({', '.join('?' * len(cols))})", [row[c] for c in cols])
            except sqlite3.IntegrityError:
                pass  # a row it referred to is gone for good (not by an edit): leave it out
    for t in TABLES:  # columns the edit changed get their old values, unless something else changed them since
        for u in changes.get(t, {}).get("updated", []):
            current = list(db.query(f"SELECT * FROM [{t}] WHERE id = ?", [u["id"]]))
            if not current:
                continue
            new, old = _dec_row(u["new"]), _dec_row(u["old"])
            cols = [c for c in new if c in current[0] and current[0][c] == new[c]]
            if cols:
                db.execute(f"UPDATE [{t}] SET {', '.join(f'[{c}] = ?' for c in cols)} WHERE id = ?",
                           [old[c] for c in cols] + [u["id"]])
    for t in reversed(TABLES):  # rows the edit inserted go (children first)
        for row in changes.get(t, {}).get("inserted", []):
            db.execute(f"DELETE FROM [{t}] WHERE id = ?", [row["id"]])


def split_line_at(line: Line, at: float) -> tuple[Line, Line]:
    """Cut a line at a time inside it: words go to the side holding their midpoint and each side's text is made of
    its words; without word times the text is cut in proportion to time. Both halves keep the line's cue,
    tags and confidence."""
    left = [w for w in line.words if (w.start + w.end) / 2 < at]
    right = [w for w in line.words if (w.start + w.end) / 2 >= at]
    if line.words:
        text_a, text_b = " ".join(w.text.strip() for w in left), " ".join(w.text.strip() for w in right)
    else:
        toks = line.text.split()
        k = round(len(toks) * (at - line.start) / (line.end - line.start))
        text_a, text_b = " ".join(toks[:k]), " ".join(toks[k:])

    def half(start: float, end: float, text: str, words: list[Word]) -> Line:
        return Line(start=start, end=end, text=text, words=[Word(w.start, w.end, w.text, w.probability) for w in words],
                    speaker_cue=line.speaker_cue, tags=list(line.tags), confidence=line.confidence, index=line.index)

    return half(line.start, at, text_a, left), half(at, line.end, text_b, right)
