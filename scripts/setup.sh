#!/usr/bin/env bash
# Build both virtual environments from the lock files (idempotent, skips what is current).
#   .venv       Python 3.11+: NLU, actions, worker, tests     (requirements/main.lock)
#   .venv-rasa  Python 3.10:  Rasa Open Source 3.6.21         (requirements/rasa.lock)
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

find_python() {  # $1 = version like 3.10; prints an interpreter path or nothing
  local v=$1 c
  for c in "python$v" "$HOME/.pyenv/versions/$v"*/bin/python "$(command -v pyenv >/dev/null && pyenv root 2>/dev/null)/versions/$v"*/bin/python; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$v'.split('.')))" 2>/dev/null; then
      command -v "$c"; return
    fi
  done
  if command -v uv >/dev/null 2>&1; then uv python find "$v" 2>/dev/null || true; fi
}

build_venv() {  # $1 = dir, $2 = python, $3 = lock file, $4.. = packages installed first
  local dir=$1 py=$2 lock=$3; shift 3
  local want; want=$(sha256sum "$lock" | cut -c1-16)
  if [[ -f "$dir/.lock-hash" && "$(cat "$dir/.lock-hash")" == "$want" ]]; then
    log "$dir is up to date"; return
  fi
  [[ -x "$dir/bin/python" ]] || { log "creating $dir with $py"; "$py" -m venv "$dir"; }
  "$dir/bin/python" -m pip install --quiet --upgrade pip wheel
  if [[ $# -gt 0 ]]; then log "installing $* into $dir"; "$dir/bin/python" -m pip install --progress-bar on "$@"; fi
  log "installing $lock into $dir (first time: a few minutes)"
  "$dir/bin/python" -m pip install --progress-bar on -r "$lock"
  echo "$want" > "$dir/.lock-hash"
}

PY311=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$PY311" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null || {
  echo "Python 3.11 or newer is needed for .venv (set PYTHON=/path/to/python3.11)." >&2; exit 1; }
PY310=${RASA_PYTHON:-$(find_python 3.10)}
if [[ -z "$PY310" ]]; then
  cat >&2 <<MSG
Rasa Open Source 3.6 needs Python 3.10, and none was found (looked on PATH, in pyenv, in uv).
Install one, then run this again, for example:
  pyenv install 3.10        # or: uv python install 3.10   or: apt-get install python3.10-venv
or point RASA_PYTHON at an existing interpreter: RASA_PYTHON=/path/to/python3.10 make setup
MSG
  exit 1
fi

build_venv .venv "$PY311" requirements/main.lock torch==2.13.0
build_venv .venv-rasa "$PY310" requirements/rasa.lock
log "environments ready"

# Node tools for the tests (dclint validates docker-compose.yml without a Docker engine).
if command -v npm >/dev/null 2>&1; then
  if [[ ! -x tools/node_modules/.bin/dclint ]]; then
    log "installing tools/ (npm ci)"; (cd tools && npm ci --no-audit --no-fund --silent) || log "npm ci failed: the compose check will be skipped"
  fi
else
  log "npm not found: the docker-compose.yml check will be skipped (apt-get install npm)"
fi

# Debian's Chromium for the browser tests (playwright drives it; it never downloads a browser of its own).
if [[ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian's chromium for the browser tests"
    apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } \
      || log "apt-get install chromium failed: the browser tests will fail (install it, or set CHROMIUM)"
  else
    log "chromium not found: the browser tests need it (sudo apt-get install chromium, or set CHROMIUM=/path)"
  fi
fi
