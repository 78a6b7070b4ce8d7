//! Anthropic Message Batches: create, poll, download results.

use async_trait::async_trait;
use psyche_core::{Capability, GenerateResponse, ModelError};
use serde_json::{Value, json};

use super::{BatchItem, BatchItemError, BatchProvider, BatchStatus};
use crate::anthropic::{messages_body, parse_message};
use crate::http::HttpClient;
use crate::{AnthropicConfig, BackendError};

/// Anthropic Message Batches for one configured model.
#[derive(Debug, Clone)]
pub struct AnthropicBatch {
    config: AnthropicConfig,
    http: HttpClient,
}

impl AnthropicBatch {
    /// A batch provider for `config`.
    ///
    /// # Errors
    ///
    /// As [`Anthropic::new`](crate::Anthropic::new).
    pub fn new(config: AnthropicConfig) -> Result<Self, BackendError> {
        let http = config.http()?;
        Ok(Self { config, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }
}

#[async_trait]
impl BatchProvider for AnthropicBatch {
    fn name(&self) -> &str {
        "anthropic"
    }

    fn lines(&self, items: &[BatchItem]) -> Result<Vec<Value>, BackendError> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let field = format!("items[{i}]");
                let id_ok = item.custom_id.len() <= 64
                    && item
                        .custom_id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !id_ok {
                    return Err(BackendError::config(
                        &format!("{field}.custom_id"),
                        "Anthropic needs 1-64 characters of [A-Za-z0-9_-]",
                    ));
                }
                if item.request.n != 1 {
                    return Err(BackendError::config(
                        &format!("{field}.request.n"),
                        "Anthropic batches take n = 1",
                    ));
                }
                if item.request.top_logprobs.is_some() {
                    return Err(BackendError::Model(ModelError::Unsupported {
                        model: self.config.model.clone(),
                        capability: Capability::Logprobs,
                    }));
                }
                let params = messages_body(&self.config.model, &self.config.models, &item.request)
                    .map_err(|e| {
                        BackendError::config(&format!("{field}.request"), e.to_string())
                    })?;
                Ok(json!({"custom_id": item.custom_id, "params": params}))
            })
            .collect()
    }

    async fn submit(&self, lines: &[Value], _input_hash: &str) -> Result<String, ModelError> {
        let body = json!({"requests": lines});
        let b = self
            .http
            .post_json(
                &self.url("/messages/batches"),
                "/messages/batches",
                &body,
                self.config.timeout,
            )
            .await?;
        b["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ModelError::InvalidResponse("message batch answer has no `id`".into()))
    }

    async fn poll(&self, batch_id: &str) -> Result<BatchStatus, ModelError> {
        let b = self
            .http
            .get_json(
                &self.url(&format!("/messages/batches/{batch_id}")),
                "/messages/batches/{id}",
                self.config.timeout,
            )
            .await?;
        Ok(match b["processing_status"].as_str() {
            Some("ended") => BatchStatus::Ended(b),
            _ => {
                let c = &b["request_counts"];
                let done: u64 = ["succeeded", "errored", "canceled", "expired"]
                    .iter()
                    .filter_map(|k| c[*k].as_u64())
                    .sum();
                let total = done + c["processing"].as_u64().unwrap_or(0);
                BatchStatus::Pending(Some((done, total)))
            }
        })
    }

    async fn fetch(
        &self,
        batch_id: &str,
        ended: &Value,
    ) -> Result<Vec<(String, Result<GenerateResponse, BatchItemError>)>, ModelError> {
        let url = ended["results_url"].as_str().map_or_else(
            || self.url(&format!("/messages/batches/{batch_id}/results")),
            str::to_owned,
        );
        let bytes = self
            .http
            .get_bytes(&url, "/messages/batches/{id}/results", self.config.timeout)
            .await?;
        let text = String::from_utf8_lossy(&bytes);
        let mut out = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| ModelError::InvalidResponse(format!("results line {}: {e}", n + 1)))?;
            let Some(id) = v["custom_id"].as_str() else {
                return Err(ModelError::InvalidResponse(format!(
                    "results line {}: no `custom_id`",
                    n + 1
                )));
            };
            let r = &v["result"];
            let result = match r["type"].as_str() {
                Some("succeeded") => parse_message(&r["message"])
                    .map(|(m, choice, usage)| GenerateResponse {
                        model: if m.is_empty() {
                            self.config.model.clone()
                        } else {
                            m
                        },
                        choices: vec![choice],
                        usage,
                    })
                    .map_err(|e| BatchItemError {
                        status: None,
                        message: e.to_string(),
                    }),
                Some(kind) => Err(BatchItemError {
                    status: None,
                    message: format!(
                        "{kind}{}",
                        r["error"]["error"]["message"]
                            .as_str()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    ),
                }),
                None => Err(BatchItemError {
                    status: None,
                    message: "result has no `type`".into(),
                }),
            };
            out.push((id.to_owned(), result));
        }
        Ok(out)
    }
}
