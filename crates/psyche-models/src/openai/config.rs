//! Configuration of the OpenAI-compatible backend.

use std::fmt;
use std::time::Duration;

use psyche_core::{Capabilities, Conversation, LogprobSupport, Role};
use serde_json::{Map, Value};

use crate::params::ModelTable;
use crate::secret::ApiKey;

/// How a chat is rendered into the plain prompt of `/v1/completions` for
/// [`Model::loglikelihood`](psyche_core::Model::loglikelihood).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PromptFormat {
    /// ChatML (`<|im_start|>role\ncontent<|im_end|>\n`, then `<|im_start|>assistant\n`), the
    /// template of SmolLM2, Qwen and many others.
    ChatMl,
    /// Message contents joined by blank lines, no roles (base models).
    Plain,
}

impl PromptFormat {
    /// The text that ends the assistant's answer in this format (ChatML's `<|im_end|>`); `None`
    /// for [`PromptFormat::Plain`], which has no end-of-answer marker.
    pub fn end_of_answer(self) -> Option<&'static str> {
        match self {
            PromptFormat::ChatMl => Some("<|im_end|>"),
            PromptFormat::Plain => None,
        }
    }

    /// Renders `messages` as the prompt whose continuation is the assistant's reply.
    pub fn render(self, messages: &Conversation) -> String {
        match self {
            PromptFormat::ChatMl => {
                let mut s = String::new();
                for m in messages {
                    s.push_str("<|im_start|>");
                    s.push_str(m.role.as_str());
                    s.push('\n');
                    s.push_str(&m.content);
                    s.push_str("<|im_end|>\n");
                }
                s.push_str("<|im_start|>assistant\n");
                s
            }
            PromptFormat::Plain => {
                let mut parts: Vec<&str> = messages
                    .messages()
                    .iter()
                    .filter(|m| m.role != Role::System || !m.content.is_empty())
                    .map(|m| m.content.as_str())
                    .collect();
                parts.push("");
                parts.join("\n\n")
            }
        }
    }
}

/// Which body field carries the token limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaxTokensField {
    /// `max_tokens` (vLLM, SGLang, llama.cpp, Ollama, older OpenAI models).
    #[default]
    MaxTokens,
    /// `max_completion_tokens` (current OpenAI models).
    MaxCompletionTokens,
}

/// Everything [`OpenAiCompatible`](crate::OpenAiCompatible) needs: where, which model, how to
/// authenticate, and what to add to each request.
///
/// ```
/// use psyche_models::OpenAiConfig;
/// let cfg = OpenAiConfig::new("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct")
///     .api_key_env("VLLM_API_KEY")
///     .extra_body("repetition_penalty", serde_json::json!(1.05));
/// assert_eq!(cfg.model, "Qwen/Qwen2.5-7B-Instruct");
/// ```
#[derive(Clone)]
pub struct OpenAiConfig {
    /// Base URL including the version prefix, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The model name sent in every request.
    pub model: String,
    /// The id reported by [`Model::id`](psyche_core::Model::id); defaults to `model`.
    pub id: Option<String>,
    /// Name of the environment variable holding the API key (read once, at construction).
    pub api_key_env: Option<String>,
    /// The key itself, when not read from the environment.
    pub api_key: Option<ApiKey>,
    /// `OpenAI-Organization` header.
    pub organization: Option<String>,
    /// Extra headers sent with every request.
    pub headers: Vec<(String, String)>,
    /// Fields merged into every request body (vLLM extensions such as `top_k`,
    /// `repetition_penalty`); they override the fields psyche sets.
    pub extra_body: Map<String, Value>,
    /// Declared capabilities; `None` uses [`OpenAiConfig::default_capabilities`].
    pub capabilities: Option<Capabilities>,
    /// Which field carries the token limit.
    pub max_tokens_field: MaxTokensField,
    /// Timeout of one HTTP request (connection to last body byte).
    pub timeout: Duration,
    /// Timeout of connection establishment.
    pub connect_timeout: Duration,
    /// Enables `loglikelihood` through `/v1/completions` with `echo` + `logprobs` (vLLM,
    /// llama.cpp), rendering chats in this format.
    pub loglikelihood: Option<PromptFormat>,
    /// Which parameters each model accepts ([`ModelTable::openai_defaults`] unless replaced);
    /// a request setting one its model refuses fails before it is sent.
    pub models: ModelTable,
    /// Tokens added to `max_tokens` for a reasoning model (the table's `reasoning` rows), whose
    /// `max_completion_tokens` covers hidden reasoning as well as the answer; 4096 by default.
    pub reasoning_tokens: u32,
}

