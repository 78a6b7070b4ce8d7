//! # psyche-test-server
//!
//! A real HTTP server (axum) on `127.0.0.1:0` that speaks the OpenAI and Anthropic wire formats,
//! for the tests of psyche's HTTP backends and of every crate that talks to a model through them.
//!
//! - OpenAI: `/v1/chat/completions`, `/v1/completions` (with `echo` + `logprobs`), `/v1/models`,
//!   `/v1/files` and `/v1/batches` (the Batch API, emulated in memory),
//!   and `/v1/fine_tuning/jobs` (fine-tuning jobs that progress over polls; see
//!   [`FineTuningConfig`]).
//! - Anthropic: `/v1/messages` and `/v1/messages/batches`.
//! - As strict as the services ([`strict`]): out-of-range seeds, sampling parameters reasoning
//!   models and recent Claude models refuse, all with the providers' error shapes; batches
//!   through every documented state, ending as [`BatchEnd`] says; fine-tuning jobs with
//!   `method`, `"auto"`, validation files, paged events and checkpoints.
//! - Test probes: [`TestServer::credentials_seen`], [`TestServer::max_in_flight`], and
//!   [`ServerConfig::redirect_to()`] (a redirector for cross-origin redirect tests).
//! - Configurable latency and fault injection (429 with `Retry-After`, 500, connection reset,
//!   truncated JSON, stalled response, wrong content type), either scripted or drawn from a
//!   seeded fault mix.
//!
//! Answers come from a [`ReplyFn`]: a function from the raw chat-completion request body to the
//! full chat-completion response. The default one ([`default_responder`]) is deterministic: it
//! solves `a + b` style arithmetic in the last user message and echoes anything else
//! (see [`default_answer`]). Anthropic requests are translated to the chat format, answered by the
//! same responder and translated back, so one responder scripts both protocols.
//!
//! ```no_run
//! # async fn demo() {
//! use psyche_test_server::{ServerConfig, TestServer};
//! let server = TestServer::start(ServerConfig::default()).await;
//! let url = server.base_url(); // "http://127.0.0.1:PORT/v1"
//! // ... point a client at `url` ...
//! assert_eq!(server.request_count(), 0);
//! # let _ = url;
//! # }
//! ```
//!
//! The router is split by API family (`openai`, `anthropic`, `batches`), all sharing one
//! [`SharedState`]; a new family adds a module with a `routes()` function and merges it in
//! [`TestServer::start`].
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
// Handlers bail out early with a ready axum `Response` as the error value; boxing it would only
// add noise to a test server.
#![allow(clippy::result_large_err)]

mod anthropic;
mod batches;
mod faults;
mod fine_tuning;
mod openai;
mod responder;
mod state;
pub mod strict;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;

pub use faults::{Fault, FaultMix};
pub use fine_tuning::FineTuningConfig;
pub use openai::completion_token_logprob;
pub use responder::{ReplyFn, answer_tokens, default_answer, default_responder, token_logprob};
pub use state::SharedState;

/// How the server behaves: answers, latency, faults, authentication, batch progress.
#[derive(Clone)]
pub struct ServerConfig {
    /// Maps a chat-completion request body to the full chat-completion response JSON. A response
    /// with a top-level `"error"` object is sent with status 400 (or the integer in its
    /// `"status"` field).
    pub responder: ReplyFn,
    /// Fixed delay before every generation answer.
    pub latency: Duration,
    /// Extra uniformly random delay in `[0, latency_jitter)` (seeded by `seed`).
    pub latency_jitter: Duration,
    /// Faults drawn at random per generation request.
    pub fault_mix: FaultMix,
    /// Faults served first, in order, one per generation request, before the mix applies.
    pub scripted_faults: Vec<Fault>,
    /// How long a [`Fault::Stall`] holds the response back.
    pub stall: Duration,
    /// The `Retry-After` sent with [`Fault::RateLimit`] (also sent as `retry-after-ms`).
    pub retry_after: Duration,
    /// When set, requests must carry this key (`Authorization: Bearer` or `x-api-key`); others
    /// get a 401 whose message quotes the key they sent, as some providers do.
    pub api_key: Option<String>,
    /// Seed of the fault and latency RNG.
    pub seed: u64,
    /// How many status polls a batch answers `in_progress` before it completes.
    pub batch_polls_before_complete: u32,
    /// The model id listed by `/v1/models`.
    pub model_id: String,
    /// How emulated fine-tuning jobs progress and fail (see [`FineTuningConfig`]).
    pub fine_tuning: FineTuningConfig,
    /// How emulated batches (OpenAI and Anthropic) end.
    pub batch_end: BatchEnd,
    /// Claude model-name prefixes that refuse `temperature` outright (see [`strict`]).
    pub no_temperature_models: Vec<String>,
    /// When set, every request is answered `307 Temporary Redirect` to this origin (e.g.
    /// `http://127.0.0.1:PORT`) with the same path and query: a server that sends clients
    /// elsewhere, for redirect tests.
    pub redirect_to: Option<String>,
}

