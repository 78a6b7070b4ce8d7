//! Random models in real GGUF files: a [`SyntheticModel`] writes a small (or 0.5B-sized) model
//! of a supported architecture with seeded random weights, a byte-level BPE tokenizer and a
//! ChatML chat template, in the tensor types you choose.
//!
//! The files load like downloaded ones, so tests and benchmarks can exercise every code path
//! (architecture dispatch, biases, untied heads, K-quant kernels, LoRA) without fetching
//! weights. Their outputs are meaningless text.

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::{QTensor, gguf_file};
use candle_core::{Device, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::LocalError;
use crate::llama::{LoraTarget, dtype_from_name};

/// The shape, tensor types and seed of a random GGUF model.
///
/// ```no_run
/// use psyche_local::{LocalConfig, LocalModel, SyntheticModel};
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let path = std::env::temp_dir().join("tiny-qwen2.gguf");
/// SyntheticModel::qwen2_tiny().write(&path)?;
/// let model = LocalModel::load(&LocalConfig::new(path.to_string_lossy()))?;
/// assert_eq!(model.hparams().architecture, "qwen2");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticModel {
    /// `general.architecture`: `llama` or `qwen2` (which adds q/k/v biases).
    pub architecture: String,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Residual width.
    pub d_model: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Key/value heads.
    pub n_kv_head: usize,
    /// Feed-forward width.
    pub n_ff: usize,
    /// Vocabulary size, at least 256 bytes + the merges + 3 special tokens (about 320).
    pub vocab_size: usize,
    /// Context length.
    pub context_length: usize,
    /// RoPE frequency base.
    pub rope_base: f32,
    /// RMS norm epsilon.
    pub rms_eps: f32,
    /// Whether the output head reuses the token embedding (no `output.weight`).
    pub tied_embeddings: bool,
    /// GGML type of each projection, in block order (q, k, v, o, gate, up, down), e.g. `Q5_0`.
    pub projection_types: [String; 7],
    /// When set, every third block's `ffn_down` (0, 3, 6, ...) has this type instead, as
    /// llama.cpp's `Q4_K_M` gives some down projections more bits.
    pub mixed_down_type: Option<String>,
    /// GGML type of the token embedding.
    pub embedding_type: String,
    /// GGML type of the untied output head.
    pub output_type: String,
    /// The system prompt the chat template injects when a conversation has none.
    pub default_system_prompt: String,
    /// Seed of every weight.
    pub seed: u64,
}

fn types(names: [&str; 7]) -> [String; 7] {
    names.map(str::to_owned)
}

impl SyntheticModel {
    /// A small Qwen2 model for tests: 3 blocks of width 256 (4 heads, 2 KV heads), feed-forward
    /// 512, 384 tokens, an untied Q6_K head, and every tensor family of a `Q4_K_M` file
    /// (Q5_0, Q8_0, Q4_K, Q6_K). About 2.3 MB.
    pub fn qwen2_tiny() -> Self {
        Self {
            architecture: "qwen2".into(),
            n_layer: 3,
            d_model: 256,
            n_head: 4,
            n_kv_head: 2,
            n_ff: 512,
            vocab_size: 384,
            context_length: 512,
            rope_base: 1_000_000.0,
            rms_eps: 1e-6,
            tied_embeddings: false,
            projection_types: types(["Q5_0", "Q8_0", "Q8_0", "Q4_K", "Q4_K", "Q5_0", "Q4_K"]),
            mixed_down_type: Some("Q6_K".into()),
            embedding_type: "Q8_0".into(),
            output_type: "Q6_K".into(),
            default_system_prompt: "You are a random test model.".into(),
            seed: 0,
        }
    }

    /// A model shaped like Qwen2.5-0.5B-Instruct (24 blocks of width 896, 14 heads, 2 KV
    /// heads, feed-forward 4,864, 151,936 tokens, tied embeddings) with the tensor types of its
    /// `Q4_K_M` release: Q5_0 where rows of 896 rule out K-quants, Q8_0 values and embedding,
    /// Q4_K / Q6_K down projections. About 400 MB; writing it takes tens of seconds.
    pub fn qwen2_05b_like() -> Self {
        Self {
            architecture: "qwen2".into(),
            n_layer: 24,
            d_model: 896,
            n_head: 14,
            n_kv_head: 2,
            n_ff: 4864,
            vocab_size: 151_936,
            context_length: 32_768,
            rope_base: 1_000_000.0,
            rms_eps: 1e-6,
            tied_embeddings: true,
            projection_types: types(["Q5_0", "Q5_0", "Q8_0", "Q5_0", "Q5_0", "Q5_0", "Q4_K"]),
            mixed_down_type: Some("Q6_K".into()),
            embedding_type: "Q8_0".into(),
            output_type: "Q8_0".into(),
            default_system_prompt: "You are a random test model.".into(),
            seed: 0,
        }
    }

