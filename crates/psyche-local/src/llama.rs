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

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{CpuStorage, D, DType, Device, Layout, Module, Shape, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::LocalError;
use crate::config::WeightFormat;
use crate::qmatvec::QuantMatrix;
use crate::tokenizer::ChatTokenizer;
use crate::train_ops;

/// The `general.architecture` values this crate runs.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2"];

/// The GGML tensor types this crate reads (candle's GGUF reader). Q4_0, Q4_1, Q4_K, Q5_0,
/// Q5_1, Q5_K, Q6_K and Q8_0 weights also take our AVX2 decode kernels.
pub const SUPPORTED_TENSOR_TYPES: &[&str] = &[
    "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K",
    "Q5_K", "Q6_K", "Q8_K",
];

/// The name of a GGML tensor type number (ggml.h's `ggml_type`), for error messages.
fn ggml_type_name(id: u32) -> &'static str {
    const NAMES: [&str; 40] = [
        "F32",
        "F16",
        "Q4_0",
        "Q4_1",
        "Q4_2",
        "Q4_3",
        "Q5_0",
        "Q5_1",
        "Q8_0",
        "Q8_1",
        "Q2_K",
        "Q3_K",
        "Q4_K",
        "Q5_K",
        "Q6_K",
        "Q8_K",
        "IQ2_XXS",
        "IQ2_XS",
        "IQ3_XXS",
        "IQ1_S",
        "IQ4_NL",
        "IQ3_S",
        "IQ2_S",
        "IQ4_XS",
        "I8",
        "I16",
        "I32",
        "I64",
        "F64",
        "IQ1_M",
        "BF16",
        "Q4_0_4_4",
        "Q4_0_4_8",
        "Q4_0_8_8",
        "TQ1_0",
        "TQ2_0",
        "IQ4_NL_4_4",
        "IQ4_NL_4_8",
        "IQ4_NL_8_8",
        "MXFP4",
    ];
    NAMES.get(id as usize).copied().unwrap_or("unknown")
}

/// Reads the GGUF header, naming an unreadable tensor type.
fn read_content(file: &mut File, path: &Path) -> Result<gguf_file::Content, LocalError> {
    gguf_file::Content::read(file).map_err(|e| {
        let message = e.to_string();
        // candle's reader stops at the first tensor whose type it does not know.
        match message
            .rsplit_once("unknown dtype for tensor ")
            .and_then(|(_, rest)| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<u32>().ok()
            }) {
            Some(id) => LocalError::UnsupportedTensorType {
                path: path.to_owned(),
                tensor_type: format!("{} ({id})", ggml_type_name(id)),
            },
            None => gguf_err(path, message),
        }
    })
}

/// How the rotary embedding pairs the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RopeStyle {
    /// Adjacent pairs `(2i, 2i + 1)`: llama.cpp's "normal" RoPE, used by Llama GGUFs (whose
    /// q/k weights the converter permutes for it).
    Interleaved,
    /// Pairs `(i, i + d/2)` across the two halves of a head (GPT-NeoX style): Qwen2.
    Neox,
}

/// What differs between the supported architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arch {
    Llama,
    Qwen2,
}

impl Arch {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "llama" => Some(Arch::Llama),
            "qwen2" => Some(Arch::Qwen2),
            _ => None,
        }
    }

    fn rope_style(self) -> RopeStyle {
        match self {
            Arch::Llama => RopeStyle::Interleaved,
            Arch::Qwen2 => RopeStyle::Neox,
        }
    }

    /// Projections whose bias the architecture requires (others are used when present).
    fn required_biases(self) -> &'static [LoraTarget] {
        match self {
            Arch::Llama => &[],
            Arch::Qwen2 => &[LoraTarget::Q, LoraTarget::K, LoraTarget::V],
        }
    }

    /// RMS norm epsilon when the file does not say.
    fn default_rms_eps(self) -> f32 {
        match self {
            Arch::Llama => 1e-5,
            Arch::Qwen2 => 1e-6,
        }
    }
}

