//! Retry with capped exponential backoff, seeded jitter and `Retry-After`.
//!
//! [`Retry`] re-sends a call; [`RetryConfig`] decides how often and how long to wait. A call is
//! retried when its error [`is_retryable`](ModelError::is_retryable) (429, 408, 5xx, timeouts,
//! connection resets, unreadable answers) — except a 429 that reports `insufficient_quota`,
//! which no amount of waiting fixes. 400, 401, 403 and 404 fail at once with the server's
//! message.
//!
//! The wait before retry `i` (0-based) is `min(max_backoff, initial_backoff × multiplier^i)`,
//! scaled by a jitter factor drawn uniformly from `[1 − jitter, 1]` with a seeded RNG, and at
//! least the server's `Retry-After`. Every attempt has its own timeout, and the whole call an
//! overall deadline; when the deadline cannot accommodate the next wait, the last error is
//! returned.
//!
//! # Stacking
//!
//! ```text
//!   Cache ─▶ UsageMeter ─▶ Retry ─▶ ConcurrencyLimit ─▶ OpenAiCompatible
//! ```
//!
//! With `Retry` outside `ConcurrencyLimit`, a call waiting out its backoff holds no
//! concurrency permit and the limiter sees every 429; with the order reversed, sleeping retries
//! occupy permits and the adaptive limit only sees final outcomes.
//!
//! Each method of [`Model`] is retried as one unit: `option_probabilities` of a backend that
//! samples is re-run as a whole.
//!
//! # Outside a `Model`
//!
//! [`RetryPolicy`] is the same loop for any call that fails with a [`ModelError`] — e.g. a
//! driver's REST requests through [`HttpClient`](crate::http::HttpClient):
//!
//! ```no_run
//! # async fn demo(http: psyche_models::http::HttpClient) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use psyche_models::{RetryConfig, RetryPolicy};
//! let policy = RetryPolicy::new(RetryConfig::default())?;
//! let url = "https://api.openai.com/v1/files";
//! let files = policy
//!     .run("openai", "GET /files", || http.get_json(url, "/files", Duration::from_secs(60)))
//!     .await?;
//! # let _ = files; Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use psyche_core::{ChaCha8Rng, GenerateRequest, GenerateResponse, Model, ModelError};
use rand::Rng;
use tokio::time::Instant;

use crate::BackendError;

/// How [`Retry`] retries.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Retries after the first attempt (so at most `max_retries + 1` attempts).
    pub max_retries: u32,
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// Cap of the exponential wait (not of `Retry-After`).
    pub max_backoff: Duration,
    /// Growth factor per retry, ≥ 1.
    pub multiplier: f64,
    /// Jitter fraction in `[0, 1]`: waits are scaled by a factor from `[1 − jitter, 1]`.
    pub jitter: f64,
    /// Timeout of each attempt.
    pub attempt_timeout: Duration,
    /// Deadline of the whole call including waits.
    pub deadline: Duration,
    /// Seed of the jitter RNG.
    pub seed: u64,
}

impl Default for RetryConfig {
    /// 10 retries, 1 s doubling to 60 s, 50% jitter, 10-minute attempts, 1-hour deadline,
    /// seed 0.
    fn default() -> Self {
        Self {
            max_retries: 10,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.5,
            attempt_timeout: Duration::from_secs(600),
            deadline: Duration::from_secs(3600),
            seed: 0,
        }
    }
}

impl RetryConfig {
    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// [`BackendError::Config`] when
    /// - `multiplier` is below 1 or not finite,
    /// - `jitter` lies outside `[0, 1]`,
    /// - `initial_backoff` exceeds `max_backoff`,
    /// - `attempt_timeout` or `deadline` is zero.
    pub fn validate(&self) -> Result<(), BackendError> {
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(BackendError::config(
                "retry.multiplier",
                "must be a finite number >= 1",
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(BackendError::config("retry.jitter", "must lie in [0, 1]"));
        }
        if self.initial_backoff > self.max_backoff {
            return Err(BackendError::config(
                "retry.initial_backoff",
                "must not exceed max_backoff",
            ));
        }
        if self.attempt_timeout.is_zero() {
            return Err(BackendError::config(
                "retry.attempt_timeout",
                "must be positive",
            ));
        }
        if self.deadline.is_zero() {
            return Err(BackendError::config("retry.deadline", "must be positive"));
        }
        Ok(())
    }

    /// The exponential wait before retry `retry` (0-based), before jitter and `Retry-After`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = self.multiplier.powi(retry.min(64) as i32);
        let secs =
            (self.initial_backoff.as_secs_f64() * factor).min(self.max_backoff.as_secs_f64());
        Duration::from_secs_f64(secs)
    }
}

