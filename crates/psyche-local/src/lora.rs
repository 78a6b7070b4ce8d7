//! LoRA fine-tuning: [`LoraConfig`], [`LoraTrainer`] (a [`FineTuner`]) and adapter files.
//!
//! Training runs our differentiable forward over the f32 base weights, with `A: [r, in]`,
//! `B: [out, r]` pairs on the chosen projections of the chosen layers (`Δy = α/r · x·Aᵀ·Bᵀ`,
//! `A ~ U(±1/√in)` from the seed, `B = 0`). The loss is the mean cross-entropy over the final
//! assistant turn's tokens (through its end-of-turn token) only. AdamW with linear warmup and
//! linear decay; `batch_size` examples per micro-batch and `gradient_accumulation` micro-batches
//! per optimiser step; data order, initialisation and dropout all derive from the seed.
//!
//! An adapter directory holds `adapter.safetensors` (tensors `blk.{layer}.{target}.lora_a` /
//! `.lora_b`) and `manifest.json` ([`AdapterManifest`]: base model hash, config, data hash,
//! seed, losses). Loading checks the base model's hash.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Tensor, Var};
use futures::channel::oneshot;
use psyche_core::{
    Conversation, FineTuneConfig, FineTuneError, FineTuner, Model, TrainedModel,
    conversations_hash, derive_seed, seeded_rng,
};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::LocalError;
use crate::config::{LocalConfig, WeightFormat};
use crate::llama::{Ctx, DenseParts, LoraPair, LoraSet, LoraTarget, build_mask};
use crate::model::{AdapterTag, LocalModel};
use crate::train_cpu::{self, Packed, Workspace};

/// The engine name recorded in manifests and [`TrainedModel::engine`].
pub const ENGINE: &str = "psyche-local-lora";

/// Epochs used when [`FineTuneConfig::epochs`] is "auto" (`None`): one pass over the data.
pub const AUTO_EPOCHS: u32 = 1;

/// Micro-batch size used when [`FineTuneConfig::batch_size`] is "auto" (`None`): one example
/// (with `gradient_accumulation` setting the effective batch).
pub const AUTO_BATCH_SIZE: u32 = 1;

const ADAPTER_FILE: &str = "adapter.safetensors";
const MANIFEST_FILE: &str = "manifest.json";
const FORMAT: &str = "psyche-lora-adapter/1";

/// LoRA hyperparameters. Read from [`FineTuneConfig::extra`]; `seed`, `epochs`, `batch_size`
/// and `learning_rate` come from the [`FineTuneConfig`] itself. PEFT's names are accepted as
/// aliases (`r`, `lora_alpha`, `lora_dropout`, `target_modules`, `layers_to_transform`,
/// `use_rslora`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraConfig {
    /// Adapter rank `r`.
    #[serde(alias = "r")]
    pub rank: usize,
    /// Scaling numerator: the update is scaled by `alpha / rank` (`alpha / √rank` with
    /// [`rslora`](Self::rslora)).
    #[serde(alias = "lora_alpha")]
    pub alpha: f64,
    /// Rank-stabilised LoRA: scale by `alpha / √rank` instead of `alpha / rank`.
    #[serde(alias = "use_rslora")]
    pub rslora: bool,
    /// Dropout on the adapter input during training, in `[0, 1)`.
    #[serde(alias = "lora_dropout")]
    pub dropout: f32,
    /// Which projections get adapters.
    #[serde(alias = "target_modules")]
    pub targets: Vec<LoraTarget>,
    /// Which layers get adapters (`None`: all).
    #[serde(alias = "layers_to_transform")]
    pub layers: Option<Vec<usize>>,
    /// Peak learning rate when the fine-tune config sets none.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Optimiser steps of linear warmup before the linear decay.
    pub warmup_steps: usize,
    /// Micro-batches per optimiser step.
    pub gradient_accumulation: usize,
    /// Longest training example in tokens (longer ones are rejected, naming the example).
    pub max_seq_len: usize,
    /// Save a checkpoint every this many optimiser steps.
    pub checkpoint_every: Option<usize>,
    /// Merge the adapter into the weights when loading the trained model.
    pub merge: bool,
    /// Show a progress bar (only ever drawn on a terminal).
    pub progress: bool,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            rank: 8,
            alpha: 16.0,
            rslora: false,
            dropout: 0.0,
            targets: vec![LoraTarget::Q, LoraTarget::V],
            layers: None,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            warmup_steps: 0,
            gradient_accumulation: 1,
            max_seq_len: 512,
            checkpoint_every: None,
            merge: false,
            progress: true,
        }
    }
}

