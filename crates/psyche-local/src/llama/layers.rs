//! The pieces of a block: projections over frozen weights, LoRA pairs, steering, the forward
//! context, the KV cache and the attention mask.

use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{CpuStorage, DType, Device, Layout, Module, Shape, Tensor};
use rand_chacha::ChaCha8Rng;

use crate::config::WeightFormat;
use crate::qmatvec::QuantMatrix;

use super::hparams::LoraTarget;

/// `y = x·Wᵀ` for a frozen weight: the backward pass returns only `dx`.
struct FrozenLinear {
    w: Tensor,
}

impl candle_core::CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (start, end) = l
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("frozen-linear: non-contiguous input".into()))?;
        let x = Tensor::from_slice(&s.as_slice::<f32>()?[start..end], l.shape(), &Device::Cpu)?;
        let y = x.matmul(&self.w.t()?)?;
        let shape = y.shape().clone();
        Ok((CpuStorage::F32(y.flatten_all()?.to_vec1::<f32>()?), shape))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(dy.contiguous()?.matmul(&self.w)?))
    }
}

/// Products with at most this many activation rows use the quantized blocks when a weight has
/// them (decode steps); larger ones use the dense f32 weights (batched prompts, training).
const PACKED_MAX_ROWS: usize = 8;

/// A projection's weight.
#[derive(Debug, Clone)]
pub(crate) enum Linear {
    /// Dense f32 `[out, in]`, with the GGUF's quantized blocks kept beside it for products with
    /// few rows (a decode step reads 0.6–1.1 bytes per weight instead of 4).
    F32 {
        w: Tensor,
        packed: Option<Arc<QuantMatrix>>,
    },
    /// Only the quantized blocks (`WeightFormat::Quantized` on the CPU, for the formats our
    /// kernels cover).
    Packed(Arc<QuantMatrix>),
    /// candle's quantized matmul (other formats and devices).
    Quant(QMatMul),
}

impl Linear {
    /// `dense` is the already dequantized weight when the caller has it (tied embeddings).
    pub(super) fn from_qtensor(
        q: QTensor,
        dense: Option<Tensor>,
        format: WeightFormat,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let packed = if device.is_cpu() {
            QuantMatrix::from_qtensor(&q)?.map(Arc::new)
        } else {
            None
        };
        Ok(match (format, packed) {
            (WeightFormat::F32, packed) => Linear::F32 {
                w: match dense {
                    Some(w) => w,
                    None => q.dequantize(device)?,
                },
                packed,
            },
            (WeightFormat::Quantized, Some(p)) => Linear::Packed(p),
            (WeightFormat::Quantized, None) => Linear::Quant(QMatMul::from_qtensor(q)?),
        })
    }

    pub(super) fn forward(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let mut dims = x.dims().to_vec();
        let inner = dims.pop().unwrap_or(1);
        let rows = x.elem_count() / inner.max(1);
        let by_blocks = |p: &QuantMatrix, mut dims: Vec<usize>| {
            let y = p.matmul(&x.flatten_all()?.to_vec1::<f32>()?, rows);
            dims.push(p.out_in().0);
            Tensor::from_vec(y, dims, x.device())
        };
        match self {
            Linear::F32 {
                packed: Some(p), ..
            } if !train && rows <= PACKED_MAX_ROWS => by_blocks(p, dims),
            Linear::F32 { w, .. } => {
                let x2 = x.reshape((rows, inner))?;
                let y = if train && x.device().is_cpu() {
                    x2.contiguous()?.apply_op1(FrozenLinear { w: w.clone() })?
                } else {
                    x2.matmul(&w.t()?)?
                };
                dims.push(w.dim(0)?);
                y.reshape(dims)
            }
            Linear::Packed(_) | Linear::Quant(_) if train => {
                candle_core::bail!("training needs f32 weights (WeightFormat::F32)")
            }
            Linear::Packed(p) => by_blocks(p, dims),
            Linear::Quant(q) => q.forward(x),
        }
    }

