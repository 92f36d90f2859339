"""FastAPI app for the panel: every route calls pipeline.service; auth by a per-launch token.

Security notes (what a local attacker or a web page in the user's browser must not be able to do):

- Bound to 127.0.0.1 only. A request whose ``Host`` is not a loopback name (127.0.0.1, localhost, [::1], with or
  without a port; the port must be ours) gets 400: a DNS-rebinding page (evil.example resolving to 127.0.0.1)
  sends its own host name and is refused before anything else runs.
- Every /api, /v1 and docs request and the page itself need the per-launch token: ``Authorization: Bearer``,
  the ``weaver_token`` cookie (HttpOnly, SameSite=Strict) set when the page opens with ``/?token=``, or
  ``?token=`` (the page's <audio>/EventSource URLs). The page removes the token from its address bar at once
  (history.replaceState); every response carries ``Referrer-Policy: no-referrer`` so no URL with a token
  leaves in a Referer header. A request whose Origin is not this server gets 403.
- Every user-given name that becomes a file path (static files, uploads, exports, voices) goes through
  ``pipeline.service.safe_child``: '.', '..', absolute paths, NUL bytes, separators and links out of the folder
  give 400 and touch nothing.
- Request bodies are read chunk by chunk with a cap (upload, card import, push-to-talk): over the cap the
  answer is 413 as soon as the cap is passed (or at once from Content-Length), never after buffering. An upload
  is written to a fresh ``.part`` opened O_CREAT|O_EXCL|O_NOFOLLOW (0600) and removed if the client goes away.
- Files: the library folder is 0700, its database, settings.json (API keys) and run/ files (server.json holds
  the token) 0600; the token is printed only on the stdout of the terminal that ran ``weaver serve`` (a
  background server started by a CLI command prints its address without it), never into a log.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse

from pipeline.errors import BadInputError, NotFoundError, WeaverError
from pipeline.service import Service, safe_child, slug

from .jobs import BackgroundJobs

STATIC = Path(__file__).parent / "static"
PUBLIC_PATHS = {"/favicon.ico"}


# request body caps (bytes): a dropped media file may be a whole movie; a card or a spoken question is small
UPLOAD_LIMIT = 64 * 2**30
CARD_LIMIT = 16 * 2**20
LISTEN_LIMIT = 64 * 2**20
JSON_LIMIT = 8 * 2**20  # every other route (JSON bodies FastAPI reads whole)


@dataclass
class ServerState:
    token: str
    home: Path | None
    port: int = 0
    upload_limit: int = UPLOAD_LIMIT
    card_limit: int = CARD_LIMIT
    listen_limit: int = LISTEN_LIMIT
    json_limit: int = JSON_LIMIT

    def body_limit(self, path: str) -> int:
        """The body cap of a request path."""
        return {"/api/upload": self.upload_limit, "/api/chat/personas/import": self.card_limit,
                "/api/chat/listen": self.listen_limit}.get(path, self.json_limit)


class BodyTooLarge(HTTPException):
    """A request body passed its cap (answered 413). An HTTPException so FastAPI's body parsing lets it through."""

    def __init__(self, limit: int):
        self.message = f"request body is larger than the limit of {limit} bytes"
        super().__init__(413, self.message)
        self.limit = limit


