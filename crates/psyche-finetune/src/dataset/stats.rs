//! Statistics of a dataset: example counts, lengths in tokens and characters, roles.

use std::collections::{BTreeMap, HashMap};

use psyche_core::{Conversation, Role};
use serde::{Deserialize, Serialize};

use super::TokenEstimator;

/// Summary of one length distribution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LengthSummary {
    /// Number of values.
    pub count: u64,
    /// Sum of values.
    pub total: u64,
    /// Smallest value (0 when empty).
    pub min: u64,
    /// Largest value.
    pub max: u64,
    /// Mean (0 when empty).
    pub mean: f64,
}

impl LengthSummary {
    fn from_values(values: impl IntoIterator<Item = u64>) -> Self {
        let mut s = Self {
            min: u64::MAX,
            ..Self::default()
        };
        for v in values {
            s.count += 1;
            s.total += v;
            s.min = s.min.min(v);
            s.max = s.max.max(v);
        }
        if s.count == 0 {
            s.min = 0;
        } else {
            s.mean = s.total as f64 / s.count as f64;
        }
        s
    }
}

/// Lengths of one role's messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleStats {
    /// Characters per message.
    pub chars: LengthSummary,
    /// Estimated tokens per message (text only, no overhead).
    pub tokens: LengthSummary,
}

/// Statistics of a set of training examples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Number of examples.
    pub examples: u64,
    /// Number of messages.
    pub messages: u64,
    /// Estimated tokens per example, overheads included (`total` is what one epoch bills).
    pub example_tokens: LengthSummary,
    /// Estimated tokens of assistant turns (what the loss is computed on).
    pub assistant_tokens: u64,
    /// Per-role message lengths.
    pub per_role: BTreeMap<Role, RoleStats>,
    /// Examples that exactly repeat an earlier one.
    pub duplicates: u64,
    /// The estimator used (`"chars/4"` for the heuristic).
    pub estimator: String,
}

impl DatasetStats {
    /// Computes statistics of `examples`.
    pub fn compute(examples: &[Conversation], estimator: &dyn TokenEstimator) -> Self {
        let mut per_role_chars: BTreeMap<Role, Vec<u64>> = BTreeMap::new();
        let mut per_role_tokens: BTreeMap<Role, Vec<u64>> = BTreeMap::new();
        let mut messages = 0;
        let mut assistant_tokens = 0;
        for conv in examples {
            for m in conv.messages() {
                messages += 1;
                let t = estimator.count(&m.content);
                if m.role == Role::Assistant {
                    assistant_tokens += t;
                }
                per_role_chars
                    .entry(m.role)
                    .or_default()
                    .push(m.content.chars().count() as u64);
                per_role_tokens.entry(m.role).or_default().push(t);
            }
        }
        let per_role = per_role_chars
            .into_iter()
            .map(|(role, chars)| {
                let tokens = per_role_tokens.remove(&role).unwrap_or_default();
                (
                    role,
                    RoleStats {
                        chars: LengthSummary::from_values(chars),
                        tokens: LengthSummary::from_values(tokens),
                    },
                )
            })
            .collect();
        let mut seen = HashMap::new();
        let duplicates = examples
            .iter()
            .filter(|c| seen.insert(*c, ()).is_some())
            .count() as u64;
        Self {
            examples: examples.len() as u64,
            messages,
            example_tokens: LengthSummary::from_values(
                examples.iter().map(|c| estimator.conversation_tokens(c)),
            ),
            assistant_tokens,
            per_role,
            duplicates,
            estimator: estimator.name(),
        }
    }
}
