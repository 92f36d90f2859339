"""`weaver dataset`, `weaver train`, `weaver clone` (instant voice), `weaver voices [list | rename | rm | restore |
purge | storage]` (voice management), `weaver say`."""

from __future__ import annotations

import argparse

from .commands import command, err, out, out_json, progress_bar, service


def add_parsers(sub) -> None:
    s = sub.add_parser("dataset", help="build a TTS dataset from a character's clips (prints the dataset id)")
    s.add_argument("item", type=int)
    s.add_argument("--character", required=True)
    s.add_argument("--min", type=float, default=2.0, help="shortest clip kept, seconds")
    s.add_argument("--max", type=float, default=15.0, help="longest clip kept, seconds")
    s.add_argument("--for", dest="for_backend", choices=["orpheus", "pocket-lora", "piper"], default="orpheus",
                   help="the TTS backend it is for (sets the sample rate: 24 kHz, or 22.05 kHz for piper)")
    s.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                   help="isolate the dialogue first (default: when a separation backend can run)")
    s.add_argument("--include-check-text", action="store_true",
                   help="keep lines marked 'check text' (no text source matched their audio)")
    s.add_argument("--show-rejected", action="store_true", help="list every rejected clip with its reason")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("train", help="fine-tune a voice (LoRA adapter) on a dataset (prints the voice name)")
    s.add_argument("name")
    s.add_argument("--dataset", type=int, required=True)
    s.add_argument("--backend", choices=["auto", "unsloth", "cpu", "pocket-lora"], default="auto",
                   help="unsloth: Orpheus on an NVIDIA GPU; pocket-lora: a LoRA on Pocket TTS, CPU-sized; cpu: Orpheus on a CPU (small bases only)")
    s.add_argument("--steps", type=int, default=60)
    s.add_argument("--save-every", type=int, default=20)
    s.add_argument("--base", help="base model folder or hub name (default: settings.voice_base_model); for pocket-lora the Pocket TTS language (default english)")
    s.add_argument("--snac", help="SNAC codec folder")
    s = sub.add_parser("voices", help="list voices (adapter size beside the base model size); rename, rm, restore, purge")
    s.add_argument("--json", action="store_true")
    add_voice_actions(s)
    s = sub.add_parser("say", help="speak text in a voice into an audio file")
    s.add_argument("voice")
    s.add_argument("text")
    s.add_argument("-o", "--output", required=True, help="output .wav/.flac/.mp3")
    s = sub.add_parser("clone", help="instant voice: clone a character's voice with Pocket TTS (prints the voice name)")
    s.add_argument("item", type=int)
    s.add_argument("--character", required=True)
    s.add_argument("--name", help="voice name (default: <character>-instant)")
    s.add_argument("--model", help="Pocket TTS model config (default: english; `weaver models` says what to fetch)")




@command("dataset")
def cmd_dataset(a) -> int:
    with progress_bar("building dataset") as listener:
        res = service().build_voice_dataset(a.item, a.character, min_s=a.min, max_s=a.max, for_backend=a.for_backend,
                                            isolate=a.isolate, include_check_text=a.include_check_text, listener=listener)
    s = res["summary"]
    if a.json:
        out_json(res)
    else:
        err(f"{s['kept']} clips kept ({s['minutes_kept']:.2f} min, {s['rate']} Hz), rejected: "
            + (", ".join(f"{k} {v}" for k, v in s["rejected"].items()) or "none") + f"; train {s['train']} / val {s['val']}")
        mos = f"mean {s['dnsmos_mean']:.2f}" if s.get("dnsmos_mean") is not None else s.get("dnsmos")
        iso = f"{s['isolation']} (kept on {s.get('isolated', 0)} of {s['kept']} clips)" if s.get("isolation") else "none"
        err(f"isolated with: {iso}; DNSMOS: {mos}; speaker check: {s.get('speaker_check')}")
        for c in s.get("rejected_clips", []) if a.show_rejected else []:
            where = f"clip {c['clip_id']}" if c.get("clip_id") is not None else f"{c['start']:.2f}s"
            err(f"  {where}: {c['reason']}" + (f" ({c['detail']})" if c.get("detail") else "") + f" — {c['text'][:60]}")
        if s.get("warning"):
            err(f"warning: {s['warning']}")
    out(str(res["id"]))
    return 0


@command("train")
def cmd_train(a) -> int:
    svc = service()
    prepared = svc.prepare_training(a.name, a.dataset, backend=a.backend, steps=a.steps, base_model=a.base,
                                    snac_dir=a.snac, save_every=a.save_every)
    with progress_bar("training") as listener:
        outcome = prepared.run(svc, listener, None)
    r = outcome.result
    base = f"{r['base_bytes'] / 1e6:.1f} MB" if r.get("base_bytes") else "shared"
    err(f"voice '{r['voice']}': adapter {r['adapter_bytes'] / 1e6:.2f} MB on a {base} base model")
    return report_check(r["voice"], r.get("check") or {})


def report_check(voice: str, check: dict) -> int:
    """The voice check's line on stderr, the voice name on stdout; exit status 1 when the voice failed it."""
    if check.get("ok") is None:
        err(f"voice check: {'; '.join(check.get('reasons') or ['not run'])}")
    else:
        err(f"voice check: {_check_line(check)}")
    out(voice)
    if check.get("ok") is False:
        err(f"voice '{voice}' failed its voice check: {'; '.join(check['reasons'])}. It is listed as failed and"
            " no persona gets it automatically.")
        return 1
    return 0


