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
        """idle | capturing | processing — what the tray picture shows."""
        st = self.capture.status()
        if st.get("running"):
            return "capturing"
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
        """Start capturing what's playing (recording to the library), or stop and import the recording."""
        if self.capture.status().get("running"):
            media_id = self._safely(self.capture.stop)
            if media_id:
                self.notify(f"capture saved as item {media_id}")
        else:
            self._safely(lambda: self.capture.start(source="loopback", record=True))

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
