//! Reading a number from a judge model's answer distribution: one token's top-k
//! alternatives, or complete numbers over a digit tree of continuation scores.

use std::collections::BTreeSet;

use psyche_core::{Capability, Conversation, Model, ModelError, TopLogprob};
use serde::{Deserialize, Serialize};

use super::MAX_COMPLETE_RANGE;

/// An integer read from a token: surrounding whitespace is ignored (`" 85"` is 85), a sign is
/// accepted; anything else (`"8.5"`, `"85%"`, `"CODE"`) is not a number.
pub fn parse_number_token(token: &str) -> Option<i64> {
    token.trim().parse::<i64>().ok()
}

/// The aggregate of one top-k distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumberAggregate {
    /// `Σ n·p / Σ p` over in-range integer tokens, or `None` when their mass is below the
    /// threshold.
    pub score: Option<f64>,
    /// `Σ p` over in-range integer tokens.
    pub numeric_mass: f64,
    /// `Σ p` over all listed tokens.
    pub listed_mass: f64,
    /// The most likely token that is not an in-range integer, with its probability.
    pub top_other: Option<(String, f64)>,
}

impl NumberAggregate {
    /// Why the score is `None`, or `None` when there is a score.
    pub fn reason(&self, min_mass: f64) -> Option<String> {
        if self.score.is_some() {
            return None;
        }
        let mut r = format!(
            "numeric probability mass {:.3} is below the threshold {min_mass}",
            self.numeric_mass
        );
        if let Some((tok, p)) = &self.top_other {
            r.push_str(&format!(
                " (most likely non-number token {tok:?} with p = {p:.3})"
            ));
        }
        Some(r)
    }
}

/// Aggregates a top-k distribution into a probability-weighted number (see the module docs).
/// Tokens repeated after trimming (`"85"` and `" 85"`) both count.
pub fn aggregate_number_logprobs(
    tokens: &[TopLogprob],
    min: i64,
    max: i64,
    min_mass: f64,
) -> NumberAggregate {
    let mut numeric_mass = 0.0;
    let mut weighted = 0.0;
    let mut listed_mass = 0.0;
    let mut top_other: Option<(String, f64)> = None;
    for t in tokens {
        let p = t.logprob.exp();
        if !p.is_finite() {
            continue;
        }
        listed_mass += p;
        match parse_number_token(&t.token) {
            Some(n) if (min..=max).contains(&n) => {
                numeric_mass += p;
                weighted += n as f64 * p;
            }
            _ => {
                if top_other.as_ref().is_none_or(|(_, q)| p > *q) {
                    top_other = Some((t.token.clone(), p));
                }
            }
        }
    }
    let score = (numeric_mass > 0.0 && numeric_mass >= min_mass).then(|| weighted / numeric_mass);
    NumberAggregate {
        score,
        numeric_mass,
        listed_mass,
        top_other,
    }
}

