"""Characters and speaker clusters: who says a line, and the labelling edits that name them (each runs inside the
caller's edit transaction; the undo records are pipeline.library.edits; voiceprints: pipeline.library.voiceprints)."""

from __future__ import annotations

from ..errors import NotFoundError
from .values import now


def character_names(db, media_id: int) -> list[str]:
    return [r["name"] for r in db.query("SELECT name FROM characters WHERE media_id = ?", [media_id])]


def character_names_by_id(db, ids: list[int | None]) -> dict[int, str]:
    marks = ", ".join("?" * len(ids))
    return {r["id"]: r["name"] for r in db.query(f"SELECT id, name FROM characters WHERE id IN ({marks})", list(ids))}


def character_id(db, media_id: int, name: str) -> int:
    """The id of the item's character of this name, created when missing."""
    row = list(db.query("SELECT id FROM characters WHERE media_id = ? AND name = ?", [media_id, name]))
    if row:
        return row[0]["id"]
    db.execute("INSERT INTO characters (media_id, name) VALUES (?, ?)", [media_id, name])
    return db.execute("SELECT last_insert_rowid()").fetchone()[0]


def find_character(db, name: str, media_id: int | None = None) -> tuple[int, str] | None:
    """(media id, name) of the newest item's character of this name (any case), in one item or any."""
    sql = "SELECT media_id, name FROM characters WHERE lower(name) = lower(?)"
    args: list = [name]
    if media_id is not None:
        sql += " AND media_id = ?"
        args.append(media_id)
    row = db.execute(sql + " ORDER BY media_id DESC LIMIT 1", args).fetchone()
    return (row[0], row[1]) if row else None


def characters_summary(db, media_id: int) -> list[dict]:
    """Characters of an item with line count, total speech time (seconds) and mean confidence."""
    return list(db.query(
        "SELECT c.id, c.name, count(s.id) AS lines, round(sum(s.end - s.start), 3) AS seconds,"
        " round(avg(s.confidence), 3) AS confidence"
        " FROM characters c JOIN segments s ON s.character_id = c.id"
        " WHERE c.media_id = ? GROUP BY c.id ORDER BY lines DESC, c.name", [media_id]))


def speakers_summary(db, media_id: int) -> list[dict]:
    """Speaker clusters with their name, match score, most frequent character and segments."""
    out = []
    for sp in db.query("SELECT id, label, name, match_score FROM speakers WHERE media_id = ? ORDER BY label", [media_id]):
        segs = [[round(r["start"], 3), round(r["end"], 3)] for r in db.query(
            "SELECT start, end FROM segments WHERE speaker_id = ? ORDER BY start", [sp["id"]])]
        chars = [r["name"] for r in db.query(
            "SELECT c.name, count(*) n FROM segments s JOIN characters c ON c.id = s.character_id"
            " WHERE s.speaker_id = ? GROUP BY c.name ORDER BY n DESC", [sp["id"]])]
        out.append({"id": sp["id"], "speaker": sp["label"], "name": sp["name"] or None,
                    "match_score": sp["match_score"], "character": chars[0] if chars else None, "segments": segs})
    return out


def find_speaker(db, media_id: int, label: str) -> dict | None:
    rows = list(db.query("SELECT * FROM speakers WHERE media_id = ? AND (label = ? OR name = ?)", [media_id, label, label]))
    return rows[0] if rows else None


LABELLED_SOURCES = ("sdh", "script")  # a line named by a label of its own: an SDH NAME: cue, its screenplay line


def _main_character(db, speaker_id: int, *, named: bool) -> int | None:
    """The character most of the cluster's lines have (a tie: the earlier line's); ``named``: among its named lines
    only (None when there are none), else unnamed lines count as one more candidate (None)."""
    row = db.execute("SELECT character_id FROM segments WHERE speaker_id = ?"
                     + (" AND character_id IS NOT NULL" if named else "")
                     + " GROUP BY character_id ORDER BY count(*) DESC, min(id) LIMIT 1", [speaker_id]).fetchone()
    return row[0] if row else None


def _lines_keeping_their_name(db, speaker_id: int, character_id: int) -> list[int]:
    """Ids of the cluster's lines a label of their own names after another character than both the name given
    (``character_id``, any case) and the character most of the cluster's lines have (unnamed counting as one):
    there the speaker clustering merged another voice, and the line's own label is the surer."""
    marks = ", ".join("?" * len(LABELLED_SOURCES))
    return [r[0] for r in db.execute(
        "SELECT s.id FROM segments s JOIN characters c ON c.id = s.character_id"
        f" WHERE s.speaker_id = ? AND s.attribution_source IN ({marks}) AND s.character_id IS NOT ?"
        " AND lower(c.name) != (SELECT lower(name) FROM characters WHERE id = ?)",
        [speaker_id, *LABELLED_SOURCES, _main_character(db, speaker_id, named=False), character_id])]


