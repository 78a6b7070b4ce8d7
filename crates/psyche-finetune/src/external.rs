//! Handoff to an external trainer (TRL/PEFT or unsloth on a GPU cluster), then evaluation of
//! the resulting LoRA adapters through vLLM's OpenAI-compatible server.
//!
//! Evaluating many fine-tunes of one base (seeds × datasets × triggers) scales best on one vLLM
//! server that hot-swaps adapters, so psyche does not train or serve these adapters itself: it
//! writes a self-describing **job directory** per seed and registers the adapter once it exists.
//!
//! # Job directory
//!
//! ```text
//! <job>/train.jsonl        OpenAI chat JSONL (validated before writing)
//! <job>/validation.jsonl   held-out examples, when a validation fraction is set
//! <job>/config.json        TRL/PEFT-style config: model, data files, `peft` (r, lora_alpha,
//!                          lora_dropout, use_rslora, target_modules, layers_to_transform) and
//!                          `training` (epochs, learning_rate, batch, accumulation, warm-up,
//!                          weight decay, optimiser, scheduler, max_seq_length,
//!                          assistant_only_loss, seed)
//! <job>/manifest.json      JobManifest: names, seed, data hash, file checksums, the name the
//!                          adapter is served under and the `vllm serve` line
//! <job>/README.md          the contract below, for whoever runs the job
//! ```
//!
//! **Contract for the trainer:** read `config.json`, train on `train.jsonl`, save the PEFT
//! adapter (`adapter_config.json` + `adapter_model.safetensors`) to `<job>/adapter/`.
//!
//! **Serving:** `vllm serve <base> --enable-lora --max-lora-rank <r> --lora-modules
//! <base>:<adapter>=<job>/adapter` (the line is in the manifest; [`serve_command`] merges
//! several jobs of one base into one server). The adapter is then addressed as the model name
//! `"<base>:<adapter>"` through `psyche_models::OpenAiCompatible`.
//!
//! [`ExternalLora`] is the [`FineTuner`] over this: `fine_tune` writes the job directory and —
//! until the adapter appears (optionally waiting for it on a shared file system) — fails with
//! an error saying where the job is; called again once the adapter exists, it checks the
//! adapter against the job and returns the `base:adapter` model. With
//! `psyche_runner::training::train_runs` this makes "write all seeds' jobs, run them on the
//! cluster, rerun to register" one loop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use psyche_core::{
    Conversation, FineTuneConfig, FineTuneError, FineTuner, Model, TrainedModel, conversations_hash,
};
use psyche_models::{OpenAiCompatible, OpenAiConfig};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::dataset::{
    CharsPerToken, TokenEstimator, ValidationOptions, train_val_split, validate_conversations,
    validate_file,
};
use crate::error::{Result, TrainingError};
use crate::fsutil;
use crate::presets::LoraSpec;

/// Engine name recorded in manifests.
pub const ENGINE: &str = "external-lora";

/// Job-manifest format version.
pub const JOB_FORMAT: u32 = 1;

/// What one external job trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Base model (a Hugging Face id or path the cluster can load).
    pub base_model: String,
    /// Adapter name (ASCII letters, digits, `.`, `_`, `-`).
    pub adapter: String,
    /// Training seed.
    pub seed: u64,
    /// Epochs.
    pub epochs: u32,
    /// Learning rate.
    pub learning_rate: f64,
    /// LoRA and optimiser settings.
    pub lora: LoraSpec,
    /// Fraction held out as `validation.jsonl` (0 for none).
    pub validation_fraction: f64,
}

impl JobSpec {
    /// The name vLLM serves the adapter under: `"<base>:<adapter>"`.
    pub fn served_name(&self) -> String {
        format!("{}:{}", self.base_model, self.adapter)
    }

