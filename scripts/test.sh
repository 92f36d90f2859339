#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite. Extra args go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test || exit 1
export PYTHONUNBUFFERED=1
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" = 5 ]; then echo "no tests were collected: failing" >&2; exit 1; fi
exit "$rc"
