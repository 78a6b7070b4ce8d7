//! A multi-seed local LoRA run killed (SIGKILL) between seeds loses no finished seed: a child
//! process (this test binary, re-executed) trains three tiny seeds on the embedded model; the
//! test kills it as soon as the first seed's manifest is on disk, reruns the same run in this
//! process and checks that the finished seed was skipped (its adapter untouched) and that every
//! seed ends up trained and registered.
//!
//! A plain `main` (`harness = false`): the child mode needs no test harness around it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use psyche_core::{ChatMessage, Conversation, FineTuneConfig};
use psyche_finetune::local::{LoraTrainer, lora_config};
use psyche_finetune::presets::LoraSpec;
use psyche_finetune::{Manifest, MultiSeed, SeedStatus};
use psyche_local::{DEFAULT_MODEL, LocalConfig, LocalModel};

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

fn runs(root: &Path) -> MultiSeed<LoraTrainer> {
    let base = LocalModel::load(&LocalConfig::default()).expect("embedded model loads");
    let trainer = LoraTrainer::new(root.join("adapters")).with_model(base);
    MultiSeed::new(trainer, root)
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
    let runs = runs(root);
    runtime()
        .block_on(runs.train(NAME, &data(), &config(), &SEEDS))
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
    let manifest = |seed: u64| -> PathBuf {
        root.join(NAME)
            .join(format!("seed-{seed}"))
            .join("manifest.json")
    };

    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD_ENV, &root)
        .spawn()
        .expect("child starts");
    let deadline = Instant::now() + Duration::from_secs(600);
    while !manifest(SEEDS[0]).exists() {
        if let Some(status) = child.try_wait().expect("child status") {
            panic!("the child ended ({status}) before its first seed was recorded");
        }
        assert!(Instant::now() < deadline, "no manifest after 10 minutes");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("child reaped");
    assert!(!status.success(), "the child finished before it was killed");
    assert!(
        !manifest(SEEDS[2]).exists(),
        "the last seed was recorded before the kill: nothing was interrupted"
    );

    // The first seed is complete on disk: manifest, registry entry, adapter.
    let first = Manifest::read(&manifest(SEEDS[0]))
        .expect("readable manifest")
        .expect("manifest exists");
    let adapter = first
        .trained
        .artifact
        .clone()
        .expect("adapter dir")
        .join("adapter.safetensors");
    let written = std::fs::metadata(&adapter)
        .and_then(|m| m.modified())
        .expect("adapter on disk");
    // (Its registry entry may not be: the kill can land between the two writes. The rerun
    // registers skipped seeds again, checked below.)
    let runs = runs(&root);

    // Rerun: finished seeds are skipped, the rest trained; nothing is lost or retrained.
    let out = runtime()
        .block_on(runs.train_with_status(NAME, &data(), &config(), &SEEDS))
        .expect("rerun");
    assert_eq!(out.len(), SEEDS.len());
    assert_eq!(out[0].1, SeedStatus::Skipped);
    assert_eq!(out[0].0, first.trained);
    assert_eq!(out[2].1, SeedStatus::Trained);
    assert_eq!(
        std::fs::metadata(&adapter)
            .and_then(|m| m.modified())
            .expect("adapter still on disk"),
        written,
        "the finished seed's adapter was rewritten"
    );
    let reg = runs.registry().expect("registry readable");
    assert_eq!(reg.group(NAME).len(), SEEDS.len());
    for (seed, (model, _)) in SEEDS.iter().zip(&out) {
        let m = Manifest::read(&manifest(*seed))
            .expect("readable manifest")
            .expect("manifest exists");
        assert_eq!(m.trained.config.seed, *seed);
        // (Not the whole model: serde_json's float parsing may move the last digit of a
        // timing in `details`.)
        assert_eq!(
            (&m.trained.model_id, &m.trained.config, &m.trained.artifact),
            (&model.model_id, &model.config, &model.artifact)
        );
    }
}
