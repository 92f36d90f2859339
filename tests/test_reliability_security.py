"""Paths, uploads, request bodies, hosts and secrets (issue #16) against a real panel server (uvicorn over HTTP),
a real SQLite library in a temp WEAVER_HOME and real files: every name that becomes a path is checked by the one
safe_child, bodies are capped while they stream, only loopback Host headers are served, and the library's
files are owner-only with the token in no log."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pipeline.errors import BadInputError
from pipeline.service import safe_child

REPO = Path(__file__).resolve().parents[1]
# what loopback socket buffers (client send + server receive, autotuned) can hold beyond what the server read
SLACK = 16 * 2**20
LIMITS = {"upload_limit": 2 * 2**20, "card_limit": 256 * 2**10, "listen_limit": 512 * 2**10, "json_limit": 128 * 2**10}


# -- helpers ---------------------------------------------------------------------------------------------------
def tree(root: Path) -> list[tuple]:
    """Every entry under root (links not followed): (relative path, kind, size or link target, file bytes)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out.append((rel, "link", os.readlink(p), None))
            elif p.is_dir():
                out.append((rel, "dir", None, None))
            elif not n.startswith("library.db"):  # the database's bytes change with WAL checkpoints
                out.append((rel, "file", p.stat().st_size, p.read_bytes()))
    return sorted(out)


def raw(server, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None,
        host: str | None = "default", token: bool = True):
    """One request with the path sent exactly as given (no client-side dot-segment or percent normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    if host == "default":
        host = f"127.0.0.1:{server.port}"
    if host is not None:
        conn.putheader("Host", host)
    if token:
        conn.putheader("Authorization", f"Bearer {server.token}")
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.putheader("Content-Length", str(len(body or b"")))
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def send_until_answer(port: int, token: str, path: str, total: int, *, chunk: int = 64 * 2**10,
                      content_length: int | None = None, wait_first: float = 0.0,
                      method: str = "POST") -> tuple[int | None, int]:
    """POST (or `method`) up to `total` body bytes (chunked encoding unless content_length is given) without ever blocking,
    stopping as soon as the server answers. Returns (HTTP status or None, bytes the client got sent meanwhile).
    ``wait_first``: seconds to wait for an answer to the headers alone before sending any body byte."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/octet-stream\r\n")
    head += f"Content-Length: {content_length}\r\n" if content_length is not None else "Transfer-Encoding: chunked\r\n"
    s.sendall((head + "\r\n").encode())
    block = b"\x01" * chunk
    frame = block if content_length is not None else b"%x\r\n%s\r\n" % (len(block), block)
    sent, pending, answer = 0, b"", b""
    s.setblocking(False)
    try:
        if wait_first:
            select.select([s], [], [], wait_first)
        while sent < total:
            readable, writable, _ = select.select([s], [s], [], 10)
            if readable:
                break
            if not writable:
                continue
            if not pending:
                pending = frame
            try:
                n = s.send(pending)
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            pending = pending[n:]
            sent += n
        s.setblocking(True)
        s.settimeout(10)
        try:
            while b"\r\n" not in answer:
                part = s.recv(65536)
                if not part:
                    break
                answer += part
        except (ConnectionResetError, TimeoutError):
            pass
    finally:
        s.close()
    return (int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None), sent


