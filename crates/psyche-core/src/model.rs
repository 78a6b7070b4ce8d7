//! The [`Model`] trait: one seam for every backend (HTTP APIs, the embedded model, fine-tunes).
//!
//! A backend implements three required methods — [`Model::id`], [`Model::capabilities`] and
//! [`Model::generate`] — and overrides the provided helpers it can do better (the embedded model
//! computes exact distributions and log-likelihoods instead of reading top-k logprobs).
//! Wrappers (retry, cache, concurrency limits) implement `Model` for `W<M: Model>` and forward
//! every method they do not change.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::capabilities::{Capabilities, Capability};
use crate::error::ModelError;
use crate::generation::{
    GenerateRequest, GenerateResponse, HiddenStates, LogLikelihood, TokenDistribution,
};
use crate::message::Conversation;

/// Where a model's numbers come from: enough to tell two sources of logprobs apart.
///
/// Logprobs of one model differ by 0.1–0.5 nats between backends and weight formats, so every
/// record names the backend, weights and settings that produced it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The model id used in records.
    pub id: String,
    /// The backend (`"openai-compatible"`, `"anthropic"`, `"psyche-local"`, ...).
    pub backend: String,
    /// The weights: a provider snapshot name, or a file name with its checksum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    /// Backend settings that change numbers (dtype, KV cache type, adapter, ...).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub settings: serde_json::Value,
}

/// How [`Model::option_probabilities`] matches options and how much it may spend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionQuery {
    /// The options, e.g. `["Yes", "No"]` or `["A", "B", "C", "D"]`.
    pub options: Vec<String>,
    /// How many top logprobs to request (capped at the backend's maximum).
    pub top_k: u32,
    /// Compare case-insensitively.
    pub case_insensitive: bool,
    /// Number of samples for the sampling fallback when the backend has no logprobs.
    pub samples: u32,
    /// Seed for the sampling fallback.
    pub seed: u64,
    /// Token budget of each fallback sample.
    pub max_tokens: u32,
}

impl OptionQuery {
    /// A query for these options: top-20 logprobs, case-sensitive, 32 samples of up to 8 tokens
    /// with seed 0 as the fallback.
    pub fn new<S: Into<String>>(options: impl IntoIterator<Item = S>) -> Self {
        Self {
            options: options.into_iter().map(Into::into).collect(),
            top_k: 20,
            case_insensitive: false,
            samples: 32,
            seed: 0,
            max_tokens: 8,
        }
    }

    /// Compare case-insensitively.
    #[must_use]
    pub fn case_insensitive(mut self, yes: bool) -> Self {
        self.case_insensitive = yes;
        self
    }

    /// Sets the fallback's sample count and seed.
    #[must_use]
    pub fn sampling(mut self, samples: u32, seed: u64) -> Self {
        self.samples = samples;
        self.seed = seed;
        self
    }

    fn matches(&self, option: &str, text: &str) -> bool {
        if self.case_insensitive {
            option.to_lowercase() == text.to_lowercase()
        } else {
            option == text
        }
    }
}

/// How option probabilities were obtained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ProbabilityMethod {
    /// Read from the next-token distribution (top-k or full).
    Logprobs {
        /// Whether the distribution covered the full vocabulary.
        complete: bool,
    },
    /// Exact probabilities of each option's full tokenisation (local models).
    Exact,
    /// Estimated from the answers of `samples` draws.
    Sampled {
        /// Number of draws.
        samples: u32,
    },
}

/// Probabilities of a fixed set of options, renormalised to sum to 1 over the options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionProbabilities {
    /// The options, in the query's order.
    pub options: Vec<String>,
    /// `P(option) / Σ P(options)`, same order. All zero when `mass` is 0.
    pub probabilities: Vec<f64>,
    /// The raw (unnormalised) probability mass that fell on any option: low mass means the
    /// model mostly answered something else.
    pub mass: f64,
    /// How the numbers were obtained.
    pub method: ProbabilityMethod,
}

impl OptionProbabilities {
    /// The probability of `option`, if it is one of the options.
    pub fn get(&self, option: &str) -> Option<f64> {
        self.options
            .iter()
            .position(|o| o == option)
            .map(|i| self.probabilities[i])
    }

    /// Builds the renormalised result from raw per-option masses.
    pub fn from_masses(options: Vec<String>, masses: Vec<f64>, method: ProbabilityMethod) -> Self {
        let mass: f64 = masses.iter().sum();
        let probabilities = if mass > 0.0 {
            masses.iter().map(|m| m / mass).collect()
        } else {
            vec![0.0; masses.len()]
        };
        Self {
            options,
            probabilities,
            mass,
            method,
        }
    }
}