async def stream_body(request: Request, limit: int):
    """Yield the request body's chunks, raising BodyTooLarge as soon as more than ``limit`` bytes came (or at once
    when Content-Length says so). Nothing is buffered here."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        if chunk:
            yield chunk


async def read_body(request: Request, limit: int) -> bytes:
    """The whole request body for a small payload, capped (BodyTooLarge → 413)."""
    buf = bytearray()
    async for chunk in stream_body(request, limit):
        buf += chunk
    return bytes(buf)


def create_app(*, home: str | os.PathLike | None = None, token: str | None = None,
               limits: dict[str, int] | None = None) -> FastAPI:
    """Build the panel app for a library folder (default: WEAVER_HOME / user data dir).

    ``limits``: body caps in bytes, keys ``upload_limit``, ``card_limit``, ``listen_limit``, ``json_limit``
    (defaults above)."""
    state = ServerState(token=token or secrets.token_urlsafe(24), home=Path(home) if home else None,
                        **(limits or {}))
    app = FastAPI(title="Voice Weaver panel API", version="0.1.0",
                  description="Local API of the Voice Weaver panel. Every call needs the launch token.")
    app.state.weaver = state
    local = threading.local()

    def svc() -> Service:
        s = getattr(local, "svc", None)
        if s is None:
            s = local.svc = Service(home=state.home)
        return s

    jobs = BackgroundJobs(lambda: Service(home=state.home))
    app.state.jobs = jobs
    app.state.service = svc

    # -- security (pure ASGI middleware: no extra buffering of responses) ------------------------
    app.add_middleware(TokenOriginGuard, state=state)

    @app.exception_handler(WeaverError)
    async def weaver_error(request: Request, exc: WeaverError):
        code = 404 if isinstance(exc, NotFoundError) else 400 if isinstance(exc, BadInputError) else 409
        return JSONResponse({"error": str(exc)}, status_code=code)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge):
        # the rest of the body is not read: close the connection rather than drain it
        return JSONResponse({"error": exc.message}, status_code=413, headers={"Connection": "close"})

    # -- page ----------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/static/{name:path}", include_in_schema=False)
    def static(name: str):
        path = safe_child(STATIC, name, nested=True)
        if not path.is_file():
            raise HTTPException(404)
        return FileResponse(path)

    # -- library -------------------------------------------------------------------------------
    @app.get("/api/health")
    def health():
        return {"ok": True, "version": "0.1.0"}

    @app.get("/api/media")
    def list_media():
        return svc().list_media()

    @app.post("/api/media")
    def import_media(body: dict = Body(...)):
        """Import a local file by path (the panel's picker or drag-drop gives one); runs as a background job."""
        path = body.get("path")
        if not path:
            raise BadInputError("path is required")
        prepared = svc().prepare_ingest(path, subtitles=body.get("subtitles") or None, script=body.get("script") or None,
                                        audio_track=body.get("audio_track"), analyze=body.get("analyze", True))
        jobs.submit(f"job-{prepared.job_id}", lambda s, cancel: prepared.run(s, None, cancel))
        return {"job_id": prepared.job_id, "resumed": prepared.resumed}

    @app.post("/api/upload")
    async def upload(request: Request, name: str):
        """Receive a dropped file's bytes into the library's uploads folder; returns its path for /api/media.

        Only the file's base name is kept. The bytes go to a fresh hidden .part file (O_EXCL|O_NOFOLLOW, so a
        link planted there is never followed) renamed over the target when complete; a body over the upload cap
        gets 413 as soon as it passes it, and a client that goes away leaves no .part behind."""
        from pipeline.config import open_private, private_dir

        home = svc().lib.home
        base = name.replace("\\", "/").rsplit("/", 1)[-1] or "upload.bin"
        uploads = private_dir(safe_child(home, "uploads"))  # refuses an uploads/ that is a link out of the library
        target = safe_child(uploads, base)
        if target.is_dir():
            raise BadInputError(f"'{base}' is a folder in uploads/")
        tmp = uploads / f".{secrets.token_hex(8)}.part"
        try:
            with open_private(tmp, os.O_EXCL) as f:
                async for chunk in stream_body(request, state.upload_limit):
                    f.write(chunk)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)  # aborted, too large or failed: no partial file stays
        return {"path": str(target)}

    @app.get("/api/media/{media_id}")
    def show_media(media_id: int):
        return svc().show_media(media_id)

    @app.delete("/api/media/{media_id}")
    def remove_media(media_id: int):
        svc().remove_media(media_id)
        return {"removed": media_id}

    @app.get("/api/media/{media_id}/lines")
    def lines(media_id: int):
        return svc().lines(media_id)

    @app.get("/api/media/{media_id}/segments")
    def segments(media_id: int, character: str | None = None, offset: int = 0, limit: int = 5000):
        rows = svc().segments(media_id, character=character)[max(0, offset): max(0, offset) + max(1, min(limit, 20000))]
        return fast_json(rows)

    @app.get("/api/media/{media_id}/characters")
    def characters(media_id: int):
        return svc().characters(media_id)

    @app.get("/api/media/{media_id}/speakers")
    def speakers(media_id: int):
        return svc().speakers(media_id)

    @app.post("/api/media/{media_id}/analyze")
    def analyze(media_id: int):
        prepared = svc().prepare_analyze(media_id)
        jobs.submit(f"job-{prepared.job_id}", lambda s, cancel: prepared.run(s, None, cancel))
        return {"job_id": prepared.job_id}

    @app.post("/api/media/{media_id}/speakers/{speaker}/label")
    def label_speaker(media_id: int, speaker: str, body: dict = Body(...)):
        return svc().label_speaker(media_id, speaker, str(body.get("name", "")))

    @app.post("/api/media/{media_id}/speakers/merge")
    def merge(media_id: int, body: dict = Body(...)):
        return svc().merge_speakers(media_id, str(body["source"]), str(body["target"]))

    @app.post("/api/segments/{segment_id}/reassign")
    def reassign(segment_id: int, body: dict = Body(...)):
        return svc().reassign_line(segment_id, str(body.get("character", "")))

    @app.post("/api/segments/{segment_id}/split")
    def split(segment_id: int, body: dict = Body(...)):
        return svc().split_line(segment_id, float(body["at"]))

    @app.post("/api/segments/{segment_id}/text")
    def edit_text(segment_id: int, body: dict = Body(...)):
        return svc().edit_line_text(segment_id, str(body.get("text", "")))

    @app.post("/api/segments/{segment_id}/join")
    def join(segment_id: int, body: dict = Body(...)):
        if not str(body.get("next", "")).isdigit():
            raise BadInputError("next (the id of the line to join with) is required")
        return svc().join_lines(segment_id, int(body["next"]), force=bool(body.get("force")))

    @app.get("/api/subtitle-tracks/{track_id}/encoding")
    def subtitle_encoding(track_id: int):
        return svc().subtitle_encoding(track_id)

    @app.post("/api/subtitle-tracks/{track_id}/encoding")
    def set_subtitle_encoding(track_id: int, body: dict = Body(...)):
        return svc().set_subtitle_encoding(track_id, str(body.get("encoding", "")))

    @app.post("/api/media/{media_id}/undo")
    def undo(media_id: int):
        return {"undone": svc().undo(media_id)}

    @app.get("/api/media/{media_id}/edits")
    def edits(media_id: int):
        return svc().edits(media_id)

    @app.post("/api/media/{media_id}/export")
    def export(media_id: int, body: dict = Body(default={})):
        """Export clips into <library>/exports/<name> (name must stay inside that folder)."""
        s = svc()
        name = body.get("name") or f"item-{media_id}-{slug(body.get('character') or 'all')}"
        out = safe_child(safe_child(s.lib.home, "exports"), name)
        path = s.export_clips(media_id, out, character=body.get("character") or None, video=bool(body.get("video")),
                              isolate=bool(body.get("isolate")))
        return {"path": str(path), "files": sorted(p.name for p in Path(path).iterdir())}

    # -- clips ---------------------------------------------------------------------------------
    @app.get("/api/clips/{clip_id}")
    def clip(clip_id: int):
        return svc().clip(clip_id)

    @app.patch("/api/clips/{clip_id}")
    def edit_clip(clip_id: int, body: dict = Body(...)):
        s = svc()
        if "status" in body:
            s.set_clip_status(clip_id, body["status"])
        if "start" in body or "end" in body:
            s.trim_clip(clip_id, start=body.get("start"), end=body.get("end"),
                        relative=bool(body.get("relative", False)), snap=bool(body.get("snap", False)))
        return s.clip(clip_id)

    @app.get("/api/clips/{clip_id}/audio")
    def clip_audio(clip_id: int, pad: float = 0.0):
        from pipeline.voices.synth import encode_audio

        audio, rate = svc().clip_audio(clip_id, pad=min(max(pad, 0.0), 5.0))
        return Response(encode_audio(audio, rate, "wav"), media_type="audio/wav")

    @app.get("/api/clips/{clip_id}/waveform")
    def clip_waveform(clip_id: int, points: int = 200, pad: float = 1.0):
        import numpy as np

        s = svc()
        c = s.clip(clip_id)
        pad = min(max(pad, 0.0), 5.0)
        audio, rate = s.clip_audio(clip_id, pad=pad)
        mono = audio.mean(axis=1) if audio.ndim > 1 else audio
        points = max(10, min(points, 2000))
        chunks = np.array_split(np.abs(mono), points) if len(mono) else [np.zeros(1)] * points
        start = max(0.0, c["start"] - pad)
        return {"start": start, "end": start + len(mono) / rate, "clip_start": c["start"], "clip_end": c["end"],
                "peaks": [round(float(ch.max()) if len(ch) else 0.0, 4) for ch in chunks], "words": c["words"]}

    @app.get("/api/clips/{clip_id}/frame")
    def clip_frame(clip_id: int):
        s = svc()
        c = s.clip(clip_id)
        data = s.frame_at(c["media_id"], (c["start"] + c["end"]) / 2)
        if data is None:
            raise HTTPException(404, "no video frame for this clip")
        return Response(data, media_type="image/jpeg")

    # -- jobs ----------------------------------------------------------------------------------
    @app.get("/api/jobs")
    def list_jobs(limit: int = 50):
        return svc().jobs(limit)

    @app.get("/api/jobs/{job_id}")
    def job(job_id: int):
        return svc().job(job_id)

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel_job(job_id: int):
        return svc().cancel_job(job_id)

    @app.get("/api/events")
    async def events(request: Request):
        """Server-sent events: a 'jobs' event whenever any job's state/progress changes."""

        async def stream():
            last = None
            s = Service(home=state.home)
            try:
                while not await request.is_disconnected():
                    rows = await asyncio.to_thread(lambda: [
                        {k: j[k] for k in ("id", "kind", "state", "progress", "stage", "message", "eta", "error", "media_id")}
                        for j in s.jobs(20)])
                    payload = json.dumps(rows)
                    if payload != last:
                        last = payload
                        yield f"event: jobs\ndata: {payload}\n\n"
                    await asyncio.sleep(0.4)
            finally:
                s.lib.close()

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    # -- settings, models ----------------------------------------------------------------------
    @app.get("/api/models")
    def models():
        return svc().models()

    @app.get("/api/settings")
    def get_settings():
        return asdict(svc().settings)

    @app.put("/api/settings")
    def put_settings(body: dict = Body(...)):
        from pipeline.config import Settings

        s = svc()
        current = asdict(s.settings)
        current.update({k: v for k, v in body.items() if k in current})
        Settings(**current).save(s.lib.home)
        return current

    from . import routes_capture, routes_chat, routes_voices

    for register in (routes_capture.register, routes_voices.register, routes_chat.register, *EXTRA_ROUTES):
        register(app, svc, jobs)
    return app


