"""The character's best frame as a persona avatar: of a few frames taken while the character speaks (their
longest kept lines), the sharpest well-exposed one, cropped to the 2:3 portrait a character card uses."""

from __future__ import annotations

import io

import numpy as np

AVATAR_SIZE = (400, 600)


def frame_score(jpeg: bytes) -> float:
    """Sharpness (variance of the Laplacian) damped for frames that are mostly black or blown out; -1 if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        g = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError):
        return -1.0
    if g.shape[0] < 3 or g.shape[1] < 3:
        return -1.0
    lap = g[1:-1, 1:-1] * 4 - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    mean = float(g.mean())
    exposure = max(0.0, 1.0 - abs(mean - 118.0) / 118.0)
    return float(lap.var()) * (0.2 + exposure)


def best_frame(jpegs: list[bytes | None]) -> bytes | None:
    """The best of the candidate frames (None when there is none)."""
    scored = [(frame_score(j), i, j) for i, j in enumerate(jpegs) if j]
    scored = [s for s in scored if s[0] >= 0]
    return max(scored)[2] if scored else None


def portrait(jpeg: bytes):
    """The frame centre-cropped to 2:3 and scaled to AVATAR_SIZE (a PIL image)."""
    from PIL import Image

    img = Image.open(io.BytesIO(jpeg)).convert("RGB")
    w, h = img.size
    tw = min(w, int(h * 2 / 3))
    th = min(h, int(tw * 3 / 2))
    left, top = (w - tw) // 2, (h - th) // 2
    return img.crop((left, top, left + tw, top + th)).resize(AVATAR_SIZE)
