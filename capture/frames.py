"""Screen frames with `mss`, encoded as JPEG or WebP with Pillow.

`region` picks what is grabbed: None = every monitor together (the whole virtual screen), an int = that
monitor (1 = the first/primary, as in `mss`), a `(left, top, width, height)` tuple or a dict with
those keys = a rectangle of the screen.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

from .errors import CaptureBadInputError, ScreenUnavailableError

Region = int | tuple[int, int, int, int] | dict | None


@dataclass
class Frame:
    data: bytes  # encoded image
    ext: str  # "jpg" | "webp"
    width: int
    height: int


def _mss():
    try:
        import mss
    except ImportError:
        raise ScreenUnavailableError("screen frames need the 'mss' package: pip install mss") from None
    cls = getattr(mss, "MSS", None)
    try:
        return cls() if cls is not None else mss.mss()
    except Exception as e:
        hint = " (no DISPLAY set)" if os.name == "posix" and not os.environ.get("DISPLAY") and os.uname().sysname == "Linux" else ""
        raise ScreenUnavailableError(f"cannot grab the screen{hint}: {e}") from None


class FrameGrabber:
    """Grabs one region of the screen and encodes it; create and use it in one thread."""

    def __init__(self, region: Region = None, *, fmt: str = "jpeg", quality: int = 75, max_width: int | None = 1280):
        fmt = fmt.lower()
        if fmt in ("jpeg", "jpg"):
            self.ext, self._pil = "jpg", "JPEG"
        elif fmt == "webp":
            self.ext, self._pil = "webp", "WEBP"
        else:
            raise CaptureBadInputError(f"frame format must be jpeg or webp, not {fmt!r}")
        self.quality = int(quality)
        self.max_width = max_width
        self._sct = _mss()
        self.monitor = self._resolve(region)

    def _resolve(self, region: Region) -> dict:
        mons = self._sct.monitors
        if region is None:
            return dict(mons[0])
        if isinstance(region, int):
            if not 0 <= region < len(mons):
                raise CaptureBadInputError(f"no monitor {region}: this screen has {len(mons) - 1}")
            return dict(mons[region])
        if isinstance(region, dict):
            r = {k: int(region[k]) for k in ("left", "top", "width", "height")}
        else:
            left, top, width, height = (int(v) for v in region)
            r = {"left": left, "top": top, "width": width, "height": height}
        if r["width"] <= 0 or r["height"] <= 0:
            raise CaptureBadInputError(f"screen region must have a positive size, not {r}")
        return r

    def grab(self) -> Frame:
        """Grab and encode one frame."""
        from PIL import Image

        shot = self._sct.grab(self.monitor)
        img = Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")
        if self.max_width and img.width > self.max_width:
            img = img.resize((self.max_width, max(1, round(img.height * self.max_width / img.width))), Image.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, self._pil, quality=self.quality)
        return Frame(buf.getvalue(), self.ext, img.width, img.height)

    def close(self) -> None:
        try:
            self._sct.close()
        except Exception:
            pass


def grab_once(region: Region = None, fmt: str = "jpeg") -> Frame:
    """One frame of the screen (convenience for checks and previews)."""
    g = FrameGrabber(region, fmt=fmt)
    try:
        return g.grab()
    finally:
        g.close()
