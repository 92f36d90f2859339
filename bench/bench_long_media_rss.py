"""Peak memory and speed of import + analysis on long media: does RSS stay flat as the file gets longer?

Generates mostly-silent media of each duration (48 kHz stereo FLAC in MKV, a 300 s unit looped by stream copy so
10 hours cost seconds and a few MB): every unit opens with two short espeak-ng phrases in two voices, and a
matching SRT names them, so the import decodes, the analysis runs VAD, sync, alignment and diarization on real
speech, and ASR is skipped (the item has subtitles) — ``--asr`` drops the SRT to make ASR run over everything.

Each import runs as ``python -m trayapp ingest FILE --subtitles FILE.srt`` in a fresh library; peak RSS is that
process's ru_maxrss (os.wait4), speed is media seconds / wall seconds. Prints one row per duration and the ratio
RSS(longest)/RSS(shortest). ``--code DIR`` runs another checkout (e.g. /work/main for the code before windowing).

Run: .venv/bin/python bench/bench_long_media_rss.py --minutes 1 60 [600]

Measured 2026-12-02 (2 shared CPU cores, subtitled, same machine, back to back):
  windowed code:          1 min 630 MB 8.4x | 1 h 693 MB 32.3x realtime | RSS(1 h)/RSS(1 min) 1.10
  whole-file code before: 1 min 641 MB 4.5x | 1 h 1622 MB 34.3x realtime | RSS(1 h)/RSS(1 min) 2.53
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RATE = 48000
UNIT = 300.0  # seconds; 300 s * 48 kHz is a whole number of 4608-sample FLAC frames, so loops never drift
PHRASES = [("en+m3", "I never said the package was here, only that it would come."),
           ("en+f3", "Then where is it now, and who has the key to the shed?")]


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {r.stderr.strip()[-400:]}")


def make_unit(folder: Path) -> tuple[Path, list[tuple[float, float, str, str]]]:
    """A UNIT-second 48 kHz stereo FLAC: two phrases (one per voice) then silence; returns it and the phrase times."""
    import soundfile as sf

    cues, parts, t = [], [], 1.0
    for i, (voice, text) in enumerate(PHRASES):
        wav = folder / f"p{i}.wav"
        _run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text])
        d = sf.info(str(wav)).duration
        cues.append((t, t + d, voice, text))
        parts.append((t, wav))
        t += d + 0.8
    inputs, filters = [], []
    for i, (start, wav) in enumerate(parts):
        inputs += ["-i", str(wav)]
        ms = int(start * 1000)
        filters.append(f"[{i}]aresample={RATE},pan=stereo|c0=c0|c1=c0,adelay={ms}|{ms}[a{i}]")
    mix = "".join(f"[a{i}]" for i in range(len(parts)))
    graph = ";".join(filters) + f";{mix}amix=inputs={len(parts)}:normalize=0,apad=whole_dur={UNIT}[out]"
    unit = folder / "unit.flac"
    _run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *inputs, "-filter_complex", graph, "-map", "[out]",
          "-t", f"{UNIT}", "-ar", str(RATE), "-ac", "2", "-c:a", "flac", "-sample_fmt", "s16", str(unit)])
    return unit, cues


def srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def make_media(folder: Path, unit: Path, cues, seconds: float) -> tuple[Path, Path]:
    """``seconds`` of media (MKV, FLAC audio, stream copy of the looped unit) and its SRT."""
    loops = int(-(-seconds // UNIT))
    listing = folder / "concat.txt"
    listing.write_text(f"file '{unit}'\nduration {UNIT:.6f}\n" * loops)
    media = folder / f"long_{int(seconds)}s.mkv"
    _run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(listing),
          "-t", f"{seconds:.3f}", "-c", "copy", str(media)])
    rows, n = [], 0
    for k in range(loops):
        for a, b, _, text in cues:
            if k * UNIT + b <= seconds:
                n += 1
                rows.append(f"{n}\n{srt_time(k * UNIT + a)} --> {srt_time(k * UNIT + b)}\n{text}\n")
    srt = media.with_suffix(".srt")
    srt.write_text("\n".join(rows))
    return media, srt


def run_ingest(code: Path, media: Path, srt: Path | None, home: Path) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in KiB, exit code) of one `python -m trayapp ingest`."""
    cmd = [sys.executable, "-m", "trayapp", "ingest", str(media)] + (["--subtitles", str(srt)] if srt else [])
    env = {**os.environ, "WEAVER_HOME": str(home), "PYTHONPATH": str(code)}
    t = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        print(f"  ingest failed ({p.returncode}): {err.decode(errors='replace').strip()[-300:]}", file=sys.stderr)
    return wall, usage.ru_maxrss, p.returncode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 60.0])
    ap.add_argument("--code", type=Path, default=REPO, help="checkout whose pipeline/trayapp run the import")
    ap.add_argument("--asr", action="store_true", help="no SRT: the analysis transcribes the whole file")
    ap.add_argument("--keep", type=Path, help="generate media in this folder and keep it")
    a = ap.parse_args()
    for tool in ("ffmpeg", "espeak-ng"):
        if shutil.which(tool) is None:
            raise SystemExit(f"needs {tool}")
    folder = a.keep or Path(tempfile.mkdtemp(prefix="weaver-rss-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        unit, cues = make_unit(folder)
        print(f"code: {a.code}  ({'ASR over everything' if a.asr else 'subtitled: ASR skipped'})")
        print(f"{'media':>8s} {'wall s':>8s} {'x realtime':>11s} {'peak RSS MB':>12s}")
        rss = {}
        for minutes in a.minutes:
            media, srt = make_media(folder, unit, cues, minutes * 60.0)
            home = folder / f"home_{minutes:g}"
            shutil.rmtree(home, ignore_errors=True)
            wall, peak_kb, rc = run_ingest(a.code, media, None if a.asr else srt, home)
            rss[minutes] = peak_kb / 1024
            label = f"{minutes / 60:g} h" if minutes >= 60 else f"{minutes:g} min"
            print(f"{label:>8s} {wall:8.1f} {minutes * 60 / wall:10.1f}x {peak_kb / 1024:12.0f}"
                  + ("" if rc == 0 else "  (FAILED)"), flush=True)
            shutil.rmtree(home, ignore_errors=True)
            if not a.keep:
                media.unlink(missing_ok=True)
        if len(rss) > 1:
            lo, hi = min(rss), max(rss)
            print(f"RSS({hi:g} min) / RSS({lo:g} min) = {rss[hi] / rss[lo]:.2f}")
    finally:
        if not a.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
