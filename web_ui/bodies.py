"""Request bodies read with a cap (413 as soon as it is passed, nothing buffered beyond it) and a fast JSON
response for large row lists. Used by the server's middleware and the route modules."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response


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


def fast_json(value: Any) -> Response:
    """Serialise plain rows with json.dumps (FastAPI's generic encoder is slow on thousands of rows)."""
    return Response(json.dumps(value, ensure_ascii=False, separators=(",", ":")), media_type="application/json")
