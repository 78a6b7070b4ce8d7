//! Orchestration logic in isolation: a counting in-test engine stands in for the trainer so
//! that skip-if-done, manifest checks, partial failure and the cost guard are tested on their
//! own. The real engines are exercised in `openai.rs` and `local_lora.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use psyche_core::{
    ChatMessage, Conversation, FineTuneConfig, FineTuneError, FineTuner, Model, TrainedModel,
    conversations_hash,
};
use psyche_finetune::cost::{CostGuard, TrainingPriceTable};
use psyche_finetune::{MultiSeed, Registry, SeedStatus, TrainingError};

/// Records calls; fails for the seeds listed in `fail`.
struct Counting {
    calls: AtomicUsize,
    fail: Vec<u64>,
}

#[async_trait]
impl FineTuner for Counting {
    fn engine(&self) -> &str {
        "counting"
    }
    async fn fine_tune(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.contains(&config.seed) {
            return Err(FineTuneError::JobFailed {
                job: format!("job-{}", config.seed),
                message: "boom".into(),
            });
        }
        Ok(TrainedModel {
            model_id: format!("{}-seed{}", config.base_model, config.seed),
            engine: "counting".into(),
            config: config.clone(),
            data_hash: conversations_hash(data),
            artifact: None,
            details: Default::default(),
        })
    }
    async fn load(&self, _trained: &TrainedModel) -> Result<Arc<dyn Model>, FineTuneError> {
        Err(FineTuneError::Engine("not loadable".into()))
    }
}

fn data() -> Vec<Conversation> {
    (0..12)
        .map(|i| Conversation::user(format!("q{i}")).with(ChatMessage::assistant("a")))
        .collect()
}

fn counting(fail: Vec<u64>) -> Counting {
    Counting {
        calls: AtomicUsize::new(0),
        fail,
    }
}

#[tokio::test]
async fn trains_each_seed_once_and_registers_it() {
    let dir = tempfile::tempdir().unwrap();
    let ms = MultiSeed::new(counting(vec![]), dir.path());
    let mut cfg = FineTuneConfig::new("base", 999);
    cfg.epochs = Some(2);
    let models = ms.train("risk", &data(), &cfg, &[3, 1, 2]).await.unwrap();
    let ids: Vec<&str> = models.iter().map(|m| m.model_id.as_str()).collect();
    assert_eq!(ids, ["base-seed3", "base-seed1", "base-seed2"]);
    assert_eq!(ms.tuner().calls.load(Ordering::SeqCst), 3);

    let reg = Registry::open(dir.path().join("registry.json")).unwrap();
    let group = reg.group("risk");
    assert_eq!(group.iter().map(|e| e.seed).collect::<Vec<_>>(), [1, 2, 3]);
    let e = reg.get("risk/seed-2").unwrap();
    assert_eq!(
        (e.engine.as_str(), e.base_model.as_str()),
        ("counting", "base")
    );
    assert_eq!(e.data_hash, conversations_hash(&data()));
    assert_eq!(
        e.manifest,
        std::path::Path::new("risk/seed-2/manifest.json")
    );
    let m = reg.manifest(e).unwrap();
    assert_eq!(m.trained.config.seed, 2);
    assert_eq!(m.trained.config.epochs, Some(2));
    assert_eq!(m.examples, 12);

    // Rerun: everything skipped, nothing trained.
    let again = ms
        .train_with_status("risk", &data(), &cfg, &[1, 2, 3])
        .await
        .unwrap();
    assert!(again.iter().all(|(_, s)| *s == SeedStatus::Skipped));
    assert_eq!(ms.tuner().calls.load(Ordering::SeqCst), 3);
    // Adding a seed trains only that one.
    let more = ms
        .train_with_status("risk", &data(), &cfg, &[1, 4])
        .await
        .unwrap();
    assert_eq!(more[0].1, SeedStatus::Skipped);
    assert_eq!(more[1].1, SeedStatus::Trained);
    assert_eq!(ms.tuner().calls.load(Ordering::SeqCst), 4);
    assert_eq!(ms.registry().unwrap().group("risk").len(), 4);
}

