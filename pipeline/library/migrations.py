"""The library's schema: the first tables and the one ordered list of migrations (each entry one schema version).

The voices' and chat's tables are created by :func:`pipeline.library.voices.create_tables` and
:func:`pipeline.library.chat.create_tables`, listed here in the order they were released. Append only.
"""

from __future__ import annotations

import json
import re
from typing import Callable

import sqlite_utils

from . import chat, voices

SCHEMA_V1 = """
CREATE TABLE media (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('file', 'capture')),
    title TEXT NOT NULL,
    source_path TEXT,
    fingerprint TEXT UNIQUE,
    duration REAL NOT NULL DEFAULT 0,
    container TEXT,
    has_video INTEGER NOT NULL DEFAULT 0,
    width INTEGER, height INTEGER, fps REAL,
    audio_track INTEGER NOT NULL DEFAULT 0,
    channel_mode TEXT NOT NULL DEFAULT 'mix',
    analysis_path TEXT,          -- 16 kHz mono FLAC for the analysis stages
    dialogue_path TEXT,          -- full-quality dialogue track (native rate) for clips
    dialogue_rate INTEGER,
    frames_path TEXT,            -- folder of timestamped screen frames (captures)
    created_at REAL NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE audio_tracks (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL, stream_index INTEGER NOT NULL,
    codec TEXT, channels INTEGER, layout TEXT, sample_rate INTEGER,
    language TEXT, title TEXT, is_default INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE subtitle_tracks (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    source TEXT NOT NULL CHECK (source IN ('embedded', 'sidecar', 'asr')),
    stream_index INTEGER, path TEXT, format TEXT, encoding TEXT, language TEXT,
    is_primary INTEGER NOT NULL DEFAULT 0,
    sync TEXT                    -- JSON: scale, offset, score, method
);
CREATE TABLE lines (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    track_id INTEGER NOT NULL REFERENCES subtitle_tracks(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL, start REAL NOT NULL, end REAL NOT NULL,
    text TEXT NOT NULL, speaker_cue TEXT, tags TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE speakers (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    label TEXT NOT NULL, name TEXT, voiceprint_id INTEGER REFERENCES voiceprints(id) ON DELETE SET NULL,
    match_score REAL, embedding BLOB,
    UNIQUE (media_id, label)
);
CREATE TABLE characters (
    id INTEGER PRIMARY KEY,
    media_id INTEGER REFERENCES media(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    UNIQUE (media_id, name)
);
CREATE TABLE segments (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    line_id INTEGER REFERENCES lines(id) ON DELETE SET NULL,
    idx INTEGER NOT NULL, start REAL NOT NULL, end REAL NOT NULL,
    text TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT 'subtitle',      -- subtitle | asr | script
    speaker_id INTEGER REFERENCES speakers(id) ON DELETE SET NULL,
    character_id INTEGER REFERENCES characters(id) ON DELETE SET NULL,
    confidence REAL, attribution_source TEXT, overlap INTEGER NOT NULL DEFAULT 0,
    speaker_cue TEXT, tags TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE words (
    id INTEGER PRIMARY KEY,
    segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL, start REAL NOT NULL, end REAL NOT NULL, text TEXT NOT NULL, probability REAL
);
CREATE TABLE clips (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    segment_id INTEGER NOT NULL UNIQUE REFERENCES segments(id) ON DELETE CASCADE,
    trim_start REAL NOT NULL DEFAULT 0,   -- seconds added to the segment start (+ later, - earlier)
    trim_end REAL NOT NULL DEFAULT 0,     -- seconds added to the segment end
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'kept', 'rejected'))
);
CREATE TABLE voiceprints (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL, embedding BLOB NOT NULL, source TEXT, created_at REAL NOT NULL
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL, key TEXT, media_id INTEGER REFERENCES media(id) ON DELETE SET NULL,
    params TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'cancelling', 'done', 'failed', 'cancelled', 'interrupted')),
    progress REAL NOT NULL DEFAULT 0, stage TEXT, message TEXT, eta REAL, error TEXT,
    pid INTEGER, result TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL
);
CREATE TABLE job_stages (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    name TEXT NOT NULL, result TEXT, finished_at REAL NOT NULL, seconds REAL,
    PRIMARY KEY (job_id, name)
);
CREATE TABLE edits (
    id INTEGER PRIMARY KEY,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE,
    action TEXT NOT NULL, undo TEXT NOT NULL,   -- JSON: what was done, and the row values to restore
    created_at REAL NOT NULL, undone INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX idx_segments_media ON segments(media_id, start);
CREATE INDEX idx_segments_character ON segments(character_id);
CREATE INDEX idx_lines_track ON lines(track_id, idx);
CREATE INDEX idx_words_segment ON words(segment_id, idx);
CREATE INDEX idx_clips_media ON clips(media_id);
CREATE INDEX idx_jobs_key ON jobs(key, state);
"""

