"""`weaver clone ITEM --character NAME [--name VOICE]`: an instant voice (Pocket TTS clone of the character)."""

from __future__ import annotations

from .cli import EXTRA_PARSERS, command, err, progress_bar, service


def add_parsers(sub) -> None:
    s = sub.add_parser("clone", help="instant voice: clone a character's voice with Pocket TTS (prints the voice name)")
    s.add_argument("item", type=int)
    s.add_argument("--character", required=True)
    s.add_argument("--name", help="voice name (default: <character>-instant)")
    s.add_argument("--model", help="Pocket TTS model config (default: english; `weaver models` says what to fetch)")


EXTRA_PARSERS.append(add_parsers)


@command("clone")
def cmd_clone(a) -> int:
    from .cli_voices import report_check

    svc = service()
    prepared = svc.prepare_instant_voice(a.item, a.character, name=a.name, language=a.model)
    with progress_bar("cloning") as listener:
        outcome = prepared.run(svc, listener, None)
    r = outcome.result
    ref = r["reference"]
    base = f" beside the shared {r['base_bytes'] / 1e6:.0f} MB Pocket model" if r.get("base_bytes") else ""
    err(f"voice '{r['voice']}' ({r['character']}): reference {ref['seconds']:.1f} s from {len(ref['clips'])} clip(s), "
        f"voice state {r['state_bytes'] / 1e6:.2f} MB{base}; ready in {r['seconds_to_voice']:.1f} s"
        + (" ({})".format(", ".join(f"{k.removesuffix('_s').replace('_', ' ')} {v:.1f} s" for k, v in r["timings"].items()))
           if r.get("timings") else ""))
    return report_check(r["voice"], r.get("check") or {})
