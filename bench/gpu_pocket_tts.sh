#!/usr/bin/env bash
# Prepared check of Pocket TTS with REAL weights, for a machine with network (and optionally an NVIDIA GPU); NOT run
# in CI. Fetches the pinned weights into the Hugging Face cache (gated repo: accept the terms at
# https://huggingface.co/kyutai/pocket-tts and export HF_TOKEN, or `hf auth login` first), then runs
# bench/gpu_pocket_tts.py: our loader, clone, streaming synthesis on CPU (2 threads) and CUDA, the voice check.
#
#   bash bench/gpu_pocket_tts.sh                  # from the repo root; results in $OUT (default /tmp/gpu_pocket_tts)
#   LANGUAGE=french VENV=/path/venv bash bench/gpu_pocket_tts.sh
#
# Exit codes: 3 cannot install pocket-tts, 4 weights unreachable and not cached, 1 anything else, 0 ok.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_pocket_tts}
VENV=${VENV:-.venv}
LANGUAGE=${LANGUAGE:-english}
mkdir -p "$OUT"
log() { echo "[gpu_pocket_tts $(date +%H:%M:%S)] $*"; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || log "no NVIDIA GPU: CPU numbers only"

[ -x "$VENV/bin/python" ] || python3 -m venv --system-site-packages "$VENV" || { log "FAIL: venv $VENV"; exit 3; }
PY="$VENV/bin/python"
if ! "$PY" -c "import pocket_tts, sentencepiece, soundfile, av, sqlite_utils" >/dev/null 2>&1; then
  log "installing pocket-tts==4.0.1 and what our code needs"
  timeout 600 "$PY" -m pip install -q "pocket-tts==4.0.1" "sentencepiece==0.2.3" soundfile av sqlite-utils pyyaml \
    || { log "FAIL: pip install pocket-tts"; exit 3; }
fi
# the exact files and revisions our loader reads (from the wheel's config), fetched into the HF cache
FETCH=$(PYTHONPATH="$PWD" "$PY" -c "from pipeline.voices import pocket; print(pocket.fetch_command('$LANGUAGE'))") || { log "FAIL: $FETCH"; exit 1; }
HF="$VENV/bin/hf"; [ -x "$HF" ] || HF=hf
log "fetching: $FETCH"
if ! timeout 900 bash -c "${FETCH//hf download/$HF download}" >"$OUT/fetch.log" 2>&1; then
  log "weights not fetched (see $OUT/fetch.log: no network, or the gated repo's terms not accepted / no HF_TOKEN)"
fi
PYTHONPATH="$PWD" "$PY" bench/gpu_pocket_tts.py --out "$OUT" --language "$LANGUAGE" 2>&1 | grep -v -E "^\s*$"
rc=${PIPESTATUS[0]}
log "exit $rc; results in $OUT (report.json, sample.wav, voice_state.safetensors)"
exit "$rc"
