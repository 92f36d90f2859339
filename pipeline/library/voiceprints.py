"""Voiceprints known across recordings: enrol, list, rename, merge, delete, and the names analysis matches against.

A voiceprint row is a named unit embedding with ``source``: 'auto' (enrolled by an analysis from the lines a
screenplay or SDH cues attributed to a character), 'named' (the user named a speaker cluster), or 'file' (enrolled
from an audio file by ``weaver voiceprint enroll``). ``voiceprint_sources`` says which recordings (media items, or a
file path) a voiceprint came from; a merged voiceprint keeps the sources of both.
"""

from __future__ import annotations

import numpy as np

from ..errors import BadInputError, NotFoundError
from .values import now

SOURCES = ("auto", "named", "file")
AUTO_MIN_SECONDS = 3.0  # a character needs this much attributed speech (overlap-free) for an automatic voiceprint
AUTO_MAX_SECONDS = 90.0  # at most this much of it is embedded
AUTO_SOURCES = ("script", "sdh")  # attribution sources that name a line without hearing it


def _vec(blob) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


def add(db, name: str, embedding, source: str, *, media_id: int | None = None, speaker: str | None = None,
        path: str | None = None, seconds: float | None = None) -> int:
    """Insert a voiceprint and where it came from; returns its id."""
    name = (name or "").strip()
    if not name:
        raise BadInputError("a voiceprint needs a name")
    if source not in SOURCES:
        raise BadInputError(f"voiceprint source must be one of {', '.join(SOURCES)}")
    emb = np.asarray(embedding, dtype=np.float32)
    t = now()
    db.execute("INSERT INTO voiceprints (name, embedding, source, created_at) VALUES (?, ?, ?, ?)",
               [name, emb.tobytes(), source, t])
    vid = db.execute("SELECT last_insert_rowid()").fetchone()[0]
    db.execute("INSERT INTO voiceprint_sources (voiceprint_id, media_id, speaker, path, seconds, created_at)"
               " VALUES (?, ?, ?, ?, ?, ?)", [vid, media_id, speaker, path, seconds, t])
    return vid


def get(db, voiceprint_id: int) -> dict:
    rows = list(db.query("SELECT id, name, source, created_at FROM voiceprints WHERE id = ?", [int(voiceprint_id)]))
    if not rows:
        raise NotFoundError(f"voiceprint {voiceprint_id} not found (weaver voiceprint list shows them)")
    return rows[0]


def recordings(db, voiceprint_id: int) -> list[dict]:
    return list(db.query(
        "SELECT s.media_id, m.title, s.speaker, s.path, s.seconds FROM voiceprint_sources s"
        " LEFT JOIN media m ON m.id = s.media_id WHERE s.voiceprint_id = ? ORDER BY s.id", [voiceprint_id]))


def listing(db) -> list[dict]:
    """Every voiceprint, oldest first, with the recordings it came from."""
    return [{**r, "recordings": recordings(db, r["id"])}
            for r in db.query("SELECT id, name, source, created_at FROM voiceprints ORDER BY id")]


def rename(db, voiceprint_id: int, name: str) -> dict:
    get(db, voiceprint_id)
    name = (name or "").strip()
    if not name:
        raise BadInputError("a voiceprint needs a name")
    db.execute("UPDATE voiceprints SET name = ? WHERE id = ?", [name, int(voiceprint_id)])
    return get(db, voiceprint_id)


