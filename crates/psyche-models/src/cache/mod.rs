//! A persistent response cache on disk.
//!
//! The key is a SHA-256 of everything that changes an answer and nothing that does not:
//! the model's [`ModelInfo`] (id, backend, weights, and settings such as base URL and
//! `extra_body`), the method, and its arguments — for `generate` the whole
//! [`GenerateRequest`]: messages, `max_tokens`, temperature, `top_p`, seed, `n` (an entry holds
//! samples `0..n`), stop strings and `top_logprobs`. Timeouts, retry and concurrency settings and
//! API keys live outside `Model::info` and requests, so they never reach the key; settings are
//! stored redacted (credential-named fields, URL user-info and credential query parameters
//! become `[redacted]`, the same redaction the backends apply to their `info()`).
//!
//! Layout: `<dir>/<p[..2]>/<p>/<key>.json`, where `p` hashes the model, method and messages, so
//! entries for the same prompt sit together. On a miss, the cache compares the key with those
//! neighbours and logs at debug level which components differ (`args.temperature: cached 0.0,
//! now 1.0`) — the usual reason a rerun does not hit.
//!
//! Writes go through [`psyche_core::write_atomic`] (a temporary file in the same directory,
//! fsynced, then renamed into place), so concurrent writers (tasks or processes) and crashes
//! never leave a half-written entry. An entry that does
//! not parse is reported (`warn`), counted in [`CacheStats::corrupt`], treated as a miss and
//! overwritten.
//!
//! `hidden_states` is forwarded uncached.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use psyche_core::{
    Conversation, GenerateRequest, GenerateResponse, HiddenStates, LogLikelihood, Model,
    ModelError, ModelInfo, OptionProbabilities, OptionQuery, TokenDistribution,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::BackendError;

const FORMAT_VERSION: u32 = 1;

/// Where and how long to cache.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    /// Root directory (created if missing).
    pub dir: PathBuf,
    /// Entries older than this are misses; `None` keeps them forever.
    pub expiry: Option<Duration>,
    /// An extra key component (e.g. an epoch or experiment name) to keep otherwise identical
    /// calls apart.
    pub scope: Option<String>,
}

impl CacheConfig {
    /// Entries under `dir`, kept forever, no scope.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            expiry: None,
            scope: None,
        }
    }
}

/// Counters of a cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Calls answered from disk.
    pub hits: u64,
    /// Calls passed to the inner model.
    pub misses: u64,
    /// Entries that could not be read and were treated as misses.
    pub corrupt: u64,
    /// Entries that could not be written (the call itself still succeeded).
    pub write_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    corrupt: AtomicU64,
    write_errors: AtomicU64,
}

/// Serves repeated calls from disk. Clones share the counters.
#[derive(Debug, Clone)]
pub struct Cache<M> {
    inner: M,
    config: CacheConfig,
    counters: Arc<Counters>,
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Flattens JSON into `path → value` pairs for the miss explanation.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// The components that differ between two keys, as `path: cached X, now Y`.
fn diff(cached: &Value, now: &Value) -> Vec<String> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    flatten("", cached, &mut a);
    flatten("", now, &mut b);
    let mut out = Vec::new();
    for (path, nv) in &b {
        match a.iter().find(|(p, _)| p == path) {
            Some((_, cv)) if cv == nv => {}
            Some((_, cv)) => out.push(format!("{path}: cached {}, now {}", short(cv), short(nv))),
            None => out.push(format!("{path}: absent in cached, now {}", short(nv))),
        }
    }
    for (path, cv) in &a {
        if !b.iter().any(|(p, _)| p == path) {
            out.push(format!("{path}: cached {}, now absent", short(cv)));
        }
    }
    out
}

impl<M: Model> Cache<M> {
    /// Caches `inner` under `config.dir`.
    ///
    /// # Errors
    ///
    /// [`BackendError::Io`] when the directory cannot be created.
    pub fn new(inner: M, config: CacheConfig) -> Result<Self, BackendError> {
        std::fs::create_dir_all(&config.dir).map_err(|e| BackendError::io(&config.dir, e))?;
        Ok(Self {
            inner,
            config,
            counters: Arc::default(),
        })
    }

