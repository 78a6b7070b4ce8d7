//! Reading GGUF files: the header, the metadata that sets a model's shape, and the weights.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::LocalError;
use crate::config::WeightFormat;
use crate::tokenizer::ChatTokenizer;

use super::forward::rope_tables;
use super::hparams::{Hparams, LoraTarget, RopeStyle};
use super::layers::{Layer, Linear};
use super::weights::Weights;

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

/// Checks that every tensor lies inside the file before any is read (a clear "truncated"
/// error).
fn check_tensor_bounds(
    ct: &gguf_file::Content,
    path: &Path,
    file_len: u64,
) -> Result<(), LocalError> {
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
    Ok(())
}

/// The model's shape from the GGUF metadata; `vocab_size`, `biases` and `tied_embeddings`
/// are left for the tensors to tell.
fn read_shape(
    ct: &gguf_file::Content,
    path: &Path,
    arch: Arch,
    architecture: String,
) -> Result<Hparams, LocalError> {
    let a = |k: &str| format!("{architecture}.{k}");
    let n_expert = md_usize(ct, path, &a("expert_count")).unwrap_or(0);
    if n_expert > 1 {
        return Err(LocalError::UnsupportedArchitecture {
            path: path.to_owned(),
            architecture: format!("{architecture} (mixture of {n_expert} experts)"),
        });
    }
    let n_layer = md_usize(ct, path, &a("block_count"))?;
    let d_model = md_usize(ct, path, &a("embedding_length"))?;
    let n_ff = md_usize(ct, path, &a("feed_forward_length"))?;
    let n_head = md_usize(ct, path, &a("attention.head_count"))?;
    let n_kv_head = md_usize(ct, path, &a("attention.head_count_kv")).unwrap_or(n_head);
    let context_length = md_usize(ct, path, &a("context_length")).unwrap_or(2048);
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
    let rope_dim = md_usize(ct, path, &a("rope.dimension_count")).unwrap_or(head_dim);
    if rope_dim != head_dim {
        return Err(LocalError::Metadata {
            path: path.to_owned(),
            key: a("rope.dimension_count"),
            message: format!(
                "partial rotary embeddings ({rope_dim} of {head_dim}) are not supported"
            ),
        });
    }
    let rms_eps =
        md_f32(ct, &a("attention.layer_norm_rms_epsilon")).unwrap_or(arch.default_rms_eps()) as f64;
    let rope_base = md_f32(ct, &a("rope.freq_base")).unwrap_or(10_000.0);
    Ok(Hparams {
        architecture,
        n_layer,
        n_head,
        n_kv_head,
        d_model,
        head_dim,
        n_ff,
        vocab_size: 0,
        rms_eps,
        rope_base,
        rope_style: arch.rope_style(),
        biases: Vec::new(),
        context_length,
        tied_embeddings: false,
    })
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
    check_tensor_bounds(&ct, path, file_len)?;
    // The fields only the tensors tell (vocabulary, biases, tied head) are set below.
    let mut hp = read_shape(&ct, path, arch, architecture)?;
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
    let mut layers = Vec::with_capacity(hp.n_layer);
    for i in 0..hp.n_layer {
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
    let (cos, sin) = rope_tables(hp.head_dim, hp.rope_base, hp.context_length, device)?;
    let biases = layers.first().map_or_else(Vec::new, |l: &Layer| {
        LoraTarget::ALL
            .into_iter()
            .filter(|t| l.bias[t.index()].is_some())
            .collect()
    });
    hp.vocab_size = vocab_size;
    hp.biases = biases;
    hp.tied_embeddings = tied_embeddings;
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
