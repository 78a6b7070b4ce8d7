//! Sampling a token from logits (greedy, temperature, nucleus) and the token's log-probability
//! with its top alternatives.

use psyche_core::{TokenLogprob, TopLogprob};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Index of the largest value (the lowest index among ties).
pub(crate) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

pub(crate) fn log_sum_exp(row: &[f32]) -> f64 {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
    m + s.ln()
}

/// Draws a token: greedy at temperature 0, else from `softmax(logits / T)` restricted to the
/// smallest set of tokens whose mass reaches `top_p`.
pub(crate) fn sample(logits: &[f32], temperature: f32, top_p: f32, rng: &mut ChaCha8Rng) -> u32 {
    if temperature <= 0.0 {
        return argmax(logits) as u32;
    }
    let t = temperature as f64;
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut probs: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u32, ((l as f64 - m) / t).exp()))
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    if top_p < 1.0 {
        probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut cum = 0.0;
        let mut keep = probs.len();
        for (k, p) in probs.iter().enumerate() {
            cum += p.1 / total;
            if cum >= top_p as f64 {
                keep = k + 1;
                break;
            }
        }
        probs.truncate(keep);
    }
    let mass: f64 = probs.iter().map(|p| p.1).sum();
    let mut r = rng.random::<f64>() * mass;
    for &(id, p) in &probs {
        r -= p;
        if r <= 0.0 {
            return id;
        }
    }
    probs.last().map_or(0, |p| p.0)
}

pub(crate) fn token_logprob(row: &[f32], id: u32, top: usize, texts: &[String]) -> TokenLogprob {
    let lse = log_sum_exp(row);
    let text = |i: usize| texts.get(i).cloned().unwrap_or_default();
    let mut top_logprobs = Vec::new();
    if top > 0 {
        let mut idx: Vec<usize> = (0..row.len()).collect();
        let k = top.min(row.len());
        idx.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]));
        idx.truncate(k);
        idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        top_logprobs = idx
            .into_iter()
            .map(|i| TopLogprob::new(text(i), row[i] as f64 - lse))
            .collect();
    }
    TokenLogprob {
        token: text(id as usize),
        logprob: row
            .get(id as usize)
            .map_or(f64::NEG_INFINITY, |&v| v as f64 - lse),
        bytes: None,
        top_logprobs,
    }
}
