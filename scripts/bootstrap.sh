#!/usr/bin/env bash
# Create .venv (Python 3.11) and install Weir with its dev extras. Idempotent and cached: re-runs
# only when pyproject.toml changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if ! command -v uv >/dev/null; then
  "$python" -m pip install --quiet --user uv 2>/dev/null || "$python" -m pip install --quiet uv
fi
uv=$(command -v uv || echo "$("$python" -m site --user-base)/bin/uv")

stamp=.venv/.weir-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$uv" venv --quiet --python "$python" .venv
"$uv" pip install --quiet --python .venv/bin/python -e '.[dev]'
echo "$want" > "$stamp"
