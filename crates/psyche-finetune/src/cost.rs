//! Cost estimates for paid fine-tuning jobs, and the explicit confirmation they need.
//!
//! Estimate = estimated training tokens of the data (see
//! [`dataset`](crate::dataset#token-estimates)) × epochs × price per token × number of jobs.
//! Providers bill every token of every example once per epoch; the estimate uses the same
//! tokenizer heuristic as validation unless a real tokenizer is supplied, so treat it as ±20%.
//!
//! [`TrainingPriceTable::openai_defaults`] holds list prices (USD per million training tokens) as
//! published by OpenAI in 2025; prices change, so pass your own table for real budgets.
//!
//! ```
//! use psyche_core::{ChatMessage, Conversation, FineTuneConfig};
//! use psyche_finetune::cost::{CostGuard, TrainingPriceTable, estimate};
//! use psyche_finetune::dataset::CharsPerToken;
//! let data = vec![Conversation::user("2+2?").with(ChatMessage::assistant("4"))];
//! let mut cfg = FineTuneConfig::new("gpt-4o-2024-08-06", 0);
//! cfg.epochs = Some(3);
//! let est = estimate(&TrainingPriceTable::openai_defaults(), &data, &cfg, &CharsPerToken::default(), 5)?;
//! assert_eq!(est.billed_tokens, est.tokens_per_epoch * 3 * 5);
//! assert!(CostGuard::new(TrainingPriceTable::openai_defaults()).check(&est).is_err()); // not confirmed
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use psyche_core::{Conversation, FineTuneConfig};
use serde::{Deserialize, Serialize};

use crate::dataset::TokenEstimator;
use crate::error::{Result, TrainingError};

/// Training prices in US dollars per million tokens, matched by the longest model-name prefix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingPriceTable {
    /// Model-name prefix → USD per million training tokens.
    pub usd_per_million: BTreeMap<String, f64>,
}

impl TrainingPriceTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// OpenAI's published training prices (2025) for the fine-tunable chat models.
    pub fn openai_defaults() -> Self {
        Self::new()
            .with("gpt-4o", 25.0)
            .with("gpt-4o-mini", 3.0)
            .with("gpt-4.1", 25.0)
            .with("gpt-4.1-mini", 5.0)
            .with("gpt-4.1-nano", 1.5)
            .with("gpt-3.5-turbo", 8.0)
    }

    /// Adds or replaces a price (builder style).
    #[must_use]
    pub fn with(mut self, prefix: impl Into<String>, usd_per_million: f64) -> Self {
        self.usd_per_million.insert(prefix.into(), usd_per_million);
        self
    }

    /// The price for `model`: the entry with the longest prefix of the name (`gpt-4o-mini-...`
    /// matches `gpt-4o-mini`, not `gpt-4o`). Fine-tuned names (`ft:gpt-4o-...:org::id`) are
    /// priced as their base.
    pub fn price_for(&self, model: &str) -> Option<f64> {
        let model = model.strip_prefix("ft:").unwrap_or(model);
        self.usd_per_million
            .iter()
            .filter(|(prefix, _)| model.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, price)| *price)
    }
}

/// What a set of jobs is expected to cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    /// The base model priced.
    pub model: String,
    /// Estimated tokens of one pass over the data.
    pub tokens_per_epoch: u64,
    /// Epochs per job (for "auto", [`auto_epochs`] of the data size).
    pub epochs: u32,
    /// Number of jobs.
    pub jobs: usize,
    /// Billed tokens over all jobs: `tokens_per_epoch × epochs × jobs`.
    pub billed_tokens: u64,
    /// The price used (USD per million tokens).
    pub usd_per_million: f64,
    /// Estimated total in US dollars.
    pub usd: f64,
    /// The token estimator used.
    pub estimator: String,
}

/// The epochs OpenAI's "auto" is expected to choose for `n_examples` training examples, for
/// cost estimates: 3, raised so that at least 100 examples are seen (at most 25 epochs) and
/// lowered so that at most 25,000 are (at least 1), the rule OpenAI's fine-tuning data
/// preparation guide states. The provider's choice is authoritative (the job reports it).
///
/// ```
/// use psyche_finetune::cost::auto_epochs;
/// assert_eq!((auto_epochs(10), auto_epochs(100), auto_epochs(20_000)), (10, 3, 1));
/// ```
pub fn auto_epochs(n_examples: usize) -> u32 {
    const TARGET: usize = 3;
    const MIN_SEEN: usize = 100;
    const MAX_SEEN: usize = 25_000;
    let n = n_examples.max(1);
    let epochs = if n * TARGET < MIN_SEEN {
        MIN_SEEN.div_ceil(n).min(25)
    } else if n * TARGET > MAX_SEEN {
        (MAX_SEEN / n).max(1)
    } else {
        TARGET
    };
    epochs as u32
}

