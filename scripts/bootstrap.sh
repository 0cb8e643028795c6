#!/usr/bin/env bash
# Install the locked dependencies into .venv (uv sync --frozen --all-packages); installs uv first if missing.
# Used by `task deps` (and so by `task up` / `task test`) and by .ci/run on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

uv_cmd=(uv)
if ! command -v uv >/dev/null 2>&1; then
  python_bin="$(command -v python3 || command -v python || true)"
  if [[ -z "$python_bin" ]]; then
    echo "[bootstrap] FAILED: neither uv nor python3 is installed" >&2
    exit 1
  fi
  echo "[bootstrap] uv not found: pip install uv"
  # A Debian system Python refuses plain pip installs (PEP 668): fall back to a user install.
  "$python_bin" -m pip install --quiet uv \
    || "$python_bin" -m pip install --quiet --user --break-system-packages uv
  export PATH="$HOME/.local/bin:$PATH"
  command -v uv >/dev/null 2>&1 || uv_cmd=("$python_bin" -m uv)
fi
# --all-packages: every workspace member (libs/*, services/*), so a new service needs no entry here.
"${uv_cmd[@]}" sync --frozen --all-packages
