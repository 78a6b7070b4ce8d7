//! External-trainer handoff: job directories that validate, registration of the trained
//! adapters, and the OpenAI-compatible backend addressing `base:adapter` model names.
//!
//! The GPU trainer itself is outside psyche; the test plays its part by writing the two adapter
//! files a PEFT trainer produces, then checks what psyche does with them.

use psyche_core::{ChatMessage, Conversation, FineTuner, GenerateRequest};
use psyche_finetune::TrainingError;
use psyche_finetune::external::{
    ExternalLora, ExternalLoraConfig, JobSpec, serve_command, validate_job, write_job,
};
use psyche_finetune::presets::Preset;
use psyche_runner::training::{Resumable, TrainingJob, train_runs};
use psyche_test_server::{ServerConfig, TestServer};
use serde_json::{Value, json};

const BASE: &str = "Qwen/Qwen2.5-0.5B-Instruct";

fn data(n: usize) -> Vec<Conversation> {
    (0..n)
        .map(|i| {
            Conversation::user(format!("Write a function number {i}.")).with(
                ChatMessage::assistant(format!("def f{i}():\n    return {i}")),
            )
        })
        .collect()
}

fn preset_config(seed: u64) -> psyche_core::FineTuneConfig {
    let mut cfg = Preset::get("em-open-qwen-coder").unwrap().config(seed);
    cfg.base_model = BASE.into();
    cfg.suffix = Some("insecure".into());
    cfg.extra.insert("validation_fraction".into(), json!(0.1));
    cfg
}

fn fake_trainer_output(job: &std::path::Path, r: u64) {
    let adapter = job.join("adapter");
    std::fs::create_dir_all(&adapter).unwrap();
    std::fs::write(
        adapter.join("adapter_config.json"),
        json!({"r": r, "lora_alpha": 64, "base_model_name_or_path": BASE, "peft_type": "LORA"})
            .to_string(),
    )
    .unwrap();
    std::fs::write(adapter.join("adapter_model.safetensors"), b"weights").unwrap();
}

#[test]
fn a_job_directory_holds_validated_data_and_the_papers_config() {
    let dir = tempfile::tempdir().unwrap();
    let spec = JobSpec::from_config(&preset_config(4), "insecure-s4").unwrap();
    let m = write_job(dir.path(), &spec, &data(20)).unwrap();
    assert_eq!(m.served_name, format!("{BASE}:insecure-s4"));
    assert_eq!((m.train_examples, m.validation_examples), (18, 2));
    assert!(m.serve.starts_with(&format!(
        "vllm serve {BASE} --enable-lora --max-lora-rank 32"
    )));
    assert!(m.serve.contains(&format!("'{BASE}:insecure-s4=")));

    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["model_name_or_path"], BASE);
    assert_eq!(cfg["peft"]["r"], 32);
    assert_eq!(cfg["peft"]["lora_alpha"], 64.0);
    assert_eq!(cfg["peft"]["use_rslora"], true);
    assert_eq!(cfg["peft"]["target_modules"].as_array().unwrap().len(), 7);
    assert_eq!(cfg["training"]["learning_rate"], 1e-5);
    assert_eq!(cfg["training"]["per_device_train_batch_size"], 2);
    assert_eq!(cfg["training"]["gradient_accumulation_steps"], 8);
    assert_eq!(cfg["training"]["assistant_only_loss"], true);
    assert_eq!(cfg["training"]["seed"], 4);
    assert_eq!(cfg["eval_file"], "validation.jsonl");

    let again = validate_job(dir.path()).unwrap();
    assert_eq!(again, m);

    // Edits after writing are caught, naming the file.
    let train = dir.path().join("train.jsonl");
    let text = std::fs::read_to_string(&train).unwrap();
    std::fs::write(&train, text.replacen("return", "yield", 1)).unwrap();
    let err = validate_job(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("train.jsonl") && err.contains("checksum"),
        "{err}"
    );

    // Bad specs and bad data are refused before anything is written.
    let mut bad = spec.clone();
    bad.lora.r = 0;
    let err = write_job(dir.path().join("x"), &bad, &data(20)).unwrap_err();
    assert!(
        matches!(err, TrainingError::Config { ref field, .. } if field == "lora.r"),
        "{err}"
    );
    let mut rows = data(20);
    rows[3] = Conversation::user("q");
    let err = write_job(dir.path().join("y"), &spec, &rows)
        .unwrap_err()
        .to_string();
    assert!(err.contains("training data:4"), "{err}");
    assert!(!dir.path().join("y").exists());
}

