//! Coverage of an experiment's headline interval over many replications of an organism, beside
//! the methods it replaced, computed from the same replications.

use std::collections::BTreeMap;
use std::path::Path;

use psyche_stats::{
    ArmData, Stat, legacy_pooled_items_paired_t, legacy_seed_bootstrap, paired_difference,
};
use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// One replication of an experiment on a fresh organism.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// The planted difference (treatment − control) of the training procedure.
    pub truth: f64,
    /// The experiment's own headline difference with its interval.
    pub headline: Stat,
    /// The per-(arm, run, item) values the headline was computed from, read back from the
    /// experiment's result (for the old methods).
    pub data: ArmData,
    /// The treatment arm's name in `data`.
    pub treatment: String,
    /// The control arm's name in `data`.
    pub control: String,
}

/// How one interval method fared over the replications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Share of replications whose interval contained the truth.
    pub coverage: f64,
    /// Monte Carlo SE of `coverage`.
    pub mc_se: f64,
    /// Share whose interval excluded zero.
    pub excludes_zero: f64,
    /// Mean interval width.
    pub mean_width: f64,
    /// Replications with an interval.
    pub n: usize,
}

impl Check {
    fn of(hits: impl Iterator<Item = Option<(f64, f64, f64)>>) -> Self {
        let ok: Vec<(f64, f64, f64)> = hits.flatten().collect();
        if ok.is_empty() {
            return Self::default();
        }
        let m = ok.len() as f64;
        let c = ok.iter().filter(|(lo, hi, t)| lo <= t && t <= hi).count() as f64 / m;
        Self {
            coverage: c,
            mc_se: (c * (1.0 - c) / m).sqrt(),
            excludes_zero: ok
                .iter()
                .filter(|(lo, hi, _)| *lo > 0.0 || *hi < 0.0)
                .count() as f64
                / m,
            mean_width: ok.iter().map(|(lo, hi, _)| hi - lo).sum::<f64>() / m,
            n: ok.len(),
        }
    }
}

/// The result of [`coverage`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageReport {
    /// Replications attempted.
    pub replications: usize,
    /// Replications whose experiment failed (excluded from every share).
    pub failed: usize,
    /// The first failure's message, if any.
    pub first_failure: Option<String>,
    /// Nominal level.
    pub level: f64,
    /// The experiment's headline interval against the planted truth.
    pub headline: Check,
    /// The method the headline used (of the first replication).
    pub method: Option<String>,
    /// Planned power of the headline's test at the planted effect, when given.
    pub planned_power: Option<f64>,
    /// Old: percentile bootstrap over per-seed values, each arm resampled.
    pub seed_bootstrap: Check,
    /// Old: paired t over the (seed, item) pairs of all seeds as if independent.
    pub pooled_items_paired_t: Check,
    /// Old: paired t over items of their means over seeds (seed-to-seed variance ignored).
    pub item_means_paired_t: Check,
}