/// Whether `err` is worth retrying: [`ModelError::is_retryable`], minus quota exhaustion.
pub fn should_retry(err: &ModelError) -> bool {
    if let ModelError::Http {
        status: 429,
        message,
        ..
    } = err
        && message.contains("insufficient_quota")
    {
        return false;
    }
    err.is_retryable()
}

/// The retry loop: re-runs a call while its error [`should_retry`], waiting as
/// [`RetryConfig`] says (and at least the server's `Retry-After`). Clones share the jitter RNG.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    config: RetryConfig,
    rng: Arc<Mutex<ChaCha8Rng>>,
}

impl RetryPolicy {
    /// A policy with its jitter RNG seeded from `config.seed`.
    ///
    /// # Errors
    ///
    /// The rules of [`RetryConfig::validate`].
    pub fn new(config: RetryConfig) -> Result<Self, BackendError> {
        config.validate()?;
        let rng = psyche_core::seeded_rng(config.seed);
        Ok(Self {
            config,
            rng: Arc::new(Mutex::new(rng)),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// Runs `call` until it succeeds, fails with an error that is not worth retrying, runs out
    /// of retries or would pass the deadline; returns the last error then. Each attempt is cut
    /// off after `attempt_timeout`. `target` and `what` (e.g. a model id and a method, or a
    /// provider and an endpoint) only label log lines.
    ///
    /// # Errors
    ///
    /// The last attempt's error ([`ModelError::Timeout`] for an attempt cut off).
    pub async fn run<T, F, Fut>(
        &self,
        target: &str,
        what: &str,
        mut call: F,
    ) -> Result<T, ModelError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ModelError>>,
    {
        let start = Instant::now();
        let deadline = start + self.config.deadline;
        let mut retry = 0u32;
        loop {
            let now = Instant::now();
            let budget = self
                .config
                .attempt_timeout
                .min(deadline.saturating_duration_since(now));
            let err = match tokio::time::timeout(budget, call()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => e,
                Err(_) => ModelError::Timeout(budget),
            };
            if !should_retry(&err) {
                return Err(err);
            }
            if retry >= self.config.max_retries {
                tracing::warn!(target_id = target, call = what, attempts = retry + 1, error = %err, "giving up after retries");
                return Err(err);
            }
            let jitter = {
                let u: f64 = self.rng.lock().random();
                1.0 - self.config.jitter * u
            };
            let mut wait = self.config.backoff(retry).mul_f64(jitter);
            if let Some(ra) = err.retry_after() {
                wait = wait.max(ra);
            }
            if Instant::now() + wait >= deadline {
                tracing::warn!(target_id = target, call = what, error = %err, "deadline leaves no time for another attempt");
                return Err(err);
            }
            tracing::debug!(target_id = target, call = what, retry = retry + 1, wait_ms = wait.as_millis() as u64, error = %err, "retrying");
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }
}

/// Retries failed calls of the wrapped model through a [`RetryPolicy`]. Clones share the
/// jitter RNG.
#[derive(Debug, Clone)]
pub struct Retry<M> {
    inner: M,
    policy: RetryPolicy,
}

impl<M: Model> Retry<M> {
    /// Wraps `inner`.
    ///
    /// # Errors
    ///
    /// The rules of [`RetryConfig::validate`].
    pub fn new(inner: M, config: RetryConfig) -> Result<Self, BackendError> {
        Ok(Self {
            inner,
            policy: RetryPolicy::new(config)?,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RetryConfig {
        self.policy.config()
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

    async fn run<'a, T, F, Fut>(&'a self, what: &str, call: F) -> Result<T, ModelError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ModelError>> + 'a,
    {
        self.policy.run(self.inner.id(), what, call).await
    }
}

#[async_trait]
impl<M: Model> Model for Retry<M> {
    psyche_core::forward_model_methods!(inner: id, capabilities, info, steered);
    psyche_core::forward_model_methods!(inner through run: next_token_distribution,
        loglikelihood, hidden_states, sample_answers, option_probabilities);
    /// Retries the call; a request with `n > 1` to a model without a native `n` (Anthropic)
    /// is retried per sample, keeping the samples that succeeded.
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        if request.n > 1 && crate::params::one_sample_per_call(&self.inner.info()) {
            return crate::params::per_sample(request, |one| async move {
                self.run("generate", || self.inner.generate(&one)).await
            })
            .await;
        }
        self.run("generate", || self.inner.generate(request)).await
    }
}
