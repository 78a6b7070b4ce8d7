//! The seeded, parallel resampling engine shared by bootstraps, permutation tests and the
//! simulator.
//!
//! Work is cut into fixed chunks of [`CHUNK`] replicates. Chunk `c` draws from its own
//! `ChaCha8Rng` seeded with the user's seed on stream `c` (`set_stream`), so the replicates —
//! and every interval computed from them — are identical whatever the number of rayon threads
//! and whatever order the chunks run in.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::StatsError;

/// Replicates per chunk (the unit of parallel work and of seeding).
pub(crate) const CHUNK: usize = 32;

/// The RNG of chunk `chunk` under `seed`.
pub(crate) fn chunk_rng(seed: u64, chunk: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(chunk);
    rng
}

/// Runs `count` replicates of `f` in parallel, deterministically from `seed`.
///
/// `init` builds per-chunk scratch state (e.g. a resample buffer) so that replicates do not
/// allocate.
pub(crate) fn replicate<S, I, F>(count: usize, seed: u64, init: I, f: F) -> Vec<f64>
where
    I: Fn() -> S + Sync,
    F: Fn(&mut ChaCha8Rng, &mut S) -> f64 + Sync,
{
    let chunks = count.div_ceil(CHUNK);
    let parts: Vec<Vec<f64>> = (0..chunks)
        .into_par_iter()
        .map(|c| {
            let mut rng = chunk_rng(seed, c as u64);
            let mut state = init();
            let len = CHUNK.min(count - c * CHUNK);
            (0..len).map(|_| f(&mut rng, &mut state)).collect()
        })
        .collect();
    parts.concat()
}

/// Unbiased uniform draws from `0..n` (Lemire's multiply-and-reject on 32-bit words).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexSampler {
    n: u64,
    threshold: u32,
}

impl IndexSampler {
    pub(crate) fn new(n: usize) -> Result<Self, StatsError> {
        if n == 0 || n > u32::MAX as usize {
            return Err(StatsError::Invalid {
                field: "values",
                reason: format!("cannot resample from {n} items (must be 1..=2^32-1)"),
            });
        }
        let n32 = n as u32;
        Ok(Self {
            n: n as u64,
            threshold: n32.wrapping_neg() % n32,
        })
    }

    /// Maps one uniform 32-bit word to an index, or `None` when the word falls in the
    /// rejection zone (probability n/2³², then draw again with [`sample`](Self::sample)).
    #[inline]
    pub(crate) fn map_word(&self, word: u32) -> Option<usize> {
        let m = u64::from(word) * self.n;
        ((m as u32) >= self.threshold).then_some((m >> 32) as usize)
    }

    #[inline]
    pub(crate) fn sample<R: RngCore>(&self, rng: &mut R) -> usize {
        loop {
            let m = u64::from(rng.next_u32()) * self.n;
            if (m as u32) >= self.threshold {
                return (m >> 32) as usize;
            }
        }
    }
}

/// The `p`-quantile of sorted data with linear interpolation between order statistics
/// (NumPy's default `"linear"` method: position `(len − 1)·p`).
pub(crate) fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = h - lo as f64;
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}
