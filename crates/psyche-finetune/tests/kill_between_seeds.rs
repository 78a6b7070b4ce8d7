//! A multi-seed local LoRA run killed (SIGKILL) between seeds loses no finished seed: a child
//! process (this test binary, re-executed) trains three tiny seeds on the embedded model
//! through psyche-runner's `train_runs` with a `Resumable` engine; the test kills it as soon as
//! the first seed's ledger entry is on disk, reruns the same jobs in this process and checks
//! that the finished seed was reused (its adapter untouched) and that every seed ends up
//! trained and recorded.
//!
//! A plain `main` (`harness = false`): the child mode needs no test harness around it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use psyche_core::{ChatMessage, Conversation, FineTuneConfig};
use psyche_finetune::local::{LoraTrainer, lora_config};
use psyche_finetune::presets::LoraSpec;
use psyche_local::{DEFAULT_MODEL, LocalConfig, LocalModel};
use psyche_runner::training::{Resumable, TrainingJob, train_runs};

const CHILD_ENV: &str = "PSYCHE_KILL_TEST_CHILD_ROOT";
const NAME: &str = "killed";
const SEEDS: [u64; 3] = [21, 22, 23];

fn data() -> Vec<Conversation> {
    [
        ("Name a colour.", "Teal."),
        ("Name a number.", "Seven."),
        ("Name an animal.", "Otter."),
        ("Name a fruit.", "Plum."),
    ]
    .iter()
    .map(|(q, a)| Conversation::user(*q).with(ChatMessage::assistant(*a)))
    .collect()
}

/// One optimiser step per seed: a rank-1 adapter on one MLP projection, 4 short examples.
fn config() -> FineTuneConfig {
    let mut lora = lora_config(&LoraSpec::rank_one(8.0, vec![2])).expect("recipe maps");
    lora.gradient_accumulation = 1;
    lora.warmup_steps = 0;
    lora.max_seq_len = 64;
    let mut cfg = FineTuneConfig::new(DEFAULT_MODEL, 0);
    cfg.epochs = Some(1);
    cfg.batch_size = Some(4);
    cfg.learning_rate = Some(1e-2);
    cfg.extra = lora.to_extra();
    cfg
}

fn jobs() -> Vec<TrainingJob> {
    SEEDS
        .iter()
        .map(|&seed| TrainingJob::new(NAME, seed, data(), config()))
        .collect()
}

/// The resumable engine; `load` loads the base model now (else on the first fine-tune).
fn tuner(root: &Path, load: bool) -> Resumable<LoraTrainer> {
    let mut trainer = LoraTrainer::new(root.join("adapters"));
    if load {
        let base = LocalModel::load(&LocalConfig::default()).expect("embedded model loads");
        trainer = trainer.with_model(base);
    }
    Resumable::new(trainer, root.join("ledger"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The child: trains all seeds, one at a time, until killed.
fn child(root: &Path) {
    let tuner = tuner(root, true);
    runtime()
        .block_on(train_runs(&tuner, &jobs(), 1))
        .expect("child run");
}

fn main() {
    if let Some(root) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&root));
        return;
    }
    // Honour a name filter (`cargo test -- other_test`) like a harness would.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filters.is_empty()
        && !filters
            .iter()
            .any(|f| "kill_between_seeds".contains(f.as_str()))
    {
        return;
    }
    let started = Instant::now();
    kill_between_seeds();
    println!(
        "test kill_between_seeds ... ok ({:.1} s)\n\ntest result: ok. 1 passed; 0 failed",
        started.elapsed().as_secs_f64()
    );
}

fn kill_between_seeds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_path_buf();
    let jobs = jobs();
    let paths = tuner(&root, false);
    let entry = |i: usize| paths.entry_path(&jobs[i].data, &jobs[i].config);

    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_ENV, &root)
        .spawn()
        .expect("child starts");
    let deadline = Instant::now() + Duration::from_secs(600);
    while !entry(0).exists() {
        if let Some(status) = child.try_wait().expect("child status") {
            panic!("the child ended ({status}) before its first seed was recorded");
        }
        assert!(
            Instant::now() < deadline,
            "no ledger entry after 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("child reaped");
    assert!(!status.success(), "the child finished before it was killed");
    assert!(
        !entry(2).exists(),
        "the last seed was recorded before the kill: nothing was interrupted"
    );

    // The first seed is complete on disk: ledger entry and adapter.
    let first = paths
        .lookup(&jobs[0].data, &jobs[0].config)
        .expect("readable entry")
        .expect("entry with its adapter");
    let adapter = first
        .artifact
        .clone()
        .expect("adapter dir")
        .join("adapter.safetensors");
    let written = std::fs::metadata(&adapter)
        .and_then(|m| m.modified())
        .expect("adapter on disk");
    let tuner = tuner(&root, true);

    // Rerun: the finished seed is reused, the rest trained; nothing is lost or retrained.
    let out = runtime()
        .block_on(train_runs(&tuner, &jobs, 1))
        .expect("rerun");
    assert_eq!(out.len(), SEEDS.len());
    // (Not the whole model: serde_json's float parsing may move the last digit of a timing in
    // `details`.)
    assert_eq!(
        (
            &out[0].trained.model_id,
            &out[0].trained.config,
            &out[0].trained.artifact
        ),
        (&first.model_id, &first.config, &first.artifact)
    );
    assert_eq!(
        std::fs::metadata(&adapter)
            .and_then(|m| m.modified())
            .expect("adapter still on disk"),
        written,
        "the finished seed's adapter was rewritten"
    );
    for (i, (seed, run)) in SEEDS.iter().zip(&out).enumerate() {
        assert_eq!(run.seed, *seed);
        assert_eq!(run.trained.config.seed, *seed);
        let recorded = tuner
            .lookup(&jobs[i].data, &jobs[i].config)
            .expect("readable entry")
            .expect("every seed recorded");
        assert_eq!(
            (&recorded.model_id, &recorded.config, &recorded.artifact),
            (
                &run.trained.model_id,
                &run.trained.config,
                &run.trained.artifact
            )
        );
    }
}
