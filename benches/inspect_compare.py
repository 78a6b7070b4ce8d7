#!/usr/bin/env python3
"""Throughput of psyche-runner vs inspect_ai on the same zero-latency local test server.

Usage (from the repository root, after `scripts/inspect-venv.sh`):

    python3 benches/inspect_compare.py [--samples 5000] [--concurrency 1000]

1. Builds and starts `cargo run --release -p psyche-runner --example throughput -- N C --serve`,
   which starts psyche's test server (OpenAI wire format, deterministic answers, no latency),
   runs the psyche eval against it (one generation per sample, JSONL log) and prints its rate,
   then keeps the server up.
2. Runs the same eval with inspect_ai against that server through its `openai-api` provider
   (model `openai-api/psyche/bench-model`, `PSYCHE_BASE_URL`, `max_connections` = C,
   `display="none"`, `log_realtime=False`, one `generate()` per sample, `.json` log).
3. Prints both rates and their ratio. Goal: psyche ≥ 10× inspect_ai.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PY = ROOT / ".venv-inspect" / "bin" / "python"

INSPECT_RUN = r"""
import sys, time
from inspect_ai import Task, eval as inspect_eval
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.solver import generate
from inspect_ai.scorer import match

n, conc, log_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
samples = [Sample(id=f"s{i}", input=f"What is {i % 1000} + {i % 997}?", target=str(i % 1000 + i % 997))
           for i in range(n)]
task = Task(dataset=MemoryDataset(samples), solver=generate(), scorer=match())
t0 = time.perf_counter()
logs = inspect_eval(task, model="openai-api/psyche/bench-model", max_connections=conc,
                    max_samples=conc, max_tokens=16, display="none", log_realtime=False,
                    log_dir=log_dir, log_format="json", score_display=False)
dt = time.perf_counter() - t0
done = len(logs[0].samples or [])
print(f"inspect samples/s: {done / dt:.1f} ({done} samples, concurrency {conc}, {dt:.2f}s, status {logs[0].status})")
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=1000)
    args = ap.parse_args()
    if not VENV_PY.exists():
        print(f"missing {VENV_PY}: run scripts/inspect-venv.sh first", file=sys.stderr)
        return 2
    server = subprocess.Popen(
        ["cargo", "run", "--quiet", "--release", "-p", "psyche-runner", "--example", "throughput", "--",
         str(args.samples), str(args.concurrency), "--serve"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        psyche_line = server.stdout.readline().strip()
        url_line = server.stdout.readline().strip()
        if not url_line.startswith("url: "):
            print(f"unexpected output from the throughput example: {psyche_line!r} {url_line!r}", file=sys.stderr)
            return 1
        url = url_line[len("url: "):]
        env = dict(os.environ, PSYCHE_BASE_URL=url, PSYCHE_API_KEY="not-needed")
        with tempfile.TemporaryDirectory() as logs:
            out = subprocess.run([str(VENV_PY), "-c", INSPECT_RUN, str(args.samples), str(args.concurrency), logs],
                                 env=env, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stdout, out.stderr, file=sys.stderr)
            return 1
        inspect_line = out.stdout.strip().splitlines()[-1]
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    print(psyche_line)
    print(inspect_line)
    rate = lambda line: float(line.split(":")[1].split()[0])
    print(f"ratio psyche/inspect: {rate(psyche_line) / rate(inspect_line):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
