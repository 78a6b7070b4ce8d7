//! A simulator of synthetic "organisms" with a planted effect, to check by Monte Carlo that the
//! intervals cover the truth at their nominal rate and that a planned sample size achieves its
//! power — before spending money on a real eval.
//!
//! Model (the design of [`ItemDesign::paired_proportions`]): two models A and B answer the same
//! `items`, K = `samples_per_item` times each, scored 0/1. Item i has true accuracies
//!
//! ```text
//! a_i = p_A + τ·u_i,   b_i = p_B + τ·(ρ·u_i + √(1−ρ²)·v_i),   u_i, v_i ~ Uniform(−√3, √3)
//! ```
//!
//! so that E[a_i] = p_A exactly, Var(a_i) = Var(b_i) = τ², Corr(a_i, b_i) = ρ; each sample is
//! Bernoulli(a_i) (resp. b_i). Per replication the simulator computes, at `level`:
//!
//! 1. [`mean_ci`] over A's item means (truth p_A);
//! 2. [`clustered_mean_ci`] over A's raw 0/1 samples clustered by item (truth p_A);
//! 3. [`paired_difference`] of A's and B's item means (truth p_A − p_B), and whether its
//!    two-sided test rejects at α = 1 − level (the achieved power);
//! 4. [`wilson`] over A's pooled samples, ignoring the clustering (a cautionary contrast: it
//!    under-covers whenever τ > 0 and K > 1);
//! 5. optionally ([`simulate_coverage_with_bootstrap`]), [`bootstrap_mean`] (percentile) over
//!    A's item means (truth p_A).
//!
//! Replications run in parallel with per-replication seeds, so the report depends only on the
//! seed.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::bootstrap::bootstrap_mean;
use crate::compare::paired_difference;
use crate::descriptive::{clustered_mean_ci, mean_ci};
use crate::error::{StatsError, check_level, check_min_len, check_probability};
use crate::power::{ItemDesign, power, power_t};
use crate::proportion::wilson;
use crate::resample::chunk_rng;

/// The synthetic organisms to simulate (see the module docs for the model).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OrganismSpec {
    /// Number of items (questions) per eval.
    pub items: usize,
    /// K: samples per item per model.
    pub samples_per_item: u32,
    /// True mean accuracy of model A (e.g. self-prediction, 0.45).
    pub p_a: f64,
    /// True mean accuracy of model B (e.g. cross-prediction, 0.35).
    pub p_b: f64,
    /// τ: standard deviation of item-level accuracies.
    pub between_sd: f64,
    /// ρ: correlation of A's and B's item-level accuracies.
    pub correlation: f64,
}

impl OrganismSpec {
    /// The matching power-planning design.
    pub fn design(&self) -> ItemDesign {
        ItemDesign::paired_proportions(
            self.p_a,
            self.p_b,
            self.between_sd,
            self.correlation,
            self.samples_per_item,
        )
    }

    fn check(&self) -> Result<(), StatsError> {
        check_min_len("items", self.items, 2)?;
        if self.samples_per_item == 0 {
            return Err(StatsError::OutOfRange {
                field: "samples_per_item",
                value: 0.0,
                expected: ">= 1",
            });
        }
        check_probability("p_a", self.p_a)?;
        check_probability("p_b", self.p_b)?;
        if !(self.correlation.is_finite() && (-1.0..=1.0).contains(&self.correlation)) {
            return Err(StatsError::OutOfRange {
                field: "correlation",
                value: self.correlation,
                expected: "-1 <= correlation <= 1",
            });
        }
        let rho = self.correlation;
        let reach_a = self.between_sd * 3f64.sqrt();
        let reach_b = reach_a * (rho.abs() + (1.0 - rho * rho).sqrt());
        let ok = self.between_sd.is_finite()
            && self.between_sd >= 0.0
            && self.p_a - reach_a >= 0.0
            && self.p_a + reach_a <= 1.0
            && self.p_b - reach_b >= 0.0
            && self.p_b + reach_b <= 1.0;
        if !ok {
            return Err(StatsError::OutOfRange {
                field: "between_sd",
                value: self.between_sd,
                expected: "item accuracies p ± τ·√3·(|ρ| + √(1−ρ²)) must stay within [0, 1]",
            });
        }
        Ok(())
    }
}

