#!/usr/bin/env bash
# Create .venv and install fl-saliency with its test tools, from this checkout's own files.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
echo "fl-saliency installed in $(pwd)/.venv"