/// The old question-level test: each item's mean over the arm's runs, paired by item, t over
/// items. Ignores the run-to-run variance.
///
/// # Errors
///
/// As [`paired_difference`] (fewer than 2 items in both arms).
pub fn legacy_item_means_paired_t(
    data: &ArmData,
    treatment: &str,
    control: &str,
    level: f64,
) -> Result<(f64, f64), SimError> {
    let mut sums: BTreeMap<&str, [(f64, usize); 2]> = BTreeMap::new();
    for o in data.observations() {
        let a = if o.arm == treatment {
            0
        } else if o.arm == control {
            1
        } else {
            continue;
        };
        if let Some(item) = o.item.as_deref() {
            let cell = sums.entry(item).or_default();
            cell[a].0 += o.value;
            cell[a].1 += 1;
        }
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for [(st, nt), (sc, nc)] in sums.values() {
        if *nt > 0 && *nc > 0 {
            a.push(st / *nt as f64);
            b.push(sc / *nc as f64);
        }
    }
    let d = paired_difference(&a, &b, level)?;
    Ok((d.estimate.ci_low, d.estimate.ci_high))
}

/// Runs `replications` replications (`run(replication seed, its own temporary directory)`, in
/// parallel on as many threads as rayon's pool has, each on a current-thread Tokio runtime) and
/// checks the headline interval and the old methods against each replication's truth.
///
/// The replications run on plain scoped threads, not on rayon's workers: their statistics use
/// rayon, and a worker waiting inside one replication's runtime for its share of that work
/// would steal the next replication and start a second runtime on the same thread.
///
/// # Errors
///
/// [`SimError::Io`] when no temporary directory can be made.
pub fn coverage<F>(
    replications: usize,
    seed: u64,
    level: f64,
    bootstrap_resamples: usize,
    planned_power: Option<f64>,
    run: F,
) -> Result<CoverageReport, SimError>
where
    F: Fn(u64, &Path) -> Result<Trial, SimError> + Sync,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let root = tempfile::tempdir()?;
    let next = AtomicUsize::new(0);
    let one = |r: usize| {
        let rep_seed = psyche_core::derive_seed(seed, &format!("replication/{r}"));
        let dir = root.path().join(format!("r{r}"));
        let out = run(rep_seed, &dir);
        // Best effort: a replication's files are not needed once it is read.
        let _ = std::fs::remove_dir_all(&dir);
        out
    };
    let threads = rayon::current_num_threads().clamp(1, replications.max(1));
    let mut done: Vec<(usize, Result<Trial, SimError>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let r = next.fetch_add(1, Ordering::Relaxed);
                        if r >= replications {
                            break mine;
                        }
                        mine.push((r, one(r)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    done.sort_by_key(|(r, _)| *r);
    let outcomes: Vec<Result<Trial, SimError>> = done.into_iter().map(|(_, o)| o).collect();
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    let first_failure = outcomes
        .iter()
        .find_map(|o| o.as_ref().err().map(ToString::to_string));
    if let Some(f) = &first_failure {
        tracing::warn!(failed, first = %f, "replications failed");
    }
    let trials: Vec<&Trial> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    let with = |i: Option<(f64, f64)>, t: f64| i.map(|(lo, hi)| (lo, hi, t));
    let headline = Check::of(trials.iter().map(|t| with(t.headline.interval(), t.truth)));
    let seed_bootstrap = Check::of(trials.iter().enumerate().map(|(r, t)| {
        let e = legacy_seed_bootstrap(
            &t.data,
            &t.treatment,
            &t.control,
            level,
            bootstrap_resamples,
            seed ^ (r as u64).rotate_left(29),
        )
        .ok()?;
        Some((e.ci_low, e.ci_high, t.truth))
    }));
    let pooled_items_paired_t = Check::of(trials.iter().map(|t| {
        let d = legacy_pooled_items_paired_t(&t.data, &t.treatment, &t.control, level).ok()?;
        Some((d.estimate.ci_low, d.estimate.ci_high, t.truth))
    }));
    let item_means_paired_t = Check::of(trials.iter().map(|t| {
        with(
            legacy_item_means_paired_t(&t.data, &t.treatment, &t.control, level).ok(),
            t.truth,
        )
    }));
    Ok(CoverageReport {
        replications,
        failed,
        first_failure,
        level,
        headline,
        method: trials
            .first()
            .and_then(|t| t.headline.estimate())
            .map(|e| e.method.label().to_owned()),
        planned_power,
        seed_bootstrap,
        pooled_items_paired_t,
        item_means_paired_t,
    })
}

/// Runs an async replication on a current-thread Tokio runtime.
///
/// # Errors
///
/// [`SimError::Io`] when the runtime cannot start; the replication's own error.
pub fn block_on<T>(
    fut: impl std::future::Future<Output = Result<T, SimError>>,
) -> Result<T, SimError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(fut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    /// A replication whose statistics use rayon (the bootstraps do) must not run on a rayon
    /// worker inside its Tokio runtime: a worker waiting for its share of the inner work steals
    /// the next replication and starts a second runtime on the same thread, which panics. The
    /// flaky CI failure of the organisms test was this; a round here triggers it about half the
    /// time, so the test runs eight.
    #[test]
    fn replications_using_the_rayon_pool_never_nest_runtimes() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        let reps = 200;
        for round in 0..8 {
            let report = pool
                .install(|| {
                    coverage(reps, round, 0.95, 10, None, |s, _| {
                        block_on(async move {
                            let spun: u64 = (0..1024u64)
                                .into_par_iter()
                                .map(|i| {
                                    (0..(i % 7) * 500).fold(s ^ i, |a, b| a.rotate_left(5) ^ b)
                                })
                                .sum();
                            std::hint::black_box(spun);
                            Err(SimError::Missing(
                                "a headline (this one only works the pool)".into(),
                            ))
                        })
                    })
                })
                .unwrap();
            assert_eq!(report.failed, reps, "round {round}");
            assert!(
                report
                    .first_failure
                    .is_some_and(|f| f.contains("only works the pool"))
            );
        }
    }
}
