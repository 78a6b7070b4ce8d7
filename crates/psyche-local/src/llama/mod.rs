//! GGUF loading and our own differentiable forward of the Llama-family architectures
//! ([`SUPPORTED_ARCHITECTURES`]: Llama, and Qwen2 = Llama with q/k/v biases, half-split rotary
//! embeddings and usually an untied output head).
//!
//! One forward serves inference and training:
//! - batched, left-padded prompts with per-row key masks and a KV cache;
//! - the final hidden states at every position, so callers compute logits only where they need
//!   them (one pass scores a whole continuation);
//! - optional per-layer hidden states and an additive steering vector after a chosen block;
//! - optional LoRA adapters on any of q, k, v, o, gate, up, down of any layer.
//!
//! In training mode only differentiable ops are used: candle's fast kernels and its quantized
//! matmul silently pass no gradient. On the CPU the norm, rotary embedding and softmax are our
//! fused ops with analytic backward passes ([`train_ops`]); elsewhere candle's compositions
//! (`rms_norm_slow`, `rope_i_slow`, `softmax`). The
//! frozen base weights go through [`FrozenLinear`], a custom op whose backward returns only the
//! input gradient (no wasted weight gradient).
//!
//! Rotary embeddings are applied at the same absolute positions for every row of a batch; left
//! padding therefore shifts a short prompt's positions by a constant, which leaves attention
//! scores unchanged because RoPE depends only on relative positions (batched and unbatched
//! results agree to float rounding, see the tests).
mod forward;
mod gguf;
mod hparams;
mod layers;
mod weights;

pub use gguf::{SUPPORTED_ARCHITECTURES, SUPPORTED_TENSOR_TYPES};
pub(crate) use gguf::{dtype_from_name, load_gguf};
pub use hparams::{Hparams, LoraTarget, RopeStyle};
pub(crate) use layers::{Ctx, KvCache, LoraPair, LoraSet, SteeringTensor, build_mask};
pub(crate) use weights::{DenseParts, Weights};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WeightFormat;
    use crate::synthetic::SyntheticModel;
    use candle_core::{Device, Tensor};

    fn logits(w: &Weights, h: &Tensor, rows: usize) -> Vec<Vec<f32>> {
        let rows: Vec<u32> = (0..rows as u32).collect();
        w.logits_at(h, &rows, false).unwrap().to_vec2().unwrap()
    }

    /// Decode steps (KV cache, one-token attention, products with the quantized blocks) give
    /// the logits of the one-pass forward over the whole sequence, for both weight formats.
    #[test]
    fn stepped_decode_matches_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        SyntheticModel::qwen2_tiny().write(&path).unwrap();
        let ids: Vec<u32> = (0..12).map(|i| (i * 37 + 5) % 300).collect();
        let (t, prefill) = (ids.len(), 4);
        for format in [WeightFormat::F32, WeightFormat::Quantized] {
            let (w, _) = load_gguf(&path, format, &Device::Cpu).unwrap();
            let input = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap();
            let mask = build_mask(&[vec![true; t]], t, &Device::Cpu).unwrap();
            let mut ctx = Ctx::infer(None, None);
            let (h, _) = w
                .forward(&input.unsqueeze(0).unwrap(), mask.as_ref(), None, &mut ctx)
                .unwrap();
            let one_pass = logits(&w, &h, t);

            let mut cache = KvCache::new(w.n_layer());
            let first = input.narrow(0, 0, prefill).unwrap().unsqueeze(0).unwrap();
            let mask = build_mask(&[vec![true; prefill]], prefill, &Device::Cpu).unwrap();
            let (h, _) = w
                .forward(&first, mask.as_ref(), Some(&mut cache), &mut ctx)
                .unwrap();
            let mut stepped = vec![logits(&w, &h, prefill).pop().unwrap()];
            for p in prefill..t {
                let next = input.narrow(0, p, 1).unwrap().unsqueeze(0).unwrap();
                let (h, _) = w.forward(&next, None, Some(&mut cache), &mut ctx).unwrap();
                stepped.push(logits(&w, &h, 1).pop().unwrap());
            }
            assert_eq!(cache.len(), t);
            for (k, row) in stepped.iter().enumerate() {
                let want = &one_pass[prefill - 1 + k];
                let diff = row
                    .iter()
                    .zip(want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(
                    diff < 1e-3,
                    "{format:?}, position {}: {diff}",
                    prefill - 1 + k
                );
            }
        }
    }
}
