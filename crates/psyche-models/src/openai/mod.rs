//! The OpenAI-compatible chat backend (OpenAI, vLLM, SGLang, llama.cpp, Ollama, ...).

mod config;
mod wire;

use async_trait::async_trait;
use psyche_core::{
    Capabilities, Capability, Conversation, GenerateRequest, GenerateResponse, LogLikelihood,
    Model, ModelError, ModelInfo, OptionProbabilities, OptionQuery, ProbabilityMethod,
    first_token_or_sampled_option_probabilities,
};
use serde_json::{Value, json};

pub use config::{MaxTokensField, OpenAiConfig, PromptFormat};
pub(crate) use wire::{finish_reason as parse_finish_reason, parse_chat_completion};

use crate::BackendError;
use crate::http::{self, AuthStyle, HttpClient};
use crate::secret::ApiKey;

/// A [`Model`] speaking `/v1/chat/completions` (and `/v1/completions` for log-likelihoods).
///
/// One value holds one pooled HTTP client; clone it (cheap) or share it behind an `Arc` rather
/// than building one per request.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use psyche_core::{Conversation, GenerateRequest, Model};
/// use psyche_models::{OpenAiCompatible, OpenAiConfig};
/// let model = OpenAiCompatible::new(OpenAiConfig::openai("gpt-4o-2024-08-06"))?;
/// let reply = model
///     .generate(&GenerateRequest::new(Conversation::user("Say hi.")).temperature(0.0))
///     .await?;
/// println!("{}", reply.text());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OpenAiCompatible {
    config: OpenAiConfig,
    id: String,
    http: HttpClient,
    caps: Capabilities,
}

