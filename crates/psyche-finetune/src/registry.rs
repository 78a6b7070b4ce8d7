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
//! model, keyed `"<name>/seed-<seed>"`, and is rewritten atomically after re-reading, so
//! several runs can share one registry file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use psyche_core::{FineTuneConfig, FineTuner, Model, TrainedModel};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
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
/// [`Error::Config`] naming the field `name`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::config(
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
    /// [`Error::Manifest`] naming the file and field when malformed.
    pub fn read(path: &Path) -> Result<Option<Manifest>> {
        fsutil::read_json(path)
    }

    /// Writes the manifest atomically.
    ///
    /// # Errors
    ///
    /// [`Error::Io`].
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
    /// [`Error::Manifest`] when the file is malformed.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let mut reg: Registry = fsutil::read_json(&path)?.unwrap_or(Registry {
            format: FORMAT_VERSION,
            models: BTreeMap::new(),
            path: PathBuf::new(),
        });
        if reg.format > FORMAT_VERSION {
            return Err(Error::Manifest {
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

    /// Adds or replaces an entry under its key, re-reading the file first so that concurrent
    /// writers' entries are kept, then writes atomically.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] / [`Error::Manifest`].
    pub fn insert(&mut self, entry: RegistryEntry) -> Result<()> {
        let key = entry_key(&entry.name, entry.seed);
        let mut fresh = Registry::open(self.path.clone())?;
        fresh.models.insert(key, entry);
        fsutil::write_json(&fresh.path, &fresh)?;
        *self = fresh;
        Ok(())
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
    /// [`Error::Manifest`] when it is missing or malformed.
    pub fn manifest(&self, entry: &RegistryEntry) -> Result<Manifest> {
        let path = self.manifest_path(entry);
        Manifest::read(&path)?.ok_or_else(|| Error::Manifest {
            path,
            message: "manifest listed in the registry does not exist".into(),
        })
    }

    /// Loads a registered model through the engine that trained it.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `tuner` is a different engine; the engine's load errors.
    pub async fn load<F: FineTuner + ?Sized>(
        &self,
        key: &str,
        tuner: &F,
    ) -> Result<Arc<dyn Model>> {
        let entry = self.get(key).ok_or_else(|| {
            Error::config(
                "key",
                format!("no model `{key}` in {}", self.path.display()),
            )
        })?;
        if entry.engine != tuner.engine() {
            return Err(Error::config(
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
