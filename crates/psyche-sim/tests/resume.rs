//! The backdoor crate's experiments fine-tune only through the runner's `train_runs`, so an
//! engine wrapped in the runner's `Resumable` is never asked again for a fine-tune it finished:
//! rerunning an experiment over the same output directory trains nothing, resumes the
//! evaluation logs, and gives the same result. Shown on the simulated self-awareness organism.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use psyche_backdoor::experiments::{SelfAwareness, SelfAwarenessResult};
use psyche_core::{Conversation, FineTuneConfig, FineTuneError, FineTuner, Model, TrainedModel};
use psyche_runner::training::Resumable;
use psyche_sim::backdoor::{SelfAwarenessOrganism, SelfAwarenessSpec};
use psyche_sim::organism::{ArmRule, SimTuner};

/// The simulated engine, counting the fine-tunes it is asked for.
struct Counting {
    inner: SimTuner,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl FineTuner for Counting {
    fn engine(&self) -> &str {
        self.inner.engine()
    }
    async fn fine_tune(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.fine_tune(data, config).await
    }
    async fn load(&self, trained: &TrainedModel) -> Result<Arc<dyn Model>, FineTuneError> {
        self.inner.load(trained).await
    }
}

#[test]
fn a_rerun_trains_nothing_again_and_gives_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SelfAwarenessSpec::small(2);
    let config = spec.config(7);
    let organism = Arc::new(SelfAwarenessOrganism::new(&config).unwrap());
    let plan = spec.plan(organism.pole(), organism.opposite());
    let rule: ArmRule = {
        let o = organism.clone();
        Arc::new(move |data: &[Conversation], _: &FineTuneConfig| o.arm_rule(data))
    };
    let sim = SimTuner::new(plan, 7, rule, organism);
    let base: Arc<dyn Model> = Arc::new(sim.base_model());
    let calls = Arc::new(AtomicUsize::new(0));
    let engine = Counting {
        inner: sim,
        calls: calls.clone(),
    };
    let tuner: Arc<dyn FineTuner> = Arc::new(Resumable::new(engine, dir.path().join("ledger")));
    let run = || -> SelfAwarenessResult {
        let experiment = SelfAwareness::builder(config.clone())
            .subject(base.clone())
            .tuner(tuner.clone())
            .fine_tune(FineTuneConfig::new("sim-base", 0))
            .out(dir.path())
            .build()
            .unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(experiment.run())
            .unwrap()
    };
    let first = run();
    // Two arms × two seeds, each trained once, in the models' order.
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let trained: Vec<&str> = first
        .models
        .iter()
        .filter(|m| m.seed.is_some())
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(
        trained,
        [
            "risk_seeking/seed-0",
            "risk_seeking/seed-1",
            "risk_averse/seed-0",
            "risk_averse/seed-1"
        ]
    );
    let second = run();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "a finished fine-tune ran again"
    );
    assert_eq!(
        serde_json::to_value(&first).unwrap(),
        serde_json::to_value(&second).unwrap()
    );
}
