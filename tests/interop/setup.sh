#!/usr/bin/env bash
# Installs the real clients the interop tests drive, into this folder only:
# a Python venv (.venv-interop at the repository root) and node_modules here.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.venv-interop"

stamp="$venv/.installed-$(sha256sum "$here/requirements.txt" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  # fastmcp 4.1.6 pins certifi>=2026.10.19, which the package mirror lacks: its other
  # dependencies are in requirements.txt, and the two wheels go in without theirs.
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps 'fastmcp==4.1.6' 'fastmcp-slim==4.1.6'
  touch "$stamp"
fi

if [ ! -d "$here/node_modules/@scalekit-sdk/node" ]; then
  (cd "$here" && npm ci --silent --no-audit --no-fund)
fi
