//! Concurrency limits: a fixed cap, or an adaptive AIMD limit that finds the provider's rate
//! limit by itself.
//!
//! A call takes a permit before reaching the inner model and holds it until the call returns.
//! One [`Limiter`] can be shared by several wrappers (e.g. every model behind one API key).
//!
//! Adaptive mode (additive increase, multiplicative decrease):
//! - slow start: each success adds 1 to the limit (doubling per round trip) until the first
//!   429 or `max`;
//! - steady state: each success adds `1 / limit` (about +1 per round trip);
//! - a 429 multiplies the limit by `decrease_factor` (default 0.8, not below `min`), at most
//!   once per `cooldown` so a burst of 429s from one overload counts once;
//! - other errors (5xx, timeouts) leave the limit unchanged.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use psyche_core::{GenerateRequest, GenerateResponse, Model, ModelError};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::BackendError;

/// Settings of an adaptive limit.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveConfig {
    /// Lowest limit.
    pub min: usize,
    /// Starting limit.
    pub initial: usize,
    /// Highest limit.
    pub max: usize,
    /// Factor applied on a rate-limit answer, in (0, 1).
    pub decrease_factor: f64,
    /// Minimum time between two decreases.
    pub cooldown: Duration,
}

impl Default for AdaptiveConfig {
    /// min 4, start 16, max 512, ×0.8, 5 s cooldown.
    fn default() -> Self {
        Self {
            min: 4,
            initial: 16,
            max: 512,
            decrease_factor: 0.8,
            cooldown: Duration::from_secs(5),
        }
    }
}

/// Why the limit changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitChange {
    /// Growth before the first 429.
    SlowStart,
    /// Additive growth after it.
    SteadyStateUp,
    /// Decrease after a 429.
    RateLimit,
}

#[derive(Debug)]
struct AdaptiveState {
    config: AdaptiveConfig,
    limit: f64,
    /// Permits handed to the semaphore (including ones owed back as debt).
    applied: usize,
    /// Permits to forget as they come back.
    debt: usize,
    slow_start: bool,
    last_decrease: Option<Instant>,
    history: Vec<(LimitChange, usize)>,
}

/// A shared concurrency limit (fixed or adaptive).
#[derive(Debug)]
pub struct Limiter {
    semaphore: Arc<Semaphore>,
    adaptive: Option<Mutex<AdaptiveState>>,
    fixed: usize,
}

impl Limiter {
    /// A fixed limit of `limit` concurrent calls.
    ///
    /// # Errors
    ///
    /// [`BackendError::Config`] for a zero limit.
    pub fn fixed(limit: usize) -> Result<Arc<Self>, BackendError> {
        if limit == 0 {
            return Err(BackendError::config(
                "concurrency.limit",
                "must be at least 1",
            ));
        }
        Ok(Arc::new(Self {
            semaphore: Arc::new(Semaphore::new(limit)),
            adaptive: None,
            fixed: limit,
        }))
    }

    /// An adaptive limit.
    ///
    /// # Errors
    ///
    /// [`BackendError::Config`] unless `1 ≤ min ≤ initial ≤ max` and `0 < decrease_factor < 1`.
    pub fn adaptive(config: AdaptiveConfig) -> Result<Arc<Self>, BackendError> {
        if config.min == 0 || config.min > config.initial || config.initial > config.max {
            return Err(BackendError::config(
                "concurrency.adaptive",
                "need 1 <= min <= initial <= max",
            ));
        }
        if !(config.decrease_factor > 0.0 && config.decrease_factor < 1.0) {
            return Err(BackendError::config(
                "concurrency.adaptive.decrease_factor",
                "must lie in (0, 1)",
            ));
        }
        let initial = config.initial;
        Ok(Arc::new(Self {
            semaphore: Arc::new(Semaphore::new(initial)),
            adaptive: Some(Mutex::new(AdaptiveState {
                config,
                limit: initial as f64,
                applied: initial,
                debt: 0,
                slow_start: true,
                last_decrease: None,
                history: Vec::new(),
            })),
            fixed: initial,
        }))
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        match &self.adaptive {
            Some(s) => s.lock().applied,
            None => self.fixed,
        }
    }

    /// Every change of the adaptive limit so far, with the new limit.
    pub fn history(&self) -> Vec<(LimitChange, usize)> {
        self.adaptive
            .as_ref()
            .map(|s| s.lock().history.clone())
            .unwrap_or_default()
    }