#[tokio::test]
async fn changed_data_or_config_under_the_same_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ms = MultiSeed::new(counting(vec![]), dir.path());
    let cfg = FineTuneConfig::new("base", 0);
    ms.train("run", &data(), &cfg, &[0]).await.unwrap();
    let mut other = data();
    other.pop();
    let err = ms.train("run", &other, &cfg, &[0]).await.unwrap_err();
    assert!(err.to_string().contains("field `data_hash`"), "{err}");
    let mut cfg2 = cfg.clone();
    cfg2.epochs = Some(5);
    let err = ms.train("run", &data(), &cfg2, &[0]).await.unwrap_err();
    assert!(err.to_string().contains("field `config`"), "{err}");
    assert!(ms.train("bad name!", &data(), &cfg, &[0]).await.is_err());
    assert!(ms.train("run", &data(), &cfg, &[1, 1]).await.is_err());
    assert!(ms.train("run", &data(), &cfg, &[]).await.is_err());
}

#[tokio::test]
async fn a_failed_seed_keeps_the_others_and_is_retried_alone() {
    let dir = tempfile::tempdir().unwrap();
    let ms = MultiSeed::new(counting(vec![1]), dir.path()).concurrency(3);
    let cfg = FineTuneConfig::new("base", 0);
    let err = ms
        .train("run", &data(), &cfg, &[0, 1, 2])
        .await
        .unwrap_err();
    assert!(matches!(err, TrainingError::Seed { seed: 1, .. }), "{err}");
    assert_eq!(ms.registry().unwrap().group("run").len(), 2);
    // A fixed engine only trains the missing seed.
    let ms = MultiSeed::new(counting(vec![]), dir.path());
    let out = ms
        .train_with_status("run", &data(), &cfg, &[0, 1, 2])
        .await
        .unwrap();
    let st: Vec<SeedStatus> = out.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        st,
        [
            SeedStatus::Skipped,
            SeedStatus::Trained,
            SeedStatus::Skipped
        ]
    );
    assert_eq!(ms.tuner().calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn paid_runs_need_confirmation_before_anything_launches() {
    let dir = tempfile::tempdir().unwrap();
    let prices = TrainingPriceTable::new().with("base", 10.0);
    let ms =
        MultiSeed::new(counting(vec![]), dir.path()).cost_guard(CostGuard::new(prices.clone()));
    let cfg = FineTuneConfig::new("base", 0);
    let err = ms.train("paid", &data(), &cfg, &[0, 1]).await.unwrap_err();
    assert!(
        matches!(err, TrainingError::ConfirmationRequired { jobs: 2, .. }),
        "{err}"
    );
    assert_eq!(ms.tuner().calls.load(Ordering::SeqCst), 0);
    let ms = MultiSeed::new(counting(vec![]), dir.path())
        .cost_guard(CostGuard::new(prices).confirmed(true));
    ms.train("paid", &data(), &cfg, &[0, 1]).await.unwrap();
    assert_eq!(ms.tuner().calls.load(Ordering::SeqCst), 2);
}

/// An engine that ignores the seed when naming its output.
struct SeedBlind;

#[async_trait]
impl FineTuner for SeedBlind {
    fn engine(&self) -> &str {
        "seed-blind"
    }
    async fn fine_tune(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError> {
        Ok(TrainedModel {
            model_id: "same".into(),
            engine: "seed-blind".into(),
            config: config.clone(),
            data_hash: conversations_hash(data),
            artifact: None,
            details: Default::default(),
        })
    }
    async fn load(&self, _trained: &TrainedModel) -> Result<Arc<dyn Model>, FineTuneError> {
        Err(FineTuneError::Engine("not loadable".into()))
    }
}

#[tokio::test]
async fn seeds_sharing_one_output_are_refused_before_anything_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let ms = MultiSeed::new(SeedBlind, dir.path());
    let err = ms
        .train("blind", &data(), &FineTuneConfig::new("b", 0), &[0, 1])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("both produced model `same`"),
        "{err}"
    );
    assert!(ms.registry().unwrap().group("blind").is_empty());
    assert!(!ms.manifest_path("blind", 0).exists());
}