/// How emulated batches end once their in-progress polls are used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BatchEnd {
    /// Every request is processed; OpenAI: `finalizing` for one poll, then `completed`.
    #[default]
    Complete,
    /// The completion window passes after `processed` requests (in input order): OpenAI
    /// status `expired`, the rest as `batch_expired` lines in the error file; Anthropic
    /// `ended` with `expired` results for the rest.
    Expired {
        /// Requests answered before the window closed.
        processed: usize,
    },
    /// The batch is cancelled after `processed` requests: OpenAI `cancelling` for one poll,
    /// then `cancelled`, the rest as `batch_cancelled` lines; Anthropic `canceling`, then
    /// `ended` with `canceled` results for the rest.
    Cancelled {
        /// Requests answered before the cancellation.
        processed: usize,
    },
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("latency", &self.latency)
            .field("latency_jitter", &self.latency_jitter)
            .field("fault_mix", &self.fault_mix)
            .field("scripted_faults", &self.scripted_faults)
            .field("stall", &self.stall)
            .field("retry_after", &self.retry_after)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("seed", &self.seed)
            .field(
                "batch_polls_before_complete",
                &self.batch_polls_before_complete,
            )
            .field("model_id", &self.model_id)
            .field("batch_end", &self.batch_end)
            .field("no_temperature_models", &self.no_temperature_models)
            .field("redirect_to", &self.redirect_to)
            .finish_non_exhaustive()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            responder: default_responder(),
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            fault_mix: FaultMix::none(),
            scripted_faults: Vec::new(),
            stall: Duration::from_secs(30),
            retry_after: Duration::from_millis(10),
            api_key: None,
            seed: 0,
            batch_polls_before_complete: 1,
            model_id: "test-model".to_owned(),
            fine_tuning: FineTuningConfig::default(),
            batch_end: BatchEnd::Complete,
            no_temperature_models: Vec::new(),
            redirect_to: None,
        }
    }
}

impl ServerConfig {
    /// The default configuration answering with `responder`.
    pub fn with_responder(responder: ReplyFn) -> Self {
        Self {
            responder,
            ..Self::default()
        }
    }

    /// Sets a fixed latency per generation request.
    #[must_use]
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Sets the random fault mix.
    #[must_use]
    pub fn fault_mix(mut self, mix: FaultMix) -> Self {
        self.fault_mix = mix;
        self
    }

    /// Serves these faults first, one per generation request.
    #[must_use]
    pub fn scripted_faults(mut self, faults: impl IntoIterator<Item = Fault>) -> Self {
        self.scripted_faults = faults.into_iter().collect();
        self
    }

    /// Requires this API key.
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the RNG seed.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets how long stalled responses are held.
    #[must_use]
    pub fn stall(mut self, stall: Duration) -> Self {
        self.stall = stall;
        self
    }

    /// Sets the `Retry-After` of rate-limit faults.
    #[must_use]
    pub fn retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Sets how many polls a batch stays `in_progress`.
    #[must_use]
    pub fn batch_polls_before_complete(mut self, polls: u32) -> Self {
        self.batch_polls_before_complete = polls;
        self
    }

    /// Sets how emulated batches end.
    #[must_use]
    pub fn batch_end(mut self, end: BatchEnd) -> Self {
        self.batch_end = end;
        self
    }

    /// Answers every request with a 307 redirect to `origin` (same path and query).
    #[must_use]
    pub fn redirect_to(mut self, origin: impl Into<String>) -> Self {
        self.redirect_to = Some(origin.into());
        self
    }

    /// Sets how emulated fine-tuning jobs behave.
    #[must_use]
    pub fn fine_tuning(mut self, config: FineTuningConfig) -> Self {
        self.fine_tuning = config;
        self
    }
}

/// A running server. Dropping it shuts the server down.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<SharedState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Binds `127.0.0.1:0` and serves in the background on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// When no local port can be bound (a test-environment failure).
    pub async fn start(config: ServerConfig) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("psyche-test-server: cannot bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("psyche-test-server: bound socket has no address");
        let fine_tuning = config.fine_tuning.clone();
        let state = Arc::new(SharedState::new(config, addr));
        let app = Router::new()
            .merge(openai::routes())
            .merge(anthropic::routes())
            .merge(batches::routes())
            .merge(fine_tuning::routes(fine_tuning))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                state::count_requests,
            ))
            .with_state(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("psyche-test-server stopped: {e}");
            }
        });
        TestServer {
            addr,
            state,
            shutdown: Some(tx),
            task,
        }
    }

    /// `http://127.0.0.1:PORT/v1`: the base URL for OpenAI- and Anthropic-style clients.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Number of HTTP requests received so far (all routes, including failed ones).
    pub fn request_count(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Number of requests received whose method and path are `method` and start with
    /// `path_prefix` (e.g. `("POST", "/v1/batches")`).
    pub fn count_for(&self, method: &str, path_prefix: &str) -> u64 {
        self.state
            .per_route
            .lock()
            .iter()
            .filter(|((m, p), _)| m == method && p.starts_with(path_prefix))
            .map(|(_, n)| *n)
            .sum()
    }

    /// Number of faults injected so far.
    pub fn faults_injected(&self) -> u64 {
        self.state.faults.load(Ordering::SeqCst)
    }

    /// Number of generation requests answered successfully (status 200, full body) so far.
    pub fn answered(&self) -> u64 {
        self.state.answered.load(Ordering::SeqCst)
    }

    /// The credential each request carried (`Authorization` value or `x-api-key`, `None` when
    /// neither), in arrival order, all routes.
    pub fn credentials_seen(&self) -> Vec<Option<String>> {
        self.state.credentials.lock().clone()
    }

    /// The most requests that were in flight at once (all routes).
    pub fn max_in_flight(&self) -> u64 {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// The JSON bodies of the requests received on `path` (e.g. `"/v1/chat/completions"`), in
    /// arrival order (the last 10,000 per path are kept).
    pub fn request_bodies(&self, path: &str) -> Vec<serde_json::Value> {
        self.state
            .bodies
            .lock()
            .get(path)
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The shared state, for extensions and white-box tests.
    pub fn state(&self) -> &Arc<SharedState> {
        &self.state
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}
