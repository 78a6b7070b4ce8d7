//! The shared HTTP layer: one pooled reqwest client per backend, JSON in and out, and the
//! mapping of every transport outcome onto [`ModelError`].
//!
//! Public so that other psyche crates speaking a provider's REST API (the OpenAI fine-tuning
//! driver of `psyche-finetune`) reuse one client, one error mapping, one `Retry-After` parser
//! and one redaction instead of their own copies. Wrap calls in
//! [`RetryPolicy::run`](crate::RetryPolicy::run) to retry them like [`Retry`](crate::Retry)
//! does.
//!
//! | outcome | error |
//! |---|---|
//! | non-2xx status | `Http { status, endpoint, message, retry_after }` with the server's message (key redacted) |
//! | timeout | `Timeout` |
//! | connect failure, reset, body cut off | `Connection` |
//! | 2xx that is not JSON (wrong content type, truncated) | `InvalidResponse` |
//!
//! Redirects (up to 10) are followed by [`HttpClient::send`] itself: to another origin —
//! another scheme, host *or port* — the request goes without its credential headers
//! ([`CREDENTIAL_HEADERS`]: `authorization`, `x-api-key`, `api-key`, `proxy-authorization`),
//! so a key is only ever sent to the origin it was configured for.

use std::time::Duration;

use psyche_core::ModelError;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::BackendError;
use crate::secret::ApiKey;

/// How a backend authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `x-api-key: <key>`.
    XApiKey,
}

/// A pooled client with fixed headers (authentication marked sensitive, extra headers). Cheap
/// to clone; clones share the connection pool. `Debug` never shows the key.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    headers: HeaderMap,
    key: Option<ApiKey>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Builds the client and the fixed headers.
pub(crate) fn build(
    key: Option<ApiKey>,
    auth: AuthStyle,
    extra_headers: &[(String, String)],
    timeout: Duration,
    connect_timeout: Duration,
) -> Result<HttpClient, BackendError> {
    let mut headers = HeaderMap::new();
    if let Some(k) = &key {
        let (name, value) = match auth {
            AuthStyle::Bearer => ("authorization", format!("Bearer {}", k.expose())),
            AuthStyle::XApiKey => ("x-api-key", k.expose().to_owned()),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            BackendError::config(
                "api_key",
                "the key contains characters not allowed in a header",
            )
        })?;
        value.set_sensitive(true);
        headers.insert(HeaderName::from_static(name), value);
    }
    for (name, value) in extra_headers {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            BackendError::config("headers", format!("`{name}` is not a valid header name"))
        })?;
        let v = HeaderValue::from_str(value).map_err(|_| {
            BackendError::config(
                "headers",
                format!("the value of `{name}` is not a valid header value"),
            )
        })?;
        headers.insert(n, v);
    }
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        // Redirects are followed by `send`, which drops credentials on a change of origin.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| BackendError::config("http", describe(&e)))?;
    Ok(HttpClient {
        client,
        headers,
        key,
    })
}

/// A reqwest error without its URL, with its source chain.
fn describe(e: &reqwest::Error) -> String {
    let mut out = String::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        let s = s.split(" for url (").next().unwrap_or(&s).to_owned();
        if !out.contains(&s) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&s);
        }
        cur = err.source();
    }
    out
}

fn transport_error(e: reqwest::Error, timeout: Duration, endpoint: &str) -> ModelError {
    if e.is_timeout() {
        ModelError::Timeout(timeout)
    } else {
        ModelError::Connection(format!("{endpoint}: {}", describe(&e.without_url())))
    }
}

/// The server's requested wait: `retry-after-ms` (milliseconds, OpenAI) when present and valid,
/// else `retry-after` (seconds; HTTP dates are not supported and read as absent).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    get("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Pulls a message out of an OpenAI (`{"error": {"message", "code"}}`) or Anthropic
/// (`{"type": "error", "error": {"type", "message"}}`) error body, else the raw text (at most
/// 500 characters).
pub fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let err = &v["error"];
        if let Some(m) = err["message"].as_str().or_else(|| err.as_str()) {
            let code = err["code"].as_str().or_else(|| err["type"].as_str());
            return match code {
                Some(c) => format!("{m} ({c})"),
                None => m.to_owned(),
            };
        }
    }
    let t = body.trim();
    if t.chars().count() > 500 {
        format!("{}…", t.chars().take(500).collect::<String>())
    } else {
        t.to_owned()
    }
}

