"""Row-level records of labelling edits: what one edit inserted, deleted and updated, and its exact inverse.

An edit runs in one transaction between two snapshots of the rows it may touch (:func:`edit_scope`,
:func:`snapshot`); their difference (:func:`diff`) is stored with the edit (``edits.undo``) and :func:`revert`
applies its inverse: deleted rows come back, updated columns get their old values — only where they still hold
the value the edit wrote, so a later change made by something else stays — and inserted rows go (a voiceprint
the edit enrolled included). Rows the edit did not change are never written.

Also here: the ``edits`` rows themselves (store one, the latest open one, undone/closed marks, the list).
"""

from __future__ import annotations

import json
import sqlite3

from ..errors import WeaverError
from .lines import line_of_segments
from .values import dumps, now

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


def store(db, media_id: int, action: dict, changes: dict) -> None:
    """Record one labelling edit (what it did, and the rows it changed) on the item's undo stack."""
    db["edits"].insert({"media_id": media_id, "action": dumps(action), "undo": dumps(record(changes)),
                        "created_at": now()})


def latest_open(db, media_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM edits WHERE media_id = ? AND undone = 0 AND closed IS NULL"
                         " ORDER BY id DESC LIMIT 1", [media_id]))
    return rows[0] if rows else None


def mark_undone(db, edit_id: int) -> None:
    db.execute("UPDATE edits SET undone = 1 WHERE id = ?", [edit_id])


def list_edits(db, media_id: int) -> list[dict]:
    """The item's edits, oldest first, their actions decoded."""
    return [{**r, "action": json.loads(r["action"])} for r in db.query(
        "SELECT id, action, created_at, undone, closed FROM edits WHERE media_id = ? ORDER BY id", [media_id])]


def open_edits(db, media_id: int) -> list[dict]:
    return list(db.query("SELECT id, undo FROM edits WHERE media_id = ? AND undone = 0 AND closed IS NULL", [media_id]))


def set_undo(db, edit_id: int, stored: dict) -> None:
    db.execute("UPDATE edits SET undo = ? WHERE id = ?", [dumps(stored), edit_id])


def close_open(db, media_id: int, why: str) -> None:
    """The item's open edits can no longer be undone (the rows they changed are gone), and ``why``."""
    db.execute("UPDATE edits SET closed = ? WHERE media_id = ? AND undone = 0 AND closed IS NULL", [why, media_id])


def retext_open_edits(db, media_id: int, retext: dict[int, tuple[str, str]]) -> None:
    """In the item's open edits, a line's old automatic text becomes its new reading, so undoing an edit made
    before the re-decode gives back the new reading, not the mis-decoded text."""
    if not retext:
        return
    seg_line = line_of_segments(db, list(retext))
    for e in open_edits(db, media_id):
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
            set_undo(db, e["id"], stored)