def _check_line(c: dict) -> str:
    """'similarity 0.81, WER 4%, DNSMOS 3.3' (n/a where not measured)."""
    def num(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    return f"similarity {num(c.get('similarity'), '.2f')}, WER {num(c.get('wer'), '.0%')}, DNSMOS {num(c.get('dnsmos'), '.2f')}"


@command("voices")
def cmd_voices(a) -> int:
    if getattr(a, "voices_action", None) not in (None, "list"):
        return run_voice_action(a)
    rows = service().voices()
    if a.json:
        out_json(rows)
        return 0
    for v in rows:
        size = f"built-in ({v.get('base_model')})" if v.get("builtin") else f"adapter {v.get('adapter_mb') or 0} MB / base {v.get('base_mb') or '?'} MB"
        if v.get("engine") == "pocket":
            size = f"voice state {v.get('adapter_mb') or 0} MB / Pocket model {v.get('base_mb') or '?'} MB"
        out(f"{v['name']:20s} {v.get('status', ''):9s} {size}  {v.get('character') or ''}")
        c = v.get("check")
        if not c:
            continue
        if c.get("ok") is None and c.get("reasons"):
            out(f"{'':20s} check: {'; '.join(c['reasons'])}")
            continue
        line = f"{'':20s} check: {_check_line(c)}"
        if c.get("default"):
            line += f"  | default voice on the same clips: {_check_line(c['default'])}"
        out(line)
        if c.get("ok") is False:
            out(f"{'':20s} failed: {'; '.join(c.get('reasons') or [])}")
    return 0


@command("say")
def cmd_say(a) -> int:
    from pathlib import Path

    import numpy as np

    from pipeline.media import encode_audio
    from pipeline.voices.synth import PAUSE_S

    parts, rate = [], 24000
    for audio, rate in service().say_stream(a.voice, a.text):
        if parts:
            parts.append(np.zeros(int(PAUSE_S * rate), dtype=np.float32))
        parts.append(audio)
    fmt = Path(a.output).suffix.lstrip(".").lower() or "wav"
    Path(a.output).write_bytes(encode_audio(np.concatenate(parts), rate, fmt))
    out(str(a.output))
    return 0

@command("clone")
def cmd_clone(a) -> int:
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


# -- voice management ---------------------------------------------------------------------------
def add_voice_actions(parser) -> None:
    acts = parser.add_subparsers(dest="voices_action", metavar="{list,rename,rm,restore,purge,storage}")
    s = acts.add_parser("list", help="list voices (the default)")
    s.add_argument("--json", action="store_true")
    s = acts.add_parser("rename", help="rename a voice (personas using it follow)")
    s.add_argument("old")
    s.add_argument("new")
    s = acts.add_parser("rm", help="delete a voice into the trash (restore brings it back)")
    s.add_argument("name")
    s.add_argument("--reassign", action="store_true", help="switch personas using it to the default voice")
    s = acts.add_parser("restore", help="bring a deleted voice back from the trash")
    s.add_argument("name")
    s = acts.add_parser("purge", help="empty the voice trash for good (or one NAME)")
    s.add_argument("name", nargs="?")
    s = acts.add_parser("storage", help="disk used per voice, per shared base model and by the trash")
    s.add_argument("--json", action="store_true")


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


def run_voice_action(a) -> int:
    svc = service()
    act = a.voices_action
    if act == "rename":
        r = svc.rename_voice(a.old, a.new)
        err(f"voice '{a.old}' is now '{a.new}'" + (f"; {r['personas']} persona(s) updated" if r["personas"] else ""))
        out(a.new)
    elif act == "rm":
        r = svc.delete_voice(a.name, reassign=a.reassign)
        moved = f"; persona(s) {', '.join(r['reassigned'])} now use the default voice" if r["reassigned"] else ""
        err(f"voice '{a.name}' moved to the trash (weaver voices restore {a.name!r} brings it back){moved}")
        out(a.name)
    elif act == "restore":
        r = svc.restore_voice(a.name)
        err(f"voice '{a.name}' restored" + (f"; {r['personas']} persona(s) use it again" if r["personas"] else ""))
        out(a.name)
    elif act == "purge":
        r = svc.purge_voices(a.name)
        err(f"trash emptied: {', '.join(r['purged']) or 'nothing'} ({_mb(r['bytes'])} freed)")
    elif act == "storage":
        st = svc.voice_storage()
        if a.json:
            out_json(st)
            return 0
        for v in st["voices"]:
            out(f"{v['name']:20s} {_mb(v['bytes']):>10s}  (voice {_mb(v['voice_bytes'])}, training files "
                f"{_mb(v['training_bytes'])})  base {v['base_model']}  personas: {', '.join(v['personas']) or '-'}")
        for b in st["bases"]:
            out(f"base {b['base_model']}: {_mb(b['bytes'])} shared by {', '.join(b['voices'])}")
        if st["default_personas"]:
            out(f"default voice: personas {', '.join(st['default_personas'])}")
        out(f"trash: {len(st['trash'])} voice(s), {_mb(st['trash_bytes'])}; total {_mb(st['total_bytes'])}")
    return 0
