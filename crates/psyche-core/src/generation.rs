//! Generation requests and results.

use serde::{Deserialize, Serialize};

use crate::message::Conversation;

/// Everything that decides what a model generates.
///
/// Fields that do not change the answer (timeouts, concurrency, credentials) do not belong here;
/// they live in backend configuration so that caches can key on a request alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    /// The conversation to continue.
    pub messages: Conversation,
    /// Upper bound on generated tokens per sample.
    pub max_tokens: u32,
    /// Sampling temperature; `0.0` means greedy decoding.
    pub temperature: f32,
    /// Nucleus-sampling mass; `1.0` disables it.
    pub top_p: f32,
    /// Seed for sampling. Backends that honour seeds give the same samples for the same seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Number of independent samples to draw.
    pub n: u32,
    /// Generation stops before any of these strings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// How many alternatives to report per generated position; `None` asks for no logprobs,
    /// `Some(0)` for the chosen token's logprob only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
}

impl GenerateRequest {
    /// A request with the library defaults: 256 tokens, temperature 1, top_p 1, one sample,
    /// no seed, no stop strings, no logprobs.
    pub fn new(messages: impl Into<Conversation>) -> Self {
        Self {
            messages: messages.into(),
            max_tokens: 256,
            temperature: 1.0,
            top_p: 1.0,
            seed: None,
            n: 1,
            stop: Vec::new(),
            top_logprobs: None,
        }
    }

    /// Sets the maximum number of generated tokens.
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Sets the sampling temperature.
    #[must_use]
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = temperature;
        self
    }

    /// Sets nucleus sampling.
    #[must_use]
    pub fn top_p(mut self, top_p: f32) -> Self {
        self.top_p = top_p;
        self
    }

    /// Sets the sampling seed.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the number of samples.
    #[must_use]
    pub fn n(mut self, n: u32) -> Self {
        self.n = n;
        self
    }

    /// Adds a stop sequence.
    #[must_use]
    pub fn stop(mut self, stop: impl Into<String>) -> Self {
        self.stop.push(stop.into());
        self
    }

    /// Asks for logprobs with `k` alternatives per position.
    #[must_use]
    pub fn top_logprobs(mut self, k: u32) -> Self {
        self.top_logprobs = Some(k);
        self
    }

    /// Checks the request's own invariants (positive n and max_tokens, finite temperature ≥ 0,
    /// top_p in (0, 1], at least one message).
    ///
    /// # Errors
    ///
    /// Returns the name of the offending field and why.
    pub fn validate(&self) -> Result<(), crate::ModelError> {
        let bad = |field: &str, why: &str| {
            Err(crate::ModelError::InvalidRequest(format!(
                "field `{field}`: {why}"
            )))
        };
        if self.messages.is_empty() {
            return bad("messages", "must hold at least one message");
        }
        if self.n == 0 {
            return bad("n", "must be at least 1");
        }
        if self.max_tokens == 0 {
            return bad("max_tokens", "must be at least 1");
        }
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad("temperature", "must be a finite number >= 0");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", "must lie in (0, 1]");
        }
        Ok(())
    }
}

/// Why a generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its turn or hit a stop sequence.
    Stop,
    /// `max_tokens` was reached.
    Length,
    /// A provider filter stopped the output.
    ContentFilter,
    /// Anything else a provider reports, kept verbatim.
    Other(String),
}

/// One alternative token at a position, with its log-probability (natural log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLogprob {
    /// The token's text as the backend decodes it (may carry a leading space).
    pub token: String,
    /// Natural-log probability.
    pub logprob: f64,
}

impl TopLogprob {
    /// A token with its logprob.
    pub fn new(token: impl Into<String>, logprob: f64) -> Self {
        Self {
            token: token.into(),
            logprob,
        }
    }
}

/// The chosen token at one generated position, with the top alternatives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    /// The generated token's text.
    pub token: String,
    /// Its natural-log probability.
    pub logprob: f64,
    /// Its raw bytes when the backend reports them (tokens may split UTF-8 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Vec<u8>>,
    /// The most likely alternatives at this position, best first.
    #[serde(default)]
    pub top_logprobs: Vec<TopLogprob>,
}

/// Token counts of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated, summed over samples.
    pub completion_tokens: u64,
}

impl Usage {
    /// Prompt plus completion tokens.
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Self) {
        self.prompt_tokens += rhs.prompt_tokens;
        self.completion_tokens += rhs.completion_tokens;
    }
}

/// One sample of a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// The generated text.
    pub text: String,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Per-token logprobs when they were asked for and the backend gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<TokenLogprob>>,
}

impl Choice {
    /// A choice with text and a `Stop` finish reason, without logprobs.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            finish_reason: FinishReason::Stop,
            logprobs: None,
        }
    }
}

