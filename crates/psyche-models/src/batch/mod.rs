//! Batch APIs (OpenAI Batch, Anthropic Message Batches) behind one [`BatchRunner`].
//!
//! A run: check that every `custom_id` is unique; if the state file names a batch for the same
//! input (same hash), resume polling it; otherwise submit, and write the batch id to the state
//! file (atomically) before the first poll. Then poll until the batch ends, download the
//! results and join them on `custom_id`. An interrupted process that runs again with the same
//! items and state file therefore picks up the same batch instead of paying for a second one.
//!
//! Idempotence: before submitting, the runner looks for an earlier batch of the same input (the
//! SHA-256 of the wire lines) in three places, in order:
//!
//! 1. the state file ([`BatchConfig::state_path`]);
//! 2. the local ledger: one file per (provider, input hash),
//!    `psyche-batch-<provider>-<hash prefix>.json`, in the state file's directory, written
//!    atomically with the state file before the first poll — it survives a deleted or
//!    overwritten state file (the only record for Anthropic, whose batches carry no metadata);
//! 3. the provider ([`BatchProvider::find_existing`]): OpenAI batches are created with
//!    `metadata.psyche_input_hash`, and the runner lists the account's batches (all pages) for
//!    one with that hash that is not `failed`, `expired`, `cancelling` or `cancelled` — which
//!    closes the window between the provider accepting a batch and the answer reaching us.
//!
//! A batch that fails as a whole removes the state file and its ledger entry, so the next run
//! submits anew.

mod anthropic;
mod openai;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use psyche_core::{GenerateRequest, GenerateResponse, ModelError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use anthropic::AnthropicBatch;
pub use openai::OpenAiBatch;

use crate::BackendError;

/// One request of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchItem {
    /// Unique id within the batch; results are joined on it.
    pub custom_id: String,
    /// The request.
    pub request: GenerateRequest,
}

impl BatchItem {
    /// An item.
    pub fn new(custom_id: impl Into<String>, request: GenerateRequest) -> Self {
        Self {
            custom_id: custom_id.into(),
            request,
        }
    }
}

/// Why one item of a batch has no answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}{message}", status.map(|s| format!("HTTP {s}: ")).unwrap_or_default())]
pub struct BatchItemError {
    /// The per-request status, when the provider gives one.
    pub status: Option<u16>,
    /// The provider's message (or why the item is missing).
    pub message: String,
}

/// The results of a batch, joined on `custom_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutcome {
    /// The provider's batch id.
    pub batch_id: String,
    /// Whether this run resumed a batch submitted earlier.
    pub resumed: bool,
    /// One entry per submitted item.
    pub results: BTreeMap<String, Result<GenerateResponse, BatchItemError>>,
}

impl BatchOutcome {
    /// Number of items that failed.
    pub fn failed(&self) -> usize {
        self.results.values().filter(|r| r.is_err()).count()
    }
}

/// Where a batch stands.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchStatus {
    /// Still running; `(finished, total)` when known.
    Pending(Option<(u64, u64)>),
    /// Finished; the value tells [`BatchProvider::fetch`] where the results are.
    Ended(Value),
    /// Failed as a whole.
    Failed(String),
}

/// One provider's batch API. Implemented by [`OpenAiBatch`] and [`AnthropicBatch`].
#[async_trait]
pub trait BatchProvider: Send + Sync {
    /// Short provider name stored in the state file.
    fn name(&self) -> &str;

    /// The provider's wire line for each item (also what the input hash covers).
    ///
    /// # Errors
    ///
    /// An invalid request, naming the item.
    fn lines(&self, items: &[BatchItem]) -> Result<Vec<Value>, BackendError>;

    /// An unfinished or successful batch of this input already known to the provider (`None`
    /// when the provider keeps no such record, the default).
    async fn find_existing(&self, input_hash: &str) -> Result<Option<String>, ModelError> {
        let _ = input_hash;
        Ok(None)
    }

    /// Submits the lines; returns the batch id.
    async fn submit(&self, lines: &[Value], input_hash: &str) -> Result<String, ModelError>;

    /// Asks for the batch's status.
    async fn poll(&self, batch_id: &str) -> Result<BatchStatus, ModelError>;