def _name_cluster_lines(db, speaker_id: int, character_id: int) -> int:
    """Give the cluster's lines the character as the user's name, but for the lines the user gave someone else
    (user-line) and those :func:`_lines_keeping_their_name` finds; returns how many of the latter."""
    kept = _lines_keeping_their_name(db, speaker_id, character_id)
    db.execute("UPDATE segments SET character_id = ?, attribution_source = 'user', confidence = 1.0"
               " WHERE speaker_id = ? AND coalesce(attribution_source, '') != 'user-line'"
               f" AND id NOT IN ({', '.join('?' * len(kept))})", [character_id, speaker_id, *kept])
    return len(kept)


def name_speaker(db, speaker_id: int, name: str, character_id: int) -> int:
    """The user names a cluster: its lines get the character, except lines the user gave someone else and lines
    an SDH label or the screenplay names after a character the cluster is not mostly (its other voice); returns
    how many of the latter kept their name."""
    db.execute("UPDATE speakers SET name = ?, name_source = 'user' WHERE id = ?", [name, speaker_id])
    return _name_cluster_lines(db, speaker_id, character_id)


def merge_speakers(db, source_id: int, target_id: int) -> int:
    """Every line of ``source_id`` goes to ``target_id`` (with the target's main character, if any, as
    :func:`name_speaker` gives it); source goes. Returns how many lines kept a name of their own."""
    char = _main_character(db, target_id, named=True)
    db.execute("UPDATE segments SET speaker_id = ? WHERE speaker_id = ?", [target_id, source_id])
    kept = _name_cluster_lines(db, target_id, char) if char is not None else 0
    db.execute("DELETE FROM speakers WHERE id = ?", [source_id])
    return kept


def assign_line(db, segment_id: int, character_id: int) -> None:
    """One line given to a character by the user (for that line only)."""
    db.execute("UPDATE segments SET character_id = ?, attribution_source = 'user-line', confidence = 1.0 WHERE id = ?",
               [character_id, segment_id])


def drop_unused_characters(db, media_id: int) -> None:
    db.execute("DELETE FROM characters WHERE media_id = ? AND id NOT IN"
               " (SELECT character_id FROM segments WHERE media_id = ? AND character_id IS NOT NULL)", [media_id, media_id])








def user_named_speakers(db, media_id: int) -> dict[str, str]:
    """label -> name of the item's speakers the user named."""
    return {r["label"]: r["name"] for r in db.query(
        "SELECT label, name FROM speakers WHERE media_id = ? AND name IS NOT NULL AND name_source = 'user'", [media_id])}


def insert_speaker(db, values: dict) -> int:
    db["speakers"].insert(values)
    return db.execute("SELECT last_insert_rowid()").fetchone()[0]


def insert_character(db, media_id: int, name: str) -> int:
    db.execute("INSERT INTO characters (media_id, name) VALUES (?, ?)", [media_id, name])
    return db.execute("SELECT last_insert_rowid()").fetchone()[0]


def character_in(db, media_id: int, name: str) -> tuple[int, str] | None:
    """(id, name) of the item's character of this name (any case)."""
    row = db.execute("SELECT id, name FROM characters WHERE media_id = ? AND lower(name) = lower(?)",
                     [media_id, name]).fetchone()
    return (row[0], row[1]) if row else None


def character_name(db, character_id: int | None) -> str | None:
    row = db.execute("SELECT name FROM characters WHERE id = ?", [character_id]).fetchone()
    return row[0] if row else None


def character_row(db, media_id: int, name: str) -> tuple[int, str]:
    """(id, stored name) of a character of an item, case-insensitively; NotFoundError listing the characters."""
    row = db.execute("SELECT id, name FROM characters WHERE media_id = ? AND lower(name) = lower(?)", [media_id, name]).fetchone()
    if row is None:
        names = [r[0] for r in db.execute("SELECT name FROM characters WHERE media_id = ? ORDER BY name", [media_id]).fetchall()]
        raise NotFoundError(f"no character '{name}' in item {media_id}" + (f" (characters: {', '.join(names)})" if names else ""))
    return int(row[0]), str(row[1])
