"""PROTOCOL FAKE of Ollama's documented HTTP API, for driving the real ``ollama`` client in tests.

It is not Ollama and runs no model: it speaks the wire protocol (docs/api.md of Ollama) on 127.0.0.1 on a
free port, in a thread, with the stdlib http.server:

- ``GET /api/version`` → ``{"version": ...}``
- ``GET /api/tags`` → ``{"models": [{name, model, modified_at, size, digest, details}]}``
- ``POST /api/show`` → ``{modelfile, parameters, template, details, model_info}``; 404 for an unknown model
- ``POST /api/pull`` → NDJSON progress (pulling manifest, per-layer digest/total/completed, success),
  or an ``{"error": ...}`` line for a name the fake "library" does not have
- ``POST /api/chat`` → NDJSON stream of ``{model, created_at, message: {role, content}, done: false}`` chunks
  then a ``done: true`` chunk with ``done_reason`` and counters; 404 ``model "x" not found`` when not pulled

Switches: ``reply`` (text, or a callable(request_json) → text), ``chunk_delay`` (seconds between chunks),
``die_after_chunks`` (close the socket abruptly after that many content chunks, no terminating chunk),
``error_after_chunks`` (send an ``{"error": ...}`` line instead). Every chat request body is kept in ``chats``.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _QuietServer(ThreadingHTTPServer):
    """The fake's server: a client hanging up mid-stream (which the tests do on purpose) is not worth a traceback."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass
from typing import Callable


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _model_entry(name: str, size: int = 2_019_393_189) -> dict:
    digest = f"{abs(hash(name)) % (1 << 60):064x}"
    return {
        "name": name, "model": name, "modified_at": _now(), "size": size, "digest": digest,
        "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                    "parameter_size": "3.2B", "quantization_level": "Q4_K_M"},
    }


class OllamaProtocolFake:
    """Start with ``with OllamaProtocolFake() as fake:``; ``fake.host`` is the base URL."""

    def __init__(self, models: list[str] | None = None, library: dict[str, list[int]] | None = None):
        self.models: dict[str, dict] = {m: _model_entry(m) for m in (models or ["tiny:latest"])}
        # pullable models: name -> layer sizes in bytes
        self.library: dict[str, list[int]] = library or {"newmodel:latest": [3_000_000, 12_000, 500]}
        self.reply: str | Callable[[dict], str] = "Hello there. I am a protocol fake. Nice to meet you!"
        self.chunk_delay = 0.0
        self.die_after_chunks: int | None = None
        self.error_after_chunks: int | None = None
        self.chats: list[dict] = []
        self.pulls: list[dict] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "OllamaProtocolFake":
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="ollama-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "OllamaProtocolFake":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reply_for(self, body: dict) -> str:
        return self.reply(body) if callable(self.reply) else self.reply


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: OllamaProtocolFake

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    # -- helpers ------------------------------------------------------------------------------------
    def _json(self, status: int, obj: dict) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b"{}"
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {}

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, obj: dict) -> None:
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _die(self) -> None:
        """Drop the connection mid-body, as a crashed server would."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- routes -------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        if self.path == "/api/version":
            return self._json(200, {"version": "0.0.0-protocol-fake"})
        if self.path == "/api/tags":
            return self._json(200, {"models": list(self.fake.models.values())})
        if self.path in ("/", ""):
            data = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._json(404, {"error": "404 page not found"})

    def do_POST(self) -> None:
        body = self._body()
        if self.path == "/api/show":
            return self._show(body)
        if self.path == "/api/pull":
            return self._pull(body)
        if self.path == "/api/chat":
            return self._chat(body)
        self._json(404, {"error": "404 page not found"})

    def _name(self, body: dict) -> str:
        name = body.get("model") or body.get("name") or ""
        return name if ":" in name else name + ":latest"

    def _show(self, body: dict) -> None:
        name = self._name(body)
        if name not in self.fake.models:
            return self._json(404, {"error": f"model '{body.get('model')}' not found"})
        self._json(200, {
            "modelfile": f"FROM {name}\n", "parameters": "stop \"<|im_end|>\"",
            "template": "{{ .Prompt }}", "details": self.fake.models[name]["details"],
            "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
            "capabilities": ["completion"],
        })

    def _pull(self, body: dict) -> None:
        name = self._name(body)
        self.fake.pulls.append(body)
        self._start_stream()
        self._chunk({"status": "pulling manifest"})
        layers = self.fake.library.get(name)
        if layers is None:
            self._chunk({"error": "pull model manifest: file does not exist"})
            return self._end_stream()
        for i, total in enumerate(layers):
            digest = f"sha256:{i:064x}"
            for completed in (0, total // 2, total):
                self._chunk({"status": f"pulling {digest[7:19]}", "digest": digest, "total": total, "completed": completed})
        for status in ("verifying sha256 digest", "writing manifest", "success"):
            self._chunk({"status": status})
        self.fake.models[name] = _model_entry(name, sum(layers))
        self._end_stream()

    def _chat(self, body: dict) -> None:
        fake = self.fake
        fake.chats.append(body)
        name = self._name(body)
        if name not in fake.models:
            return self._json(404, {"error": f'model "{body.get("model")}" not found, try pulling it first'})
        if not body.get("messages"):
            return self._json(400, {"error": "messages are required"})
        text = fake.reply_for(body)
        pieces = re.findall(r"\S+\s*|\s+", text) or [""]
        stream = body.get("stream", True)
        if not stream:
            return self._json(200, {"model": body["model"], "created_at": _now(),
                                    "message": {"role": "assistant", "content": text}, "done": True, "done_reason": "stop"})
        self._start_stream()
        start = time.perf_counter()
        for i, piece in enumerate(pieces):
            if fake.die_after_chunks is not None and i >= fake.die_after_chunks:
                return self._die()
            if fake.error_after_chunks is not None and i >= fake.error_after_chunks:
                self._chunk({"error": "an error was encountered while running the model: unexpected EOF"})
                return self._end_stream()
            if fake.chunk_delay:
                time.sleep(fake.chunk_delay)
            self._chunk({"model": body["model"], "created_at": _now(),
                         "message": {"role": "assistant", "content": piece}, "done": False})
        elapsed = int((time.perf_counter() - start) * 1e9)
        self._chunk({"model": body["model"], "created_at": _now(), "message": {"role": "assistant", "content": ""},
                     "done": True, "done_reason": "stop", "total_duration": elapsed, "load_duration": 0,
                     "prompt_eval_count": sum(len(m.get("content", "")) for m in body["messages"]) // 4,
                     "prompt_eval_duration": 0, "eval_count": len(pieces), "eval_duration": elapsed})
        self._end_stream()