    /// Downloads the results of an ended batch: `(custom_id, result)` pairs.
    async fn fetch(
        &self,
        batch_id: &str,
        ended: &Value,
    ) -> Result<Vec<(String, Result<GenerateResponse, BatchItemError>)>, ModelError>;
}

/// The state file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BatchState {
    provider: String,
    batch_id: String,
    input_hash: String,
    items: usize,
}

/// Settings of a [`BatchRunner`].
#[derive(Debug, Clone, PartialEq)]
pub struct BatchConfig {
    /// The JSON file recording the submitted batch's id.
    pub state_path: PathBuf,
    /// Time between status polls.
    pub poll_interval: Duration,
    /// Give up polling after this long (the batch keeps running; a later run resumes it).
    pub max_wait: Duration,
    /// Consecutive failed polls tolerated before giving up.
    pub max_poll_failures: u32,
}

impl BatchConfig {
    /// Polls every 30 s for up to 25 h, tolerating 20 consecutive failed polls.
    pub fn new(state_path: impl Into<PathBuf>) -> Self {
        Self {
            state_path: state_path.into(),
            poll_interval: Duration::from_secs(30),
            max_wait: Duration::from_secs(25 * 3600),
            max_poll_failures: 20,
        }
    }

    /// Sets the poll interval.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }
}

const STILL_RUNNING: &str = "still running";

/// Runs batches of one provider with resume.
#[derive(Debug)]
pub struct BatchRunner<P> {
    provider: P,
    config: BatchConfig,
}

impl<P: BatchProvider> BatchRunner<P> {
    /// A runner for `provider`.
    pub fn new(provider: P, config: BatchConfig) -> Self {
        Self { provider, config }
    }

    /// The provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The ledger file of an input: beside the state file, one per (provider, input hash).
    pub fn ledger_path(&self, input_hash: &str) -> PathBuf {
        let dir = self
            .config
            .state_path
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default();
        dir.join(format!(
            "psyche-batch-{}-{}.json",
            self.provider.name(),
            &input_hash[..input_hash.len().min(32)]
        ))
    }

    /// The input hash of a batch's wire lines (hex SHA-256 of the lines, one per line), as
    /// stored in the state file, the ledger and OpenAI's `metadata.psyche_input_hash`.
    pub fn input_hash(&self, lines: &[Value]) -> String {
        let mut hasher = Sha256::new();
        for l in lines {
            hasher.update(l.to_string().as_bytes());
            hasher.update(b"\n");
        }
        hex::encode(hasher.finalize())
    }

