//! Per-model manifests and the registry file that lets later evaluations find fine-tunes by
//! name.
//!
//! # Layout
//!
//! ```text
//! <root>/registry.json                 {"format":1,"models":{"<name>/seed-<seed>": RegistryEntry}}
//! <root>/<name>/seed-<seed>/manifest.json   Manifest (one per trained model)
//! ```
//!
//! A [`Manifest`] is a [`TrainedModel`] (engine, model id, full config with base model, seed and
//! hyperparameters, data hash, artefact, engine details such as the job id) plus the run name,
//! the number of examples and a creation time. The registry holds one [`RegistryEntry`] per
//! model, keyed `"<name>/seed-<seed>"`.
//!
//! # Concurrent writers
//!
//! Several runs (threads or processes) may share one registry file. [`Registry::insert`] holds
//! an exclusive advisory lock on a sidecar `<registry>.lock` file (via `fs4`; released when the
//! insert returns or the process dies) while it re-reads the file, adds its entry and rewrites
//! it with an atomic, fsynced write, so no writer's entry is lost and readers (which take no
//! lock) always see a complete file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use psyche_core::{FineTuneConfig, FineTuner, Model, TrainedModel};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainingError};
use crate::fsutil;

/// Current manifest and registry format version.
pub const FORMAT_VERSION: u32 = 1;

/// The registry key of one model: `"<name>/seed-<seed>"`.
pub fn entry_key(name: &str, seed: u64) -> String {
    format!("{name}/seed-{seed}")
}

/// Checks a run name: non-empty, ASCII letters, digits, `.`, `_` and `-` only (it becomes a
/// directory name and part of registry keys).
///
/// # Errors
///
/// [`TrainingError::Config`] naming the field `name`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(TrainingError::config(
            "name",
            format!(
                "`{name}` must be non-empty ASCII letters, digits, `.`, `_` or `-`, not starting with `.`"
            ),
        ))
    }
}

/// Everything recorded about one trained model, written next to its artefacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version ([`FORMAT_VERSION`]).
    pub format: u32,
    /// The run name (shared by all seeds of one dataset × config).
    pub name: String,
    /// The seed (also in `trained.config.seed`).
    pub seed: u64,
    /// Number of training examples.
    pub examples: usize,
    /// Seconds since the Unix epoch when training finished.
    pub created_unix_s: u64,
    /// The config as requested (with this seed); reruns match on it, since an engine may record
    /// a completed config in `trained.config`.
    pub request: FineTuneConfig,
    /// The engine's result: engine, model id, config (base, hyperparameters), data hash,
    /// artefact and details.
    #[serde(flatten)]
    pub trained: TrainedModel,
}

impl Manifest {
    /// Reads a manifest; `Ok(None)` when the file does not exist.
    ///
    /// # Errors
    ///
    /// [`TrainingError::Manifest`] naming the file and field when malformed.
    pub fn read(path: &Path) -> Result<Option<Manifest>> {
        fsutil::read_json(path)
    }

    /// Writes the manifest atomically.
    ///
    /// # Errors
    ///
    /// [`TrainingError::Io`].
    pub fn write(&self, path: &Path) -> Result<()> {
        fsutil::write_json(path, self)
    }
}

/// One registered model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryEntry {
    /// The run name.
    pub name: String,
    /// The seed.
    pub seed: u64,
    /// The engine that trained it.
    pub engine: String,
    /// The base model.
    pub base_model: String,
    /// The id to evaluate it under.
    pub model_id: String,
    /// Hash of the training data.
    pub data_hash: String,
    /// Path of the manifest (absolute, or relative to the registry's directory).
    pub manifest: PathBuf,
    /// Local artefact, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<PathBuf>,
}

impl RegistryEntry {
    /// The entry for a manifest stored at `manifest_path`.
    pub fn from_manifest(manifest: &Manifest, manifest_path: PathBuf) -> Self {
        Self {
            name: manifest.name.clone(),
            seed: manifest.seed,
            engine: manifest.trained.engine.clone(),
            base_model: manifest.trained.config.base_model.clone(),
            model_id: manifest.trained.model_id.clone(),
            data_hash: manifest.trained.data_hash.clone(),
            manifest: manifest_path,
            artifact: manifest.trained.artifact.clone(),
        }
    }
}

/// The registry file: every trained model by `"<name>/seed-<seed>"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    /// Format version.
    pub format: u32,
    /// Entries by key.
    pub models: BTreeMap<String, RegistryEntry>,
    #[serde(skip)]
    path: PathBuf,
}

