//! Fine-tuning inside experiments: a resumable [`FineTuner`] layer and the one loop over arms
//! and seeds.
//!
//! A fine-tuning experiment trains every arm (self-trained, cross-trained, control…) once per
//! seed, then evaluates the results. Training is the expensive part and the part most likely to
//! be interrupted, so it is the part that must never be paid twice:
//!
//! - [`Resumable`] wraps any [`FineTuner`]. Each finished fine-tune is written to a ledger entry
//!   keyed by the engine, the training data's hash ([`conversations_hash`]) and the config's
//!   hash (which includes the seed). A later call with the same three returns the recorded
//!   model without training; a change to the data or to any config field is a different key,
//!   so that job trains again. Entries are written with [`psyche_core::write_atomic`] the
//!   moment a job finishes, so a process killed at any point (even `kill -9`) loses at most the
//!   job that was running.
//! - [`train_runs`] is the loop over [`TrainingJob`]s (arm × seed) that every task crate uses,
//!   with bounded concurrency and results in job order.
//!
//! ```no_run
//! # async fn demo(engine: std::sync::Arc<dyn psyche_core::FineTuner>,
//! #               data: Vec<psyche_core::Conversation>) -> Result<(), psyche_core::FineTuneError> {
//! use psyche_core::FineTuneConfig;
//! use psyche_runner::training::{Resumable, TrainingJob, train_runs};
//!
//! let tuner = Resumable::new(engine, "runs/my-experiment/fine-tunes");
//! let jobs: Vec<TrainingJob> = [0u64, 1, 2]
//!     .iter()
//!     .map(|&seed| TrainingJob::new("self", seed, data.clone(), FineTuneConfig::new("base", seed)))
//!     .collect();
//! let runs = train_runs(&tuner, &jobs, 1).await?; // a rerun trains nothing
//! # let _ = runs; Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::StreamExt;
use psyche_core::{
    Conversation, FineTuneConfig, FineTuneError, FineTuner, Model, TrainedModel, conversations_hash,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the ledger entry format.
const LEDGER_FORMAT: u32 = 1;

/// One ledger entry: a finished fine-tune and what it was trained from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Format version ([`LEDGER_FORMAT`]).
    pub format: u32,
    /// The engine that trained it.
    pub engine: String,
    /// [`conversations_hash`] of the training data.
    pub data_hash: String,
    /// [`config_hash`] of the config (seed included).
    pub config_hash: String,
    /// Seconds since the Unix epoch when the fine-tune finished.
    pub finished_unix: u64,
    /// The model the engine returned.
    pub trained: TrainedModel,
}

