#!/usr/bin/env python3
"""Bootstrap timings: psyche-stats (Rust) next to the same workloads in NumPy.

    python3 -m venv .venv-stats && .venv-stats/bin/pip install numpy
    .venv-stats/bin/python scripts/bench_stats_numpy.py            # both
    .venv-stats/bin/python scripts/bench_stats_numpy.py --numpy-only

Workloads (identical to benches/stats_bootstrap.rs and the bootstrap_timing example):
  1. percentile bootstrap of the mean: 100,000 items, 10,000 resamples (1e9 index draws);
  2. cluster bootstrap of the pooled mean: 1,000 clusters of 100 items, 10,000 resamples.
NumPy draws indices in chunks (a 10,000 x 100,000 index matrix would need 8 GB) with
Generator.integers, gathers and averages — the idiomatic vectorised way (single-threaded,
as NumPy is). Best of 3 runs; both wall and CPU time are printed, because on a shared machine
wall time mostly measures the other load. psyche-stats uses all rayon threads.
"""
import os
import subprocess
import sys
import time

import numpy as np

N, B, C = 100_000, 10_000, 1_000
CHUNK = 100


def best_of(runs, f):
    """Best wall time and best CPU time (all threads) over `runs` runs."""
    best, best_cpu = float("inf"), float("inf")
    out = None
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        out = f()
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return best, best_cpu, out


def bootstrap_mean(values, rng):
    reps = np.empty(B)
    for start in range(0, B, CHUNK):
        idx = rng.integers(0, values.size, (CHUNK, values.size))
        reps[start:start + CHUNK] = values[idx].mean(axis=1)
    return np.percentile(reps, [2.5, 97.5])


def cluster_bootstrap(sums, counts, rng):
    idx = rng.integers(0, sums.size, (B, sums.size))
    reps = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    return np.percentile(reps, [2.5, 97.5])


def main():
    rng = np.random.default_rng(1)
    values = rng.random(N)
    ids = np.arange(N) // (N // C)
    sums = np.bincount(ids, weights=values)
    counts = np.bincount(ids).astype(float)
    t, cpu, ci = best_of(3, lambda: bootstrap_mean(values, rng))
    print(f"numpy bootstrap_mean     100k items x 10k resamples: {t:8.3f} s wall {cpu:8.3f} s cpu  (CI [{ci[0]:.5f}, {ci[1]:.5f}], numpy {np.__version__})")
    t, cpu, ci = best_of(3, lambda: cluster_bootstrap(sums, counts, rng))
    print(f"numpy cluster_bootstrap  1000 clusters x 10k resamples: {t:8.3f} s wall {cpu:8.3f} s cpu  (CI [{ci[0]:.5f}, {ci[1]:.5f}])")
    if "--numpy-only" in sys.argv:
        return
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(["cargo", "run", "--quiet", "--release", "-p", "psyche-stats", "--example",
                    "bootstrap_timing"], cwd=root, check=True)


if __name__ == "__main__":
    main()
