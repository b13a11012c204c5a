#!/usr/bin/env bash
# Create .venv (or $VENV) and install fl-saliency with every extra and its test tools, at the exact versions of
# requirements.lock (regenerated from pyproject.toml by .ci/lock), then this checkout itself without dependencies.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r requirements.lock
"$VENV/bin/python" -m pip install --quiet --no-deps -e .
echo "fl-saliency installed in $(cd "$VENV" && pwd)"
