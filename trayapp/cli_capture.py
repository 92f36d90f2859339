"""`weaver devices` and `weaver capture start|save|stop|status` (the capture runs inside the background app)."""

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
    st = csub.add_parser("start")
    st.add_argument("--source", choices=["loopback", "mic", "both"], default="loopback")
    st.add_argument("--device", help="device id from `weaver devices`")
    st.add_argument("--frames", action="store_true", help="also grab about one screen frame per second")
    st.add_argument("--buffer", default="10m", help="rolling buffer length (default 10m)")
    st.add_argument("--no-record", action="store_true", help="only fill the rolling buffer (save windows later)")
    sv = csub.add_parser("save")
    sv.add_argument("--last", default="5m", help="how much of the rolling buffer to save (default 5m)")
    sv.add_argument("--analyze", action="store_true")
    sp = csub.add_parser("stop")
    sp.add_argument("--analyze", action="store_true", help="queue the analysis on the new item")
    ss = csub.add_parser("status")
    ss.add_argument("--json", action="store_true")




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
    if act == "start":
        st = call("POST", "/api/capture/start", {"source": a.source, "device_id": a.device, "frames": a.frames,
                                                  "buffer_minutes": parse_duration(a.buffer), "record": not a.no_record},
                  start=True)
        err(f"capturing {st.get('source')} from {st.get('device') or 'default device'}"
            + (" (recording)" if st.get("recording") else " (buffer only)"))
        return 0
    if act == "save":
        res = call("POST", "/api/capture/save", {"minutes": parse_duration(a.last), "analyze": a.analyze})
        out(str(res["media_id"]))
        return 0
    if act == "stop":
        res = call("POST", "/api/capture/stop", {"analyze": a.analyze})
        if res.get("media_id") is not None:
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
            f"{st.get('source')} {'recording' if st.get('recording') else 'buffering'} {st.get('elapsed', 0):.0f} s, "
            f"buffer {st.get('buffer_fill', 0) * 100:.0f}%, dropped {st.get('dropped_frames', 0)}, "
            f"{st.get('bytes_written', 0) / 1e6:.1f} MB" + (f", error: {st['error']}" if st.get("error") else ""))
    return 0
