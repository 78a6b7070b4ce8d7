//! Multi-seed orchestration: "fine-tune this dataset with these seeds and give me the models",
//! for any [`FineTuner`].
//!
//! The papers repeat every fine-tune over several seeds (3–6) and report confidence intervals
//! over seeds. [`MultiSeed::train`] runs one fine-tune per seed (with `config.seed` set to that
//! seed), writes each model's [`Manifest`] to `<root>/<name>/seed-<seed>/manifest.json`,
//! registers it in `<root>/registry.json`, and returns the [`TrainedModel`]s in seed order.
//!
//! # Resumability
//!
//! Each seed's manifest is written (atomically, fsynced) and registered the moment that seed
//! finishes, not at the end of the run. A seed whose manifest already exists with the same
//! engine, data hash and config is skipped (its model is returned from the manifest), so a run
//! that failed, was interrupted or was killed between seeds only trains what is missing when
//! called again — for local LoRA, a finished seed is never retrained. A manifest that disagrees
//! is an error, never silently overwritten. (A kill in the instant between an engine returning
//! and its manifest reaching disk retrains that one seed.) Engines that run remote jobs (the OpenAI driver)
//! additionally persist their job ids, so an interrupted seed resumes waiting instead of paying
//! twice.
//!
//! # Cost
//!
//! With a [`CostGuard`] set, the cost of the seeds still to train is estimated *before anything
//! is launched* and the run is refused unless the guard is confirmed (and under its cap).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use psyche_core::{Conversation, FineTuneConfig, FineTuner, TrainedModel, conversations_hash};

use crate::cost::{CostGuard, estimate};
use crate::dataset::{CharsPerToken, TokenEstimator};
use crate::error::{Result, TrainingError};
use crate::registry::{FORMAT_VERSION, Manifest, Registry, RegistryEntry, check_name};

/// Runs one fine-tune per seed through any [`FineTuner`], with manifests, a registry and
/// skip-if-done resumability.
pub struct MultiSeed<F> {
    tuner: F,
    root: PathBuf,
    registry: PathBuf,
    concurrency: usize,
    cost: Option<CostGuard>,
    estimator: Arc<dyn TokenEstimator>,
}

impl<F> std::fmt::Debug for MultiSeed<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiSeed")
            .field("root", &self.root)
            .field("registry", &self.registry)
            .field("concurrency", &self.concurrency)
            .field("cost", &self.cost)
            .field("estimator", &self.estimator.name())
            .finish_non_exhaustive()
    }
}

/// Outcome of one seed, for progress reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedStatus {
    /// Found a matching manifest; nothing trained.
    Skipped,
    /// Trained now.
    Trained,
}