impl LoraConfig {
    /// Reads the config from a fine-tune config's `extra` map (unknown keys are errors).
    ///
    /// # Errors
    ///
    /// [`LocalError::Config`] naming the offending field.
    pub fn from_extra(
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, LocalError> {
        let v = serde_json::Value::Object(extra.clone());
        serde_path_to_error::deserialize(v)
            .map_err(|e| LocalError::config(&format!("extra.{}", e.path()), e.inner().to_string()))
    }

    /// Writes the config into a fine-tune config's `extra` map.
    pub fn to_extra(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        }
    }

    /// Checks the config against a model with `n_layer` blocks.
    ///
    /// # Errors
    ///
    /// [`LocalError::Config`] naming the field.
    pub fn validate(&self, n_layer: usize) -> Result<(), LocalError> {
        if self.rank == 0 {
            return Err(LocalError::config("rank", "must be at least 1"));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(LocalError::config("alpha", "must be a positive number"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(LocalError::config("dropout", "must lie in [0, 1)"));
        }
        if self.targets.is_empty() {
            return Err(LocalError::config(
                "targets",
                "must name at least one projection",
            ));
        }
        if let Some(layers) = &self.layers {
            if layers.is_empty() {
                return Err(LocalError::config("layers", "must name at least one layer"));
            }
            if let Some(l) = layers.iter().find(|&&l| l >= n_layer) {
                return Err(LocalError::config(
                    "layers",
                    format!("layer {l} does not exist (the model has {n_layer})"),
                ));
            }
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(LocalError::config(
                "learning_rate",
                "must be a positive number",
            ));
        }
        if self.gradient_accumulation == 0 {
            return Err(LocalError::config(
                "gradient_accumulation",
                "must be at least 1",
            ));
        }
        if self.max_seq_len < 2 {
            return Err(LocalError::config("max_seq_len", "must be at least 2"));
        }
        if self.checkpoint_every == Some(0) {
            return Err(LocalError::config("checkpoint_every", "must be at least 1"));
        }
        Ok(())
    }

    /// The factor applied to `B·A`: `alpha / rank`, or `alpha / √rank` with `rslora`.
    pub fn scale(&self) -> f64 {
        let r = self.rank.max(1) as f64;
        if self.rslora {
            self.alpha / r.sqrt()
        } else {
            self.alpha / r
        }
    }

    fn layer_list(&self, n_layer: usize) -> Vec<usize> {
        let mut l = self
            .layers
            .clone()
            .unwrap_or_else(|| (0..n_layer).collect());
        l.sort_unstable();
        l.dedup();
        l
    }

    fn target_list(&self) -> Vec<LoraTarget> {
        let mut t = self.targets.clone();
        t.sort();
        t.dedup();
        t
    }
}

/// The `manifest.json` of an adapter directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterManifest {
    /// Format tag (`psyche-lora-adapter/1`).
    pub format: String,
    /// The training engine (`psyche-local-lora`).
    pub engine: String,
    /// The tuned model's id.
    pub model_id: String,
    /// The base model as configured (name or path).
    pub base_model: String,
    /// The base GGUF's file name.
    pub base_model_file: String,
    /// The base GGUF's SHA-256.
    pub base_model_sha256: String,
    /// LoRA settings.
    pub lora: LoraConfig,
    /// [`conversations_hash`] of the training data.
    pub data_hash: String,
    /// Training seed.
    pub seed: u64,
    /// Passes over the data.
    pub epochs: u32,
    /// Examples per micro-batch.
    pub batch_size: u32,
    /// Peak learning rate used.
    pub learning_rate: f64,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Loss of the last optimiser step.
    pub final_loss: f64,
    /// Loss per optimiser step.
    pub losses: Vec<f64>,
    /// Trainable parameters.
    pub trainable_parameters: usize,
}

struct AdapterVars {
    /// (layer, target, A, B)
    vars: Vec<(usize, LoraTarget, Var, Var)>,
    set: LoraSet,
}

impl AdapterVars {
    fn init(
        model: &LocalModel,
        cfg: &LoraConfig,
        seed: u64,
        b_init: f64,
    ) -> Result<Self, LocalError> {
        let w = model.weights();
        let n_layer = w.n_layer();
        let mut rng = seeded_rng(derive_seed(seed, "lora/init"));
        let scale = cfg.scale();
        let mut set = LoraSet {
            layers: vec![Default::default(); n_layer],
            dropout: cfg.dropout,
        };
        let mut vars = Vec::new();
        for layer in cfg.layer_list(n_layer) {
            for target in cfg.target_list() {
                let (out, inp) = w.proj_shape(target)?;
                let bound = 1.0 / (inp as f64).sqrt();
                let a: Vec<f32> = (0..cfg.rank * inp)
                    .map(|_| rng.random_range(-bound..bound) as f32)
                    .collect();
                let b: Vec<f32> = (0..out * cfg.rank)
                    .map(|_| {
                        if b_init > 0.0 {
                            rng.random_range(-b_init..b_init) as f32
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let a = Var::from_tensor(&Tensor::from_vec(a, (cfg.rank, inp), &w.device)?)?;
                let b = Var::from_tensor(&Tensor::from_vec(b, (out, cfg.rank), &w.device)?)?;
                set.layers[layer][target.index()] = Some(LoraPair {
                    a: a.as_tensor().clone(),
                    b: b.as_tensor().clone(),
                    scale,
                });
                vars.push((layer, target, a, b));
            }
        }
        Ok(Self { vars, set })
    }

    fn tensors(&self) -> HashMap<String, Tensor> {
        let mut m = HashMap::new();
        for (l, t, a, b) in &self.vars {
            m.insert(
                format!("blk.{l}.{}.lora_a", t.as_str()),
                a.as_tensor().clone(),
            );
            m.insert(
                format!("blk.{l}.{}.lora_b", t.as_str()),
                b.as_tensor().clone(),
            );
        }
        m
    }

    fn params(&self) -> usize {
        self.vars
            .iter()
            .map(|(_, _, a, b)| a.elem_count() + b.elem_count())
            .sum()
    }
}

/// One encoded training example: the prompt's tokens, then the supervised answer's.
pub(crate) struct Example {
    ids: Vec<u32>,
    prompt_len: usize,
}

fn encode_examples(
    model: &LocalModel,
    data: &[Conversation],
    max_seq_len: usize,
) -> Result<Vec<Example>, FineTuneError> {
    if data.is_empty() {
        return Err(FineTuneError::Data("no training examples".into()));
    }
    data.iter()
        .enumerate()
        .map(|(i, conv)| {
            let (prompt, answer) = model
                .chat_tokenizer()
                .encode_example(conv)
                .map_err(|e| FineTuneError::Data(format!("example {i}: {e}")))?;
            if answer.is_empty() {
                return Err(FineTuneError::Data(format!(
                    "example {i}: empty assistant answer"
                )));
            }
            let len = prompt.len() + answer.len();
            if len > max_seq_len {
                return Err(FineTuneError::Data(format!(
                    "example {i}: {len} tokens exceed max_seq_len {max_seq_len}"
                )));
            }
            let prompt_len = prompt.len();
            let mut ids = prompt;
            ids.extend(answer);
            Ok(Example { ids, prompt_len })
        })
        .collect()
}

/// Mean cross-entropy over the supervised tokens of a right-padded micro-batch, through
/// candle's autograd (the path for devices other than the CPU, and the reference the CPU step
/// is tested against).
pub(crate) fn batch_loss(
    model: &LocalModel,
    set: &LoraSet,
    batch: &[&Example],
    dropout_rng: &mut rand_chacha::ChaCha8Rng,
) -> Result<Tensor, LocalError> {
    let w = model.weights();
    let t = batch.iter().map(|e| e.ids.len()).max().unwrap_or(0);
    let pad = model
        .chat_tokenizer()
        .stop_ids
        .first()
        .copied()
        .unwrap_or(0);
    let mut ids = Vec::with_capacity(batch.len() * t);
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for (r, e) in batch.iter().enumerate() {
        ids.extend_from_slice(&e.ids);
        ids.extend(std::iter::repeat_n(pad, t - e.ids.len()));
        for p in e.prompt_len..e.ids.len() {
            rows.push((r * t + p - 1) as u32);
            targets.push(e.ids[p]);
        }
    }
    let ids = Tensor::from_vec(ids, (batch.len(), t), &w.device)?;
    // Right padding: a causal mask suffices, real tokens never see the padding after them.
    let valid = vec![vec![true; t]; batch.len()];
    let mask = build_mask(&valid, t, &w.device)?;
    let mut ctx = Ctx {
        train: true,
        lora: Some(set),
        steering: None,
        steer_from: None,
        dropout_rng: Some(dropout_rng),
        hidden_last: false,
        positions: None,
    };
    let (h, _) = w.forward(&ids, mask.as_ref(), None, &mut ctx)?;
    let logits = w.logits_at(&h, &rows, true)?;
    let n = targets.len();
    let targets = Tensor::from_vec(targets, n, &w.device)?;
    Ok(candle_nn::loss::cross_entropy(&logits, &targets)?)
}

/// Gradient norms of every LoRA variable after one backward pass on `example`, with `B`
/// initialised to small random values so that both `A` and `B` receive signal. A variable
/// whose gradient is missing (`None`) means some op in the training forward does not
/// propagate gradients.
///
/// # Errors
///
/// [`LocalError`] for an invalid config or example.
pub fn lora_gradient_norms(
    model: &LocalModel,
    example: &Conversation,
    lora: &LoraConfig,
    seed: u64,
) -> Result<Vec<(String, Option<f64>)>, LocalError> {
    lora.validate(model.hparams().n_layer)?;
    let vars = AdapterVars::init(model, lora, seed, 0.01)?;
    let ex = encode_examples(model, std::slice::from_ref(example), lora.max_seq_len)
        .map_err(|e| LocalError::config("example", e.to_string()))?;
    let mut rng = seeded_rng(derive_seed(seed, "lora/dropout"));
    let weights = model.weights().clone();
    let mut path = StepPath::new(&weights);
    let (_, grads) = micro_step(model, &vars, &[&ex[0]], &mut rng, 1.0, &mut path)?;
    let mut out = Vec::new();
    let mut grads = grads.into_iter();
    for (l, t, _, _) in &vars.vars {
        for name in ["lora_a", "lora_b"] {
            let norm = match grads.next().flatten() {
                Some(g) => Some(g.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt() as f64),
                None => None,
            };
            out.push((format!("blk.{l}.{}.{name}", t.as_str()), norm));
        }
    }
    Ok(out)
}

/// How a micro-batch's gradients are computed: the packed CPU step ([`train_cpu`]) when the
/// weights are dense f32 on the CPU, else candle's autograd over a padded batch.
enum StepPath<'a> {
    Cpu(DenseParts<'a>, Box<Workspace>),
    Autograd,
}

impl<'a> StepPath<'a> {
    fn new(weights: &'a crate::llama::Weights) -> Self {
        match weights.dense_parts() {
            Some(parts) => StepPath::Cpu(parts, Box::default()),
            None => StepPath::Autograd,
        }
    }
}

/// The loss of one micro-batch and the gradients of `scale · loss` for every LoRA variable, in
/// the order of `vars.vars` (`A` then `B` of each pair); `None` for a variable that received
/// no gradient.
fn micro_step(
    model: &LocalModel,
    vars: &AdapterVars,
    batch: &[&Example],
    rng: &mut rand_chacha::ChaCha8Rng,
    scale: f64,
    path: &mut StepPath<'_>,
) -> Result<(f64, Vec<Option<Tensor>>), LocalError> {
    match path {
        StepPath::Cpu(parts, ws) => {
            let packed = Packed::new(batch.iter().map(|e| (e.ids.as_slice(), e.prompt_len)));
            let (loss, grads) =
                train_cpu::loss_and_grads(parts, &vars.set, &packed, Some(rng), scale as f32, ws)?;
            let device = &model.weights().device;
            let mut by_pair: HashMap<(usize, LoraTarget), train_cpu::PairGrad> = grads
                .into_iter()
                .map(|g| ((g.layer, g.target), g))
                .collect();
            let mut out = Vec::with_capacity(2 * vars.vars.len());
            for (l, t, a, b) in &vars.vars {
                match by_pair.remove(&(*l, *t)) {
                    Some(g) => {
                        out.push(Some(Tensor::from_vec(g.a, a.shape(), device)?));
                        out.push(Some(Tensor::from_vec(g.b, b.shape(), device)?));
                    }
                    None => out.extend([None, None]),
                }
            }
            Ok((loss, out))
        }
        StepPath::Autograd => {
            let loss = batch_loss(model, &vars.set, batch, rng)?;
            let value = loss.to_scalar::<f32>()? as f64;
            let grads = (&loss * scale)?.backward()?;
            let out = vars
                .vars
                .iter()
                .flat_map(|(_, _, a, b)| [a, b])
                .map(|v| grads.get(v.as_tensor()).cloned())
                .collect();
            Ok((value, out))
        }
    }
}

/// One LoRA variable's analytic gradient checked against finite differences of the loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientCheck {
    /// The variable (`blk.{layer}.{target}.lora_{a|b}`).
    pub name: String,
    /// The backward pass's directional derivative `∇L·u` along a unit direction `u` (half
    /// along the gradient, half random, from the seed).
    pub analytic: f64,
    /// `(L(θ + εu) − L(θ − εu)) / 2ε` from two training-mode forward passes.
    pub numeric: f64,
}

/// Checks the training backward pass by central finite differences: for every LoRA variable
/// (with `B` initialised to small random values so that both `A` and `B` receive signal, and
/// no dropout), the analytic directional derivative of the loss on `example` against
/// `(L(θ + εu) − L(θ − εu)) / 2ε`. The loss is computed in f32, so choose `eps` near `1e-2`.
///
/// # Errors
///
/// [`LocalError`] for an invalid config or example, or a variable that got no gradient.
pub fn lora_gradient_check(
    model: &LocalModel,
    example: &Conversation,
    lora: &LoraConfig,
    seed: u64,
    eps: f64,
) -> Result<Vec<GradientCheck>, LocalError> {
    lora.validate(model.hparams().n_layer)?;
    let lora = LoraConfig {
        dropout: 0.0,
        ..lora.clone()
    };
    let vars = AdapterVars::init(model, &lora, seed, 0.1)?;
    let ex = encode_examples(model, std::slice::from_ref(example), lora.max_seq_len)
        .map_err(|e| LocalError::config("example", e.to_string()))?;
    // The same gradient path as training (the packed CPU step on the CPU).
    let weights = model.weights().clone();
    let mut path = StepPath::new(&weights);
    let mut no_dropout = seeded_rng(derive_seed(seed, "lora/dropout"));
    let (_, grads) = micro_step(model, &vars, &[&ex[0]], &mut no_dropout, 1.0, &mut path)?;
    let mut loss = || -> Result<f64, LocalError> {
        Ok(micro_step(model, &vars, &[&ex[0]], &mut no_dropout, 1.0, &mut path)?.0)
    };
    let mut grads = grads.into_iter();
    let mut rng = seeded_rng(derive_seed(seed, "lora/gradient-check"));
    let mut out = Vec::new();
    for (l, t, a, b) in &vars.vars {
        for (part, v) in [("lora_a", a), ("lora_b", b)] {
            let name = format!("blk.{l}.{}.{part}", t.as_str());
            let g = grads
                .next()
                .flatten()
                .ok_or_else(|| LocalError::config("lora", format!("{name} got no gradient")))?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let unit = |u: Vec<f64>| {
                let n = u.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-30);
                u.into_iter().map(|x| x / n).collect::<Vec<f64>>()
            };
            let along = unit(g.iter().map(|&x| x as f64).collect());
            let random = unit((0..g.len()).map(|_| rng.random_range(-1.0..1.0)).collect());
            let u = unit(along.iter().zip(&random).map(|(x, y)| x + y).collect());
            let analytic = g.iter().zip(&u).map(|(&g, u)| g as f64 * u).sum();
            let theta = v.as_tensor().copy()?;
            let du = Tensor::from_vec(
                u.iter().map(|&x| (x * eps) as f32).collect::<Vec<f32>>(),
                theta.shape(),
                theta.device(),
            )?;
            v.set(&(&theta + &du)?)?;
            let plus = loss()?;
            v.set(&(&theta - &du)?)?;
            let minus = loss()?;
            v.set(&theta)?;
            out.push(GradientCheck {
                name,
                analytic,
                numeric: (plus - minus) / (2.0 * eps),
            });
        }
    }
    Ok(out)
}

struct AdamW {
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    t: i32,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

impl AdamW {
    fn new(vars: &[&Var], weight_decay: f64) -> Result<Self, LocalError> {
        let zeros = |v: &&Var| v.as_tensor().zeros_like();
        Ok(Self {
            m: vars.iter().map(zeros).collect::<candle_core::Result<_>>()?,
            v: vars.iter().map(zeros).collect::<candle_core::Result<_>>()?,
            t: 0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        })
    }