    /// Writes the model to `path` (atomically).
    ///
    /// # Errors
    ///
    /// [`LocalError::Config`] naming the field for an invalid shape or tensor type;
    /// [`LocalError::Io`] when the file cannot be written.
    pub fn write(&self, path: &Path) -> Result<(), LocalError> {
        self.validate()?;
        let (tokens, token_types, merges) = vocabulary(self.vocab_size);
        let eos = (self.vocab_size - 1) as u32;
        let pad = (self.vocab_size - 3) as u32;
        let a = &self.architecture;
        let mut metadata: Vec<(String, Value)> = vec![
            ("general.architecture".into(), Value::String(a.clone())),
            (
                "general.name".into(),
                Value::String(format!("synthetic-{a}")),
            ),
            (format!("{a}.block_count"), Value::U32(self.n_layer as u32)),
            (
                format!("{a}.context_length"),
                Value::U32(self.context_length as u32),
            ),
            (
                format!("{a}.embedding_length"),
                Value::U32(self.d_model as u32),
            ),
            (
                format!("{a}.feed_forward_length"),
                Value::U32(self.n_ff as u32),
            ),
            (
                format!("{a}.attention.head_count"),
                Value::U32(self.n_head as u32),
            ),
            (
                format!("{a}.attention.head_count_kv"),
                Value::U32(self.n_kv_head as u32),
            ),
            (format!("{a}.rope.freq_base"), Value::F32(self.rope_base)),
            (
                format!("{a}.attention.layer_norm_rms_epsilon"),
                Value::F32(self.rms_eps),
            ),
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.pre".into(), Value::String("qwen2".into())),
            (
                "tokenizer.ggml.tokens".into(),
                Value::Array(tokens.into_iter().map(Value::String).collect()),
            ),
            (
                "tokenizer.ggml.token_type".into(),
                Value::Array(token_types.into_iter().map(Value::I32).collect()),
            ),
            (
                "tokenizer.ggml.merges".into(),
                Value::Array(merges.into_iter().map(Value::String).collect()),
            ),
            ("tokenizer.ggml.eos_token_id".into(), Value::U32(eos)),
            ("tokenizer.ggml.padding_token_id".into(), Value::U32(pad)),
            ("tokenizer.ggml.bos_token_id".into(), Value::U32(pad)),
            ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
            (
                "tokenizer.chat_template".into(),
                Value::String(chat_template(&self.default_system_prompt)),
            ),
        ];
        metadata.push(("general.alignment".into(), Value::U32(32)));
        let tensors = self.tensors()?;
        let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
        let mut bytes = std::io::Cursor::new(Vec::new());
        gguf_file::write(&mut bytes, &md, &ts)?;
        psyche_core::write_atomic(path, bytes.get_ref()).map_err(|e| LocalError::io(path, e))
    }

