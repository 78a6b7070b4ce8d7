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

cargo test --workspace --release --no-run

wait "$llama_pid" || { cat target/llama-venv.log; echo "scripts/llama-cpp-venv.sh failed" >&2; exit 1; }
wait "$inspect_pid" || { cat target/inspect-venv.log; echo "scripts/inspect-venv.sh failed" >&2; exit 1; }
tail -n 1 target/llama-venv.log target/inspect-venv.log

cargo test --workspace --release "$@"

# The Hugging Face hub source (cargo feature `hf-hub`, off by default), against a hub stand-in
# that the test starts on 127.0.0.1.
cargo test --release -p psyche-local --features hf-hub --test hub
