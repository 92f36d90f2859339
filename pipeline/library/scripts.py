"""The screenplay library: scripts, their lines and the full-text search over both (FTS5, porter stemming)."""

from __future__ import annotations

import re

from .values import now


def by_fingerprint(db, fingerprint: str) -> dict | None:
    existing = list(db.query("SELECT * FROM scripts WHERE fingerprint = ?", [fingerprint]))
    return existing[0] if existing else None


def insert(db, script, *, title: str, year: int | None, path: str, fingerprint: str) -> int:
    """Store a parsed script (pipeline.text.scripts.Script) with its lines; returns its id."""
    db["scripts"].insert({"title": title, "year": year, "path": path, "format": script.format,
                          "fingerprint": fingerprint, "created_at": now()})
    sid = db.execute("SELECT last_insert_rowid()").fetchone()[0]
    db["script_lines"].insert_all([
        {"script_id": sid, "idx": ln.index, "scene": ln.scene, "character": ln.character, "text": ln.text,
         "parenthetical": ln.parenthetical, "extension": ln.extension} for ln in script.lines])
    return sid


def search(db, query: str, limit: int = 50) -> list[dict]:
    """Full-text search over titles, character names and dialogue (title hits first)."""
    q = " ".join(f'"{t}"' for t in re.findall(r"\w+", query)) or '""'
    hits = list(db.query(
        "SELECT s.id AS script_id, s.title, s.year, l.idx, l.character, l.text, l.scene"
        " FROM script_lines_fts f JOIN script_lines l ON l.rowid = f.rowid JOIN scripts s ON s.id = l.script_id"
        " WHERE script_lines_fts MATCH ? ORDER BY rank LIMIT ?", [q, limit]))
    titles = list(db.query(
        "SELECT s.id AS script_id, s.title, s.year FROM scripts_fts f JOIN scripts s ON s.rowid = f.rowid"
        " WHERE scripts_fts MATCH ?", [q]))
    return [{"match": "title", **t} for t in titles] + [{"match": "line", **h} for h in hits]


def lines(db, script_id: int) -> list[dict]:
    return list(db.query(
        "SELECT idx, scene, character, text, parenthetical, extension FROM script_lines WHERE script_id = ? ORDER BY idx",
        [script_id]))


def list_scripts(db) -> list[dict]:
    return list(db.query(
        "SELECT s.id, s.title, s.year, s.format, (SELECT count(*) FROM script_lines l WHERE l.script_id = s.id) AS lines"
        " FROM scripts s ORDER BY s.id"))
