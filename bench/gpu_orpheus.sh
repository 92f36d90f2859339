#!/usr/bin/env bash
# Prepared check for a lent NVIDIA GPU machine (NOT run in CI): real Unsloth Orpheus LoRA training through
# pipeline.voices.train.train_voice(backend="unsloth") on a tiny espeak-ng dataset, then one synthesised sentence.
#
#   bash bench/gpu_orpheus.sh            # from the repo root; results in $OUT (default /tmp/gpu_orpheus)
#   STEPS=10 VENV=/path/venv bash bench/gpu_orpheus.sh
#
# Exit codes: 0 ok, 2 no NVIDIA GPU, 3 cannot install unsloth (no PyPI and no ready venv), 4 model weights
# unreachable and not cached (the tiny-model fallback then still runs unless NO_FALLBACK=1), 1 anything else.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_orpheus}
VENV=${VENV:-/tmp/orpheus-venv}
STEPS=${STEPS:-10}
PIP_TIMEOUT=${PIP_TIMEOUT:-420}
mkdir -p "$OUT"
log() { echo "[gpu_orpheus $(date +%H:%M:%S)] $*"; }

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; then
  log "FAIL: no NVIDIA GPU (nvidia-smi missing or failing)"; exit 2
fi

probe() {  # probe URL -> 0 if reachable within 6 s
  timeout 10 python3 - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=6)
PY
}
PYPI_OK=0; probe https://pypi.org/simple/unsloth/ && PYPI_OK=1
HF_OK=0; probe https://huggingface.co/api/models/unsloth/orpheus-3b-0.1-ft && HF_OK=1
log "network: pypi=$PYPI_OK huggingface=$HF_OK"

if [ ! -x "$VENV/bin/python" ]; then
  # system site packages: reuse a CUDA torch the image may already have
  python3 -m venv --system-site-packages "$VENV" || { log "FAIL: python3 -m venv $VENV"; exit 3; }
fi
PY="$VENV/bin/python"
NEED="unsloth snac av soundfile scipy pyloudnorm sqlite-utils"
if ! "$PY" -c "import unsloth, snac, av, soundfile, scipy" >/dev/null 2>&1; then
  if [ "$PYPI_OK" = 1 ]; then
    log "installing: $NEED (CUDA torch comes with unsloth; several minutes)"
    t0=$(date +%s)
    timeout "$PIP_TIMEOUT" "$PY" -m pip install -q --disable-pip-version-check $NEED || { log "FAIL: pip install unsloth did not finish in ${PIP_TIMEOUT}s"; exit 3; }
    log "pip install took $(( $(date +%s) - t0 ))s"
  else
    log "FAIL: PyPI is unreachable from this machine and $VENV has no unsloth: cannot run the Unsloth check."
    log "      Prepare a venv with 'pip install $NEED' on a machine with the same image, then VENV=... bash $0"
    exit 3
  fi
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
if ! command -v espeak-ng >/dev/null; then
  log "espeak-ng missing: trying apt-get (the dataset falls back to synthetic voiced audio if this fails)"
  (timeout 120 apt-get install -y -q espeak-ng >/dev/null 2>&1 || true)
fi

PYTHONPATH="$PWD:$PWD/tests" "$PY" bench/gpu_orpheus.py --out "$OUT" --steps "$STEPS" --hf-ok "$HF_OK" 2>&1 | grep -v -E "^\s*$|it/s\]$"
rc=${PIPESTATUS[0]}
log "exit $rc; results in $OUT (report.json, sample.wav)"
exit "$rc"