    fn step(&mut self, vars: &[&Var], grads: &[Tensor], lr: f64) -> Result<(), LocalError> {
        self.t += 1;
        let c1 = 1.0 - self.beta1.powi(self.t);
        let c2 = 1.0 - self.beta2.powi(self.t);
        for (i, (var, g)) in vars.iter().zip(grads).enumerate() {
            let m = ((&self.m[i] * self.beta1)? + (g * (1.0 - self.beta1))?)?;
            let v = ((&self.v[i] * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + self.eps)?)?;
            let theta = var.as_tensor();
            let decayed = (theta * (1.0 - lr * self.weight_decay))?;
            var.set(&(decayed - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }
}

fn lr_at(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / (warmup + 1) as f64
    } else {
        let left = total.saturating_sub(step) as f64;
        let span = total.saturating_sub(warmup).max(1) as f64;
        peak * left / span
    }
}

fn write_adapter(
    dir: &Path,
    vars: &AdapterVars,
    manifest: &AdapterManifest,
) -> Result<(), LocalError> {
    std::fs::create_dir_all(dir).map_err(|e| LocalError::io(dir, e))?;
    let file = dir.join(ADAPTER_FILE);
    candle_core::safetensors::save(&vars.tensors(), &file).map_err(|e| LocalError::Adapter {
        path: file.clone(),
        message: e.to_string(),
    })?;
    let json = serde_json::to_string_pretty(manifest).map_err(|e| LocalError::Adapter {
        path: dir.join(MANIFEST_FILE),
        message: e.to_string(),
    })?;
    let mpath = dir.join(MANIFEST_FILE);
    std::fs::write(&mpath, json).map_err(|e| LocalError::io(&mpath, e))
}

/// Reads an adapter directory's manifest.
///
/// # Errors
///
/// [`LocalError::Io`] / [`LocalError::Adapter`] naming the file and field.
pub fn read_manifest(dir: &Path) -> Result<AdapterManifest, LocalError> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| LocalError::io(&path, e))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| LocalError::Adapter {
        path: path.clone(),
        message: format!("field `{}`: {}", e.path(), e.inner()),
    })
}

impl LocalModel {
    /// This model with the adapter in `dir` applied (kept separate from the weights).
    ///
    /// # Errors
    ///
    /// [`LocalError::Adapter`] when the manifest or tensors are unreadable, were trained on a
    /// different base model (SHA-256 mismatch) or do not fit the model's shapes.
    pub fn load_adapter(&self, dir: impl AsRef<Path>) -> Result<LocalModel, LocalError> {
        self.load_adapter_with(dir.as_ref(), false)
    }

