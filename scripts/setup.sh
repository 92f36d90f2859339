#!/usr/bin/env bash
# Idempotent setup: Debian packages (when root), .venv, Python dependencies. Usage: scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_TEST=0; [ "${1:-}" = "--test" ] && WITH_TEST=1

APT_PKGS="ffmpeg espeak-ng sox libsox-fmt-all libsndfile1 pulseaudio pulseaudio-utils xvfb x11-utils trayer
 chromium poppler-utils imagemagick build-essential cmake python3-venv python3-dev
 libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0
 libxcb-randr0 libxcb-xkb1 libxkbcommon-x11-0 libnss3 libegl1 libgl1 libxcomposite1 libxdamage1 libxrandr2
 libxtst6 libxshmfence1 libgbm1 libasound2 libfontconfig1 libdbus-1-3"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages:$missing" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
  else
    echo "setup: missing Debian packages (run as root or: sudo apt-get install$missing)" >&2
  fi
fi

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.weaver-installed-$WITH_TEST"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip "setuptools<81" wheel >&2
  # CPU torch first so no extra below pulls a CUDA build; set TORCH_INDEX to PyTorch's CPU wheel index on a
  # machine where plain PyPI would give the multi-GB CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} >&2
  extras="all"; [ "$WITH_TEST" = 1 ] && extras="all,test"
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" .venv/bin/python -m pip install -q -e ".[$extras]" >&2
  # whisperX pins torch 2.8 (a 7.5 GB CUDA build); its code runs on ours: install it without its pins
  .venv/bin/python -m pip install -q --no-deps "whisperx==3.8.6" >&2
  # PyPI's torchaudio is a CUDA build: beside CPU torch its compiled extension is moved aside (see the script)
  .venv/bin/python scripts/torchaudio_cpu.py
  touch "$stamp"
fi
