//! Proof by simulation of [`ArmComparison`]: two arms × k fine-tuning runs × items nested in
//! objects, with a planted effect, planted run-to-run variance and item-level noise, against
//! the methods it replaces.
//!
//! Model ([`ArmSimSpec`]): arm a ∈ {treatment, control}, run s = 1…k, object o, property j,
//! sample r = 1…K; each observation is Bernoulli(p) with
//!
//! ```text
//! p = control_rate + effect·[a = treatment] + b_{a,s} + c_s + u_o + v_{o,j}
//! ```
//!
//! where every effect is Uniform(−√3σ, √3σ) (mean 0, SD σ, bounded so p stays in [0, 1]):
//! b_{a,s} the run effect of run s of arm a (`seed_sd`), c_s a run effect shared by run s of
//! both arms in a paired design (`shared_seed_sd`; drawn separately per arm when unpaired),
//! u_o the object effect (`object_sd`) and v_{o,j} the property effect (`property_sd`), the
//! item effects being the same in every run of both arms (one eval set). The truth of the
//! run-level difference is `effect`; the truth of the item-level view ("these runs") is
//! `effect + mean_s b_{T,s} − mean_s b_{C,s}` (plus the c_s means when unpaired).
//!
//! [`simulate_arm_coverage`] takes any producer of replications (a closure), so end-to-end
//! organisms (a simulated `Model` + `FineTuner` run through a task crate) can be checked by the
//! same harness as [`ArmSimSpec::draw`].

use std::collections::HashMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::arms::{ArmComparison, ArmData, ArmOptions, Observation, SeedDesign};
use crate::bootstrap::{bootstrap_mean_replicates, percentile_interval};
use crate::compare::{PairedDifference, paired_difference};
use crate::error::{StatsError, check_level, check_min_len};
use crate::estimate::{Estimate, Method};
use crate::resample::chunk_rng;
use crate::stat::Stat;

/// Name of the treatment arm in simulated data.
pub const SIM_TREATMENT: &str = "treatment";
/// Name of the control arm in simulated data.
pub const SIM_CONTROL: &str = "control";

/// A simulated two-arm fine-tuning experiment (see the module docs for the model).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArmSimSpec {
    /// Fine-tuning runs (seeds) per arm.
    pub seeds_per_arm: usize,
    /// Objects per eval; each has `properties_per_object` items.
    pub objects: usize,
    /// Items (properties) per object.
    pub properties_per_object: usize,
    /// Bernoulli samples per item per run.
    pub samples_per_item: u32,
    /// Mean rate of the control arm.
    pub control_rate: f64,
    /// Planted difference, treatment − control.
    pub effect: f64,
    /// SD of a run's own effect (independent between arms).
    pub seed_sd: f64,
    /// SD of a run effect shared by run s of both arms when `paired` (same data seed or base
    /// run); drawn independently per arm otherwise.
    pub shared_seed_sd: f64,
    /// SD of the object effect (same in every run of both arms).
    pub object_sd: f64,
    /// SD of the property-within-object effect (same in every run of both arms).
    pub property_sd: f64,
    /// Whether run s of both arms is paired (the analysis then pairs over seeds).
    pub paired: bool,
}

impl ArmSimSpec {
    /// Items per run.
    pub fn items(&self) -> usize {
        self.objects * self.properties_per_object
    }

