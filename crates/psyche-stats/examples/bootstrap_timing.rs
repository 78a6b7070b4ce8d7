//! Times the two bootstrap workloads of the `stats_bootstrap` bench (best of 3 runs) and prints
//! one line each; `scripts/bench_stats_numpy.py` runs this next to the NumPy equivalent.
//!
//! Besides wall time it prints the CPU time of all threads (Linux `/proc/self/task/*/schedstat`),
//! which stays meaningful when the machine is shared with other work.
//!
//! ```text
//! cargo run --release -p psyche-stats --example bootstrap_timing
//! ```

use std::time::Instant;

use psyche_stats::{BootstrapInterval, bootstrap_mean, cluster_bootstrap_mean};
use rand::Rng;

/// CPU seconds used so far by all threads of this process (Linux only).
fn cpu_seconds() -> Option<f64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total as f64 / 1e9)
}

/// Best wall time and best CPU time over `runs` runs.
fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, f64) {
    let (mut wall, mut cpu) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..runs {
        let c0 = cpu_seconds();
        let t = Instant::now();
        std::hint::black_box(f());
        wall = wall.min(t.elapsed().as_secs_f64());
        if let (Some(a), Some(b)) = (c0, cpu_seconds()) {
            cpu = cpu.min(b - a);
        }
    }
    (wall, cpu)
}

fn main() -> Result<(), psyche_stats::StatsError> {
    let mut rng = psyche_core::seeded_rng(1);
    let values: Vec<f64> = (0..100_000).map(|_| rng.random::<f64>()).collect();
    let clusters: Vec<u32> = (0..100_000u32).map(|i| i / 100).collect();
    let e = bootstrap_mean(&values, 10_000, 0.95, 7)?;
    let (t, cpu) = best_of(3, || bootstrap_mean(&values, 10_000, 0.95, 7));
    println!(
        "rust  bootstrap_mean     100k items x 10k resamples: {t:8.3} s wall {cpu:8.3} s cpu  (CI [{:.5}, {:.5}], threads {})",
        e.ci_low,
        e.ci_high,
        rayon::current_num_threads()
    );
    let run = || {
        cluster_bootstrap_mean(
            &values,
            &clusters,
            10_000,
            0.95,
            7,
            BootstrapInterval::Percentile,
        )
    };
    let e = run()?;
    let (t, cpu) = best_of(3, run);
    println!(
        "rust  cluster_bootstrap  1000 clusters x 10k resamples: {t:8.3} s wall {cpu:8.3} s cpu  (CI [{:.5}, {:.5}])",
        e.ci_low, e.ci_high
    );
    Ok(())
}