SCHEMA_V2_SCRIPTS = """
CREATE TABLE scripts (
    id INTEGER PRIMARY KEY, title TEXT NOT NULL, year INTEGER, path TEXT, format TEXT,
    fingerprint TEXT UNIQUE, created_at REAL NOT NULL
);
CREATE TABLE script_lines (
    id INTEGER PRIMARY KEY,
    script_id INTEGER NOT NULL REFERENCES scripts(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL, scene INTEGER NOT NULL DEFAULT 0, character TEXT NOT NULL, text TEXT NOT NULL,
    parenthetical TEXT, extension TEXT
);
CREATE INDEX idx_script_lines ON script_lines(script_id, idx);
ALTER TABLE media ADD COLUMN script_id INTEGER REFERENCES scripts(id) ON DELETE SET NULL;
"""


def _migration_sql(sql: str) -> Callable[[sqlite_utils.Database], None]:
    def apply(db: sqlite_utils.Database) -> None:
        for statement in [s.strip() for s in sql.split(";") if s.strip()]:
            db.execute(statement)

    return apply


def _migration_scripts_fts(db: sqlite_utils.Database) -> None:
    _migration_sql(SCHEMA_V2_SCRIPTS)(db)
    db["script_lines"].enable_fts(["character", "text"], create_triggers=True, tokenize="porter")
    db["scripts"].enable_fts(["title"], create_triggers=True)


def _migration_user_edits(db: sqlite_utils.Database) -> None:
    """Row-level undo, and user-owned values that automatic passes keep (self-contained; one schema version).

    - ``edits.closed``: why an edit can no longer be undone (NULL while it can). Edits recorded before this version
      hold a whole-item snapshot, whose restore would also revert every later change, so they are closed here.
      ``edits.undo`` now holds the rows the edit inserted, deleted and updated (see Service._edit).
    - ``speakers.name_source``: 'user' (named by label_speaker) or 'voiceprint' (matched by analysis).
    - ``segments.user_split``: 1 when the segment starts where the user split a line.
    """
    db.execute("ALTER TABLE edits ADD COLUMN closed TEXT")
    db.execute("UPDATE edits SET closed = 'recorded before row-level undo' WHERE undone = 0")
    db.execute("ALTER TABLE speakers ADD COLUMN name_source TEXT")
    db.execute("UPDATE speakers SET name_source = CASE WHEN EXISTS (SELECT 1 FROM segments s JOIN characters c"
               " ON c.id = s.character_id WHERE s.speaker_id = speakers.id AND s.attribution_source = 'user'"
               " AND c.name = speakers.name) THEN 'user' ELSE 'voiceprint' END WHERE name IS NOT NULL")
    db.execute("ALTER TABLE segments ADD COLUMN user_split INTEGER NOT NULL DEFAULT 0")
    # before this version a split's second half was the only subtitle segment without a subtitle line
    db.execute("UPDATE segments SET user_split = 1 WHERE line_id IS NULL AND origin = 'subtitle'")


