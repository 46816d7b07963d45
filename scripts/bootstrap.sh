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
# Install only when what the install is made from changed: the install is editable, so changes
# under src/ need none. The stamp holds one line per installed extras set, "<hash> <extras>", where
# the hash covers pyproject.toml, this script, the checkout's path and the venv's Python; a line
# with another hash is stale. Any install includes the base package, so no extras ("") is satisfied
# by a current line of any extras.
stamp=.venv/.strongroom-installed
hash="$({ cat pyproject.toml scripts/bootstrap.sh; pwd; .venv/bin/python -VV; } | sha256sum | cut -d' ' -f1)"
installed=false
if [ -f "$stamp" ]; then
  while read -r h e; do
    if [ "$h" = "$hash" ] && { [ -z "$extras" ] || [ "$e" = "$extras" ]; }; then installed=true; fi
  done < "$stamp"
fi
# A stamp says what was installed, not what is still there: the entry points must be too.
for exe in strongroom ${extras:+pytest mypy lint-imports}; do
  [ -x ".venv/bin/$exe" ] || installed=false
done
if [ "$installed" = false ]; then
  spec="."
  [ -n "$extras" ] && spec=".[$extras]"
  # Current lines only, and none for this extras set until its install has succeeded.
  kept="$(grep -s "^$hash " "$stamp" | grep -v " ${extras:-base}\$" || true)"
  rm -f "$stamp"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec"
  { [ -n "$kept" ] && echo "$kept"; echo "$hash ${extras:-base}"; } > "$stamp"
fi
# Byte-compile, as a wheel install would: an editable install leaves that to the first import, and
# with PYTHONDONTWRITEBYTECODE set every start would compile the whole package again (~0.2 s).
# compileall skips what is up to date (~0.1 s when nothing changed).
.venv/bin/python -m compileall -q src >/dev/null
