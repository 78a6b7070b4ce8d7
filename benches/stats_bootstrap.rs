//! Bootstrap throughput of psyche-stats (compare with `scripts/bench_stats_numpy.py`).
//!
//! ```text
//! cargo bench -p psyche-stats --bench stats_bootstrap
//! ```
//!
//! - `bootstrap_mean/100k_items_10k_resamples`: 10,000 percentile-bootstrap resamples of the
//!   mean of 100,000 items (10⁹ index draws).
//! - `cluster_bootstrap/1000_clusters_10k_resamples`: 10,000 cluster-bootstrap resamples over
//!   1,000 clusters of 100 items each.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use psyche_stats::{BootstrapInterval, bootstrap_mean, cluster_bootstrap_mean};
use rand::Rng;

fn inputs() -> (Vec<f64>, Vec<u32>) {
    let mut rng = psyche_core::seeded_rng(1);
    let values: Vec<f64> = (0..100_000).map(|_| rng.random::<f64>()).collect();
    let clusters: Vec<u32> = (0..100_000u32).map(|i| i / 100).collect();
    (values, clusters)
}

fn bench(c: &mut Criterion) {
    let (values, clusters) = inputs();
    let mut g = c.benchmark_group("bootstrap_mean");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("100k_items_10k_resamples", |b| {
        b.iter(|| bootstrap_mean(black_box(&values), 10_000, 0.95, 7).unwrap())
    });
    g.finish();
    let mut g = c.benchmark_group("cluster_bootstrap");
    g.sample_size(20);
    g.bench_function("1000_clusters_10k_resamples", |b| {
        b.iter(|| {
            cluster_bootstrap_mean(
                black_box(&values),
                black_box(&clusters),
                10_000,
                0.95,
                7,
                BootstrapInterval::Percentile,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
