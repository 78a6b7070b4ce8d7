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
//!   [`Verdict::NotEstimable`];
//! - the item-level view ([`ItemLevelView`]) answers the narrower question "do these particular
//!   runs differ": per-object differences of the arms' means, each object's items and seeds
//!   kept together, t over objects;
//! - intervals are kept inside the quantity's bounds ([`ArmOptions::bounds`]).
//!
//! The minimum detectable effect at 80 % power comes from the observed between-seed variance
//! and the design through the noncentral t distribution ([`SeedDesign`]).

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::descriptive::{clustered_mean_ci, mean_unchecked, t_crit, variance_unchecked};
use crate::dist::{noncentral_t_cdf, t_quantile, t_two_sided_p};
use crate::error::{StatsError, check_level, check_probability};
use crate::estimate::{Estimate, Method};
use crate::stat::Stat;

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
pub enum Verdict {
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

impl Verdict {
    /// Whether the verdict is [`Verdict::ExcludesZero`].
    pub fn excludes_zero(&self) -> bool {
        matches!(self, Verdict::ExcludesZero)
    }

    fn of(stat: &Stat) -> Self {
        match stat {
            Stat::Estimated(e) if e.ci_low > 0.0 || e.ci_high < 0.0 => Verdict::ExcludesZero,
            Stat::Estimated(_) => Verdict::IncludesZero,
            other => Verdict::NotEstimable {
                reason: other.reason().unwrap_or("no interval").to_string(),
            },
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::ExcludesZero => f.write_str("excludes zero"),
            Verdict::IncludesZero => f.write_str("includes zero"),
            Verdict::NotEstimable { reason } => write!(f, "no verdict ({reason})"),
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
    pub verdict: Verdict,
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

struct ArmGroups<'a> {
    name: &'a str,
    /// seed → (sum, count), in order of first appearance.
    seeds: Vec<(&'a str, f64, usize)>,
    /// cluster → (sum, count) over all seeds.
    clusters: Vec<(&'a str, f64, usize)>,
    items: usize,
    values: Vec<f64>,
    cluster_keys: Vec<&'a str>,
    n: usize,
}

fn group_arm<'a>(
    data: &'a ArmData,
    arm: &'a str,
    field: &'static str,
) -> Result<ArmGroups<'a>, StatsError> {
    let mut seeds: Vec<(&str, f64, usize)> = Vec::new();
    let mut seed_index: HashMap<&str, usize> = HashMap::new();
    let mut clusters: Vec<(&str, f64, usize)> = Vec::new();
    let mut cluster_index: HashMap<&str, usize> = HashMap::new();
    let mut items: HashMap<&str, ()> = HashMap::new();
    let mut values = Vec::new();
    let mut cluster_keys = Vec::new();
    let mut n = 0;
    for (index, o) in data.observations.iter().enumerate() {
        if o.arm != arm {
            continue;
        }
        if !o.value.is_finite() {
            return Err(StatsError::NonFinite {
                field: "observations.value",
                index,
                value: o.value,
            });
        }
        n += 1;
        let s = *seed_index.entry(o.seed.as_str()).or_insert_with(|| {
            seeds.push((o.seed.as_str(), 0.0, 0));
            seeds.len() - 1
        });
        seeds[s].1 += o.value;
        seeds[s].2 += 1;
        if let Some(item) = o.item.as_deref() {
            items.insert(item, ());
        }
        if let Some(key) = o.cluster_key() {
            let c = *cluster_index.entry(key).or_insert_with(|| {
                clusters.push((key, 0.0, 0));
                clusters.len() - 1
            });
            clusters[c].1 += o.value;
            clusters[c].2 += 1;
            values.push(o.value);
            cluster_keys.push(key);
        }
    }
    if n == 0 {
        return Err(StatsError::Invalid {
            field,
            reason: format!("no observations for arm '{arm}'"),
        });
    }
    Ok(ArmGroups {
        name: arm,
        seeds,
        clusters,
        items: items.len(),
        values,
        cluster_keys,
        n,
    })
}

impl ArmGroups<'_> {
    fn seed_means(&self) -> Vec<f64> {
        self.seeds.iter().map(|s| s.1 / s.2 as f64).collect()
    }

    fn summary(&self, options: &ArmOptions) -> ArmSummary {
        let means = self.seed_means();
        let mean = if means.len() >= 2 {
            match crate::descriptive::mean_ci(&means, options.level) {
                Ok(e) => Stat::Estimated(clip(
                    Estimate {
                        method: Method::SeedMeansT,
                        ..e
                    },
                    options.bounds,
                )),
                Err(e) => Stat::unavailable(e.to_string()),
            }
        } else {
            Stat::point(
                mean_unchecked(&means),
                "one seed: between-run variance not estimated",
            )
        };
        let item_level_mean = if self.values.is_empty() {
            Stat::unavailable("no item-level observations")
        } else {
            match clustered_mean_ci(&self.values, &self.cluster_keys, options.level) {
                Ok(e) => Stat::Estimated(clip(e, options.bounds)),
                Err(e) => Stat::unavailable(e.to_string()),
            }
        };
        ArmSummary {
            arm: self.name.to_string(),
            mean,
            n_seeds: self.seeds.len(),
            n_clusters: self.clusters.len(),
            n_items: self.items,
            n_observations: self.n,
            per_seed: self
                .seeds
                .iter()
                .map(|(seed, sum, n)| SeedMean {
                    seed: seed.to_string(),
                    mean: sum / *n as f64,
                    n: *n,
                })
                .collect(),
            item_level_mean,
        }
    }
}

fn clip(e: Estimate, bounds: Option<(f64, f64)>) -> Estimate {
    match bounds {
        Some((lo, hi)) => Estimate {
            ci_low: e.ci_low.clamp(lo, hi),
            ci_high: e.ci_high.clamp(lo, hi),
            ..e
        },
        None => e,
    }
}

/// A t-based test result: estimate, SE, df.
struct TTest {
    estimate: f64,
    se: f64,
    df: f64,
    n: usize,
}

impl TTest {
    fn p_value(&self) -> f64 {
        if self.se > 0.0 {
            t_two_sided_p(self.estimate / self.se, self.df)
        } else if self.estimate == 0.0 {
            1.0
        } else {
            0.0
        }
    }

