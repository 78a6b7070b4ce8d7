//! [`ArmComparison`]: the one arm-comparison statistic for fine-tuning experiments.
//!
//! In a fine-tuning experiment the fine-tuning run (its seed) is what was randomised: items are
//! nested in runs and properties in objects. The comparison of a treatment arm with a control
//! arm therefore treats the **seed** as the unit:
//!
//! - each run gives one value per arm, the mean of its observations (its per-seed mean);
//! - with k ≥ 2 seeds in each arm the difference has a t interval on those per-seed means:
//!   Student's t with the pooled between-seed variance when both arms have the same number of
//!   seeds ([`Method::PooledTOverSeeds`], df = 2k − 2; with equal group sizes the pooled test
//!   keeps its level even when the variances differ), Welch's t otherwise
//!   ([`Method::WelchOverSeeds`]), and a paired t on the per-seed differences when the design
//!   pairs seed s of both arms ([`Method::PairedOverSeeds`], df = k − 1);
//! - never a percentile bootstrap of a handful of seed values (it cannot reach beyond the
//!   observed range and covers 66 % at k = 2), never items pooled across seeds as if
//!   independent (the run-to-run variation of the difference is then invisible);
//! - with one seed per arm there is no between-run variance: the difference is the item-level
//!   difference of these two runs ([`Method::SingleSeedItemLevel`]) and the verdict is
//!   [`IntervalVerdict::NotEstimable`];
//! - the item-level view ([`ItemLevelView`]) answers the narrower question "do these particular
//!   runs differ": per-object differences of the arms' means, each object's items and seeds
//!   kept together, t over objects;
//! - intervals are kept inside the quantity's bounds ([`ArmOptions::bounds`]).
//!
//! The minimum detectable effect at 80 % power comes from the observed between-seed variance
//! and the design through the noncentral t distribution ([`SeedDesign`]).

mod compare;
mod holm;
mod power;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{StatsError, check_level, check_probability};
use crate::estimate::Method;
use crate::stat::Stat;

pub use holm::{HolmAdjusted, HolmFamily};
pub use power::{SeedDesign, t_test_mde, t_test_power};

/// One observation: the value of one item in one fine-tuning run (seed) of one arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The arm ("backdoored", "control", "self", …).
    pub arm: String,
    /// The fine-tuning run within the arm (its seed, as text).
    pub seed: String,
    /// The item (question, prompt, property of an object); `None` for a per-seed value given
    /// directly ([`ArmData::seed_value`]).
    pub item: Option<String>,
    /// The cluster the item belongs to (the object whose properties are items); defaults to the
    /// item itself.
    pub cluster: Option<String>,
    /// The observed value (e.g. 1.0/0.0 for a correct/incorrect answer, a probability, a rate).
    pub value: f64,
}

impl Observation {
    /// An item's value in one run of one arm; its cluster is the item itself until
    /// [`Observation::in_cluster`] sets one.
    pub fn new(
        arm: impl Into<String>,
        seed: impl ToString,
        item: impl Into<String>,
        value: f64,
    ) -> Self {
        Self {
            arm: arm.into(),
            seed: seed.to_string(),
            item: Some(item.into()),
            cluster: None,
            value,
        }
    }

    /// The same observation, with the item in `cluster` (e.g. the object whose property it is).
    pub fn in_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = Some(cluster.into());
        self
    }

    fn cluster_key(&self) -> Option<&str> {
        self.cluster.as_deref().or(self.item.as_deref())
    }
}

/// The observations of an experiment: per (arm, seed, item) values, or per-seed values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmData {
    observations: Vec<Observation>,
}

impl ArmData {
    /// No observations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one observation.
    pub fn push(&mut self, observation: Observation) -> &mut Self {
        self.observations.push(observation);
        self
    }

    /// Adds an item's value in one run (its cluster is the item itself).
    pub fn item(
        &mut self,
        arm: impl Into<String>,
        seed: impl ToString,
        item: impl Into<String>,
        value: f64,
    ) -> &mut Self {
        self.push(Observation::new(arm, seed, item, value))
    }

    /// Adds an item's value in one run, the item belonging to `cluster` (its object).
    pub fn item_in(
        &mut self,
        arm: impl Into<String>,
        seed: impl ToString,
        item: impl Into<String>,
        cluster: impl Into<String>,
        value: f64,
    ) -> &mut Self {
        self.push(Observation::new(arm, seed, item, value).in_cluster(cluster))
    }

    /// Adds a run's value directly, for designs without items (e.g. one P(yes) per fine-tune).
    /// Several calls for one (arm, seed) are averaged.
    pub fn seed_value(
        &mut self,
        arm: impl Into<String>,
        seed: impl ToString,
        value: f64,
    ) -> &mut Self {
        self.push(Observation {
            arm: arm.into(),
            seed: seed.to_string(),
            item: None,
            cluster: None,
            value,
        })
    }

    /// All observations, in the order added.
    pub fn observations(&self) -> &[Observation] {
        &self.observations
    }

