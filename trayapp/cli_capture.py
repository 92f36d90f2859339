"""`weaver devices` and `weaver capture listen|start|save|keep|watch|stop|status` (the capture runs inside the
background app). One "Listen" state (rolling buffer + live lines) and one "Record" state, as in the panel and tray."""

from __future__ import annotations

import re

from pipeline.errors import BadInputError

from .commands import command, err, out, out_json


def parse_duration(text: str) -> float:
    """'5m', '90s', '1h', '2.5' (minutes) → minutes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", text or "")
    if not m:
        raise BadInputError(f"not a duration: {text!r} (use e.g. 5m, 90s, 1h)")
    value, unit = float(m.group(1)), m.group(2) or "m"
    return value / 60 if unit == "s" else value * 60 if unit == "h" else value


def add_parsers(sub) -> None:
    s = sub.add_parser("devices", help="list audio sources (loopback of outputs, microphones) with ids")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("capture", help="record what is playing: start, save --last 5m, stop, status")
    csub = s.add_subparsers(dest="capture_action", required=True)
    for name, help_text in (("start", "Record: listen and record to the library from now"),
                            ("listen", "Listen: fill the rolling buffer and show live lines (save windows later)")):
        st = csub.add_parser(name, help=help_text)
        st.add_argument("--source", choices=["loopback", "mic", "both"], default="loopback")
        st.add_argument("--device", help="device id from `weaver devices`")
        st.add_argument("--frames", action="store_true", help="also grab about one screen frame per second")
        st.add_argument("--buffer", default="10m", help="rolling buffer length (default 10m)")
        st.add_argument("--no-live", action="store_true", help="no live lines (no streaming transcription)")
        if name == "start":
            st.add_argument("--no-record", action="store_true", help="same as `capture listen`")
    sv = csub.add_parser("save", help="save the last N minutes with their live lines")
    sv.add_argument("--last", default="5m", help="how much of the rolling buffer to save (default 5m)")
    sv.add_argument("--analyze", action="store_true", help=argparse_suppress())
    sv.add_argument("--no-analyze", action="store_true", help="do not queue the offline analysis")
    sp = csub.add_parser("stop")
    sp.add_argument("--analyze", action="store_true", help=argparse_suppress())
    sp.add_argument("--no-analyze", action="store_true", help="do not queue the offline analysis on the new item")
    sk = csub.add_parser("keep", help="keep a live line (default the last one) as a clip of its speaker")
    sk.add_argument("line", nargs="?", type=int, help="live line number (see `capture watch`)")
    sw = csub.add_parser("watch", help="print live lines as they are heard (Ctrl-C to stop watching)")
    sw.add_argument("--for", dest="seconds", type=float, default=None, help="stop watching after this many seconds")
    sw.add_argument("--no-color", action="store_true")
    ss = csub.add_parser("status")
    ss.add_argument("--json", action="store_true")


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS



COLOURS = ("36", "33", "32", "35", "34", "91", "96", "93")  # ANSI colours of unknown speakers, by session index


def live_line_text(line: dict, colour: bool = True) -> str:
    """One live line for the terminal: `[mm:ss] Name: text` (a voiceprint's name) or `S2` in its colour."""
    who = line.get("name") or line.get("speaker") or "…"
    t = float(line.get("start") or 0)
    stamp = f"[{int(t // 60):02d}:{t % 60:04.1f}]"
    if colour and line.get("speaker"):
        code = "1" if line.get("name") else COLOURS[int(line.get("color") or 0) % len(COLOURS)]
        who = f"\033[{code}m{who}\033[0m"
    return f"{line['id']:>3} {stamp} {who}: {line.get('text', '')}"


def saved_text(res: dict) -> str:
    saved = res.get("saved") or {}
    text = f"saved {saved.get('seconds', '?')} s as item {res['media_id']}"
    if saved.get("lines"):
        text += f" with {saved['lines']} live lines"
    if res.get("job_id"):
        text += f"; analysis queued (job {res['job_id']})"
    return text


def watch(seconds: float | None, colour: bool) -> int:
    """Print finished live lines as they come (long-polling the running app)."""
    import time

    from .remote import call

    seq, session, printed = 0, None, set()
    deadline = None if seconds is None else time.monotonic() + seconds
    notice = None
    try:
        while deadline is None or time.monotonic() < deadline:
            res = call("GET", f"/api/live/lines?since={seq}&wait=2" + (f"&session={session}" if session else ""))
            if res.get("live") is None:
                if notice != "off":
                    err("not listening: start with `weaver capture listen` (or `capture start` to record too)")
                    notice = "off"
                time.sleep(1.0)
                continue
            if res.get("session") != session:
                session, printed = res["session"], set()
            events = [{"type": "line", **ln} for ln in res.get("lines", [])] + res["events"]
            for e in events:
                if e["type"] == "notice":
                    if e.get("text"):
                        err(e["text"])
                elif e.get("final") and e["id"] not in printed:
                    printed.add(e["id"])
                    out(live_line_text(e, colour))
            seq = res["seq"]
    except KeyboardInterrupt:
        pass
    return 0


@command("devices")
def cmd_devices(a) -> int:
    from dataclasses import asdict

    from pipeline.workflows.recordings import list_devices

    rows = [asdict(d) for d in list_devices()]
    if a.json:
        out_json(rows)
        return 0
    for d in rows:
        out(f"{d['kind']:8s} {'*' if d.get('default') else ' '} {d['id']}  ({d['name']}, {d.get('channels', '?')} ch)")
    return 0


@command("capture")
def cmd_capture(a) -> int:
    from .remote import call

    act = a.capture_action
    if act in ("start", "listen"):
        record = act == "start" and not a.no_record
        st = call("POST", "/api/capture/start", {"source": a.source, "device_id": a.device, "frames": a.frames,
                                                  "buffer_minutes": parse_duration(a.buffer), "record": record,
                                                  "live": not a.no_live}, start=True)
        err(f"{st.get('state', 'listening')}: {st.get('source')} from {st.get('device') or 'default device'}"
            + ("" if a.no_live else " (live lines: `weaver capture watch`)"))
        return 0
    if act == "save":
        res = call("POST", "/api/capture/save", {"minutes": parse_duration(a.last), "analyze": not a.no_analyze})
        err(saved_text(res))
        out(str(res["media_id"]))
        return 0
    if act == "keep":
        res = call("POST", "/api/live/keep", {"line_id": a.line})
        err(f"kept line {res['line']['id']} ({res['line'].get('name') or res['line'].get('speaker') or '?'}: "
            f"{res['line']['text']}) as a clip in item {res['media_id']}")
        out(str(res["media_id"]))
        return 0
    if act == "watch":
        import sys

        return watch(a.seconds, colour=not a.no_color and sys.stdout.isatty())
    if act == "stop":
        res = call("POST", "/api/capture/stop", {"analyze": not a.no_analyze})
        if res.get("media_id") is not None:
            note = (res.get("last_saved") or {}).get("note")
            if note:
                err(f"{note}: no second copy (item {res['media_id']})")
            out(str(res["media_id"]))
        else:
            err("capture stopped (nothing was being recorded)")
        return 0
    from .remote import running_app

    st = call("GET", "/api/capture/status") if running_app() else {"running": False, "recording": False}
    if a.json:
        out_json(st)
    else:
        out("not running" if not st.get("running") else
            f"{st.get('source')} {'recording' if st.get('recording') else 'listening'} {st.get('elapsed', 0):.0f} s, "
            f"buffer {st.get('buffer_fill', 0) * 100:.0f}%, dropped {st.get('dropped_frames', 0)}, "
            f"{st.get('bytes_written', 0) / 1e6:.1f} MB" + (f", error: {st['error']}" if st.get("error") else ""))
    return 0