_ID_PK = re.compile(r"(?<![\w\]\"])(\[id\]|\"id\"|id)(\s+INTEGER\s+PRIMARY\s+KEY)(?!\s+(ASC\s+|DESC\s+)?AUTOINCREMENT)", re.I)
_TABLE_HEAD = re.compile(r"^\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\"[^\"]+\"|\[[^\]]+\]|\S+?)(?=\s*\()", re.I)


def _migration_autoincrement(db: sqlite_utils.Database) -> None:
    """Rebuild every table keyed by ``id INTEGER PRIMARY KEY`` as AUTOINCREMENT, keeping its rows, indexes and
    triggers. Plain rowid keys hand the id of a deleted last row to the next insert, so a job or folder keyed by
    a deleted item's id (``analyze:<id>``, ``media/<id>``, ``work/job-<id>``) fell onto the new item.
    Runs with foreign keys off (see Library._migrate), the documented way to rebuild a table in SQLite."""
    tables = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL"
                        " AND name NOT LIKE 'sqlite_%'").fetchall()
    virtual = [n for n, sql in tables if sql.upper().lstrip().startswith("CREATE VIRTUAL")]
    shadow = set(virtual) | {n for n, _ in tables if any(n.startswith(v + "_") for v in virtual)}  # FTS internals
    db.execute("PRAGMA legacy_alter_table = ON")  # rename without re-checking every trigger against dropped tables
    try:
        for name, sql in tables:
            if name in shadow or not _ID_PK.search(sql):
                continue
            tmp = f"_weaver_rebuild_{name}"
            create = _TABLE_HEAD.sub(f"CREATE TABLE [{tmp}]", _ID_PK.sub(r"\1\2 AUTOINCREMENT", sql, count=1), count=1)
            extras = [r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN"
                                               " ('index', 'trigger') AND sql IS NOT NULL", [name]).fetchall()]
            cols = ", ".join(f"[{r[1]}]" for r in db.execute(f"PRAGMA table_info([{name}])").fetchall())
            db.execute(create)
            db.execute(f"INSERT INTO [{tmp}] ({cols}) SELECT {cols} FROM [{name}]")
            db.execute(f"DROP TABLE [{name}]")
            db.execute(f"ALTER TABLE [{tmp}] RENAME TO [{name}]")
            for extra in extras:
                db.execute(extra)
    finally:
        db.execute("PRAGMA legacy_alter_table = OFF")
    # ids already handed out and freed before this version: jobs remember them, never give them out again
    seen = [int(k.split(":", 1)[1]) for (k,) in db.execute("SELECT key FROM jobs WHERE key LIKE 'analyze:%'").fetchall()
            if k.split(":", 1)[1].isdigit()]
    seen += [m for (m,) in db.execute("SELECT media_id FROM jobs WHERE media_id IS NOT NULL").fetchall()]
    for (result,) in db.execute("SELECT result FROM job_stages WHERE name = 'commit'").fetchall():
        try:
            seen.append(int(json.loads(result or "{}").get("media_id") or 0))
        except (ValueError, TypeError, AttributeError):
            pass
    top = max(seen, default=0)
    if top:
        if db.execute("SELECT 1 FROM sqlite_sequence WHERE name = 'media'").fetchone():
            db.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'media'", [top])
        else:
            db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('media', ?)", [top])