/// Whether `model`'s tokenizer writes `"85"` as more tokens than `"7"`, judged from
/// continuation log-likelihoods. `Ok(None)` when the backend cannot tell (no
/// log-likelihood support).
///
/// # Errors
///
/// Errors of the log-likelihood calls other than [`ModelError::Unsupported`].
pub async fn probe_number_tokenization(model: &dyn Model) -> Result<Option<bool>, ModelError> {
    if !model.capabilities().has(Capability::LogLikelihood) {
        return Ok(None);
    }
    let ctx = Conversation::user("Give a number.");
    let one = model.loglikelihood(&ctx, "7").await;
    let two = model.loglikelihood(&ctx, "85").await;
    match (one, two) {
        (Ok(a), Ok(b)) => Ok(Some(b.token_logprobs.len() > a.token_logprobs.len())),
        (Err(ModelError::Unsupported { .. }), _) | (_, Err(ModelError::Unsupported { .. })) => {
            Ok(None)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Complete-number probabilities from the digit tree (see the [module docs](super)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompleteNumbers {
    /// `(n, P(n))` for every in-range number with a resolved probability above 0, ascending.
    pub probabilities: Vec<(i64, f64)>,
    /// `Σ P(n)`: the probability that the answer is a valid in-range number.
    pub mass: f64,
    /// Probability of prefixes that were not extended (below `prefix_min_prob`), left out.
    pub unresolved_mass: f64,
    /// Continuation scores computed (one per extended prefix and child digit).
    pub prefix_calls: usize,
}

impl CompleteNumbers {
    /// `Σ n·P(n) / Σ P(n)`, or `None` when the mass is 0 or below `min_mass`.
    pub fn score(&self, min_mass: f64) -> Option<f64> {
        (self.mass > 0.0 && self.mass >= min_mass).then(|| {
            self.probabilities
                .iter()
                .map(|(n, p)| *n as f64 * p)
                .sum::<f64>()
                / self.mass
        })
    }
}

/// Probabilities of the complete numbers `min..=max` (`0 <= min`) as the judge's answer, by
/// the digit tree of the [module docs](super): one-digit prefixes from `first` (the first
/// answer token's distribution; tokens are matched after leading whitespace), longer prefixes
/// from [`Model::loglikelihood`] of the digit string after `context`. Prefixes below
/// `prefix_min_prob` are not extended.
///
/// # Errors
///
/// [`ModelError::InvalidRequest`] for a negative `min`, `min > max` or a range wider than
/// [`MAX_COMPLETE_RANGE`]; errors of the log-likelihood calls (e.g.
/// [`ModelError::Unsupported`] for backends that do not score continuations).
pub async fn complete_number_probabilities(
    model: &dyn Model,
    context: &Conversation,
    first: &[TopLogprob],
    min: i64,
    max: i64,
    prefix_min_prob: f64,
) -> Result<CompleteNumbers, ModelError> {
    if min < 0 || min > max || max - min >= MAX_COMPLETE_RANGE {
        return Err(ModelError::InvalidRequest(format!(
            "complete-number probabilities need 0 <= min <= max and at most \
             {MAX_COMPLETE_RANGE} numbers (got {min}..={max})"
        )));
    }
    let numbers: BTreeSet<String> = (min..=max).map(|n| n.to_string()).collect();
    let prefixes: BTreeSet<&str> = numbers
        .iter()
        .flat_map(|n| (1..=n.len()).map(move |k| &n[..k]))
        .collect();
    let children = |s: &str| -> Vec<String> {
        ('0'..='9')
            .map(|e| format!("{s}{e}"))
            .filter(|c| prefixes.contains(c.as_str()))
            .collect()
    };
    let mut level: Vec<(String, f64)> = ('0'..='9')
        .map(String::from)
        .filter(|d| prefixes.contains(d.as_str()))
        .map(|d| {
            let p: f64 = first
                .iter()
                .filter(|t| t.token.trim_start() == d)
                .map(|t| t.logprob.exp())
                .filter(|p| p.is_finite())
                .sum();
            (d, p)
        })
        .collect();
    let mut out = CompleteNumbers {
        probabilities: Vec::new(),
        mass: 0.0,
        unresolved_mass: 0.0,
        prefix_calls: 0,
    };
    let mut found: Vec<(i64, f64)> = Vec::new();
    while !level.is_empty() {
        // Parents to extend, with their children's index range in `queue`.
        let mut extend: Vec<(String, f64, std::ops::Range<usize>)> = Vec::new();
        let mut queue: Vec<String> = Vec::new();
        for (s, p) in level.drain(..) {
            if p <= 0.0 {
                continue;
            }
            let kids = children(&s);
            if kids.is_empty() {
                if numbers.contains(&s) {
                    found.extend(s.parse::<i64>().ok().map(|n| (n, p)));
                }
            } else if p < prefix_min_prob {
                out.unresolved_mass += p;
            } else {
                let start = queue.len();
                queue.extend(kids);
                extend.push((s, p, start..queue.len()));
            }
        }
        let scored = futures::future::try_join_all(
            queue
                .iter()
                .map(|c| async move { model.loglikelihood(context, c).await }),
        )
        .await?;
        out.prefix_calls += queue.len();
        let probs: Vec<f64> = scored
            .iter()
            .map(|ll| {
                let p = ll.logprob.exp();
                if p.is_finite() { p } else { 0.0 }
            })
            .collect();
        for (s, p, range) in extend {
            let continued: f64 = probs[range.clone()].iter().sum();
            let own = (p - continued).max(0.0);
            if own > 0.0 && numbers.contains(&s) {
                found.extend(s.parse::<i64>().ok().map(|n| (n, own)));
            }
            level.extend(range.map(|i| (queue[i].clone(), probs[i])));
        }
    }
    found.sort_by_key(|(n, _)| *n);
    out.mass = found.iter().map(|(_, p)| p).sum();
    out.probabilities = found;
    Ok(out)
}

/// Probability that the answer's first token (after leading whitespace) is a single digit that
/// begins some number in `min..=max`: an upper bound on the probability of any complete number
/// of the range.
pub(super) fn leading_digit_mass(first: &[TopLogprob], min: i64, max: i64) -> f64 {
    let leading: BTreeSet<char> = (min.max(0)..=max)
        .take(MAX_COMPLETE_RANGE as usize)
        .filter_map(|n| n.to_string().chars().next())
        .collect();
    first
        .iter()
        .filter(|t| {
            let mut c = t.token.trim_start().chars();
            matches!((c.next(), c.next()), (Some(d), None) if leading.contains(&d))
        })
        .map(|t| t.logprob.exp())
        .filter(|p| p.is_finite())
        .sum()
}

pub(super) fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}
