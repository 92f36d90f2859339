#!/usr/bin/env bash
# Set up (idempotent) and start the app: tray + panel, or the panel server alone when there is no display.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/weaver "$@"
