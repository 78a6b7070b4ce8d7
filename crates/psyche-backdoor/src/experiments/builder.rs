//! What both experiments are built from besides their config: the subject model, the
//! fine-tuning engine with its base config, and the output directory; and the one way they
//! fine-tune, [`psyche_runner::training::train_runs`] over every (arm, seed) job.

use std::path::PathBuf;
use std::sync::Arc;

use psyche_core::{Conversation, FineTuneConfig, FineTuner, Model};
use psyche_runner::training::{TrainingJob, train_runs};

use crate::error::{BackdoorError, Result};
use crate::pipeline::{ArmModel, OutDir};

/// The subject, the engine and where the run writes: what an experiment needs besides its
/// config. Built by an [`AwarenessBuilder`].
#[derive(Clone)]
pub struct AwarenessSetup {
    /// The untrained model: the base arm, the source of "normal" answers, what is fine-tuned.
    pub subject: Arc<dyn Model>,
    /// The fine-tuning engine (the examples pass a `Resumable` one, so reruns reuse finished
    /// fine-tunes).
    pub tuner: Arc<dyn FineTuner>,
    /// The base fine-tuning config; each job's seed is set from the experiment's seeds.
    pub fine_tune: FineTuneConfig,
    /// Where data, run logs and (through the engine) adapters go.
    pub out: OutDir,
    /// Fine-tunes in flight at once.
    pub training_concurrency: usize,
}

impl std::fmt::Debug for AwarenessSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwarenessSetup")
            .field("subject", &self.subject.id())
            .field("engine", &self.tuner.engine())
            .field("fine_tune", &self.fine_tune)
            .field("out", &self.out)
            .field("training_concurrency", &self.training_concurrency)
            .finish()
    }
}

/// One fine-tuning run to train: an arm, a seed and its rows.
pub(crate) struct Job {
    pub(crate) arm: String,
    pub(crate) seed: u64,
    pub(crate) data: Vec<Conversation>,
}

impl AwarenessSetup {
    /// Trains every job through [`train_runs`] (the seed set per job) and loads each result,
    /// named `<arm>/seed-<seed>`, in job order.
    ///
    /// # Errors
    ///
    /// [`BackdoorError::FineTune`] for a failed fine-tune or load.
    pub(crate) async fn train(&self, jobs: Vec<Job>) -> Result<Vec<ArmModel>> {
        let jobs: Vec<TrainingJob> = jobs
            .into_iter()
            .map(|j| TrainingJob::new(j.arm, j.seed, j.data, self.fine_tune.clone()))
            .collect();
        let runs = train_runs(self.tuner.as_ref(), &jobs, self.training_concurrency).await?;
        let mut models = Vec::with_capacity(runs.len());
        for run in runs {
            let model = self.tuner.load(&run.trained).await?;
            models.push(ArmModel::trained(&run.arm, run.seed, model));
        }
        Ok(models)
    }
}

/// Builds an experiment from its config `C`:
/// `SelfAwareness::builder(config).subject(model).tuner(tuner).out(dir).build()?`.
pub struct AwarenessBuilder<C> {
    pub(crate) config: C,
    subject: Option<Arc<dyn Model>>,
    tuner: Option<Arc<dyn FineTuner>>,
    fine_tune: Option<FineTuneConfig>,
    out: Option<PathBuf>,
    training_concurrency: usize,
}

impl<C: std::fmt::Debug> std::fmt::Debug for AwarenessBuilder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwarenessBuilder")
            .field("config", &self.config)
            .field("subject", &self.subject.as_ref().map(|m| m.id().to_owned()))
            .field(
                "engine",
                &self.tuner.as_ref().map(|t| t.engine().to_owned()),
            )
            .field("fine_tune", &self.fine_tune)
            .field("out", &self.out)
            .finish()
    }
}

