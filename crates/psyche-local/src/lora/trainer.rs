//! [`LoraTrainer`]: the training loop and the [`FineTuner`] implementation.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{Tensor, Var};
use futures::channel::oneshot;
use psyche_core::{
    Conversation, FineTuneConfig, FineTuneError, FineTuner, Model, TrainedModel,
    conversations_hash, derive_seed, seeded_rng,
};
use rand::seq::SliceRandom;

use super::adapter::{AdapterManifest, AdapterVars, read_manifest, write_adapter};
use super::config::{AUTO_BATCH_SIZE, AUTO_EPOCHS, ENGINE, FORMAT, LoraConfig};
use super::optim::{AdamW, lr_at};
use super::step::{Example, StepPath, encode_examples, micro_step};
use crate::LocalError;
use crate::config::{LocalConfig, WeightFormat};
use crate::model::{AdapterTag, LocalModel};

/// Trains LoRA adapters on a local model; implements [`FineTuner`] (engine
/// `psyche-local-lora`). Adapters go to `<out_dir>/<model_id>/`. Cheap to clone; clones
/// share the loaded base model.
#[derive(Debug, Clone)]
pub struct LoraTrainer {
    out_dir: PathBuf,
    base: LocalConfig,
    model: Arc<parking_lot::Mutex<Option<LocalModel>>>,
}