/// Option probabilities from a next-token distribution: each listed token, trimmed of leading
/// whitespace, adds its probability to the option it equals; the result is renormalised over the
/// options.
pub fn option_probabilities_from_distribution(
    dist: &TokenDistribution,
    query: &OptionQuery,
) -> OptionProbabilities {
    let mut masses = vec![0.0; query.options.len()];
    for t in &dist.tokens {
        let text = t.token.trim_start();
        if let Some(i) = query.options.iter().position(|o| query.matches(o, text)) {
            masses[i] += t.logprob.exp();
        }
    }
    OptionProbabilities::from_masses(
        query.options.clone(),
        masses,
        ProbabilityMethod::Logprobs {
            complete: dist.complete,
        },
    )
}

/// Option probabilities from sampled answers: an answer counts for an option when, trimmed, it
/// equals the option or starts with it followed by a non-alphanumeric character (`"A) cats"`
/// counts for `"A"`).
pub fn option_probabilities_from_samples(
    answers: &[String],
    query: &OptionQuery,
) -> OptionProbabilities {
    let mut masses = vec![0.0; query.options.len()];
    let n = answers.len().max(1) as f64;
    for a in answers {
        let a = a.trim();
        let hit = query.options.iter().position(|o| {
            let head = a.get(..o.len()).unwrap_or("");
            query.matches(o, a)
                || (query.matches(o, head)
                    && a[o.len()..]
                        .chars()
                        .next()
                        .is_some_and(|c| !c.is_alphanumeric()))
        });
        if let Some(i) = hit {
            masses[i] += 1.0 / n;
        }
    }
    OptionProbabilities::from_masses(
        query.options.clone(),
        masses,
        ProbabilityMethod::Sampled {
            samples: answers.len() as u32,
        },
    )
}

/// A language model: the seam every backend, wrapper and fine-tune implements.
///
/// Required: [`id`](Model::id), [`capabilities`](Model::capabilities),
/// [`generate`](Model::generate). Everything else is provided on top of `generate` and may be
/// overridden by backends that can do better.
///
/// # Examples
///
/// ```
/// use async_trait::async_trait;
/// use psyche_core::{Capabilities, Choice, GenerateRequest, GenerateResponse, Model, ModelError, Usage};
///
/// /// A "model" that always answers the same word.
/// struct Parrot;
///
/// #[async_trait]
/// impl Model for Parrot {
///     fn id(&self) -> &str { "parrot" }
///     fn capabilities(&self) -> Capabilities { Capabilities::default() }
///     async fn generate(&self, req: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
///         Ok(GenerateResponse {
///             model: "parrot".into(),
///             choices: (0..req.n).map(|_| Choice::text("squawk")).collect(),
///             usage: Usage::default(),
///         })
///     }
/// }
/// ```
#[async_trait]
pub trait Model: Send + Sync {
    /// The id recorded with every result.
    fn id(&self) -> &str;

    /// What this backend can do for this model.
    fn capabilities(&self) -> Capabilities;

    /// Provenance of this model's numbers. The default names only the id.
    fn info(&self) -> ModelInfo {
        ModelInfo {
            id: self.id().to_owned(),
            backend: "unknown".to_owned(),
            ..ModelInfo::default()
        }
    }

    /// Generates `request.n` samples.
    ///
    /// # Errors
    ///
    /// Any [`ModelError`]; see [`ModelError::is_retryable`] for which are transient.
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError>;

    /// The distribution of the first answer token (the token the assistant would write first).
    ///
    /// The default asks `generate` for one greedy token with `top_k` logprobs (capped at the
    /// backend's maximum) and returns a truncated (`complete: false`) distribution.
    ///
    /// # Errors
    ///
    /// [`ModelError::Unsupported`] without logprob support; [`ModelError::InvalidResponse`] when
    /// the backend returns no logprobs.
    async fn next_token_distribution(
        &self,
        messages: &Conversation,
        top_k: u32,
    ) -> Result<TokenDistribution, ModelError> {
        let caps = self.capabilities();
        caps.require(self.id(), Capability::Logprobs)?;
        let k = top_k.min(caps.max_top_k()).max(1);
        let request = GenerateRequest::new(messages.clone())
            .max_tokens(1)
            .temperature(0.0)
            .top_logprobs(k);
        let response = self.generate(&request).await?;
        let first = response
            .choices
            .first()
            .and_then(|c| c.logprobs.as_ref())
            .and_then(|l| l.first())
            .ok_or_else(|| {
                ModelError::InvalidResponse(format!(
                    "model `{}` returned no logprobs for a logprob request",
                    self.id()
                ))
            })?;
        let mut tokens = first.top_logprobs.clone();
        if tokens.is_empty() {
            tokens.push(crate::TopLogprob::new(first.token.clone(), first.logprob));
        }
        tokens.sort_by(|a, b| b.logprob.total_cmp(&a.logprob));
        Ok(TokenDistribution {
            tokens,
            complete: false,
        })
    }

