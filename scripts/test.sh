#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, Rust tests (unit, store contract on
# memory, SQLite and a PostgreSQL server it starts on loopback, HTTP, guard), then the real
# clients against the real binaries on loopback: the MCP Python and TypeScript SDKs,
# mcp-remote, the MCP Inspector CLI, the official MCP conformance tool, the Scalekit Python
# and Node SDKs, FastMCP, and a person in Chromium (Playwright).
# Installs what it needs itself. Screenshots, conformance results and server logs land in
# test-artifacts/interop/.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "start PostgreSQL on loopback (Debian postgresql)"
TEST_POSTGRES_URL="$(scripts/postgres.sh)"
export TEST_POSTGRES_URL
trap 'scripts/postgres.sh stop' EXIT

step "cargo test"
cargo test --workspace --locked

step "build the binaries the interop tests run"
cargo build --workspace --bins --locked

step "install the real clients (Python venv, npm)"
tests/interop/setup.sh

step "interop tests"
.venv-interop/bin/python -m pytest tests/interop -q -c tests/interop/pytest.ini