    /// Which path products with few rows (decode steps) take: our kernels on the quantized
    /// blocks (`avx2` / `portable`), the dense f32 weights, or candle's quantized matmul.
    pub(super) fn decode_path(&self) -> &'static str {
        match self {
            Linear::F32 {
                packed: Some(_), ..
            }
            | Linear::Packed(_) => crate::qmatvec::kernel_name(),
            Linear::F32 { packed: None, .. } => "dense-f32",
            Linear::Quant(_) => "candle-quantized",
        }
    }

    /// The weight as f32 `[out, in]`.
    pub(crate) fn to_f32(&self) -> candle_core::Result<Tensor> {
        match self {
            Linear::F32 { w, .. } => Ok(w.clone()),
            Linear::Packed(p) => Tensor::from_vec(p.dequantize(), p.out_in(), &Device::Cpu),
            Linear::Quant(q) => q.dequantize_f16()?.to_dtype(DType::F32),
        }
    }

    pub(super) fn out_in(&self) -> candle_core::Result<(usize, usize)> {
        match self {
            Linear::F32 { w, .. } => w.dims2(),
            Linear::Packed(p) => Ok(p.out_in()),
            Linear::Quant(QMatMul::QTensor(q)) => q.shape().dims2(),
            Linear::Quant(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => t.dims2(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub(super) attn_norm: Tensor,
    pub(super) proj: [Linear; 7],
    /// Per-projection biases `[out]` (Qwen2's q/k/v).
    pub(super) bias: [Option<Tensor>; 7],
    pub(super) ffn_norm: Tensor,
}

/// One LoRA pair: `Δy = scale · (x·Aᵀ)·Bᵀ`, `A: [r, in]`, `B: [out, r]`.
#[derive(Debug, Clone)]
pub(crate) struct LoraPair {
    pub(crate) a: Tensor,
    pub(crate) b: Tensor,
    pub(crate) scale: f64,
}

/// LoRA pairs per layer and target.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoraSet {
    pub(crate) layers: Vec<[Option<LoraPair>; 7]>,
    pub(crate) dropout: f32,
}

impl LoraSet {
    pub(super) fn pair(&self, layer: usize, target: LoraTarget) -> Option<&LoraPair> {
        self.layers.get(layer)?[target.index()].as_ref()
    }
}

/// An additive steering vector (already multiplied by its strength), added to the residual
/// stream after block `layer` at every position, or from each row's
/// [`Ctx::steer_from`] position onward.
#[derive(Debug, Clone)]
pub(crate) struct SteeringTensor {
    pub(crate) layer: usize,
    pub(crate) vector: Tensor,
}

/// Per-call forward options.
pub(crate) struct Ctx<'a> {
    pub(crate) train: bool,
    pub(crate) lora: Option<&'a LoraSet>,
    pub(crate) steering: Option<&'a SteeringTensor>,
    /// Per batch row, the first (padded, cache-inclusive) position that gets the steering
    /// vector; `None` steers every position.
    pub(crate) steer_from: Option<Vec<usize>>,
    pub(crate) dropout_rng: Option<&'a mut ChaCha8Rng>,
    /// Collect the last position's hidden state after the embedding and every block.
    pub(crate) hidden_last: bool,
    /// Explicit absolute positions `[t]` (u32) of the new tokens, for packed sequences whose
    /// tokens are not consecutive (a tree of continuations); `None`: consecutive positions
    /// after the cache.
    pub(crate) positions: Option<Tensor>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn infer(lora: Option<&'a LoraSet>, steering: Option<&'a SteeringTensor>) -> Self {
        Self {
            train: false,
            lora,
            steering,
            steer_from: None,
            dropout_rng: None,
            hidden_last: false,
            positions: None,
        }
    }
}

/// `x [b, t, d]` plus the steering vector at the positions `offset + k` (k < t) of row `r`
/// that are at or past `from[r]` (every position without `from`).
pub(super) fn steer(
    x: &Tensor,
    s: &SteeringTensor,
    from: Option<&[usize]>,
    offset: usize,
) -> candle_core::Result<Tensor> {
    let Some(from) = from.filter(|f| f.iter().any(|&p| p > offset)) else {
        return x.broadcast_add(&s.vector);
    };
    let (b, t, _) = x.dims3()?;
    if from.len() != b {
        candle_core::bail!("steering starts for {} rows, batch of {b}", from.len())
    }
    let gate: Vec<f32> = from
        .iter()
        .flat_map(|&p| (0..t).map(move |k| if offset + k >= p { 1.0 } else { 0.0 }))
        .collect();
    let gate = Tensor::from_vec(gate, (b, t, 1), x.device())?.to_dtype(x.dtype())?;
    x + gate.broadcast_mul(&s.vector.to_dtype(x.dtype())?)?
}

/// Key/value cache of one batch.
#[derive(Debug, Clone, Default)]
pub(crate) struct KvCache {
    pub(super) layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    pub(crate) fn new(n_layer: usize) -> Self {
        Self {
            layers: vec![None; n_layer],
        }
    }

    /// Cached positions.
    pub(crate) fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .and_then(|(k, _)| k.dim(2).ok())
            .unwrap_or(0)
    }

    /// A cache from its per-layer `(k, v)` tensors `[b, kvh, T, hd]`.
    pub(crate) fn from_layers(layers: Vec<(Tensor, Tensor)>) -> Self {
        Self {
            layers: layers.into_iter().map(Some).collect(),
        }
    }

    /// The positions `idx` (time dimension) of row `row`, as a one-row cache with contiguous
    /// tensors.
    pub(crate) fn gather(
        &self,
        row: usize,
        idx: &[u32],
    ) -> candle_core::Result<Vec<(Tensor, Tensor)>> {
        let mut out = Vec::with_capacity(self.layers.len());
        for (k, v) in self.layers.iter().flatten() {
            let i = Tensor::new(idx, k.device())?;
            let k = k.narrow(0, row, 1)?.index_select(&i, 2)?.contiguous()?;
            let v = v.narrow(0, row, 1)?.index_select(&i, 2)?.contiguous()?;
            out.push((k, v));
        }
        Ok(out)
    }

    /// Keeps (and reorders / repeats) the rows named by `rows`.
    pub(crate) fn select_rows(&mut self, rows: &[u32]) -> candle_core::Result<()> {
        for (k, v) in self.layers.iter_mut().flatten() {
            let idx = Tensor::new(rows, k.device())?;
            *k = k.index_select(&idx, 0)?;
            *v = v.index_select(&idx, 0)?;
        }
        Ok(())
    }
}

/// The additive attention mask `[b, 1, t_new, T]` for rows whose keys are valid where
/// `valid[row][j]`; the `t_new` queries sit at the last positions. Every query may attend to
/// itself, so padded queries stay finite. `None` when no masking is needed.
pub(crate) fn build_mask(
    valid: &[Vec<bool>],
    t_new: usize,
    device: &Device,
) -> candle_core::Result<Option<Tensor>> {
    let b = valid.len();
    let total = valid.first().map_or(0, Vec::len);
    let offset = total - t_new;
    if t_new == 1 && valid.iter().all(|r| r.iter().all(|&v| v)) {
        return Ok(None);
    }
    let mut data = vec![0f32; b * t_new * total];
    for (r, row) in valid.iter().enumerate() {
        for i in 0..t_new {
            let q = offset + i;
            for (j, &ok) in row.iter().enumerate() {
                let allowed = (j <= q && ok) || j == q;
                if !allowed {
                    data[(r * t_new + i) * total + j] = f32::NEG_INFINITY;
                }
            }
        }
    }
    Ok(Some(Tensor::from_vec(data, (b, 1, t_new, total), device)?))
}