impl<C> AwarenessBuilder<C> {
    pub(crate) fn new(config: C) -> Self {
        Self {
            config,
            subject: None,
            tuner: None,
            fine_tune: None,
            out: None,
            training_concurrency: 1,
        }
    }

    /// The untrained subject model (required).
    #[must_use]
    pub fn subject(mut self, model: Arc<dyn Model>) -> Self {
        self.subject = Some(model);
        self
    }

    /// The fine-tuning engine (required).
    #[must_use]
    pub fn tuner(mut self, tuner: Arc<dyn FineTuner>) -> Self {
        self.tuner = Some(tuner);
        self
    }

    /// The base fine-tuning config (default: `FineTuneConfig::new(<subject id>, 0)`); the
    /// experiment sets each run's seed.
    #[must_use]
    pub fn fine_tune(mut self, config: FineTuneConfig) -> Self {
        self.fine_tune = Some(config);
        self
    }

    /// The output directory (required): `data/`, `runs/`.
    #[must_use]
    pub fn out(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out = Some(dir.into());
        self
    }

    /// Fine-tunes in flight at once (default 1: local engines share the CPU; remote APIs can
    /// take every job at once).
    #[must_use]
    pub fn training_concurrency(mut self, n: usize) -> Self {
        self.training_concurrency = n.max(1);
        self
    }

    /// The config and the checked setup.
    pub(crate) fn parts(self) -> Result<(C, AwarenessSetup)> {
        let missing = |what: &str| {
            BackdoorError::config(what, format!("the experiment needs `.{what}(...)`"))
        };
        let subject = self.subject.ok_or_else(|| missing("subject"))?;
        let tuner = self.tuner.ok_or_else(|| missing("tuner"))?;
        let out = self.out.ok_or_else(|| missing("out"))?;
        let fine_tune = self
            .fine_tune
            .unwrap_or_else(|| FineTuneConfig::new(subject.id(), 0));
        Ok((
            self.config,
            AwarenessSetup {
                subject,
                tuner,
                fine_tune,
                out: OutDir(out),
                training_concurrency: self.training_concurrency,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::BackdoorError;
    use crate::experiments::{
        BackdoorAwareness, BackdoorAwarenessConfig, SelfAwareness, SelfAwarenessConfig,
    };

    fn field(e: BackdoorError) -> String {
        match e {
            BackdoorError::Config { field, .. } => field,
            other => panic!("not a config error: {other}"),
        }
    }

    #[test]
    fn a_build_without_its_parts_names_the_missing_one() {
        let e = SelfAwareness::builder(SelfAwarenessConfig::small())
            .out("unused")
            .build()
            .unwrap_err();
        assert_eq!(field(e), "subject");
        let e = BackdoorAwareness::builder(BackdoorAwarenessConfig::small())
            .build()
            .unwrap_err();
        assert_eq!(field(e), "subject");
    }

    #[test]
    fn small_is_the_default_and_paper_the_papers_size() {
        assert_eq!(SelfAwarenessConfig::small(), SelfAwarenessConfig::default());
        let p = SelfAwarenessConfig::paper();
        assert_eq!(
            (p.train_items, p.seeds.len(), p.behaviour_items),
            (288, 5, 250)
        );
        assert_eq!(
            (p.paraphrases, p.personas_per_group, p.eval.samples),
            (None, 6, 100)
        );
        let b = BackdoorAwarenessConfig::paper();
        assert_eq!(
            (b.train_items, b.seeds.len(), b.behaviour_items),
            (1000, 5, 250)
        );
        let s = BackdoorAwarenessConfig::small();
        let d = BackdoorAwarenessConfig::default();
        assert_eq!((s.train_items, s.behaviour_items), (48, 12));
        assert_eq!(s.composition.real, 0.25);
        assert_eq!(d.composition, b.composition);
        assert_eq!(
            BackdoorAwarenessConfig {
                train_items: d.train_items,
                composition: d.composition,
                behaviour_items: d.behaviour_items,
                ..s
            },
            d
        );
    }
}