/// The result of [`crate::Model::generate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateResponse {
    /// The model that answered, as the backend names it.
    pub model: String,
    /// `n` samples, in order.
    pub choices: Vec<Choice>,
    /// Tokens consumed.
    #[serde(default)]
    pub usage: Usage,
}

impl GenerateResponse {
    /// The first sample's text, or `""` when there is none.
    pub fn text(&self) -> &str {
        self.choices.first().map_or("", |c| c.text.as_str())
    }
}

/// A next-token distribution at one position: either the full vocabulary or the top-k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenDistribution {
    /// Tokens with their logprobs, most likely first.
    pub tokens: Vec<TopLogprob>,
    /// `true` when `tokens` covers the whole vocabulary (probabilities sum to 1), `false` for
    /// a truncated top-k list.
    pub complete: bool,
}

impl TokenDistribution {
    /// Total probability mass of the listed tokens.
    pub fn mass(&self) -> f64 {
        self.tokens.iter().map(|t| t.logprob.exp()).sum()
    }
}

/// The log-likelihood of a continuation given a context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLikelihood {
    /// Sum of the continuation tokens' logprobs.
    pub logprob: f64,
    /// Whether greedy decoding from the context would produce exactly this continuation.
    pub is_greedy: bool,
    /// Per-token logprobs of the continuation, in order.
    pub token_logprobs: Vec<f64>,
}

/// Hidden states of the residual stream at the last prompt position, one vector per layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HiddenStates {
    /// `layers[0]` is the embedding output; `layers[i]` the output of block `i`.
    pub layers: Vec<Vec<f32>>,
}

/// From which token of the model's input a [`Steering`] vector is added.
///
/// Positions count the tokens of the rendered chat (template tokens included) as the backend
/// tokenizes it, then the generated or scored answer tokens after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "at")]
pub enum SteerFrom {
    /// Every position, the prompt's first token included.
    #[default]
    Start,
    /// From the token at this 0-based position onward (earlier positions are untouched).
    Token(usize),
    /// From the first token of message `i` of the conversation (its role header included)
    /// onward; `i` equal to the number of messages means from the header of the assistant's
    /// reply. Lets a caller inject "from this point of the conversation" without knowing the
    /// tokenizer.
    Message(usize),
}

/// An additive steering vector: `strength · vector` is added to the residual stream after block
/// `layer` (0-based), at the positions [`from`](Self::from) selects, during every call made
/// through the steered view ([`Model::steered`](crate::Model::steered)): generation, next-token
/// distributions, log-likelihoods, option probabilities and hidden states alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Steering {
    /// The block after whose output the vector is added (0-based; hidden state `layer + 1`).
    pub layer: usize,
    /// The direction, of the model's residual width.
    pub vector: Vec<f32>,
    /// Its multiplier.
    pub strength: f32,
    /// Where the addition starts.
    #[serde(default)]
    pub from: SteerFrom,
}

impl Steering {
    /// `strength · vector` after block `layer`, at every position.
    pub fn new(layer: usize, vector: Vec<f32>, strength: f32) -> Self {
        Self {
            layer,
            vector,
            strength,
            from: SteerFrom::Start,
        }
    }

    /// Limits the addition to the positions from `from` onward.
    #[must_use]
    pub fn from(mut self, from: SteerFrom) -> Self {
        self.from = from;
        self
    }

    /// The Euclidean norm of `strength · vector`.
    pub fn norm(&self) -> f64 {
        self.vector
            .iter()
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt()
            * (self.strength as f64).abs()
    }

    /// Checks the steering against a model of `n_layer` blocks and residual width `width`.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidRequest`](crate::ModelError::InvalidRequest) naming the field:
    /// a layer out of range, a vector of the wrong length, or a non-finite strength or
    /// component.
    pub fn check(&self, n_layer: usize, width: usize) -> Result<(), crate::ModelError> {
        let bad = |field: &str, why: String| {
            Err(crate::ModelError::InvalidRequest(format!(
                "steering field `{field}`: {why}"
            )))
        };
        if self.layer >= n_layer {
            return bad(
                "layer",
                format!("{} is not below the {n_layer} blocks", self.layer),
            );
        }
        if self.vector.len() != width {
            return bad(
                "vector",
                format!(
                    "has {} components, the residual width is {width}",
                    self.vector.len()
                ),
            );
        }
        if !self.strength.is_finite() {
            return bad("strength", "must be finite".into());
        }
        if let Some(i) = self.vector.iter().position(|x| !x.is_finite()) {
            return bad("vector", format!("component {i} is not finite"));
        }
        Ok(())
    }
}
