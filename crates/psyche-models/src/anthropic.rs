//! The Anthropic Messages backend (`/v1/messages`).
//!
//! The Messages API has no logprobs, no seeds and no `n`: capabilities say so, `n > 1` is served
//! by `n` calls, and option probabilities fall back to sampling answers
//! ([`Model::option_probabilities`]'s default). The backend reports this in its
//! [`ModelInfo`] (`backend = "anthropic"`), and the [`Retry`](crate::Retry) and
//! [`ConcurrencyLimit`](crate::ConcurrencyLimit) wrappers split such a request into `n`
//! one-sample calls, each taking its own permit and retried on its own (a sample that succeeded
//! is never requested again). Which of `temperature` and `top_p` are sent depends on the
//! model's row in [`AnthropicConfig::models`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use psyche_core::{
    Capabilities, Capability, Choice, GenerateRequest, GenerateResponse, Model, ModelError,
    ModelInfo, Role, Usage,
};
use serde_json::{Value, json};

use crate::BackendError;
use crate::http::{self, AuthStyle, HttpClient};
use crate::openai::parse_finish_reason;
use crate::params::ModelTable;
use crate::secret::ApiKey;

/// Configuration of [`Anthropic`].
#[derive(Clone)]
pub struct AnthropicConfig {
    /// Base URL including `/v1`, e.g. `https://api.anthropic.com/v1`.
    pub base_url: String,
    /// The model name, e.g. `claude-sonnet-4-5`.
    pub model: String,
    /// The id reported by [`Model::id`]; defaults to `model`.
    pub id: Option<String>,
    /// Environment variable holding the key (read once, at construction).
    pub api_key_env: Option<String>,
    /// The key itself, when not read from the environment.
    pub api_key: Option<ApiKey>,
    /// `anthropic-version` header.
    pub version: String,
    /// Extra headers (e.g. `anthropic-beta`).
    pub headers: Vec<(String, String)>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Timeout of connection establishment.
    pub connect_timeout: Duration,
    /// Which sampling parameters each model accepts ([`ModelTable::anthropic_defaults`]
    /// unless replaced); a request setting one its model refuses fails before it is sent.
    pub models: ModelTable,
}

impl fmt::Debug for AnthropicConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("id", &self.id)
            .field("api_key_env", &self.api_key_env)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("version", &self.version)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("models", &self.models)
            .finish()
    }
}

impl AnthropicConfig {
    /// Anthropic's API.
    pub const ANTHROPIC_BASE_URL: &'static str = "https://api.anthropic.com/v1";

    /// A config for `model` at `base_url`, API version `2023-06-01`, no key.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            id: None,
            api_key_env: None,
            api_key: None,
            version: "2023-06-01".to_owned(),
            headers: Vec::new(),
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(30),
            models: ModelTable::anthropic_defaults(),
        }
    }

    /// Anthropic's API with the key from `ANTHROPIC_API_KEY`.
    pub fn anthropic(model: impl Into<String>) -> Self {
        Self::new(Self::ANTHROPIC_BASE_URL, model).api_key_env("ANTHROPIC_API_KEY")
    }

    /// Reads the key from this environment variable.
    #[must_use]
    pub fn api_key_env(mut self, name: impl Into<String>) -> Self {
        self.api_key_env = Some(name.into());
        self
    }

    /// Uses this key.
    #[must_use]
    pub fn api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the per-model parameter table.
    #[must_use]
    pub fn models(mut self, table: ModelTable) -> Self {
        self.models = table;
        self
    }

    /// Sets the per-request timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub(crate) fn resolve_key(&self) -> Result<Option<ApiKey>, BackendError> {
        match (&self.api_key, &self.api_key_env) {
            (Some(k), _) => Ok(Some(k.clone())),
            (None, Some(var)) => ApiKey::from_env(var).map(Some).ok_or_else(|| {
                BackendError::config(
                    "api_key_env",
                    format!("environment variable `{var}` is not set or empty"),
                )
            }),
            (None, None) => Ok(None),
        }
    }

    pub(crate) fn http(&self) -> Result<HttpClient, BackendError> {
        url::Url::parse(&self.base_url).map_err(|e| {
            BackendError::config("base_url", format!("`{}` is not a URL: {e}", self.base_url))
        })?;
        let mut headers = self.headers.clone();
        headers.push(("anthropic-version".to_owned(), self.version.clone()));
        http::build(
            self.resolve_key()?,
            AuthStyle::XApiKey,
            &headers,
            self.timeout,
            self.connect_timeout,
        )
    }
}

