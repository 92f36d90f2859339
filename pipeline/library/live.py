"""Live lines kept in the library: a saved capture window's live lines as its first segments (origin 'live').

The offline analysis later replaces an item's segments (final wins in every view); the live transcript stays
beside it as ``media/<id>/live_lines.json``."""

from __future__ import annotations

import json
from pathlib import Path

LIVE_FILE = "live_lines.json"


def store_live_lines(db, media_id: int, lines: list[dict], *, keep: set[int] | frozenset = frozenset()) -> dict[int, int]:
    """Insert live lines (times relative to the item) as segments with their speakers and words; a line whose id
    is in `keep` gets a kept clip. Returns {live line id: segment id}."""
    speakers: dict[str, int] = {}
    out: dict[int, int] = {}
    for idx, ln in enumerate(sorted(lines, key=lambda x: x["start"])):
        sid = None
        label = ln.get("speaker")
        if label:
            if label not in speakers:
                cur = db.execute("INSERT INTO speakers (media_id, label, name) VALUES (?, ?, ?)",
                                 [media_id, label, ln.get("name")])
                speakers[label] = cur.lastrowid
            sid = speakers[label]
        cur = db.execute("INSERT INTO segments (media_id, idx, start, end, text, origin, speaker_id, attribution_source)"
                         " VALUES (?, ?, ?, ?, ?, 'live', ?, ?)",
                         [media_id, idx, ln["start"], ln["end"], ln["text"], sid, "voiceprint" if ln.get("name") else None])
        seg = cur.lastrowid
        out[ln["id"]] = seg
        for i, (a, b, t) in enumerate(ln.get("words") or []):
            db.execute("INSERT INTO words (segment_id, idx, start, end, text) VALUES (?, ?, ?, ?, ?)", [seg, i, a, b, t])
        if ln["id"] in keep:
            db.execute("INSERT INTO clips (media_id, segment_id, status) VALUES (?, ?, 'kept')", [media_id, seg])
    return out


def write_live_file(media_dir: Path, lines: list[dict]) -> Path:
    """The live transcript of an item, kept after the final analysis replaced its segments."""
    media_dir.mkdir(parents=True, exist_ok=True)
    path = media_dir / LIVE_FILE
    path.write_text(json.dumps({"lines": lines}, indent=1))
    return path