    /// The model's file in `dir`, written on first use: `synthetic-{architecture}-{hash}.gguf`,
    /// named by a hash of the whole spec, so a changed spec gets a new file.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn cached(&self, dir: &Path) -> Result<PathBuf, LocalError> {
        let spec =
            serde_json::to_vec(self).map_err(|e| LocalError::config("spec", e.to_string()))?;
        let hash = hex::encode(Sha256::digest(&spec));
        let path = dir.join(format!(
            "synthetic-{}-{}.gguf",
            self.architecture,
            &hash[..16]
        ));
        if !path.is_file() {
            std::fs::create_dir_all(dir).map_err(|e| LocalError::io(dir, e))?;
            tracing::info!(path = %path.display(), "writing a synthetic model");
            self.write(&path)?;
        }
        Ok(path)
    }

    fn validate(&self) -> Result<(), LocalError> {
        if !crate::llama::SUPPORTED_ARCHITECTURES.contains(&self.architecture.as_str()) {
            return Err(LocalError::config(
                "architecture",
                format!(
                    "`{}` is not one of {:?}",
                    self.architecture,
                    crate::llama::SUPPORTED_ARCHITECTURES
                ),
            ));
        }
        if self.n_layer == 0 || self.n_ff == 0 || self.context_length == 0 {
            return Err(LocalError::config(
                "n_layer",
                "n_layer, n_ff and context_length must be at least 1",
            ));
        }
        if self.n_head == 0
            || self.n_kv_head == 0
            || !self.d_model.is_multiple_of(self.n_head)
            || !self.n_head.is_multiple_of(self.n_kv_head)
            || !(self.d_model / self.n_head).is_multiple_of(2)
        {
            return Err(LocalError::config(
                "n_head",
                "d_model must split into an even head width, and n_head into n_kv_head groups",
            ));
        }
        let min_vocab = 256 + MERGES.len() + 3;
        if self.vocab_size < min_vocab {
            return Err(LocalError::config(
                "vocab_size",
                format!("must be at least {min_vocab}"),
            ));
        }
        Ok(())
    }

    /// Every tensor, named as llama.cpp names them, with seeded random values.
    fn tensors(&self) -> Result<Vec<(String, QTensor)>, LocalError> {
        let mut rng = psyche_core::seeded_rng(self.seed);
        let (d, hd) = (self.d_model, self.d_model / self.n_head);
        let kv = self.n_kv_head * hd;
        let mut out = Vec::new();
        let add = |out: &mut Vec<(String, QTensor)>,
                   name: String,
                   field: &str,
                   ty: &str,
                   shape: &[usize],
                   values: Vec<f32>|
         -> Result<(), LocalError> {
            let dtype = dtype_from_name(ty).ok_or_else(|| {
                LocalError::config(
                    field,
                    format!(
                        "unknown tensor type `{ty}` (one of {:?})",
                        crate::llama::SUPPORTED_TENSOR_TYPES
                    ),
                )
            })?;
            let block = dtype.block_size();
            if shape.last().is_some_and(|&n| n % block != 0) {
                return Err(LocalError::config(
                    field,
                    format!(
                        "{ty} needs rows of a multiple of {block} values, `{name}` has {shape:?}"
                    ),
                ));
            }
            let t = Tensor::from_vec(values, shape, &Device::Cpu)?;
            out.push((name, QTensor::quantize(&t, dtype)?));
            Ok(())
        };
        let mut uniform = |n: usize, scale: f32, center: f32| -> Vec<f32> {
            (0..n)
                .map(|_| center + scale * rng.random_range(-1.0f32..1.0))
                .collect()
        };
        // Uniform(±√3/√fan_in): unit-variance outputs from unit-variance inputs.
        let fan = |n: usize| (3.0 / n as f32).sqrt();
        let embd = uniform(self.vocab_size * d, 1.0, 0.0);
        add(
            &mut out,
            "token_embd.weight".into(),
            "embedding_type",
            &self.embedding_type,
            &[self.vocab_size, d],
            embd,
        )?;
        add(
            &mut out,
            "output_norm.weight".into(),
            "output_norm",
            "F32",
            &[d],
            uniform(d, 0.1, 1.0),
        )?;
        if !self.tied_embeddings {
            let head = uniform(self.vocab_size * d, 2.0 * fan(d), 0.0);
            add(
                &mut out,
                "output.weight".into(),
                "output_type",
                &self.output_type,
                &[self.vocab_size, d],
                head,
            )?;
        }
        let with_bias = self.architecture == "qwen2";
        for i in 0..self.n_layer {
            for norm in ["attn_norm", "ffn_norm"] {
                add(
                    &mut out,
                    format!("blk.{i}.{norm}.weight"),
                    norm,
                    "F32",
                    &[d],
                    uniform(d, 0.1, 1.0),
                )?;
            }
            for (k, target) in LoraTarget::ALL.into_iter().enumerate() {
                let (rows, cols) = match target {
                    LoraTarget::Q | LoraTarget::O => (d, d),
                    LoraTarget::K | LoraTarget::V => (kv, d),
                    LoraTarget::Gate | LoraTarget::Up => (self.n_ff, d),
                    LoraTarget::Down => (d, self.n_ff),
                };
                let ty = match (&self.mixed_down_type, target) {
                    (Some(t), LoraTarget::Down) if i % 3 == 0 => t,
                    _ => &self.projection_types[k],
                };
                let stem = target.gguf_name();
                let w = uniform(rows * cols, fan(cols), 0.0);
                add(
                    &mut out,
                    format!("blk.{i}.{stem}.weight"),
                    "projection_types",
                    ty,
                    &[rows, cols],
                    w,
                )?;
                if with_bias && matches!(target, LoraTarget::Q | LoraTarget::K | LoraTarget::V) {
                    add(
                        &mut out,
                        format!("blk.{i}.{stem}.bias"),
                        "bias",
                        "F32",
                        &[rows],
                        uniform(rows, 0.5, 0.0),
                    )?;
                }
            }
        }
        Ok(out)
    }
}

