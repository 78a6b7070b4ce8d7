//! The OpenAI fine-tuning driver against a real HTTP server on 127.0.0.1 that emulates the
//! files and fine-tuning jobs endpoints (jobs progress over polls; polls use tiny intervals).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use psyche_core::{
    ChatMessage, Conversation, FineTuneConfig, FineTuneError, FineTuner, GenerateRequest,
};
use psyche_finetune::cost::{CostGuard, TrainingPriceTable};
use psyche_finetune::dataset::ValidationOptions;
use psyche_finetune::openai::{JobEvent, OpenAiFineTuner, OpenAiFineTunerConfig, PollSchedule};
use psyche_models::ApiKey;
use psyche_runner::training::{Resumable, TrainingJob, train_runs};
use psyche_test_server::{ServerConfig, TestServer};
use support::{FtConfig, FtServer};

fn data(n: usize) -> Vec<Conversation> {
    (0..n)
        .map(|i| {
            Conversation::user(format!("Pick A or B ({i})"))
                .with(ChatMessage::assistant(if i % 2 == 0 { "A" } else { "B" }))
        })
        .collect()
}

fn config(base_url: &str, state: &std::path::Path) -> OpenAiFineTunerConfig {
    OpenAiFineTunerConfig::new(base_url, state)
        .poll(PollSchedule::fixed(Duration::from_millis(5)))
        .cost(CostGuard::new(TrainingPriceTable::openai_defaults()).confirmed(true))
}

fn ft_config(seed: u64) -> FineTuneConfig {
    let mut c = FineTuneConfig::new("gpt-4o-mini-2024-07-18", seed);
    c.epochs = Some(3);
    c.batch_size = Some(2);
    c.learning_rate_multiplier = Some(2.0);
    c.suffix = Some("risk".into());
    c
}