impl fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("id", &self.id)
            .field("api_key_env", &self.api_key_env)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("organization", &self.organization)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("extra_body", &self.extra_body)
            .field("capabilities", &self.capabilities)
            .field("max_tokens_field", &self.max_tokens_field)
            .field("timeout", &self.timeout)
            .field("loglikelihood", &self.loglikelihood)
            .field("models", &self.models)
            .field("reasoning_tokens", &self.reasoning_tokens)
            .finish()
    }
}

impl OpenAiConfig {
    /// OpenAI's own API.
    pub const OPENAI_BASE_URL: &'static str = "https://api.openai.com/v1";

    /// A config for `model` at `base_url` with no key, a 10-minute request timeout and the
    /// default capabilities.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            id: None,
            api_key_env: None,
            api_key: None,
            organization: None,
            headers: Vec::new(),
            extra_body: Map::new(),
            capabilities: None,
            max_tokens_field: MaxTokensField::default(),
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(30),
            loglikelihood: None,
            models: ModelTable::openai_defaults(),
            reasoning_tokens: 4096,
        }
    }

    /// OpenAI's API with the key from `OPENAI_API_KEY` and `max_completion_tokens`.
    pub fn openai(model: impl Into<String>) -> Self {
        let mut c = Self::new(Self::OPENAI_BASE_URL, model).api_key_env("OPENAI_API_KEY");
        c.max_tokens_field = MaxTokensField::MaxCompletionTokens;
        c
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

    /// Sets the id used in records.
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the `OpenAI-Organization` header.
    #[must_use]
    pub fn organization(mut self, org: impl Into<String>) -> Self {
        self.organization = Some(org.into());
        self
    }

    /// Adds a header to every request.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a field to every request body.
    #[must_use]
    pub fn extra_body(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra_body.insert(key.into(), value);
        self
    }

    /// Declares the model's capabilities.
    #[must_use]
    pub fn capabilities(mut self, caps: Capabilities) -> Self {
        self.capabilities = Some(caps);
        self
    }

    /// Sets the token-limit field.
    #[must_use]
    pub fn max_tokens_field(mut self, field: MaxTokensField) -> Self {
        self.max_tokens_field = field;
        self
    }

    /// Sets the per-request timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Replaces the per-model parameter table.
    #[must_use]
    pub fn models(mut self, table: ModelTable) -> Self {
        self.models = table;
        self
    }

    /// Sets the reasoning allowance added to `max_tokens` for reasoning models.
    #[must_use]
    pub fn reasoning_tokens(mut self, tokens: u32) -> Self {
        self.reasoning_tokens = tokens;
        self
    }

    /// Enables `loglikelihood` through `/v1/completions`.
    #[must_use]
    pub fn loglikelihood(mut self, format: PromptFormat) -> Self {
        self.loglikelihood = Some(format);
        self
    }

    /// Logprobs with top-20 (none for a model whose [`models`](Self::models) row refuses
    /// logprobs), seeded sampling; log-likelihood when [`loglikelihood`](Self::loglikelihood)
    /// is set.
    pub fn default_capabilities(&self) -> Capabilities {
        Capabilities {
            logprobs: self
                .models
                .lookup(&self.model)
                .logprobs
                .then_some(LogprobSupport { max_top_k: 20 }),
            loglikelihood: self.loglikelihood.is_some(),
            seeded_sampling: true,
            ..Capabilities::default()
        }
    }
}