/// Hex SHA-256 of a config's JSON form: every field, the seed and the engine-specific `extra`
/// settings included, so any change to the config makes a new key.
pub fn config_hash(config: &FineTuneConfig) -> String {
    // Serialising plain data (strings, numbers, maps of JSON values) cannot fail.
    let bytes = serde_json::to_vec(config).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// A [`FineTuner`] that never trains the same (engine, data, config) twice: finished fine-tunes
/// are recorded in a ledger directory and returned from it on later calls. See the
/// [module documentation](self).
///
/// A recorded model whose local artefact (adapter directory) has since been deleted is trained
/// again, with a warning.
#[derive(Debug, Clone)]
pub struct Resumable<F> {
    inner: F,
    dir: PathBuf,
}

impl<F: FineTuner> Resumable<F> {
    /// Records finished fine-tunes of `inner` under `dir` (created on the first write).
    pub fn new(inner: F, dir: impl Into<PathBuf>) -> Self {
        Self {
            inner,
            dir: dir.into(),
        }
    }

    /// The ledger directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The wrapped engine.
    pub fn get_ref(&self) -> &F {
        &self.inner
    }

    /// Where the entry for `data` trained with `config` lives (whether or not it exists):
    /// `<dir>/<engine>/<first 16 hex of the data hash>-<first 16 hex of the config hash>.json`.
    pub fn entry_path(&self, data: &[Conversation], config: &FineTuneConfig) -> PathBuf {
        self.path_for(&conversations_hash(data), &config_hash(config))
    }

    fn path_for(&self, data_hash: &str, config_hash: &str) -> PathBuf {
        let engine: String = self
            .inner
            .engine()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let short = |h: &str| h.get(..16).unwrap_or(h).to_owned();
        self.dir
            .join(engine)
            .join(format!("{}-{}.json", short(data_hash), short(config_hash)))
    }

    /// The recorded model for `data` and `config`, if a matching entry exists and its artefact
    /// (if any) is still on disk.
    ///
    /// # Errors
    ///
    /// [`FineTuneError::Io`] naming the entry when it exists but cannot be read or parsed, or
    /// records another data or config hash (a truncated-hash collision).
    pub fn lookup(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<Option<TrainedModel>, FineTuneError> {
        let (data_hash, config_hash) = (conversations_hash(data), config_hash(config));
        self.lookup_hashed(&data_hash, &config_hash)
    }

    fn lookup_hashed(
        &self,
        data_hash: &str,
        config_hash: &str,
    ) -> Result<Option<TrainedModel>, FineTuneError> {
        let path = self.path_for(data_hash, config_hash);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, e.to_string())),
        };
        let entry: LedgerEntry = psyche_core::parse_json_line(&text)
            .map_err(|message| io_error(&path, format!("invalid ledger entry: {message}")))?;
        if entry.format != LEDGER_FORMAT {
            return Err(io_error(
                &path,
                format!(
                    "field `format`: ledger format {} is not the supported {LEDGER_FORMAT}",
                    entry.format
                ),
            ));
        }
        if entry.data_hash != data_hash || entry.config_hash != config_hash {
            return Err(io_error(
                &path,
                "the entry records another data or config hash (a collision of the 16-digit \
                 file name); move the ledger directory aside to retrain"
                    .to_owned(),
            ));
        }
        if let Some(artifact) = &entry.trained.artifact
            && !artifact.exists()
        {
            tracing::warn!(
                entry = %path.display(),
                artifact = %artifact.display(),
                "recorded fine-tune's artefact is gone; training again"
            );
            return Ok(None);
        }
        Ok(Some(entry.trained))
    }
}

fn io_error(path: &Path, message: String) -> FineTuneError {
    FineTuneError::Io {
        path: path.to_owned(),
        message,
    }
}

#[async_trait]
impl<F: FineTuner> FineTuner for Resumable<F> {
    fn engine(&self) -> &str {
        self.inner.engine()
    }

    async fn fine_tune(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError> {
        let (data_hash, config_hash) = (conversations_hash(data), config_hash(config));
        if let Some(trained) = self.lookup_hashed(&data_hash, &config_hash)? {
            tracing::info!(
                model = %trained.model_id,
                seed = config.seed,
                "fine-tune already finished; reusing it"
            );
            return Ok(trained);
        }
        let trained = self.inner.fine_tune(data, config).await?;
        let entry = LedgerEntry {
            format: LEDGER_FORMAT,
            engine: self.inner.engine().to_owned(),
            data_hash: data_hash.clone(),
            config_hash: config_hash.clone(),
            finished_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            trained: trained.clone(),
        };
        let path = self.path_for(&data_hash, &config_hash);
        let body = serde_json::to_vec_pretty(&entry)
            .map_err(|e| io_error(&path, format!("cannot serialise the entry: {e}")))?;
        psyche_core::write_atomic(&path, &body).map_err(|e| io_error(&path, e.to_string()))?;
        Ok(trained)
    }

    async fn load(&self, trained: &TrainedModel) -> Result<Arc<dyn Model>, FineTuneError> {
        self.inner.load(trained).await
    }
}

/// One fine-tune of an experiment: which arm, which run seed, on what data, with what config.
#[derive(Debug, Clone)]
pub struct TrainingJob {
    /// The arm's name (`"self"`, `"cross"`, `"control"`…).
    pub arm: String,
    /// The run (fine-tuning) seed.
    pub seed: u64,
    /// The training conversations.
    pub data: Arc<[Conversation]>,
    /// The config, with `seed` set to the run seed.
    pub config: FineTuneConfig,
}

impl TrainingJob {
    /// A job for `arm` and run `seed` (the config's seed is set to it).
    pub fn new(
        arm: impl Into<String>,
        seed: u64,
        data: impl Into<Arc<[Conversation]>>,
        mut config: FineTuneConfig,
    ) -> Self {
        config.seed = seed;
        Self {
            arm: arm.into(),
            seed,
            data: data.into(),
            config,
        }
    }
}

/// A finished [`TrainingJob`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedRun {
    /// The arm.
    pub arm: String,
    /// The run seed.
    pub seed: u64,
    /// The model.
    pub trained: TrainedModel,
}

