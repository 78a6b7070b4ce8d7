//! [`StatsError`]: the one error type of this crate.

/// Why a statistic could not be computed.
///
/// Every variant names the argument at fault (`field`) so that a caller building a report can
/// say which column or parameter was wrong. Degenerate-but-valid inputs (all values equal, a
/// proportion of 0 or 1) are *not* errors: they return documented finite results instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// Fewer observations than the statistic needs (e.g. a t-interval needs n ≥ 2).
    #[error("{field}: need at least {needed} observations, got {got}")]
    TooFew {
        /// The argument or quantity that is too small (`"values"`, `"clusters"`...).
        field: &'static str,
        /// The minimum required.
        needed: usize,
        /// What was supplied.
        got: usize,
    },
    /// Two inputs that must be aligned have different lengths.
    #[error("{field}: length mismatch, expected {expected}, got {got}")]
    LengthMismatch {
        /// The argument whose length is wrong.
        field: &'static str,
        /// The length it must have.
        expected: usize,
        /// The length it has.
        got: usize,
    },
    /// A value is NaN or infinite.
    #[error("{field}[{index}]: value {value} is not finite")]
    NonFinite {
        /// The argument holding the value.
        field: &'static str,
        /// Its position.
        index: usize,
        /// The value itself.
        value: f64,
    },
    /// A parameter is outside its valid range.
    #[error("{field}: {value} is out of range ({expected})")]
    OutOfRange {
        /// The parameter.
        field: &'static str,
        /// The value given.
        value: f64,
        /// What is allowed, in words (e.g. `"0 < level < 1"`).
        expected: &'static str,
    },
    /// The input is structurally invalid in a way the other variants do not cover.
    #[error("{field}: {reason}")]
    Invalid {
        /// The argument at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

pub(crate) fn check_level(level: f64) -> Result<(), StatsError> {
    if level.is_finite() && level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(StatsError::OutOfRange {
            field: "level",
            value: level,
            expected: "0 < level < 1",
        })
    }
}

pub(crate) fn check_finite(field: &'static str, values: &[f64]) -> Result<(), StatsError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(StatsError::NonFinite {
            field,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_min_len(
    field: &'static str,
    got: usize,
    needed: usize,
) -> Result<(), StatsError> {
    if got < needed {
        Err(StatsError::TooFew { field, needed, got })
    } else {
        Ok(())
    }
}

pub(crate) fn check_same_len(
    field: &'static str,
    expected: usize,
    got: usize,
) -> Result<(), StatsError> {
    if expected == got {
        Ok(())
    } else {
        Err(StatsError::LengthMismatch {
            field,
            expected,
            got,
        })
    }
}

pub(crate) fn check_probability(field: &'static str, value: f64) -> Result<(), StatsError> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(StatsError::OutOfRange {
            field,
            value,
            expected: "0 <= p <= 1",
        })
    }
}
