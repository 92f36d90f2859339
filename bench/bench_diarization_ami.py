"""Offline diarization DER on the ten 30 s AMI excerpts (shared test data), per file + mean, beside pyannote's figures.

DER: pyannote.metrics DiarizationErrorRate, collar 0, overlapping reference speech scored, inside each file's UEM
(the first 30 s). "mean" is the unweighted mean of the per-file DERs; "total" pools the error time of all files.

pyannote's published DER (collar 0, overlap scored) on the AMI test set (whole meetings, not these excerpts), from
the benchmark table of the pyannote/speaker-diarization-community-1 and pyannote/speaker-diarization-3.1 model cards
(huggingface.co/pyannote/...; also in github.com/pyannote/pyannote-audio README.md):
  AMI IHM (headset mix): 3.1 18.8 %, community-1 17.0 %   AMI SDM (far field): 3.1 22.4 %, community-1 19.9 %
Those pipelines need a gated download; ours runs on models shipped in PyPI wheels (Silero VAD, Resemblyzer).

Run: .venv/bin/python bench/bench_diarization_ami.py [--ami DIR] [--cache DIR] [--overlap | --segmentation]
Measured 2026-12-05: default 34.3 % pooled; --overlap 31.0 % pooled / 38.2 % mean; --segmentation (pyannote-style
local speakers, pipeline.stages.local_speakers) 26.7 % pooled / 37.7 % mean.
VAD regions and window embeddings are cached per file and per window setting (--cache; default
$WEAVER_FIXTURE_CACHE/ami-diar or ~/.cache/voice-weaver/ami-diar), so re-runs while tuning only re-cluster.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

PUBLISHED = {"pyannote 3.1 (AMI IHM)": 0.188, "pyannote community-1 (AMI IHM)": 0.170,
             "pyannote 3.1 (AMI SDM)": 0.224, "pyannote community-1 (AMI SDM)": 0.199}


OVERLAP_PARAMS = {"method": "ahc", "threshold": 0.35, "min_cluster_seconds": 2.0, "overlap_count": 1.5}


def default_ami() -> Path:
    for cand in (os.environ.get("WEAVER_AMI_DIR"), Path(__file__).resolve().parents[2] / "shared" / "data" / "ami-train",
                 "/work/shared/data/ami-train"):
        if cand and (Path(cand) / "train.rttm").is_file():
            return Path(cand)
    raise SystemExit("AMI excerpts not found: pass --ami DIR (trn00..trn09.wav, train.rttm, train.uem)")


def default_cache() -> Path:
    base = os.environ.get("WEAVER_FIXTURE_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "voice-weaver") / "ami-diar"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ami", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--oracle-vad", action="store_true", help="use the reference speech regions instead of VAD")
    ap.add_argument("--overlap", action="store_true",
                    help="overlap-aware: speaker counts from the segmentation model in the whisperX wheel, AHC 0.35")
    ap.add_argument("--segmentation", action="store_true",
                    help="the 'segmentation' backend: pyannote-style local speakers (whisperX wheel's model) + Resemblyzer")
    a = ap.parse_args(argv)
    from ami_diar import report

    ami = a.ami or default_ami()
    t0 = time.perf_counter()
    params = OVERLAP_PARAMS if a.overlap else None
    rows = report(ami, cache=a.cache or default_cache(), oracle_vad=a.oracle_vad, overlap=a.overlap, params=params,
                  backend="segmentation" if a.segmentation else None)
    dt = time.perf_counter() - t0
    print(f"{'file':6} {'spk ref/hyp':>11} {'DER':>7} {'miss':>7} {'fa':>7} {'conf':>7}")
    for r in rows["files"]:
        print(f"{r['uri']:6} {r['ref_speakers']:>5}/{r['hyp_speakers']:<5} {r['der']:7.1%} {r['miss']:7.1%} "
              f"{r['false_alarm']:7.1%} {r['confusion']:7.1%}")
    print(f"mean   {'':11} {rows['mean']:7.1%}   total {rows['total']:.1%} (miss {rows['miss']:.1%}, "
          f"fa {rows['false_alarm']:.1%}, confusion {rows['confusion']:.1%})   {dt:.1f} s")
    for k, v in PUBLISHED.items():
        print(f"  published {k}: {v:.1%} (full AMI test meetings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
