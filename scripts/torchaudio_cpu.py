"""Make torchaudio importable beside a CPU-only torch (run by scripts/setup.sh; idempotent).

PyPI ships torchaudio only as CUDA builds: their compiled extension (torchaudio/lib/*.so) links CUDA torch
libraries and fails to load beside a ``+cpu`` torch, so ``import torchaudio`` fails, and with it pyannote.audio.
torchaudio loads that extension only when its files are present (it skips it when they are absent) and the parts
pyannote.audio uses (Kaldi fbank, MFCC, resampling) are plain torch code. So on a CPU torch whose torchaudio
will not import, this moves the extension files aside into ``lib/cuda-extension-disabled/``.
Nothing happens when torchaudio is absent, already imports, or torch is a CUDA build.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path


def imports_cleanly() -> tuple[bool, str]:
    """Whether `import torchaudio` works in a fresh interpreter (and its error line when not)."""
    proc = subprocess.run([sys.executable, "-c", "import torchaudio"], capture_output=True, text=True)
    lines = proc.stderr.strip().splitlines()
    return proc.returncode == 0, (lines[-1] if lines else "")


def main() -> int:
    spec = importlib.util.find_spec("torchaudio")
    if spec is None or not spec.origin:
        return 0
    ok, error = imports_cleanly()
    if ok:
        return 0
    import torch

    if torch.version.cuda is not None:
        print(f"torchaudio does not import beside CUDA torch ({error}); left as is", file=sys.stderr)
        return 0
    lib = Path(spec.origin).parent / "lib"
    aside = lib / "cuda-extension-disabled"
    aside.mkdir(exist_ok=True)
    moved = [p.name for p in lib.glob("*.so")]
    for name in moved:
        (lib / name).replace(aside / name)
    ok, error = imports_cleanly()
    if not ok:
        print(f"torchaudio still does not import ({error})", file=sys.stderr)
        return 1
    print(f"torchaudio: CUDA-linked extension moved aside for CPU torch ({', '.join(moved)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