    fn check(&self) -> Result<(), StatsError> {
        check_min_len("seeds_per_arm", self.seeds_per_arm, 1)?;
        check_min_len("objects", self.objects, 2)?;
        check_min_len("properties_per_object", self.properties_per_object, 1)?;
        if self.samples_per_item == 0 {
            return Err(StatsError::OutOfRange {
                field: "samples_per_item",
                value: 0.0,
                expected: ">= 1",
            });
        }
        for (field, v) in [
            ("seed_sd", self.seed_sd),
            ("shared_seed_sd", self.shared_seed_sd),
            ("object_sd", self.object_sd),
            ("property_sd", self.property_sd),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(StatsError::OutOfRange {
                    field,
                    value: v,
                    expected: "a finite SD >= 0",
                });
            }
        }
        let reach =
            3f64.sqrt() * (self.seed_sd + self.shared_seed_sd + self.object_sd + self.property_sd);
        for (field, p) in [
            ("control_rate", self.control_rate),
            ("effect", self.control_rate + self.effect),
        ] {
            if !(p.is_finite() && p - reach >= 0.0 && p + reach <= 1.0) {
                return Err(StatsError::OutOfRange {
                    field,
                    value: p,
                    expected: "each arm's rate ± √3·(sum of the SDs) within [0, 1]",
                });
            }
        }
        Ok(())
    }

    /// Variance of one run's mean around its arm's mean, item noise included, for the arm with
    /// mean rate `p`: run effects plus E[p(1 − p)]/(n·K).
    fn run_variance(&self, p: f64, with_shared: bool) -> f64 {
        let shared = if with_shared {
            self.shared_seed_sd.powi(2)
        } else {
            0.0
        };
        let total_var = self.seed_sd.powi(2)
            + self.shared_seed_sd.powi(2)
            + self.object_sd.powi(2)
            + self.property_sd.powi(2);
        let noise = (p * (1.0 - p) - total_var).max(0.0)
            / (self.items() as f64 * f64::from(self.samples_per_item));
        self.seed_sd.powi(2) + shared + noise
    }

    /// The planned seed-level design ArmComparison analyses (its `seed_sd` from the planted
    /// variances, item noise included).
    pub fn seed_design(&self) -> SeedDesign {
        let (pt, pc) = (self.control_rate + self.effect, self.control_rate);
        if self.paired {
            let v = self.run_variance(pt, false) + self.run_variance(pc, false);
            SeedDesign::paired(self.seeds_per_arm, v.sqrt())
        } else {
            let v = 0.5 * (self.run_variance(pt, true) + self.run_variance(pc, true));
            SeedDesign::unpaired(self.seeds_per_arm, v.sqrt())
        }
    }

    /// The options ArmComparison is run with on this design (paired when the design is,
    /// bounded to [0, 1]).
    pub fn options(&self, level: f64) -> ArmOptions {
        ArmOptions::new()
            .level(level)
            .paired(self.paired)
            .proportion()
    }

    /// Draws one experiment.
    ///
    /// # Errors
    ///
    /// [`StatsError::OutOfRange`] / [`StatsError::TooFew`] for an invalid spec.
    pub fn draw<R: Rng>(&self, rng: &mut R) -> Result<Replication, StatsError> {
        self.check()?;
        let s3 = 3f64.sqrt();
        let uni = |sd: f64, rng: &mut R| {
            if sd > 0.0 {
                rng.random_range(-s3 * sd..s3 * sd)
            } else {
                0.0
            }
        };
        let item_effects: Vec<f64> = (0..self.objects)
            .flat_map(|_| {
                let u = uni(self.object_sd, rng);
                (0..self.properties_per_object)
                    .map(|_| u + uni(self.property_sd, rng))
                    .collect::<Vec<_>>()
            })
            .collect();
        let k = self.seeds_per_arm;
        let shared: Vec<f64> = (0..k).map(|_| uni(self.shared_seed_sd, rng)).collect();
        let mut data = ArmData::new();
        let mut run_means = [0.0f64; 2];
        for (a, (arm, base)) in [
            (SIM_TREATMENT, self.control_rate + self.effect),
            (SIM_CONTROL, self.control_rate),
        ]
        .into_iter()
        .enumerate()
        {
            for (s, shared_s) in shared.iter().enumerate() {
                let c = if self.paired {
                    *shared_s
                } else {
                    uni(self.shared_seed_sd, rng)
                };
                let run = uni(self.seed_sd, rng) + c;
                run_means[a] += run / k as f64;
                for (i, eff) in item_effects.iter().enumerate() {
                    let p = base + run + eff;
                    let mut hits = 0u32;
                    for _ in 0..self.samples_per_item {
                        if rng.random::<f64>() < p {
                            hits += 1;
                        }
                    }
                    let o = i / self.properties_per_object;
                    let j = i % self.properties_per_object;
                    data.push(
                        Observation::new(
                            arm,
                            s,
                            format!("o{o}p{j}"),
                            f64::from(hits) / f64::from(self.samples_per_item),
                        )
                        .in_cluster(format!("o{o}")),
                    );
                }
            }
        }
        Ok(Replication {
            data,
            truth: self.effect,
            conditional_truth: Some(self.effect + run_means[0] - run_means[1]),
        })
    }
}