EXTRA_ROUTES: list = []  # more route groups: register(app, svc, jobs)


def fast_json(value: Any) -> Response:
    """Serialise plain rows with json.dumps (FastAPI's generic encoder is slow on thousands of rows)."""
    return Response(json.dumps(value, ensure_ascii=False, separators=(",", ":")), media_type="application/json")


GUARDED_PREFIXES = ("/api", "/v1", "/docs", "/redoc", "/openapi.json")


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
SECURITY_HEADERS = [(b"referrer-policy", b"no-referrer"), (b"x-content-type-options", b"nosniff")]


def loopback_host(host: str | None, port: int) -> bool:
    """True for a Host header naming this machine's loopback (127.0.0.1, localhost, [::1]), with our port or none."""
    h = (host or "").strip().lower()
    if h.startswith("["):
        name, _, rest = h.partition("]")
        name += "]"
    else:
        name, colon, rest = h.partition(":")
        rest = colon + rest
    if name not in LOOPBACK_HOSTS:
        return False
    if not rest:
        return True
    return rest.startswith(":") and rest[1:].isdigit() and (not port or int(rest[1:]) == port)


class TokenOriginGuard:
    """400 for a non-loopback Host, 401 without the launch token, 403 for a foreign Origin; sets the token cookie
    when the page opens; adds Referrer-Policy: no-referrer (and nosniff) to every response."""

    def __init__(self, app, state: ServerState):
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        from starlette.requests import HTTPConnection

        conn = HTTPConnection(scope)
        if scope["type"] == "websocket":  # none are served; refuse any from a foreign host or page
            if not loopback_host(conn.headers.get("host"), self.state.port):
                await receive()  # websocket.connect
                return await send({"type": "websocket.close", "code": 1008})
            return await self.app(scope, receive, send)
        send = _with_headers(send, SECURITY_HEADERS)
        if not loopback_host(conn.headers.get("host"), self.state.port):
            return await JSONResponse({"error": "this server answers only to 127.0.0.1 / localhost"},
                                      status_code=400)(scope, receive, send)
        path = scope["path"]
        declared = conn.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.state.body_limit(path):
            too_big = BodyTooLarge(self.state.body_limit(path))
            return await JSONResponse({"error": too_big.message}, status_code=413,
                                      headers={"Connection": "close"})(scope, receive, send)
        origin = conn.headers.get("origin")
        if origin is not None:
            host = conn.headers.get("host", "")
            port = self.state.port
            if origin not in {f"http://{host}", f"http://127.0.0.1:{port}", f"http://localhost:{port}"}:
                return await JSONResponse({"error": "foreign origin"}, status_code=403)(scope, receive, send)
        if path.startswith(GUARDED_PREFIXES) or path == "/":
            supplied = _token_of(conn)
            if not supplied or not secrets.compare_digest(supplied, self.state.token):
                if path == "/":
                    page = HTMLResponse("<h1>Voice Weaver</h1><p>Open the panel with the URL (including its token) that "
                                        "<code>weaver serve</code> printed.</p>", status_code=401)
                    return await page(scope, receive, send)
                return await JSONResponse({"error": "missing or wrong token"}, status_code=401)(scope, receive, send)
        if path == "/" and conn.query_params.get("token"):
            cookie = f"weaver_token={self.state.token}; HttpOnly; SameSite=Strict; Path=/"

            return await self.app(scope, self._capped(scope, receive),
                                  _with_headers(send, [(b"set-cookie", cookie.encode())]))
        return await self.app(scope, self._capped(scope, receive), send)

    def _capped(self, scope, receive):
        """receive() that raises BodyTooLarge once the body passes the path's cap (checked chunk by chunk)."""
        limit = self.state.body_limit(scope["path"])
        seen = 0

        async def capped():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return capped


