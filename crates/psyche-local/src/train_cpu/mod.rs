//! The LoRA training step on the CPU: packed sequences and a hand-written forward and backward
//! pass over the frozen f32 weights.
//!
//! A micro-batch is packed: its examples lie back to back in one `[tokens, d]` activation
//! matrix, each with its own positions (0, 1, …) and a causal attention that stays inside its
//! example (a block-diagonal causal mask, never materialised). Nothing is padded, so an example
//! costs what its tokens cost.
//!
//! Only what LoRA needs is computed: the input gradient through every block down to the lowest
//! adapted layer, and the `A`/`B` gradients; no gradient for any frozen weight, no logits
//! except at the supervised positions. Activations live in a [`Workspace`] reused across steps
//! (no allocation, no page faults after the first step), products go straight to the `gemm`
//! kernels ([`crate::matmul`]), and the row-wise ops run on the rayon pool.
//!
//! The result equals candle's autograd over the padded batch (the generic path in
//! `llama`/`lora` modules, used on other devices) to float rounding; the tests below compare
//! the two, and a finite difference checks the loss itself.

mod attention;
mod backward;
mod forward;
mod kernels;
mod lora_ops;
mod loss;
mod views;

use std::ops::Range;

use rand_chacha::ChaCha8Rng;

use crate::llama::{DenseParts, Hparams, LoraSet, LoraTarget, RopeStyle};
use attention::Heads;
use kernels::sized;
use views::{View, layer_views};

/// Rows per rayon task in the row-wise ops.
const ROWS: usize = 16;

/// Examples packed back to back.
#[derive(Debug, Clone, Default)]
pub(crate) struct Packed {
    /// All token ids, example after example.
    pub(crate) ids: Vec<u32>,
    /// Each example's token range in `ids`.
    pub(crate) segs: Vec<Range<usize>>,
    /// Supervised predictions: (row whose output predicts, target id).
    pub(crate) targets: Vec<(usize, u32)>,
}

impl Packed {
    /// Packs examples given as (ids, prompt length): the tokens after the prompt are
    /// supervised.
    pub(crate) fn new<'a>(examples: impl IntoIterator<Item = (&'a [u32], usize)>) -> Self {
        let mut p = Packed::default();
        for (ids, prompt_len) in examples {
            let start = p.ids.len();
            p.ids.extend_from_slice(ids);
            p.segs.push(start..start + ids.len());
            let first = prompt_len.max(1).min(ids.len());
            for (pos, &id) in ids.iter().enumerate().skip(first) {
                p.targets.push((start + pos - 1, id));
            }
        }
        p
    }

    /// Tokens in the batch.
    pub(crate) fn tokens(&self) -> usize {
        self.ids.len()
    }
}

/// Gradients of one adapted projection.
#[derive(Debug, Clone)]
pub(crate) struct PairGrad {
    pub(crate) layer: usize,
    pub(crate) target: LoraTarget,
    /// `[r, in]`, row-major.
    pub(crate) a: Vec<f32>,
    /// `[out, r]`, row-major.
    pub(crate) b: Vec<f32>,
}

/// What a LoRA-adapted projection keeps for the backward pass.
#[derive(Debug, Default)]
pub(super) struct LoraActs {
    /// `x·Aᵀ` of the (dropped-out) input, `[n, r]`.
    pub(super) t: Vec<f32>,
    /// The dropout multipliers (`0` or `1/(1-p)`) of the input, `[n, in]`; empty without
    /// dropout.
    pub(super) mask: Vec<f32>,
}

/// One block's saved activations.
#[derive(Debug, Default)]
pub(super) struct LayerActs {
    pub(super) x_in: Vec<f32>,
    pub(super) r1: Vec<f32>,
    /// Rotated queries / keys and the values, token-major.
    pub(super) q: Vec<f32>,
    pub(super) k: Vec<f32>,
    pub(super) v: Vec<f32>,
    /// Attention probabilities per (head, example), `l×l` each.
    pub(super) probs: Vec<f32>,
    /// Attention output (the O projection's input), token-major.
    pub(super) o: Vec<f32>,
    pub(super) x_mid: Vec<f32>,
    pub(super) r2: Vec<f32>,
    pub(super) gate: Vec<f32>,
    pub(super) up: Vec<f32>,
    pub(super) lora: [LoraActs; 7],
}

/// Buffers reused across training steps.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    pub(super) layers: Vec<LayerActs>,
    /// Activations of the blocks below the lowest adapted one (not kept).
    pub(super) unsaved: LayerActs,
    pub(super) x: Vec<f32>,
    pub(super) h: Vec<f32>,
    pub(super) ff: Vec<f32>,
    pub(super) heads: Vec<f32>,
    pub(super) dx: Vec<f32>,
    pub(super) dh: Vec<f32>,
    pub(super) dff: Vec<f32>,
    pub(super) dff2: Vec<f32>,
    pub(super) dq: Vec<f32>,
    pub(super) dk: Vec<f32>,
    pub(super) dv: Vec<f32>,
    pub(super) dq_hm: Vec<f32>,
    pub(super) dk_hm: Vec<f32>,
    pub(super) dv_hm: Vec<f32>,
    pub(super) lora_x: Vec<f32>,
    pub(super) lora_dt: Vec<f32>,
    pub(super) lora_dx: Vec<f32>,
}

