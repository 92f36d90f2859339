"""Lines that match their audio (issue 12) on the three-voice fixture movie, before/after the utterance stage.

Run: .venv/bin/python bench/bench_lines.py [--before] [--scenarios release+script,release,accurate+script]
Scenarios: subtitles made like a real release from the truth (tests/line_metrics.release_cues: condensed and
split cues) with the screenplay, the same without it, the accurate subtitles with the screenplay, and the movie's
audio without subtitles (ASR lines, as a capture) with the screenplay.
Prints per character precision/recall, WER of the line texts against the spoken text, speech-edge error
median/p95, how many true lines came out split. ``--before`` runs the chain without the utterance stage
(AnalysisOptions(verbatim=False): the lines as they were before it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run(scenario: str, movie, tmp: Path, verbatim: bool, subtitles: str | Path | None = None) -> dict:
    """Ingest + analyse ``movie`` as ``scenario`` says (``subtitles``: this file instead); its measures, its
    segment rows under "rows", and the Service and media id ("service", "media_id")."""
    from pipeline.service import Service
    from pipeline.workflows.analysis import AnalysisOptions
    from tests.fixtures.movie import write_srt
    from tests.line_metrics import measure, release_cues

    svc = Service(home=tmp / f"home-{scenario}-{int(verbatim)}")
    if DIARIZER:
        from pipeline.config import Settings

        settings = Settings.load(svc.lib.home)
        settings.backends["diarize"] = DIARIZER
        settings.save(svc.lib.home)
    kw = {}
    if subtitles is not None:
        kw["subtitles"] = str(subtitles)
    elif scenario.startswith("release"):
        cues, _ = release_cues(movie.lines)
        kw["subtitles"] = str(write_srt(tmp / "release.srt", cues))
    media = str(movie.movie)
    if scenario.startswith("capture"):  # no subtitles: ASR lines, as a capture
        import soundfile as sf

        speech, rate = sf.read(str(movie.dialogue_wav), dtype="float32")
        bed, _ = sf.read(str(movie.music_wav), dtype="float32")
        media = str(tmp / "capture.wav")
        sf.write(media, speech + bed, rate)
    if scenario.endswith("+script"):
        kw["script"] = str(movie.screenplay_txt)
    out = svc.ingest(media, analysis=AnalysisOptions(verbatim=verbatim), **kw)
    segs = svc.segments(out.result["media_id"])
    if VERBOSE:
        for s in segs:
            print(f"  {s['start']:7.2f} {s['end']:7.2f} {s['character'] or s['speaker'] or '-':6} {s.get('text_source')}"
                  f" {s.get('text_score')} {'CHECK ' if s.get('check_text') else ''}{s['text']}")
    return {**measure(segs, movie.lines, movie.characters), "rows": segs, "service": svc,
            "media_id": out.result["media_id"]}


VERBOSE = False
DIARIZER = ""  # a diarize backend by name ("" = the default)


def main() -> None:
    from tests.fixtures.movie import cached_movie
    from tests.line_metrics import describe

    ap = argparse.ArgumentParser()
    ap.add_argument("--before", action="store_true", help="also run without the utterance stage")
    ap.add_argument("--scenarios", default="release+script,release,accurate+script,capture+script")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every line")
    a = ap.parse_args()
    global VERBOSE
    VERBOSE = a.verbose
    movie = cached_movie()
    with tempfile.TemporaryDirectory() as d:
        for scenario in a.scenarios.split(","):
            for verbatim in ([False, True] if a.before else [True]):
                t = time.time()
                m = run(scenario, movie, Path(d), verbatim)
                print(describe(f"{scenario} {'after' if verbatim else 'before'} ({time.time() - t:.0f} s)", m), flush=True)


if __name__ == "__main__":
    main()
