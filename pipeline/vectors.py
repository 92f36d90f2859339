"""Small vector helpers shared by the layers (a ground module: imports only numpy)."""

from __future__ import annotations

import numpy as np


def unit(v) -> np.ndarray:
    """``v`` as a float32 vector of length 1 (a zero vector stays zero): how voiceprints are compared."""
    v = np.asarray(v, dtype=np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-9)