impl Registry {
    /// Opens a registry; an absent file is an empty registry.
    ///
    /// # Errors
    ///
    /// [`TrainingError::Manifest`] when the file is malformed.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let mut reg: Registry = fsutil::read_json(&path)?.unwrap_or(Registry {
            format: FORMAT_VERSION,
            models: BTreeMap::new(),
            path: PathBuf::new(),
        });
        if reg.format > FORMAT_VERSION {
            return Err(TrainingError::Manifest {
                path,
                message: format!(
                    "field `format`: version {} is newer than this library ({FORMAT_VERSION})",
                    reg.format
                ),
            });
        }
        reg.path = path;
        Ok(reg)
    }

    /// The registry file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One model by key (`"<name>/seed-<seed>"`).
    pub fn get(&self, key: &str) -> Option<&RegistryEntry> {
        self.models.get(key)
    }

    /// All seeds of a run, ordered by seed.
    pub fn group(&self, name: &str) -> Vec<&RegistryEntry> {
        let mut v: Vec<&RegistryEntry> = self.models.values().filter(|e| e.name == name).collect();
        v.sort_by_key(|e| e.seed);
        v
    }

    /// The distinct run names.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.models.values().map(|e| e.name.clone()).collect();
        v.dedup();
        v.sort();
        v.dedup();
        v
    }

    /// Adds or replaces an entry under its key. Under the registry's lock it re-reads the file
    /// (keeping other writers' entries), inserts, and writes atomically; `self` then holds the
    /// fresh contents.
    ///
    /// # Errors
    ///
    /// [`TrainingError::Io`] (lock file, write) / [`TrainingError::Manifest`] (malformed file).
    pub fn insert(&mut self, entry: RegistryEntry) -> Result<()> {
        let key = entry_key(&entry.name, entry.seed);
        let _lock = WriterLock::acquire(&self.path)?;
        let mut fresh = Registry::open(self.path.clone())?;
        fresh.models.insert(key, entry);
        fsutil::write_json(&fresh.path, &fresh)?;
        *self = fresh;
        Ok(())
    }

    /// Removes the entry under `key`, if any, under the registry's lock (as
    /// [`insert`](Self::insert)). Returns whether there was one. The manifest is left alone.
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert).
    pub fn remove(&mut self, key: &str) -> Result<bool> {
        let _lock = WriterLock::acquire(&self.path)?;
        let mut fresh = Registry::open(self.path.clone())?;
        let removed = fresh.models.remove(key).is_some();
        if removed {
            fsutil::write_json(&fresh.path, &fresh)?;
        }
        *self = fresh;
        Ok(removed)
    }

    /// The sidecar file whose exclusive lock serialises writers of the registry at `path`.
    pub fn lock_path(path: &Path) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "registry.json".into());
        path.with_file_name(format!("{name}.lock"))
    }

    /// The manifest path of an entry, resolved against the registry's directory.
    pub fn manifest_path(&self, entry: &RegistryEntry) -> PathBuf {
        if entry.manifest.is_absolute() {
            entry.manifest.clone()
        } else {
            self.path
                .parent()
                .unwrap_or(Path::new("."))
                .join(&entry.manifest)
        }
    }

    /// Reads an entry's manifest.
    ///
    /// # Errors
    ///
    /// [`TrainingError::Manifest`] when it is missing or malformed.
    pub fn manifest(&self, entry: &RegistryEntry) -> Result<Manifest> {
        let path = self.manifest_path(entry);
        Manifest::read(&path)?.ok_or_else(|| TrainingError::Manifest {
            path,
            message: "manifest listed in the registry does not exist".into(),
        })
    }

    /// Loads a registered model through the engine that trained it.
    ///
    /// # Errors
    ///
    /// [`TrainingError::Config`] when `tuner` is a different engine; the engine's load errors.
    pub async fn load<F: FineTuner + ?Sized>(
        &self,
        key: &str,
        tuner: &F,
    ) -> Result<Arc<dyn Model>> {
        let entry = self.get(key).ok_or_else(|| {
            TrainingError::config(
                "key",
                format!("no model `{key}` in {}", self.path.display()),
            )
        })?;
        if entry.engine != tuner.engine() {
            return Err(TrainingError::config(
                "engine",
                format!(
                    "`{key}` was trained by `{}`, not `{}`",
                    entry.engine,
                    tuner.engine()
                ),
            ));
        }
        let manifest = self.manifest(entry)?;
        Ok(tuner.load(&manifest.trained).await?)
    }
}

/// An exclusive advisory lock on a registry's sidecar lock file, released on drop (and by the
/// OS when the process dies).
struct WriterLock {
    file: std::fs::File,
    path: PathBuf,
}

impl WriterLock {
    /// Blocks until this writer holds the lock of the registry at `registry`.
    fn acquire(registry: &Path) -> Result<Self> {
        let path = Registry::lock_path(registry);
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| TrainingError::io(dir, e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| TrainingError::io(&path, e))?;
        fs4::FileExt::lock(&file).map_err(|e| TrainingError::io(&path, e))?;
        Ok(Self { file, path })
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        if let Err(e) = fs4::FileExt::unlock(&self.file) {
            tracing::debug!(path = %self.path.display(), error = %e, "unlocking the registry");
        }
    }
}