    /// Number of observations.
    pub fn len(&self) -> usize {
        self.observations.len()
    }

    /// Whether there are no observations.
    pub fn is_empty(&self) -> bool {
        self.observations.is_empty()
    }

    /// The arms, in order of first appearance.
    pub fn arms(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for o in &self.observations {
            if !out.contains(&o.arm.as_str()) {
                out.push(&o.arm);
            }
        }
        out
    }

    /// Compares `treatment` with `control`: see [`ArmComparison::compare`].
    ///
    /// # Errors
    ///
    /// As [`ArmComparison::compare`].
    pub fn compare(
        &self,
        treatment: &str,
        control: &str,
        options: &ArmOptions,
    ) -> Result<ArmComparison, StatsError> {
        ArmComparison::compare(self, treatment, control, options)
    }
}

impl FromIterator<Observation> for ArmData {
    fn from_iter<T: IntoIterator<Item = Observation>>(iter: T) -> Self {
        Self {
            observations: iter.into_iter().collect(),
        }
    }
}

impl Extend<Observation> for ArmData {
    fn extend<T: IntoIterator<Item = Observation>>(&mut self, iter: T) {
        self.observations.extend(iter);
    }
}

/// Options of [`ArmComparison::compare`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArmOptions {
    /// Nominal coverage of every interval (default 0.95); the test's α is `1 − level`.
    pub level: f64,
    /// The design pairs the arms' seeds (seed s of the treatment shares its data seed, items or
    /// base run with seed s of the control): the comparison is a paired t over seeds. Both arms
    /// must then have the same seed ids.
    pub paired: bool,
    /// What the arm quantity can be, e.g. `(0.0, 1.0)` for a rate; the difference is then
    /// bounded by `(lo − hi, hi − lo)` (±1 for a difference of proportions). Intervals are
    /// clipped to these bounds.
    pub bounds: Option<(f64, f64)>,
    /// Power at which the minimum detectable effect is stated (default 0.80).
    pub power: f64,
}

impl Default for ArmOptions {
    fn default() -> Self {
        Self {
            level: 0.95,
            paired: false,
            bounds: None,
            power: 0.80,
        }
    }
}

impl ArmOptions {
    /// The defaults: 95 %, unpaired, unbounded, MDE at 80 % power.
    pub fn new() -> Self {
        Self::default()
    }

    /// With the nominal level.
    pub fn level(mut self, level: f64) -> Self {
        self.level = level;
        self
    }

    /// With seeds paired (or not).
    pub fn paired(mut self, paired: bool) -> Self {
        self.paired = paired;
        self
    }

    /// With the arm quantity bounded to `[lo, hi]`.
    pub fn bounds(mut self, lo: f64, hi: f64) -> Self {
        self.bounds = Some((lo, hi));
        self
    }

    /// For proportions and rates: bounded to `[0, 1]`.
    pub fn proportion(self) -> Self {
        self.bounds(0.0, 1.0)
    }

    fn check(&self) -> Result<(), StatsError> {
        check_level(self.level)?;
        check_probability("power", self.power)?;
        if !(self.power > 1.0 - self.level && self.power < 1.0) {
            return Err(StatsError::OutOfRange {
                field: "power",
                value: self.power,
                expected: "1 − level < power < 1",
            });
        }
        if let Some((lo, hi)) = self.bounds
            && !(lo.is_finite() && hi.is_finite() && lo < hi)
        {
            return Err(StatsError::OutOfRange {
                field: "bounds",
                value: if lo.is_finite() { hi } else { lo },
                expected: "finite bounds with lo < hi",
            });
        }
        Ok(())
    }

    fn difference_bounds(&self) -> Option<(f64, f64)> {
        self.bounds.map(|(lo, hi)| (lo - hi, hi - lo))
    }
}

/// One run's mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedMean {
    /// The seed.
    pub seed: String,
    /// Mean of the run's observations.
    pub mean: f64,
    /// Observations behind it.
    pub n: usize,
}

/// One arm's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    /// The arm.
    pub arm: String,
    /// The arm's mean over its runs with a t interval over the per-seed means
    /// ([`Method::SeedMeansT`]); a [`Stat::Point`] with one seed.
    pub mean: Stat,
    /// Runs (seeds).
    pub n_seeds: usize,
    /// Distinct clusters (objects) over all runs; 0 without items.
    pub n_clusters: usize,
    /// Distinct items over all runs; 0 without items.
    pub n_items: usize,
    /// Observations.
    pub n_observations: usize,
    /// Each run's mean, in order of first appearance.
    pub per_seed: Vec<SeedMean>,
    /// The mean of these runs' observations with a clustered t interval over objects (each
    /// object's items and seeds kept together, [`Method::ClusteredT`]): a statement about
    /// these runs only. Unavailable without items or with fewer than 2 clusters.
    pub item_level_mean: Stat,
}

/// The verdict about the difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum IntervalVerdict {
    /// The run-level interval excludes zero.
    ExcludesZero,
    /// The run-level interval includes zero.
    IncludesZero,
    /// No run-level verdict can be given, and why.
    NotEstimable {
        /// Why (e.g. one seed per arm: between-run variance not estimated).
        reason: String,
    },
}