/// Coverage of one interval method over the replications.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MethodCoverage {
    /// Share of replications whose interval contained the truth.
    pub coverage: f64,
    /// Monte Carlo standard error of `coverage`: √(c(1−c)/R).
    pub mc_se: f64,
    /// Mean interval width.
    pub mean_width: f64,
    /// Replications where the method returned an error (excluded from `coverage`).
    pub failures: usize,
}

/// Result of [`simulate_coverage`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimulationReport {
    /// The simulated organisms.
    pub spec: OrganismSpec,
    /// Replications run.
    pub replications: usize,
    /// Nominal level of every interval.
    pub level: f64,
    /// t-interval over A's item means.
    pub mean: MethodCoverage,
    /// Clustered t-interval over A's raw samples.
    pub clustered_mean: MethodCoverage,
    /// Paired-difference t-interval of A − B.
    pub paired_difference: MethodCoverage,
    /// Wilson interval over A's pooled samples, ignoring clustering (for contrast).
    pub naive_wilson: MethodCoverage,
    /// Percentile bootstrap over A's item means; `None` unless requested with
    /// [`simulate_coverage_with_bootstrap`].
    pub bootstrap_percentile: Option<MethodCoverage>,
    /// Power the normal-approximation planner ([`power`]) predicts for `spec.items` items at
    /// α = 1 − level.
    pub planned_power: f64,
    /// Power of the t-test the simulation runs, as [`power_t`] predicts it.
    pub planned_power_t: f64,
    /// Share of replications where the paired test rejected at α = 1 − level.
    pub achieved_power: f64,
    /// Monte Carlo standard error of `achieved_power`.
    pub power_mc_se: f64,
}

#[derive(Default, Clone, Copy)]
struct Outcome {
    covered: [Option<bool>; 5],
    width: [f64; 5],
    rejected: bool,
}

/// Runs `replications` simulated evals of `spec` and reports interval coverage at `level` and
/// the power of the paired test (α = 1 − level) against the planner's prediction.
///
/// Use it before an expensive run: if the planned power is not achieved, or a method's
/// coverage is well below `level`, the eval is too small for the effect you hope to see.
///
/// # Errors
///
/// [`StatsError::OutOfRange`] for an invalid spec (item accuracies must stay in [0, 1]) or
/// level; [`StatsError::TooFew`] for fewer than 2 items or 1 replication.
///
/// ```
/// use psyche_stats::{OrganismSpec, simulate_coverage};
/// let spec = OrganismSpec { items: 40, samples_per_item: 5, p_a: 0.45, p_b: 0.35,
///                           between_sd: 0.1, correlation: 0.5 };
/// let report = simulate_coverage(&spec, 200, 0.95, 7)?;
/// assert!(report.mean.coverage > 0.85);
/// # Ok::<(), psyche_stats::StatsError>(())
/// ```
pub fn simulate_coverage(
    spec: &OrganismSpec,
    replications: usize,
    level: f64,
    seed: u64,
) -> Result<SimulationReport, StatsError> {
    run(spec, replications, level, seed, None)
}

/// [`simulate_coverage`] plus the coverage of the percentile [`bootstrap_mean`] over A's item
/// means with `resamples` resamples per replication (costs `replications × resamples × items`
/// draws).
///
/// # Errors
///
/// As [`simulate_coverage`]; [`StatsError::TooFew`] for fewer than 2 resamples.
pub fn simulate_coverage_with_bootstrap(
    spec: &OrganismSpec,
    replications: usize,
    level: f64,
    seed: u64,
    resamples: usize,
) -> Result<SimulationReport, StatsError> {
    check_min_len("resamples", resamples, 2)?;
    run(spec, replications, level, seed, Some(resamples))
}

