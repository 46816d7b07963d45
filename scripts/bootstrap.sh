# Sourced by scripts/dev and scripts/test: make .venv with Python 3.11+ and install Strongroom into it.
# Usage: . scripts/bootstrap.sh [EXTRAS]   (EXTRAS e.g. "test")
set -euo pipefail
extras="${1:-}"
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "Strongroom needs Python 3.11 or newer (found: $("$py" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$py" -m venv .venv 2>/dev/null; then
    # Debian/Ubuntu ship venv separately.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    else
      echo "python3 -m venv failed: install python3-venv (sudo apt-get install python3-venv)" >&2
      exit 1
    fi
    rm -rf .venv && "$py" -m venv .venv
  fi
fi
spec="."
[ -n "$extras" ] && spec=".[$extras]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec"
# Byte-compile once, as a wheel install would: an editable install leaves that to the first import,
# and with PYTHONDONTWRITEBYTECODE set every start would compile the whole package again (~0.2 s).
.venv/bin/python -m compileall -q src >/dev/null
