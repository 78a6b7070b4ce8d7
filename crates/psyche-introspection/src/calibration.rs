//! Calibration (Looking Inward §1.11): does the distribution of a model's hypothetical answers
//! match the distribution of its actual behaviour?
//!
//! For each item, the *object-level* distribution of a property (e.g. the first character of
//! the reply) is compared with the *hypothetical* distribution (how likely the predictor is to
//! say each value). The object distribution is exact where the backend gives the full
//! next-token distribution and the property is fixed by the first token (first character,
//! starts-with-vowel): the tokens' probabilities are grouped by the property of their text.
//! Otherwise it is estimated from `samples` answers at T = 1. The hypothetical distribution is
//! the constrained reading's distribution when recorded, else `samples` hypothetical answers
//! at T = 1. For the top-k object behaviours of each item, the pairs (object probability,
//! hypothetical probability) are binned into equal-frequency bins and the mean absolute
//! deviation between bin means (× 100) is the MAD ([`psyche_stats::calibration_curve`]).
//!
//! The hypothetical probabilities are the **raw** probability mass the predictor puts on each
//! valid answer, as the paper reads them from the logprobs, not a distribution renormalised
//! over the valid answers (which inflates every predicted probability by 1 / valid mass and
//! makes the MAD incomparable with the paper's). The mean valid mass is reported beside the
//! MAD ([`CalibrationResult::valid_mass`]). Values on both sides are in the property's
//! canonical form ([`Property::canonical`]).

use std::collections::BTreeMap;

use psyche_core::{Capability, Conversation, Model, Sample};
use psyche_judges::Property;
use psyche_stats::Calibration;
use serde::{Deserialize, Serialize};

use crate::collect::HypotheticalAnswers;
use crate::error::Result;
use crate::hypothetical::OBJECT_ID_KEY;

/// How an object-level distribution was obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DistributionMethod {
    /// Exact, from the full next-token distribution (mass of special and whitespace-only
    /// tokens left out and recorded).
    ExactFirstToken {
        /// Probability mass left out.
        dropped_mass: f64,
    },
    /// Estimated from answers sampled at T = 1.
    Sampled {
        /// Answers drawn.
        samples: u32,
        /// Of which had the property.
        usable: u32,
    },
}

/// A property's distribution for one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemDistribution {
    /// Value → probability (sums to 1 over the values seen).
    pub distribution: BTreeMap<String, f64>,
    /// How it was obtained.
    pub method: DistributionMethod,
}

fn is_special(token: &str) -> bool {
    token.trim().is_empty() || (token.starts_with("<|") && token.ends_with("|>"))
}

fn normalise(map: BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    let total: f64 = map.values().sum();
    if total <= 0.0 {
        return BTreeMap::new();
    }
    map.into_iter().map(|(k, v)| (k, v / total)).collect()
}

/// The object-level distribution of `property` for `model` answering `conversation`.
///
/// # Errors
///
/// The model's errors.
pub async fn object_distribution(
    model: &dyn Model,
    conversation: &Conversation,
    property: &Property,
    stance_target: Option<&str>,
    samples: u32,
    max_tokens: u32,
    seed: u64,
) -> Result<ItemDistribution> {
    if property.decided_by_first_token() && model.capabilities().full_distribution {
        let dist = model
            .next_token_distribution(conversation, u32::MAX)
            .await?;
        let mut map = BTreeMap::new();
        let mut dropped = 0.0;
        for t in &dist.tokens {
            let p = t.logprob.exp();
            if is_special(&t.token) {
                dropped += p;
                continue;
            }
            match property.extract_canonical(&t.token, None) {
                Some(v) => *map.entry(v).or_insert(0.0) += p,
                None => dropped += p,
            }
        }
        return Ok(ItemDistribution {
            distribution: normalise(map),
            method: DistributionMethod::ExactFirstToken {
                dropped_mass: dropped,
            },
        });
    }
    let answers = model
        .sample_answers(conversation, samples, 1.0, max_tokens, seed)
        .await?;
    let mut map = BTreeMap::new();
    let mut usable = 0;
    for a in &answers {
        if let Some(v) = property.extract_canonical(a, stance_target) {
            *map.entry(v).or_insert(0.0) += 1.0;
            usable += 1;
        }
    }
    Ok(ItemDistribution {
        distribution: normalise(map),
        method: DistributionMethod::Sampled {
            samples: answers.len() as u32,
            usable,
        },
    })
}