/// One simulated experiment with its truths.
#[derive(Debug, Clone, PartialEq)]
pub struct Replication {
    /// The observations (arms named [`SIM_TREATMENT`] and [`SIM_CONTROL`]).
    pub data: ArmData,
    /// The true difference of the training procedure (what the run-level interval targets).
    pub truth: f64,
    /// The true difference of these particular runs (what the item-level view targets), when
    /// the producer knows it.
    pub conditional_truth: Option<f64>,
}

/// How one interval method fared over the replications.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IntervalCheck {
    /// Share of replications whose interval contained the truth.
    pub coverage: f64,
    /// Monte Carlo SE of `coverage`.
    pub mc_se: f64,
    /// Share of replications whose interval excluded zero (detection rate, or false-positive
    /// rate when the truth is 0).
    pub excludes_zero: f64,
    /// Mean interval width.
    pub mean_width: f64,
    /// Replications where the method gave no interval (excluded from the shares).
    pub failures: usize,
}

impl IntervalCheck {
    fn from(hits: &[Option<(f64, f64, f64)>]) -> Self {
        let ok: Vec<(f64, f64, f64)> = hits.iter().flatten().copied().collect();
        let m = ok.len().max(1) as f64;
        let c = ok.iter().filter(|(lo, hi, t)| lo <= t && t <= hi).count() as f64 / m;
        IntervalCheck {
            coverage: c,
            mc_se: (c * (1.0 - c) / m).sqrt(),
            excludes_zero: ok
                .iter()
                .filter(|(lo, hi, _)| *lo > 0.0 || *hi < 0.0)
                .count() as f64
                / m,
            mean_width: ok.iter().map(|(lo, hi, _)| hi - lo).sum::<f64>() / m,
            failures: hits.len() - ok.len(),
        }
    }
}

/// Result of [`simulate_arm_coverage`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmCoverageReport {
    /// Replications run.
    pub replications: usize,
    /// Nominal level.
    pub level: f64,
    /// The method [`ArmComparison`] used (of the first replication).
    pub method: Option<Method>,
    /// [`ArmComparison::difference`] against the procedure's truth; `excludes_zero` is its
    /// detection rate.
    pub arm_comparison: IntervalCheck,
    /// The planned power of the run-level test, when given.
    pub planned_power: Option<f64>,
    /// The item-level view against the truth of these runs (when the producer knows it).
    pub item_level_these_runs: Option<IntervalCheck>,
    /// The item-level view read, wrongly, as a statement about the procedure.
    pub item_level_vs_procedure: IntervalCheck,
    /// Old method: percentile bootstrap over per-seed values, each arm resampled.
    pub seed_bootstrap: IntervalCheck,
    /// Old method: paired t over items pooled from all seeds as if independent.
    pub pooled_items_paired_t: IntervalCheck,
}