    /// The log-likelihood of `continuation` as the assistant's reply to `context`.
    ///
    /// # Errors
    ///
    /// [`ModelError::Unsupported`] by default.
    async fn loglikelihood(
        &self,
        context: &Conversation,
        continuation: &str,
    ) -> Result<LogLikelihood, ModelError> {
        let _ = (context, continuation);
        Err(ModelError::Unsupported {
            model: self.id().to_owned(),
            capability: Capability::LogLikelihood,
        })
    }

    /// Hidden states at the last prompt position.
    ///
    /// # Errors
    ///
    /// [`ModelError::Unsupported`] by default.
    async fn hidden_states(&self, messages: &Conversation) -> Result<HiddenStates, ModelError> {
        let _ = messages;
        Err(ModelError::Unsupported {
            model: self.id().to_owned(),
            capability: Capability::HiddenStates,
        })
    }

    /// Draws `k` answers at `temperature`: an empirical answer distribution for backends
    /// without logprobs. Backends that return fewer than `n` choices per call are called again
    /// with derived seeds until `k` answers are collected.
    ///
    /// # Errors
    ///
    /// The first failing `generate` call's error.
    async fn sample_answers(
        &self,
        messages: &Conversation,
        k: u32,
        temperature: f32,
        max_tokens: u32,
        seed: u64,
    ) -> Result<Vec<String>, ModelError> {
        let mut answers = Vec::with_capacity(k as usize);
        let mut call = 0u64;
        while (answers.len() as u32) < k {
            let want = k - answers.len() as u32;
            let request = GenerateRequest::new(messages.clone())
                .n(want)
                .temperature(temperature)
                .max_tokens(max_tokens)
                .seed(crate::derive_seed(seed, &format!("sample_answers/{call}")));
            let response = self.generate(&request).await?;
            if response.choices.is_empty() {
                return Err(ModelError::InvalidResponse(format!(
                    "model `{}` returned no choices",
                    self.id()
                )));
            }
            answers.extend(
                response
                    .choices
                    .into_iter()
                    .take(want as usize)
                    .map(|c| c.text),
            );
            call += 1;
        }
        Ok(answers)
    }

    /// The probability of each option as the first answer, renormalised over the options.
    ///
    /// With logprobs, reads the next-token distribution
    /// ([`option_probabilities_from_distribution`]); without, samples `query.samples` answers at
    /// temperature 1 ([`option_probabilities_from_samples`]).
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidRequest`] for an empty option list; errors of the calls made.
    async fn option_probabilities(
        &self,
        messages: &Conversation,
        query: &OptionQuery,
    ) -> Result<OptionProbabilities, ModelError> {
        if query.options.is_empty() {
            return Err(ModelError::InvalidRequest(
                "field `options`: at least one option is needed".into(),
            ));
        }
        if self.capabilities().has(Capability::Logprobs) {
            let dist = self.next_token_distribution(messages, query.top_k).await?;
            Ok(option_probabilities_from_distribution(&dist, query))
        } else {
            let answers = self
                .sample_answers(messages, query.samples, 1.0, query.max_tokens, query.seed)
                .await?;
            Ok(option_probabilities_from_samples(&answers, query))
        }
    }
}

macro_rules! forward_model {
    ($($wrapper:tt)+) => {
        #[async_trait]
        impl<M: Model + ?Sized> Model for $($wrapper)+ {
        fn id(&self) -> &str {
            (**self).id()
        }
        fn capabilities(&self) -> Capabilities {
            (**self).capabilities()
        }
        fn info(&self) -> ModelInfo {
            (**self).info()
        }
        async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
            (**self).generate(request).await
        }
        async fn next_token_distribution(
            &self,
            messages: &Conversation,
            top_k: u32,
        ) -> Result<TokenDistribution, ModelError> {
            (**self).next_token_distribution(messages, top_k).await
        }
        async fn loglikelihood(
            &self,
            context: &Conversation,
            continuation: &str,
        ) -> Result<LogLikelihood, ModelError> {
            (**self).loglikelihood(context, continuation).await
        }
        async fn hidden_states(&self, messages: &Conversation) -> Result<HiddenStates, ModelError> {
            (**self).hidden_states(messages).await
        }
        async fn sample_answers(
            &self,
            messages: &Conversation,
            k: u32,
            temperature: f32,
            max_tokens: u32,
            seed: u64,
        ) -> Result<Vec<String>, ModelError> {
            (**self)
                .sample_answers(messages, k, temperature, max_tokens, seed)
                .await
        }
        async fn option_probabilities(
            &self,
            messages: &Conversation,
            query: &OptionQuery,
        ) -> Result<OptionProbabilities, ModelError> {
            (**self).option_probabilities(messages, query).await
        }
        }
    };
}

forward_model!(Arc<M>);
forward_model!(Box<M>);
forward_model!(&M);
