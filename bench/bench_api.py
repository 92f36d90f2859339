"""Panel API latency with a 10 000-clip library: p50/p95 per main view, and page load time.

Run: .venv/bin/python bench/bench_api.py [--clips 10000] [--requests 200]
Goal: p95 ≤ 50 ms for every view.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.library.lines import insert_segment  # noqa: E402
from pipeline.media import write_audio  # noqa: E402
from pipeline.library import Library, dumps, now  # noqa: E402
from pipeline.types import Line, Word  # noqa: E402
from web_ui.server import PanelServer  # noqa: E402


def build_library(home: Path, clips: int, per_item: int = 2000) -> list[int]:
    """Fill a library with synthetic items (short silent audio) holding `clips` segments in all."""
    lib = Library(home)
    ids = []
    rng = np.random.default_rng(0)
    names = ["ALICE", "BORIS", "CLARA", "DMITRI", "EVE"]
    for item in range((clips + per_item - 1) // per_item):
        n = min(per_item, clips - item * per_item)
        with lib.atomic() as db:
            db["media"].insert({"kind": "file", "title": f"bench {item}", "fingerprint": f"bench-{item}", "duration": n * 3.0,
                                "created_at": now(), "meta": "{}", "channel_mode": "mix", "dialogue_rate": 16000})
            mid = db.execute("SELECT last_insert_rowid()").fetchone()[0]
            rel = f"media/{mid}"
            db.execute("UPDATE media SET dialogue_path=?, analysis_path=? WHERE id=?", [f"{rel}/dialogue.flac", f"{rel}/analysis.flac", mid])
            char_ids = {}
            for nm in names:
                db.execute("INSERT INTO characters (media_id, name) VALUES (?, ?)", [mid, nm])
                char_ids[nm] = db.execute("SELECT last_insert_rowid()").fetchone()[0]
            for i in range(n):
                t = i * 3.0
                ln = Line(t, t + 2.0, f"line {i} of item {item}", words=[Word(t, t + 1, "line"), Word(t + 1, t + 2, str(i))])
                sid = insert_segment(db, mid, ln, line_id=None, origin="subtitle", idx=i)
                db.execute("UPDATE segments SET character_id = ?, attribution_source='script', confidence=0.9 WHERE id = ?",
                           [char_ids[names[int(rng.integers(len(names)))]], sid])
        write_audio(lib.media_dir(mid) / "dialogue.flac", np.zeros(int(n * 3.0 * 16000) // 50, dtype=np.float32), 16000)
        ids.append(mid)
    lib.close()
    return ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=10000)
    ap.add_argument("--requests", type=int, default=100)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ids = build_library(Path(tmp), a.clips)
        print(f"built a {a.clips}-clip library in {time.perf_counter() - t0:.1f} s ({len(ids)} items)")
        server = PanelServer(home=tmp).start()
        try:
            # TCP_NODELAY on the client: without it httpx's split writes meet delayed ACKs (+40 ms per request)
            transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
            client = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", transport=transport,
                                  headers={"Authorization": f"Bearer {server.token}"})
            clip_id = client.get(f"/api/media/{ids[0]}/segments").json()[0]["clip_id"]
            views = {
                "library GET /api/media": "/api/media",
                "item GET /api/media/{id}": f"/api/media/{ids[0]}",
                "characters": f"/api/media/{ids[0]}/characters",
                "character clips (segments?character=)": f"/api/media/{ids[0]}/segments?character=ALICE",
                "transcript (all segments)": f"/api/media/{ids[0]}/segments",
                "speakers": f"/api/media/{ids[0]}/speakers",
                "clip": f"/api/clips/{clip_id}",
                "jobs": "/api/jobs",
            }
            print(f"{'view':42s} {'p50 ms':>8s} {'p95 ms':>8s}  goal p95 ≤ 50 ms")
            for name, url in views.items():
                times = []
                for _ in range(a.requests):
                    t = time.perf_counter()
                    r = client.get(url)
                    times.append((time.perf_counter() - t) * 1000)
                    r.raise_for_status()
                times.sort()
                p95 = times[int(0.95 * (len(times) - 1))]
                print(f"{name:42s} {statistics.median(times):8.1f} {p95:8.1f}  {'ok' if p95 <= 50 else 'SLOW'}")
            t = time.perf_counter()
            page = client.get(f"/?token={server.token}")
            assets = [client.get(f"/static/{n}") for n in ("app.js", "style.css", "transcript.js", "characters.js")]
            client.get("/api/media")
            client.get("/api/settings")
            print(f"page load (html + modules + first API calls): {(time.perf_counter() - t) * 1000:.1f} ms, "
                  f"{len(page.content) + sum(len(x.content) for x in assets)} bytes")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
