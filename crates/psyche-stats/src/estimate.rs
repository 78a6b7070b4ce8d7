//! [`Estimate`], the common result type, and [`Method`], the record of how it was computed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How an [`Estimate`]'s interval was computed. Serialised in `snake_case`
/// (e.g. `"clustered_t"`), so reports can say which method produced each number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Method {
    /// Mean ± t(n−1)·SE with SE = sd(ddof 1)/√n.
    TInterval,
    /// Mean ± t(C−1)·SE_C with the cluster-robust SE (Miller 2024 App. A, × C/(C−1)).
    ClusteredT,
    /// Mean of per-group means ± t(G−1)·SE over the groups (per-question rate → mean).
    GroupMeansT,
    /// Wilson score interval for a binomial proportion.
    Wilson,
    /// Clopper–Pearson "exact" interval from Beta quantiles.
    ClopperPearson,
    /// Equal-tailed interval of a Beta posterior (Jeffreys prior by default).
    BetaPosterior,
    /// Estimate ± z·SE (normal approximation), e.g. the unpooled two-proportion difference.
    Normal,
    /// Paired difference: mean of a−b ± t(n−1)·SE of the differences.
    PairedT,
    /// Bootstrap percentile interval (items resampled).
    BootstrapPercentile,
    /// Bias-corrected and accelerated bootstrap interval (items resampled).
    BootstrapBca,
    /// Bootstrap percentile interval with whole clusters resampled.
    ClusterBootstrapPercentile,
    /// BCa bootstrap interval with whole clusters resampled (jackknife over clusters).
    ClusterBootstrapBca,
    /// BCa was asked for but is undefined here (`1 − a(z₀ ± z_α) ≤ 0`): the percentile interval
    /// of the same replicates.
    BootstrapBcaFallback,
    /// As [`Method::BootstrapBcaFallback`], with whole clusters resampled.
    ClusterBootstrapBcaFallback,
    /// One arm's mean over its fine-tuning runs: the mean of the per-seed means ± t(k−1)·SE
    /// over the k seeds (the run is the unit).
    SeedMeansT,
    /// Difference of two arms' means with the same number of seeds (or one arm with a single
    /// seed): Student's t on the per-seed means with the pooled between-seed variance,
    /// df = k_T + k_C − 2.
    PooledTOverSeeds,
    /// Difference of two arms' means with unequal numbers of seeds (both ≥ 2): Welch's t on
    /// the per-seed means, Welch–Satterthwaite df.
    WelchOverSeeds,
    /// Difference of two arms whose seeds are paired (seed s of both arms shares its data or
    /// items): paired t on the k per-seed differences, df = k − 1.
    PairedOverSeeds,
    /// One seed per arm: the item-level difference of these two runs, items clustered by
    /// object (t over objects). Says nothing about other runs of the procedure.
    SingleSeedItemLevel,
    /// The item-level view of several runs: mean over objects of the per-object difference
    /// (each object's items and seeds kept together), t over objects. About these runs only.
    ItemLevelByObject,
    /// Difference of two proportions measured on the same items (paired binary outcomes):
    /// Newcombe's (1998) hybrid score interval, his method 10, built from the two Wilson
    /// intervals and the phi correlation; it never leaves [−1, 1].
    NewcombePaired,
}

impl Method {
    /// A short human-readable name for tables ("t", "clustered t", "Wilson"...).
    pub fn label(self) -> &'static str {
        match self {
            Method::TInterval => "t",
            Method::ClusteredT => "clustered t",
            Method::GroupMeansT => "t over group means",
            Method::Wilson => "Wilson",
            Method::ClopperPearson => "Clopper-Pearson",
            Method::BetaPosterior => "Beta posterior",
            Method::Normal => "normal",
            Method::PairedT => "paired t",
            Method::BootstrapPercentile => "bootstrap percentile",
            Method::BootstrapBca => "bootstrap BCa",
            Method::ClusterBootstrapPercentile => "cluster bootstrap percentile",
            Method::ClusterBootstrapBca => "cluster bootstrap BCa",
            Method::BootstrapBcaFallback => "bootstrap percentile (BCa undefined)",
            Method::ClusterBootstrapBcaFallback => "cluster bootstrap percentile (BCa undefined)",
            Method::SeedMeansT => "t over seed means",
            Method::PooledTOverSeeds => "pooled t over seeds",
            Method::WelchOverSeeds => "Welch t over seeds",
            Method::PairedOverSeeds => "paired t over seeds",
            Method::SingleSeedItemLevel => "single seed, item level (these runs only)",
            Method::ItemLevelByObject => "item level by object (these runs only)",
            Method::NewcombePaired => "Newcombe paired score",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A point estimate with its standard error and a confidence (or credible) interval.
///
/// The common result type of means, proportions and differences. All fields are finite for
/// every `Ok` result of this crate.
///
/// - `se`: the standard error the interval is built on. For bootstrap methods it is the
///   standard deviation (ddof 1) of the bootstrap replicates; for [`Method::Wilson`] and
///   [`Method::ClopperPearson`] the Wald SE √(p̂(1−p̂)/n); for [`Method::BetaPosterior`] the
///   posterior standard deviation.
/// - `n`: the number of observations behind the estimate (for clustered methods, observations,
///   not clusters).
/// - `level`: the nominal coverage, e.g. `0.95`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The point estimate.
    pub estimate: f64,
    /// Its standard error.
    pub se: f64,
    /// Lower end of the interval.
    pub ci_low: f64,
    /// Upper end of the interval.
    pub ci_high: f64,
    /// Number of observations.
    pub n: usize,
    /// Nominal coverage of the interval (e.g. 0.95).
    pub level: f64,
    /// How the interval was computed.
    pub method: Method,
}

impl Estimate {
    /// Half the interval's width (for symmetric intervals, the "±" in `mean ± x`).
    pub fn half_width(&self) -> f64 {
        (self.ci_high - self.ci_low) / 2.0
    }

    /// Whether `x` lies inside the closed interval.
    pub fn contains(&self, x: f64) -> bool {
        self.ci_low <= x && x <= self.ci_high
    }

    /// The interval as a pair `(low, high)`.
    pub fn interval(&self) -> (f64, f64) {
        (self.ci_low, self.ci_high)
    }
}

impl fmt::Display for Estimate {
    /// `0.4500 ± 0.0312 [0.4188, 0.4812] (95% t, n=100)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = f.precision().unwrap_or(4);
        write!(
            f,
            "{:.p$} (se {:.p$}) [{:.p$}, {:.p$}] ({}% {}, n={})",
            self.estimate,
            self.se,
            self.ci_low,
            self.ci_high,
            trim_level(self.level),
            self.method,
            self.n,
        )
    }
}

fn trim_level(level: f64) -> String {
    let s = format!("{:.2}", level * 100.0);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