/// Shape and numerics of a model, read from GGUF metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hparams {
    /// `general.architecture`.
    pub architecture: String,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Key/value heads (grouped-query attention).
    pub n_kv_head: usize,
    /// Residual width.
    pub d_model: usize,
    /// Per-head width.
    pub head_dim: usize,
    /// Feed-forward width.
    pub n_ff: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// RMS norm epsilon.
    pub rms_eps: f64,
    /// RoPE frequency base.
    pub rope_base: f32,
    /// RoPE pairing of head dimensions.
    pub rope_style: RopeStyle,
    /// Projections with a bias (`q`, `k`, `v` for Qwen2), in block order.
    pub biases: Vec<LoraTarget>,
    /// Context length.
    pub context_length: usize,
    /// Whether the output head is tied to the token embedding.
    pub tied_embeddings: bool,
}

/// Which projection of a block a LoRA adapter targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoraTarget {
    /// Attention query projection.
    #[serde(alias = "q_proj")]
    Q,
    /// Attention key projection.
    #[serde(alias = "k_proj")]
    K,
    /// Attention value projection.
    #[serde(alias = "v_proj")]
    V,
    /// Attention output projection.
    #[serde(alias = "o_proj")]
    O,
    /// MLP gate projection.
    #[serde(alias = "gate_proj")]
    Gate,
    /// MLP up projection.
    #[serde(alias = "up_proj")]
    Up,
    /// MLP down projection.
    #[serde(alias = "down_proj")]
    Down,
}

impl LoraTarget {
    /// All targets, in block order.
    pub const ALL: [LoraTarget; 7] = [
        LoraTarget::Q,
        LoraTarget::K,
        LoraTarget::V,
        LoraTarget::O,
        LoraTarget::Gate,
        LoraTarget::Up,
        LoraTarget::Down,
    ];