    /// Hit, miss and error counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            corrupt: self.counters.corrupt.load(Ordering::Relaxed),
            write_errors: self.counters.write_errors.load(Ordering::Relaxed),
        }
    }

    /// The wrapped model.
    pub fn get_ref(&self) -> &M {
        &self.inner
    }

    /// The wrapped model, mutably.
    pub fn get_mut(&mut self) -> &mut M {
        &mut self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> M {
        self.inner
    }

    /// The key components of a call: exactly what the hash covers.
    pub fn key_components(&self, method: &str, args: Value) -> Value {
        let mut info: ModelInfo = self.inner.info();
        info.settings = crate::secret::redact_settings(&info.settings, None);
        json!({
            "version": FORMAT_VERSION,
            "model": info,
            "method": method,
            "scope": self.config.scope,
            "args": args,
        })
    }

    /// The file holding the entry for these key components.
    pub fn entry_path(&self, key: &Value) -> PathBuf {
        let prompt = json!({
            "model": key["model"],
            "method": key["method"],
            "messages": key["args"].get("messages").unwrap_or(&key["args"]),
        });
        let p = sha(&prompt.to_string());
        let k = sha(&key.to_string());
        self.config
            .dir
            .join(&p[..2])
            .join(&p)
            .join(format!("{k}.json"))
    }

    fn read(&self, path: &Path) -> Option<(Value, Value)> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cache entry unreadable; treating as a miss");
                self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        let parsed: Result<Value, _> = serde_json::from_slice(&bytes);
        match parsed {
            Ok(v) if v.get("key").is_some() && v.get("value").is_some() => {
                if let (Some(expiry), Some(created)) = (self.config.expiry, v["created"].as_u64())
                    && now_secs().saturating_sub(created) > expiry.as_secs()
                {
                    tracing::debug!(path = %path.display(), "cache entry expired");
                    return None;
                }
                Some((v["key"].clone(), v["value"].clone()))
            }
            Ok(_) => {
                tracing::warn!(path = %path.display(), "cache entry lacks `key`/`value`; treating as a miss");
                self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "corrupt cache entry; treating as a miss");
                self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn explain_miss(&self, path: &Path, key: &Value) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let Some(dir) = path.parent() else { return };
        let mut best: Option<Vec<String>> = None;
        let mut neighbours = 0;
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p == path || p.extension().is_none_or(|x| x != "json") {
                    continue;
                }
                let Some(v) = std::fs::read(&p)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                else {
                    continue;
                };
                neighbours += 1;
                let d = diff(&v["key"], key);
                if best.as_ref().is_none_or(|b| d.len() < b.len()) {
                    best = Some(d);
                }
            }
        }
        match best {
            Some(d) => tracing::debug!(
                model = self.inner.id(),
                method = key["method"].as_str().unwrap_or(""),
                neighbours,
                differs = %d.join("; "),
                "cache miss: entries exist for the same model and messages, the closest differs in these components"
            ),
            None => tracing::debug!(
                model = self.inner.id(),
                method = key["method"].as_str().unwrap_or(""),
                path = %path.display(),
                "cache miss: no entry for this model and these messages"
            ),
        }
    }

    /// Writes an entry through [`psyche_core::write_atomic`] (temporary file, fsync, rename),
    /// off the async worker threads when a tokio runtime is running.
    async fn write(path: PathBuf, key: &Value, value: &Value) -> Result<(), String> {
        let entry = json!({"key": key, "value": value, "created": now_secs()});
        let bytes = serde_json::to_vec(&entry).map_err(|e| e.to_string())?;
        let write = move || psyche_core::write_atomic(&path, &bytes).map_err(|e| e.to_string());
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt
                .spawn_blocking(write)
                .await
                .map_err(|e| format!("cache writer task failed: {e}"))?,
            Err(_) => write(),
        }
    }

    async fn cached<T, F>(&self, method: &str, args: Value, fut: F) -> Result<T, ModelError>
    where
        T: Serialize + DeserializeOwned,
        F: std::future::Future<Output = Result<T, ModelError>>,
    {
        let key = self.key_components(method, args);
        let path = self.entry_path(&key);
        if let Some((stored_key, value)) = self.read(&path) {
            if stored_key == key {
                match serde_json::from_value::<T>(value) {
                    Ok(v) => {
                        self.counters.hits.fetch_add(1, Ordering::Relaxed);
                        crate::usage::report_cache_hit();
                        return Ok(v);
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cache entry does not match the expected type; treating as a miss");
                        self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                    }
                }
            } else {
                tracing::warn!(path = %path.display(), "cache entry holds a different key (hash collision or tampering); treating as a miss");
                self.counters.corrupt.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            self.explain_miss(&path, &key);
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let result = fut.await?;
        match serde_json::to_value(&result) {
            Ok(value) => {
                if let Err(e) = Self::write(path.clone(), &key, &value).await {
                    self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(path = %path.display(), error = %e, "cannot write cache entry");
                }
            }
            Err(e) => {
                self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "cannot serialise result for the cache");
            }
        }
        Ok(result)
    }
}