    fn estimate(&self, level: f64, method: Method) -> Result<Estimate, StatsError> {
        let t = t_crit(level, self.df)?;
        Ok(Estimate {
            estimate: self.estimate,
            se: self.se,
            ci_low: self.estimate - t * self.se,
            ci_high: self.estimate + t * self.se,
            n: self.n,
            level,
            method,
        })
    }
}

fn item_level(t: &ArmGroups<'_>, c: &ArmGroups<'_>, options: &ArmOptions) -> Option<ItemLevelView> {
    if t.clusters.is_empty() || c.clusters.is_empty() {
        return None;
    }
    let control: HashMap<&str, f64> = c
        .clusters
        .iter()
        .map(|(k, s, n)| (*k, s / *n as f64))
        .collect();
    let diffs: Vec<f64> = t
        .clusters
        .iter()
        .filter_map(|(k, s, n)| control.get(k).map(|m| s / *n as f64 - m))
        .collect();
    let o = diffs.len();
    let (difference, p_value) = if o < 2 {
        (
            Stat::unavailable(format!(
                "{o} object(s) observed in both arms: need at least 2 for an interval over objects"
            )),
            None,
        )
    } else {
        let test = TTest {
            estimate: mean_unchecked(&diffs),
            se: (variance_unchecked(&diffs, 1) / o as f64).sqrt(),
            df: (o - 1) as f64,
            n: o,
        };
        match test.estimate(options.level, Method::ItemLevelByObject) {
            Ok(e) => (
                Stat::Estimated(clip(e, options.difference_bounds())),
                Some(test.p_value()),
            ),
            Err(e) => (Stat::unavailable(e.to_string()), None),
        }
    };
    Some(ItemLevelView {
        scope: ITEM_LEVEL_SCOPE.to_string(),
        difference,
        p_value,
        n_clusters: o,
    })
}

impl ArmComparison {
    /// Compares arm `treatment` with arm `control` in `data` (treatment − control).
    ///
    /// | seeds per arm | `paired` | method | verdict |
    /// |---|---|---|---|
    /// | k_T = k_C ≥ 2 | no | [`Method::PooledTOverSeeds`] (df 2k − 2) | from its interval |
    /// | k_T ≠ k_C, both ≥ 2 | no | [`Method::WelchOverSeeds`] | from its interval |
    /// | one arm 1, the other ≥ 2 | no | [`Method::PooledTOverSeeds`] (the single run's arm is assumed to vary as the other does) | from its interval |
    /// | k ≥ 2 shared seeds | yes | [`Method::PairedOverSeeds`] (df k − 1) | from its interval |
    /// | 1 and 1 | either | [`Method::SingleSeedItemLevel`] | [`Verdict::NotEstimable`] |
    ///
    /// When the per-seed values (or differences) do not vary at all the interval has width 0
    /// and the verdict is [`Verdict::NotEstimable`] ([`ZERO_VARIANCE_REASON`]).
    ///
    /// ```
    /// use psyche_stats::{ArmComparison, ArmData, ArmOptions, Method};
    /// let mut data = ArmData::new();
    /// for (seed, t, c) in [(1, 0.62, 0.41), (2, 0.58, 0.45), (3, 0.66, 0.40)] {
    ///     data.seed_value("trained", seed, t).seed_value("control", seed, c);
    /// }
    /// let cmp = ArmComparison::compare(&data, "trained", "control", &ArmOptions::new().proportion())?;
    /// assert_eq!(cmp.method, Method::PooledTOverSeeds);
    /// assert!(cmp.verdict.excludes_zero());
    /// # Ok::<(), psyche_stats::StatsError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`StatsError::Invalid`] (field `"treatment"` / `"control"`) when an arm has no
    /// observations or both name the same arm, (field `"seeds"`) when `paired` is set and the
    /// arms' seed ids differ; [`StatsError::NonFinite`] (field `"observations.value"`, with the
    /// observation's index); [`StatsError::OutOfRange`] for the level, power or bounds. Data
    /// too thin for an interval is not an error: the parts that cannot be estimated are
    /// [`Stat::Unavailable`] / [`Verdict::NotEstimable`] with the reason.
    pub fn compare(
        data: &ArmData,
        treatment: &str,
        control: &str,
        options: &ArmOptions,
    ) -> Result<Self, StatsError> {
        options.check()?;
        if treatment == control {
            return Err(StatsError::Invalid {
                field: "control",
                reason: format!("treatment and control are the same arm '{treatment}'"),
            });
        }
        let t = group_arm(data, treatment, "treatment")?;
        let c = group_arm(data, control, "control")?;
        let item_level = item_level(&t, &c, options);
        let (kt, kc) = (t.seeds.len(), c.seeds.len());
        let level = options.level;
        let alpha = 1.0 - level;
        let dbounds = options.difference_bounds();

        let (test, method) = if options.paired {
            let control_means: HashMap<&str, f64> = c
                .seeds
                .iter()
                .map(|(s, sum, n)| (*s, sum / *n as f64))
                .collect();
            let mut diffs = Vec::with_capacity(kt);
            for (s, sum, n) in &t.seeds {
                match control_means.get(s) {
                    Some(m) => diffs.push(sum / *n as f64 - m),
                    None => {
                        return Err(StatsError::Invalid {
                            field: "seeds",
                            reason: format!(
                                "paired over seeds, but seed '{s}' of arm '{treatment}' has no \
                                 run in arm '{control}'"
                            ),
                        });
                    }
                }
            }
            if kc != kt {
                return Err(StatsError::Invalid {
                    field: "seeds",
                    reason: format!(
                        "paired over seeds, but arm '{control}' has {kc} seeds and arm \
                         '{treatment}' {kt}"
                    ),
                });
            }
            if kt >= 2 {
                let k = kt as f64;
                (
                    Some(TTest {
                        estimate: mean_unchecked(&diffs),
                        se: (variance_unchecked(&diffs, 1) / k).sqrt(),
                        df: k - 1.0,
                        n: kt,
                    }),
                    Method::PairedOverSeeds,
                )
            } else {
                (None, Method::SingleSeedItemLevel)
            }
        } else if kt == 1 && kc == 1 {
            (None, Method::SingleSeedItemLevel)
        } else {
            let (mt, mc) = (t.seed_means(), c.seed_means());
            let (at, ac) = (mean_unchecked(&mt), mean_unchecked(&mc));
            let (nt, nc) = (kt as f64, kc as f64);
            let vt = if kt >= 2 {
                variance_unchecked(&mt, 1)
            } else {
                0.0
            };
            let vc = if kc >= 2 {
                variance_unchecked(&mc, 1)
            } else {
                0.0
            };
            if kt == kc || kt == 1 || kc == 1 {
                let df = nt + nc - 2.0;
                let pooled = ((nt - 1.0) * vt + (nc - 1.0) * vc) / df;
                (
                    Some(TTest {
                        estimate: at - ac,
                        se: (pooled * (1.0 / nt + 1.0 / nc)).sqrt(),
                        df,
                        n: kt + kc,
                    }),
                    Method::PooledTOverSeeds,
                )
            } else {
                let (qt, qc) = (vt / nt, vc / nc);
                let se2 = qt + qc;
                let df = if se2 > 0.0 {
                    se2 * se2 / (qt * qt / (nt - 1.0) + qc * qc / (nc - 1.0))
                } else {
                    nt + nc - 2.0
                };
                (
                    Some(TTest {
                        estimate: at - ac,
                        se: se2.sqrt(),
                        df,
                        n: kt + kc,
                    }),
                    Method::WelchOverSeeds,
                )
            }
        };

        let (difference, p_value, df, verdict, mde) = match test {
            Some(test) => {
                let difference = match test.estimate(level, method) {
                    Ok(e) => Stat::Estimated(clip(e, dbounds)),
                    Err(e) => Stat::unavailable(e.to_string()),
                };
                let verdict = if test.se > 0.0 {
                    Verdict::of(&difference)
                } else {
                    Verdict::NotEstimable {
                        reason: ZERO_VARIANCE_REASON.into(),
                    }
                };
                let mde = if test.se > 0.0 {
                    match t_test_mde(test.se, test.df, alpha, options.power) {
                        Ok(effect) => Detectable::Estimated {
                            effect,
                            power: options.power,
                            alpha,
                            se: test.se,
                            df: test.df,
                        },
                        Err(e) => Detectable::Unavailable {
                            reason: e.to_string(),
                        },
                    }
                } else {
                    Detectable::Unavailable {
                        reason: "the observed between-seed variance is 0: no power statement \
                                 (an upper bound of the run-to-run variance is needed)"
                            .into(),
                    }
                };
                (
                    difference,
                    Some(test.p_value()),
                    Some(test.df),
                    verdict,
                    mde,
                )
            }
            None => {
                let (difference, p) = match &item_level {
                    Some(view) => match &view.difference {
                        Stat::Estimated(e) => (
                            Stat::Estimated(Estimate {
                                method: Method::SingleSeedItemLevel,
                                ..*e
                            }),
                            view.p_value,
                        ),
                        other => (other.clone(), None),
                    },
                    None => {
                        let d = mean_unchecked(&t.seed_means()) - mean_unchecked(&c.seed_means());
                        (Stat::point(d, ONE_SEED_REASON), None)
                    }
                };
                let df = item_level
                    .as_ref()
                    .filter(|v| v.n_clusters >= 2)
                    .map(|v| (v.n_clusters - 1) as f64);
                (
                    difference,
                    p,
                    df,
                    Verdict::NotEstimable {
                        reason: ONE_SEED_REASON.into(),
                    },
                    Detectable::Unavailable {
                        reason: ONE_SEED_REASON.into(),
                    },
                )
            }
        };
        let result = ArmComparison {
            treatment: t.summary(options),
            control: c.summary(options),
            difference,
            p_value,
            df,
            method,
            paired: options.paired,
            level,
            verdict,
            minimum_detectable_effect: mde,
            item_level,
            bounds: options.bounds,
        };
        tracing::debug!(%result, "arm comparison");
        Ok(result)
    }
}

/// Power of the two-sided t test at level `alpha` with standard error `se` and `df` degrees
/// of freedom to detect a true difference `delta`: with λ = δ/SE,
/// `P(T′ > t_crit) + P(T′ < −t_crit)` for T′ noncentral t(df, λ).
///
/// # Errors
///
/// [`StatsError::OutOfRange`] for a non-positive or non-finite `se` or `df`, or `alpha`
/// outside (0, 1).
pub fn t_test_power(delta: f64, se: f64, df: f64, alpha: f64) -> Result<f64, StatsError> {
    check_t_design(se, df, alpha)?;
    let lambda = delta.abs() / se;
    if df > 1e6 {
        // The t is the normal here (to ~1e-6); the noncentral series is slow at such df.
        let z = crate::dist::normal_quantile(1.0 - alpha / 2.0);
        return Ok(
            (crate::dist::normal_cdf(lambda - z) + crate::dist::normal_cdf(-lambda - z))
                .clamp(0.0, 1.0),
        );
    }
    let tc = t_quantile(1.0 - alpha / 2.0, df)?;
    Ok(
        (1.0 - noncentral_t_cdf(tc, df, lambda) + noncentral_t_cdf(-tc, df, lambda))
            .clamp(0.0, 1.0),
    )
}

/// The smallest true difference the two-sided t test (standard error `se`, `df` degrees of
/// freedom, level `alpha`) detects with probability `power` (inverts [`t_test_power`]).
///
/// # Errors
///
/// As [`t_test_power`]; [`StatsError::OutOfRange`] when `power` is not in (alpha, 1).
pub fn t_test_mde(se: f64, df: f64, alpha: f64, power: f64) -> Result<f64, StatsError> {
    check_t_design(se, df, alpha)?;
    if !(power > alpha && power < 1.0) {
        return Err(StatsError::OutOfRange {
            field: "power",
            value: power,
            expected: "alpha < power < 1",
        });
    }
    let (mut lo, mut hi) = (0.0_f64, se);
    while t_test_power(hi, se, df, alpha)? < power {
        hi *= 2.0;
        if hi > se * 1e9 {
            break;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_test_power(mid, se, df, alpha)? < power {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-12 * hi {
            break;
        }
    }
    Ok(0.5 * (lo + hi))
}

fn check_t_design(se: f64, df: f64, alpha: f64) -> Result<(), StatsError> {
    if !(se.is_finite() && se > 0.0) {
        return Err(StatsError::OutOfRange {
            field: "se",
            value: se,
            expected: "a finite standard error > 0",
        });
    }
    if !(df.is_finite() && df > 0.0) {
        return Err(StatsError::OutOfRange {
            field: "df",
            value: df,
            expected: "df > 0",
        });
    }
    if !(alpha.is_finite() && alpha > 0.0 && alpha < 1.0) {
        return Err(StatsError::OutOfRange {
            field: "alpha",
            value: alpha,
            expected: "0 < alpha < 1",
        });
    }
    Ok(())
}

/// A planned seed-level design: how many runs per arm, how much runs vary, paired or not.
///
/// `seed_sd` is the standard deviation of one run's value (its per-seed mean, item noise
/// included) around its arm's mean; for a paired design, of one run's *difference*. The test
/// is the one [`ArmComparison`] runs: pooled t (df k_T + k_C − 2) unpaired, paired t
/// (df k − 1) paired.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeedDesign {
    /// Runs in the treatment arm.
    pub seeds_treatment: usize,
    /// Runs in the control arm (ignored when paired).
    pub seeds_control: usize,
    /// SD of a run's value (paired: of a run's difference).
    pub seed_sd: f64,
    /// Seeds paired across arms.
    pub paired: bool,
}

impl SeedDesign {
    /// k seeds per arm, unpaired.
    pub fn unpaired(seeds_per_arm: usize, seed_sd: f64) -> Self {
        Self {
            seeds_treatment: seeds_per_arm,
            seeds_control: seeds_per_arm,
            seed_sd,
            paired: false,
        }
    }

    /// k paired seeds, `diff_sd` the SD of one run's difference.
    pub fn paired(seeds: usize, diff_sd: f64) -> Self {
        Self {
            seeds_treatment: seeds,
            seeds_control: seeds,
            seed_sd: diff_sd,
            paired: true,
        }
    }

    /// The standard error and df of the difference.
    ///
    /// # Errors
    ///
    /// [`StatsError::TooFew`] (field `"seeds"`) when the design has no df (fewer than 2 seeds
    /// paired, fewer than 3 in all unpaired).
    pub fn se_df(&self) -> Result<(f64, f64), StatsError> {
        let (kt, kc) = (self.seeds_treatment as f64, self.seeds_control as f64);
        if self.paired {
            crate::error::check_min_len("seeds", self.seeds_treatment, 2)?;
            Ok((self.seed_sd / kt.sqrt(), kt - 1.0))
        } else {
            crate::error::check_min_len("seeds", self.seeds_treatment.min(self.seeds_control), 1)?;
            crate::error::check_min_len("seeds", self.seeds_treatment + self.seeds_control, 3)?;
            Ok((self.seed_sd * (1.0 / kt + 1.0 / kc).sqrt(), kt + kc - 2.0))
        }
    }

    /// Power to detect `delta` at level `alpha`.
    ///
    /// # Errors
    ///
    /// As [`SeedDesign::se_df`] and [`t_test_power`].
    pub fn power(&self, delta: f64, alpha: f64) -> Result<f64, StatsError> {
        let (se, df) = self.se_df()?;
        t_test_power(delta, se, df, alpha)
    }

    /// The minimum detectable effect at `power`.
    ///
    /// # Errors
    ///
    /// As [`SeedDesign::se_df`] and [`t_test_mde`].
    pub fn mde(&self, alpha: f64, power: f64) -> Result<f64, StatsError> {
        let (se, df) = self.se_df()?;
        t_test_mde(se, df, alpha, power)
    }
}

/// A family of contrasts for Holm's correction, declared by name before looking at results
/// (e.g. the primary convention's contrast against each control), never the variants of one
/// hypothesis.
///
/// A contrast without a p-value (not estimable) stays in the family as p = 1: it still counts
/// in m, so dropping it cannot make the others look stronger.
///
/// ```
/// use psyche_stats::HolmFamily;
/// let family = HolmFamily::new()
///     .add("insecure vs secure", Some(0.01))
///     .add("insecure vs educational", Some(0.04))
///     .add("insecure vs base", None);
/// let adjusted = family.adjust();
/// assert!((adjusted[0].adjusted.unwrap_or(1.0) - 0.03).abs() < 1e-12);
/// assert!(adjusted[0].rejected(0.05) && !adjusted[1].rejected(0.05));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HolmFamily {
    contrasts: Vec<(String, Option<f64>)>,
}

/// One contrast of a [`HolmFamily`] after adjustment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HolmAdjusted {
    /// The contrast's name.
    pub name: String,
    /// Its raw p-value (`None`: not estimable).
    pub p_value: Option<f64>,
    /// Its Holm-adjusted p-value (`None` when the raw one is); compare with α.
    pub adjusted: Option<f64>,
    /// Size m of the family.
    pub family_size: usize,
}

impl HolmAdjusted {
    /// Whether the contrast is rejected at family-wise level `alpha`.
    pub fn rejected(&self, alpha: f64) -> bool {
        self.adjusted.is_some_and(|p| p <= alpha)
    }
}

impl HolmFamily {
    /// An empty family.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named contrast with its p-value (`None` when not estimable).
    pub fn add(mut self, name: impl Into<String>, p_value: Option<f64>) -> Self {
        self.push(name, p_value);
        self
    }