    /// The short name used in adapter files (`q`, `k`, ..., `down`).
    pub fn as_str(self) -> &'static str {
        match self {
            LoraTarget::Q => "q",
            LoraTarget::K => "k",
            LoraTarget::V => "v",
            LoraTarget::O => "o",
            LoraTarget::Gate => "gate",
            LoraTarget::Up => "up",
            LoraTarget::Down => "down",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The GGUF tensor name stem of this projection (`attn_q`, ..., `ffn_down`).
    pub(crate) fn gguf_name(self) -> &'static str {
        match self {
            LoraTarget::Q => "attn_q",
            LoraTarget::K => "attn_k",
            LoraTarget::V => "attn_v",
            LoraTarget::O => "attn_output",
            LoraTarget::Gate => "ffn_gate",
            LoraTarget::Up => "ffn_up",
            LoraTarget::Down => "ffn_down",
        }
    }
}

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
    fn from_qtensor(
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

    fn forward(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
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
    fn decode_path(&self) -> &'static str {
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

    fn out_in(&self) -> candle_core::Result<(usize, usize)> {
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
    attn_norm: Tensor,
    proj: [Linear; 7],
    /// Per-projection biases `[out]` (Qwen2's q/k/v).
    bias: [Option<Tensor>; 7],
    ffn_norm: Tensor,
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
    fn pair(&self, layer: usize, target: LoraTarget) -> Option<&LoraPair> {
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
fn steer(
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
    layers: Vec<Option<(Tensor, Tensor)>>,
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

/// The loaded model weights.
#[derive(Debug, Clone)]
pub(crate) struct Weights {
    pub(crate) hp: Hparams,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: Linear,
    cos: Tensor,
    sin: Tensor,
    pub(crate) device: Device,
    pub(crate) format: WeightFormat,
    /// Weight tensors per GGML type, and how their small products run (`avx2` or `portable`
    /// kernels on the quantized blocks, else `dense` f32 or `candle` quantized matmul).
    pub(crate) tensor_types: BTreeMap<String, TensorTypeUse>,
}

/// How many weight tensors of one GGML type a model holds, and which path their decode-step
/// products take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TensorTypeUse {
    pub(crate) tensors: usize,
    pub(crate) decode: &'static str,
}

fn gguf_err(path: &Path, e: impl std::fmt::Display) -> LocalError {
    LocalError::Gguf {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

fn md_usize(ct: &gguf_file::Content, path: &Path, key: &str) -> Result<usize, LocalError> {
    let v = ct.metadata.get(key).ok_or_else(|| LocalError::Metadata {
        path: path.to_owned(),
        key: key.to_owned(),
        message: "missing".into(),
    })?;
    v.to_u32()
        .map(|x| x as usize)
        .or_else(|_| v.to_u64().map(|x| x as usize))
        .or_else(|_| v.to_i32().map(|x| x.max(0) as usize))
        .map_err(|e| LocalError::Metadata {
            path: path.to_owned(),
            key: key.to_owned(),
            message: e.to_string(),
        })
}

fn md_f32(ct: &gguf_file::Content, key: &str) -> Option<f32> {
    let v = ct.metadata.get(key)?;
    v.to_f32()
        .ok()
        .or_else(|| v.to_f64().ok().map(|x| x as f32))
}

/// Reads a GGUF file: hyperparameters, tokenizer and weights.
pub(crate) fn load_gguf(
    path: &Path,
    format: WeightFormat,
    device: &Device,
) -> Result<(Weights, ChatTokenizer), LocalError> {
    let mut file = File::open(path).map_err(|e| LocalError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| LocalError::io(path, e))?.len();
    let ct = read_content(&mut file, path)?;
    let architecture = ct
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .ok_or_else(|| LocalError::Metadata {
            path: path.to_owned(),
            key: "general.architecture".into(),
            message: "missing".into(),
        })?;
    let Some(arch) = Arch::from_name(&architecture) else {
        return Err(LocalError::UnsupportedArchitecture {
            path: path.to_owned(),
            architecture,
        });
    };
    // Check every tensor lies inside the file before reading any (a clear "truncated" error).
    for (name, info) in &ct.tensor_infos {
        let block = info.ggml_dtype.block_size();
        let bytes =
            (info.shape.elem_count() / block.max(1)) as u64 * info.ggml_dtype.type_size() as u64;
        let end = ct.tensor_data_offset + info.offset + bytes;
        if end > file_len {
            return Err(gguf_err(
                path,
                format!(
                    "truncated: tensor `{name}` ends at byte {end} but the file has {file_len} bytes"
                ),
            ));
        }
    }
    let a = |k: &str| format!("{architecture}.{k}");
    let n_expert = md_usize(&ct, path, &a("expert_count")).unwrap_or(0);
    if n_expert > 1 {
        return Err(LocalError::UnsupportedArchitecture {
            path: path.to_owned(),
            architecture: format!("{architecture} (mixture of {n_expert} experts)"),
        });
    }
    let n_layer = md_usize(&ct, path, &a("block_count"))?;
    let d_model = md_usize(&ct, path, &a("embedding_length"))?;
    let n_ff = md_usize(&ct, path, &a("feed_forward_length"))?;
    let n_head = md_usize(&ct, path, &a("attention.head_count"))?;
    let n_kv_head = md_usize(&ct, path, &a("attention.head_count_kv")).unwrap_or(n_head);
    let context_length = md_usize(&ct, path, &a("context_length")).unwrap_or(2048);
    if n_head == 0 || n_kv_head == 0 || d_model % n_head != 0 || n_head % n_kv_head != 0 {
        return Err(LocalError::Metadata {
            path: path.to_owned(),
            key: a("attention.head_count"),
            message: format!(
                "inconsistent heads: {n_head} heads, {n_kv_head} kv heads, width {d_model}"
            ),
        });
    }
    let head_dim = d_model / n_head;
    let rope_dim = md_usize(&ct, path, &a("rope.dimension_count")).unwrap_or(head_dim);
    if rope_dim != head_dim {
        return Err(LocalError::Metadata {
            path: path.to_owned(),
            key: a("rope.dimension_count"),
            message: format!(
                "partial rotary embeddings ({rope_dim} of {head_dim}) are not supported"
            ),
        });
    }
    let rms_eps = md_f32(&ct, &a("attention.layer_norm_rms_epsilon"))
        .unwrap_or(arch.default_rms_eps()) as f64;
    let rope_base = md_f32(&ct, &a("rope.freq_base")).unwrap_or(10_000.0);

    let tokenizer = ChatTokenizer::from_gguf(&ct)?;

    let mut read = |name: &str| -> Result<QTensor, LocalError> {
        if !ct.tensor_infos.contains_key(name) {
            return Err(LocalError::Metadata {
                path: path.to_owned(),
                key: name.to_owned(),
                message: "tensor missing".into(),
            });
        }
        ct.tensor(&mut file, name, device)
            .map_err(|e| gguf_err(path, e))
    };
    let embed_q = read("token_embd.weight")?;
    let vocab_size = embed_q.shape().dims2().map_err(|e| gguf_err(path, e))?.0;
    let embed = embed_q.dequantize(device)?;
    let norm = read("output_norm.weight")?.dequantize(device)?;
    let tied_embeddings = !ct.tensor_infos.contains_key("output.weight");
    let mut tensor_types = BTreeMap::new();
    let mut linear = |q: QTensor, dense: Option<Tensor>| -> Result<Linear, LocalError> {
        let dtype = dtype_name(q.dtype());
        let l = Linear::from_qtensor(q, dense, format, device)?;
        tensor_types
            .entry(dtype.to_owned())
            .or_insert(TensorTypeUse {
                tensors: 0,
                decode: l.decode_path(),
            })
            .tensors += 1;
        Ok(l)
    };
    let lm_head = if tied_embeddings {
        linear(embed_q, Some(embed.clone()))?
    } else {
        linear(read("output.weight")?, None)?
    };
    let mut layers = Vec::with_capacity(n_layer);
    for i in 0..n_layer {
        let mut proj = Vec::with_capacity(7);
        for target in LoraTarget::ALL {
            let name = format!("blk.{i}.{}.weight", target.gguf_name());
            proj.push(linear(read(&name)?, None)?);
        }
        let proj: [Linear; 7] = proj
            .try_into()
            .map_err(|_| gguf_err(path, "a block needs seven projections"))?;
        let mut bias: [Option<Tensor>; 7] = Default::default();
        for target in LoraTarget::ALL {
            let name = format!("blk.{i}.{}.bias", target.gguf_name());
            if ct.tensor_infos.contains_key(&name) || arch.required_biases().contains(&target) {
                let b = read(&name)?.dequantize(device)?;
                let out = proj[target.index()].out_in()?.0;
                if b.dims() != [out] {
                    return Err(LocalError::Metadata {
                        path: path.to_owned(),
                        key: name,
                        message: format!("bias of shape {:?}, expected [{out}]", b.dims()),
                    });
                }
                bias[target.index()] = Some(b);
            }
        }
        layers.push(Layer {
            attn_norm: read(&format!("blk.{i}.attn_norm.weight"))?.dequantize(device)?,
            proj,
            bias,
            ffn_norm: read(&format!("blk.{i}.ffn_norm.weight"))?.dequantize(device)?,
        });
    }
    let (cos, sin) = rope_tables(head_dim, rope_base, context_length, device)?;
    let biases = layers.first().map_or_else(Vec::new, |l: &Layer| {
        LoraTarget::ALL
            .into_iter()
            .filter(|t| l.bias[t.index()].is_some())
            .collect()
    });
    let hp = Hparams {
        architecture,
        n_layer,
        n_head,
        n_kv_head,
        d_model,
        head_dim,
        n_ff,
        vocab_size,
        rms_eps,
        rope_base,
        rope_style: arch.rope_style(),
        biases,
        context_length,
        tied_embeddings,
    };
    Ok((
        Weights {
            hp,
            embed,
            layers,
            norm,
            lm_head,
            cos,
            sin,
            device: device.clone(),
            format,
            tensor_types,
        },
        tokenizer,
    ))
}

/// The tensor type of a GGML name (`Q4_K`), if candle reads it.
pub(crate) fn dtype_from_name(name: &str) -> Option<GgmlDType> {
    const ALL: [GgmlDType; 15] = [
        GgmlDType::F32,
        GgmlDType::F16,
        GgmlDType::BF16,
        GgmlDType::Q4_0,
        GgmlDType::Q4_1,
        GgmlDType::Q5_0,
        GgmlDType::Q5_1,
        GgmlDType::Q8_0,
        GgmlDType::Q8_1,
        GgmlDType::Q2K,
        GgmlDType::Q3K,
        GgmlDType::Q4K,
        GgmlDType::Q5K,
        GgmlDType::Q6K,
        GgmlDType::Q8K,
    ];
    ALL.into_iter().find(|&t| dtype_name(t) == name)
}

/// The GGML name of a tensor type (`Q4_K`).
pub(crate) fn dtype_name(dtype: GgmlDType) -> &'static str {
    match dtype {
        GgmlDType::F32 => "F32",
        GgmlDType::F16 => "F16",
        GgmlDType::BF16 => "BF16",
        GgmlDType::Q4_0 => "Q4_0",
        GgmlDType::Q4_1 => "Q4_1",
        GgmlDType::Q5_0 => "Q5_0",
        GgmlDType::Q5_1 => "Q5_1",
        GgmlDType::Q8_0 => "Q8_0",
        GgmlDType::Q8_1 => "Q8_1",
        GgmlDType::Q2K => "Q2_K",
        GgmlDType::Q3K => "Q3_K",
        GgmlDType::Q4K => "Q4_K",
        GgmlDType::Q5K => "Q5_K",
        GgmlDType::Q6K => "Q6_K",
        GgmlDType::Q8K => "Q8_K",
    }
}

fn rope_tables(
    head_dim: usize,
    base: f32,
    len: usize,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let theta: Vec<f32> = (0..head_dim)
        .step_by(2)
        .map(|i| 1f32 / base.powf(i as f32 / head_dim as f32))
        .collect();
    let theta = Tensor::new(theta.as_slice(), device)?;
    let pos = Tensor::arange(0, len as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((len, 1))?;
    let angles = pos.matmul(&theta.reshape((1, head_dim / 2))?)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// Attention of one query position per row: `q: [b, h, 1, hd]`, `k, v: [b, kvh, T, hd]`,
/// `mask: [b, 1, 1, T]` (additive). Returns `[b, h, 1, hd]`.
fn decode_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    rep: usize,
) -> candle_core::Result<Tensor> {
    let (b, h, _, hd) = q.dims4()?;
    let (_, kvh, total, _) = k.dims4()?;
    let q = q.flatten_all()?.to_vec1::<f32>()?;
    let k = k.flatten_all()?.to_vec1::<f32>()?;
    let v = v.flatten_all()?.to_vec1::<f32>()?;
    let mask = match mask {
        Some(m) => Some(m.flatten_all()?.to_vec1::<f32>()?),
        None => None,
    };
    let scale = 1.0 / (hd as f32).sqrt();
    let mut out = vec![0f32; b * h * hd];
    let mut scores = vec![0f32; total];
    for row in 0..b {
        for head in 0..h {
            let kv = (row * kvh + head / rep) * total * hd;
            let qv = &q[(row * h + head) * hd..][..hd];
            for (j, s) in scores.iter_mut().enumerate() {
                let kj = &k[kv + j * hd..][..hd];
                *s = qv.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>() * scale;
                if let Some(m) = &mask {
                    *s += m[row * total + j];
                }
            }
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            let o = &mut out[(row * h + head) * hd..][..hd];
            for (j, &p) in scores.iter().enumerate() {
                let p = p / sum;
                let vj = &v[kv + j * hd..][..hd];
                for (o, &x) in o.iter_mut().zip(vj) {
                    *o += p * x;
                }
            }
        }
    }
    Tensor::from_vec(out, (b, h, 1, hd), &Device::Cpu)
}

fn rms_norm(x: &Tensor, alpha: &Tensor, eps: f64, train: bool) -> candle_core::Result<Tensor> {
    if train && x.device().is_cpu() {
        train_ops::rms_norm(x, alpha, eps as f32)
    } else if train {
        candle_nn::ops::rms_norm_slow(x, alpha, eps as f32)
    } else {
        candle_nn::ops::rms_norm(&x.contiguous()?, alpha, eps as f32)
    }
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

    fn proj(
        &self,
        layer: usize,
        target: LoraTarget,
        x: &Tensor,
        ctx: &mut Ctx<'_>,
    ) -> candle_core::Result<Tensor> {
        let mut base = self.layers[layer].proj[target.index()].forward(x, ctx.train)?;
        if let Some(b) = &self.layers[layer].bias[target.index()] {
            base = base.broadcast_add(b)?;
        }
        let Some(lora) = ctx.lora else {
            return Ok(base);
        };
        let Some(pair) = lora.pair(layer, target) else {
            return Ok(base);
        };
        let mut dims = x.dims().to_vec();
        let inner = dims.pop().unwrap_or(1);
        let rows = x.elem_count() / inner.max(1);
        let mut x2 = x.reshape((rows, inner))?;
        if ctx.train
            && lora.dropout > 0.0
            && let Some(rng) = ctx.dropout_rng.as_deref_mut()
        {
            let p = lora.dropout;
            let keep = 1.0 / (1.0 - p);
            let mask: Vec<f32> = (0..rows * inner)
                .map(|_| if rng.random::<f32>() < p { 0.0 } else { keep })
                .collect();
            let mask = Tensor::from_vec(mask, (rows, inner), x.device())?;
            x2 = (x2 * mask)?;
        }
        let delta = (x2.matmul(&pair.a.t()?)?.matmul(&pair.b.t()?)? * pair.scale)?;
        dims.push(pair.b.dim(0)?);
        base + delta.reshape(dims)?
    }

    fn rope(
        &self,
        x: &Tensor,
        offset: usize,
        positions: Option<&Tensor>,
        train: bool,
    ) -> candle_core::Result<Tensor> {
        let t = x.dim(2)?;
        let (cos, sin) = match positions {
            Some(p) => (self.cos.index_select(p, 0)?, self.sin.index_select(p, 0)?),
            None => (
                self.cos.narrow(0, offset, t)?,
                self.sin.narrow(0, offset, t)?,
            ),
        };
        let cpu = x.device().is_cpu();
        match (self.hp.rope_style, train) {
            (RopeStyle::Interleaved, true) if cpu => train_ops::rope_i(x, &cos, &sin),
            (RopeStyle::Interleaved, true) => candle_nn::rotary_emb::rope_i_slow(x, &cos, &sin),
            (RopeStyle::Interleaved, false) => {
                candle_nn::rotary_emb::rope_i(&x.contiguous()?, &cos, &sin)
            }
            (RopeStyle::Neox, true) if cpu => train_ops::rope(x, &cos, &sin),
            (RopeStyle::Neox, true) => candle_nn::rotary_emb::rope_slow(x, &cos, &sin),
            (RopeStyle::Neox, false) => candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin),
        }
    }

    fn attention(
        &self,
        layer: usize,
        x: &Tensor,
        offset: usize,
        mask: Option<&Tensor>,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
        ctx: &mut Ctx<'_>,
    ) -> candle_core::Result<Tensor> {
        let hp = &self.hp;
        let (b, t, _) = x.dims3()?;
        let (h, kvh, hd) = (hp.n_head, hp.n_kv_head, hp.head_dim);
        let rep = h / kvh;
        let q = self.proj(layer, LoraTarget::Q, x, ctx)?;
        let k = self.proj(layer, LoraTarget::K, x, ctx)?;
        let v = self.proj(layer, LoraTarget::V, x, ctx)?;
        let q = q.reshape((b, t, h, hd))?.transpose(1, 2)?.contiguous()?;
        let k = k.reshape((b, t, kvh, hd))?.transpose(1, 2)?.contiguous()?;
        let v = v.reshape((b, t, kvh, hd))?.transpose(1, 2)?.contiguous()?;
        let q = self.rope(&q, offset, ctx.positions.as_ref(), ctx.train)?;
        let k = self.rope(&k, offset, ctx.positions.as_ref(), ctx.train)?;
        let (k, v) = match cache {
            Some(slot) => {
                let kv = match slot.take() {
                    Some((ck, cv)) => (Tensor::cat(&[&ck, &k], 2)?, Tensor::cat(&[&cv, &v], 2)?),
                    None => (k, v),
                };
                *slot = Some(kv.clone());
                kv
            }
            None => (k, v),
        };
        let total = k.dim(2)?;
        if t == 1 && !ctx.train && x.device().is_cpu() {
            // A decode step: a few dot products per head, cheaper in plain Rust than through
            // candle's matmul (which re-reads the CPU topology on every call).
            let y = decode_attention(&q, &k, &v, mask, rep)?.reshape((b, 1, h * hd))?;
            return self.proj(layer, LoraTarget::O, &y, ctx);
        }
        // Grouped-query attention without copying K/V: fold the query heads of one KV head
        // into the sequence dimension.
        let q = q.reshape((b, kvh, rep * t, hd))?;
        let att = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
        let att = match mask {
            Some(m) => att
                .reshape((b, kvh, rep, t, total))?
                .broadcast_add(&m.unsqueeze(1)?)?
                .reshape((b, kvh, rep * t, total))?,
            None => att,
        };
        let att = if ctx.train && att.device().is_cpu() {
            train_ops::softmax_last_dim(&att)?
        } else if ctx.train {
            candle_nn::ops::softmax(&att, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&att.contiguous()?)?
        };
        let y = att.matmul(&v)?;
        let y = y
            .reshape((b, h, t, hd))?
            .transpose(1, 2)?
            .reshape((b, t, h * hd))?;
        self.proj(layer, LoraTarget::O, &y, ctx)
    }

    /// Runs the model over `ids: [b, t]` (u32), appending to `cache` when given. Returns the
    /// final-norm hidden states `[b, t, d]` and, with `ctx.hidden_last`, the last position's
    /// residual stream after the embedding and after every block (`n_layer + 1` tensors `[b, d]`).
    pub(crate) fn forward(
        &self,
        ids: &Tensor,
        mask: Option<&Tensor>,
        mut cache: Option<&mut KvCache>,
        ctx: &mut Ctx<'_>,
    ) -> candle_core::Result<(Tensor, Vec<Tensor>)> {
        let (b, t) = ids.dims2()?;
        let offset = cache.as_ref().map_or(0, |c| c.len());
        let end = match &ctx.positions {
            Some(p) => p.max(0)?.to_scalar::<u32>()? as usize + 1,
            None => offset + t,
        };
        if end > self.hp.context_length {
            candle_core::bail!(
                "sequence of {} tokens exceeds the context length {}",
                end,
                self.hp.context_length
            )
        }
        let mut x =
            self.embed
                .index_select(&ids.flatten_all()?, 0)?
                .reshape((b, t, self.hp.d_model))?;
        let mut hidden = Vec::new();
        let last = |x: &Tensor| x.narrow(1, t - 1, 1).and_then(|y| y.squeeze(1));
        if ctx.hidden_last {
            hidden.push(last(&x)?);
        }
        for i in 0..self.hp.n_layer {
            let layer = &self.layers[i];
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            let h = rms_norm(&x, &layer.attn_norm, self.hp.rms_eps, ctx.train)?;
            let h = self.attention(i, &h, offset, mask, slot, ctx)?;
            x = (x + h)?;
            let h = rms_norm(&x, &layer.ffn_norm, self.hp.rms_eps, ctx.train)?;
            let gate = self.proj(i, LoraTarget::Gate, &h, ctx)?;
            let up = self.proj(i, LoraTarget::Up, &h, ctx)?;
            let h = (candle_nn::ops::silu(&gate)? * up)?;
            let h = self.proj(i, LoraTarget::Down, &h, ctx)?;
            x = (x + h)?;
            if let Some(s) = ctx.steering.filter(|s| s.layer == i) {
                x = steer(&x, s, ctx.steer_from.as_deref(), offset)?;
            }
            if ctx.hidden_last {
                hidden.push(last(&x)?);
            }
        }
        let x = rms_norm(&x, &self.norm, self.hp.rms_eps, ctx.train)?;
        Ok((x, hidden))
    }

    /// Cached keys `[1, kvh, T, hd]` moved by `shift` positions (RoPE rotations compose, so
    /// rotating every key by the angle of `|shift|`, backwards for a negative shift, turns keys
    /// computed at positions `p` into keys at `p + shift`). Values carry no position.
    pub(crate) fn shift_keys(&self, k: &Tensor, shift: i64) -> candle_core::Result<Tensor> {
        if shift == 0 {
            return Ok(k.clone());
        }
        let t = k.dim(2)?;
        let half = self.hp.head_dim / 2;
        let at = shift.unsigned_abs() as usize;
        let cos = self
            .cos
            .narrow(0, at, 1)?
            .broadcast_as((t, half))?
            .contiguous()?;
        let mut sin = self
            .sin
            .narrow(0, at, 1)?
            .broadcast_as((t, half))?
            .contiguous()?;
        if shift < 0 {
            sin = sin.neg()?;
        }
        let k = k.contiguous()?;
        match self.hp.rope_style {
            RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(&k, &cos, &sin),
            RopeStyle::Neox => candle_nn::rotary_emb::rope(&k, &cos, &sin),
        }
    }

    /// Logits `[n, vocab]` of the hidden rows `rows` (flat indices into `[b * t]`).
    pub(crate) fn logits_at(
        &self,
        h: &Tensor,
        rows: &[u32],
        train: bool,
    ) -> candle_core::Result<Tensor> {
        let d = self.hp.d_model;
        let flat = h.reshape((h.elem_count() / d, d))?;
        let idx = Tensor::new(rows, h.device())?;
        let sel = flat.index_select(&idx, 0)?;
        self.lm_head.forward(&sel, train)
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::SyntheticModel;

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