    async fn acquire(self: &Arc<Self>) -> Permit {
        // The semaphore is never closed, so acquisition cannot fail; fall back to running
        // unlimited rather than panicking if it ever were.
        let permit = self.semaphore.clone().acquire_owned().await.ok();
        Permit {
            permit,
            limiter: self.clone(),
        }
    }

    fn record(&self, outcome: Outcome) {
        let Some(state) = &self.adaptive else { return };
        let mut s = state.lock();
        let old = s.applied;
        let change = match outcome {
            Outcome::Success => {
                let step = if s.slow_start {
                    1.0
                } else {
                    1.0 / s.limit.max(1.0)
                };
                s.limit = (s.limit + step).min(s.config.max as f64);
                if s.slow_start {
                    LimitChange::SlowStart
                } else {
                    LimitChange::SteadyStateUp
                }
            }
            Outcome::RateLimited => {
                let now = Instant::now();
                if s.last_decrease
                    .is_some_and(|t| now.duration_since(t) < s.config.cooldown)
                {
                    return;
                }
                s.last_decrease = Some(now);
                s.slow_start = false;
                s.limit = (s.limit * s.config.decrease_factor).max(s.config.min as f64);
                LimitChange::RateLimit
            }
            Outcome::Neutral => return,
        };
        let target = s.limit.floor() as usize;
        if target > old {
            let mut add = target - old;
            let paid = add.min(s.debt);
            s.debt -= paid;
            add -= paid;
            self.semaphore.add_permits(add);
        } else if target < old {
            let shrink = old - target;
            let forgotten = self.semaphore.forget_permits(shrink);
            s.debt += shrink - forgotten;
        }
        if target != old {
            s.applied = target;
            s.history.push((change, target));
            tracing::debug!(limit = target, reason = ?change, "concurrency limit changed");
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Success,
    RateLimited,
    Neutral,
}

struct Permit {
    permit: Option<OwnedSemaphorePermit>,
    limiter: Arc<Limiter>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let (Some(p), Some(state)) = (self.permit.take(), &self.limiter.adaptive) {
            let mut s = state.lock();
            if s.debt > 0 {
                s.debt -= 1;
                p.forget();
            }
        }
    }
}

/// Limits how many calls of the wrapped model run at once.
#[derive(Debug, Clone)]
pub struct ConcurrencyLimit<M> {
    inner: M,
    limiter: Arc<Limiter>,
}

impl<M: Model> ConcurrencyLimit<M> {
    /// A fixed limit.
    ///
    /// # Errors
    ///
    /// See [`Limiter::fixed`].
    pub fn fixed(inner: M, limit: usize) -> Result<Self, BackendError> {
        Ok(Self::with_limiter(inner, Limiter::fixed(limit)?))
    }

    /// An adaptive limit.
    ///
    /// # Errors
    ///
    /// See [`Limiter::adaptive`].
    pub fn adaptive(inner: M, config: AdaptiveConfig) -> Result<Self, BackendError> {
        Ok(Self::with_limiter(inner, Limiter::adaptive(config)?))
    }

    /// Shares an existing limiter.
    pub fn with_limiter(inner: M, limiter: Arc<Limiter>) -> Self {
        Self { inner, limiter }
    }

    /// The limiter.
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
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

    /// [`limited`](Self::limited) in the shape `forward_model_methods!` calls.
    async fn around<T, F, Fut>(&self, _method: &'static str, call: F) -> Result<T, ModelError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, ModelError>>,
    {
        self.limited(call()).await
    }

    async fn limited<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, ModelError>>,
    ) -> Result<T, ModelError> {
        let permit = self.limiter.acquire().await;
        let result = fut.await;
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(e) if e.is_rate_limit() => Outcome::RateLimited,
            Err(_) => Outcome::Neutral,
        };
        drop(permit);
        self.limiter.record(outcome);
        result
    }
}

#[async_trait]
impl<M: Model> Model for ConcurrencyLimit<M> {
    psyche_core::forward_model_methods!(inner: id, capabilities, info, steered);
    psyche_core::forward_model_methods!(inner through around: next_token_distribution,
        loglikelihood, hidden_states, sample_answers, option_probabilities);
    /// One permit per call; a request with `n > 1` to a model without a native `n`
    /// (Anthropic) takes one permit per sample.
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        if request.n > 1 && crate::params::one_sample_per_call(&self.inner.info()) {
            return crate::params::per_sample(request, |one| async move {
                self.limited(self.inner.generate(&one)).await
            })
            .await;
        }
        self.limited(self.inner.generate(request)).await
    }
}
