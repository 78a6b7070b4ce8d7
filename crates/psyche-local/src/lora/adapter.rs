//! The adapter directory: its manifest ([`AdapterManifest`]), the trainable variables
//! ([`AdapterVars`]) written as `adapter.safetensors`, and loading an adapter onto a model.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Tensor, Var};
use psyche_core::{derive_seed, seeded_rng};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::config::{ADAPTER_FILE, FORMAT, LoraConfig, MANIFEST_FILE};
use crate::LocalError;
use crate::llama::{LoraPair, LoraSet, LoraTarget};
use crate::model::{AdapterTag, LocalModel};

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
    /// [`conversations_hash`](psyche_core::conversations_hash) of the training data.
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

pub(crate) struct AdapterVars {
    /// (layer, target, A, B)
    pub(super) vars: Vec<(usize, LoraTarget, Var, Var)>,
    pub(super) set: LoraSet,
}

impl AdapterVars {
    pub(super) fn init(
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

    pub(super) fn tensors(&self) -> HashMap<String, Tensor> {
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

    pub(super) fn params(&self) -> usize {
        self.vars
            .iter()
            .map(|(_, _, a, b)| a.elem_count() + b.elem_count())
            .sum()
    }
}

pub(super) fn write_adapter(
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
