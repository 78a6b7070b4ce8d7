//! A model's shape ([`Hparams`]), its rotary style and the projections LoRA can target.

use serde::{Deserialize, Serialize};

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
