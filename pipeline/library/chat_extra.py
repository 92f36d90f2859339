"""SQL for chat beyond the basic tables (pipeline.chat.schema): card re-import, conversation summaries, exports,
undoing the last exchange (Regenerate) and the character's frames for an avatar.

A summary is stored as a ``system`` message whose ``meta`` is ``{"kind": "summary", "covers": N}``: it stands for
the first N user/assistant messages of the conversation (no migration needed; ``history`` callers skip it).
"""

from __future__ import annotations

import json
import time

from ..errors import BadInputError, NotFoundError

SUMMARY_KIND = "summary"


def imported_twin(db, name: str, source_title: str | None) -> int | None:
    """The persona a re-imported card should update: same name (any case) and same source title."""
    row = db.execute("SELECT id FROM personas WHERE lower(name) = lower(?) AND source_title IS ? ORDER BY id LIMIT 1",
                     [name, source_title]).fetchone()
    return row[0] if row else None


def conversation_persona_id(db, conversation_id: int) -> int:
    row = db.execute("SELECT persona_id FROM conversations WHERE id = ?", [conversation_id]).fetchone()
    if row is None:
        raise NotFoundError(f"conversation {conversation_id} does not exist")
    return int(row[0])


def _is_summary(meta: str | None) -> bool:
    try:
        return (json.loads(meta or "{}") or {}).get("kind") == SUMMARY_KIND
    except ValueError:
        return False


def messages(db, conversation_id: int) -> list[dict]:
    """The conversation's chat messages (no summaries) with id, role, content, partial and created_at."""
    conversation_persona_id(db, conversation_id)
    rows = db.execute("SELECT id, role, content, partial, meta, created_at FROM messages WHERE conversation_id = ? "
                      "ORDER BY id", [conversation_id]).fetchall()
    return [{"id": r[0], "role": r[1], "content": r[2], "partial": bool(r[3]), "created_at": r[5]}
            for r in rows if not (r[1] == "system" and _is_summary(r[4]))]


def latest_summary(db, conversation_id: int) -> tuple[str, int]:
    """(summary text, number of leading user/assistant messages it covers); ('', 0) when none."""
    rows = db.execute("SELECT content, meta FROM messages WHERE conversation_id = ? AND role = 'system' "
                      "ORDER BY id DESC", [conversation_id]).fetchall()
    for content, meta in rows:
        if _is_summary(meta):
            return content, int(json.loads(meta).get("covers") or 0)
    return "", 0


def save_summary(db, conversation_id: int, text: str, covers: int) -> int:
    """Store a new summary (the older ones stay, the newest counts)."""
    conversation_persona_id(db, conversation_id)
    cur = db.execute("INSERT INTO messages (conversation_id, role, content, partial, meta, created_at) "
                     "VALUES (?, 'system', ?, 0, ?, ?)",
                     [conversation_id, text, json.dumps({"kind": SUMMARY_KIND, "covers": int(covers)}), time.time()])
    return cur.lastrowid


def undo_last_exchange(db, conversation_id: int, expected: str | None = None) -> str:
    """Remove the last reply and the user message it answered; returns that user message (for Regenerate).
    With ``expected`` (the message the user sees last) and a different last stored exchange (a reply stopped
    before its first word is not stored), nothing is removed and ``expected`` is returned."""
    msgs = [m for m in messages(db, conversation_id) if m["role"] in ("user", "assistant")]
    if expected is not None and (len(msgs) < 2 or msgs[-2]["role"] != "user" or msgs[-2]["content"] != expected):
        return expected
    if not msgs or msgs[-1]["role"] != "assistant" or len(msgs) < 2 or msgs[-2]["role"] != "user":
        raise BadInputError("nothing to regenerate: the conversation has no reply to a message yet")
    user, reply = msgs[-2], msgs[-1]
    db.execute("DELETE FROM messages WHERE id IN (?, ?)", [user["id"], reply["id"]])
    # a summary that covered the removed messages no longer matches the history
    covered = len(msgs) - 2
    for mid, meta in db.execute("SELECT id, meta FROM messages WHERE conversation_id = ? AND role = 'system'",
                                [conversation_id]).fetchall():
        if _is_summary(meta) and int(json.loads(meta).get("covers") or 0) > covered:
            db.execute("DELETE FROM messages WHERE id = ?", [mid])
    return user["content"]


def character_moments(db, character_id: int, limit: int = 6) -> list[tuple[int, float]]:
    """(media_id, time) of the middle of the character's longest lines (kept clips first): frame candidates."""
    rows = db.execute(
        "SELECT s.media_id, (s.start + s.end) / 2.0 FROM segments s LEFT JOIN clips c ON c.segment_id = s.id "
        "WHERE s.character_id = ? ORDER BY (c.status = 'kept') DESC, (s.end - s.start) DESC, s.id LIMIT ?",
        [character_id, int(limit)]).fetchall()
    return [(int(m), float(t)) for m, t in rows]