    fn write_state(&self, path: &std::path::Path, state: &BatchState) -> Result<(), BackendError> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| BackendError::io(path, e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| BackendError::io(dir, e))?;
        }
        psyche_core::write_atomic(path, &bytes).map_err(|e| BackendError::io(path, e))
    }

    fn load_state(&self) -> Result<Option<BatchState>, BackendError> {
        Self::read_state(&self.config.state_path)
    }

    fn read_state(path: &std::path::Path) -> Result<Option<BatchState>, BackendError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                BackendError::io(
                    path,
                    format!("batch state file is corrupt ({e}); delete it to submit anew"),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BackendError::io(path, e)),
        }
    }

    /// Submits (or resumes) the batch of `items` and waits for its results.
    ///
    /// # Errors
    ///
    /// [`BackendError::Config`] for duplicate or empty `custom_id`s; [`BackendError::Io`] for an
    /// unreadable or foreign state file; [`BackendError::Batch`] when the batch fails as a whole
    /// or polling gives up; [`BackendError::Model`] when submission or download fails.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future after submission leaves the state file in place; the next `run` with
    /// the same items resumes polling.
    pub async fn run(&self, items: &[BatchItem]) -> Result<BatchOutcome, BackendError> {
        let mut seen = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            if item.custom_id.is_empty() {
                return Err(BackendError::config(
                    &format!("items[{i}].custom_id"),
                    "must not be empty",
                ));
            }
            if !seen.insert(item.custom_id.as_str()) {
                return Err(BackendError::config(
                    &format!("items[{i}].custom_id"),
                    format!("`{}` is not unique", item.custom_id),
                ));
            }
        }
        if items.is_empty() {
            return Err(BackendError::config(
                "items",
                "a batch needs at least one item",
            ));
        }
        let lines = self.provider.lines(items)?;
        let input_hash = self.input_hash(&lines);
        let (batch_id, resumed) = match self.load_state()? {
            Some(state)
                if state.input_hash == input_hash && state.provider == self.provider.name() =>
            {
                tracing::info!(batch = %state.batch_id, "resuming batch from state file");
                (state.batch_id, true)
            }
            Some(state) => {
                return Err(BackendError::io(
                    &self.config.state_path,
                    format!(
                        "holds batch `{}` of a different input ({} items, provider {}); finish or delete it first",
                        state.batch_id, state.items, state.provider
                    ),
                ));
            }
            None => {
                let ledger = self.ledger_path(&input_hash);
                let known = match Self::read_state(&ledger)? {
                    Some(s) if s.input_hash == input_hash && s.provider == self.provider.name() => {
                        tracing::info!(batch = %s.batch_id, ledger = %ledger.display(), "resuming batch from the local ledger");
                        Some(s.batch_id)
                    }
                    _ => match self.provider.find_existing(&input_hash).await? {
                        Some(id) => {
                            tracing::info!(batch = %id, "adopting a batch of the same input found at the provider");
                            Some(id)
                        }
                        None => None,
                    },
                };
                let resumed = known.is_some();
                let id = match known {
                    Some(id) => id,
                    None => self.provider.submit(&lines, &input_hash).await?,
                };
                let state = BatchState {
                    provider: self.provider.name().to_owned(),
                    batch_id: id.clone(),
                    input_hash: input_hash.clone(),
                    items: items.len(),
                };
                self.write_state(&ledger, &state)?;
                self.write_state(&self.config.state_path, &state)?;
                if !resumed {
                    tracing::info!(batch = %id, items = items.len(), "batch submitted");
                }
                (id, resumed)
            }
        };
        let ended = match self.wait(&batch_id).await {
            Err(e @ BackendError::Batch { .. }) if !e.to_string().contains(STILL_RUNNING) => {
                // Failed as a whole: forget it, so the next run submits anew.
                for p in [
                    self.ledger_path(&input_hash),
                    self.config.state_path.clone(),
                ] {
                    if let Err(err) = std::fs::remove_file(&p)
                        && err.kind() != std::io::ErrorKind::NotFound
                    {
                        tracing::warn!(path = %p.display(), error = %err, "cannot remove batch record");
                    }
                }
                return Err(e);
            }
            other => other?,
        };
        let fetched = self.provider.fetch(&batch_id, &ended).await?;
        let mut results: BTreeMap<String, Result<GenerateResponse, BatchItemError>> =
            BTreeMap::new();
        for (id, r) in fetched {
            if seen.contains(id.as_str()) {
                results.insert(id, r);
            } else {
                tracing::warn!(batch = %batch_id, custom_id = %id, "result for an unknown custom_id ignored");
            }
        }
        for item in items {
            results.entry(item.custom_id.clone()).or_insert_with(|| {
                Err(BatchItemError {
                    status: None,
                    message: "the batch returned no result for this item".into(),
                })
            });
        }
        Ok(BatchOutcome {
            batch_id,
            resumed,
            results,
        })
    }

    async fn wait(&self, batch_id: &str) -> Result<Value, BackendError> {
        let start = tokio::time::Instant::now();
        let mut failures = 0u32;
        loop {
            match self.provider.poll(batch_id).await {
                Ok(BatchStatus::Ended(v)) => return Ok(v),
                Ok(BatchStatus::Failed(message)) => {
                    return Err(BackendError::Batch {
                        batch: batch_id.to_owned(),
                        message,
                    });
                }
                Ok(BatchStatus::Pending(progress)) => {
                    failures = 0;
                    tracing::debug!(batch = %batch_id, ?progress, "batch pending");
                }
                Err(e) if e.is_retryable() && failures < self.config.max_poll_failures => {
                    failures += 1;
                    tracing::warn!(batch = %batch_id, error = %e, failures, "batch poll failed; will poll again");
                }
                Err(e) => return Err(e.into()),
            }
            if start.elapsed() >= self.config.max_wait {
                return Err(BackendError::Batch {
                    batch: batch_id.to_owned(),
                    message: format!(
                        "{STILL_RUNNING} after {:?}; run again to resume polling",
                        self.config.max_wait
                    ),
                });
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }
}
