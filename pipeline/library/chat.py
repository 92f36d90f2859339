"""Tables for chat personas, conversations and messages, plus small helpers that take the database.

pipeline.library.migrations lists :func:`create_tables` as one migration. ``personas.character_id`` is a plain integer
(the lead's ``characters`` table is referenced loosely, not by a foreign key).
"""

from __future__ import annotations

import json
import time

import sqlite_utils

from ..errors import BadInputError, NotFoundError
from ..chat.persona import Persona

SCHEMA = """
CREATE TABLE IF NOT EXISTS personas (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    character_id INTEGER,
    system_prompt TEXT NOT NULL DEFAULT '',
    example_lines TEXT NOT NULL DEFAULT '[]',
    greeting TEXT NOT NULL DEFAULT '',
    source_title TEXT,
    provider TEXT,
    model TEXT,
    temperature REAL NOT NULL DEFAULT 0.8,
    options TEXT NOT NULL DEFAULT '{}',
    voice TEXT,
    extra TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    persona_id INTEGER NOT NULL REFERENCES personas(id) ON DELETE CASCADE,
    title TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content TEXT NOT NULL,
    partial INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_personas_character ON personas(character_id);
CREATE INDEX IF NOT EXISTS idx_conversations_persona ON conversations(persona_id, updated_at);
CREATE INDEX IF NOT EXISTS idx_messages_conversation ON messages(conversation_id, id)
"""


def create_tables(db: sqlite_utils.Database) -> None:
    """Create personas, conversations and messages (idempotent; plain SQL so it runs inside a migration)."""
    for statement in [s.strip() for s in SCHEMA.split(";") if s.strip()]:
        db.execute(statement)


def _row_values(p: Persona) -> dict:
    return {
        "name": p.name, "character_id": p.character_id, "system_prompt": p.system_prompt or "",
        "example_lines": json.dumps(list(p.example_lines or []), ensure_ascii=False), "greeting": p.greeting or "",
        "source_title": p.source_title, "provider": p.provider, "model": p.model, "temperature": float(p.temperature),
        "options": json.dumps(p.options or {}, ensure_ascii=False), "voice": p.voice,
        "extra": json.dumps(p.extra or {}, ensure_ascii=False),
    }