/// A [`Model`] speaking the Anthropic Messages API.
#[derive(Debug, Clone)]
pub struct Anthropic {
    config: AnthropicConfig,
    id: String,
    http: HttpClient,
}

/// The Messages API body for one sample of `request`, with the sampling fields `table` allows
/// for `model`.
pub(crate) fn messages_body(
    model: &str,
    table: &ModelTable,
    request: &GenerateRequest,
) -> Result<Value, ModelError> {
    request.validate()?;
    let (temperature, top_p) = table.lookup(model).sampling(model, request)?;
    if request.temperature > 1.0 {
        return Err(ModelError::InvalidRequest(format!(
            "field `temperature`: {} is above Anthropic's maximum of 1",
            request.temperature
        )));
    }
    let system: Vec<&str> = request
        .messages
        .messages()
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    let messages: Vec<Value> = request
        .messages
        .messages()
        .iter()
        .filter(|m| m.role != Role::System)
        .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
        .collect();
    if messages.is_empty() {
        return Err(ModelError::InvalidRequest(
            "field `messages`: Anthropic needs at least one user or assistant message".into(),
        ));
    }
    let mut body = json!({
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": messages,
    });
    if let Some(t) = temperature {
        body["temperature"] = json!(t);
    }
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if let Some(p) = top_p.filter(|p| *p < 1.0) {
        body["top_p"] = json!(p);
    }
    if !request.stop.is_empty() {
        body["stop_sequences"] = json!(request.stop);
    }
    Ok(body)
}

/// Parses a Messages API answer into one choice and its usage.
pub(crate) fn parse_message(v: &Value) -> Result<(String, Choice, Usage), ModelError> {
    let content = v["content"]
        .as_array()
        .ok_or_else(|| ModelError::InvalidResponse("message has no `content` array".into()))?;
    let text: String = content
        .iter()
        .filter(|b| b["type"].as_str() == Some("text"))
        .filter_map(|b| b["text"].as_str())
        .collect();
    let usage = Usage {
        prompt_tokens: v["usage"]["input_tokens"].as_u64().unwrap_or(0),
        completion_tokens: v["usage"]["output_tokens"].as_u64().unwrap_or(0),
    };
    let choice = Choice {
        text,
        finish_reason: parse_finish_reason(&v["stop_reason"]),
        logprobs: None,
    };
    Ok((v["model"].as_str().unwrap_or("").to_owned(), choice, usage))
}

impl Anthropic {
    /// Builds the backend.
    ///
    /// # Errors
    ///
    /// [`BackendError::Config`] for a bad base URL, a missing key variable or a bad header.
    pub fn new(config: AnthropicConfig) -> Result<Self, BackendError> {
        if config.model.trim().is_empty() {
            return Err(BackendError::config("model", "must not be empty"));
        }
        let http = config.http()?;
        let id = config.id.clone().unwrap_or_else(|| config.model.clone());
        Ok(Self { config, id, http })
    }

    /// The configuration.
    pub fn config(&self) -> &AnthropicConfig {
        &self.config
    }

    async fn one(&self, body: &Value) -> Result<(String, Choice, Usage), ModelError> {
        let url = format!("{}/messages", self.config.base_url.trim_end_matches('/'));
        let answer = self
            .http
            .post_json(&url, "/messages", body, self.config.timeout)
            .await?;
        let parsed = parse_message(&answer)?;
        let model = if parsed.0.is_empty() {
            &self.config.model
        } else {
            &parsed.0
        };
        crate::usage::report(model, parsed.2);
        Ok(parsed)
    }
}

#[async_trait]
impl Model for Anthropic {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    fn info(&self) -> ModelInfo {
        ModelInfo {
            id: self.id.clone(),
            backend: "anthropic".to_owned(),
            weights: Some(self.config.model.clone()),
            settings: crate::secret::redact_settings(
                &json!({"base_url": self.config.base_url}),
                self.http.key(),
            ),
        }
    }

    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        if request.top_logprobs.is_some() {
            return Err(ModelError::Unsupported {
                model: self.id.clone(),
                capability: Capability::Logprobs,
            });
        }
        let body = messages_body(&self.config.model, &self.config.models, request)?;
        let results = futures::future::join_all((0..request.n).map(|_| self.one(&body))).await;
        let mut model = self.config.model.clone();
        let mut usage = Usage::default();
        let mut choices = Vec::with_capacity(results.len());
        for r in results {
            let (m, choice, u) = r?;
            if !m.is_empty() {
                model = m;
            }
            usage += u;
            choices.push(choice);
        }
        Ok(GenerateResponse {
            model,
            choices,
            usage,
        })
    }
}
