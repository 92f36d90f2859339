"""Import time vs subtitle cue count (1k, 10k, 50k): parse, import into a real library, sync and attribution.

Each step is timed per cue count and printed with its time per cue (µs) and that figure relative to the smallest
count: a step that stays linear keeps a ratio near 1, a quadratic one grows with the count (×10 at 10k, ×50 at
50k). The import is the real job (``Service.ingest(..., analyze=False)``) on a generated 8 kHz WAV long enough to
hold every cue; "import" is its subtitles + commit stages (the decode stage depends on the audio length only).
Sync is the speech-region estimator (one VAD-like region per cue); attribution gets one diarization turn per cue.

Times are CPU seconds of this process (``time.process_time``: on a shared machine wall time mostly measures the
neighbours); the wall time of the whole import is printed beside it.

Run: .venv/bin/python bench/bench_cue_import.py [--counts 1000,10000,50000]
Goal: 50k cues import in ≤ 5 s, per-cue ratios ≈ 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

SPACING = 0.03  # seconds between cue starts
NAMES = ["ALICE", "BORIS", "CLARA"]


def write_cues(path: Path, n: int) -> float:
    """An SRT with n cues (a third with SDH name cues); returns the media duration needed to hold them."""

    def ts(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    blocks = []
    for i in range(n):
        s = 0.5 + i * SPACING
        cue = f"{NAMES[i % 3]}: " if i % 3 == 0 else ""
        blocks.append(f"{i + 1}\n{ts(s)} --> {ts(s + 0.025)}\n{cue}line number {i} says word{i % 97}\n")
    path.write_text("\n".join(blocks), encoding="utf-8")
    return 1.0 + n * SPACING


def write_media(path: Path, duration: float) -> None:
    from pipeline.media import write_audio

    rate = 8000
    t = np.arange(int(duration * rate)) / rate
    write_audio(path, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)


def bench(n: int, work: Path) -> dict[str, float]:
    from pipeline.text.attribution import attribute
    from pipeline.service import Service
    from pipeline.text.subtitles import read_subtitle_file
    from pipeline.text.sync import estimate_sync
    from pipeline.types import Diarization, Region, Turn

    srt, wav = work / f"cues{n}.srt", work / f"media{n}.wav"
    duration = write_cues(srt, n)
    write_media(wav, duration)
    out: dict[str, float] = {}

    t = time.process_time()
    doc = read_subtitle_file(srt)
    out["parse"] = time.process_time() - t
    assert len(doc.lines) == n, (len(doc.lines), n)

    svc = Service(home=work / f"lib{n}")
    t, w = time.process_time(), time.perf_counter()
    res = svc.ingest(str(wav), subtitles=str(srt), analyze=False)
    out["ingest (parse+decode+commit)"] = time.process_time() - t
    out["  wall"] = time.perf_counter() - w
    secs = {r["name"]: r["seconds"] for r in svc.lib.db.query(
        "SELECT name, seconds FROM job_stages WHERE job_id = ?", [res.job_id])}
    out["  wall subtitles+commit"] = secs["subtitles"] + secs["commit"]
    got = svc.lib.db.execute("SELECT count(*) FROM segments WHERE media_id = ?", [res.result["media_id"]]).fetchone()[0]
    assert got == n, (got, n)
    svc.lib.close()

    lines = doc.lines
    regions = [Region(ln.start + 0.004, ln.end + 0.004) for ln in lines]
    t = time.process_time()
    estimate_sync(lines, speech=regions, duration=duration)
    out["sync (speech)"] = time.process_time() - t

    dia = Diarization([Turn(ln.start, ln.end, f"SPK{i % 3}") for i, ln in enumerate(lines)])
    t = time.process_time()
    attribute(lines, diarization=dia)
    out["attribution"] = time.process_time() - t
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="1000,10000,50000")
    args = ap.parse_args()
    counts = [int(x) for x in args.counts.split(",")]
    rows: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cues-") as d:
        for n in counts:
            rows[n] = bench(n, Path(d))
            print(f"{n} cues: " + ", ".join(f"{k} {v:.2f} s" for k, v in rows[n].items()), flush=True)
    base = counts[0]
    print(f"\n{'step':28s}" + "".join(f"{n:>10d} cues" for n in counts) + "   µs/cue at each count, ratio to the first")
    for step in rows[base]:
        per = [rows[n][step] / n * 1e6 for n in counts]
        cells = "".join(f"{p:9.1f}µs" + f"({p / per[0]:4.1f}x)" for p in per)
        print(f"{step:28s}{cells}")
    big = max(counts)
    r = rows[big]
    print(f"\n{big} cues: whole import {r['ingest (parse+decode+commit)']:.2f} s CPU ({r['  wall']:.2f} s wall), "
          f"subtitles+commit stages {r['  wall subtitles+commit']:.2f} s wall (goal ≤ 5 s)")


if __name__ == "__main__":
    main()
