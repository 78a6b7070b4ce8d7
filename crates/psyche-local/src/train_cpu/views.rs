//! Borrowed views of the dense weights and LoRA pairs for one step.

use std::ops::Range;

use candle_core::{CpuStorage, Storage, StorageRef, Tensor};

use crate::llama::{DenseParts, LoraSet, LoraTarget};

/// A borrowed f32 CPU tensor.
pub(super) struct View<'a> {
    guard: StorageRef<'a>,
    range: Range<usize>,
}

impl<'a> View<'a> {
    pub(super) fn new(t: &'a Tensor) -> candle_core::Result<Self> {
        let (guard, layout) = t.storage_and_layout();
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("train-cpu: non-contiguous weight")
        };
        match &*guard {
            Storage::Cpu(CpuStorage::F32(v)) if end <= v.len() => {}
            _ => candle_core::bail!("train-cpu: weights must be f32 on the CPU"),
        }
        Ok(Self {
            guard,
            range: start..end,
        })
    }

    pub(super) fn get(&self) -> &[f32] {
        match &*self.guard {
            Storage::Cpu(CpuStorage::F32(v)) => &v[self.range.clone()],
            _ => &[],
        }
    }
}

/// A LoRA pair's values during a step.
pub(super) struct PairView<'a> {
    pub(super) a: View<'a>,
    pub(super) b: View<'a>,
    pub(super) scale: f32,
    pub(super) rank: usize,
}

pub(super) struct LayerViews<'a> {
    pub(super) attn_norm: View<'a>,
    pub(super) ffn_norm: View<'a>,
    pub(super) proj: Vec<View<'a>>,
    pub(super) bias: Vec<Option<View<'a>>>,
    pub(super) lora: Vec<Option<PairView<'a>>>,
}

/// Views of every block's weights and of its LoRA pairs in `lora`.
pub(super) fn layer_views<'a>(
    parts: &'a DenseParts<'_>,
    lora: &'a LoraSet,
) -> candle_core::Result<Vec<LayerViews<'a>>> {
    let mut layers = Vec::with_capacity(parts.layers.len());
    for (i, l) in parts.layers.iter().enumerate() {
        let mut lv = LayerViews {
            attn_norm: View::new(l.attn_norm)?,
            ffn_norm: View::new(l.ffn_norm)?,
            proj: Vec::with_capacity(7),
            bias: Vec::with_capacity(7),
            lora: Vec::with_capacity(7),
        };
        for t in LoraTarget::ALL {
            lv.proj.push(View::new(l.proj[t.index()])?);
            lv.bias.push(match l.bias[t.index()] {
                Some(b) => Some(View::new(b)?),
                None => None,
            });
            lv.lora.push(
                match lora.layers.get(i).and_then(|p| p[t.index()].as_ref()) {
                    Some(p) => Some(PairView {
                        a: View::new(&p.a)?,
                        b: View::new(&p.b)?,
                        scale: p.scale as f32,
                        rank: p.a.dim(0)?,
                    }),
                    None => None,
                },
            );
        }
        layers.push(lv);
    }
    Ok(layers)
}