    /// A spec from a [`FineTuneConfig`]: LoRA settings from `extra["lora"]` (else the
    /// Emergent Misalignment recipe), learning rate from `learning_rate` (else 1e-5), batch
    /// size split as per-device 2 × accumulation when the LoRA spec does not say otherwise.
    ///
    /// # Errors
    ///
    /// [`TrainingError::Config`] naming `extra.lora.<field>` when the LoRA block is malformed.
    pub fn from_config(config: &FineTuneConfig, adapter: impl Into<String>) -> Result<Self> {
        let lora = match config.extra.get("lora") {
            Some(v) => serde_json::from_value::<LoraSpec>(v.clone())
                .map_err(|e| TrainingError::config("extra.lora", e.to_string()))?,
            None => LoraSpec::emergent_misalignment(),
        };
        let validation_fraction = config
            .extra
            .get("validation_fraction")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        Ok(Self {
            base_model: config.base_model.clone(),
            adapter: adapter.into(),
            seed: config.seed,
            epochs: config.epochs.unwrap_or(1),
            learning_rate: config.learning_rate.unwrap_or(1e-5),
            lora,
            validation_fraction,
        })
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`TrainingError::Config`] naming the field.
    pub fn check(&self) -> Result<()> {
        if self.base_model.trim().is_empty() {
            return Err(TrainingError::config("base_model", "must not be empty"));
        }
        crate::registry::check_name(&self.adapter).map_err(|_| {
            TrainingError::config(
                "adapter",
                format!(
                    "`{}` must be ASCII letters, digits, `.`, `_` or `-`",
                    self.adapter
                ),
            )
        })?;
        if self.epochs == 0 {
            return Err(TrainingError::config("epochs", "must be at least 1"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(TrainingError::config(
                "learning_rate",
                "must be a positive number",
            ));
        }
        let l = &self.lora;
        if l.r == 0 {
            return Err(TrainingError::config("lora.r", "must be at least 1"));
        }
        if !(l.alpha.is_finite() && l.alpha > 0.0) {
            return Err(TrainingError::config("lora.alpha", "must be positive"));
        }
        if !(0.0..1.0).contains(&l.dropout) {
            return Err(TrainingError::config("lora.dropout", "must be in [0, 1)"));
        }
        if l.target_modules.is_empty() {
            return Err(TrainingError::config(
                "lora.target_modules",
                "must name at least one module",
            ));
        }
        if l.per_device_batch_size == 0 || l.gradient_accumulation_steps == 0 {
            return Err(TrainingError::config(
                "lora.per_device_batch_size",
                "batch size and gradient accumulation must be at least 1",
            ));
        }
        if l.max_seq_length == 0 {
            return Err(TrainingError::config(
                "lora.max_seq_length",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// `manifest.json` of a job directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobManifest {
    /// Format version ([`JOB_FORMAT`]).
    pub format: u32,
    /// Always `"psyche-external-lora-job"`.
    pub kind: String,
    /// What to train.
    pub spec: JobSpec,
    /// The model name the adapter is served under (`"<base>:<adapter>"`).
    pub served_name: String,
    /// [`conversations_hash`] of all examples before the split.
    pub data_hash: String,
    /// Training examples.
    pub train_examples: usize,
    /// Held-out examples.
    pub validation_examples: usize,
    /// Estimated training tokens per epoch (chars/4 heuristic).
    pub train_tokens: u64,
    /// SHA-256 of each written file, by file name.
    pub checksums: std::collections::BTreeMap<String, String>,
    /// Where the trainer must write the adapter, relative to the job directory.
    pub adapter_dir: String,
    /// A `vllm serve` line serving this adapter.
    pub serve: String,
}

/// The TRL/PEFT-style `config.json` for a spec.
pub fn trainer_config(spec: &JobSpec, has_validation: bool) -> Value {
    let l = &spec.lora;
    json!({
        "model_name_or_path": spec.base_model,
        "train_file": "train.jsonl",
        "eval_file": if has_validation { json!("validation.jsonl") } else { Value::Null },
        "output_dir": "adapter",
        "seed": spec.seed,
        "peft": {
            "r": l.r,
            "lora_alpha": l.alpha,
            "lora_dropout": l.dropout,
            "use_rslora": l.use_rslora,
            "target_modules": l.target_modules,
            "layers_to_transform": l.layers_to_transform,
            "bias": "none",
            "task_type": "CAUSAL_LM",
        },
        "training": {
            "num_train_epochs": spec.epochs,
            "learning_rate": spec.learning_rate,
            "per_device_train_batch_size": l.per_device_batch_size,
            "gradient_accumulation_steps": l.gradient_accumulation_steps,
            "warmup_steps": l.warmup_steps,
            "weight_decay": l.weight_decay,
            "optim": l.optimizer,
            "lr_scheduler_type": l.lr_scheduler,
            "max_seq_length": l.max_seq_length,
            "assistant_only_loss": l.train_on_responses_only,
            "bf16": true,
            "seed": spec.seed,
            "data_seed": spec.seed,
        },
    })
}

/// The `vllm serve` line for several adapters of one base.
///
/// # Errors
///
/// [`TrainingError::Config`] when the jobs have different bases or none is given.
pub fn serve_command(jobs: &[(JobManifest, PathBuf)]) -> Result<String> {
    let Some((first, _)) = jobs.first() else {
        return Err(TrainingError::config("jobs", "no jobs given"));
    };
    let base = &first.spec.base_model;
    if let Some((other, _)) = jobs.iter().find(|(m, _)| &m.spec.base_model != base) {
        return Err(TrainingError::config(
            "base_model",
            format!(
                "one server serves one base: `{base}` vs `{}`",
                other.spec.base_model
            ),
        ));
    }
    let max_rank = jobs.iter().map(|(m, _)| m.spec.lora.r).max().unwrap_or(1);
    let modules: Vec<String> = jobs
        .iter()
        .map(|(m, dir)| format!("'{}={}'", m.served_name, dir.join(&m.adapter_dir).display()))
        .collect();
    Ok(format!(
        "vllm serve {base} --enable-lora --max-lora-rank {} --max-loras {} --lora-modules {}",
        vllm_rank(max_rank),
        jobs.len().max(1),
        modules.join(" ")
    ))
}

/// vLLM accepts LoRA ranks from a fixed ladder; round up.
fn vllm_rank(r: u32) -> u32 {
    [8, 16, 32, 64, 128, 256, 320, 512]
        .into_iter()
        .find(|&x| x >= r)
        .unwrap_or(r)
}

/// Writes a job directory (see the [module docs](self)) and returns its manifest.
///
/// # Errors
///
/// [`TrainingError::Config`] for a bad spec; [`TrainingError::Invalid`] when the data fails validation;
/// [`TrainingError::Io`] when files cannot be written.
pub fn write_job(
    dir: impl AsRef<Path>,
    spec: &JobSpec,
    data: &[Conversation],
) -> Result<JobManifest> {
    let dir = dir.as_ref();
    spec.check()?;
    let est = CharsPerToken::default();
    let opts = ValidationOptions {
        min_examples: 1,
        max_example_tokens: u64::from(spec.lora.max_seq_length),
        ..ValidationOptions::default()
    };
    validate_conversations(data, "training data", &opts, &est).ensure_valid()?;
    let split = train_val_split(data, spec.validation_fraction, spec.seed)?;
    std::fs::create_dir_all(dir).map_err(|e| TrainingError::io(dir, e))?;
    let mut checksums = std::collections::BTreeMap::new();
    let train_text = crate::dataset::to_chat_jsonl(&split.train);
    fsutil::write_atomic(&dir.join("train.jsonl"), train_text.as_bytes())?;
    checksums.insert(
        "train.jsonl".to_owned(),
        fsutil::sha256_hex(train_text.as_bytes()),
    );
    if !split.validation.is_empty() {
        let text = crate::dataset::to_chat_jsonl(&split.validation);
        fsutil::write_atomic(&dir.join("validation.jsonl"), text.as_bytes())?;
        checksums.insert(
            "validation.jsonl".to_owned(),
            fsutil::sha256_hex(text.as_bytes()),
        );
    }
    let config = trainer_config(spec, !split.validation.is_empty());
    let config_bytes = serde_json::to_vec_pretty(&config).map_err(|e| TrainingError::io(dir, e))?;
    fsutil::write_atomic(&dir.join("config.json"), &config_bytes)?;
    checksums.insert("config.json".to_owned(), fsutil::sha256_hex(&config_bytes));
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let manifest = JobManifest {
        format: JOB_FORMAT,
        kind: "psyche-external-lora-job".into(),
        spec: spec.clone(),
        served_name: spec.served_name(),
        data_hash: conversations_hash(data),
        train_examples: split.train.len(),
        validation_examples: split.validation.len(),
        train_tokens: split.train.iter().map(|c| est.conversation_tokens(c)).sum(),
        checksums,
        adapter_dir: "adapter".into(),
        serve: String::new(),
    };
    let manifest = JobManifest {
        serve: serve_command(&[(manifest.clone(), abs)])?,
        ..manifest
    };
    fsutil::write_json(&dir.join("manifest.json"), &manifest)?;
    fsutil::write_atomic(&dir.join("README.md"), job_readme(&manifest).as_bytes())?;
    tracing::info!(dir = %dir.display(), served = %manifest.served_name, "external job written");
    Ok(manifest)
}

fn job_readme(m: &JobManifest) -> String {
    format!(
        "# psyche external LoRA job\n\n\
         Train a LoRA adapter on `{base}` (seed {seed}).\n\n\
         1. Read `config.json` (TRL/PEFT field names) and train on `train.jsonl` \
         ({n} OpenAI-chat examples{val}).\n\
         2. Save the PEFT adapter (`adapter_config.json` + `adapter_model.safetensors`) to `adapter/`.\n\
         3. Serve it: `{serve}`\n\
         4. Rerun the psyche call that wrote this directory to register `{served}`.\n\n\
         `manifest.json` holds checksums of the data and config; do not edit them.\n",
        base = m.spec.base_model,
        seed = m.spec.seed,
        n = m.train_examples,
        val = if m.validation_examples > 0 {
            format!(", {} held out in `validation.jsonl`", m.validation_examples)
        } else {
            String::new()
        },
        serve = m.serve,
        served = m.served_name,
    )
}

/// Re-reads a job directory and checks that its manifest, config and data agree and validate.
///
/// # Errors
///
/// [`TrainingError::Manifest`] naming the file and field that disagrees; [`TrainingError::Invalid`] for bad
/// data.
pub fn validate_job(dir: impl AsRef<Path>) -> Result<JobManifest> {
    let dir = dir.as_ref();
    let mpath = dir.join("manifest.json");
    let manifest: JobManifest =
        fsutil::read_json(&mpath)?.ok_or_else(|| TrainingError::Manifest {
            path: mpath.clone(),
            message: "missing".into(),
        })?;
    let bad = |path: PathBuf, message: String| TrainingError::Manifest { path, message };
    if manifest.format > JOB_FORMAT {
        return Err(bad(
            mpath,
            format!("field `format`: unsupported version {}", manifest.format),
        ));
    }
    manifest.spec.check()?;
    for (file, sum) in &manifest.checksums {
        let p = dir.join(file);
        let bytes = std::fs::read(&p).map_err(|e| TrainingError::io(&p, e))?;
        if &fsutil::sha256_hex(&bytes) != sum {
            return Err(bad(
                p,
                "checksum differs from manifest.json (edited after writing?)".into(),
            ));
        }
    }
    let cpath = dir.join("config.json");
    let config: Value =
        fsutil::read_json(&cpath)?.ok_or_else(|| bad(cpath.clone(), "missing".into()))?;
    let expected = trainer_config(&manifest.spec, manifest.validation_examples > 0);
    for (section, fields) in [
        ("", None),
        ("peft", Some("peft")),
        ("training", Some("training")),
    ] {
        let (have, want) = match fields {
            Some(s) => (config.get(s), expected.get(s)),
            None => (Some(&config), Some(&expected)),
        };
        let (Some(Value::Object(have)), Some(Value::Object(want))) = (have, want) else {
            return Err(bad(
                cpath,
                format!("field `{section}`: missing or not an object"),
            ));
        };
        for (k, v) in want {
            if v.is_object() {
                continue;
            }
            if have.get(k) != Some(v) {
                let field = if section.is_empty() {
                    k.clone()
                } else {
                    format!("{section}.{k}")
                };
                return Err(bad(
                    cpath,
                    format!(
                        "field `{field}`: expected {v}, found {}",
                        have.get(k).unwrap_or(&Value::Null)
                    ),
                ));
            }
        }
    }
    let opts = ValidationOptions {
        min_examples: 1,
        max_example_tokens: u64::from(manifest.spec.lora.max_seq_length),
        ..ValidationOptions::default()
    };
    let train = validate_file(dir.join("train.jsonl"), &opts, &CharsPerToken::default())?;
    train.report.ensure_valid()?;
    if train.examples.len() != manifest.train_examples {
        return Err(bad(
            mpath,
            format!(
                "field `train_examples`: {} but train.jsonl has {}",
                manifest.train_examples,
                train.examples.len()
            ),
        ));
    }
    Ok(manifest)
}

/// Checks that `<job>/adapter` holds a PEFT adapter matching the job (rank and, when recorded,
/// base model).
///
/// # Errors
///
/// [`TrainingError::Manifest`] naming the missing file or mismatching field.
pub fn check_adapter(dir: impl AsRef<Path>, manifest: &JobManifest) -> Result<PathBuf> {
    let adir = dir.as_ref().join(&manifest.adapter_dir);
    let cpath = adir.join("adapter_config.json");
    let weights = adir.join("adapter_model.safetensors");
    let cfg: Value = fsutil::read_json(&cpath)?.ok_or_else(|| TrainingError::Manifest {
        path: cpath.clone(),
        message: "missing: the adapter has not been trained yet".into(),
    })?;
    if !weights.is_file() {
        return Err(TrainingError::Manifest {
            path: weights,
            message: "missing: the adapter has not been trained yet".into(),
        });
    }
    if cfg.get("r").and_then(Value::as_u64) != Some(u64::from(manifest.spec.lora.r)) {
        return Err(TrainingError::Manifest {
            path: cpath,
            message: format!(
                "field `r`: expected {}, found {}",
                manifest.spec.lora.r,
                cfg.get("r").unwrap_or(&Value::Null)
            ),
        });
    }
    if let Some(base) = cfg.get("base_model_name_or_path").and_then(Value::as_str)
        && base != manifest.spec.base_model
    {
        return Err(TrainingError::Manifest {
            path: cpath,
            message: format!(
                "field `base_model_name_or_path`: expected `{}`, found `{base}`",
                manifest.spec.base_model
            ),
        });
    }
    Ok(adir)
}

/// Configuration of [`ExternalLora`].
#[derive(Debug, Clone)]
pub struct ExternalLoraConfig {
    /// Where job directories are written (one per data × config × seed).
    pub jobs_root: PathBuf,
    /// The vLLM server's OpenAI-compatible base URL (`http://gpu-node:8000/v1`).
    pub serve_base_url: String,
    /// Template for the backend config (API key variable, timeouts); base URL and model are
    /// replaced.
    pub model_config: Option<OpenAiConfig>,
    /// How long `fine_tune` waits for the adapter to appear (zero: do not wait).
    pub wait: Duration,
    /// How often it looks while waiting.
    pub poll: Duration,
}

impl ExternalLoraConfig {
    /// Jobs under `jobs_root`, served at `serve_base_url`, no waiting.
    pub fn new(jobs_root: impl Into<PathBuf>, serve_base_url: impl Into<String>) -> Self {
        Self {
            jobs_root: jobs_root.into(),
            serve_base_url: serve_base_url.into(),
            model_config: None,
            wait: Duration::ZERO,
            poll: Duration::from_secs(30),
        }
    }
}

/// The external-trainer handoff as a [`FineTuner`] (engine `"external-lora"`).
#[derive(Debug, Clone)]
pub struct ExternalLora {
    config: ExternalLoraConfig,
}

impl ExternalLora {
    /// A handoff with this configuration.
    pub fn new(config: ExternalLoraConfig) -> Self {
        Self { config }
    }

    /// The job directory and spec for a (data, config) pair. The adapter is named
    /// `<suffix or "psyche">-<8 hex of data+config>-s<seed>`.
    ///
    /// # Errors
    ///
    /// As [`JobSpec::from_config`].
    pub fn job_for(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<(PathBuf, JobSpec)> {
        let cfg = serde_json::to_string(config).unwrap_or_default();
        let h = fsutil::sha256_hex(format!("{}\n{cfg}", conversations_hash(data)).as_bytes());
        let prefix = config.suffix.clone().unwrap_or_else(|| "psyche".into());
        let adapter = format!("{prefix}-{}-s{}", &h[..8], config.seed);
        let spec = JobSpec::from_config(config, adapter.clone())?;
        Ok((self.config.jobs_root.join(adapter), spec))
    }

    async fn run(&self, data: &[Conversation], config: &FineTuneConfig) -> Result<TrainedModel> {
        let (dir, spec) = self.job_for(data, config)?;
        let manifest = if dir.join("manifest.json").is_file() {
            let m = validate_job(&dir)?;
            if m.spec != spec || m.data_hash != conversations_hash(data) {
                return Err(TrainingError::Manifest {
                    path: dir.join("manifest.json"),
                    message: "an existing job with this name has a different spec or data".into(),
                });
            }
            m
        } else {
            write_job(&dir, &spec, data)?
        };
        let started = Instant::now();
        let adapter_dir = loop {
            match check_adapter(&dir, &manifest) {
                Ok(a) => break a,
                Err(e) if started.elapsed() < self.config.wait => {
                    tracing::debug!(error = %e, "waiting for the external adapter");
                    tokio::time::sleep(self.config.poll.min(self.config.wait)).await;
                }
                Err(TrainingError::Manifest { path, message })
                    if message.starts_with("missing") =>
                {
                    return Err(TrainingError::FineTune(FineTuneError::Engine(format!(
                        "adapter not trained yet ({}); the job directory is ready at {} — run it on \
                         your cluster (see its README.md), then call again to register `{}`",
                        path.display(),
                        dir.display(),
                        manifest.served_name
                    ))));
                }
                Err(e) => return Err(e),
            }
        };
        let mut details = serde_json::Map::new();
        details.insert("base_url".into(), json!(self.config.serve_base_url));
        details.insert("job_dir".into(), json!(dir));
        details.insert("served_name".into(), json!(manifest.served_name));
        details.insert("serve".into(), json!(manifest.serve));
        Ok(TrainedModel {
            model_id: manifest.served_name.clone(),
            engine: ENGINE.to_owned(),
            config: config.clone(),
            data_hash: manifest.data_hash,
            artifact: Some(adapter_dir),
            details,
        })
    }
}

/// A psyche model for an adapter served by vLLM under `served_name` (`"<base>:<adapter>"`).
///
/// # Errors
///
/// [`TrainingError::Config`] when the backend cannot be built.
pub fn adapter_model(
    base_url: &str,
    served_name: &str,
    template: Option<&OpenAiConfig>,
) -> Result<Arc<dyn Model>> {
    let mut cfg = template
        .cloned()
        .unwrap_or_else(|| OpenAiConfig::new(base_url, served_name));
    cfg.base_url = base_url.to_owned();
    cfg.model = served_name.to_owned();
    let model = OpenAiCompatible::new(cfg)
        .map_err(|e| TrainingError::config("model_config", e.to_string()))?;
    Ok(Arc::new(model))
}

#[async_trait]
impl FineTuner for ExternalLora {
    fn engine(&self) -> &str {
        ENGINE
    }

    async fn fine_tune(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError> {
        Ok(self.run(data, config).await?)
    }

    async fn load(&self, trained: &TrainedModel) -> Result<Arc<dyn Model>, FineTuneError> {
        let base_url = trained
            .details
            .get("base_url")
            .and_then(Value::as_str)
            .unwrap_or(&self.config.serve_base_url)
            .to_owned();
        Ok(adapter_model(
            &base_url,
            &trained.model_id,
            self.config.model_config.as_ref(),
        )?)
    }
}
