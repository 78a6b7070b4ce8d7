//! The 2×2 contingency test used to check a trigger–behaviour association (and its absence in
//! decorrelated controls): Pearson's χ² with one degree of freedom and the φ coefficient.
//! (psyche-stats has no contingency test; this one is a candidate for it.)

use serde::{Deserialize, Serialize};

/// Counts of a 2×2 table of two yes/no variables X and Y.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contingency2x2 {
    /// X and Y.
    pub both: u64,
    /// X, not Y.
    pub x_only: u64,
    /// Y, not X.
    pub y_only: u64,
    /// Neither.
    pub neither: u64,
}

/// The test's result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Association {
    /// Pearson's χ² statistic (no continuity correction); 0 when a margin is empty.
    pub chi_square: f64,
    /// Two-sided p-value of χ² with 1 degree of freedom.
    pub p_value: f64,
    /// φ = (ad − bc) / √(row and column margins), in `[-1, 1]`; 0 when a margin is empty.
    pub phi: f64,
    /// P(Y | X).
    pub rate_given_x: f64,
    /// P(Y | not X).
    pub rate_given_not_x: f64,
}

impl Contingency2x2 {
    /// Counts the pairs `(x, y)`.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (bool, bool)>) -> Self {
        let mut t = Self::default();
        for (x, y) in pairs {
            match (x, y) {
                (true, true) => t.both += 1,
                (true, false) => t.x_only += 1,
                (false, true) => t.y_only += 1,
                (false, false) => t.neither += 1,
            }
        }
        t
    }

    /// The number of pairs.
    pub fn total(&self) -> u64 {
        self.both + self.x_only + self.y_only + self.neither
    }

    /// χ², its p-value and φ.
    pub fn test(&self) -> Association {
        let (a, b, c, d) = (
            self.both as f64,
            self.x_only as f64,
            self.y_only as f64,
            self.neither as f64,
        );
        let n = a + b + c + d;
        let margins = (a + b) * (c + d) * (a + c) * (b + d);
        let rate = |num: f64, den: f64| if den > 0.0 { num / den } else { 0.0 };
        let (phi, chi_square) = if margins > 0.0 {
            let phi = (a * d - b * c) / margins.sqrt();
            (phi, n * phi * phi)
        } else {
            (0.0, 0.0)
        };
        let p_value = (2.0 * psyche_stats::normal_sf(chi_square.sqrt())).min(1.0);
        Association {
            chi_square,
            p_value,
            phi,
            rate_given_x: rate(a, a + b),
            rate_given_not_x: rate(c, c + d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi_square_matches_a_hand_computation() {
        // a=20 b=10 c=5 d=15, n=50: χ² = 50(300−50)² / (30·20·25·25) = 8.333...
        let t = Contingency2x2 {
            both: 20,
            x_only: 10,
            y_only: 5,
            neither: 15,
        };
        let r = t.test();
        assert!((r.chi_square - 25.0 / 3.0).abs() < 1e-9, "{r:?}");
        // SciPy: chi2.sf(8.3333, 1) = 0.003892
        assert!((r.p_value - 0.003892).abs() < 1e-5, "{r:?}");
        let independent = Contingency2x2 {
            both: 2,
            x_only: 8,
            y_only: 18,
            neither: 72,
        };
        let r = independent.test();
        assert_eq!((r.chi_square, r.phi), (0.0, 0.0));
        assert_eq!(r.p_value, 1.0);
    }
}
