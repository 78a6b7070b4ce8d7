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
    GenerateRequest, GenerateResponse, HiddenStates, LogLikelihood, Steering, TokenDistribution,
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
///
/// # What an option's probability means
///
/// `P(option)` is the probability that the model's **answer is that option**, renormalised
/// over the options. One semantics, computed the best way each backend can, and the way is
/// recorded in [`OptionProbabilities::method`]:
///
/// | method | when | what is summed for an option |
/// |---|---|---|
/// | [`ProbabilityMethod::FirstToken`] | every option is a single, distinct token | P(first answer token designates it) |
/// | [`ProbabilityMethod::CompleteAnswer`] | some option spans several tokens (psyche-local) | P(answer form + end-of-answer) over its [`answer_forms`](Self::answer_forms) |
/// | [`ProbabilityMethod::Sampled`] | no logprobs | share of sampled answers that [designate](Self::designated_option) it |
///
/// A token or answer *designates* an option when, after leading whitespace and one opening
/// `(` or `[`, it is the option, alone or followed by a non-alphanumeric character: `A`, ` A`,
/// `(A`, `A)`, `(A)`, `A. because` all designate `A`; `Apple` and `10` do not designate `A` or
/// `1`. When a backend cannot compute an option's probability with any of these (a
/// multi-token option on an API that only returns first-token logprobs), it returns an error,
/// never a silent zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionQuery {
    /// The options, e.g. `["Yes", "No"]` or `["A", "B", "C", "D"]`: non-empty and distinct
    /// (under the case rule).
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

    /// Checks the options: at least one, none empty, none equal to another under the case
    /// rule.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidRequest`] naming the offending field.
    pub fn check(&self) -> Result<(), ModelError> {
        if self.options.is_empty() {
            return Err(ModelError::InvalidRequest(
                "field `options`: at least one option is needed".into(),
            ));
        }
        for (i, o) in self.options.iter().enumerate() {
            if o.trim().is_empty() {
                return Err(ModelError::InvalidRequest(format!(
                    "field `options[{i}]`: must not be empty"
                )));
            }
            if let Some(j) = self.options[..i].iter().position(|p| self.matches(p, o)) {
                return Err(ModelError::InvalidRequest(format!(
                    "field `options[{i}]`: `{o}` is the same option as `options[{j}]`"
                )));
            }
        }
        Ok(())
    }

    fn matches(&self, option: &str, text: &str) -> bool {
        if self.case_insensitive {
            option.to_lowercase() == text.to_lowercase()
        } else {
            option == text
        }
    }

    /// Whether `text` starts with `option` (under the case rule); returns the rest.
    fn strip<'t>(&self, option: &str, text: &'t str) -> Option<&'t str> {
        let head = text.get(..option.len())?;
        self.matches(option, head).then(|| &text[option.len()..])
    }

    /// The option a token or an answer designates (see the [type docs](Self)): after leading
    /// whitespace and one opening `(` or `[`, the option alone or followed by a
    /// non-alphanumeric character. The longest such option wins (`"10"` over `"1"`).
    pub fn designated_option(&self, text: &str) -> Option<usize> {
        let text = text.trim_start();
        let body = text.strip_prefix(['(', '[']).map_or(text, str::trim_start);
        self.options
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                self.strip(o, body)
                    .is_some_and(|rest| rest.chars().next().is_none_or(|c| !c.is_alphanumeric()))
            })
            .max_by_key(|(_, o)| o.len())
            .map(|(i, _)| i)
    }

    /// The complete answers that count for each option under
    /// [`ProbabilityMethod::CompleteAnswer`]: `(option index, answer)` for the option, `(o)`
    /// and `o)` (and, when case-insensitive, their lower-case, upper-case and capitalised
    /// forms). Each answer belongs to one option only, so nothing is counted twice.
    pub fn answer_forms(&self) -> Vec<(usize, String)> {
        let mut forms: Vec<(usize, String)> = Vec::new();
        let push = |i: usize, f: String, forms: &mut Vec<(usize, String)>| {
            if !forms.iter().any(|(_, g)| *g == f) {
                forms.push((i, f));
            }
        };
        // Each option's own text first, so another option's derived form cannot claim it.
        for (i, o) in self.options.iter().enumerate() {
            push(i, o.clone(), &mut forms);
        }
        for (i, o) in self.options.iter().enumerate() {
            let mut variants = vec![o.clone()];
            if self.case_insensitive {
                let lower = o.to_lowercase();
                let mut chars = lower.chars();
                let cap = chars
                    .next()
                    .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
                    .unwrap_or_default();
                for v in [lower.clone(), o.to_uppercase(), cap] {
                    if !variants.contains(&v) {
                        variants.push(v);
                    }
                }
            }
            for v in variants {
                for f in [v.clone(), format!("({v})"), format!("{v})")] {
                    push(i, f, &mut forms);
                }
            }
        }
        forms
    }
}

/// How option probabilities were obtained (see [`OptionQuery`] for what they mean).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum ProbabilityMethod {
    /// From the first answer token's distribution: every option is a single distinct token and
    /// each option's probability is the mass of the tokens that designate it.
    #[serde(alias = "logprobs")]
    FirstToken {
        /// Whether the distribution covered the full vocabulary (exact) or only the top-k
        /// (options below the listed tokens get 0).
        complete: bool,
    },
    /// Exact probability of each complete answer form followed by the end-of-answer token
    /// (backends that score whole continuations, e.g. psyche-local).
    #[serde(alias = "exact")]
    CompleteAnswer,
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

