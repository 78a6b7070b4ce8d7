//! [`ArmComparison::compare`]: grouping each arm's observations by seed, the t test over
//! seeds (paired, pooled or Welch), and the single-seed, item-level fallback.

use std::collections::HashMap;

use crate::descriptive::{clustered_mean_ci, mean_unchecked, t_crit, variance_unchecked};
use crate::dist::t_two_sided_p;
use crate::error::StatsError;
use crate::estimate::{Estimate, Method};
use crate::stat::Stat;

use super::power::t_test_mde;
use super::{
    ArmComparison, ArmData, ArmOptions, ArmSummary, Detectable, ITEM_LEVEL_SCOPE, IntervalVerdict,
    ItemLevelView, ONE_SEED_REASON, SeedMean, ZERO_VARIANCE_REASON,
};

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
    /// | 1 and 1 | either | [`Method::SingleSeedItemLevel`] | [`IntervalVerdict::NotEstimable`] |
    ///
    /// When the per-seed values (or differences) do not vary at all the interval has width 0
    /// and the verdict is [`IntervalVerdict::NotEstimable`] ([`ZERO_VARIANCE_REASON`]).
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
    /// [`Stat::Unavailable`] / [`IntervalVerdict::NotEstimable`] with the reason.
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
        let (test, method) = seed_test(&t, &c, options, treatment, control)?;
        let outcome = match test {
            Some(test) => Outcome::of_test(&test, method, options),
            None => Outcome::single_seed(item_level.as_ref(), &t, &c),
        };
        let Outcome {
            difference,
            p_value,
            df,
            verdict,
            mde,
        } = outcome;
        let result = ArmComparison {
            treatment: t.summary(options),
            control: c.summary(options),
            difference,
            p_value,
            df,
            method,
            paired: options.paired,
            level: options.level,
            verdict,
            minimum_detectable_effect: mde,
            item_level,
            bounds: options.bounds,
        };
        tracing::debug!(%result, "arm comparison");
        Ok(result)
    }
}

/// The t test over seeds the design calls for, and its method; `None` with one seed per arm.
fn seed_test(
    t: &ArmGroups<'_>,
    c: &ArmGroups<'_>,
    options: &ArmOptions,
    treatment: &str,
    control: &str,
) -> Result<(Option<TTest>, Method), StatsError> {
    let (kt, kc) = (t.seeds.len(), c.seeds.len());
    Ok(if options.paired {
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
    })
}

/// The parts of an [`ArmComparison`] that follow from the test (or from its absence).
struct Outcome {
    difference: Stat,
    p_value: Option<f64>,
    df: Option<f64>,
    verdict: IntervalVerdict,
    mde: Detectable,
}

impl Outcome {
    /// From a t test over seeds: its interval (kept inside the difference's bounds), p-value,
    /// verdict and minimum detectable effect.
    fn of_test(test: &TTest, method: Method, options: &ArmOptions) -> Self {
        let level = options.level;
        let alpha = 1.0 - level;
        let difference = match test.estimate(level, method) {
            Ok(e) => Stat::Estimated(clip(e, options.difference_bounds())),
            Err(e) => Stat::unavailable(e.to_string()),
        };
        let verdict = if test.se > 0.0 {
            IntervalVerdict::of(&difference)
        } else {
            IntervalVerdict::NotEstimable {
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
        Outcome {
            difference,
            p_value: Some(test.p_value()),
            df: Some(test.df),
            verdict,
            mde,
        }
    }

    /// With one seed per arm: the item-level difference of these two runs (or the plain
    /// difference of their means when there is no item-level view), never a verdict.
    fn single_seed(
        item_level: Option<&ItemLevelView>,
        t: &ArmGroups<'_>,
        c: &ArmGroups<'_>,
    ) -> Self {
        let (difference, p_value) = match item_level {
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
            .filter(|v| v.n_clusters >= 2)
            .map(|v| (v.n_clusters - 1) as f64);
        Outcome {
            difference,
            p_value,
            df,
            verdict: IntervalVerdict::NotEstimable {
                reason: ONE_SEED_REASON.into(),
            },
            mde: Detectable::Unavailable {
                reason: ONE_SEED_REASON.into(),
            },
        }
    }
}
