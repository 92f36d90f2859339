"""Swap or add subtitle tracks and a screenplay on an item already in the library, without deleting it.

Each change is validated first (the file is parsed before any row is written) and made in one transaction:

- **add subtitles**: the file becomes a new track. As the primary track (the default) the item's lines will
  come from it: the previous primary track stays (not primary), so switching back is one ``set_primary``;
- **set primary**: another of the item's tracks becomes the one its lines come from;
- **remove a track** (not the primary one): its lines go; segments keep their text;
- **attach / detach a screenplay**: the item's script (a file, or one already in the screenplay library).

A change of what the lines come from is applied by analysing the item again: the segments are made anew from
the new primary track while every user edit (names, reassigned lines, typed text, splits, joins, trims,
keep/reject) is carried over by pipeline.workflows.analysis ``save_analysis``. An interrupted analysis of the
item is cancelled first: its stage results were made from the old track.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BadInputError, WeaverError
from ..library import items


def _refuse_busy(svc, media_id: int) -> None:
    """No change while the item is being analysed; an interrupted analysis is dropped (made from the old inputs)."""
    key = f"analyze:{media_id}"
    if (active := svc.runner.find_active(key)) is not None:
        raise WeaverError(f"item {media_id} is being analysed (job {active}); wait for it or cancel it first")
    if (stale := svc.runner.find_resumable(key)) is not None:
        svc.runner.request_cancel(stale)


def tracks(svc, media_id: int) -> list[dict]:
    """The item's subtitle tracks: id, source, path, format, encoding, primary, line count."""
    svc.lib.media(media_id)
    return items.subtitle_tracks(svc.lib.db, media_id)


def add_subtitles(svc, media_id: int, path: str, *, encoding: str | None = None, primary: bool = True) -> dict:
    """Add a subtitle file as a track of the item (primary by default); returns the track and what was read."""
    from ..text.encoding import normalise_encoding
    from ..text.subtitles import read_subtitle_file
    from .ingest import sidecar_track

    m = svc.lib.media(media_id)
    if not Path(path).is_file():
        raise BadInputError(f"no subtitle file at {path}")
    enc = normalise_encoding(encoding) if encoding else None
    doc = read_subtitle_file(path, encoding=enc, language=getattr(svc.settings, "subtitle_language", None))
    track, lines, warnings, dropped = sidecar_track(path, doc, m["duration"] or None, resync=True)
    if not any(ln.text.strip() for ln in lines):
        raise BadInputError(f"{Path(path).name} has no subtitle line inside item {media_id}'s {m['duration'] or 0:.0f} s")
    resolved = track["path"]
    if any(t["path"] == resolved for t in items.subtitle_tracks(svc.lib.db, media_id)):
        raise BadInputError(f"{Path(path).name} is already a subtitle track of item {media_id}")
    _refuse_busy(svc, media_id)
    with svc.lib.atomic() as db:
        track_id = items.insert_subtitle_track(db, media_id, track, lines, primary=primary, segments=False)
    return {"media_id": media_id, "track": track_id, "primary": primary, "lines": len(lines), "encoding": doc.encoding,
            "format": doc.format, "dropped_cues": dropped, "warnings": warnings}


def set_primary(svc, track_id: int) -> dict:
    t = svc.lib.row("subtitle_tracks", track_id, "subtitle track")
    _refuse_busy(svc, t["media_id"])
    with svc.lib.atomic() as db:
        items.set_primary_track(db, t["media_id"], track_id)
    return {"media_id": t["media_id"], "track": track_id, "primary": True}


def remove_track(svc, track_id: int) -> dict:
    t = svc.lib.row("subtitle_tracks", track_id, "subtitle track")
    if t["is_primary"]:
        raise BadInputError(f"subtitle track {track_id} is the item's primary track: make another one primary first")
    with svc.lib.atomic() as db:
        items.delete_subtitle_track(db, track_id)
    return {"media_id": t["media_id"], "track": track_id, "removed": True}


def attach_script(svc, media_id: int, script: str | int | None) -> dict:
    """The item's screenplay: a file (added to the screenplay library), a script id, or None to detach it."""
    svc.lib.media(media_id)
    script_id = None
    if script is not None and str(script).isdigit():
        script_id = int(script)
        svc.lib.row("scripts", script_id, "script")
    elif script is not None:
        script_id = svc.add_script(str(script))["id"]  # parsed and validated before it is attached
    _refuse_busy(svc, media_id)
    with svc.lib.atomic() as db:
        items.set_script(db, media_id, script_id)
    return {"media_id": media_id, "script": script_id}