def _with_headers(send, extra: list[tuple[bytes, bytes]]):
    """An ASGI send that adds headers to the response start."""

    async def sending(message):
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *extra]
        await send(message)

    return sending


def _token_of(conn) -> str | None:
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and auth[7:].strip():
        return auth[7:].strip()
    # an empty bearer (a new tab of the page has no token of its own) falls back to the cookie
    return conn.query_params.get("token") or conn.cookies.get("weaver_token")


# -- running ---------------------------------------------------------------------------------------
class PanelServer:
    """uvicorn in a background thread on 127.0.0.1 (free port by default)."""

    def __init__(self, *, port: int = 0, home: str | os.PathLike | None = None, token: str | None = None,
                 limits: dict[str, int] | None = None):
        import socket

        import uvicorn

        self.app = create_app(home=home, token=token, limits=limits)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # accepted connections inherit TCP_NODELAY: h11 writes headers and body separately, and with Nagle
        # each response would wait for the client's delayed ACK (+40 ms)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        self.app.state.weaver.port = self.port
        self._sock = sock
        config = uvicorn.Config(self.app, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True, name="weaver-http")

    @property
    def token(self) -> str:
        return self.app.state.weaver.token

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def start(self, timeout: float = 15.0) -> "PanelServer":
        import time

        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise WeaverError("the panel server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.app.state.jobs.shutdown()
        self.thread.join(timeout=10)
