//! Which request parameters a model accepts: a per-model table the backends consult before
//! they build a request, so a request the provider would reject fails here, before anything
//! is sent (and paid for), with an error naming the model and the parameter.
//!
//! Rows are model-name prefixes; the longest matching prefix wins (a `ft:` prefix of a
//! fine-tuned model's name is ignored for the lookup). Extend the defaults with
//! [`ModelTable::with`]:
//!
//! ```
//! use psyche_models::{ModelParams, ModelTable};
//! let table = ModelTable::openai_defaults().with("my-reasoner", ModelParams::reasoning());
//! assert!(table.lookup("my-reasoner-v2").reasoning);
//! assert!(table.lookup("o3-mini").reasoning);
//! assert!(!table.lookup("gpt-4o-2024-08-06").reasoning);
//! assert!(table.lookup("ft:gpt-4o-2024-08-06:org::abc").temperature);
//! ```
//!
//! The defaults follow the providers' published behaviour (see the crate README's table):
//! OpenAI's reasoning models (`o1`, `o3`, `o4`, the `gpt-5` family except `gpt-5-chat`) take no
//! `temperature`, `top_p` or logprobs and count reasoning tokens in `max_completion_tokens`;
//! recent Claude models (`claude-opus-4-1`, `claude-opus-4-5`, `claude-sonnet-4-5`,
//! `claude-haiku-4-5`) take `temperature` or `top_p`, not both.

use psyche_core::{GenerateRequest, ModelError};

/// What one model accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelParams {
    /// `temperature` may be sent (when `false`, only the default 1 is allowed, and it is not
    /// sent).
    pub temperature: bool,
    /// `top_p` may be sent (when `false`, only the default 1 is allowed, and it is not sent).
    pub top_p: bool,
    /// `temperature` and `top_p` may not be sent together: a request that sets both (neither
    /// at its default of 1) is refused, and only the one that differs from 1 is sent.
    pub temperature_xor_top_p: bool,
    /// Logprobs (`logprobs` / `top_logprobs`) may be requested.
    pub logprobs: bool,
    /// A reasoning model: the token limit goes in `max_completion_tokens` and covers hidden
    /// reasoning tokens, so psyche adds the backend's reasoning allowance to the answer budget.
    pub reasoning: bool,
}

impl ModelParams {
    /// Accepts every sampling parameter together (GPT-4o, vLLM, older Claude models).
    pub const fn standard() -> Self {
        Self {
            temperature: true,
            top_p: true,
            temperature_xor_top_p: false,
            logprobs: true,
            reasoning: false,
        }
    }

    /// A reasoning model: no `temperature`, `top_p` or logprobs.
    pub const fn reasoning() -> Self {
        Self {
            temperature: false,
            top_p: false,
            temperature_xor_top_p: false,
            logprobs: false,
            reasoning: true,
        }
    }

    /// `temperature` or `top_p`, not both.
    pub const fn temperature_or_top_p() -> Self {
        Self {
            temperature_xor_top_p: true,
            ..Self::standard()
        }
    }

