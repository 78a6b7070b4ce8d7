#!/usr/bin/env bash
# psyche-local's LoRA step against PyTorch + peft on the same model and machine.
#
# Runs the `local_lora` bench (step workload: rank 8 on q,v, batch 8 x ~127 tokens) and the
# PyTorch anchor (same shape: batch 8 x 128, r8 q,v, 2 threads) back to back, ROUNDS times
# interleaved, and prints each side's step time and peak RSS with the load average around it.
#
#   scripts/bench-lora-vs-torch.sh [ROUNDS]        # default 3 rounds
#
# Environment:
#   TORCH_PY  python with torch, transformers, peft, gguf, numpy (default: python3). Make one
#             outside the repository, e.g.
#               python3 -m venv ../venv-torch && ../venv-torch/bin/pip install torch transformers peft gguf numpy
#   ANCHOR    the PyTorch anchor script (default: ../shared/anchors/torch_lora.py beside the
#             repository); usage `python torch_lora.py THREADS BATCH SEQ`, reads
#             ./model/SmolLM2-135M-Instruct.Q4_1.gguf
#   THREADS   threads for both sides (default 2)
#   SKIP_TORCH=1 runs only psyche's side.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ROUNDS="${1:-3}"
THREADS="${THREADS:-2}"
TORCH_PY="${TORCH_PY:-python3}"
ANCHOR="${ANCHOR:-$ROOT/../shared/anchors/torch_lora.py}"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"

cd "$ROOT"
echo "== building the bench"
cargo bench -p psyche-local --bench local_lora --no-run 2>&1 | tail -1

# The bench fetches the model into psyche's cache on first use; the anchor reads the same file.
find_gguf() {
    for d in "${PSYCHE_HOME:+$PSYCHE_HOME/models}" "${XDG_CACHE_HOME:-$HOME/.cache}/psyche/models"; do
        [ -n "$d" ] && [ -f "$d/$GGUF_NAME" ] && { echo "$d/$GGUF_NAME"; return; }
    done
}

run_psyche() {
    echo "-- psyche-local (load before: $(cut -d' ' -f1-3 /proc/loadavg))"
    PSYCHE_LORA_BENCH=step PSYCHE_BENCH_THREADS="$THREADS" \
        cargo bench -q -p psyche-local --bench local_lora 2>/dev/null | sed 's/^/   /'
    echo "   (load after: $(cut -d' ' -f1-3 /proc/loadavg))"
}

run_torch() {
    local gguf work
    gguf="$(find_gguf)"
    if [ -z "$gguf" ]; then
        echo "-- torch: $GGUF_NAME not in psyche's model cache (run the psyche side first)"
        return
    fi
    work="$(mktemp -d)"
    mkdir -p "$work/model"
    ln -s "$gguf" "$work/model/$GGUF_NAME"
    echo "-- torch + peft (load before: $(cut -d' ' -f1-3 /proc/loadavg))"
    (cd "$work" && /usr/bin/time -f "   peak RSS %M kB, wall %e s" \
        "$TORCH_PY" "$ANCHOR" "$THREADS" 8 128 2>&1 | grep -E "torch LoRA|peak RSS|Error" | sed 's/^/   /')
    echo "   (load after: $(cut -d' ' -f1-3 /proc/loadavg))"
    rm -rf "$work"
}

if [ "${SKIP_TORCH:-0}" != 1 ]; then
    if ! "$TORCH_PY" -c "import torch, transformers, peft, gguf" 2>/dev/null; then
        echo "TORCH_PY=$TORCH_PY cannot import torch, transformers, peft and gguf; see the header" >&2
        exit 1
    fi
    [ -f "$ANCHOR" ] || { echo "anchor script $ANCHOR not found; set ANCHOR" >&2; exit 1; }
fi

echo "== $(nproc) CPUs, $THREADS threads, $ROUNDS rounds; $(date -u +%FT%TZ)"
for r in $(seq 1 "$ROUNDS"); do
    echo "== round $r"
    run_psyche
    [ "${SKIP_TORCH:-0}" = 1 ] || run_torch
done