def merge(db, source_id: int, target_id: int) -> dict:
    """Fold voiceprint ``source_id`` into ``target_id``: the embedding becomes their mean weighted by enrolled
    seconds (1 s where unknown), the sources move over, the source row goes. The target keeps its name; it becomes
    'named' when either was."""
    a, b = get(db, source_id), get(db, target_id)
    if a["id"] == b["id"]:
        raise BadInputError("cannot merge a voiceprint into itself")

    def weight(vid):
        return sum((r["seconds"] or 1.0) for r in db.query(
            "SELECT seconds FROM voiceprint_sources WHERE voiceprint_id = ?", [vid])) or 1.0

    ea = _vec(db.execute("SELECT embedding FROM voiceprints WHERE id = ?", [a["id"]]).fetchone()[0])
    eb = _vec(db.execute("SELECT embedding FROM voiceprints WHERE id = ?", [b["id"]]).fetchone()[0])
    if len(ea) != len(eb):
        raise BadInputError("these voiceprints come from different encoders and cannot be merged")
    v = weight(a["id"]) * ea.astype(np.float64) + weight(b["id"]) * eb.astype(np.float64)
    v = (v / max(np.linalg.norm(v), 1e-9)).astype(np.float32)
    source = "named" if "named" in (a["source"], b["source"]) else b["source"]
    db.execute("UPDATE voiceprints SET embedding = ?, source = ? WHERE id = ?", [v.tobytes(), source, b["id"]])
    db.execute("UPDATE voiceprint_sources SET voiceprint_id = ? WHERE voiceprint_id = ?", [b["id"], a["id"]])
    db.execute("DELETE FROM voiceprints WHERE id = ?", [a["id"]])
    return get(db, b["id"])


def remove(db, voiceprint_id: int) -> dict:
    row = get(db, voiceprint_id)
    db.execute("DELETE FROM voiceprints WHERE id = ?", [row["id"]])  # its sources cascade
    return row


def known(db, *, media_id: int | None = None) -> dict[str, np.ndarray]:
    """name -> unit embedding to match against (the mean when several voiceprints share a name). Automatic
    voiceprints enrolled from ``media_id`` itself are left out: an item's analysis must not name its own clusters
    from what its previous analysis guessed."""
    rows = db.query(
        "SELECT v.name, v.embedding FROM voiceprints v WHERE NOT (v.source = 'auto' AND ? IS NOT NULL AND EXISTS"
        " (SELECT 1 FROM voiceprint_sources s WHERE s.voiceprint_id = v.id AND s.media_id = ?))"
        " ORDER BY v.id", [media_id, media_id])
    acc: dict[str, list[np.ndarray]] = {}
    for r in rows:
        acc.setdefault(r["name"], []).append(_vec(r["embedding"]).astype(np.float64))
    out = {}
    for name, vs in acc.items():
        if len({len(v) for v in vs}) != 1:
            vs = [vs[-1]]
        m = np.mean(vs, axis=0)
        out[name] = (m / max(np.linalg.norm(m), 1e-9)).astype(np.float32)
    return out


def auto_spans(db, media_id: int) -> dict[str, list[tuple[float, float]]]:
    """character -> (start, end) of the item's lines a screenplay or SDH cue attributed, overlapped lines left out."""
    marks = ", ".join("?" * len(AUTO_SOURCES))
    out: dict[str, list[tuple[float, float]]] = {}
    for r in db.query(
            "SELECT c.name, s.start, s.end FROM segments s JOIN characters c ON c.id = s.character_id"
            f" WHERE s.media_id = ? AND s.attribution_source IN ({marks}) AND coalesce(s.overlap, 0) = 0"
            " ORDER BY s.start", [media_id, *AUTO_SOURCES]):
        out.setdefault(r["name"], []).append((float(r["start"]), float(r["end"])))
    return out


def replace_auto(db, media_id: int, prints: list[tuple[str, object, float]]) -> list[int]:
    """The item's automatic voiceprints become ``prints`` ([(name, embedding, seconds)]); named and file ones stay."""
    db.execute("DELETE FROM voiceprints WHERE source = 'auto' AND id IN (SELECT voiceprint_id FROM"
               " voiceprint_sources WHERE media_id = ?)", [media_id])
    return [add(db, name, emb, "auto", media_id=media_id, seconds=round(sec, 2)) for name, emb, sec in prints]


def speaker_seconds(db, speaker_id: int) -> float:
    """Seconds of lines a speaker cluster holds (what a voiceprint enrolled from it was heard over)."""
    return float(db.execute("SELECT coalesce(sum(end - start), 0) FROM segments WHERE speaker_id = ?",
                            [speaker_id]).fetchone()[0])