def _migration_line_text_and_encodings(db: sqlite_utils.Database) -> None:
    """User-edited line text, user joins and how a subtitle track's encoding was chosen (self-contained).

    - ``segments.user_text``: 1 when the user typed the line's text (edit or join of an edited line); that text
      wins over every automatic source, re-analysis included.
    - ``segments.user_join``: 1 when the segment is two lines the user joined (re-analysis joins them again).
    - ``subtitle_tracks.encoding_info``: JSON {encoding, unsure, method, candidates: [{encoding, cost, sample}]}.
    """
    def add(table: str, column: str, decl: str) -> None:
        if column not in {c[1] for c in db.execute(f"PRAGMA table_info([{table}])").fetchall()}:
            db.execute(f"ALTER TABLE [{table}] ADD COLUMN [{column}] {decl}")

    add("segments", "user_text", "INTEGER NOT NULL DEFAULT 0")
    add("segments", "user_join", "INTEGER NOT NULL DEFAULT 0")
    add("subtitle_tracks", "encoding_info", "TEXT")


def _migration_text_choice(db: sqlite_utils.Database) -> None:
    """How a line's text was chosen (self-contained): ``segments.text_source`` (script | subtitle | asr | user),
    ``segments.text_score`` (0..1 match against the window's ASR words, NULL when unscored) and
    ``segments.check_text`` (1: no written text matched the audio well, the ASR text is kept; the user should check it).
    """
    cols = {c[1] for c in db.execute("PRAGMA table_info([segments])").fetchall()}
    for column, decl in (("text_source", "TEXT"), ("text_score", "REAL"), ("check_text", "INTEGER NOT NULL DEFAULT 0")):
        if column not in cols:
            db.execute(f"ALTER TABLE [segments] ADD COLUMN [{column}] {decl}")


def _migration_voiceprint_sources(db: sqlite_utils.Database) -> None:
    """Voiceprints known across recordings: ``voiceprints.source`` becomes the kind ('auto', 'named', 'file') and a
    ``voiceprint_sources`` table says which recordings each voiceprint came from (see pipeline.library.voiceprints).
    A label-enrolled print ('label:item N/SPEAKER') keeps item N and the speaker; an enrolled file keeps its path."""
    db.execute("CREATE TABLE voiceprint_sources (id INTEGER PRIMARY KEY AUTOINCREMENT,"
               " voiceprint_id INTEGER NOT NULL REFERENCES voiceprints(id) ON DELETE CASCADE,"
               " media_id INTEGER REFERENCES media(id) ON DELETE SET NULL, speaker TEXT, path TEXT, seconds REAL,"
               " created_at REAL NOT NULL)")
    # no indexes: a handful of rows per voiceprint, read whole
    for vid, source, created in db.execute("SELECT id, source, created_at FROM voiceprints").fetchall():
        m = re.match(r"label:item (\d+)/(.*)$", source or "")
        media_id = int(m.group(1)) if m else None
        if media_id is not None and not db.execute("SELECT 1 FROM media WHERE id = ?", [media_id]).fetchone():
            media_id = None
        db.execute("INSERT INTO voiceprint_sources (voiceprint_id, media_id, speaker, path, created_at)"
                   " VALUES (?, ?, ?, ?, ?)", [vid, media_id, m.group(2) if m else None,
                                               None if m else source, created])
        db.execute("UPDATE voiceprints SET source = ? WHERE id = ?", ["named" if m else "file", vid])


def _migration_line_turns(db: sqlite_utils.Database) -> None:
    """``lines.turn`` (self-contained): 1 for another speaker's part of one subtitle cue (a dialogue dash or a name
    cue after the first part), which never joins the part before it into one utterance. Lines imported before this
    version read 0 (as they behaved); importing the track again sets it."""
    if "turn" not in {c[1] for c in db.execute("PRAGMA table_info([lines])").fetchall()}:
        db.execute("ALTER TABLE [lines] ADD COLUMN [turn] INTEGER NOT NULL DEFAULT 0")


# Append only: each entry is one schema version. Never edit a released migration.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _migration_sql(SCHEMA_V1),
    _migration_scripts_fts,
    voices.create_tables,
    chat.create_tables,
    _migration_user_edits,
    _migration_autoincrement,
    _migration_line_text_and_encodings,
    voices.add_check_columns,
    _migration_text_choice,
    _migration_voiceprint_sources,
    _migration_line_turns,
]