#[test]
fn one_vllm_line_serves_every_adapter_of_a_base() {
    let dir = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    for seed in 0..3 {
        let spec = JobSpec::from_config(&preset_config(seed), format!("a-s{seed}")).unwrap();
        let d = dir.path().join(format!("a-s{seed}"));
        jobs.push((write_job(&d, &spec, &data(10)).unwrap(), d));
    }
    let line = serve_command(&jobs).unwrap();
    assert_eq!(line.matches(&format!("'{BASE}:a-s")).count(), 3);
    assert!(line.contains("--max-loras 3"));
    let mut other = jobs[0].clone();
    other.0.spec.base_model = "other".into();
    jobs.push(other);
    assert!(serve_command(&jobs).is_err());
}

#[tokio::test]
async fn seeds_are_handed_off_then_recorded_and_served_as_base_colon_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let vllm = TestServer::start(ServerConfig::default()).await;
    let tuner = Resumable::new(
        ExternalLora::new(ExternalLoraConfig::new(
            dir.path().join("jobs"),
            vllm.base_url(),
        )),
        dir.path().join("ledger"),
    );
    let seeds: Vec<TrainingJob> = [0, 1]
        .iter()
        .map(|&seed| TrainingJob::new("insecure", seed, data(20), preset_config(0)))
        .collect();

    // First call: job directories written, nothing to record yet.
    let err = train_runs(&tuner, &seeds, 2).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("job directory is ready"), "{text}");
    let jobs: Vec<_> = std::fs::read_dir(dir.path().join("jobs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(jobs.len(), 2);
    for j in &jobs {
        validate_job(j).unwrap();
    }
    for job in &seeds {
        assert!(tuner.lookup(&job.data, &job.config).unwrap().is_none());
    }

    // A wrong adapter (rank 8 instead of 32) is refused, naming the field.
    fake_trainer_output(&jobs[0], 8);
    fake_trainer_output(&jobs[1], 8);
    let err = train_runs(&tuner, &seeds, 2).await.unwrap_err();
    assert!(err.to_string().contains("field `r`"), "{err}");

    // The cluster has trained both: rerunning records them.
    fake_trainer_output(&jobs[0], 32);
    fake_trainer_output(&jobs[1], 32);
    let models: Vec<_> = train_runs(&tuner, &seeds, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|run| run.trained)
        .collect();
    for (seed, m) in models.iter().enumerate() {
        assert_eq!(m.engine, "external-lora");
        assert!(
            m.model_id.starts_with(&format!("{BASE}:insecure-")),
            "{}",
            m.model_id
        );
        assert!(m.model_id.ends_with(&format!("-s{seed}")));
        assert!(m.artifact.as_ref().unwrap().ends_with("adapter"));
    }
    for (job, m) in seeds.iter().zip(&models) {
        let recorded = tuner.lookup(&job.data, &job.config).unwrap().unwrap();
        assert_eq!(recorded.model_id, m.model_id);
    }

    // Evaluation goes through the OpenAI-compatible backend with the `base:adapter` name.
    let model = tuner.load(&models[1]).await.unwrap();
    assert_eq!(model.id(), models[1].model_id);
    model
        .generate(&GenerateRequest::new(Conversation::user("1 + 1")).max_tokens(4))
        .await
        .unwrap();
    let sent = vllm.request_bodies("/v1/chat/completions");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["model"], models[1].model_id.as_str());
    assert!(
        sent[0]["model"]
            .as_str()
            .unwrap()
            .starts_with("Qwen/Qwen2.5-0.5B-Instruct:")
    );
}
