//! State shared by every route: configuration, counters, recorded bodies, the fault RNG and the
//! emulated files and batches.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::ServerConfig;
use crate::faults::Fault;

const BODIES_KEPT: usize = 10_000;

/// One stored file of the emulated OpenAI files API.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub(crate) filename: String,
    pub(crate) purpose: String,
    pub(crate) bytes: Vec<u8>,
}

/// One emulated batch (OpenAI or Anthropic).
#[derive(Debug, Clone)]
pub(crate) struct StoredBatch {
    pub(crate) id: String,
    pub(crate) created_at: u64,
    /// Status polls answered so far.
    pub(crate) polls: u32,
    /// OpenAI: input file id; Anthropic: none.
    pub(crate) input_file_id: Option<String>,
    pub(crate) endpoint: String,
    /// Anthropic: the submitted requests.
    pub(crate) anthropic_requests: Option<Vec<serde_json::Value>>,
    /// Set once the batch has been processed.
    pub(crate) output_file_id: Option<String>,
    pub(crate) error_file_id: Option<String>,
    pub(crate) counts: (u64, u64, u64),
    pub(crate) anthropic_results: Option<Vec<u8>>,
    /// OpenAI: the `metadata` given at creation.
    pub(crate) metadata: serde_json::Value,
    /// The final status once processed (`completed`, `expired`, `cancelled`, `failed`).
    pub(crate) final_status: Option<&'static str>,
    /// Polls answered since processing (for the `finalizing` / `cancelling` step).
    pub(crate) polls_after_processing: u32,
    /// Expired and cancelled request counts.
    pub(crate) lapsed: (u64, u64),
}

/// Everything the routes share. Public so extensions (e.g. fine-tuning job emulation) can be
/// added as new route modules over the same state.
#[derive(Debug)]
pub struct SharedState {
    pub(crate) config: ServerConfig,
    pub(crate) addr: SocketAddr,
    pub(crate) requests: AtomicU64,
    pub(crate) faults: AtomicU64,
    pub(crate) answered: AtomicU64,
    pub(crate) per_route: Mutex<HashMap<(String, String), u64>>,
    pub(crate) bodies: Mutex<HashMap<String, VecDeque<serde_json::Value>>>,
    pub(crate) rng: Mutex<ChaCha8Rng>,
    pub(crate) scripted: Mutex<VecDeque<Fault>>,
    pub(crate) files: Mutex<HashMap<String, StoredFile>>,
    pub(crate) batches: Mutex<HashMap<String, StoredBatch>>,
    pub(crate) next_id: AtomicU64,
    pub(crate) credentials: Mutex<Vec<Option<String>>>,
    pub(crate) in_flight: AtomicU64,
    pub(crate) max_in_flight: AtomicU64,
}

impl SharedState {
    pub(crate) fn new(config: ServerConfig, addr: SocketAddr) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        let scripted = config.scripted_faults.iter().cloned().collect();
        Self {
            config,
            addr,
            requests: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            per_route: Mutex::new(HashMap::new()),
            bodies: Mutex::new(HashMap::new()),
            rng: Mutex::new(rng),
            scripted: Mutex::new(scripted),
            files: Mutex::new(HashMap::new()),
            batches: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            credentials: Mutex::new(Vec::new()),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
        }
    }

    /// The configuration the server was started with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A fresh id with the given prefix (`file-1`, `batch_2`, ...).
    pub fn fresh_id(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.next_id.fetch_add(1, Ordering::SeqCst))
    }

    /// Records a request body for [`crate::TestServer::request_bodies`].
    pub fn record_body(&self, path: &str, body: &serde_json::Value) {
        let mut bodies = self.bodies.lock();
        let list = bodies.entry(path.to_owned()).or_default();
        if list.len() == BODIES_KEPT {
            list.pop_front();
        }
        list.push_back(body.clone());
    }

    /// Checks the configured API key against the request headers. Returns the key that was
    /// sent when it is wrong or missing (`Err(None)` when none was sent).
    pub fn check_key(&self, headers: &axum::http::HeaderMap) -> Result<(), Option<String>> {
        let Some(expected) = &self.config.api_key else {
            return Ok(());
        };
        let sent = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
        match sent {
            Some(k) if k == expected => Ok(()),
            other => Err(other.map(str::to_owned)),
        }
    }
}

/// Middleware counting every request, in total and per (method, path).
pub(crate) async fn count_requests(
    State(state): State<std::sync::Arc<SharedState>>,
    req: Request,
    next: Next,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    {
        let key = (req.method().to_string(), req.uri().path().to_owned());
        *state.per_route.lock().entry(key).or_insert(0) += 1;
    }
    let credential = ["authorization", "x-api-key", "api-key"]
        .iter()
        .find_map(|h| req.headers().get(*h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state.credentials.lock().push(credential);
    if let Some(origin) = &state.config.redirect_to {
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        return (
            axum::http::StatusCode::TEMPORARY_REDIRECT,
            [(
                axum::http::header::LOCATION,
                format!("{}{path}", origin.trim_end_matches('/')),
            )],
        )
            .into_response();
    }
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let resp = next.run(req).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    resp
}