#[async_trait]
impl<M: Model> Model for Cache<M> {
    // The steered view is the inner model's, uncached (steering is for in-process models).
    psyche_core::forward_model_methods!(inner: id, capabilities, info, steered);
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, ModelError> {
        let args = serde_json::to_value(request).unwrap_or(Value::Null);
        self.cached("generate", args, self.inner.generate(request))
            .await
    }
    async fn next_token_distribution(
        &self,
        messages: &Conversation,
        top_k: u32,
    ) -> Result<TokenDistribution, ModelError> {
        let args = json!({"messages": messages, "top_k": top_k});
        self.cached(
            "next_token_distribution",
            args,
            self.inner.next_token_distribution(messages, top_k),
        )
        .await
    }
    async fn loglikelihood(
        &self,
        context: &Conversation,
        continuation: &str,
    ) -> Result<LogLikelihood, ModelError> {
        let args = json!({"messages": context, "continuation": continuation});
        self.cached(
            "loglikelihood",
            args,
            self.inner.loglikelihood(context, continuation),
        )
        .await
    }
    async fn hidden_states(&self, messages: &Conversation) -> Result<HiddenStates, ModelError> {
        self.inner.hidden_states(messages).await
    }
    async fn sample_answers(
        &self,
        messages: &Conversation,
        k: u32,
        temperature: f32,
        max_tokens: u32,
        seed: u64,
    ) -> Result<Vec<String>, ModelError> {
        let args = json!({"messages": messages, "k": k, "temperature": temperature, "max_tokens": max_tokens, "seed": seed});
        self.cached(
            "sample_answers",
            args,
            self.inner
                .sample_answers(messages, k, temperature, max_tokens, seed),
        )
        .await
    }
    async fn option_probabilities(
        &self,
        messages: &Conversation,
        query: &OptionQuery,
    ) -> Result<OptionProbabilities, ModelError> {
        let args = json!({"messages": messages, "query": query});
        self.cached(
            "option_probabilities",
            args,
            self.inner.option_probabilities(messages, query),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miss_explanation_names_changed_components() {
        let cached = json!({"model": {"id": "m"}, "args": {"temperature": 0.0, "seed": 1}});
        let now =
            json!({"model": {"id": "m"}, "args": {"temperature": 1.0, "seed": 1, "stop": ["x"]}});
        let mut d = diff(&cached, &now);
        d.sort();
        assert_eq!(
            d,
            vec![
                "args.stop: absent in cached, now [\"x\"]".to_owned(),
                "args.temperature: cached 0.0, now 1.0".to_owned(),
            ]
        );
    }
}