fn run(
    spec: &OrganismSpec,
    replications: usize,
    level: f64,
    seed: u64,
    bootstrap_resamples: Option<usize>,
) -> Result<SimulationReport, StatsError> {
    check_level(level)?;
    spec.check()?;
    check_min_len("replications", replications, 1)?;
    let planned = power(&spec.design(), spec.p_a - spec.p_b, spec.items, 1.0 - level)?;
    let outcomes: Vec<Outcome> = {
        use rayon::prelude::*;
        (0..replications)
            .into_par_iter()
            .map(|r| one_replication(spec, level, seed, r as u64, bootstrap_resamples))
            .collect()
    };
    let cov = |m: usize| {
        let hits: Vec<(bool, f64)> = outcomes
            .iter()
            .filter_map(|o| o.covered[m].map(|c| (c, o.width[m])))
            .collect();
        let ok = hits.len().max(1) as f64;
        let c = hits.iter().filter(|h| h.0).count() as f64 / ok;
        MethodCoverage {
            coverage: c,
            mc_se: (c * (1.0 - c) / ok).sqrt(),
            mean_width: hits.iter().map(|h| h.1).sum::<f64>() / ok,
            failures: replications - hits.len(),
        }
    };
    let r = replications as f64;
    let achieved = outcomes.iter().filter(|o| o.rejected).count() as f64 / r;
    let report = SimulationReport {
        spec: *spec,
        replications,
        level,
        mean: cov(0),
        clustered_mean: cov(1),
        paired_difference: cov(2),
        naive_wilson: cov(3),
        bootstrap_percentile: bootstrap_resamples.map(|_| cov(4)),
        planned_power: planned,
        planned_power_t: power_t(&spec.design(), spec.p_a - spec.p_b, spec.items, 1.0 - level)?,
        achieved_power: achieved,
        power_mc_se: (achieved * (1.0 - achieved) / r).sqrt(),
    };
    tracing::debug!(?report, "coverage simulation finished");
    Ok(report)
}

fn one_replication(
    spec: &OrganismSpec,
    level: f64,
    seed: u64,
    rep: u64,
    bootstrap_resamples: Option<usize>,
) -> Outcome {
    let mut rng = chunk_rng(seed, rep);
    let k = spec.samples_per_item as usize;
    let n = spec.items;
    let s3 = 3f64.sqrt();
    let rho = spec.correlation;
    let rho_c = (1.0 - rho * rho).sqrt();
    let mut mean_a = Vec::with_capacity(n);
    let mut mean_b = Vec::with_capacity(n);
    let mut raw_a = Vec::with_capacity(n * k);
    let mut cluster = Vec::with_capacity(n * k);
    for i in 0..n {
        let u: f64 = rng.random_range(-s3..s3);
        let v: f64 = rng.random_range(-s3..s3);
        let pa = spec.p_a + spec.between_sd * u;
        let pb = spec.p_b + spec.between_sd * (rho * u + rho_c * v);
        let (mut sa, mut sb) = (0.0, 0.0);
        for _ in 0..k {
            let ya = if rng.random::<f64>() < pa { 1.0 } else { 0.0 };
            let yb = if rng.random::<f64>() < pb { 1.0 } else { 0.0 };
            sa += ya;
            sb += yb;
            raw_a.push(ya);
            cluster.push(i);
        }
        mean_a.push(sa / k as f64);
        mean_b.push(sb / k as f64);
    }
    let truth_d = spec.p_a - spec.p_b;
    let mut out = Outcome::default();
    let mut record = |m: usize, est: Option<(f64, f64)>, truth: f64| {
        if let Some((lo, hi)) = est {
            out.covered[m] = Some(lo <= truth && truth <= hi);
            out.width[m] = hi - lo;
        }
    };
    record(
        0,
        mean_ci(&mean_a, level).ok().map(|e| e.interval()),
        spec.p_a,
    );
    record(
        1,
        clustered_mean_ci(&raw_a, &cluster, level)
            .ok()
            .map(|e| e.interval()),
        spec.p_a,
    );
    let pd = paired_difference(&mean_a, &mean_b, level).ok();
    record(2, pd.map(|d| d.estimate.interval()), truth_d);
    let successes = raw_a.iter().filter(|&&y| y > 0.5).count() as u64;
    record(
        3,
        wilson(successes, raw_a.len() as u64, level)
            .ok()
            .map(|e| e.interval()),
        spec.p_a,
    );
    if let Some(b) = bootstrap_resamples {
        record(
            4,
            bootstrap_mean(&mean_a, b, level, seed ^ rep.rotate_left(17))
                .ok()
                .map(|e| e.interval()),
            spec.p_a,
        );
    }
    out.rejected = pd.is_some_and(|d| d.p_value < 1.0 - level);
    out
}