/// Trains every job through `tuner`, `concurrency` at a time (1 for in-process engines, more
/// for remote jobs), and returns the runs in job order. Give it a [`Resumable`] tuner and a
/// rerun trains only what did not finish.
///
/// # Errors
///
/// [`FineTuneError::Config`] for an empty job list or two jobs with the same arm and seed; the
/// first failing job's error (the other jobs still run to completion, so a resumable tuner
/// keeps them).
pub async fn train_runs(
    tuner: &dyn FineTuner,
    jobs: &[TrainingJob],
    concurrency: usize,
) -> Result<Vec<TrainedRun>, FineTuneError> {
    if jobs.is_empty() {
        return Err(FineTuneError::Config(
            "jobs: no fine-tuning jobs".to_owned(),
        ));
    }
    for (i, job) in jobs.iter().enumerate() {
        if jobs[..i]
            .iter()
            .any(|other| other.arm == job.arm && other.seed == job.seed)
        {
            return Err(FineTuneError::Config(format!(
                "jobs: arm `{}` seed {} appears twice",
                job.arm, job.seed
            )));
        }
    }
    let mut finished = futures::stream::iter(jobs.iter().enumerate().map(|(i, job)| async move {
        tracing::info!(arm = %job.arm, seed = job.seed, engine = tuner.engine(), "fine-tuning");
        (i, tuner.fine_tune(&job.data, &job.config).await)
    }))
    .buffer_unordered(concurrency.max(1));
    let mut runs: Vec<Option<TrainedRun>> = vec![None; jobs.len()];
    let mut first_error = None;
    while let Some((i, result)) = finished.next().await {
        match result {
            Ok(trained) => {
                runs[i] = Some(TrainedRun {
                    arm: jobs[i].arm.clone(),
                    seed: jobs[i].seed,
                    trained,
                });
            }
            Err(e) => {
                tracing::warn!(arm = %jobs[i].arm, seed = jobs[i].seed, error = %e, "fine-tune failed");
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(runs.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use psyche_core::ChatMessage;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the fine-tunes it is asked for; fails on seeds in `fail`.
    #[derive(Debug, Default)]
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
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail.contains(&config.seed) {
                return Err(FineTuneError::Engine(format!("seed {} fails", config.seed)));
            }
            Ok(TrainedModel {
                model_id: format!("counting-{n}"),
                engine: "counting".into(),
                config: config.clone(),
                data_hash: conversations_hash(data),
                artifact: None,
                details: serde_json::Map::new(),
            })
        }
        async fn load(&self, _: &TrainedModel) -> Result<Arc<dyn Model>, FineTuneError> {
            Err(FineTuneError::Engine("not loadable".into()))
        }
    }

    fn data(text: &str) -> Vec<Conversation> {
        vec![Conversation(vec![
            ChatMessage::user("q"),
            ChatMessage::assistant(text),
        ])]
    }

    #[tokio::test]
    async fn finished_jobs_are_reused_and_changes_retrain() {
        let dir = tempfile::tempdir().unwrap();
        let tuner = Resumable::new(Counting::default(), dir.path());
        let cfg = FineTuneConfig::new("base", 1);
        let first = tuner.fine_tune(&data("a"), &cfg).await.unwrap();
        let again = tuner.fine_tune(&data("a"), &cfg).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(tuner.get_ref().calls.load(Ordering::SeqCst), 1);

        // Other data, another seed, another hyperparameter: each trains.
        tuner.fine_tune(&data("b"), &cfg).await.unwrap();
        tuner
            .fine_tune(&data("a"), &FineTuneConfig::new("base", 2))
            .await
            .unwrap();
        let mut more_epochs = cfg.clone();
        more_epochs.epochs = Some(5);
        tuner.fine_tune(&data("a"), &more_epochs).await.unwrap();
        assert_eq!(tuner.get_ref().calls.load(Ordering::SeqCst), 4);

        // A fresh wrapper over the same directory (a new process) trains nothing.
        let later = Resumable::new(Counting::default(), dir.path());
        assert_eq!(
            later
                .fine_tune(&data("a"), &more_epochs)
                .await
                .unwrap()
                .config
                .epochs,
            Some(5)
        );
        assert_eq!(later.get_ref().calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn missing_artefact_retrains() {
        let dir = tempfile::tempdir().unwrap();
        let tuner = Resumable::new(Counting::default(), dir.path().join("ledger"));
        let cfg = FineTuneConfig::new("base", 1);
        let path = tuner.entry_path(&data("a"), &cfg);
        tuner.fine_tune(&data("a"), &cfg).await.unwrap();
        // Point the recorded model at an adapter directory that no longer exists.
        let mut entry: LedgerEntry =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        entry.trained.artifact = Some(dir.path().join("gone"));
        std::fs::write(&path, serde_json::to_vec(&entry).unwrap()).unwrap();
        tuner.fine_tune(&data("a"), &cfg).await.unwrap();
        assert_eq!(tuner.get_ref().calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn corrupt_entry_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let tuner = Resumable::new(Counting::default(), dir.path());
        let cfg = FineTuneConfig::new("base", 1);
        let path = tuner.entry_path(&data("a"), &cfg);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"format\": 1, \"engine\": ").unwrap();
        let err = tuner.fine_tune(&data("a"), &cfg).await.unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(tuner.get_ref().calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn train_runs_keeps_order_and_finished_jobs_survive_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let failing = Resumable::new(
            Counting {
                fail: vec![2],
                ..Counting::default()
            },
            dir.path(),
        );
        let jobs: Vec<TrainingJob> = [("self", 1), ("self", 2), ("cross", 1)]
            .iter()
            .map(|&(arm, seed)| {
                TrainingJob::new(arm, seed, data(arm), FineTuneConfig::new("base", 0))
            })
            .collect();
        let err = train_runs(&failing, &jobs, 2).await.unwrap_err();
        assert!(err.to_string().contains("seed 2 fails"), "{err}");

        // The rerun trains only the job that failed, and returns the runs in job order.
        let healthy = Resumable::new(Counting::default(), dir.path());
        let runs = train_runs(&healthy, &jobs, 2).await.unwrap();
        assert_eq!(healthy.get_ref().calls.load(Ordering::SeqCst), 1);
        let order: Vec<(&str, u64)> = runs.iter().map(|r| (r.arm.as_str(), r.seed)).collect();
        assert_eq!(order, [("self", 1), ("self", 2), ("cross", 1)]);
        assert!(runs.iter().all(|r| r.trained.config.seed == r.seed));
    }

    #[tokio::test]
    async fn duplicate_or_empty_jobs_are_refused() {
        let tuner = Counting::default();
        assert!(train_runs(&tuner, &[], 1).await.is_err());
        let job = TrainingJob::new("self", 1, data("a"), FineTuneConfig::new("base", 1));
        let err = train_runs(&tuner, &[job.clone(), job], 1)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
        assert_eq!(tuner.calls.load(Ordering::SeqCst), 0);
    }
}
