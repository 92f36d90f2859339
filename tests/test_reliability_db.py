"""Reliability of database writes, jobs and resume (issue #16), on a real library file and real processes.

- concurrent writers: the panel (a real uvicorn server, several client threads) edits an item while a CLI
  `weaver ingest` of another file runs in a second process; threads and processes doing read-then-write
  transactions at once; a library written by the previous schema migrates keeping its data;
- a deleted item takes its jobs with it and its id is never handed out again;
- a kill between the commit transaction and its stage record resumes into the analysis;
- a full disk (a real small tmpfs, or RLIMIT_FSIZE where mounting is not allowed) leaves no partial files, no
  'running' job, and the library unchanged; cancelling a job whose process is gone frees its work folder.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from pipeline.jobs import JobRunner
from pipeline.library import MIGRATIONS, Library, LibraryDatabase

REPO = Path(__file__).resolve().parents[1]


# -- helpers ---------------------------------------------------------------------------------------
def _ts(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def make_media(path: Path, seconds: float, n_lines: int, *, freq: int = 440, noise: bool = False) -> tuple[Path, Path]:
    """An MKV (FLAC audio: a tone, or stereo white noise that does not compress) and an SRT of n_lines cues."""
    srt = path.with_suffix(".srt")
    step = seconds / n_lines
    srt.write_text("".join(f"{i + 1}\n{_ts(i * step + 0.05)} --> {_ts((i + 0.8) * step)}\nline {i} of {path.stem}\n\n"
                           for i in range(n_lines)), encoding="utf-8")
    source = (f"anoisesrc=d={seconds}:c=white:r=48000:a=0.5" if noise
              else f"sine=frequency={freq}:sample_rate=48000:duration={seconds}")
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", source,
                    *(["-ac", "2"] if noise else []), "-c:a", "flac", str(path)], check=True, timeout=120)
    return path, srt


def weaver(home: Path, *args, check: bool = True, env: dict | None = None, timeout: float = 300,
           preexec_fn=None) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "trayapp", *map(str, args)], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "WEAVER_HOME": str(home), **(env or {})}, cwd=REPO, preexec_fn=preexec_fn)
    if check and r.returncode != 0:
        raise AssertionError(f"weaver {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}")
    return r


def stall_then_kill(home: Path, point: str, *args) -> None:
    """Run `weaver ingest ...` until the job stalls at `point` (WEAVER_TEST_STALL_AFTER), then kill -9 it."""
    proc = subprocess.Popen([sys.executable, "-m", "trayapp", "ingest", *map(str, args)], cwd=REPO, text=True,
                            env={**os.environ, "WEAVER_HOME": str(home), "WEAVER_TEST_STALL_AFTER": point},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline().strip()
        assert line == f"stalled after {point}", (line, proc.stderr.read() if proc.poll() is not None else "")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def last_line(r: subprocess.CompletedProcess) -> str:
    return r.stdout.strip().splitlines()[-1]


def texts(lib: Library, media_id: int) -> list[str]:
    return [r[0] for r in lib.db.execute("SELECT text FROM segments WHERE media_id = ? ORDER BY start", [media_id])]


# -- 1. concurrent writers -------------------------------------------------------------------------
STRESS = textwrap.dedent("""
    import json, sys, threading
    sys.path.insert(0, sys.argv[1])
    from pipeline.library import Library
    from pipeline.jobs import JobRunner
    home, tag, threads, rounds = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    start = threading.Barrier(threads)
    errors = []

    def work(t):
        lib = Library(home)
        runner = JobRunner(lib)
        start.wait()
        try:
            for i in range(rounds):
                with lib.atomic() as db:  # read, then write what was read: the pattern that could not upgrade
                    n = db.execute("SELECT n FROM counter WHERE id = 1").fetchone()[0]
                    db.execute("UPDATE counter SET n = ? WHERE id = 1", [n + 1])
                    db["voiceprints"].insert({"name": f"{tag}-{t}-{i}", "embedding": b"x", "created_at": 0})
                job = runner.create("stress", {"i": i}, key=f"{tag}-{t}-{i}")
                runner._update(job, progress=0.5, message="half")
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
        finally:
            lib.close()

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts: t.start()
    for t in ts: t.join()
    print(json.dumps(errors))
