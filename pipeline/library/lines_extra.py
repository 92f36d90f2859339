"""SQL for a line's chosen text: which source won (script, subtitle, asr, user), its score against the audio
and the "check text" mark (columns added by store._migration_text_choice)."""

from __future__ import annotations

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