/// The replaced method, kept for the validation only: a percentile bootstrap over the per-seed
/// means, each arm's seeds resampled separately, the interval of the difference of the two
/// arms' replicates. Under-covers badly with few seeds (it cannot reach beyond the observed
/// range). Do not use it for results.
///
/// # Errors
///
/// As [`bootstrap_mean_replicates`] (fewer than 2 seeds in an arm); as
/// [`ArmComparison::compare`] for the data.
pub fn legacy_seed_bootstrap(
    data: &ArmData,
    treatment: &str,
    control: &str,
    level: f64,
    resamples: usize,
    seed: u64,
) -> Result<Estimate, StatsError> {
    let cmp = ArmComparison::compare(data, treatment, control, &ArmOptions::new().level(level))?;
    let mt: Vec<f64> = cmp.treatment.per_seed.iter().map(|s| s.mean).collect();
    let mc: Vec<f64> = cmp.control.per_seed.iter().map(|s| s.mean).collect();
    let rt = bootstrap_mean_replicates(&mt, resamples, seed)?;
    let rc = bootstrap_mean_replicates(&mc, resamples, seed.wrapping_add(0x9E37_79B9))?;
    let diffs: Vec<f64> = rt.iter().zip(&rc).map(|(a, b)| a - b).collect();
    let (lo, hi) = percentile_interval(&diffs, level)?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let sd = {
        let m = mean(&diffs);
        (diffs.iter().map(|d| (d - m).powi(2)).sum::<f64>() / (diffs.len() - 1) as f64).sqrt()
    };
    Ok(Estimate {
        estimate: mean(&mt) - mean(&mc),
        se: sd,
        ci_low: lo,
        ci_high: hi,
        n: mt.len() + mc.len(),
        level,
        method: Method::BootstrapPercentile,
    })
}

