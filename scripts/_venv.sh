# Sourced by the scripts here: create .venv on first use and keep it in step with the
# requirements (re-installs only when a requirements file or setup.py changed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${D3_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "setting up $VENV (first run only)" >&2
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.d3-installed"
want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" "$ROOT/setup.py" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # About a minute on a fresh machine: say so, and show pip's progress (one line per
  # package) instead of a silent wait.
  echo "installing D3 and its dependencies into $VENV (about a minute the first time)" >&2
  started=$SECONDS
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
  "$VENV/bin/python" -m pip install --progress-bar off -e "$ROOT[dev]" 2>&1 \
    | grep --line-buffered -E '^(Collecting|Successfully installed|ERROR)' >&2 || true
  "$VENV/bin/python" -c "import d3, bittensor" \
    || { echo "install failed: rerun with pip to see why: $VENV/bin/pip install -e '$ROOT[dev]'" >&2; exit 1; }
  echo "installed in $((SECONDS - started)) s" >&2
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
