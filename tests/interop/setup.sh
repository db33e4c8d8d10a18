#!/usr/bin/env bash
# Installs the real clients the interop tests drive: a Python venv (.venv-interop at the
# repository root), node_modules here (the MCP TypeScript SDK, mcp-remote, the Inspector, the
# conformance tool with Node 22 from npm, Playwright), and Debian's chromium for the browser test.
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

npm_stamp="$here/node_modules/.installed-$(sha256sum "$here/package-lock.json" | cut -c1-16)"
if [ ! -f "$npm_stamp" ]; then
  # package.json's allowScripts lets only `node` (Node 22 for the conformance tool) run its
  # install script.
  (cd "$here" && npm ci --silent --no-audit --no-fund)
  touch "$npm_stamp"
fi

if ! command -v chromium >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -qq chromium >/dev/null || {
    $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null
  }
fi