impl<F: FineTuner> MultiSeed<F> {
    /// Orchestrates `tuner` with manifests under `root` and the registry at
    /// `root/registry.json`. One seed at a time, no cost guard, chars/4 token estimates.
    pub fn new(tuner: F, root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            tuner,
            registry: root.join("registry.json"),
            root,
            concurrency: 1,
            cost: None,
            estimator: Arc::new(CharsPerToken::default()),
        }
    }

    /// Uses another registry file (e.g. one shared by several roots).
    #[must_use]
    pub fn registry_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.registry = path.into();
        self
    }

    /// How many seeds train at once (remote engines: the number of seeds; local: 1).
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Requires a confirmed cost estimate before launching (for paid engines).
    #[must_use]
    pub fn cost_guard(mut self, guard: CostGuard) -> Self {
        self.cost = Some(guard);
        self
    }

    /// Token estimator for cost estimates.
    #[must_use]
    pub fn estimator(mut self, estimator: Arc<dyn TokenEstimator>) -> Self {
        self.estimator = estimator;
        self
    }

    /// The wrapped engine.
    pub fn tuner(&self) -> &F {
        &self.tuner
    }

    /// Where the manifest of `name`/`seed` lives.
    pub fn manifest_path(&self, name: &str, seed: u64) -> PathBuf {
        seed_dir(&self.root, name, seed).join("manifest.json")
    }

    /// Opens the registry.
    ///
    /// # Errors
    ///
    /// [`TrainingError::Manifest`] when it is malformed.
    pub fn registry(&self) -> Result<Registry> {
        Registry::open(self.registry.clone())
    }

    /// Fine-tunes `dataset` once per seed (`config.seed` replaced by each seed) and returns the
    /// models in the order of `seeds`. Seeds already done are skipped.
    ///
    /// # Errors
    ///
    /// [`TrainingError::Config`] for a bad name or seed list; [`TrainingError::Manifest`] when an existing
    /// manifest disagrees; cost-guard errors before anything is launched; [`TrainingError::Seed`] for
    /// the first seed that failed (the others still ran and were recorded).
    pub async fn train(
        &self,
        name: &str,
        dataset: &[Conversation],
        config: &FineTuneConfig,
        seeds: &[u64],
    ) -> Result<Vec<TrainedModel>> {
        Ok(self
            .train_with_status(name, dataset, config, seeds)
            .await?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// As [`train`](Self::train), also saying which seeds were skipped.
    ///
    /// # Errors
    ///
    /// As [`train`](Self::train).
    pub async fn train_with_status(
        &self,
        name: &str,
        dataset: &[Conversation],
        config: &FineTuneConfig,
        seeds: &[u64],
    ) -> Result<Vec<(TrainedModel, SeedStatus)>> {
        check_name(name)?;
        if seeds.is_empty() {
            return Err(TrainingError::config(
                "seeds",
                "at least one seed is needed",
            ));
        }
        let unique: BTreeSet<u64> = seeds.iter().copied().collect();
        if unique.len() != seeds.len() {
            return Err(TrainingError::config("seeds", "seeds must be distinct"));
        }
        if dataset.is_empty() {
            return Err(TrainingError::config("dataset", "no training examples"));
        }
        let data_hash = conversations_hash(dataset);
        let engine = self.tuner.engine().to_owned();
        let mut registry = self.registry()?;

        let mut done = Vec::new();
        let mut pending = Vec::new();
        for &seed in seeds {
            let cfg = seed_config(config, seed);
            let path = self.manifest_path(name, seed);
            match Manifest::read(&path)? {
                Some(m) => {
                    check_matches(&m, &path, &engine, &data_hash, &cfg)?;
                    tracing::info!(name, seed, model = %m.trained.model_id, "already trained; skipping");
                    self.register(&mut registry, &m, &path)?;
                    done.push((seed, m.trained));
                }
                None => pending.push((seed, cfg)),
            }
        }

        if let (Some(guard), Some((_, cfg))) = (&self.cost, pending.first()) {
            let est = estimate(
                &guard.prices,
                dataset,
                cfg,
                self.estimator.as_ref(),
                pending.len(),
            )?;
            guard.check(&est)?;
        }

        // Each seed is recorded (manifest, then registry) the moment it finishes, so a run
        // killed between seeds keeps every finished seed and a rerun trains only the rest.
        let mut finished =
            futures::stream::iter(pending.into_iter().map(|(seed, cfg)| async move {
                tracing::info!(name, seed, engine = %self.tuner.engine(), "fine-tuning");
                (seed, self.tuner.fine_tune(dataset, &cfg).await)
            }))
            .buffer_unordered(self.concurrency);
        let mut first_error = None;
        let mut trained: Vec<(u64, TrainedModel)> = Vec::new();
        while let Some((seed, result)) = finished.next().await {
            let model = match result {
                Ok(model) => model,
                Err(source) => {
                    tracing::warn!(name, seed, error = %source, "fine-tune failed");
                    first_error.get_or_insert(TrainingError::Seed { seed, source });
                    continue;
                }
            };
            let path = self.manifest_path(name, seed);
            if let Some(other) = shared_output(&model, &trained, &done) {
                // Two seeds wrote one artefact: neither model is what its manifest would say.
                // Retract the other seed if this run recorded it.
                if trained.iter().any(|(s, _)| *s == other) {
                    trained.retain(|(s, _)| *s != other);
                    if let Err(e) = self.retract(&mut registry, name, other) {
                        first_error.get_or_insert(e);
                    }
                }
                first_error.get_or_insert(TrainingError::Manifest {
                    path,
                    message: format!(
                        "run `{name}`: seeds {other} and {seed} both produced model `{}`; the \
                         engine names its output without the seed (drop a fixed `suffix` from \
                         the config)",
                        model.model_id
                    ),
                });
                continue;
            }
            let manifest = Manifest {
                format: FORMAT_VERSION,
                name: name.to_owned(),
                seed,
                examples: dataset.len(),
                created_unix_s: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
                request: seed_config(config, seed),
                trained: model,
            };
            let recorded = manifest
                .write(&path)
                .and_then(|()| self.register(&mut registry, &manifest, &path));
            match recorded {
                Ok(()) => {
                    tracing::info!(name, seed, model = %manifest.trained.model_id, "trained and recorded");
                    trained.push((seed, manifest.trained));
                }
                Err(e) => {
                    tracing::warn!(name, seed, error = %e, "trained but could not be recorded");
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let mut out = Vec::with_capacity(seeds.len());
        for &seed in seeds {
            if let Some(pos) = done.iter().position(|(s, _)| *s == seed) {
                out.push((done.swap_remove(pos).1, SeedStatus::Skipped));
            } else if let Some(pos) = trained.iter().position(|(s, _)| *s == seed) {
                out.push((trained.swap_remove(pos).1, SeedStatus::Trained));
            }
        }
        Ok(out)
    }

    /// Removes the manifest and registry entry of `seed` (recorded by this run, then found to
    /// share its artefact with another seed).
    fn retract(&self, registry: &mut Registry, name: &str, seed: u64) -> Result<()> {
        let path = self.manifest_path(name, seed);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(TrainingError::io(&path, e)),
        }
        registry.remove(&crate::registry::entry_key(name, seed))?;
        Ok(())
    }

    fn register(&self, registry: &mut Registry, manifest: &Manifest, path: &Path) -> Result<()> {
        let entry =
            RegistryEntry::from_manifest(manifest, relative_to_registry(&self.registry, path));
        let key = crate::registry::entry_key(&manifest.name, manifest.seed);
        if registry.get(&key) != Some(&entry) {
            registry.insert(entry)?;
        }
        Ok(())
    }
}

/// `config` with its seed replaced.
pub fn seed_config(config: &FineTuneConfig, seed: u64) -> FineTuneConfig {
    let mut c = config.clone();
    c.seed = seed;
    c
}

fn seed_dir(root: &Path, name: &str, seed: u64) -> PathBuf {
    root.join(name).join(format!("seed-{seed}"))
}

fn relative_to_registry(registry: &Path, manifest: &Path) -> PathBuf {
    registry
        .parent()
        .and_then(|dir| manifest.strip_prefix(dir).ok())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// The seed (finished in this run or earlier) whose model has the same id as `model`: an
/// engine naming its output without the seed makes two seeds share one artefact.
fn shared_output(
    model: &TrainedModel,
    trained: &[(u64, TrainedModel)],
    done: &[(u64, TrainedModel)],
) -> Option<u64> {
    trained
        .iter()
        .chain(done)
        .find(|(_, m)| m.model_id == model.model_id)
        .map(|(s, _)| *s)
}

fn check_matches(
    m: &Manifest,
    path: &Path,
    engine: &str,
    data_hash: &str,
    cfg: &FineTuneConfig,
) -> Result<()> {
    let mismatch = |field: &str, have: String, want: String| TrainingError::Manifest {
        path: path.to_owned(),
        message: format!(
            "field `{field}`: existing model has {have}, this run asks for {want}; \
             use another run name or remove the directory to retrain"
        ),
    };
    if m.trained.engine != engine {
        return Err(mismatch(
            "engine",
            m.trained.engine.clone(),
            engine.to_owned(),
        ));
    }
    if m.trained.data_hash != data_hash {
        return Err(mismatch(
            "data_hash",
            m.trained.data_hash.clone(),
            data_hash.to_owned(),
        ));
    }
    if &m.request != cfg {
        let have = serde_json::to_string(&m.request).unwrap_or_default();
        let want = serde_json::to_string(cfg).unwrap_or_default();
        return Err(mismatch("config", have, want));
    }
    Ok(())
}
