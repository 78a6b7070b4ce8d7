//! Fault injection for generation routes.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;

use crate::state::SharedState;

/// One injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// HTTP 429 with `Retry-After` (seconds, rounded up) and `retry-after-ms`.
    RateLimit,
    /// HTTP 500 with a JSON error body.
    ServerError,
    /// HTTP 503 with a JSON error body.
    Unavailable,
    /// Status 200 headers, then the connection is aborted mid-body.
    ConnectionReset,
    /// Status 200 with the first half of the JSON body only.
    TruncatedJson,
    /// The response is held back for the configured stall time, then sent.
    Stall,
    /// Status 200 with an HTML body and `text/html` content type.
    WrongContentType,
}

impl Fault {
    /// Every fault kind.
    pub const ALL: [Fault; 7] = [
        Fault::RateLimit,
        Fault::ServerError,
        Fault::Unavailable,
        Fault::ConnectionReset,
        Fault::TruncatedJson,
        Fault::Stall,
        Fault::WrongContentType,
    ];
}

/// Per-request probabilities of each fault; the rest of the mass answers normally.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultMix {
    /// `(fault, probability)` pairs; probabilities sum to at most 1.
    pub entries: Vec<(Fault, f64)>,
}

impl FaultMix {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// `total` probability spread evenly over `faults`.
    pub fn uniform(total: f64, faults: &[Fault]) -> Self {
        let each = if faults.is_empty() {
            0.0
        } else {
            total / faults.len() as f64
        };
        Self {
            entries: faults.iter().map(|f| (*f, each)).collect(),
        }
    }

    /// Adds one fault with its probability.
    #[must_use]
    pub fn with(mut self, fault: Fault, probability: f64) -> Self {
        self.entries.push((fault, probability));
        self
    }

    /// Total fault probability.
    pub fn total(&self) -> f64 {
        self.entries.iter().map(|(_, p)| p).sum()
    }
}

impl SharedState {
    /// The fault for the next generation request: a scripted one first, else a draw from the mix.
    pub(crate) fn next_fault(&self) -> Option<Fault> {
        if let Some(f) = self.scripted.lock().pop_front() {
            self.faults.fetch_add(1, Ordering::SeqCst);
            return Some(f);
        }
        if self.config.fault_mix.entries.is_empty() {
            return None;
        }
        let u: f64 = self.rng.lock().random();
        let mut acc = 0.0;
        for (fault, p) in &self.config.fault_mix.entries {
            acc += p;
            if u < acc {
                self.faults.fetch_add(1, Ordering::SeqCst);
                return Some(*fault);
            }
        }
        None
    }

    /// Sleeps for the configured latency (plus seeded jitter).
    pub(crate) async fn delay(&self) {
        let mut d = self.config.latency;
        if !self.config.latency_jitter.is_zero() {
            let u: f64 = self.rng.lock().random();
            d += self.config.latency_jitter.mul_f64(u);
        }
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    /// The response for `fault`, given the status and body a normal answer would have had.
    pub(crate) async fn fault_response(&self, fault: Fault, ok_body: Vec<u8>) -> Response {
        match fault {
            Fault::RateLimit => {
                let ra = self.config.retry_after;
                let secs = ra.as_secs() + u64::from(ra.subsec_nanos() > 0);
                let body = serde_json::json!({"error": {"message": "Rate limit reached (injected)", "type": "rate_limit_error", "code": "rate_limit_exceeded"}});
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [
                        ("retry-after", secs.to_string()),
                        ("retry-after-ms", ra.as_millis().to_string()),
                    ],
                    axum::Json(body),
                )
                    .into_response()
            }
            Fault::ServerError | Fault::Unavailable => {
                let status = if fault == Fault::ServerError {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                let body = serde_json::json!({"error": {"message": "The server had an error (injected)", "type": "server_error"}});
                (status, axum::Json(body)).into_response()
            }
            Fault::ConnectionReset => {
                let half = ok_body[..ok_body.len() / 2].to_vec();
                let stream = futures::stream::iter(vec![
                    Ok::<_, std::io::Error>(bytes::Bytes::from(half)),
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "injected reset",
                    )),
                ]);
                Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from_stream(stream))
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
            }
            Fault::TruncatedJson => {
                let half = ok_body[..ok_body.len() / 2].to_vec();
                ([(header::CONTENT_TYPE, "application/json")], half).into_response()
            }
            Fault::Stall => {
                tokio::time::sleep(self.config.stall).await;
                self.answered.fetch_add(1, Ordering::SeqCst);
                ([(header::CONTENT_TYPE, "application/json")], ok_body).into_response()
            }
            Fault::WrongContentType => (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<html><body>502 Bad Gateway (injected)</body></html>",
            )
                .into_response(),
        }
    }
}