/// First-token option probabilities ([`ProbabilityMethod::FirstToken`]) from the distribution
/// of the first answer token: each listed token adds its probability to the option it
/// [designates](OptionQuery::designated_option); the result is renormalised over the options.
///
/// This measures an option only if it is a single token. An option no listed token designates
/// is taken as a single token below the listed ones (probability 0) only when that is
/// plausible: the distribution is truncated, the option has no inner whitespace, and no listed
/// token is a proper prefix of it.
///
/// # Errors
///
/// [`ModelError::InvalidRequest`] for an invalid query ([`OptionQuery::check`]) or an option
/// that spans several tokens: first-token logprobs cannot measure it (use single-token
/// options such as letters, or a backend that scores complete answers).
pub fn option_probabilities_from_distribution(
    dist: &TokenDistribution,
    query: &OptionQuery,
) -> Result<OptionProbabilities, ModelError> {
    query.check()?;
    let mut masses = vec![0.0; query.options.len()];
    let mut seen = vec![false; query.options.len()];
    for t in &dist.tokens {
        if let Some(i) = query.designated_option(&t.token) {
            masses[i] += t.logprob.exp();
            seen[i] = true;
        }
    }
    for (i, o) in query.options.iter().enumerate() {
        if seen[i] {
            continue;
        }
        let multi_word = o.trim().contains(char::is_whitespace);
        let prefix = dist.tokens.iter().find(|t| {
            let text = t.token.trim_start();
            let text = text.strip_prefix(['(', '[']).unwrap_or(text);
            !text.is_empty() && text.len() < o.len() && query.strip(text, o).is_some()
        });
        let why = if dist.complete {
            Some("no token of the full vocabulary designates it".to_owned())
        } else if multi_word {
            Some("it spans several words".to_owned())
        } else {
            prefix.map(|t| format!("the listed token `{}` is a prefix of it", t.token))
        };
        if let Some(why) = why {
            return Err(ModelError::InvalidRequest(format!(
                "option `{o}` is not a single token ({why}), so first-token logprobs cannot \
                 measure its probability; use single-token options (e.g. letters) or a backend \
                 that scores complete answers"
            )));
        }
    }
    Ok(OptionProbabilities::from_masses(
        query.options.clone(),
        masses,
        ProbabilityMethod::FirstToken {
            complete: dist.complete,
        },
    ))
}

/// Option probabilities from sampled answers ([`ProbabilityMethod::Sampled`]): the share of
/// answers that [designate](OptionQuery::designated_option) each option (`"A"`, `"(A)"`,
/// `"A) cats"` count for `"A"`; `"10"` counts for `"10"`, not `"1"`).
pub fn option_probabilities_from_samples(
    answers: &[String],
    query: &OptionQuery,
) -> OptionProbabilities {
    let mut masses = vec![0.0; query.options.len()];
    let n = answers.len().max(1) as f64;
    for a in answers {
        if let Some(i) = query.designated_option(a) {
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

    /// A view of this model with `steering` added to its residual stream in every call
    /// (generation, distributions, log-likelihoods, option probabilities, hidden states), for
    /// interventions such as concept injection. The view is a model of its own, so task code
    /// steers through this trait without naming a backend.
    ///
    /// Only in-process backends can steer; they declare it with
    /// [`Capabilities::steering`]. The default refuses before anything is sent.
    ///
    /// # Errors
    ///
    /// [`ModelError::Unsupported`] naming [`Capability::Steering`] by default (every API
    /// backend); [`ModelError::InvalidRequest`] from backends that steer when the steering does
    /// not fit the model ([`Steering::check`]).
    fn steered(&self, steering: &Steering) -> Result<Arc<dyn Model>, ModelError> {
        let _ = steering;
        Err(ModelError::Unsupported {
            model: self.id().to_owned(),
            capability: Capability::Steering,
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

    /// The probability of each option as the answer, renormalised over the options (see
    /// [`OptionQuery`] for the semantics, the same on every backend).
    ///
    /// The default, with logprobs, reads the first answer token's distribution
    /// ([`option_probabilities_from_distribution`], [`ProbabilityMethod::FirstToken`]);
    /// without, samples `query.samples` answers at temperature 1
    /// ([`option_probabilities_from_samples`]). Backends that score whole continuations
    /// override it to handle multi-token options exactly ([`ProbabilityMethod::CompleteAnswer`]).
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidRequest`] for an invalid query ([`OptionQuery::check`]) or an
    /// option the backend cannot measure (a multi-token option with first-token logprobs);
    /// errors of the calls made.
    async fn option_probabilities(
        &self,
        messages: &Conversation,
        query: &OptionQuery,
    ) -> Result<OptionProbabilities, ModelError> {
        first_token_or_sampled_option_probabilities(self, messages, query).await
    }
}

/// The provided [`Model::option_probabilities`], callable from an override that handles some
/// queries itself and leaves the rest to the default: with logprobs, first-token probabilities
/// ([`option_probabilities_from_distribution`]); without, sampled answers
/// ([`option_probabilities_from_samples`]).
///
/// # Errors
///
/// As [`Model::option_probabilities`].
pub async fn first_token_or_sampled_option_probabilities<M: Model + ?Sized>(
    model: &M,
    messages: &Conversation,
    query: &OptionQuery,
) -> Result<OptionProbabilities, ModelError> {
    query.check()?;
    if model.capabilities().has(Capability::Logprobs) {
        let dist = model.next_token_distribution(messages, query.top_k).await?;
        option_probabilities_from_distribution(&dist, query)
    } else {
        let answers = model
            .sample_answers(messages, query.samples, 1.0, query.max_tokens, query.seed)
            .await?;
        Ok(option_probabilities_from_samples(&answers, query))
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
        fn steered(&self, steering: &Steering) -> Result<Arc<dyn Model>, ModelError> {
            (**self).steered(steering)
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