impl LoraTrainer {
    /// A trainer writing adapters under `out_dir`; base models load with the default
    /// [`LocalConfig`] (f32 weights).
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        Self {
            out_dir: out_dir.into(),
            base: LocalConfig::default(),
            model: Arc::new(parking_lot::Mutex::new(None)),
        }
    }

    /// Loads base models with this config (its `model` is replaced by the fine-tune config's
    /// `base_model`).
    #[must_use]
    pub fn with_base_config(mut self, config: LocalConfig) -> Self {
        self.base = config;
        self
    }

    /// Reuses an already loaded base model when the fine-tune config names it.
    #[must_use]
    pub fn with_model(self, model: LocalModel) -> Self {
        *self.model.lock() = Some(model);
        self
    }

    /// The directory adapters are written under.
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    fn base_model(&self, name: &str) -> Result<LocalModel, LocalError> {
        let mut cached = self.model.lock();
        if let Some(m) = cached.as_ref()
            && (m.config().model == name || m.id() == name)
        {
            return Ok(m.clone());
        }
        let cfg = LocalConfig {
            model: name.to_owned(),
            weights: WeightFormat::F32,
            ..self.base.clone()
        };
        let m = LocalModel::load(&cfg)?;
        *cached = Some(m.clone());
        Ok(m)
    }

    /// Trains synchronously (the [`FineTuner`] methods run this on a thread of their own).
    ///
    /// # Errors
    ///
    /// [`FineTuneError::Data`] naming the bad example, [`FineTuneError::Config`] naming the bad
    /// field, or the engine's failure.
    pub fn train(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError> {
        self.train_inner(data, config).map(|r| r.0)
    }

    /// Trains synchronously and also returns the tuned model built from the adapter held in
    /// memory (not re-read from disk).
    ///
    /// # Errors
    ///
    /// As [`train`](Self::train).
    pub fn train_model(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<(TrainedModel, LocalModel), FineTuneError> {
        let (trained, model, vars) = self.train_inner(data, config)?;
        let mut set = vars.set.clone();
        set.dropout = 0.0;
        for pairs in &mut set.layers {
            for p in pairs.iter_mut().flatten() {
                p.a = p.a.detach();
                p.b = p.b.detach();
            }
        }
        let dir = trained.artifact.clone().unwrap_or_default();
        let tag = AdapterTag {
            path: dir,
            merged: false,
            summary: serde_json::json!({ "model_id": trained.model_id, "in_memory": true }),
        };
        let tuned = model.with_lora(trained.model_id.clone(), set, tag, false)?;
        Ok((trained, tuned))
    }

    fn train_inner(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<(TrainedModel, LocalModel, AdapterVars), FineTuneError> {
        let started = std::time::Instant::now();
        let mut lora = LoraConfig::from_extra(&config.extra)?;
        if let Some(lr) = config.learning_rate {
            lora.learning_rate = lr;
        }
        let epochs = config.epochs.unwrap_or(AUTO_EPOCHS);
        let batch_size = config.batch_size.unwrap_or(AUTO_BATCH_SIZE);
        // The manifest records the concrete values "auto" resolved to.
        let mut resolved = config.clone();
        resolved.epochs = Some(epochs);
        resolved.batch_size = Some(batch_size);
        let config = &resolved;
        if epochs == 0 {
            return Err(FineTuneError::Config(
                "field `epochs`: must be at least 1".into(),
            ));
        }
        if batch_size == 0 {
            return Err(FineTuneError::Config(
                "field `batch_size`: must be at least 1".into(),
            ));
        }
        let model = self.base_model(&config.base_model)?;
        if model.weight_format() != WeightFormat::F32 {
            return Err(FineTuneError::Config(
                "LoRA training needs f32 weights (LocalConfig.weights = f32)".into(),
            ));
        }
        lora.validate(model.hparams().n_layer)?;
        let examples = encode_examples(&model, data, lora.max_seq_len)?;
        let data_hash = conversations_hash(data);
        let vars = AdapterVars::init(&model, &lora, config.seed, 0.0)?;
        let var_list: Vec<&Var> = vars.vars.iter().flat_map(|(_, _, a, b)| [a, b]).collect();
        let weights = model.weights().clone();
        let mut path = StepPath::new(&weights);
        let mut opt = AdamW::new(&var_list, lora.weight_decay)?;

        let bs = batch_size as usize;
        let micro_per_epoch = examples.len().div_ceil(bs);
        let steps_per_epoch = micro_per_epoch.div_ceil(lora.gradient_accumulation);
        let total = steps_per_epoch * epochs as usize;
        let bar = progress_bar(lora.progress, total);
        let mut dropout_rng = seeded_rng(derive_seed(config.seed, "lora/dropout"));
        let sha = model.sha256()?;
        let base_id = model.id().to_owned();
        let tag = config
            .suffix
            .clone()
            .unwrap_or_else(|| default_tag(config.seed, &data_hash, &lora, epochs, batch_size));
        let model_id = format!("{base_id}+lora-{tag}");
        let out = self.out_dir.join(&model_id);
        let mut losses = Vec::with_capacity(total);
        let mut step_seconds = Vec::with_capacity(total);
        let mut step_tokens = Vec::with_capacity(total);
        let mut step = 0usize;
        let manifest = |steps: usize, losses: &[f64]| AdapterManifest {
            format: FORMAT.into(),
            engine: ENGINE.into(),
            model_id: model_id.clone(),
            base_model: config.base_model.clone(),
            base_model_file: model
                .path()
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            base_model_sha256: sha.clone(),
            lora: lora.clone(),
            data_hash: data_hash.clone(),
            seed: config.seed,
            epochs,
            batch_size,
            learning_rate: lora.learning_rate,
            steps,
            final_loss: losses.last().copied().unwrap_or(f64::NAN),
            losses: losses.to_vec(),
            trainable_parameters: vars.params(),
        };
        for epoch in 0..epochs {
            let mut order: Vec<usize> = (0..examples.len()).collect();
            order.shuffle(&mut seeded_rng(derive_seed(
                config.seed,
                &format!("lora/epoch/{epoch}"),
            )));
            let micro: Vec<Vec<&Example>> = order
                .chunks(bs)
                .map(|c| c.iter().map(|&i| &examples[i]).collect())
                .collect();
            for group in micro.chunks(lora.gradient_accumulation) {
                let step_started = std::time::Instant::now();
                let (step_loss, grads) =
                    accumulate(&model, &vars, &var_list, group, &mut dropout_rng, &mut path)?;
                let lr = lr_at(step, total, lora.warmup_steps, lora.learning_rate);
                opt.step(&var_list, &grads, lr)?;
                losses.push(step_loss);
                step_seconds.push(step_started.elapsed().as_secs_f64());
                step_tokens.push(group.iter().flatten().map(|e| e.ids.len()).sum::<usize>());
                step += 1;
                tracing::debug!(step, loss = step_loss, lr, "lora step");
                bar.set_position(step as u64);
                bar.set_message(format!("loss {step_loss:.4}"));
                if let Some(every) = lora.checkpoint_every
                    && step.is_multiple_of(every)
                    && step < total
                {
                    write_adapter(
                        &out.join(format!("checkpoint-{step}")),
                        &vars,
                        &manifest(step, &losses),
                    )?;
                }
            }
        }
        bar.finish_and_clear();
        write_adapter(&out, &vars, &manifest(step, &losses))?;
        let details = serde_json::Map::from_iter([
            ("final_loss".into(), serde_json::json!(losses.last())),
            ("losses".into(), serde_json::json!(losses)),
            ("step_seconds".into(), serde_json::json!(step_seconds)),
            ("step_tokens".into(), serde_json::json!(step_tokens)),
            ("steps".into(), serde_json::json!(step)),
            (
                "trainable_parameters".into(),
                serde_json::json!(vars.params()),
            ),
            (
                "seconds".into(),
                serde_json::json!(started.elapsed().as_secs_f64()),
            ),
            ("base_model_sha256".into(), serde_json::json!(sha)),
        ]);
        tracing::info!(model_id, steps = step, final_loss = ?losses.last(), "LoRA training finished");
        let trained = TrainedModel {
            model_id,
            engine: ENGINE.into(),
            config: config.clone(),
            data_hash,
            artifact: Some(out),
            details,
        };
        Ok((trained, model, vars))
    }

    /// Loads a trained adapter on its base model (merged when its config says so).
    ///
    /// # Errors
    ///
    /// [`FineTuneError`] when the artefact is missing or does not fit the base model.
    pub fn load_trained(&self, trained: &TrainedModel) -> Result<LocalModel, FineTuneError> {
        let dir = trained.artifact.as_ref().ok_or_else(|| {
            FineTuneError::Config(format!(
                "trained model `{}` has no artifact directory",
                trained.model_id
            ))
        })?;
        let manifest = read_manifest(dir)?;
        let base = self.base_model(&trained.config.base_model)?;
        let m = if manifest.lora.merge {
            base.load_adapter_merged(dir)?
        } else {
            base.load_adapter(dir)?
        };
        Ok(m)
    }
}

/// A progress bar over `total` optimiser steps, drawn only when asked for and on a terminal.
fn progress_bar(show: bool, total: usize) -> indicatif::ProgressBar {
    let bar = if show && std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}<{eta}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// The model id's tag when the fine-tune config sets no suffix: a hash of everything that shapes the weights (seed,
/// data, LoRA settings, epochs, batch size), so two runs differing in any of them never share
/// an adapter directory.
fn default_tag(
    seed: u64,
    data_hash: &str,
    lora: &LoraConfig,
    epochs: u32,
    batch_size: u32,
) -> String {
    let h = derive_seed(
        seed,
        &format!(
            "{data_hash}/{}/epochs={epochs}/batch={batch_size}",
            serde_json::to_string(lora).unwrap_or_default()
        ),
    );
    format!("{h:016x}")[..12].to_owned()
}

/// One optimiser step's loss and gradients: the micro-batches of `group`, each weighted
/// `1 / group.len()`, summed; zeros for a variable that received no gradient.
fn accumulate(
    model: &LocalModel,
    vars: &AdapterVars,
    var_list: &[&Var],
    group: &[Vec<&Example>],
    dropout_rng: &mut rand_chacha::ChaCha8Rng,
    path: &mut StepPath<'_>,
) -> Result<(f64, Vec<Tensor>), LocalError> {
    let mut acc: Vec<Option<Tensor>> = vec![None; var_list.len()];
    let mut step_loss = 0.0;
    for mb in group {
        let scale = 1.0 / group.len() as f64;
        let (loss, grads) = micro_step(model, vars, mb, dropout_rng, scale, path)?;
        step_loss += loss * scale;
        for (slot, g) in acc.iter_mut().zip(grads) {
            if let Some(g) = g {
                *slot = Some(match slot.take() {
                    Some(s) => (s + g)?,
                    None => g,
                });
            }
        }
    }
    let grads = acc
        .into_iter()
        .zip(var_list)
        .map(|(g, v)| g.map_or_else(|| v.as_tensor().zeros_like(), Ok))
        .collect::<candle_core::Result<_>>()?;
    Ok((step_loss, grads))
}

async fn on_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FineTuneError> + Send + 'static,
) -> Result<T, FineTuneError> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("psyche-local-lora".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| FineTuneError::Engine(format!("cannot start the training thread: {e}")))?;
    rx.await
        .map_err(|_| FineTuneError::Engine("the training thread panicked".into()))?
}

#[async_trait]
impl FineTuner for LoraTrainer {
    fn engine(&self) -> &str {
        ENGINE
    }

    async fn fine_tune(
        &self,
        data: &[Conversation],
        config: &FineTuneConfig,
    ) -> Result<TrainedModel, FineTuneError> {
        let this = self.clone();
        let data = data.to_vec();
        let config = config.clone();
        on_thread(move || this.train(&data, &config)).await
    }

    async fn load(&self, trained: &TrainedModel) -> Result<Arc<dyn Model>, FineTuneError> {
        let this = self.clone();
        let trained = trained.clone();
        on_thread(move || {
            this.load_trained(&trained)
                .map(|m| Arc::new(m) as Arc<dyn Model>)
        })
        .await
    }
}