    /// This model with the adapter in `dir` merged into its (f32) weights.
    ///
    /// # Errors
    ///
    /// As [`load_adapter`](Self::load_adapter).
    pub fn load_adapter_merged(&self, dir: impl AsRef<Path>) -> Result<LocalModel, LocalError> {
        self.load_adapter_with(dir.as_ref(), true)
    }

    fn load_adapter_with(&self, dir: &Path, merge: bool) -> Result<LocalModel, LocalError> {
        let manifest = read_manifest(dir)?;
        let adapter_err = |message: String| LocalError::Adapter {
            path: dir.to_owned(),
            message,
        };
        if manifest.format != FORMAT {
            return Err(adapter_err(format!("unknown format `{}`", manifest.format)));
        }
        let sha = self.sha256()?;
        if manifest.base_model_sha256 != sha {
            return Err(adapter_err(format!(
                "trained on base model sha256 {} but this model is {sha}",
                manifest.base_model_sha256
            )));
        }
        let n_layer = self.hparams().n_layer;
        manifest
            .lora
            .validate(n_layer)
            .map_err(|e| adapter_err(format!("manifest: {e}")))?;
        let file = dir.join(ADAPTER_FILE);
        let w = self.weights();
        let tensors =
            candle_core::safetensors::load(&file, &w.device).map_err(|e| LocalError::Adapter {
                path: file.clone(),
                message: e.to_string(),
            })?;
        let cfg = &manifest.lora;
        let mut set = LoraSet {
            layers: vec![Default::default(); n_layer],
            dropout: 0.0,
        };
        let scale = cfg.scale();
        for layer in cfg.layer_list(n_layer) {
            for target in cfg.target_list() {
                let (out, inp) = w.proj_shape(target)?;
                let get = |suffix: &str, shape: (usize, usize)| -> Result<Tensor, LocalError> {
                    let name = format!("blk.{layer}.{}.{suffix}", target.as_str());
                    let t = tensors.get(&name).ok_or_else(|| LocalError::Adapter {
                        path: file.clone(),
                        message: format!("tensor `{name}` missing"),
                    })?;
                    if t.dims2().ok() != Some(shape) {
                        return Err(LocalError::Adapter {
                            path: file.clone(),
                            message: format!(
                                "tensor `{name}` has shape {:?}, expected {shape:?}",
                                t.dims()
                            ),
                        });
                    }
                    Ok(t.to_dtype(DType::F32)?)
                };
                set.layers[layer][target.index()] = Some(LoraPair {
                    a: get("lora_a", (cfg.rank, inp))?,
                    b: get("lora_b", (out, cfg.rank))?,
                    scale,
                });
            }
        }
        let tag = AdapterTag {
            path: dir.to_owned(),
            merged: merge,
            summary: serde_json::json!({
                "model_id": manifest.model_id,
                "data_hash": manifest.data_hash,
                "seed": manifest.seed,
                "rank": cfg.rank,
                "rslora": cfg.rslora,
                "targets": cfg.target_list(),
            }),
        };
        self.with_lora(manifest.model_id.clone(), set, tag, merge)
    }
}

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
        let bar = if lora.progress && std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(total as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}<{eta}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let mut dropout_rng = seeded_rng(derive_seed(config.seed, "lora/dropout"));
        let sha = model.sha256()?;
        let base_id = model.id().to_owned();
        let tag = config.suffix.clone().unwrap_or_else(|| {
            let h = derive_seed(
                config.seed,
                &format!(
                    "{data_hash}/{}",
                    serde_json::to_string(&lora).unwrap_or_default()
                ),
            );
            format!("{h:016x}")[..12].to_owned()
        });
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
                let mut acc: Vec<Option<Tensor>> = vec![None; var_list.len()];
                let mut step_loss = 0.0;
                for mb in group {
                    let scale = 1.0 / group.len() as f64;
                    let (loss, grads) =
                        micro_step(&model, &vars, mb, &mut dropout_rng, scale, &mut path)?;
                    step_loss += loss * scale;
                    for (slot, g) in acc.iter_mut().zip(grads) {
                        if let Some(g) = g {
                            *slot = Some(match slot.take() {
                                Some(s) => (s + g).map_err(LocalError::from)?,
                                None => g,
                            });
                        }
                    }
                }
                let grads: Vec<Tensor> = acc
                    .into_iter()
                    .zip(&var_list)
                    .map(|(g, v)| g.map_or_else(|| v.as_tensor().zeros_like(), Ok))
                    .collect::<candle_core::Result<_>>()
                    .map_err(LocalError::from)?;
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
        let mut details = serde_json::Map::new();
        details.insert("final_loss".into(), serde_json::json!(losses.last()));
        details.insert("losses".into(), serde_json::json!(losses));
        details.insert("step_seconds".into(), serde_json::json!(step_seconds));
        details.insert("step_tokens".into(), serde_json::json!(step_tokens));
        details.insert("steps".into(), serde_json::json!(step));
        details.insert(
            "trainable_parameters".into(),
            serde_json::json!(vars.params()),
        );
        details.insert(
            "seconds".into(),
            serde_json::json!(started.elapsed().as_secs_f64()),
        );
        details.insert("base_model_sha256".into(), serde_json::json!(sha));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SyntheticModel;
    use crate::config::LocalConfig;

