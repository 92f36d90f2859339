"""What the tray menu does. Each action calls the same service/capture functions as the CLI and panel."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.config import weaver_home
from pipeline.errors import WeaverError
from pipeline.workflows.recordings import manager_for
from pipeline.service import Service


@dataclass
class AppActions:
    home: Path = field(default_factory=weaver_home)
    open_panel: Callable[[], None] = lambda: None
    open_quick_chat: Callable[[], None] = lambda: None
    quit_app: Callable[[], None] = lambda: None
    notify: Callable[[str], None] = lambda msg: None
    last_error: str | None = None

    @property
    def capture(self):
        return manager_for(self.home)

    def state(self) -> str:
        """idle | listening | recording | processing — what the tray picture shows (the capture's one state)."""
        st = self.capture.status()
        if st.get("running"):
            return "recording" if st.get("recording") else "listening"
        svc = Service(home=self.home)
        try:
            busy = svc.busy_jobs()
        finally:
            svc.lib.close()
        return "processing" if busy else "idle"

    def _safely(self, fn, *args):
        try:
            return fn(*args)
        except WeaverError as e:
            self.last_error = str(e)
            self.notify(str(e))
            return None

    def toggle_capture(self) -> None:
        """Record what's playing (listening first when off; the same Record as the panel and `capture start`),
        or stop and import the recording."""
        st = self.capture.status()
        if st.get("recording"):
            self._stop_capture()
        else:
            self._safely(lambda: self.capture.record(source="loopback", live=True))

    def toggle_listen(self) -> None:
        """Listen (rolling buffer + live lines), or stop whatever runs."""
        if self.capture.status().get("running"):
            self._stop_capture()
        else:
            self._safely(lambda: self.capture.start(source="loopback", live=True))

    def _stop_capture(self) -> None:
        media_id = self._safely(self.capture.stop)
        if media_id:
            self.notify(f"capture saved as item {media_id}")

    def keep_last_line(self) -> dict | None:
        """Keep the last live line as a clip of its speaker."""
        res = self._safely(self.capture.keep_line, None)
        if res:
            ln = res["line"]
            self.notify(f"kept \"{ln['text'][:60]}\" ({ln.get('name') or ln.get('speaker') or '?'}) in item {res['media_id']}")
        return res

    def save_last(self, minutes: float = 5.0) -> int | None:
        media_id = self._safely(self.capture.save_last, minutes)
        if media_id:
            self.notify(f"last {minutes:g} minutes saved as item {media_id}")
        return media_id

    def recent_items(self, n: int = 5) -> list[dict]:
        svc = Service(home=self.home)
        try:
            return svc.list_media()[-n:][::-1]
        finally:
            svc.lib.close()