def wait_for(cond, timeout: float, what: str):
    """Poll cond() until it is truthy (the server works asynchronously); fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- fixtures --------------------------------------------------------------------------------------------------
@pytest.fixture
def lib_root(tmp_path, monkeypatch):
    """tmp/home (the library, with two voices, an export, an upload and settings) beside tmp/outside (a victim
    folder and file that links inside the library point at)."""
    from pipeline.config import Settings
    from pipeline.library import Library

    home, outside = tmp_path / "home", tmp_path / "outside"
    monkeypatch.setenv("WEAVER_HOME", str(home))
    outside.mkdir()
    (outside / "victim.txt").write_text("keep me")
    lib = Library(home)
    for name in ("alice", "bob"):
        d = home / "voices" / name
        (d / "adapter").mkdir(parents=True)
        (d / "voice.json").write_text(json.dumps({"name": name, "base_model": "base", "adapter_bytes": 3}))
        (d / "adapter" / "adapter_model.safetensors").write_bytes(b"abc")
        with lib.atomic() as db:
            db["voices"].insert({"name": name, "base_model": "base", "created_at": 0, "status": "ready"})
    (home / "exports" / "keep").mkdir(parents=True)
    (home / "exports" / "keep" / "0001.wav").write_bytes(b"RIFF")
    (home / "uploads").mkdir()
    (home / "uploads" / "keep.bin").write_bytes(b"uploaded")
    (home / "media" / "1").mkdir()
    (home / "media" / "1" / "dialogue.flac").write_bytes(b"fLaC")
    Settings(openai_api_key="sk-secret").save(home)
    # links planted inside the library, pointing out of it
    (home / "voices" / "evil").symlink_to(outside, target_is_directory=True)
    (home / "exports" / "evil").symlink_to(outside, target_is_directory=True)
    (home / "uploads" / "evil.bin").symlink_to(outside / "victim.txt")
    lib.close()
    return tmp_path


@pytest.fixture
def server(lib_root):
    from web_ui.server import PanelServer

    srv = PanelServer(home=lib_root / "home", limits=LIMITS).start()
    yield srv
    srv.stop()


# -- 1. one safe-child check -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["", " ", ".", "..", "../x", "a/b", "a\\b", "/etc/passwd", "/", "\x00", "a\x00b",
                                 "voices/../.."])
def test_safe_child_refuses_what_is_not_a_plain_name(tmp_path, bad):
    with pytest.raises(BadInputError):
        safe_child(tmp_path, bad)


def test_safe_child_nested_links_and_results(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "out").symlink_to(tmp_path / "outside")
    (root / "in").symlink_to(root / "sub")
    (root / "loop").symlink_to(root / "loop")
    assert safe_child(root, "file.txt") == root / "file.txt"
    assert safe_child(root, "sub/a.css", nested=True) == root / "sub" / "a.css"
    assert safe_child(root, "in") == root / "in"  # a link staying inside is fine, and is returned unresolved
    for bad in ("out", "out/x", "loop"):
        with pytest.raises(BadInputError):
            safe_child(root, bad, nested=True)
    for bad in ("sub/../..", "sub//a", "sub/./a", "sub/", "/sub"):
        with pytest.raises(BadInputError):
            safe_child(root, bad, nested=True)
    with pytest.raises(BadInputError, match="escapes"):
        safe_child(root, "sub/a")  # one component expected


# the names a client can put in a path segment (sent raw: %2E%2E reaches the route as '..')
BAD_SEGMENTS = [".", "..", "%2E", "%2E%2E", "%2e%2E", "%2F", "%2F%2E%2E", "%00", "a%00b", "%2Fetc%2Fpasswd",
                "..%2F..", "%5C..", "evil"]


def test_deleting_a_voice_by_a_path_name_removes_nothing(server, lib_root):
    before = tree(lib_root)
    for seg in BAD_SEGMENTS:
        status, headers, body = raw(server, "DELETE", f"/api/voices/{seg}")
        # '/api/voices//' matches no route and is redirected to '/api/voices' (which has no DELETE)
        assert status in ((307, 404) if seg == "%2F" else (400, 404)), (seg, status, body)
    assert tree(lib_root) == before  # the library folder, both voices and the folder a link points at are all there
    assert {v["name"] for v in httpx.get(f"http://127.0.0.1:{server.port}/api/voices",
                                          headers={"Authorization": f"Bearer {server.token}"}).json()} >= {"alice", "bob"}
    # the route still works for a real voice, and removes only that one
    status, _, body = raw(server, "DELETE", "/api/voices/alice")
    assert status == 200, body
    gone = {e[0] for e in before} - {e[0] for e in tree(lib_root)}
    assert gone and all(p.startswith("home/voices/alice") for p in gone)
    assert (lib_root / "outside" / "victim.txt").read_text() == "keep me"


def test_export_names_that_escape_are_400_and_write_nothing(server, lib_root):
    before = tree(lib_root)
    for name in [".", "..", "/", "\x00", "a\x00b", "/tmp/abs", "a/b", "../x", "evil", "..\\x", ""]:
        r = httpx.post(f"http://127.0.0.1:{server.port}/api/media/1/export", json={"name": name},
                       headers={"Authorization": f"Bearer {server.token}"})
        # "" falls back to the default name, and then item 1 does not exist (404)
        assert r.status_code == (404 if name == "" else 400), (name, r.status_code, r.text)
    assert tree(lib_root) == before


def test_training_a_voice_named_like_a_path_is_400(server, lib_root):
    before = tree(lib_root)
    for name in [".", "..", "a/b", "/x", "\x00", "evil"]:
        r = httpx.post(f"http://127.0.0.1:{server.port}/api/voices/train", json={"name": name, "dataset_id": 1},
                       headers={"Authorization": f"Bearer {server.token}"})
        assert r.status_code == 400, (name, r.text)
    assert tree(lib_root) == before


def test_static_files_only_from_the_static_folder(server):
    for seg in ["%2E%2E/server.py", "..%2Fserver.py", "%2E%2E%2F%2E%2E%2Fpipeline%2Fstore.py", "%00", "app.js%00",
                "%2Fetc%2Fpasswd", "/etc/passwd", ".", "%2E", "sub%5C..%5C..%5Cserver.py"]:
        status, _, body = raw(server, "GET", f"/static/{seg}", token=False)
        assert status in (400, 404), (seg, status)
        assert b"def create_app" not in body and b"root:" not in body and b"sqlite" not in body
    status, _, body = raw(server, "GET", "/static/app.js", token=False)
    assert status == 200 and b"weaverReady" in body


def test_cli_train_refuses_path_names_and_register_voice_refuses_links(lib_root, capsys):
    from pipeline.voices.synth import register_voice
    from trayapp.cli import main

    home = lib_root / "home"
    adapter = lib_root / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    before = tree(lib_root)
    for name in ["..", ".", "a/b", "evil"]:
        assert main(["train", name, "--dataset", "1"]) == BadInputError.exit_code
        assert "weaver: error:" in capsys.readouterr().err
    with pytest.raises(BadInputError, match="escapes"):
        register_voice(home / "voices", "evil", adapter, base_model="base", overwrite=True)
    assert tree(lib_root) == before
    assert (lib_root / "outside" / "victim.txt").read_text() == "keep me"


def test_a_downloaded_file_named_dotdot_stays_in_downloads(tmp_path):
    from pipeline.text.online_sources import _write_atomic

    d = tmp_path / "lib" / "downloads"
    for name in ["..", ".", "../../x.srt", "/etc/passwd"]:
        p = _write_atomic(d, name, b"data")
        assert p.parent == d and p.read_bytes() == b"data"
    assert sorted(os.listdir(tmp_path)) == ["lib"] and sorted(os.listdir(tmp_path / "lib")) == ["downloads"]


# -- 2. uploads ------------------------------------------------------------------------------------------------
def test_upload_names_nul_and_links(server, lib_root):
    home = lib_root / "home"
    before = tree(lib_root)
    for name in ["..", ".", "a/..", "\x00", "x\x00.bin", "evil.bin"]:
        r = httpx.post(f"http://127.0.0.1:{server.port}/api/upload", params={"name": name}, content=b"payload",
                       headers={"Authorization": f"Bearer {server.token}"})
        assert r.status_code == 400, (name, r.status_code, r.text)
    assert tree(lib_root) == before
    # a link planted where the old code put its .part file is never followed
    (home / "uploads" / "movie.mkv.part").symlink_to(lib_root / "outside" / "victim.txt")
    r = httpx.post(f"http://127.0.0.1:{server.port}/api/upload", params={"name": "movie.mkv"}, content=b"movie bytes",
                   headers={"Authorization": f"Bearer {server.token}"})
    assert r.status_code == 200, r.text
    target = Path(r.json()["path"])
    assert target == home / "uploads" / "movie.mkv" and target.read_bytes() == b"movie bytes"
    assert mode(target) == 0o600 and mode(home / "uploads") == 0o700
    assert (lib_root / "outside" / "victim.txt").read_text() == "keep me"
    assert os.readlink(home / "uploads" / "movie.mkv.part") == str(lib_root / "outside" / "victim.txt")
    assert not [p for p in (home / "uploads").iterdir() if p.name.startswith(".")]  # no temp file left


def test_upload_over_the_cap_is_413_while_streaming_and_leaves_nothing(server, lib_root):
    uploads = lib_root / "home" / "uploads"
    before = sorted(os.listdir(uploads))
    cap = LIMITS["upload_limit"]
    status, sent = send_until_answer(server.port, server.token, "/api/upload?name=big.bin", 64 * cap)
    assert status == 413
    assert sent < cap + SLACK  # answered soon after the cap, not after the whole body
    # a declared Content-Length over the cap is refused before any body byte is sent
    status, sent = send_until_answer(server.port, server.token, "/api/upload?name=big.bin", 64 * cap,
                                     content_length=64 * cap, wait_first=10)
    assert status == 413 and sent == 0
    wait_for(lambda: sorted(os.listdir(uploads)) == before, 10, "the upload's .part file to be removed")


def test_an_aborted_upload_leaves_no_part_file(server, lib_root):
    uploads = lib_root / "home" / "uploads"
    before = sorted(os.listdir(uploads))
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall((f"POST /api/upload?name=half.bin HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
               f"Authorization: Bearer {server.token}\r\nContent-Length: {LIMITS['upload_limit']}\r\n\r\n").encode())
    s.sendall(b"\x02" * 300_000)
    wait_for(lambda: [n for n in os.listdir(uploads) if n.endswith(".part")], 10, "the upload to start writing")
    s.close()  # the client goes away mid-body
    wait_for(lambda: sorted(os.listdir(uploads)) == before, 10, "the aborted upload's .part file to be removed")
    assert not (uploads / "half.bin").exists()


# -- 3. request bodies are capped while they stream --------------------------------------------------------------
@pytest.mark.parametrize("method,path,cap", [("POST", "/api/chat/personas/import", "card_limit"),
                                             ("POST", "/api/chat/listen", "listen_limit"),
                                             ("PUT", "/api/settings", "json_limit"), ("POST", "/api/media", "json_limit")])
def test_bodies_over_their_cap_get_413_before_the_client_finishes(server, lib_root, method, path, cap):
    settings_before = (lib_root / "home" / "settings.json").read_bytes()
    limit = LIMITS[cap]
    total = 64 * 2**20
    status, sent = send_until_answer(server.port, server.token, path, total, method=method)
    assert status == 413, (path, status)
    assert sent < limit + SLACK < total
    status, sent = send_until_answer(server.port, server.token, path, total, content_length=total, wait_first=10,
                                     method=method)
    assert status == 413 and sent == 0
    assert (lib_root / "home" / "settings.json").read_bytes() == settings_before


def test_bodies_under_the_cap_still_work(server):
    from pipeline.chat.cards import write_card_json
    from pipeline.chat.persona import Persona

    card = write_card_json(Persona(name="Ada", system_prompt="You are Ada."))
    r = httpx.post(f"http://127.0.0.1:{server.port}/api/chat/personas/import", content=card,
                   headers={"Authorization": f"Bearer {server.token}"})
    assert r.status_code == 200 and r.json()["name"] == "Ada"
    r = httpx.post(f"http://127.0.0.1:{server.port}/api/chat/listen", content=b"",
                   headers={"Authorization": f"Bearer {server.token}"})
    assert r.status_code == 400 and "empty" in r.json()["error"]


def _rss_kib(pid: int, field: str = "VmHWM") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_server_memory_stays_bounded_by_the_cap_not_the_body(tmp_path):
    """A server process of its own (so its peak RSS is its own): 200 MiB bodies to the card import, push-to-talk
    and upload routes raise its peak RSS by far less than the body size."""
    limits = {"card_limit": 4 * 2**20, "listen_limit": 8 * 2**20, "upload_limit": 8 * 2**20}
    code = ("import sys; from web_ui.server import PanelServer; "
            f"s = PanelServer(home=sys.argv[1], limits={limits!r}).start(); "
            "print(s.port, s.token, flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "home")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        port, token = proc.stdout.readline().split()
        port = int(port)
        # warm up each route (imports, first allocations) with a small valid-size body
        for path in ("/api/chat/personas/import", "/api/chat/listen", "/api/upload?name=w.bin"):
            httpx.post(f"http://127.0.0.1:{port}{path}", content=b"{}", headers={"Authorization": f"Bearer {token}"},
                       timeout=60)
        peak_before = _rss_kib(proc.pid)
        total = 200 * 2**20
        for path, cap in (("/api/chat/personas/import", limits["card_limit"]),
                          ("/api/chat/listen", limits["listen_limit"]),
                          ("/api/upload?name=big.bin", limits["upload_limit"])):
            status, sent = send_until_answer(port, token, path, total, chunk=256 * 2**10)
            assert status == 413 and sent < cap + SLACK, (path, status, sent)
        grown_mib = (_rss_kib(proc.pid) - peak_before) / 1024
        print(f"server peak RSS grew {grown_mib:.1f} MiB for 3 bodies of {total >> 20} MiB (caps 4/8/8 MiB)")
        assert grown_mib < 48, grown_mib
        assert proc.poll() is None
    finally:
        proc.stdin.close()
        proc.terminate()
        proc.wait(timeout=20)


# -- 4. Host header, Referrer-Policy, token out of the URL --------------------------------------------------------
def test_only_loopback_host_headers_are_served(server):
    p = server.port
    for host in [f"127.0.0.1:{p}", "127.0.0.1", "localhost", f"localhost:{p}", f"LocalHost:{p}", "[::1]", f"[::1]:{p}"]:
        status, headers, body = raw(server, "GET", "/api/health", host=host)
        assert status == 200, (host, status, body)
    for host in ["evil.example", f"evil.example:{p}", f"127.0.0.1.evil.example:{p}", f"localhost.evil:{p}",
                 "127.0.0.1:1", f"127.0.0.1:{p}x", "[::1]x", "0.0.0.0", f"192.168.1.10:{p}", "", None]:
        status, headers, body = raw(server, "GET", "/api/health", host=host)
        assert status == 400, (host, status)
        assert b"ok" not in body
    # the page too: a rebinding page never gets the HTML (nor the cookie)
    status, headers, _ = raw(server, "GET", f"/?token={server.token}", host=f"evil.example:{p}", token=False)
    assert status == 400 and "set-cookie" not in headers


def test_every_response_has_referrer_policy_no_referrer(server):
    cases = [("GET", f"/?token={server.token}", True, 200), ("GET", "/", False, 401), ("GET", "/api/media", True, 200),
             ("GET", "/api/media", False, 401), ("GET", "/static/app.js", False, 200),
             ("GET", "/static/nope.js", False, 404), ("GET", "/api/media/99", True, 404),
             ("DELETE", "/api/voices/%2E%2E", True, 400)]
    for method, path, token, want in cases:
        status, headers, _ = raw(server, method, path, token=token)
        assert status == want, (path, status)
        assert headers.get("referrer-policy") == "no-referrer", (path, headers)
    status, headers, _ = raw(server, "GET", "/api/health", host="evil.example")
    assert status == 400 and headers.get("referrer-policy") == "no-referrer"
    status, headers, _ = raw(server, "PUT", "/api/settings", body=b"x" * (LIMITS["json_limit"] + 1))
    assert status == 413 and headers.get("referrer-policy") == "no-referrer"


def test_empty_bearer_falls_back_to_the_cookie(server):
    page = httpx.get(f"http://127.0.0.1:{server.port}/?token={server.token}")
    cookie = page.cookies.get("weaver_token")
    assert cookie == server.token
    # fetch() sends `Bearer ${""}` trimmed, as "Bearer"; a raw client may send "Bearer  " — both use the cookie
    for value in ("Bearer", "Bearer  "):
        status, _, _ = raw(server, "GET", "/api/media", token=False,
                           headers={"Authorization": value, "Cookie": f"weaver_token={cookie}"})
        assert status == 200, value
        status, _, _ = raw(server, "GET", "/api/media", token=False, headers={"Authorization": value})
        assert status == 401, value


def test_page_drops_the_token_from_its_address(server):
    """In a real browser: after the page opened with ?token= it shows `/`, keeps working after a reload and in a
    new tab (cookie), and asks for nothing with a Referer."""
    from tests.desktop_env import need_modules, skip_or_fail

    chromium = os.environ.get("WEAVER_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        skip_or_fail(f"Chromium not found at {chromium}")
    need_modules("playwright")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, headless=True,
                               args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        try:
            ctx = b.new_context()
            page = ctx.new_page()
            failed, referers = [], []
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                    if r.status >= 400 and "favicon" not in r.url else None)
            page.on("request", lambda r: referers.append(r.headers.get("referer")) if r.headers.get("referer") else None)
            page.goto(server.url + "#library")
            page.wait_for_function("window.weaverReady === true", timeout=20000)
            assert page.url == f"http://127.0.0.1:{server.port}/#library"
            page.reload()
            page.wait_for_function("window.weaverReady === true", timeout=20000)
            assert "token" not in page.url
            tab = ctx.new_page()  # a new tab: no token in its URL nor its sessionStorage, only the cookie
            tab.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                   if r.status >= 400 and "favicon" not in r.url else None)
            tab.goto(f"http://127.0.0.1:{server.port}/")
            tab.wait_for_function("window.weaverReady === true", timeout=20000)
            assert tab.evaluate("fetch('/api/media').then(r => r.status)") == 200
            assert not failed, failed
            assert not referers, referers
        finally:
            b.close()


# -- 5. secrets and file modes ----------------------------------------------------------------------------------
def test_library_folders_and_files_are_owner_only(tmp_path):
    from pipeline.config import Settings
    from pipeline.library import Library
    from trayapp.panel import write_runtime

    home = tmp_path / "home"
    lib = Library(home)
    with lib.atomic() as db:  # a write, so the WAL and shared-memory files exist
        db["media"].insert({"kind": "file", "title": "t", "created_at": 0, "meta": "{}"})
    Settings(openai_api_key="sk-secret").save(home)
    write_runtime(home, 1234, "tok")
    for d in (home, home / "media", home / "work", home / "run"):
        assert mode(d) == 0o700, d
    for f in ("library.db", "library.db-wal", "library.db-shm", "settings.json", "run/server.json"):
        assert (home / f).exists() and mode(home / f) == 0o600, (f, oct(mode(home / f)))
    lib.close()


def test_an_old_library_with_loose_modes_is_tightened_on_open(tmp_path):
    from pipeline.config import Settings
    from pipeline.library import Library

    home = tmp_path / "home"
    Library(home).close()
    Settings(openai_api_key="sk-secret").save(home)
    (home / "run").mkdir()
    (home / "run" / "serve.log").write_text("old log")
    (home / "voices").mkdir()
    (home / "notes").mkdir()  # not the library's: left alone
    for p in (home, home / "media", home / "run", home / "voices", home / "notes"):
        os.chmod(p, 0o755)
    for p in (home / "library.db", home / "settings.json", home / "run" / "serve.log"):
        os.chmod(p, 0o644)
    (home / "settings.json.part").write_text("{}")
    os.chmod(home / "settings.json.part", 0o666)
    Library(home).close()
    for d in (home, home / "media", home / "run", home / "voices"):
        assert mode(d) == 0o700, d
    assert mode(home / "notes") == 0o755
    for f in ("library.db", "settings.json", "run/serve.log"):
        assert mode(home / f) == 0o600, f
    Settings(openai_api_key="sk-other").save(home)  # a leftover loose .part is tightened before it gets the keys
    assert mode(home / "settings.json") == 0o600 and json.loads((home / "settings.json").read_text())["openai_api_key"] == "sk-other"


def _files_with(home: Path, needle: str) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")
                  if p.is_file() and not p.is_symlink() and needle.encode() in p.read_bytes())


def test_weaver_serve_token_goes_to_stdout_and_server_json_only(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "WEAVER_HOME": str(home), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "trayapp", "serve"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert "/?token=" in url, url
        token = url.split("/?token=")[1]
        assert httpx.get(url.split("/?")[0] + "/api/health", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert _files_with(home, token) == ["run/server.json"]
        assert mode(home / "run" / "server.json") == 0o600 and mode(home / "run") == 0o700
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def test_background_server_log_is_private_and_has_no_token(tmp_path, monkeypatch):
    """`ensure_app` (what `weaver capture start` uses) starts `weaver serve` with its output in run/serve.log: the
    log is 0600 and names the address, never the token."""
    from trayapp.remote import ensure_app, running_app

    home = tmp_path / "home"
    monkeypatch.setenv("WEAVER_HOME", str(home))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.chdir(REPO)
    info = ensure_app(home, timeout=60)
    try:
        log = home / "run" / "serve.log"
        text = wait_for(lambda: log.read_text(), 20, "the background server to write its log")
        assert f"127.0.0.1:{info['port']}" in text
        assert info["token"] not in text
        assert mode(log) == 0o600 and mode(home / "run" / "server.json") == 0o600
        assert _files_with(home, info["token"]) == ["run/server.json"]
        r = httpx.get(f"http://127.0.0.1:{info['port']}/api/health", headers={"Authorization": f"Bearer {info['token']}"})
        assert r.status_code == 200
    finally:
        os.kill(info["pid"], signal.SIGTERM)
        wait_for(lambda: running_app(home) is None, 20, "the background server to stop")