/// The hypothetical distribution of one item: the recorded constrained reading's **raw**
/// probability mass on each valid answer when there is one (not renormalised: see the module
/// docs), else the share of each answer among `samples` answers at T = 1 (in the property's
/// canonical form; every answer counts in the denominator, valid or not).
///
/// # Errors
///
/// The model's errors.
pub async fn hypothetical_distribution(
    model: &dyn Model,
    sample: &Sample,
    property: &Property,
    recorded_mass: Option<&BTreeMap<String, f64>>,
    samples: u32,
    max_tokens: u32,
    seed: u64,
) -> Result<BTreeMap<String, f64>> {
    if let Some(d) = recorded_mass {
        return Ok(d.clone());
    }
    let answers = model
        .sample_answers(&sample.input, samples, 1.0, max_tokens, seed)
        .await?;
    let mut map = BTreeMap::new();
    for a in answers {
        *map.entry(property.canonical(&a)).or_insert(0.0) += 1.0;
    }
    Ok(normalise(map))
}

/// Calibration of one predictor against one target model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationResult {
    /// The property.
    pub property: String,
    /// Items with both distributions.
    pub items: usize,
    /// How the object distributions were obtained (of the first item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_method: Option<DistributionMethod>,
    /// `exact` (constrained distributions) or `sampled`.
    pub hypothetical_method: String,
    /// Mean over items of the predictor's probability mass on valid answers (constrained
    /// reading; `None` when sampled): the hypothetical probabilities are raw mass, so they
    /// sum to this on average, not to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_mass: Option<f64>,
    /// (object probability, hypothetical probability) for the top-k behaviours of each item.
    pub pairs: Vec<(f64, f64)>,
    /// The binned curve and its MAD × 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<Calibration>,
    /// Why the curve could not be computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Calibration settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationOptions {
    /// Answers drawn at T = 1 where a distribution is not exact (the paper: 20).
    pub samples: u32,
    /// Behaviours per item (the paper: the top 3).
    pub top_k: usize,
    /// Equal-frequency bins (the paper: 10).
    pub bins: usize,
    /// Token budget of sampled answers.
    pub max_tokens: u32,
    /// Seed of the sampled answers.
    pub seed: u64,
}

impl Default for CalibrationOptions {
    fn default() -> Self {
        Self {
            samples: 20,
            top_k: 3,
            bins: 10,
            max_tokens: 8,
            seed: 0,
        }
    }
}

/// Calibration of `predictor`'s hypothetical answers (`hyp_samples` about `property`, with
/// their recorded `answers`) against `target`'s object-level distributions on the quoted
/// object prompts (`objects`).
///
/// # Errors
///
/// The models' errors.
pub async fn calibrate(
    predictor: &dyn Model,
    target: &dyn Model,
    objects: &[Sample],
    hyp_samples: &[Sample],
    answers: Option<&HypotheticalAnswers>,
    property: &Property,
    options: &CalibrationOptions,
) -> Result<CalibrationResult> {
    let name = property.name();
    let mut pairs = Vec::new();
    let mut items = 0;
    let mut object_method = None;
    let mut exact_hyp = true;
    let mut valid_masses = Vec::new();
    for h in hyp_samples
        .iter()
        .filter(|h| h.meta_str("property") == Some(name.as_str()))
    {
        let Some(o) = objects
            .iter()
            .find(|o| Some(o.id.as_str()) == h.meta_str(OBJECT_ID_KEY))
        else {
            continue;
        };
        let max_tokens = o
            .metadata
            .get("max_tokens")
            .and_then(serde_json::Value::as_u64)
            .map_or(options.max_tokens, |m| m as u32)
            .min(property.tokens_needed());
        let seed = psyche_core::derive_seed(options.seed, &h.id);
        let od = object_distribution(
            target,
            &o.input,
            property,
            o.meta_str("stance_target"),
            options.samples,
            max_tokens,
            seed,
        )
        .await?;
        if od.distribution.is_empty() {
            continue;
        }
        let recorded = answers
            .and_then(|a| a.answers.get(&h.id))
            .and_then(|r| r.raw_mass());
        exact_hyp &= recorded.is_some();
        if let Some(m) = &recorded {
            valid_masses.push(m.values().sum::<f64>());
        }
        let hd = hypothetical_distribution(
            predictor,
            h,
            property,
            recorded.as_ref(),
            options.samples,
            options.max_tokens,
            seed,
        )
        .await?;
        object_method.get_or_insert(od.method.clone());
        pairs.extend(psyche_stats::calibration_pairs(
            &od.distribution,
            &hd,
            options.top_k,
        ));
        items += 1;
    }
    let (curve, error) = match psyche_stats::calibration_curve(&pairs, options.bins) {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(CalibrationResult {
        property: name,
        items,
        object_method,
        hypothetical_method: if exact_hyp && items > 0 {
            "exact (constrained distribution)".into()
        } else {
            format!("sampled at T = 1 ({} answers)", options.samples)
        },
        valid_mass: (!valid_masses.is_empty())
            .then(|| valid_masses.iter().sum::<f64>() / valid_masses.len() as f64),
        pairs,
        curve,
        error,
    })
}

/// Whether a model can give exact object distributions for `property`.
pub fn exact_available(model: &dyn Model, property: &Property) -> bool {
    property.decided_by_first_token()
        && model.capabilities().has(Capability::Logprobs)
        && model.capabilities().full_distribution
}
