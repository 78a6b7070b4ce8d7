//! [`Stat`]: one serialisable type for "an estimate, or why there is none".

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::StatsError;
use crate::estimate::Estimate;

/// An estimate with its interval, a point value without one, or the reason there is neither.
///
/// The one result type every report uses for a number that may be missing. It serialises with
/// a `status` tag so that `result.json` reads on its own:
///
/// ```json
/// {"status": "estimated", "estimate": 0.12, "se": 0.03, "ci_low": 0.06, "ci_high": 0.18,
///  "n": 6, "level": 0.95, "method": "pooled_t_over_seeds"}
/// {"status": "point", "value": 0.12, "reason": "one seed per arm: between-run variance not estimated"}
/// {"status": "unavailable", "reason": "values: need at least 2 observations, got 1"}
/// ```
///
/// ```
/// use psyche_stats::{Stat, mean_ci};
/// let s: Stat = mean_ci(&[0.2, 0.4, 0.3], 0.95).into();
/// assert!(s.estimate().is_some());
/// let none: Stat = mean_ci(&[0.2], 0.95).into();
/// assert_eq!(none.value(), None);
/// assert!(none.reason().unwrap_or("").contains("at least 2"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Stat {
    /// An estimate with its interval (and the method that built it).
    Estimated(Estimate),
    /// A point value without an interval, and why there is no interval (e.g. one observation).
    Point {
        /// The point value.
        value: f64,
        /// Why there is no interval.
        reason: String,
    },
    /// No value at all, and why.
    Unavailable {
        /// Why the statistic could not be computed.
        reason: String,
    },
}

impl Stat {
    /// A point value without an interval.
    pub fn point(value: f64, reason: impl Into<String>) -> Self {
        Stat::Point {
            value,
            reason: reason.into(),
        }
    }

    /// No value, with the reason.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Stat::Unavailable {
            reason: reason.into(),
        }
    }

    /// The estimate with its interval, if there is one.
    pub fn estimate(&self) -> Option<&Estimate> {
        match self {
            Stat::Estimated(e) => Some(e),
            _ => None,
        }
    }

    /// The point value (of an estimate or a bare point), if any.
    pub fn value(&self) -> Option<f64> {
        match self {
            Stat::Estimated(e) => Some(e.estimate),
            Stat::Point { value, .. } => Some(*value),
            Stat::Unavailable { .. } => None,
        }
    }

    /// The interval `(low, high)`, if any.
    pub fn interval(&self) -> Option<(f64, f64)> {
        self.estimate().map(Estimate::interval)
    }

    /// Why there is no interval (for [`Stat::Point`]) or no value (for
    /// [`Stat::Unavailable`]); `None` for an estimate.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Stat::Estimated(_) => None,
            Stat::Point { reason, .. } | Stat::Unavailable { reason } => Some(reason),
        }
    }

    /// Whether this is an estimate with an interval.
    pub fn is_estimated(&self) -> bool {
        matches!(self, Stat::Estimated(_))
    }

    /// The same statistic with every number scaled by `factor` (e.g. 100 for percentages);
    /// a negative factor swaps the interval's ends.
    pub fn scaled(&self, factor: f64) -> Self {
        match self {
            Stat::Estimated(e) => {
                let (a, b) = (e.ci_low * factor, e.ci_high * factor);
                Stat::Estimated(Estimate {
                    estimate: e.estimate * factor,
                    se: e.se * factor.abs(),
                    ci_low: a.min(b),
                    ci_high: a.max(b),
                    ..*e
                })
            }
            Stat::Point { value, reason } => Stat::Point {
                value: value * factor,
                reason: reason.clone(),
            },
            Stat::Unavailable { reason } => Stat::Unavailable {
                reason: reason.clone(),
            },
        }
    }

    /// `12.5% [3.1, 40.0]`, `12.5% (no interval: …)` or `n/a (…)`, for tables of rates.
    pub fn percent(&self) -> String {
        match self {
            Stat::Estimated(e) => format!(
                "{:.1}% [{:.1}, {:.1}]",
                100.0 * e.estimate,
                100.0 * e.ci_low,
                100.0 * e.ci_high
            ),
            Stat::Point { value, reason } => {
                format!("{:.1}% (no interval: {reason})", 100.0 * value)
            }
            Stat::Unavailable { reason } => format!("n/a ({reason})"),
        }
    }
}

impl From<Estimate> for Stat {
    fn from(e: Estimate) -> Self {
        Stat::Estimated(e)
    }
}

impl From<Result<Estimate, StatsError>> for Stat {
    fn from(r: Result<Estimate, StatsError>) -> Self {
        match r {
            Ok(e) => Stat::Estimated(e),
            Err(e) => Stat::Unavailable {
                reason: e.to_string(),
            },
        }
    }
}

impl fmt::Display for Stat {
    /// An estimate as [`Estimate`]'s Display; a point as `0.1200 (no interval: …)`; otherwise
    /// `n/a (…)`. The precision (`{:.2}`) is passed on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = f.precision().unwrap_or(4);
        match self {
            Stat::Estimated(e) => write!(f, "{e:.p$}"),
            Stat::Point { value, reason } => write!(f, "{value:.p$} (no interval: {reason})"),
            Stat::Unavailable { reason } => write!(f, "n/a ({reason})"),
        }
    }
}