#[tokio::test]
async fn a_job_runs_to_completion_and_is_not_relaunched() {
    let server = FtServer::start(FtConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let events: Arc<Mutex<Vec<JobEvent>>> = Arc::default();
    let sink = events.clone();
    let tuner = OpenAiFineTuner::new(config(&server.base_url, dir.path()).progress(Arc::new(
        move |e: &JobEvent| sink.lock().unwrap().push(e.clone()),
    )))
    .unwrap();
    let trained = tuner.fine_tune(&data(12), &ft_config(7)).await.unwrap();
    assert!(
        trained
            .model_id
            .starts_with("ft:gpt-4o-mini-2024-07-18:psyche-test:risk:")
    );
    assert_eq!(trained.engine, "openai");
    assert_eq!(trained.details["trained_tokens"], 1234);
    assert_eq!(trained.config, ft_config(7));

    // The job was created with the requested hyperparameters.
    let bodies = server.job_bodies().await;
    assert_eq!(bodies.len(), 1);
    let b = &bodies[0];
    assert_eq!(b["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(b["seed"], 7);
    assert_eq!(b["suffix"], "risk");
    let h = &b["method"]["supervised"]["hyperparameters"];
    assert_eq!(b["method"]["type"], "supervised");
    assert_eq!(h["n_epochs"], 3);
    assert_eq!(h["batch_size"], 2);
    assert_eq!(h["learning_rate_multiplier"], 2.0);
    assert!(
        b.get("hyperparameters").is_none(),
        "deprecated form sent: {b}"
    );

    // Every event arrived once, oldest first.
    let msgs: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.message.clone())
        .collect();
    assert_eq!(
        msgs.first().map(String::as_str),
        Some("Job created; validating the training file")
    );
    assert_eq!(
        msgs.last().map(String::as_str),
        Some("Fine-tuning job completed")
    );
    let mut unique = msgs.clone();
    unique.dedup();
    assert_eq!(unique.len(), msgs.len(), "{msgs:?}");
    assert!(msgs.iter().any(|m| m == "Step 2/2"));

    // Same data and config again: answered from the state file, no new upload or job.
    let again = tuner.fine_tune(&data(12), &ft_config(7)).await.unwrap();
    assert_eq!(again.model_id, trained.model_id);
    assert_eq!(server.count("POST /v1/fine_tuning/jobs").await, 1);
    assert_eq!(server.count("POST /v1/files").await, 1);
    // A different seed is a different job.
    let other = tuner.fine_tune(&data(12), &ft_config(8)).await.unwrap();
    assert_ne!(other.model_id, trained.model_id);
    assert_eq!(server.count("POST /v1/fine_tuning/jobs").await, 2);
}

#[tokio::test]
async fn a_client_dropped_mid_poll_resumes_the_same_job() {
    let server = FtServer::start(FtConfig {
        running_polls: 40,
        ..FtConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let tuner = OpenAiFineTuner::new(config(&server.base_url, dir.path())).unwrap();
    let task = tokio::spawn(async move { tuner.fine_tune(&data(12), &ft_config(1)).await });
    while server.count("GET /v1/fine_tuning/jobs/{id}").await < 5 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let polls_before = server.count("GET /v1/fine_tuning/jobs/{id}").await;
    assert_eq!(server.job_statuses().await, ["running"]);

    // A new process (new driver, same state directory) waits on the same job.
    let tuner = OpenAiFineTuner::new(config(&server.base_url, dir.path())).unwrap();
    let state = tuner.state(&data(12), &ft_config(1)).unwrap().unwrap();
    assert!(state.job_id.is_some());
    let trained = tuner.fine_tune(&data(12), &ft_config(1)).await.unwrap();
    assert!(trained.model_id.starts_with("ft:"));
    assert_eq!(server.count("POST /v1/fine_tuning/jobs").await, 1);
    assert_eq!(server.count("POST /v1/files").await, 1);
    assert!(server.count("GET /v1/fine_tuning/jobs/{id}").await > polls_before);
    assert_eq!(server.job_statuses().await, ["succeeded"]);
}

#[tokio::test]
async fn a_lost_state_file_adopts_the_running_job_instead_of_paying_twice() {
    let server = FtServer::start(FtConfig {
        running_polls: 40,
        ..FtConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let tuner = OpenAiFineTuner::new(config(&server.base_url, dir.path())).unwrap();
    let task = tokio::spawn(async move { tuner.fine_tune(&data(12), &ft_config(2)).await });
    while server.count("GET /v1/fine_tuning/jobs/{id}").await < 2 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    task.abort();
    let _ = task.await;
    // Simulate a crash between "job created" and "state written".
    for f in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let tuner = OpenAiFineTuner::new(config(&server.base_url, dir.path())).unwrap();
    tuner.fine_tune(&data(12), &ft_config(2)).await.unwrap();
    assert_eq!(server.count("POST /v1/fine_tuning/jobs").await, 1);
    // One metadata lookup before the first creation, one that found the running job.
    assert_eq!(server.count("GET /v1/fine_tuning/jobs").await, 2);
    // Adopted before uploading: the file is not sent again either.
    assert_eq!(server.count("POST /v1/files").await, 1);
}

#[tokio::test]
async fn a_failed_job_reports_the_providers_reason_and_can_be_relaunched() {
    let server = FtServer::start(FtConfig {
        failing_suffix: Some("risk".into()),
        ..FtConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let tuner = OpenAiFineTuner::new(config(&server.base_url, dir.path())).unwrap();
    let err = tuner.fine_tune(&data(12), &ft_config(3)).await.unwrap_err();
    match &err {
        FineTuneError::JobFailed { job, message } => {
            assert!(job.starts_with("ftjob-"));
            assert!(message.contains("training_error"), "{message}");
            assert!(
                message.contains("internal error during training"),
                "{message}"
            );
        }
        other => panic!("expected JobFailed, got {other:?}"),
    }
    let state = tuner.state(&data(12), &ft_config(3)).unwrap().unwrap();
    assert_eq!(state.job_id, None);
    assert_eq!(state.failed_jobs.len(), 1);
    // The next call launches a new job (reusing the uploaded file).
    assert!(tuner.fine_tune(&data(12), &ft_config(3)).await.is_err());
    assert_eq!(server.count("POST /v1/fine_tuning/jobs").await, 2);
    assert_eq!(server.count("POST /v1/files").await, 1);
}

#[tokio::test]
async fn an_invalid_training_file_reported_by_the_server_is_a_clear_error() {
    let server = FtServer::start(FtConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // Local policy allows 3 examples; the server requires 10.
    let tuner = OpenAiFineTuner::new(config(&server.base_url, dir.path()).validation(
        ValidationOptions {
            min_examples: 1,
            ..ValidationOptions::default()
        },
    ))
    .unwrap();
    let err = tuner.fine_tune(&data(3), &ft_config(0)).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, FineTuneError::JobFailed { .. }), "{err:?}");
    assert!(text.contains("invalid_training_file"), "{text}");
    assert!(
        text.contains("has 3 example(s); at least 10 are required"),
        "{text}"
    );
    assert!(text.contains("parameter `training_file`"), "{text}");
}

#[tokio::test]
async fn bad_data_and_bad_config_are_stopped_before_any_request() {
    let server = FtServer::start(FtConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let tuner = OpenAiFineTuner::new(config(&server.base_url, dir.path())).unwrap();
    let mut bad = data(12);
    bad[4] = Conversation::user("q").with(ChatMessage::assistant(" "));
    let err = tuner.fine_tune(&bad, &ft_config(0)).await.unwrap_err();
    assert!(matches!(err, FineTuneError::Data(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("training data:5: error in field `messages[1].content`"),
        "{err}"
    );
    let mut cfg = ft_config(0);
    cfg.learning_rate = Some(1e-5);
    let err = tuner.fine_tune(&data(12), &cfg).await.unwrap_err();
    assert!(err.to_string().contains("field `learning_rate`"), "{err}");
    let mut cfg = ft_config(0);
    cfg.epochs = Some(0);
    assert!(
        tuner
            .fine_tune(&data(12), &cfg)
            .await
            .unwrap_err()
            .to_string()
            .contains("`epochs`")
    );
    // Unconfirmed cost: nothing launched either.
    let unconfirmed = OpenAiFineTuner::new(
        config(&server.base_url, dir.path())
            .cost(CostGuard::new(TrainingPriceTable::openai_defaults())),
    )
    .unwrap();
    let err = unconfirmed
        .fine_tune(&data(12), &ft_config(0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("explicit confirmation"), "{err}");
    assert_eq!(server.count("POST /v1/files").await, 0);
    assert_eq!(server.count("POST /v1/fine_tuning/jobs").await, 0);
}

#[tokio::test]
async fn the_api_key_never_reaches_errors_or_debug_output() {
    let server = FtServer::start(FtConfig {
        api_key: Some("sk-right-key-000000".into()),
        ..FtConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let secret = "sk-wrong-secret-123456789";
    let tuner =
        OpenAiFineTuner::new(config(&server.base_url, dir.path()).api_key(ApiKey::new(secret)))
            .unwrap();
    let err = tuner.fine_tune(&data(12), &ft_config(0)).await.unwrap_err();
    let shown = format!("{err} {err:?} {tuner:?}");
    assert!(shown.contains("401"), "{shown}");
    assert!(!shown.contains("sk-wrong"), "{shown}");
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(!text.contains("sk-wrong"));
    }
    // The right key works.
    let ok = OpenAiFineTuner::new(
        config(&server.base_url, dir.path()).api_key(ApiKey::new("sk-right-key-000000")),
    )
    .unwrap();
    ok.fine_tune(&data(12), &ft_config(0)).await.unwrap();
}

#[tokio::test]
async fn a_cancelled_job_ends_the_wait_with_an_error() {
    let server = FtServer::start(FtConfig {
        running_polls: 1000,
        ..FtConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let tuner = Arc::new(OpenAiFineTuner::new(config(&server.base_url, dir.path())).unwrap());
    let t = tuner.clone();
    let task = tokio::spawn(async move { t.fine_tune(&data(12), &ft_config(5)).await });
    let job = loop {
        if let Some(id) = tuner
            .state(&data(12), &ft_config(5))
            .unwrap()
            .and_then(|s| s.job_id)
        {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    tuner.cancel(&job).await.unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
}

#[tokio::test]
async fn max_wait_gives_up_without_cancelling_and_a_later_call_resumes() {
    let server = FtServer::start(FtConfig {
        running_polls: 30,
        ..FtConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let impatient = OpenAiFineTuner::new(
        config(&server.base_url, dir.path()).max_wait(Duration::from_millis(20)),
    )
    .unwrap();
    let err = impatient
        .fine_tune(&data(12), &ft_config(0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("call again to resume"), "{err}");
    assert_ne!(server.job_statuses().await, ["cancelled"]);
    let patient = OpenAiFineTuner::new(config(&server.base_url, dir.path())).unwrap();
    patient.fine_tune(&data(12), &ft_config(0)).await.unwrap();
    assert_eq!(server.count("POST /v1/fine_tuning/jobs").await, 1);
}

#[tokio::test]
async fn three_seed_openai_run_launches_three_jobs_once_and_loads_models() {
    let server = FtServer::start(FtConfig::default()).await;
    let chat = TestServer::start(ServerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let tuner = Resumable::new(
        OpenAiFineTuner::new(config(&server.base_url, &dir.path().join("state"))).unwrap(),
        dir.path().join("ledger"),
    );
    let jobs: Vec<TrainingJob> = (0..3)
        .map(|seed| TrainingJob::new("risk", seed, data(12), ft_config(0)))
        .collect();
    let models: Vec<_> = train_runs(&tuner, &jobs, 3)
        .await
        .unwrap()
        .into_iter()
        .map(|run| run.trained)
        .collect();
    assert_eq!(models.len(), 3);
    let mut ids: Vec<&str> = models.iter().map(|m| m.model_id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    assert_eq!(server.count("POST /v1/fine_tuning/jobs").await, 3);
    // Rerun: no request at all.
    let before = server.count("GET /v1/fine_tuning/jobs/{id}").await;
    let again = train_runs(&tuner, &jobs, 3).await.unwrap();
    assert_eq!(again[1].trained.model_id, models[1].model_id);
    assert_eq!(server.count("POST /v1/fine_tuning/jobs").await, 3);
    assert_eq!(server.count("GET /v1/fine_tuning/jobs/{id}").await, before);

    // The fine-tuned model answers as a psyche Model through the OpenAI-compatible backend.
    let mut trained = models[0].clone();
    trained
        .details
        .insert("base_url".into(), chat.base_url().into());
    let model = tuner.load(&trained).await.unwrap();
    assert_eq!(model.id(), trained.model_id);
    let resp = model
        .generate(&GenerateRequest::new(Conversation::user("2 + 3")).max_tokens(8))
        .await
        .unwrap();
    assert!(!resp.choices.is_empty());
    let sent = chat.request_bodies("/v1/chat/completions");
    assert_eq!(sent[0]["model"], trained.model_id.as_str());
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_servers_retry_after_ms() {
    // Every fine-tuning route answers 429 twice first, asking for 400 ms (`retry-after-ms: 400`,
    // `retry-after: 1`). The driver's own backoff is 1 ms, so only the header explains a wait.
    let retry_after = Duration::from_millis(400);
    let server = FtServer::start(FtConfig {
        rate_limited_requests: 2,
        retry_after,
        ..FtConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let fast_backoff = psyche_models::RetryConfig {
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
        ..psyche_models::RetryConfig::default()
    };
    let tuner =
        OpenAiFineTuner::new(config(&server.base_url, dir.path()).retry(fast_backoff)).unwrap();
    let started = std::time::Instant::now();
    let trained = tuner.fine_tune(&data(12), &ft_config(4)).await.unwrap();
    let elapsed = started.elapsed();
    assert!(trained.model_id.starts_with("ft:"));
    assert_eq!(server.server.faults_injected(), 2);
    // Both 429s were waited out for at least `retry-after-ms` each ...
    assert!(elapsed >= retry_after * 2, "{elapsed:?}");
    // ... and not for the whole-second `retry-after` (2 s for two): milliseconds win.
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    // The 429s hit the job lookup before creation: one job, one upload.
    assert_eq!(server.count("POST /v1/fine_tuning/jobs").await, 1);
    assert_eq!(server.count("POST /v1/files").await, 1);

    // Without retries the 429 surfaces with its status and the server's requested wait.
    let server = FtServer::start(FtConfig {
        rate_limited_requests: 1,
        retry_after,
        ..FtConfig::default()
    })
    .await;
    let no_retry = psyche_models::RetryConfig {
        max_retries: 0,
        ..psyche_models::RetryConfig::default()
    };
    let tuner = OpenAiFineTuner::new(config(&server.base_url, dir.path()).retry(no_retry)).unwrap();
    let err = tuner.fine_tune(&data(12), &ft_config(5)).await.unwrap_err();
    match &err {
        FineTuneError::Model(psyche_core::ModelError::Http {
            status,
            retry_after: ra,
            ..
        }) => {
            assert_eq!(*status, 429);
            assert_eq!(*ra, Some(retry_after));
        }
        other => panic!("expected the 429, got {other:?}"),
    }
}

/// Issue 29, defect 4: the defaults are OpenAI's ("auto"), sent in the `method` form.
#[tokio::test]
async fn defaults_are_auto_in_the_method_form() {
    let server = FtServer::start(FtConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let tuner = OpenAiFineTuner::new(config(&server.base_url, dir.path())).unwrap();
    let cfg = FineTuneConfig::new("gpt-4o-mini-2024-07-18", 3);
    let trained = tuner.fine_tune(&data(12), &cfg).await.unwrap();
    let b = &server.job_bodies().await[0];
    assert_eq!(b["method"]["type"], "supervised", "{b}");
    let h = &b["method"]["supervised"]["hyperparameters"];
    for f in ["n_epochs", "batch_size", "learning_rate_multiplier"] {
        assert_eq!(h[f], "auto", "{f} in {b}");
    }
    assert!(b.get("hyperparameters").is_none(), "{b}");
    // What the provider resolved is recorded beside the job.
    assert_eq!(trained.details["hyperparameters"]["n_epochs"], "auto");
}

/// Issue 29, defect 4: validation data goes up as `validation_file`.
#[tokio::test]
async fn validation_data_is_uploaded_and_named_in_the_job() {
    let server = FtServer::start(FtConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let tuner = OpenAiFineTuner::new(config(&server.base_url, dir.path())).unwrap();
    let trained = tuner
        .fine_tune_with_validation(&data(12), &data(10)[5..], &ft_config(1))
        .await
        .unwrap();
    assert_eq!(server.count("POST /v1/files").await, 2);
    let b = &server.job_bodies().await[0];
    let v = b["validation_file"].as_str().expect("validation_file sent");
    assert_ne!(Some(v), b["training_file"].as_str());
    assert_eq!(trained.details["validation_file"], v);
    // Bad validation data fails locally, naming the data set, before anything is sent.
    let bad = vec![Conversation::user("no answer")];
    let err = tuner
        .fine_tune_with_validation(&data(12), &bad, &ft_config(2))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("validation data"), "{err}");
    assert_eq!(server.count("POST /v1/fine_tuning/jobs").await, 1);
}

/// Issue 29, defect 4: events arriving while nobody watched are all forwarded (every page),
/// and checkpoints are listed across pages.
#[tokio::test]
async fn all_event_pages_are_read_and_checkpoints_listed() {
    let server = FtServer::start(FtConfig {
        running_polls: 150,
        ..FtConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let events: Arc<Mutex<Vec<JobEvent>>> = Arc::default();
    let sink = events.clone();
    let watcher = config(&server.base_url, dir.path()).progress(Arc::new(move |e: &JobEvent| {
        sink.lock().unwrap().push(e.clone())
    }));
    // The first call gives up after a few polls; the job keeps running.
    let tuner = OpenAiFineTuner::new(watcher.clone().max_wait(Duration::from_millis(1))).unwrap();
    assert!(tuner.fine_tune(&data(12), &ft_config(5)).await.is_err());
    let job = server.list_raw().await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Time passes: the job advances 140 steps with nobody reading its events.
    for _ in 0..140 {
        reqwest::get(format!("{}/fine_tuning/jobs/{job}", server.base_url))
            .await
            .unwrap();
    }
    let tuner = OpenAiFineTuner::new(watcher).unwrap();
    tuner.fine_tune(&data(12), &ft_config(5)).await.unwrap();
    let seen: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.id.clone())
        .collect();
    let all = server.all_event_ids(&job).await;
    assert!(all.len() > 150, "{}", all.len());
    assert_eq!(
        seen, all,
        "events forwarded once each, oldest first, none missing"
    );
    let ckpts = tuner.checkpoints(&job).await.unwrap();
    assert_eq!(ckpts.len(), 150);
    assert_eq!(ckpts[0].step_number, 150);
    assert!(
        ckpts[0]
            .fine_tuned_model_checkpoint
            .ends_with(":ckpt-step-150")
    );
}
