#!/usr/bin/env bash
# Install inspect_ai (PyPI, pinned) plus `jsonschema` and `openai` into `.venv-inspect/` at the
# repository root. Used by psyche-runner's test `inspect_export` (schema validation of the
# exported EvalLog and read-back with `inspect_ai.log.read_eval_log`) and by
# `benches/inspect_compare.py` (inspect_ai's throughput on the same test server).
#
# Idempotent: when the venv already imports the pinned versions it exits within a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-inspect"
INSPECT_VERSION="0.3.285"
PY="${PYTHON:-python3}"

venv_ok() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<PYEOF 2>/dev/null
import importlib.metadata as m, inspect_ai, jsonschema, openai  # noqa: F401
assert m.version("inspect_ai") == "$INSPECT_VERSION"
PYEOF
}

if venv_ok; then
  echo "inspect-venv: $VENV already has inspect_ai $INSPECT_VERSION"
  exit 0
fi
echo "inspect-venv: creating $VENV (inspect_ai $INSPECT_VERSION)"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "inspect_ai==$INSPECT_VERSION" jsonschema openai
venv_ok || { echo "inspect-venv: install finished but inspect_ai does not import" >&2; exit 1; }
echo "inspect-venv: installed"