""")


def test_threads_and_processes_doing_read_then_write_transactions_at_once(tmp_path):
    lib = Library(tmp_path)
    with lib.atomic() as db:
        db.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        db.execute("INSERT INTO counter VALUES (1, 0)")
    procs, threads, rounds = 3, 4, 40
    runs = [subprocess.Popen([sys.executable, "-c", STRESS, str(REPO), str(tmp_path), f"p{p}", str(threads), str(rounds)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in range(procs)]
    outs = [r.communicate(timeout=180) for r in runs]
    for (out, err), r in zip(outs, runs):
        assert r.returncode == 0, err
        assert json.loads(out) == [], out  # no "database is locked", nothing else either
    total = procs * threads * rounds
    assert lib.db.execute("SELECT n FROM counter").fetchone()[0] == total  # no lost update
    assert lib.counts()["voiceprints"] == total
    assert lib.db.execute("SELECT count(*) FROM jobs WHERE progress = 0.5").fetchone()[0] == total


def test_atomic_nests_as_savepoints_and_holds_the_write_lock_from_the_start(tmp_path):
    lib, other = Library(tmp_path), Library(tmp_path)
    with lib.atomic() as db:
        db["voiceprints"].insert({"name": "outer", "embedding": b"x", "created_at": 0})
        with pytest.raises(RuntimeError):
            with lib.atomic() as inner:
                inner["voiceprints"].insert({"name": "inner", "embedding": b"x", "created_at": 0})
                raise RuntimeError("undo the inner block only")
        # the write lock is ours from BEGIN on: another connection cannot start a write transaction meanwhile
        other.db.busy_wait = 0.2
        other.db.execute("PRAGMA busy_timeout=50")
        with pytest.raises(Exception, match="locked"):
            with other.atomic():
                pass
    assert [r[0] for r in lib.db.execute("SELECT name FROM voiceprints")] == ["outer"]


def _edit_until(stop: threading.Event, base: str, token: str, clip_ids: list[int], seg_ids: list[int], t: int,
                log: dict) -> None:
    """One panel user: reassign lines, trim clips, keep/reject clips of the imported item until told to stop."""
    rng = random.Random(t)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        i = 0
        while not stop.is_set() or i < 30:
            i += 1
            k = rng.randrange(3)
            if k == 0:
                seg = rng.choice(seg_ids)
                name = f"T{t}-{i % 4}"
                r = http.post(f"/api/segments/{seg}/reassign", json={"character": name})
                key, value = ("segment", seg), name
            elif k == 1:
                clip = rng.choice(clip_ids)
                c = http.get(f"/api/clips/{clip}")
                log["codes"].append(c.status_code)
                if c.status_code != 200:
                    continue
                start = round(c.json()["segment_start"] + rng.uniform(-0.02, 0.02), 3)
                r = http.patch(f"/api/clips/{clip}", json={"start": start, "relative": False})
                key, value = ("trim", clip), start
            else:
                clip = rng.choice(clip_ids)
                status = rng.choice(["kept", "rejected", "pending"])
                r = http.patch(f"/api/clips/{clip}", json={"status": status})
                key, value = ("status", clip), status
            log["codes"].append(r.status_code)
            if r.status_code == 200:
                # an edit that changes nothing (the line already had that character) records no undo entry
                log["reassigns"] += key[0] == "segment" and log["last"].get(key) != value
                log["last"][key] = value
            else:
                log["errors"].append(f"{r.status_code} {r.text[:200]}")


@pytest.mark.slow
def test_panel_edits_while_a_cli_ingest_runs_in_another_process(tmp_path):
    """The panel's label/trim/keep-reject edits of an imported item keep working (no 5xx) while `weaver ingest`
    of a second, long file with many lines writes its progress and its big commit; the import completes and
    every edit landed."""
    from pipeline.service import Service
    from web_ui.server import PanelServer

    home = tmp_path / "home"
    first, first_srt = make_media(tmp_path / "first.mkv", 12, 12)
    big, big_srt = make_media(tmp_path / "big.mkv", 150, 1500, noise=True)
    svc = Service(home=home)
    item = svc.ingest(str(first), subtitles=str(first_srt), analyze=False).result["media_id"]
    segs = svc.segments(item)
    seg_ids = [s["id"] for s in segs]
    clip_ids = [r[0] for r in svc.lib.db.execute("SELECT id FROM clips WHERE media_id = ?", [item])]
    assert len(seg_ids) == len(clip_ids) == 12

    server = PanelServer(home=home).start()
    stop = threading.Event()
    n_threads = 4
    parts = [{"codes": [], "errors": [], "last": {}, "reassigns": 0} for _ in range(n_threads)]
    try:
        users = [threading.Thread(target=_edit_until, args=(stop, f"http://127.0.0.1:{server.port}", server.token,
                                                             clip_ids[t::n_threads], seg_ids[t::n_threads], t, parts[t]))
                 for t in range(n_threads)]  # each user owns its own clips and lines, so its last edit must stick
        for u in users:
            u.start()
        t0 = time.monotonic()
        ingest = weaver(home, "ingest", big, "--subtitles", big_srt, "--no-analysis", check=False)
        ingest_seconds = time.monotonic() - t0
        during = sum(len(p["codes"]) for p in parts)
        stop.set()
        for u in users:
            u.join(120)
    finally:
        stop.set()
        server.stop()
    codes = [c for p in parts for c in p["codes"]]
    errors = [e for p in parts for e in p["errors"]]
    print(f"{len(codes)} requests ({during} during the {ingest_seconds:.1f} s import)")
    assert ingest.returncode == 0, ingest.stderr
    assert during >= 50, "the edits did not overlap the import"
    assert not errors and set(codes) == {200}, errors[:5]

    lib = Library(home)
    big_item = int(last_line(ingest))
    assert big_item != item
    assert lib.db.execute("SELECT count(*) FROM segments WHERE media_id = ?", [big_item]).fetchone()[0] == 1500
    job = lib.db.execute("SELECT state FROM jobs WHERE media_id = ? AND kind = 'ingest'", [big_item]).fetchone()
    assert job == ("done",)
    last = {k: v for p in parts for k, v in p["last"].items()}
    assert last
    for (what, row_id), value in last.items():
        if what == "segment":
            got = lib.db.execute("SELECT c.name FROM segments s JOIN characters c ON c.id = s.character_id"
                                 " WHERE s.id = ?", [row_id]).fetchone()[0]
        elif what == "trim":
            got = round(lib.db.execute("SELECT s.start + c.trim_start FROM clips c JOIN segments s ON s.id = c.segment_id"
                                       " WHERE c.id = ?", [row_id]).fetchone()[0], 3)
        else:
            got = lib.db.execute("SELECT status FROM clips WHERE id = ?", [row_id]).fetchone()[0]
        assert got == value, (what, row_id)
    edits = lib.db.execute("SELECT count(*) FROM edits WHERE media_id = ?", [item]).fetchone()[0]
    assert edits == sum(p["reassigns"] for p in parts) > 0  # one undo record per reassignment, none lost


def test_a_library_of_the_previous_schema_migrates_keeping_rows_indexes_and_search(tmp_path):
    """The AUTOINCREMENT migration rebuilds the id tables: rows, foreign keys, indexes, FTS triggers stay."""
    conn = sqlite3.connect(str(tmp_path / "library.db"), isolation_level=None)
    old = LibraryDatabase(conn)
    old.execute("PRAGMA journal_mode=WAL")
    before = next(i for i, m in enumerate(MIGRATIONS) if m.__name__ == "_migration_autoincrement")
    with old.atomic():
        for version in range(before):
            MIGRATIONS[version](old)
        old.execute(f"PRAGMA user_version={before}")
    old.execute("PRAGMA foreign_keys=ON")
    with old.atomic():
        for i in (1, 2, 3):
            old["media"].insert({"kind": "file", "title": f"m{i}", "fingerprint": f"f{i}", "created_at": i, "meta": "{}"})
            old["characters"].insert({"media_id": i, "name": "ALICE"})
        old["scripts"].insert({"title": "A Script", "created_at": 0})
        old["script_lines"].insert({"script_id": 1, "idx": 0, "character": "ALICE", "text": "the quick brown fox"})
        old["jobs"].insert({"kind": "analyze", "key": "analyze:4", "params": "{}", "created_at": 0, "updated_at": 0})
    old.execute("DELETE FROM media WHERE id = 3")  # id 3 freed: a rowid table would hand it out again
    indexes = sorted(r[0] for r in old.execute("SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger')"))
    conn.close()

    lib = Library(tmp_path)
    assert lib.schema_version == len(MIGRATIONS)
    assert [r["title"] for r in lib.db.query("SELECT title FROM media ORDER BY id")] == ["m1", "m2"]
    assert lib.counts()["characters"] == 2  # the cascade ran before; nothing lost in the rebuild
    assert sorted(r[0] for r in lib.db.execute("SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger')")) == indexes
    assert lib.db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert lib.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    hits = list(lib.db.query("SELECT rowid FROM script_lines_fts WHERE script_lines_fts MATCH 'fox'"))
    assert hits == [{"rowid": 1}]
    with lib.atomic() as db:
        db["script_lines"].insert({"script_id": 1, "idx": 1, "character": "BOB", "text": "lazy dogs"})
        db["media"].insert({"kind": "file", "title": "new", "created_at": 9, "meta": "{}"})
        new_id = db.execute("SELECT last_insert_rowid()").fetchone()[0]
    assert new_id == 5  # above the freed 3 and above the 4 a job still remembers
    assert list(lib.db.query("SELECT rowid FROM script_lines_fts WHERE script_lines_fts MATCH 'dogs'")) == [{"rowid": 2}]
    with pytest.raises(sqlite3.IntegrityError):
        with lib.atomic() as db:
            db.execute("INSERT INTO characters (media_id, name) VALUES (99, 'GHOST')")


# -- 2. deleting an item takes its jobs; ids are never reused ---------------------------------------
@pytest.mark.slow
def test_deleted_items_interrupted_job_never_resumes_onto_a_new_item(tmp_path):
    from pipeline.service import Service

    home = tmp_path / "home"
    movie, movie_srt = make_media(tmp_path / "movie.mkv", 20, 21, freq=300)
    tone, tone_srt = make_media(tmp_path / "tone.mkv", 30, 3, freq=700)
    # the import with analysis is killed after the analysis found its lines (all but the save stage done)
    stall_then_kill(home, "attribute", movie, "--subtitles", movie_srt)
    lib = Library(home)
    (old_id,) = lib.db.execute("SELECT id FROM media").fetchone()
    (job_id,) = lib.db.execute("SELECT id FROM jobs").fetchone()
    assert JobRunner(lib).find_resumable(lib.db.execute("SELECT key FROM jobs").fetchone()[0]) == job_id
    assert lib.work_dir(job_id).exists()

    weaver(home, "rm", old_id)
    assert lib.counts()["jobs"] == lib.counts()["job_stages"] == 0
    assert not lib.work_dir(job_id).exists() and not any((home / "work").iterdir())

    svc = Service(home=home)
    tone_id = svc.ingest(str(tone), subtitles=str(tone_srt), analyze=False).result["media_id"]
    assert tone_id > old_id
    assert texts(lib, tone_id) == [f"line {i} of tone" for i in range(3)]
    # the same movie again starts afresh (no resume of the deleted item's job) under yet another id
    again = svc.ingest(str(movie), subtitles=str(movie_srt), analyze=False)
    assert not again.resumed
    movie_id = again.result["media_id"]
    assert movie_id > tone_id
    assert texts(lib, tone_id) == [f"line {i} of tone" for i in range(3)]
    assert len(texts(lib, movie_id)) == 21
    assert sorted(lib.files()) == sorted(f"media/{m}/{f}" for m in (tone_id, movie_id) for f in ("analysis.flac", "dialogue.flac"))


def test_deleting_an_item_removes_its_analyze_job_and_work_folder(tmp_path):
    from pipeline.service import Service

    a, a_srt = make_media(tmp_path / "a.mkv", 4, 2)
    svc = Service(home=tmp_path / "home")
    item = svc.ingest(str(a), subtitles=str(a_srt), analyze=False).result["media_id"]
    prepared = svc.prepare_analyze(item)  # queued, as the panel leaves it before its worker starts
    svc.lib.work_dir(prepared.job_id).mkdir(parents=True)
    svc.remove_media(item)
    assert svc.lib.db.execute("SELECT count(*) FROM jobs WHERE key = ?", [f"analyze:{item}"]).fetchone()[0] == 0
    assert not svc.lib.work_dir(prepared.job_id).exists()
    b, b_srt = make_media(tmp_path / "b.mkv", 4, 2, freq=880)
    item_b = svc.ingest(str(b), subtitles=str(b_srt), analyze=False).result["media_id"]
    assert item_b > item
    assert svc.runner.find_resumable(f"analyze:{item_b}") is None


# -- 3. a kill between the commit and its stage record ----------------------------------------------
@pytest.mark.slow
def test_kill_after_commit_before_its_record_resumes_into_the_analysis(tmp_path):
    home = tmp_path / "home"
    media, srt = make_media(tmp_path / "c.mkv", 10, 4, freq=500)
    stall_then_kill(home, "commit:unrecorded", media, "--subtitles", srt)
    lib = Library(home)
    assert lib.counts()["media"] == 1  # the commit transaction went through
    r = weaver(home, "ingest", media, "--subtitles", srt)
    assert "resumed" in r.stderr and "already" not in r.stderr
    item = int(last_line(r))
    assert lib.counts()["media"] == 1
    job = json.loads(weaver(home, "jobs", "--json").stdout)[0]
    assert job["state"] == "done" and job["media_id"] == item
    stages = [s for (s,) in lib.db.execute("SELECT name FROM job_stages WHERE job_id = ?", [job["id"]])]
    assert {"commit", "save"} <= set(stages)
    assert len(texts(lib, item)) == 4


# -- 4. a full disk -----------------------------------------------------------------------------
def _small_disk(path: Path, size_mb: int):
    """Mount a real tmpfs of size_mb at path; None where mounting is not allowed (then use RLIMIT_FSIZE)."""
    path.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


def _fsize_limit(mb: int):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (mb << 20, mb << 20))
    return limit


@pytest.mark.parametrize("limit", ["tmpfs", "rlimit"])
def test_disk_full_during_import_leaves_no_part_no_running_job_and_the_library_intact(tmp_path, limit):
    """A 4 MB tmpfs holds the library (where mounting is allowed, e.g. as root), else a 4 MB RLIMIT_FSIZE on
    the importing process (EFBIG instead of ENOSPC): the decoded audio does not fit either way."""
    from pipeline.service import Service

    disk = tmp_path / "disk"
    mounted = limit == "tmpfs" and _small_disk(disk, 4)
    if limit == "tmpfs" and not mounted:
        pytest.skip("mounting a tmpfs is not allowed here (the rlimit case covers it)")
    disk.mkdir(exist_ok=True)
    try:
        home = disk / "home"
        small, small_srt = make_media(tmp_path / "small.mkv", 3, 2)
        big, big_srt = make_media(tmp_path / "noise.mkv", 50, 5, noise=True)  # ≈ 7 MB of FLAC: does not fit
        svc = Service(home=home)
        item = svc.ingest(str(small), subtitles=str(small_srt), analyze=False).result["media_id"]
        lib = svc.lib
        content = lambda: ({k: v for k, v in lib.counts().items() if k not in ("jobs", "job_stages")}, lib.files())  # noqa: E731
        before = content()
        r = weaver(home, "ingest", big, "--subtitles", big_srt, "--no-analysis", check=False,
                   preexec_fn=None if mounted else _fsize_limit(4))
        print("mounted tmpfs" if mounted else "RLIMIT_FSIZE", r.stderr)
        assert r.returncode != 0
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("weaver: error:"), r.stderr
        assert "internal error" not in lines[0] and ("no space left" in lines[0] or "size limit" in lines[0]), lines[0]
        assert not [p for p in home.rglob("*") if p.name.endswith(".part")]
        assert not any((home / "work").iterdir())
        jobs = svc.jobs()  # what `weaver jobs` and the panel list
        assert jobs[0]["state"] == "failed" and jobs[0]["kind"] == "ingest", jobs[0]
        assert content() == before
        svc.remove_media(item)  # and the library still takes writes
        assert lib.files() == [] and lib.counts()["media"] == 0
        lib.close()
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], check=False)


def test_cancel_of_a_job_whose_process_is_gone_frees_its_work_folder(tmp_path):
    home = tmp_path / "home"
    media, srt = make_media(tmp_path / "d.mkv", 8, 3)
    stall_then_kill(home, "decode", media, "--subtitles", srt)
    lib = Library(home)
    (job_id,) = lib.db.execute("SELECT id FROM jobs").fetchone()
    assert lib.work_dir(job_id).exists() and any(lib.work_dir(job_id).rglob("*.flac"))
    assert lib.db.execute("SELECT state FROM jobs").fetchone()[0] == "running"  # as the killed process left it
    r = weaver(home, "jobs", "cancel", job_id)  # straight away: nobody listed (and so marked) the jobs before
    assert r.stdout.strip() == f"job {job_id}: cancelled"
    assert not lib.work_dir(job_id).exists()
    assert lib.counts()["media"] == 0
