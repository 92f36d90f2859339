"""FastAPI app for the panel: every route calls pipeline.service; auth by a per-launch token.

``create_app`` holds the security middleware, the error handlers and the page/static routes; the API lives in
one module per area (``routes_library``, ``routes_clips``, ``routes_jobs``, ``routes_settings``,
``routes_capture``, ``routes_voices``, ``routes_chat``; listed in :data:`ROUTE_AREAS`).

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

import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from pipeline import __version__
from pipeline.errors import BadInputError, NotFoundError, WeaverError
from pipeline.files import safe_child
from pipeline.service import Service

from . import (routes_capture, routes_chat, routes_clips, routes_jobs, routes_library, routes_live, routes_settings,
               routes_voiceprints, routes_voices)
from .bodies import BodyTooLarge
from .jobs import BackgroundJobs

STATIC = Path(__file__).parent / "static"


# request body caps (bytes): a dropped media file may be a whole movie; a card or a spoken question is small
UPLOAD_LIMIT = 64 * 2**30
CARD_LIMIT = 16 * 2**20
LISTEN_LIMIT = 64 * 2**20
JSON_LIMIT = 8 * 2**20  # every other route (JSON bodies FastAPI reads whole)

# the API by area, registered in this order; a new area is a routes_<area>.py with register(app, svc, jobs)
ROUTE_AREAS = (routes_library, routes_clips, routes_jobs, routes_settings, routes_capture, routes_voices, routes_chat,
               routes_live, routes_voiceprints)


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


def create_app(*, home: str | os.PathLike | None = None, token: str | None = None,
               limits: dict[str, int] | None = None) -> FastAPI:
    """Build the panel app for a library folder (default: WEAVER_HOME / user data dir).

    ``limits``: body caps in bytes, keys ``upload_limit``, ``card_limit``, ``listen_limit``, ``json_limit``
    (defaults above)."""
    state = ServerState(token=token or secrets.token_urlsafe(24), home=Path(home) if home else None,
                        **(limits or {}))
    app = FastAPI(title="Voice Weaver panel API", version=__version__,
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

    # -- the API, by area (each module's register(app, svc, jobs) adds its routes) ------------------
    for area in ROUTE_AREAS:
        area.register(app, svc, jobs)
    return app


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
