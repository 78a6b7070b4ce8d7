//! # psyche-models
//!
//! Remote model backends for psyche and the middleware that makes 100,000-request evaluations
//! cheap and safe. Every type here implements [`psyche_core::Model`], so tasks, judges and the
//! runner never see which backend or wrappers they talk to.
//!
//! - Backends: [`OpenAiCompatible`] (OpenAI, vLLM, SGLang, llama.cpp, Ollama: chat completions
//!   with logprobs, and `/v1/completions` echo for log-likelihoods) and [`Anthropic`]
//!   (Messages API, no logprobs).
//! - Middleware, each usable alone and stackable: [`Retry`], [`ConcurrencyLimit`] (fixed or
//!   adaptive AIMD), [`Cache`] (persistent, on disk), [`UsageMeter`] (tokens and cost).
//! - Batch APIs: [`BatchRunner`] over [`OpenAiBatch`] or [`AnthropicBatch`], resuming an
//!   interrupted batch from its state file.
//! - Per-model request rules: [`ModelTable`] says which sampling parameters each model accepts
//!   (reasoning models, Claude models taking `temperature` or `top_p`); a request asking what
//!   its model refuses fails before it is sent. Seeds go out as [`wire_seed`] (top bit
//!   cleared), inside the signed 64-bit range OpenAI and vLLM define.
//! - Plumbing for other crates that speak a provider's REST API: [`http::HttpClient`] (pooled
//!   client, error mapping onto [`psyche_core::ModelError`], `Retry-After` / `retry-after-ms`,
//!   key redaction, credentials dropped on redirects to another origin) and [`RetryPolicy`]
//!   (the loop behind [`Retry`], for any call).
//!
//! A typical stack (outermost first): cache, usage meter, retry, concurrency limit, backend.
//!
//! ```no_run
//! use std::time::Duration;
//! use psyche_core::{Conversation, GenerateRequest, Model};
//! use psyche_models::{
//!     AdaptiveConfig, Cache, CacheConfig, ConcurrencyLimit, OpenAiCompatible, OpenAiConfig,
//!     Retry, RetryConfig, UsageMeter,
//! };
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = OpenAiCompatible::new(OpenAiConfig::openai("gpt-4o-2024-08-06"))?;
//! let limited = ConcurrencyLimit::adaptive(backend, AdaptiveConfig::default())?;
//! let retried = Retry::new(limited, RetryConfig::default())?;
//! let metered = UsageMeter::new(retried);
//! let model = Cache::new(metered, CacheConfig::new("cache/"))?;
//! let answer = model
//!     .generate(&GenerateRequest::new(Conversation::user("What is 2 + 2?")).temperature(0.0))
//!     .await?;
//! println!("{} ({} tokens)", answer.text(), answer.usage.total());
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod anthropic;
mod batch;
mod cache;
mod concurrency;
mod error;
pub mod http;
mod openai;
mod params;
mod retry;
mod secret;
mod usage;

pub use anthropic::{Anthropic, AnthropicConfig};
pub use batch::{
    AnthropicBatch, BatchConfig, BatchItem, BatchItemError, BatchOutcome, BatchProvider,
    BatchRunner, BatchStatus, OpenAiBatch,
};
pub use cache::{Cache, CacheConfig, CacheStats};
pub use concurrency::{AdaptiveConfig, ConcurrencyLimit, LimitChange, Limiter};
pub use error::BackendError;
pub use http::{AuthStyle, HttpClient};
pub use openai::{MaxTokensField, OpenAiCompatible, OpenAiConfig, PromptFormat};
pub use params::{ModelParams, ModelTable, wire_seed};
pub use retry::{Retry, RetryConfig, RetryPolicy, should_retry};
pub use secret::ApiKey;
pub use usage::{ModelUsage, Price, TokenPriceTable, UsageMeter, UsageReport};