    /// Adds a named contrast in place.
    pub fn push(&mut self, name: impl Into<String>, p_value: Option<f64>) -> &mut Self {
        self.contrasts.push((name.into(), p_value));
        self
    }

    /// Adds a comparison's run-level p-value under `name`. A comparison without a run-level
    /// verdict (one seed per arm) enters as not estimable, even if it has an item-level p.
    pub fn add_comparison(self, name: impl Into<String>, comparison: &ArmComparison) -> Self {
        let p = match comparison.verdict {
            Verdict::NotEstimable { .. } => None,
            _ => comparison.p_value,
        };
        self.add(name, p)
    }

    /// Number of contrasts.
    pub fn len(&self) -> usize {
        self.contrasts.len()
    }

    /// Whether the family is empty.
    pub fn is_empty(&self) -> bool {
        self.contrasts.is_empty()
    }

    /// Holm's adjusted p-values, in the order added. A p-value outside [0, 1] or NaN is
    /// treated as not estimable (p = 1 in the family, `adjusted: None`).
    pub fn adjust(&self) -> Vec<HolmAdjusted> {
        let clean: Vec<Option<f64>> = self
            .contrasts
            .iter()
            .map(|(_, p)| p.filter(|v| v.is_finite() && (0.0..=1.0).contains(v)))
            .collect();
        let raw: Vec<f64> = clean.iter().map(|p| p.unwrap_or(1.0)).collect();
        let adjusted = crate::compare::holm(&raw).unwrap_or_else(|_| vec![1.0; raw.len()]);
        self.contrasts
            .iter()
            .zip(clean)
            .zip(adjusted)
            .map(|(((name, _), p), adj)| HolmAdjusted {
                name: name.clone(),
                p_value: p,
                adjusted: p.map(|_| adj),
                family_size: raw.len(),
            })
            .collect()
    }
}