def save_persona(db: sqlite_utils.Database, persona: Persona) -> int:
    """Insert the persona (``persona.id`` None) or update its row; sets and returns ``persona.id``."""
    now = time.time()
    values = _row_values(persona)
    if persona.id is not None:
        cur = db.execute(
            "UPDATE personas SET " + ", ".join(f"{k} = ?" for k in values) + ", updated_at = ? WHERE id = ?",
            [*values.values(), now, persona.id],
        )
        if cur.rowcount == 0:
            raise NotFoundError(f"persona {persona.id} does not exist")
        return persona.id
    cols = [*values, "created_at", "updated_at"]
    cur = db.execute(f"INSERT INTO personas ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                     [*values.values(), now, now])
    persona.id = cur.lastrowid
    return persona.id


def _persona_from_row(row: dict) -> Persona:
    return Persona(
        id=row["id"], name=row["name"], character_id=row["character_id"], system_prompt=row["system_prompt"],
        example_lines=json.loads(row["example_lines"] or "[]"), greeting=row["greeting"] or "",
        source_title=row["source_title"], provider=row["provider"], model=row["model"],
        temperature=row["temperature"], options=json.loads(row["options"] or "{}"), voice=row["voice"],
        extra=json.loads(row["extra"] or "{}"),
    )


def load_persona(db: sqlite_utils.Database, persona_id: int) -> Persona:
    """The stored persona with this id (NotFoundError if none)."""
    rows = list(db.query("SELECT * FROM personas WHERE id = ?", [persona_id]))
    if not rows:
        raise NotFoundError(f"persona {persona_id} does not exist")
    return _persona_from_row(rows[0])


def list_personas(db: sqlite_utils.Database, character_id: int | None = None) -> list[Persona]:
    """All personas (of one character when given), by name."""
    if character_id is None:
        rows = db.query("SELECT * FROM personas ORDER BY name, id")
    else:
        rows = db.query("SELECT * FROM personas WHERE character_id = ? ORDER BY name, id", [character_id])
    return [_persona_from_row(r) for r in rows]


def delete_persona(db: sqlite_utils.Database, persona_id: int) -> None:
    """Delete a persona with its conversations and messages."""
    db.execute("DELETE FROM messages WHERE conversation_id IN (SELECT id FROM conversations WHERE persona_id = ?)", [persona_id])
    db.execute("DELETE FROM conversations WHERE persona_id = ?", [persona_id])
    db.execute("DELETE FROM personas WHERE id = ?", [persona_id])


def create_conversation(db: sqlite_utils.Database, persona_id: int, title: str | None = None) -> int:
    """Start a conversation with a persona; returns its id."""
    load_persona(db, persona_id)
    now = time.time()
    cur = db.execute("INSERT INTO conversations (persona_id, title, created_at, updated_at) VALUES (?, ?, ?, ?)",
                     [persona_id, title, now, now])
    return cur.lastrowid


def list_conversations(db: sqlite_utils.Database, persona_id: int | None = None) -> list[dict]:
    """Conversations (newest activity first) with their message counts."""
    sql = ("SELECT c.id, c.persona_id, c.title, c.created_at, c.updated_at, "
           "(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS messages FROM conversations c")
    args: list = []
    if persona_id is not None:
        sql += " WHERE c.persona_id = ?"
        args.append(persona_id)
    return list(db.query(sql + " ORDER BY c.updated_at DESC, c.id DESC", args))


def append_message(db: sqlite_utils.Database, conversation_id: int, role: str, content: str, *,
                   partial: bool = False, meta: dict | None = None) -> int:
    """Add one message to a conversation; returns the message id."""
    rows = list(db.query("SELECT id FROM conversations WHERE id = ?", [conversation_id]))
    if not rows:
        raise NotFoundError(f"conversation {conversation_id} does not exist")
    now = time.time()
    cur = db.execute(
        "INSERT INTO messages (conversation_id, role, content, partial, meta, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [conversation_id, role, content, int(bool(partial)), json.dumps(meta or {}, ensure_ascii=False), now],
    )
    db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", [now, conversation_id])
    return cur.lastrowid


def history(db: sqlite_utils.Database, conversation_id: int) -> list[dict]:
    """The conversation's messages in order as ``{"role", "content", "partial"}`` dicts (what Conversation takes)."""
    return [
        {"role": r["role"], "content": r["content"], "partial": bool(r["partial"])}
        for r in db.query("SELECT role, content, partial FROM messages WHERE conversation_id = ? ORDER BY id", [conversation_id])
    ]


def conversation_persona(db, conversation_id: int) -> int | None:
    """The persona id of a conversation, or None when there is no such conversation."""
    row = db.execute("SELECT persona_id FROM conversations WHERE id = ?", [conversation_id]).fetchone()
    return row[0] if row else None


# -- card re-import, summaries, Regenerate, avatar frames ------------------------------------------------------
# A summary is stored as a ``system`` message whose ``meta`` is ``{"kind": "summary", "covers": N}``: it stands
# for the first N user/assistant messages of the conversation (``history`` callers skip it).
SUMMARY_KIND = "summary"


def imported_twin(db, name: str, source_title: str | None) -> int | None:
    """The persona a re-imported card should update: same name (any case) and same source title."""
    row = db.execute("SELECT id FROM personas WHERE lower(name) = lower(?) AND source_title IS ? ORDER BY id LIMIT 1",
                     [name, source_title]).fetchone()
    return row[0] if row else None


def conversation_persona_id(db, conversation_id: int) -> int:
    """The persona id of a conversation; NotFoundError when there is no such conversation."""
    persona_id = conversation_persona(db, conversation_id)
    if persona_id is None:
        raise NotFoundError(f"conversation {conversation_id} does not exist")
    return int(persona_id)


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


def conversation_count(db, persona_id: int) -> int:
    """How many conversations a persona has."""
    return int(db.execute("SELECT COUNT(*) FROM conversations WHERE persona_id = ?", [persona_id]).fetchone()[0])