    /// Which sampling fields to send for `request` (`(temperature, top_p)`, `None` = omit).
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidRequest`] naming `model` and the parameter when the request sets
    /// one the model does not accept.
    pub fn sampling(
        &self,
        model: &str,
        request: &GenerateRequest,
    ) -> Result<(Option<f32>, Option<f32>), ModelError> {
        let t_set = request.temperature != 1.0;
        let p_set = request.top_p < 1.0;
        let refuse = |field: &str, why: &str| {
            Err(ModelError::InvalidRequest(format!(
                "field `{field}`: model `{model}` {why} (psyche_models::ModelTable)"
            )))
        };
        if !self.temperature && t_set {
            return refuse(
                "temperature",
                &format!(
                    "accepts only the default temperature 1, not {}",
                    request.temperature
                ),
            );
        }
        if !self.top_p && p_set {
            return refuse(
                "top_p",
                &format!("accepts only the default top_p 1, not {}", request.top_p),
            );
        }
        if request.top_logprobs.is_some() && !self.logprobs {
            return refuse("top_logprobs", "does not return logprobs");
        }
        if self.temperature_xor_top_p {
            if t_set && p_set {
                return refuse(
                    "top_p",
                    "takes `temperature` or `top_p`, not both; leave one at 1",
                );
            }
            return Ok(if p_set {
                (None, Some(request.top_p))
            } else {
                (Some(request.temperature), None)
            });
        }
        Ok((
            self.temperature.then_some(request.temperature),
            self.top_p.then_some(request.top_p),
        ))
    }
}

/// Model-name prefixes → [`ModelParams`], with a fallback for names no row matches.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelTable {
    rows: Vec<(String, ModelParams)>,
    fallback: ModelParams,
}

impl ModelTable {
    /// A table with no rows: every model gets `fallback`.
    pub fn new(fallback: ModelParams) -> Self {
        Self {
            rows: Vec::new(),
            fallback,
        }
    }

    /// OpenAI-compatible servers: reasoning rows for `o1`, `o3`, `o4` and `gpt-5` (but
    /// `gpt-5-chat` is standard); everything else standard.
    pub fn openai_defaults() -> Self {
        Self::new(ModelParams::standard())
            .with("o1", ModelParams::reasoning())
            .with("o3", ModelParams::reasoning())
            .with("o4", ModelParams::reasoning())
            .with("gpt-5", ModelParams::reasoning())
            .with("gpt-5-chat", ModelParams::standard())
    }

    /// Anthropic: `temperature` or `top_p` for `claude-opus-4-1`, `claude-opus-4-5`,
    /// `claude-sonnet-4-5`, `claude-haiku-4-5`; every model lacks logprobs.
    pub fn anthropic_defaults() -> Self {
        let standard = ModelParams {
            logprobs: false,
            ..ModelParams::standard()
        };
        let xor = ModelParams {
            logprobs: false,
            ..ModelParams::temperature_or_top_p()
        };
        Self::new(standard)
            .with("claude-opus-4-1", xor)
            .with("claude-opus-4-5", xor)
            .with("claude-sonnet-4-5", xor)
            .with("claude-haiku-4-5", xor)
    }

    /// Adds (or replaces) the row for `prefix`.
    #[must_use]
    pub fn with(mut self, prefix: impl Into<String>, params: ModelParams) -> Self {
        let prefix = prefix.into();
        self.rows.retain(|(p, _)| *p != prefix);
        self.rows.push((prefix, params));
        self
    }

    /// The rows, in insertion order.
    pub fn rows(&self) -> &[(String, ModelParams)] {
        &self.rows
    }

    /// The parameters of `model`: the row with the longest prefix of its name (a leading
    /// `ft:` ignored), else the fallback.
    pub fn lookup(&self, model: &str) -> ModelParams {
        let name = model.strip_prefix("ft:").unwrap_or(model);
        self.rows
            .iter()
            .filter(|(p, _)| name.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map_or(self.fallback, |(_, m)| *m)
    }
}

/// The `seed` sent on the wire for psyche's `u64` seed: the low 63 bits (the top bit cleared),
/// so the value lies in `0..=i64::MAX` as OpenAI's and vLLM's request schemas require. Stable
/// across releases: seeds below 2^63 are sent unchanged, and `s` and `s + 2^63` map to the same
/// wire seed.
pub fn wire_seed(seed: u64) -> i64 {
    (seed & (i64::MAX as u64)) as i64
}

/// Whether a model serves `n > 1` by one HTTP call per sample (its API has no `n`): the
/// Anthropic backend (`ModelInfo::backend == "anthropic"`), or any model whose info settings
/// carry `"one_sample_per_call": true`. [`Retry`](crate::Retry) and
/// [`ConcurrencyLimit`](crate::ConcurrencyLimit) split such requests per sample.
pub(crate) fn one_sample_per_call(info: &psyche_core::ModelInfo) -> bool {
    info.backend == "anthropic" || info.settings["one_sample_per_call"] == serde_json::json!(true)
}

/// Runs `request` (with `n > 1`) as `n` one-sample requests through `call`, concurrently, and
/// joins the samples in order; the first failure (after whatever retrying `call` does) is the
/// result. Each sample is its own call, so a sample that succeeded is never sent again.
pub(crate) async fn per_sample<'a, F, Fut>(
    request: &'a GenerateRequest,
    call: F,
) -> Result<psyche_core::GenerateResponse, ModelError>
where
    F: Fn(GenerateRequest) -> Fut,
    Fut: std::future::Future<Output = Result<psyche_core::GenerateResponse, ModelError>> + 'a,
{
    let mut one = request.clone();
    one.n = 1;
    let results = futures::future::join_all((0..request.n).map(|_| call(one.clone()))).await;
    let mut out = psyche_core::GenerateResponse {
        model: String::new(),
        choices: Vec::with_capacity(results.len()),
        usage: psyche_core::Usage::default(),
    };
    for r in results {
        let r = r?;
        if out.model.is_empty() {
            out.model = r.model;
        }
        out.usage += r.usage;
        out.choices.extend(r.choices);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use psyche_core::Conversation;

    #[test]
    fn wire_seed_is_in_range_and_stable() {
        assert_eq!(wire_seed(0), 0);
        assert_eq!(wire_seed(42), 42);
        assert_eq!(wire_seed(i64::MAX as u64), i64::MAX);
        assert_eq!(wire_seed(1 << 63), 0);
        assert_eq!(
            wire_seed(16514971225805027880),
            (16514971225805027880u64 - (1 << 63)) as i64
        );
        assert_eq!(wire_seed(u64::MAX), i64::MAX);
    }

    #[test]
    fn longest_prefix_wins_and_refusals_name_the_model() {
        let t = ModelTable::openai_defaults();
        assert!(t.lookup("gpt-5-mini").reasoning);
        assert!(!t.lookup("gpt-5-chat-latest").reasoning);
        let req = GenerateRequest::new(Conversation::user("hi")).temperature(0.0);
        let err = t.lookup("o3").sampling("o3", &req).unwrap_err().to_string();
        assert!(err.contains("`o3`") && err.contains("temperature"), "{err}");
        let a = ModelTable::anthropic_defaults().lookup("claude-sonnet-4-5-20250929");
        assert!(a.temperature_xor_top_p);
        let both = req.clone().top_p(0.9);
        assert!(a.sampling("claude-sonnet-4-5", &both).is_err());
        let only_p = GenerateRequest::new(Conversation::user("hi")).top_p(0.9);
        assert_eq!(
            a.sampling("claude-sonnet-4-5", &only_p).ok(),
            Some((None, Some(0.9)))
        );
        assert_eq!(
            a.sampling("claude-sonnet-4-5", &req).ok(),
            Some((Some(0.0), None))
        );
    }
}
