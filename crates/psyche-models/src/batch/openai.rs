//! OpenAI Batch API: upload JSONL, create, poll, download output and error files.

use async_trait::async_trait;
use psyche_core::{GenerateResponse, ModelError};
use serde_json::{Value, json};

use super::{BatchItem, BatchItemError, BatchProvider, BatchStatus};
use crate::openai::parse_chat_completion;
use crate::{BackendError, OpenAiCompatible, OpenAiConfig};

const ENDPOINT: &str = "/v1/chat/completions";

/// Pages of `GET /batches` read when looking for an earlier batch (100 batches each).
const MAX_LIST_PAGES: usize = 50;

/// The OpenAI Batch API for one configured model (requests are built exactly as
/// [`OpenAiCompatible`] builds them).
#[derive(Debug, Clone)]
pub struct OpenAiBatch {
    client: OpenAiCompatible,
}

impl OpenAiBatch {
    /// A batch provider for `config`.
    ///
    /// # Errors
    ///
    /// As [`OpenAiCompatible::new`].
    pub fn new(config: OpenAiConfig) -> Result<Self, BackendError> {
        Ok(Self {
            client: OpenAiCompatible::new(config)?,
        })
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.client.config().base_url.trim_end_matches('/')
        )
    }

    fn timeout(&self) -> std::time::Duration {
        self.client.config().timeout
    }
}

fn parse_line(
    line: &Value,
    model: &str,
) -> Option<(String, Result<GenerateResponse, BatchItemError>)> {
    let id = line["custom_id"].as_str()?.to_owned();
    let resp = &line["response"];
    let status = resp["status_code"].as_u64().map(|s| s as u16);
    let result = if !line["error"].is_null() {
        Err(BatchItemError {
            status,
            message: line["error"]["message"]
                .as_str()
                .unwrap_or("unknown error")
                .to_owned(),
        })
    } else if status == Some(200) {
        parse_chat_completion(&resp["body"], model).map_err(|e| BatchItemError {
            status,
            message: e.to_string(),
        })
    } else {
        Err(BatchItemError {
            status,
            message: resp["body"]["error"]["message"]
                .as_str()
                .map_or_else(|| resp["body"].to_string(), str::to_owned),
        })
    };
    Some((id, result))
}

#[async_trait]
impl BatchProvider for OpenAiBatch {
    fn name(&self) -> &str {
        "openai"
    }

    fn lines(&self, items: &[BatchItem]) -> Result<Vec<Value>, BackendError> {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let body = self.client.chat_body(&item.request).map_err(|e| {
                    BackendError::config(&format!("items[{i}].request"), e.to_string())
                })?;
                Ok(json!({"custom_id": item.custom_id, "method": "POST", "url": ENDPOINT, "body": body}))
            })
            .collect()
    }

    /// Lists the account's batches (`GET /batches`, every page through `after`) for the newest
    /// one created with `metadata.psyche_input_hash == input_hash` for this endpoint whose
    /// status is not `failed`, `expired`, `cancelling` or `cancelled`.
    async fn find_existing(&self, input_hash: &str) -> Result<Option<String>, ModelError> {
        let mut after: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let url = match &after {
                Some(a) => self.url(&format!("/batches?limit=100&after={a}")),
                None => self.url("/batches?limit=100"),
            };
            let page = self
                .client
                .http()
                .get_json(&url, "/batches", self.timeout())
                .await?;
            let data = page["data"].as_array().cloned().unwrap_or_default();
            for b in &data {
                let usable = !matches!(
                    b["status"].as_str(),
                    Some("failed" | "expired" | "cancelling" | "cancelled")
                );
                if usable
                    && b["metadata"]["psyche_input_hash"].as_str() == Some(input_hash)
                    && b["endpoint"].as_str().is_none_or(|e| e == ENDPOINT)
                    && let Some(id) = b["id"].as_str()
                {
                    return Ok(Some(id.to_owned()));
                }
            }
            match (
                page["has_more"].as_bool(),
                data.last().and_then(|b| b["id"].as_str()),
            ) {
                (Some(true), Some(last)) => after = Some(last.to_owned()),
                _ => break,
            }
        }
        Ok(None)
    }

    async fn submit(&self, lines: &[Value], input_hash: &str) -> Result<String, ModelError> {
        let mut jsonl = Vec::new();
        for l in lines {
            jsonl.extend(l.to_string().into_bytes());
            jsonl.push(b'\n');
        }
        let file_id = self
            .client
            .http()
            .upload_jsonl(
                &self.url("/files"),
                "/files",
                "batch",
                "psyche-batch.jsonl",
                jsonl,
                self.timeout(),
            )
            .await?;
        let body = json!({
            "input_file_id": file_id,
            "endpoint": ENDPOINT,
            "completion_window": "24h",
            "metadata": {"psyche_input_hash": input_hash},
        });
        let batch = self
            .client
            .http()
            .post_json(&self.url("/batches"), "/batches", &body, self.timeout())
            .await?;
        batch["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ModelError::InvalidResponse("batch answer has no `id`".into()))
    }

    async fn poll(&self, batch_id: &str) -> Result<BatchStatus, ModelError> {
        let b = self
            .client
            .http()
            .get_json(
                &self.url(&format!("/batches/{batch_id}")),
                "/batches/{id}",
                self.timeout(),
            )
            .await?;
        let status = b["status"].as_str().unwrap_or("");
        let has_files = !b["output_file_id"].is_null() || !b["error_file_id"].is_null();
        Ok(match status {
            "completed" => BatchStatus::Ended(b),
            "expired" | "cancelled" if has_files => BatchStatus::Ended(b),
            "failed" | "expired" | "cancelled" => {
                let errors: Vec<String> = b["errors"]["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        format!(
                            "{}{}",
                            e["line"]
                                .as_u64()
                                .map(|l| format!("line {l}: "))
                                .unwrap_or_default(),
                            e["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                BatchStatus::Failed(format!("status `{status}`: {}", errors.join("; ")))
            }
            _ => {
                let c = &b["request_counts"];
                let progress = c["total"].as_u64().map(|t| {
                    (
                        c["completed"].as_u64().unwrap_or(0) + c["failed"].as_u64().unwrap_or(0),
                        t,
                    )
                });
                BatchStatus::Pending(progress)
            }
        })
    }

    async fn fetch(
        &self,
        _batch_id: &str,
        ended: &Value,
    ) -> Result<Vec<(String, Result<GenerateResponse, BatchItemError>)>, ModelError> {
        let mut out = Vec::new();
        for field in ["output_file_id", "error_file_id"] {
            let Some(file_id) = ended[field].as_str() else {
                continue;
            };
            let bytes = self
                .client
                .http()
                .get_bytes(
                    &self.url(&format!("/files/{file_id}/content")),
                    "/files/{id}/content",
                    self.timeout(),
                )
                .await?;
            let text = String::from_utf8_lossy(&bytes);
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let v: Value = serde_json::from_str(line).map_err(|e| {
                    ModelError::InvalidResponse(format!("{field} `{file_id}` line {}: {e}", n + 1))
                })?;
                match parse_line(&v, &self.client.config().model) {
                    Some(pair) => out.push(pair),
                    None => {
                        return Err(ModelError::InvalidResponse(format!(
                            "{field} `{file_id}` line {}: no `custom_id`",
                            n + 1
                        )));
                    }
                }
            }
        }
        Ok(out)
    }
}