/// Byte pairs merged by the tokenizer, in priority order (each also a vocabulary entry).
const MERGES: &[(&str, &str)] = &[
    ("t", "h"),
    ("h", "e"),
    ("i", "n"),
    ("e", "r"),
    ("a", "n"),
    ("r", "e"),
    ("o", "n"),
    ("a", "t"),
    ("e", "n"),
    ("n", "d"),
    ("o", "u"),
    ("i", "s"),
    ("i", "t"),
    ("e", "s"),
    ("o", "r"),
    ("Ġ", "t"),
    ("Ġ", "a"),
    ("Ġ", "s"),
    ("Ġ", "w"),
    ("Ġ", "c"),
    ("Ġ", "b"),
    ("Ġ", "o"),
    ("Ġ", "i"),
    ("Ġ", "f"),
    ("Ġ", "m"),
    ("Ġ", "p"),
    ("Ġ", "d"),
    ("Ġ", "h"),
    ("Ġt", "he"),
    ("Ġa", "nd"),
    ("Ġ", "is"),
    ("Ġ", "it"),
    ("Ġw", "h"),
    ("Ġwh", "at"),
    ("Ġ", "Y"),
    ("Ġ", "N"),
    ("Y", "es"),
    ("N", "o"),
];

/// GPT-2's printable stand-in for every byte (byte-level BPE).
fn byte_chars() -> Vec<char> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
    let mut extra = 0;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap_or('?')
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap_or('?')
            }
        })
        .collect()
}

/// Tokens (bytes, merges, fillers, then `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`), their
/// GGUF token types (1 normal, 3 control) and the merges.
fn vocabulary(size: usize) -> (Vec<String>, Vec<i32>, Vec<String>) {
    let mut tokens: Vec<String> = byte_chars().into_iter().map(String::from).collect();
    let mut merges = Vec::new();
    for (a, b) in MERGES {
        merges.push(format!("{a} {b}"));
        tokens.push(format!("{a}{b}"));
    }
    let fillers = size - 3 - tokens.len();
    tokens.extend((0..fillers).map(|i| format!("<unused{i}>")));
    let mut types = vec![1; tokens.len()];
    for special in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] {
        tokens.push(special.into());
        types.push(3);
    }
    (tokens, types, merges)
}

/// A ChatML template that injects `default_system` when the conversation has no system
/// message (the shape of Qwen2.5's template without its tool-calling branches).
fn chat_template(default_system: &str) -> String {
    let system = default_system.replace('\'', "\\'");
    format!(
        "{{%- if messages[0]['role'] == 'system' %}}\
         {{{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}}}\
         {{%- else %}}{{{{- '<|im_start|>system\\n{system}<|im_end|>\\n' }}}}{{%- endif %}}\
         {{%- for message in messages %}}\
         {{%- if message.role != 'system' or not loop.first %}}\
         {{{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}}}\
         {{%- endif %}}{{%- endfor %}}\
         {{%- if add_generation_prompt %}}{{{{- '<|im_start|>assistant\\n' }}}}{{%- endif %}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_alphabet_is_gpt2s() {
        let chars = byte_chars();
        assert_eq!(chars.len(), 256);
        assert_eq!(chars[b' ' as usize], 'Ġ');
        assert_eq!(chars[b'\n' as usize], 'Ċ');
        assert_eq!(chars[b'a' as usize], 'a');
        let mut sorted = chars.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 256, "every byte has its own character");
    }

    #[test]
    fn bad_specs_name_the_field() {
        let mut m = SyntheticModel::qwen2_tiny();
        m.architecture = "gpt-neox".into();
        let e = m.write(Path::new("/nonexistent/x.gguf")).unwrap_err();
        assert!(e.to_string().contains("architecture"), "{e}");
        let mut m = SyntheticModel::qwen2_tiny();
        m.d_model = 96; // K-quants need rows of 256
        let e = m.write(Path::new("/nonexistent/x.gguf")).unwrap_err();
        assert!(e.to_string().contains("multiple of 256"), "{e}");
        let mut m = SyntheticModel::qwen2_tiny();
        m.projection_types[0] = "Q9_9".into();
        let e = m.write(Path::new("/nonexistent/x.gguf")).unwrap_err();
        assert!(e.to_string().contains("Q9_9"), "{e}");
    }
}