/// The shapes and per-step constants every stage reads.
struct Dims<'a> {
    /// Tokens in the packed batch.
    n: usize,
    d: usize,
    ff: usize,
    h: usize,
    kvh: usize,
    hd: usize,
    /// Query and key/value widths (`h·hd`, `kvh·hd`).
    qw: usize,
    kw: usize,
    /// `Σ l²` over the examples (attention probabilities per head).
    sq: usize,
    eps: f32,
    hs: Heads,
    style: RopeStyle,
    dropout: f32,
    /// Each token's position inside its example.
    pos: Vec<u32>,
    segs: &'a [Range<usize>],
    cos: View<'a>,
    sin: View<'a>,
}

impl<'a> Dims<'a> {
    fn new(hp: &Hparams, batch: &'a Packed, cos: View<'a>, sin: View<'a>, dropout: f32) -> Self {
        let (h, kvh, hd) = (hp.n_head, hp.n_kv_head, hp.head_dim);
        Self {
            n: batch.tokens(),
            d: hp.d_model,
            ff: hp.n_ff,
            h,
            kvh,
            hd,
            qw: h * hd,
            kw: kvh * hd,
            sq: batch.segs.iter().map(|s| s.len() * s.len()).sum(),
            eps: hp.rms_eps as f32,
            hs: Heads {
                h,
                kvh,
                hd,
                scale: 1.0 / (hd as f32).sqrt(),
            },
            style: hp.rope_style,
            dropout,
            pos: batch.segs.iter().flat_map(|s| 0..s.len() as u32).collect(),
            segs: &batch.segs,
            cos,
            sin,
        }
    }
}

/// The loss (mean cross-entropy over the supervised tokens of `batch`) and the gradients of
/// `loss_scale · loss` for every LoRA pair in `lora` (in layer, then target order).
///
/// # Errors
///
/// When the weights are not dense f32 on the CPU, or an example exceeds the context length.
pub(crate) fn loss_and_grads(
    parts: &DenseParts<'_>,
    lora: &LoraSet,
    batch: &Packed,
    mut rng: Option<&mut ChaCha8Rng>,
    loss_scale: f32,
    ws: &mut Workspace,
) -> candle_core::Result<(f64, Vec<PairGrad>)> {
    let hp = parts.hp;
    let n_layer = hp.n_layer;
    if batch.targets.is_empty() {
        candle_core::bail!("train-cpu: a micro-batch without supervised tokens")
    }
    let longest = batch.segs.iter().map(|s| s.len()).max().unwrap_or(0);
    if longest > hp.context_length {
        candle_core::bail!(
            "an example of {longest} tokens exceeds the context length {}",
            hp.context_length
        )
    }
    let embed = View::new(parts.embed)?;
    let head = match parts.lm_head {
        Some(t) => Some(View::new(t)?),
        None => None,
    };
    let norm = View::new(parts.norm)?;
    let (cos, sin) = (View::new(parts.cos)?, View::new(parts.sin)?);
    let layers = layer_views(parts, lora)?;
    // The backward pass stops at the lowest adapted layer.
    let lowest = layers
        .iter()
        .position(|l| l.lora.iter().any(Option::is_some))
        .unwrap_or(n_layer);
    let dims = Dims::new(hp, batch, cos, sin, lora.dropout);
    ws.layers.resize_with(n_layer, LayerActs::default);

    // Forward; layers below the lowest adapted one need no saved activations.
    let (n, d) = (dims.n, dims.d);
    forward::embed_tokens(sized(&mut ws.x, n * d), embed.get(), &batch.ids, d)?;
    for (li, lv) in layers.iter().enumerate() {
        forward::attention_half(&dims, lv, ws, li, li >= lowest, rng.as_deref_mut());
        forward::feed_forward_half(&dims, lv, ws, li, li >= lowest, rng.as_deref_mut());
    }

    // Head and loss: only the supervised rows.
    let head_w = head.as_ref().unwrap_or(&embed).get();
    let backward = lowest < n_layer;
    let loss = loss::head_and_loss(
        &dims,
        batch,
        ws,
        head_w,
        norm.get(),
        hp.vocab_size,
        loss_scale,
        backward,
    )?;
    let mut grads = Vec::new();
    if !backward {
        return Ok((loss, grads));
    }

    // Backward, from the last block down to the lowest adapted one.
    for li in (lowest..n_layer).rev() {
        backward::feed_forward_back(&dims, &layers[li], ws, li, &mut grads);
        backward::attention_back(&dims, &layers[li], ws, li, lowest, &mut grads);
    }
    grads.sort_by_key(|g| (g.layer, g.target));
    Ok((loss, grads))
}