impl OpenAiCompatible {
    /// Builds the backend, reading the API key from `config.api_key_env` if set.
    ///
    /// # Errors
    ///
    /// [`BackendError::Config`] when the base URL does not parse, the key variable is unset, a
    /// header is invalid, or the HTTP client cannot be built.
    pub fn new(config: OpenAiConfig) -> Result<Self, BackendError> {
        url::Url::parse(&config.base_url).map_err(|e| {
            BackendError::config(
                "base_url",
                format!("`{}` is not a URL: {e}", config.base_url),
            )
        })?;
        if config.model.trim().is_empty() {
            return Err(BackendError::config("model", "must not be empty"));
        }
        let key = match (&config.api_key, &config.api_key_env) {
            (Some(k), _) => Some(k.clone()),
            (None, Some(var)) => Some(ApiKey::from_env(var).ok_or_else(|| {
                BackendError::config(
                    "api_key_env",
                    format!("environment variable `{var}` is not set or empty"),
                )
            })?),
            (None, None) => None,
        };
        let mut headers = config.headers.clone();
        if let Some(org) = &config.organization {
            headers.push(("OpenAI-Organization".to_owned(), org.clone()));
        }
        let http = http::build(
            key,
            AuthStyle::Bearer,
            &headers,
            config.timeout,
            config.connect_timeout,
        )?;
        let caps = config
            .capabilities
            .clone()
            .unwrap_or_else(|| config.default_capabilities());
        let id = config.id.clone().unwrap_or_else(|| config.model.clone());
        Ok(Self {
            config,
            id,
            http,
            caps,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    pub(crate) fn http(&self) -> &HttpClient {
        &self.http
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// The JSON body sent to `/v1/chat/completions` for `request`.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidRequest`] for an invalid request, a `top_logprobs` above the
    /// declared maximum, or a sampling parameter the model's [`ModelTable`](crate::ModelTable)
    /// row refuses (named with the model).
    ///
    /// The seed is sent as [`wire_seed`](crate::wire_seed) of the request's seed (its low 63
    /// bits), inside the signed 64-bit range the OpenAI and vLLM schemas define.
    pub fn chat_body(&self, request: &GenerateRequest) -> Result<Value, ModelError> {
        request.validate()?;
        let params = self.config.models.lookup(&self.config.model);
        let (temperature, top_p) = params.sampling(&self.config.model, request)?;
        let mut body = json!({
            "model": self.config.model,
            "messages": request.messages,
            "n": request.n,
        });
        if let Some(t) = temperature {
            body["temperature"] = json!(t);
        }
        if let Some(p) = top_p {
            body["top_p"] = json!(p);
        }
        if params.reasoning {
            // Reasoning tokens count against this limit; leave room for the answer.
            body["max_completion_tokens"] = json!(
                request
                    .max_tokens
                    .saturating_add(self.config.reasoning_tokens)
            );
        } else {
            let limit_field = match self.config.max_tokens_field {
                MaxTokensField::MaxTokens => "max_tokens",
                MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
            };
            body[limit_field] = json!(request.max_tokens);
        }
        if let Some(seed) = request.seed {
            body["seed"] = json!(crate::params::wire_seed(seed));
        }
        if !request.stop.is_empty() {
            body["stop"] = json!(request.stop);
        }
        if let Some(k) = request.top_logprobs {
            let max = self.caps.max_top_k();
            self.caps.require(&self.id, Capability::Logprobs)?;
            if k > max {
                return Err(ModelError::InvalidRequest(format!(
                    "field `top_logprobs`: {k} exceeds the maximum {max} of model `{}`",
                    self.id
                )));
            }
            body["logprobs"] = json!(true);
            if k > 0 {
                body["top_logprobs"] = json!(k);
            }
        }
        if let Value::Object(map) = &mut body {
            for (k, v) in &self.config.extra_body {
                map.insert(k.clone(), v.clone());
            }
        }
        Ok(body)
    }
}

#[async_trait]
impl Model for OpenAiCompatible {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Capabilities {
        self.caps.clone()
    }

    fn info(&self) -> ModelInfo {
        ModelInfo {
            id: self.id.clone(),
            backend: "openai-compatible".to_owned(),
            weights: Some(self.config.model.clone()),
            settings: crate::secret::redact_settings(
                &json!({
                    "base_url": self.config.base_url,
                    "extra_body": self.config.extra_body,
                    "loglikelihood_format": self.config.loglikelihood.map(|f| format!("{f:?}")),
                }),
                self.http.key(),
            ),
        }
    }

    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        let body = self.chat_body(request)?;
        let endpoint = "/chat/completions";
        let answer = self
            .http
            .post_json(&self.url(endpoint), endpoint, &body, self.config.timeout)
            .await?;
        let response = parse_chat_completion(&answer, &self.config.model)?;
        crate::usage::report(&response.model, response.usage);
        Ok(response)
    }

    /// The semantics every backend shares ([`OptionQuery`]). With log-likelihood scoring in a
    /// format that marks the end of an answer ([`OpenAiConfig::loglikelihood`] with
    /// [`PromptFormat::ChatMl`]), options the server tokenises into several tokens are scored
    /// as complete answers: each answer form followed by `<|im_end|>`
    /// ([`ProbabilityMethod::CompleteAnswer`]). Otherwise — and whenever every option is one
    /// token — first-token logprobs, which refuse a multi-token option with an error.
    ///
    /// [`OpenAiConfig::loglikelihood`]: crate::OpenAiConfig::loglikelihood
    async fn option_probabilities(
        &self,
        messages: &Conversation,
        query: &OptionQuery,
    ) -> Result<OptionProbabilities, ModelError> {
        query.check()?;
        if let Some(end) = self
            .config
            .loglikelihood
            .and_then(PromptFormat::end_of_answer)
        {
            let mut single = true;
            for o in &query.options {
                single &= self.loglikelihood(messages, o).await?.token_logprobs.len() == 1;
            }
            if !single {
                let mut masses = vec![0.0; query.options.len()];
                for (i, form) in query.answer_forms() {
                    let ll = self
                        .loglikelihood(messages, &format!("{form}{end}"))
                        .await?;
                    masses[i] += ll.logprob.exp();
                }
                return Ok(OptionProbabilities::from_masses(
                    query.options.clone(),
                    masses,
                    ProbabilityMethod::CompleteAnswer,
                ));
            }
        }
        first_token_or_sampled_option_probabilities(self, messages, query).await
    }

    async fn loglikelihood(
        &self,
        context: &Conversation,
        continuation: &str,
    ) -> Result<LogLikelihood, ModelError> {
        let Some(format) = self.config.loglikelihood else {
            return Err(ModelError::Unsupported {
                model: self.id.clone(),
                capability: Capability::LogLikelihood,
            });
        };
        if continuation.is_empty() {
            return Err(ModelError::InvalidRequest(
                "field `continuation`: must not be empty".into(),
            ));
        }
        let prompt = format.render(context);
        let mut body = json!({
            "model": self.config.model,
            "prompt": format!("{prompt}{continuation}"),
            "echo": true,
            "logprobs": 1,
            "max_tokens": 1,
            "temperature": 0.0,
        });
        if let Value::Object(map) = &mut body {
            for (k, v) in &self.config.extra_body {
                map.insert(k.clone(), v.clone());
            }
        }
        let endpoint = "/completions";
        let answer = self
            .http
            .post_json(&self.url(endpoint), endpoint, &body, self.config.timeout)
            .await?;
        let start = prompt.chars().count();
        let end = start + continuation.chars().count();
        wire::continuation_loglikelihood(&answer, start, end)
    }
}
