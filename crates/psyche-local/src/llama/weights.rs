//! The loaded weights ([`Weights`]), their dense view for the CPU training step, and merging
//! LoRA pairs into them.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};

use crate::config::WeightFormat;

use super::gguf::TensorTypeUse;
use super::hparams::{Hparams, LoraTarget};
use super::layers::{Layer, Linear, LoraSet};

/// The loaded model weights.
#[derive(Debug, Clone)]
pub(crate) struct Weights {
    pub(crate) hp: Hparams,
    pub(super) embed: Tensor,
    pub(super) layers: Vec<Layer>,
    pub(super) norm: Tensor,
    pub(super) lm_head: Linear,
    pub(super) cos: Tensor,
    pub(super) sin: Tensor,
    pub(crate) device: Device,
    pub(crate) format: WeightFormat,
    /// Weight tensors per GGML type, and how their small products run (`avx2` or `portable`
    /// kernels on the quantized blocks, else `dense` f32 or `candle` quantized matmul).
    pub(crate) tensor_types: BTreeMap<String, TensorTypeUse>,
}

/// The dense f32 weights of a CPU model, borrowed for the CPU training step
/// ([`crate::train_cpu`]).
pub(crate) struct DenseParts<'a> {
    pub(crate) hp: &'a Hparams,
    pub(crate) embed: &'a Tensor,
    pub(crate) layers: Vec<DenseLayer<'a>>,
    pub(crate) norm: &'a Tensor,
    /// `None` when the head is the token embedding (tied).
    pub(crate) lm_head: Option<&'a Tensor>,
    /// Rotary tables `[context, head_dim / 2]`.
    pub(crate) cos: &'a Tensor,
    pub(crate) sin: &'a Tensor,
}

/// One block's dense weights (see [`DenseParts`]).
pub(crate) struct DenseLayer<'a> {
    pub(crate) attn_norm: &'a Tensor,
    pub(crate) ffn_norm: &'a Tensor,
    /// `[out, in]` per projection, in [`LoraTarget::ALL`] order.
    pub(crate) proj: [&'a Tensor; 7],
    pub(crate) bias: [Option<&'a Tensor>; 7],
}

impl Weights {
    /// The weights as dense f32 tensors, when the model runs on the CPU with f32 weights.
    pub(crate) fn dense_parts(&self) -> Option<DenseParts<'_>> {
        fn dense(l: &Linear) -> Option<&Tensor> {
            match l {
                Linear::F32 { w, .. } => Some(w),
                _ => None,
            }
        }
        if !self.device.is_cpu() {
            return None;
        }
        let mut layers = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let mut proj = Vec::with_capacity(7);
            for p in &l.proj {
                proj.push(dense(p)?);
            }
            layers.push(DenseLayer {
                attn_norm: &l.attn_norm,
                ffn_norm: &l.ffn_norm,
                proj: proj.try_into().ok()?,
                bias: [0, 1, 2, 3, 4, 5, 6].map(|i| l.bias[i].as_ref()),
            });
        }
        let head = dense(&self.lm_head)?;
        Some(DenseParts {
            hp: &self.hp,
            embed: &self.embed,
            layers,
            norm: &self.norm,
            lm_head: (head.id() != self.embed.id()).then_some(head),
            cos: &self.cos,
            sin: &self.sin,
        })
    }

    pub(crate) fn n_layer(&self) -> usize {
        self.hp.n_layer
    }

    /// `(out, in)` of a projection.
    pub(crate) fn proj_shape(&self, target: LoraTarget) -> candle_core::Result<(usize, usize)> {
        self.layers
            .first()
            .map_or(Ok((0, 0)), |l| l.proj[target.index()].out_in())
    }
}

impl Weights {
    /// A copy with `scale·B·A` added to every adapted weight (f32 weights only).
    pub(crate) fn merged(&self, lora: &LoraSet) -> candle_core::Result<Weights> {
        let mut out = self.clone();
        for (i, pairs) in lora.layers.iter().enumerate() {
            for target in LoraTarget::ALL {
                if let Some(p) = &pairs[target.index()] {
                    let w = out.layers[i].proj[target.index()].to_f32()?;
                    let delta = (p.b.matmul(&p.a)? * p.scale)?;
                    out.layers[i].proj[target.index()] = Linear::F32 {
                        w: (w + delta)?,
                        packed: None,
                    };
                }
            }
        }
        out.format = WeightFormat::F32;
        Ok(out)
    }
}