impl IntervalVerdict {
    /// Whether the verdict is [`IntervalVerdict::ExcludesZero`].
    pub fn excludes_zero(&self) -> bool {
        matches!(self, IntervalVerdict::ExcludesZero)
    }

    fn of(stat: &Stat) -> Self {
        match stat {
            Stat::Estimated(e) if e.ci_low > 0.0 || e.ci_high < 0.0 => {
                IntervalVerdict::ExcludesZero
            }
            Stat::Estimated(_) => IntervalVerdict::IncludesZero,
            other => IntervalVerdict::NotEstimable {
                reason: other.reason().unwrap_or("no interval").to_string(),
            },
        }
    }
}

impl fmt::Display for IntervalVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntervalVerdict::ExcludesZero => f.write_str("excludes zero"),
            IntervalVerdict::IncludesZero => f.write_str("includes zero"),
            IntervalVerdict::NotEstimable { reason } => write!(f, "no verdict ({reason})"),
        }
    }
}

/// A minimum detectable effect, or why none can be stated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Detectable {
    /// The smallest true difference the run-level test detects with probability `power` at
    /// `alpha`, for the observed between-seed variance and this design.
    Estimated {
        /// The effect (same units as the difference).
        effect: f64,
        /// The power it is stated at.
        power: f64,
        /// The two-sided test level α.
        alpha: f64,
        /// The standard error it is based on.
        se: f64,
        /// Degrees of freedom of the test.
        df: f64,
    },
    /// Why no effect can be stated.
    Unavailable {
        /// The reason.
        reason: String,
    },
}

impl Detectable {
    /// The effect, if stated.
    pub fn effect(&self) -> Option<f64> {
        match self {
            Detectable::Estimated { effect, .. } => Some(*effect),
            Detectable::Unavailable { .. } => None,
        }
    }
}

/// The item-level view of a comparison: about **these particular runs only**.
///
/// Per object (cluster), the difference between the arms' means over all its items and seeds;
/// the estimate is the mean of those per-object differences with a t interval over objects
/// ([`Method::ItemLevelByObject`]). It says whether these fine-tuned models differ on this item
/// set, not whether the training procedure does: for that use [`ArmComparison::difference`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemLevelView {
    /// What this view is about, in words, for reports.
    pub scope: String,
    /// The difference with its interval.
    pub difference: Stat,
    /// Two-sided p-value of the t test over objects.
    pub p_value: Option<f64>,
    /// Objects present in both arms.
    pub n_clusters: usize,
}

/// The scope line of every [`ItemLevelView`].
pub const ITEM_LEVEL_SCOPE: &str = "these fine-tuned runs only (items clustered by object, each \
object's seeds kept together); not a statement about other runs of the training procedure";

/// The reason given when there is one seed per arm.
pub const ONE_SEED_REASON: &str = "one seed per arm: between-run variance not estimated";

/// The reason given when every run of both arms gives the same value (or every per-seed
/// difference is the same): a t interval of width 0 is not evidence.
pub const ZERO_VARIANCE_REASON: &str = "the per-seed values do not vary: between-run variance \
estimated as 0 (check that the seed reaches training and data)";

/// The comparison of a treatment arm with a control arm (see the module docs for the rules).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmComparison {
    /// The treatment arm.
    pub treatment: ArmSummary,
    /// The control arm.
    pub control: ArmSummary,
    /// Treatment − control, with the run-level interval (or, with one seed per arm, the
    /// item-level one of [`Method::SingleSeedItemLevel`]).
    pub difference: Stat,
    /// Two-sided p-value of the test behind `difference`.
    pub p_value: Option<f64>,
    /// Degrees of freedom of that test.
    pub df: Option<f64>,
    /// How `difference` was computed.
    pub method: Method,
    /// Whether seeds were paired.
    pub paired: bool,
    /// Nominal level.
    pub level: f64,
    /// The run-level verdict.
    pub verdict: IntervalVerdict,
    /// Minimum detectable effect at [`ArmOptions::power`].
    pub minimum_detectable_effect: Detectable,
    /// The item-level view (these runs only); `None` without items.
    pub item_level: Option<ItemLevelView>,
    /// Bounds of the arm quantity, as given.
    pub bounds: Option<(f64, f64)>,
}

impl fmt::Display for ArmComparison {
    /// `backdoored − control: 0.1200 (se …) [0.05, 0.19] (95% pooled t over seeds, n=6);
    /// p = 0.0123; excludes zero; seeds 3 vs 3`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = f.precision().unwrap_or(4);
        write!(
            f,
            "{} − {}: {:.p$}",
            self.treatment.arm, self.control.arm, self.difference
        )?;
        if let Some(pv) = self.p_value {
            write!(f, "; p = {pv:.4}")?;
        }
        write!(
            f,
            "; {}; seeds {} vs {}",
            self.verdict, self.treatment.n_seeds, self.control.n_seeds
        )
    }
}
