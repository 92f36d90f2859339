"""`weaver serve`: the panel server without a window."""

from __future__ import annotations

from .commands import command


def add_parsers(sub) -> None:
    s = sub.add_parser("serve", help="start the panel server (no window); prints the panel URL with its token")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--background", action="store_true",
                   help="started by another command: print the address without the token (it is in run/server.json)")




@command("serve")
def cmd_serve(a) -> int:
    from .app import serve

    return serve(a.port, background=a.background)