    /// A synthetic model written to a temporary file (kept alive by the returned guard).
    fn synthetic(spec: SyntheticModel) -> (tempfile::TempDir, LocalModel) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.gguf");
        spec.write(&path).unwrap();
        let model = LocalModel::load(&LocalConfig::new(path.to_string_lossy())).unwrap();
        (dir, model)
    }

    /// A Llama-architecture model with f32 weights, tied embeddings and grouped-query attention.
    fn llama_f32() -> SyntheticModel {
        SyntheticModel {
            architecture: "llama".into(),
            tied_embeddings: true,
            projection_types: std::array::from_fn(|_| "F32".to_owned()),
            mixed_down_type: None,
            embedding_type: "F32".into(),
            output_type: "F32".into(),
            rope_base: 10_000.0,
            rms_eps: 1e-5,
            ..SyntheticModel::qwen2_tiny()
        }
    }

    fn examples(vocab: usize, lens: &[(usize, usize)], seed: u64) -> Vec<Example> {
        let mut rng = seeded_rng(seed);
        lens.iter()
            .map(|&(len, prompt_len)| Example {
                ids: (0..len)
                    .map(|_| rng.random_range(0..vocab as u32))
                    .collect(),
                prompt_len,
            })
            .collect()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// Loss and gradients of the CPU step and of candle's autograd agree.
    fn compare_paths(model: &LocalModel, cfg: &LoraConfig, data: &[Example], scale: f64) {
        let vars = AdapterVars::init(model, cfg, 3, 0.05).unwrap();
        let batch: Vec<&Example> = data.iter().collect();
        let weights = model.weights().clone();
        let mut cpu = StepPath::new(&weights);
        assert!(matches!(cpu, StepPath::Cpu(..)));
        let mut out = Vec::new();
        for path in [&mut cpu, &mut StepPath::Autograd] {
            let mut rng = seeded_rng(11);
            out.push(micro_step(model, &vars, &batch, &mut rng, scale, path).unwrap());
        }
        let ((l_cpu, g_cpu), (l_ref, g_ref)) = (&out[0], &out[1]);
        assert!(
            (l_cpu - l_ref).abs() < 1e-4 * l_ref.abs().max(1.0),
            "{l_cpu} vs {l_ref}"
        );
        assert_eq!(g_cpu.len(), 2 * vars.vars.len());
        for (i, (a, b)) in g_cpu.iter().zip(g_ref).enumerate() {
            let (a, b) = (values(a.as_ref().unwrap()), values(b.as_ref().unwrap()));
            let peak = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(peak > 0.0, "variable {i} has a zero reference gradient");
            let diff = a
                .iter()
                .zip(&b)
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(
                diff <= 2e-3 * peak,
                "variable {i}: max |Δ| {diff} vs peak {peak}"
            );
        }
    }

    #[test]
    fn cpu_step_matches_autograd_on_llama() {
        let (_dir, model) = synthetic(llama_f32());
        let cfg = LoraConfig {
            rank: 2,
            alpha: 4.0,
            targets: LoraTarget::ALL.to_vec(),
            ..LoraConfig::default()
        };
        // Different lengths: the reference pads, the CPU step packs.
        let data = examples(model.hparams().vocab_size, &[(9, 6), (17, 12), (4, 2)], 1);
        compare_paths(&model, &cfg, &data, 0.5);
    }

    #[test]
    fn cpu_step_matches_autograd_on_qwen2_with_some_layers() {
        // Biases, half-split rotary embeddings, an untied head; no adapter on block 0, so the
        // backward pass stops at block 1.
        let (_dir, model) = synthetic(SyntheticModel::qwen2_tiny());
        let cfg = LoraConfig {
            rank: 3,
            targets: vec![LoraTarget::Q, LoraTarget::V, LoraTarget::Down],
            layers: Some(vec![1, 2]),
            ..LoraConfig::default()
        };
        let data = examples(model.hparams().vocab_size, &[(12, 7), (6, 5)], 2);
        compare_paths(&model, &cfg, &data, 1.0);
    }

    #[test]
    fn cpu_step_matches_autograd_with_dropout() {
        // Equal lengths: no padding, so both paths draw the same dropout masks.
        let (_dir, model) = synthetic(llama_f32());
        let cfg = LoraConfig {
            rank: 2,
            dropout: 0.3,
            targets: vec![LoraTarget::K, LoraTarget::O, LoraTarget::Up],
            ..LoraConfig::default()
        };
        let data = examples(model.hparams().vocab_size, &[(10, 6), (10, 3)], 3);
        compare_paths(&model, &cfg, &data, 1.0);
    }

    #[test]
    fn cpu_step_gradient_matches_finite_differences() {
        let (_dir, model) = synthetic(llama_f32());
        let cfg = LoraConfig {
            rank: 2,
            targets: vec![LoraTarget::Q, LoraTarget::Gate],
            ..LoraConfig::default()
        };
        let data = examples(model.hparams().vocab_size, &[(11, 5), (7, 4)], 4);
        let batch: Vec<&Example> = data.iter().collect();
        let vars = AdapterVars::init(&model, &cfg, 5, 0.05).unwrap();
        let weights = model.weights().clone();
        let mut path = StepPath::new(&weights);
        let mut rng = seeded_rng(0);
        let (_, grads) = micro_step(&model, &vars, &batch, &mut rng, 1.0, &mut path).unwrap();
        let mut loss_at = |var: &Var, at: usize, value: f32| {
            let mut v = values(var.as_tensor());
            v[at] = value;
            var.set(&Tensor::from_vec(v, var.shape(), &weights.device).unwrap())
                .unwrap();
            micro_step(&model, &vars, &batch, &mut rng, 1.0, &mut path)
                .unwrap()
                .0
        };
        // The largest gradient entry of a few A and B matrices, by central differences.
        let list: Vec<&Var> = vars.vars.iter().flat_map(|(_, _, a, b)| [a, b]).collect();
        for i in [0, 1, list.len() - 2, list.len() - 1] {
            let g = values(grads[i].as_ref().unwrap());
            let (at, &want) = g
                .iter()
                .enumerate()
                .max_by(|x, y| x.1.abs().total_cmp(&y.1.abs()))
                .unwrap();
            let orig = values(list[i].as_tensor())[at];
            let eps = 1e-2;
            let up = loss_at(list[i], at, orig + eps);
            let down = loss_at(list[i], at, orig - eps);
            loss_at(list[i], at, orig);
            let fd = (up - down) / (2.0 * eps as f64);
            assert!(
                (fd - want as f64).abs() < 0.03 * (want.abs() as f64) + 1e-4,
                "variable {i}[{at}]: finite difference {fd} vs analytic {want}"
            );
        }
    }

    #[test]
    fn schedule_warms_up_then_decays_linearly() {
        let lrs: Vec<f64> = (0..6).map(|s| lr_at(s, 6, 2, 1.0)).collect();
        assert!((lrs[0] - 1.0 / 3.0).abs() < 1e-12);
        assert!((lrs[1] - 2.0 / 3.0).abs() < 1e-12);
        assert!((lrs[2] - 1.0).abs() < 1e-12);
        assert!(lrs[3] < lrs[2] && lrs[5] > 0.0 && lrs[5] < lrs[4]);
    }

    #[test]
    fn config_errors_name_the_field() {
        let mut extra = serde_json::Map::new();
        extra.insert("rank".into(), serde_json::json!("eight"));
        let err = LoraConfig::from_extra(&extra).unwrap_err().to_string();
        assert!(err.contains("rank"), "{err}");
        let mut extra = serde_json::Map::new();
        extra.insert("targets".into(), serde_json::json!(["q_proj", "down"]));
        let cfg = LoraConfig::from_extra(&extra).unwrap();
        assert_eq!(cfg.targets, vec![LoraTarget::Q, LoraTarget::Down]);
        let bad = LoraConfig {
            layers: Some(vec![40]),
            ..LoraConfig::default()
        };
        assert!(
            bad.validate(30)
                .unwrap_err()
                .to_string()
                .contains("layer 40")
        );
        let mut extra = serde_json::Map::new();
        extra.insert("rnak".into(), serde_json::json!(4));
        assert!(LoraConfig::from_extra(&extra).is_err());
    }
}