impl HttpClient {
    /// A client sending `key` as `auth` plus `extra_headers` on every request, with a
    /// per-request `timeout` and a `connect_timeout`.
    ///
    /// # Errors
    ///
    /// [`BackendError::Config`] naming `api_key` or `headers` when a value cannot be a header,
    /// or `http` when the TLS backend cannot start.
    pub fn new(
        key: Option<ApiKey>,
        auth: AuthStyle,
        extra_headers: &[(String, String)],
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Self, BackendError> {
        build(key, auth, extra_headers, timeout, connect_timeout)
    }

    /// The key's text (and masked copies of it) in `s` replaced by `[redacted]`; `s` unchanged
    /// without a key.
    pub fn redact(&self, s: &str) -> String {
        self.key
            .as_ref()
            .map_or_else(|| s.to_owned(), |k| k.redact(s))
    }

    pub(crate) fn key(&self) -> Option<&ApiKey> {
        self.key.as_ref()
    }

    /// The underlying client, for building requests to pass to [`send`](Self::send).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends a request (adding the fixed headers) and returns the headers and raw body of a 2xx
    /// answer. `endpoint` is the path named in errors (never the full URL); `timeout` is the one
    /// reported when the request timed out.
    ///
    /// # Errors
    ///
    /// See the [module table](self): `Http` (server message, key redacted, `retry_after`),
    /// `Timeout`, `Connection`.
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<(HeaderMap, bytes::Bytes), ModelError> {
        let mut request = req
            .headers(self.headers.clone())
            .build()
            .map_err(|e| self.redact_error(transport_error(e, timeout, endpoint)))?;
        let mut hops = 0;
        let resp = loop {
            let next = request.try_clone();
            let resp = self
                .client
                .execute(request)
                .await
                .map_err(|e| self.redact_error(transport_error(e, timeout, endpoint)))?;
            match (redirect_target(&resp), next) {
                (Some(url), Some(mut next)) if hops < MAX_REDIRECTS => {
                    hops += 1;
                    follow(&mut next, resp.status(), url);
                    request = next;
                }
                _ => break resp,
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.redact_error(transport_error(e, timeout, endpoint)))?;
        if !status.is_success() {
            let message = self.redact(&error_message(&String::from_utf8_lossy(&body)));
            return Err(ModelError::Http {
                status: status.as_u16(),
                endpoint: endpoint.to_owned(),
                message,
                retry_after: retry_after(&headers),
            });
        }
        Ok((headers, body))
    }

    /// POSTs JSON and parses a JSON answer.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), plus `InvalidResponse` when a 2xx answer is not JSON.
    pub async fn post_json(
        &self,
        url: &str,
        endpoint: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, ModelError> {
        let req = self.client.post(url).json(body);
        let (headers, bytes) = self.send(req, endpoint, timeout).await?;
        parse_json(&headers, &bytes, endpoint)
    }

    /// GETs and parses a JSON answer.
    ///
    /// # Errors
    ///
    /// As [`post_json`](Self::post_json).
    pub async fn get_json(
        &self,
        url: &str,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<Value, ModelError> {
        let (headers, bytes) = self.send(self.client.get(url), endpoint, timeout).await?;
        parse_json(&headers, &bytes, endpoint)
    }

    /// GETs raw bytes.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub async fn get_bytes(
        &self,
        url: &str,
        endpoint: &str,
        timeout: Duration,
    ) -> Result<bytes::Bytes, ModelError> {
        Ok(self.send(self.client.get(url), endpoint, timeout).await?.1)
    }

    /// POSTs a multipart form and parses a JSON answer.
    ///
    /// # Errors
    ///
    /// As [`post_json`](Self::post_json).
    pub async fn post_multipart(
        &self,
        url: &str,
        endpoint: &str,
        form: reqwest::multipart::Form,
        timeout: Duration,
    ) -> Result<Value, ModelError> {
        let req = self.client.post(url).multipart(form);
        let (headers, bytes) = self.send(req, endpoint, timeout).await?;
        parse_json(&headers, &bytes, endpoint)
    }

    /// Uploads a JSONL file the OpenAI way (`POST /files`, multipart with `purpose` and `file`)
    /// and returns the new file's `id`.
    ///
    /// # Errors
    ///
    /// As [`post_json`](Self::post_json), plus `InvalidResponse` when the answer has no `id`.
    pub async fn upload_jsonl(
        &self,
        url: &str,
        endpoint: &str,
        purpose: &str,
        file_name: &str,
        jsonl: Vec<u8>,
        timeout: Duration,
    ) -> Result<String, ModelError> {
        let part = reqwest::multipart::Part::bytes(jsonl)
            .file_name(file_name.to_owned())
            .mime_str("application/jsonl")
            .map_err(|e| ModelError::InvalidRequest(e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .text("purpose", purpose.to_owned())
            .part("file", part);
        let answer = self.post_multipart(url, endpoint, form, timeout).await?;
        answer
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                ModelError::InvalidResponse(format!("{endpoint}: no `id` in the answer"))
            })
    }

    fn redact_error(&self, e: ModelError) -> ModelError {
        match e {
            ModelError::Connection(m) => ModelError::Connection(self.redact(&m)),
            other => other,
        }
    }
}

/// Redirects followed per request.
const MAX_REDIRECTS: usize = 10;

/// Headers that carry a provider credential: never sent to another origin.
pub const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "x-api-key",
    "api-key",
    "proxy-authorization",
];

/// The absolute target of a redirect answer, if `resp` is one.
fn redirect_target(resp: &reqwest::Response) -> Option<url::Url> {
    if !resp.status().is_redirection() {
        return None;
    }
    let location = resp.headers().get("location")?.to_str().ok()?;
    resp.url().join(location).ok()
}

/// Turns `next` (a copy of the request just answered with `status`) into the request to `to`:
/// 303, and 301/302 after a POST, become a body-less GET (as browsers and reqwest do); a
/// change of origin (scheme, host or port) drops every [`CREDENTIAL_HEADERS`] entry.
fn follow(next: &mut reqwest::Request, status: reqwest::StatusCode, to: url::Url) {
    use reqwest::{Method, StatusCode};
    let to_get = status == StatusCode::SEE_OTHER
        || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
            && next.method() == Method::POST);
    if to_get {
        *next.method_mut() = Method::GET;
        *next.body_mut() = None;
        for h in ["content-type", "content-length", "transfer-encoding"] {
            next.headers_mut().remove(h);
        }
    }
    if next.url().origin() != to.origin() {
        for h in CREDENTIAL_HEADERS {
            next.headers_mut().remove(h);
        }
        tracing::debug!(to = %to.origin().ascii_serialization(), "redirect to another origin: credentials dropped");
    }
    *next.url_mut() = to;
}

fn parse_json(headers: &HeaderMap, bytes: &[u8], endpoint: &str) -> Result<Value, ModelError> {
    let ctype = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ctype.is_empty() && !ctype.contains("json") {
        return Err(ModelError::InvalidResponse(format!(
            "{endpoint}: expected a JSON answer, got content type `{ctype}`"
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ModelError::InvalidResponse(format!(
            "{endpoint}: answer is not valid JSON ({} bytes): {e}",
            bytes.len()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_prefers_milliseconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
    }

    #[test]
    fn error_messages_of_both_providers() {
        assert_eq!(
            error_message(r#"{"error":{"message":"bad","code":"x"}}"#),
            "bad (x)"
        );
        assert_eq!(
            error_message(
                r#"{"type":"error","error":{"type":"not_found_error","message":"nope"}}"#
            ),
            "nope (not_found_error)"
        );
        assert_eq!(error_message("plain"), "plain");
    }
}