/// Estimates the cost of `jobs` fine-tunes of `data` with `config`.
///
/// # Errors
///
/// [`TrainingError::UnknownPrice`] when the table has no entry for `config.base_model`.
pub fn estimate(
    prices: &TrainingPriceTable,
    data: &[Conversation],
    config: &FineTuneConfig,
    estimator: &dyn TokenEstimator,
    jobs: usize,
) -> Result<CostEstimate> {
    let usd_per_million =
        prices
            .price_for(&config.base_model)
            .ok_or_else(|| TrainingError::UnknownPrice {
                model: config.base_model.clone(),
            })?;
    let tokens_per_epoch: u64 = data.iter().map(|c| estimator.conversation_tokens(c)).sum();
    let epochs = config.epochs.unwrap_or_else(|| auto_epochs(data.len()));
    let billed_tokens = tokens_per_epoch * u64::from(epochs) * jobs as u64;
    Ok(CostEstimate {
        model: config.base_model.clone(),
        tokens_per_epoch,
        epochs,
        jobs,
        billed_tokens,
        usd_per_million,
        usd: billed_tokens as f64 * usd_per_million / 1e6,
        estimator: estimator.name(),
    })
}

/// Refuses to launch paid jobs unless the caller has confirmed, and optionally caps the total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostGuard {
    /// Prices used for estimates.
    pub prices: TrainingPriceTable,
    /// The explicit confirmation: `false` (the default) refuses every paid launch.
    pub confirmed: bool,
    /// Refuse when an estimate exceeds this many dollars, even when confirmed.
    pub max_usd: Option<f64>,
}

impl CostGuard {
    /// An unconfirmed guard with no budget cap.
    pub fn new(prices: TrainingPriceTable) -> Self {
        Self {
            prices,
            confirmed: false,
            max_usd: None,
        }
    }

    /// Sets the confirmation flag.
    #[must_use]
    pub fn confirmed(mut self, yes: bool) -> Self {
        self.confirmed = yes;
        self
    }

    /// Caps the estimated total.
    #[must_use]
    pub fn max_usd(mut self, usd: f64) -> Self {
        self.max_usd = Some(usd);
        self
    }

    /// Logs the estimate and decides.
    ///
    /// # Errors
    ///
    /// [`TrainingError::OverBudget`] above the cap; [`TrainingError::ConfirmationRequired`] when not confirmed.
    pub fn check(&self, estimate: &CostEstimate) -> Result<()> {
        tracing::info!(
            model = %estimate.model,
            jobs = estimate.jobs,
            billed_tokens = estimate.billed_tokens,
            usd = format!("{:.2}", estimate.usd),
            "fine-tuning cost estimate"
        );
        if let Some(cap) = self.max_usd.filter(|cap| estimate.usd > *cap) {
            return Err(TrainingError::OverBudget {
                estimated_usd: estimate.usd,
                budget_usd: cap,
            });
        }
        if !self.confirmed {
            return Err(TrainingError::ConfirmationRequired {
                estimated_usd: estimate.usd,
                tokens: estimate.billed_tokens,
                jobs: estimate.jobs,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::CharsPerToken;
    use psyche_core::ChatMessage;

    #[test]
    fn longest_prefix_wins_and_ft_names_price_as_base() {
        let t = TrainingPriceTable::openai_defaults();
        assert_eq!(t.price_for("gpt-4o-2024-08-06"), Some(25.0));
        assert_eq!(t.price_for("gpt-4o-mini-2024-07-18"), Some(3.0));
        assert_eq!(t.price_for("ft:gpt-4o-mini-2024-07-18:org::abc"), Some(3.0));
        assert_eq!(t.price_for("llama-3"), None);
    }

    #[test]
    fn estimate_is_tokens_times_epochs_times_price() {
        // "abcdefgh" = 2 tokens + 3 overhead; "abcd" = 1 + 3; +3 per example = 12 tokens.
        let data = vec![Conversation::user("abcdefgh").with(ChatMessage::assistant("abcd")); 1000];
        let mut cfg = FineTuneConfig::new("gpt-4o-2024-08-06", 0);
        cfg.epochs = Some(2);
        let est = estimate(
            &TrainingPriceTable::openai_defaults(),
            &data,
            &cfg,
            &CharsPerToken::default(),
            3,
        )
        .unwrap();
        assert_eq!(est.tokens_per_epoch, 12_000);
        assert_eq!(est.billed_tokens, 72_000);
        assert!((est.usd - 72_000.0 * 25.0 / 1e6).abs() < 1e-9);
        let guard = CostGuard::new(TrainingPriceTable::openai_defaults());
        assert!(matches!(
            guard.check(&est),
            Err(TrainingError::ConfirmationRequired { jobs: 3, .. })
        ));
        assert!(guard.clone().confirmed(true).check(&est).is_ok());
        assert!(matches!(
            guard.confirmed(true).max_usd(1.0).check(&est),
            Err(TrainingError::OverBudget { .. })
        ));
        cfg.base_model = "my-own-model".into();
        assert!(matches!(
            estimate(
                &TrainingPriceTable::new(),
                &data,
                &cfg,
                &CharsPerToken::default(),
                1
            ),
            Err(TrainingError::UnknownPrice { .. })
        ));
    }
}