/// The replaced method, kept for the validation only: a paired t over the (seed, item) pairs of
/// the two arms pooled from all seeds as if independent. Its interval ignores the run-to-run
/// variation of the difference. Do not use it for results.
///
/// # Errors
///
/// [`StatsError::TooFew`] with fewer than 2 matched (seed, item) pairs.
pub fn legacy_pooled_items_paired_t(
    data: &ArmData,
    treatment: &str,
    control: &str,
    level: f64,
) -> Result<PairedDifference, StatsError> {
    let mut cells: HashMap<(&str, &str), [(f64, usize); 2]> = HashMap::new();
    let mut order: Vec<(&str, &str)> = Vec::new();
    for o in data.observations() {
        let a = if o.arm == treatment {
            0
        } else if o.arm == control {
            1
        } else {
            continue;
        };
        let Some(item) = o.item.as_deref() else {
            continue;
        };
        let key = (o.seed.as_str(), item);
        let cell = cells.entry(key).or_insert_with(|| {
            order.push(key);
            [(0.0, 0); 2]
        });
        cell[a].0 += o.value;
        cell[a].1 += 1;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for key in order {
        if let Some([(st, nt), (sc, nc)]) = cells.get(&key).copied()
            && nt > 0
            && nc > 0
        {
            a.push(st / nt as f64);
            b.push(sc / nc as f64);
        }
    }
    paired_difference(&a, &b, level)
}

#[derive(Clone, Copy, Default)]
struct RepOutcome {
    method: Option<Method>,
    new: Option<(f64, f64, f64)>,
    item_cond: Option<(f64, f64, f64)>,
    item_proc: Option<(f64, f64, f64)>,
    boot: Option<(f64, f64, f64)>,
    pooled: Option<(f64, f64, f64)>,
}

/// Runs `replications` experiments from `produce` (each gets its own seeded ChaCha stream),
/// analyses each with [`ArmComparison`] (arms [`SIM_TREATMENT`] vs [`SIM_CONTROL`]) and with
/// the two replaced methods, and reports coverage and detection.
///
/// `produce` is the hook for end-to-end checks: any closure that turns a seeded RNG into a
/// [`Replication`] — the built-in [`ArmSimSpec::draw`], or a simulated organism run through a
/// task crate's pipeline. A replication whose producer fails counts as a failure of every
/// method.
///
/// # Errors
///
/// [`StatsError::TooFew`] for 0 replications or fewer than 2 resamples;
/// [`StatsError::OutOfRange`] for the level or options.
pub fn simulate_arm_coverage<F>(
    replications: usize,
    seed: u64,
    options: &ArmOptions,
    bootstrap_resamples: usize,
    planned_power: Option<f64>,
    produce: F,
) -> Result<ArmCoverageReport, StatsError>
where
    F: Fn(&mut ChaCha8Rng) -> Result<Replication, StatsError> + Sync,
{
    check_level(options.level)?;
    check_min_len("replications", replications, 1)?;
    check_min_len("resamples", bootstrap_resamples, 2)?;
    let level = options.level;
    let outcomes: Vec<RepOutcome> = {
        use rayon::prelude::*;
        (0..replications)
            .into_par_iter()
            .map(|r| {
                let mut rng = chunk_rng(seed, r as u64);
                let Ok(rep) = produce(&mut rng) else {
                    return RepOutcome::default();
                };
                let mut out = RepOutcome::default();
                let with = |s: &Stat, truth: f64| s.interval().map(|(lo, hi)| (lo, hi, truth));
                if let Ok(cmp) =
                    ArmComparison::compare(&rep.data, SIM_TREATMENT, SIM_CONTROL, options)
                {
                    out.method = Some(cmp.method);
                    if !matches!(
                        cmp.verdict,
                        crate::arms::IntervalVerdict::NotEstimable { .. }
                    ) {
                        out.new = with(&cmp.difference, rep.truth);
                    }
                    if let Some(view) = &cmp.item_level {
                        out.item_proc = with(&view.difference, rep.truth);
                        out.item_cond = rep
                            .conditional_truth
                            .and_then(|t| with(&view.difference, t));
                    }
                }
                out.boot = legacy_seed_bootstrap(
                    &rep.data,
                    SIM_TREATMENT,
                    SIM_CONTROL,
                    level,
                    bootstrap_resamples,
                    seed ^ (r as u64).rotate_left(29),
                )
                .ok()
                .map(|e| (e.ci_low, e.ci_high, rep.truth));
                out.pooled =
                    legacy_pooled_items_paired_t(&rep.data, SIM_TREATMENT, SIM_CONTROL, level)
                        .ok()
                        .map(|d| (d.estimate.ci_low, d.estimate.ci_high, rep.truth));
                out
            })
            .collect()
    };
    let pick = |f: fn(&RepOutcome) -> Option<(f64, f64, f64)>| {
        IntervalCheck::from(&outcomes.iter().map(f).collect::<Vec<_>>())
    };
    let any_conditional = outcomes.iter().any(|o| o.item_cond.is_some());
    let report = ArmCoverageReport {
        replications,
        level,
        method: outcomes.iter().find_map(|o| o.method),
        arm_comparison: pick(|o| o.new),
        planned_power,
        item_level_these_runs: any_conditional.then(|| pick(|o| o.item_cond)),
        item_level_vs_procedure: pick(|o| o.item_proc),
        seed_bootstrap: pick(|o| o.boot),
        pooled_items_paired_t: pick(|o| o.pooled),
    };
    tracing::debug!(?report, "arm coverage simulation finished");
    Ok(report)
}

impl ArmSimSpec {
    /// [`simulate_arm_coverage`] of this design with its planned power
    /// ([`ArmSimSpec::seed_design`]) at α = 1 − level.
    ///
    /// # Errors
    ///
    /// As [`simulate_arm_coverage`]; the spec's own errors.
    pub fn simulate(
        &self,
        replications: usize,
        level: f64,
        seed: u64,
        bootstrap_resamples: usize,
    ) -> Result<ArmCoverageReport, StatsError> {
        self.check()?;
        let planned = self.seed_design().power(self.effect, 1.0 - level).ok();
        simulate_arm_coverage(
            replications,
            seed,
            &self.options(level),
            bootstrap_resamples,
            planned,
            |rng| self.draw(rng),
        )
    }
}
