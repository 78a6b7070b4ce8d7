//! Token and cost accounting: [`UsageMeter`] counts what every call through it spent.
//!
//! Backends of this crate report each HTTP answer's usage to the innermost meter of the current
//! task (a task-local sink), so calls that reach `generate` indirectly — the default
//! `next_token_distribution` or `option_probabilities` of a backend — are counted too. For
//! models of other crates that do not report, `generate`'s own [`Usage`] is counted instead.
//! Cache hits report themselves as hits and cost nothing, whichever side of the meter the
//! [`Cache`](crate::Cache) sits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use psyche_core::{GenerateRequest, GenerateResponse, Model, ModelError, Usage};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default)]
struct CallSink {
    reports: Mutex<Vec<Event>>,
}

#[derive(Debug)]
enum Event {
    Http(String, Usage),
    CacheHit,
}

tokio::task_local! {
    static SINK: Arc<CallSink>;
}

/// Reports one HTTP answer's usage to the meter of the current task, if any.
pub(crate) fn report(model: &str, usage: Usage) {
    let _ = SINK.try_with(|s| s.reports.lock().push(Event::Http(model.to_owned(), usage)));
}

/// Reports a cache hit to the meter of the current task, if any.
pub(crate) fn report_cache_hit() {
    let _ = SINK.try_with(|s| s.reports.lock().push(Event::CacheHit));
}

/// Price of one model in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// Per million prompt tokens.
    pub input_per_mtok: f64,
    /// Per million completion tokens.
    pub output_per_mtok: f64,
}

/// Prices by model name; a response's model matches the longest listed name it starts with
/// (`gpt-4o-2024-08-06` matches `gpt-4o`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenPriceTable {
    /// Model name (or prefix) → price.
    pub prices: HashMap<String, Price>,
}

impl TokenPriceTable {
    /// Adds a price.
    #[must_use]
    pub fn with(
        mut self,
        model: impl Into<String>,
        input_per_mtok: f64,
        output_per_mtok: f64,
    ) -> Self {
        self.prices.insert(
            model.into(),
            Price {
                input_per_mtok,
                output_per_mtok,
            },
        );
        self
    }

    /// The price of `model`, if listed.
    pub fn price(&self, model: &str) -> Option<Price> {
        self.prices
            .iter()
            .filter(|(name, _)| model.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, p)| *p)
    }
}

/// Usage of one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelUsage {
    /// Answers received (HTTP calls that succeeded).
    pub calls: u64,
    /// Calls answered from a cache.
    pub cache_hits: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Cost in US dollars, when the model has a price.
    pub cost_usd: Option<f64>,
}

/// A snapshot of a meter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageReport {
    /// Per model, as the provider names it in answers.
    pub models: BTreeMap<String, ModelUsage>,
}

impl UsageReport {
    /// Total cost over priced models.
    pub fn total_cost_usd(&self) -> f64 {
        self.models.values().filter_map(|m| m.cost_usd).sum()
    }

    /// Total tokens over all models.
    pub fn total_tokens(&self) -> u64 {
        self.models
            .values()
            .map(|m| m.prompt_tokens + m.completion_tokens)
            .sum()
    }
}

#[derive(Debug, Default)]
struct Totals {
    models: BTreeMap<String, ModelUsage>,
    cache_hits: u64,
}

/// Counts tokens and cost of every call through it. Clones share the same totals.
#[derive(Debug, Clone)]
pub struct UsageMeter<M> {
    inner: M,
    totals: Arc<Mutex<Totals>>,
    prices: Arc<TokenPriceTable>,
}

impl<M: Model> UsageMeter<M> {
    /// A meter without prices.
    pub fn new(inner: M) -> Self {
        Self::with_prices(inner, TokenPriceTable::default())
    }

    /// A meter that also computes costs.
    pub fn with_prices(inner: M, prices: TokenPriceTable) -> Self {
        Self {
            inner,
            totals: Arc::default(),
            prices: Arc::new(prices),
        }
    }

    /// The wrapped model.
    pub fn get_ref(&self) -> &M {
        &self.inner
    }

    /// The wrapped model, mutably.
    pub fn get_mut(&mut self) -> &mut M {
        &mut self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> M {
        self.inner
    }

    /// What was spent so far.
    pub fn report(&self) -> UsageReport {
        let totals = self.totals.lock();
        let mut models = totals.models.clone();
        for (name, u) in &mut models {
            u.cost_usd = self.prices.price(name).map(|p| {
                (u.prompt_tokens as f64 * p.input_per_mtok
                    + u.completion_tokens as f64 * p.output_per_mtok)
                    / 1e6
            });
        }
        if totals.cache_hits > 0 {
            models
                .entry(self.inner.id().to_owned())
                .or_default()
                .cache_hits += totals.cache_hits;
        }
        UsageReport { models }
    }

    /// [`metered`](Self::metered) without a fallback, in the shape `forward_model_methods!`
    /// calls.
    async fn around<T, F, Fut>(&self, _method: &'static str, call: F) -> Result<T, ModelError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, ModelError>>,
    {
        self.metered(call(), |_| None).await
    }

    async fn metered<T, F>(
        &self,
        fut: F,
        fallback: impl FnOnce(&T) -> Option<(String, Usage)>,
    ) -> Result<T, ModelError>
    where
        F: std::future::Future<Output = Result<T, ModelError>>,
    {
        let sink = Arc::new(CallSink::default());
        let result = SINK.scope(sink.clone(), fut).await;
        let events = std::mem::take(&mut *sink.reports.lock());
        let mut totals = self.totals.lock();
        if events.is_empty()
            && let Some((model, usage)) = result.as_ref().ok().and_then(fallback)
        {
            let m = totals.models.entry(model).or_default();
            m.calls += 1;
            m.prompt_tokens += usage.prompt_tokens;
            m.completion_tokens += usage.completion_tokens;
        }
        for e in events {
            match e {
                Event::Http(model, usage) => {
                    let m = totals.models.entry(model).or_default();
                    m.calls += 1;
                    m.prompt_tokens += usage.prompt_tokens;
                    m.completion_tokens += usage.completion_tokens;
                }
                Event::CacheHit => totals.cache_hits += 1,
            }
        }
        drop(totals);
        result
    }
}

#[async_trait]
impl<M: Model> Model for UsageMeter<M> {
    psyche_core::forward_model_methods!(inner: id, capabilities, info, steered);
    psyche_core::forward_model_methods!(inner through around: next_token_distribution,
        loglikelihood, hidden_states, sample_answers, option_probabilities);
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        self.metered(self.inner.generate(request), |r: &GenerateResponse| {
            Some((r.model.clone(), r.usage))
        })
        .await
    }
}
