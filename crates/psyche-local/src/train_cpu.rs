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
//! `llama.rs`/`lora.rs`, used on other devices) to float rounding; the tests below compare
//! the two, and a finite difference checks the loss itself.

use std::ops::Range;

use candle_core::{CpuStorage, Storage, StorageRef, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::llama::{DenseParts, LoraSet, LoraTarget, RopeStyle};
use crate::matmul::{Mat, matmul};

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

/// A borrowed f32 CPU tensor.
struct View<'a> {
    guard: StorageRef<'a>,
    range: Range<usize>,
}

impl<'a> View<'a> {
    fn new(t: &'a Tensor) -> candle_core::Result<Self> {
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

    fn get(&self) -> &[f32] {
        match &*self.guard {
            Storage::Cpu(CpuStorage::F32(v)) => &v[self.range.clone()],
            _ => &[],
        }
    }
}

/// A LoRA pair's values during a step.
struct PairView<'a> {
    a: View<'a>,
    b: View<'a>,
    scale: f32,
    rank: usize,
}

struct LayerViews<'a> {
    attn_norm: View<'a>,
    ffn_norm: View<'a>,
    proj: Vec<View<'a>>,
    bias: Vec<Option<View<'a>>>,
    lora: Vec<Option<PairView<'a>>>,
}

/// What a LoRA-adapted projection keeps for the backward pass.
#[derive(Debug, Default)]
struct LoraActs {
    /// `x·Aᵀ` of the (dropped-out) input, `[n, r]`.
    t: Vec<f32>,
    /// The dropout multipliers (`0` or `1/(1-p)`) of the input, `[n, in]`; empty without
    /// dropout.
    mask: Vec<f32>,
}

/// One block's saved activations.
#[derive(Debug, Default)]
struct LayerActs {
    x_in: Vec<f32>,
    r1: Vec<f32>,
    /// Rotated queries / keys and the values, token-major.
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// Attention probabilities per (head, example), `l×l` each.
    probs: Vec<f32>,
    /// Attention output (the O projection's input), token-major.
    o: Vec<f32>,
    x_mid: Vec<f32>,
    r2: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    lora: [LoraActs; 7],
}

/// Buffers reused across training steps.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    layers: Vec<LayerActs>,
    /// Activations of the blocks below the lowest adapted one (not kept).
    unsaved: LayerActs,
    x: Vec<f32>,
    h: Vec<f32>,
    ff: Vec<f32>,
    heads: Vec<f32>,
    dx: Vec<f32>,
    dh: Vec<f32>,
    dff: Vec<f32>,
    dff2: Vec<f32>,
    dq: Vec<f32>,
    dk: Vec<f32>,
    dv: Vec<f32>,
    dq_hm: Vec<f32>,
    dk_hm: Vec<f32>,
    dv_hm: Vec<f32>,
    lora_x: Vec<f32>,
    lora_dt: Vec<f32>,
    lora_dx: Vec<f32>,
}

/// `v` with length `n`; existing contents are kept (callers overwrite or clear).
fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.resize(n, 0.0);
    &mut v[..n]
}

/// `v` with length `n`, all zero.
fn zeroed(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.clear();
    v.resize(n, 0.0);
    &mut v[..n]
}

fn inv_rms(row: &[f32], eps: f32) -> f32 {
    let ms = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
    1.0 / (ms + eps).sqrt()
}

/// `y = x·r·α` per row, computing `r = 1/rms(x)` into `r` when `compute_r`.
fn rms_forward(x: &[f32], alpha: &[f32], eps: f32, r: &mut [f32], y: &mut [f32], compute_r: bool) {
    let d = alpha.len();
    y.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .zip(r.par_iter_mut())
        .with_min_len(ROWS)
        .for_each(|((yr, xr), r)| {
            if compute_r {
                *r = inv_rms(xr, eps);
            }
            for ((y, &x), &a) in yr.iter_mut().zip(xr).zip(alpha) {
                *y = x * *r * a;
            }
        });
}

/// `dx += r·g·α − x·r³·mean(g·α·x)` per row, with `g = dy`.
fn rms_backward(x: &[f32], r: &[f32], alpha: &[f32], dy: &[f32], dx: &mut [f32]) {
    let d = alpha.len();
    dx.par_chunks_mut(d)
        .zip(x.par_chunks(d))
        .zip(dy.par_chunks(d))
        .zip(r.par_iter())
        .with_min_len(ROWS)
        .for_each(|(((dr, xr), gr), &r)| {
            let gx = xr
                .iter()
                .zip(gr)
                .zip(alpha)
                .map(|((x, g), a)| x * g * a)
                .sum::<f32>()
                / d as f32;
            let r3 = r * r * r * gx;
            for (((o, &x), &g), &a) in dr.iter_mut().zip(xr).zip(gr).zip(alpha) {
                *o += r * g * a - x * r3;
            }
        });
}

/// Rotates every head of every row of `buf: [n, heads·hd]` by its position's angles (`sign`
/// `-1` rotates back: the backward pass).
#[allow(clippy::too_many_arguments)]
fn rope(
    buf: &mut [f32],
    heads: usize,
    hd: usize,
    pos: &[u32],
    cos: &[f32],
    sin: &[f32],
    style: RopeStyle,
    sign: f32,
) {
    let half = hd / 2;
    buf.par_chunks_mut(heads * hd)
        .zip(pos.par_iter())
        .with_min_len(ROWS)
        .for_each(|(row, &p)| {
            let c = &cos[p as usize * half..(p as usize + 1) * half];
            let s = &sin[p as usize * half..(p as usize + 1) * half];
            for head in row.chunks_exact_mut(hd) {
                for i in 0..half {
                    let (ia, ib) = match style {
                        RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                        RopeStyle::Neox => (i, i + half),
                    };
                    let (a, b) = (head[ia], head[ib]);
                    let (c, s) = (c[i], sign * s[i]);
                    head[ia] = a * c - b * s;
                    head[ib] = a * s + b * c;
                }
            }
        });
}

/// Copies head-major `[heads][n][hd]` into token-major `[n][heads·hd]`.
fn to_token_major(hm: &[f32], tm: &mut [f32], heads: usize, n: usize, hd: usize) {
    tm.par_chunks_mut(heads * hd)
        .enumerate()
        .with_min_len(ROWS)
        .for_each(|(i, row)| {
            for (h, dst) in row.chunks_exact_mut(hd).enumerate() {
                dst.copy_from_slice(&hm[(h * n + i) * hd..(h * n + i + 1) * hd]);
            }
        });
}

/// Splits `buf` into consecutive chunks of the given lengths.
fn split_chunks(mut buf: &mut [f32], lens: impl Iterator<Item = usize>) -> Vec<&mut [f32]> {
    let mut out = Vec::new();
    for len in lens {
        let (head, rest) = std::mem::take(&mut buf).split_at_mut(len);
        out.push(head);
        buf = rest;
    }
    out
}

/// Shapes of the attention step.
#[derive(Clone, Copy)]
struct Heads {
    h: usize,
    kvh: usize,
    hd: usize,
    scale: f32,
}

/// Causal attention inside every example: fills `probs` (per head, per example) and the
/// head-major output `o_hm`.
fn attention_forward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    segs: &[Range<usize>],
    hs: Heads,
    probs: &mut [f32],
    o_hm: &mut [f32],
) {
    let Heads { h, kvh, hd, scale } = hs;
    let rep = h / kvh;
    let sq: usize = segs.iter().map(|s| s.len() * s.len()).sum();
    let p_chunks = split_chunks(
        probs,
        (0..h).flat_map(|_| segs.iter().map(|s| s.len() * s.len())),
    );
    let o_chunks = split_chunks(o_hm, (0..h).flat_map(|_| segs.iter().map(|s| s.len() * hd)));
    debug_assert_eq!(p_chunks.iter().map(|c| c.len()).sum::<usize>(), h * sq);
    let items: Vec<_> = p_chunks
        .into_iter()
        .zip(o_chunks)
        .enumerate()
        .map(|(i, (p, o))| (i / segs.len(), &segs[i % segs.len()], p, o))
        .collect();
    items.into_par_iter().for_each(|(head, seg, p, o)| {
        let (st, l) = (seg.start, seg.len());
        let kh = head / rep;
        let qv = Mat::strided(&q[st * h * hd + head * hd..], l, hd, h * hd);
        let kv = Mat::strided(&k[st * kvh * hd + kh * hd..], l, hd, kvh * hd);
        let vv = Mat::strided(&v[st * kvh * hd + kh * hd..], l, hd, kvh * hd);
        matmul(p, l, qv, kv.t(), scale, false, false);
        for (i, row) in p.chunks_exact_mut(l).enumerate() {
            let (live, masked) = row.split_at_mut(i + 1);
            let max = live.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for s in live.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            let inv = 1.0 / sum;
            for s in live.iter_mut() {
                *s *= inv;
            }
            masked.fill(0.0);
        }
        matmul(o, hd, Mat::new(p, l, l), vv, 1.0, false, false);
    });
}

/// Gradients of [`attention_forward`]: head-major `dq_hm`, `dk_hm`, `dv_hm` from the
/// token-major output gradient `d_o`.
#[allow(clippy::too_many_arguments)]
fn attention_backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    probs: &[f32],
    d_o: &[f32],
    segs: &[Range<usize>],
    hs: Heads,
    dq_hm: &mut [f32],
    dk_hm: &mut [f32],
    dv_hm: &mut [f32],
) {
    let Heads { h, kvh, hd, scale } = hs;
    let rep = h / kvh;
    let ns = segs.len();
    let sq: usize = segs.iter().map(|s| s.len() * s.len()).sum();
    let seg_sq: Vec<usize> = segs
        .iter()
        .scan(0, |acc, s| {
            let at = *acc;
            *acc += s.len() * s.len();
            Some(at)
        })
        .collect();
    let mut dq: Vec<Option<&mut [f32]>> = split_chunks(
        dq_hm,
        (0..h).flat_map(|_| segs.iter().map(|s| s.len() * hd)),
    )
    .into_iter()
    .map(Some)
    .collect();
    let dk = split_chunks(
        dk_hm,
        (0..kvh).flat_map(|_| segs.iter().map(|s| s.len() * hd)),
    );
    let dv = split_chunks(
        dv_hm,
        (0..kvh).flat_map(|_| segs.iter().map(|s| s.len() * hd)),
    );
    let items: Vec<_> = dk
        .into_iter()
        .zip(dv)
        .enumerate()
        .map(|(i, (dk, dv))| {
            let (kh, s) = (i / ns, i % ns);
            let dqs: Vec<&mut [f32]> = (0..rep)
                .filter_map(|j| dq[(kh * rep + j) * ns + s].take())
                .collect();
            (kh, s, dqs, dk, dv)
        })
        .collect();
    items.into_par_iter().for_each_init(
        Vec::new,
        |scratch: &mut Vec<f32>, (kh, s, dqs, dk, dv)| {
            let seg = &segs[s];
            let (st, l) = (seg.start, seg.len());
            let kv = Mat::strided(&k[st * kvh * hd + kh * hd..], l, hd, kvh * hd);
            let vv = Mat::strided(&v[st * kvh * hd + kh * hd..], l, hd, kvh * hd);
            let ds = zeroed(scratch, l * l);
            for (j, dqh) in dqs.into_iter().enumerate() {
                let head = kh * rep + j;
                let p = &probs[head * sq + seg_sq[s]..][..l * l];
                let qv = Mat::strided(&q[st * h * hd + head * hd..], l, hd, h * hd);
                let dov = Mat::strided(&d_o[st * h * hd + head * hd..], l, hd, h * hd);
                // dV += Pᵀ·dO; dP = dO·Vᵀ.
                matmul(dv, hd, Mat::new(p, l, l).t(), dov, 1.0, j > 0, false);
                matmul(ds, l, dov, vv.t(), 1.0, false, false);
                // dS = P ⊙ (dP − Σ dP·P) on the causal part (P is 0 elsewhere).
                for (i, (dr, pr)) in ds.chunks_exact_mut(l).zip(p.chunks_exact(l)).enumerate() {
                    let dot: f32 = dr[..=i].iter().zip(&pr[..=i]).map(|(a, b)| a * b).sum();
                    for (d, &pv) in dr[..=i].iter_mut().zip(&pr[..=i]) {
                        *d = pv * (*d - dot);
                    }
                    dr[i + 1..].fill(0.0);
                }
                // dQ = s·dS·K; dK += s·dSᵀ·Q.
                matmul(dqh, hd, Mat::new(ds, l, l), kv, scale, false, false);
                matmul(dk, hd, Mat::new(ds, l, l).t(), qv, scale, j > 0, false);
            }
        },
    );
}

/// `y = x·Wᵀ (+ bias)` for `x: [n, in]`, `w: [out, in]`.
fn linear(x: &[f32], n: usize, w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let out = y.len() / n.max(1);
    let inp = w.len() / out.max(1);
    matmul(
        y,
        out,
        Mat::new(x, n, inp),
        Mat::new(w, out, inp).t(),
        1.0,
        false,
        true,
    );
    if let Some(b) = bias {
        y.par_chunks_mut(out)
            .with_min_len(ROWS)
            .for_each(|row| row.iter_mut().zip(b).for_each(|(y, b)| *y += b));
    }
}

/// `dx (+)= dy·W` for `dy: [n, out]`, `w: [out, in]`.
fn linear_backward(dy: &[f32], n: usize, w: &[f32], dx: &mut [f32], accumulate: bool) {
    let inp = dx.len() / n.max(1);
    let out = w.len() / inp.max(1);
    matmul(
        dx,
        inp,
        Mat::new(dy, n, out),
        Mat::new(w, out, inp),
        1.0,
        accumulate,
        true,
    );
}

/// The dropped-out LoRA input `x ⊙ mask` (or `x` itself without dropout).
fn lora_input<'b>(x: &'b [f32], mask: &[f32], scratch: &'b mut Vec<f32>) -> &'b [f32] {
    if mask.is_empty() {
        return x;
    }
    let xd = sized(scratch, x.len());
    xd.par_chunks_mut(4096)
        .zip(x.par_chunks(4096).zip(mask.par_chunks(4096)))
        .for_each(|(d, (x, m))| {
            for ((d, x), m) in d.iter_mut().zip(x).zip(m) {
                *d = x * m;
            }
        });
    xd
}

/// `y += s·(x⊙mask)·Aᵀ·Bᵀ`, saving `t = (x⊙mask)·Aᵀ` (and the mask) in `acts`.
#[allow(clippy::too_many_arguments)]
fn lora_forward(
    x: &[f32],
    n: usize,
    pair: &PairView<'_>,
    dropout: f32,
    rng: Option<&mut ChaCha8Rng>,
    acts: &mut LoraActs,
    scratch: &mut Vec<f32>,
    y: &mut [f32],
) {
    let inp = x.len() / n.max(1);
    let out = y.len() / n.max(1);
    let r = pair.rank;
    acts.mask.clear();
    if dropout > 0.0
        && let Some(rng) = rng
    {
        let keep = 1.0 / (1.0 - dropout);
        acts.mask.extend((0..n * inp).map(|_| {
            if rng.random::<f32>() < dropout {
                0.0
            } else {
                keep
            }
        }));
    }
    let xd = lora_input(x, &acts.mask, scratch);
    let t = sized(&mut acts.t, n * r);
    matmul(
        t,
        r,
        Mat::new(xd, n, inp),
        Mat::new(pair.a.get(), r, inp).t(),
        1.0,
        false,
        true,
    );
    matmul(
        y,
        out,
        Mat::new(t, n, r),
        Mat::new(pair.b.get(), out, r).t(),
        pair.scale,
        true,
        true,
    );
}

/// Gradients of [`lora_forward`]: `dA`, `dB`, and `dx += (s·dy·B·A) ⊙ mask`.
#[allow(clippy::too_many_arguments)]
fn lora_backward(
    x: &[f32],
    n: usize,
    pair: &PairView<'_>,
    acts: &LoraActs,
    dy: &[f32],
    ws_x: &mut Vec<f32>,
    ws_dt: &mut Vec<f32>,
    ws_dx: &mut Vec<f32>,
    dx: Option<&mut [f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let inp = x.len() / n.max(1);
    let out = dy.len() / n.max(1);
    let r = pair.rank;
    let (a, b) = (pair.a.get(), pair.b.get());
    let mut db = vec![0f32; out * r];
    matmul(
        &mut db,
        r,
        Mat::new(dy, n, out).t(),
        Mat::new(&acts.t, n, r),
        pair.scale,
        false,
        true,
    );
    let dt = sized(ws_dt, n * r);
    matmul(
        dt,
        r,
        Mat::new(dy, n, out),
        Mat::new(b, out, r),
        pair.scale,
        false,
        true,
    );
    let xd = lora_input(x, &acts.mask, ws_x);
    let mut da = vec![0f32; r * inp];
    matmul(
        &mut da,
        inp,
        Mat::new(dt, n, r).t(),
        Mat::new(xd, n, inp),
        1.0,
        false,
        true,
    );
    if let Some(dx) = dx {
        if acts.mask.is_empty() {
            matmul(
                dx,
                inp,
                Mat::new(dt, n, r),
                Mat::new(a, r, inp),
                1.0,
                true,
                true,
            );
        } else {
            let tmp = sized(ws_dx, n * inp);
            matmul(
                tmp,
                inp,
                Mat::new(dt, n, r),
                Mat::new(a, r, inp),
                1.0,
                false,
                true,
            );
            dx.par_chunks_mut(4096)
                .zip(tmp.par_chunks(4096).zip(acts.mask.par_chunks(4096)))
                .for_each(|(d, (t, m))| {
                    for ((d, t), m) in d.iter_mut().zip(t).zip(m) {
                        *d += t * m;
                    }
                });
        }
    }
    (da, db)
}

fn silu(g: f32) -> f32 {
    g / (1.0 + (-g).exp())
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
    let (d, ff, hd) = (hp.d_model, hp.n_ff, hp.head_dim);
    let (h, kvh) = (hp.n_head, hp.n_kv_head);
    let n_layer = hp.n_layer;
    let n = batch.tokens();
    let eps = hp.rms_eps as f32;
    let hs = Heads {
        h,
        kvh,
        hd,
        scale: 1.0 / (hd as f32).sqrt(),
    };
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
    let mut layers = Vec::with_capacity(n_layer);
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
    // The backward pass stops at the lowest adapted layer.
    let lowest = layers
        .iter()
        .position(|l| l.lora.iter().any(Option::is_some))
        .unwrap_or(n_layer);
    let pos: Vec<u32> = batch.segs.iter().flat_map(|s| 0..s.len() as u32).collect();
    let sq: usize = batch.segs.iter().map(|s| s.len() * s.len()).sum();
    let (qw, kw) = (h * hd, kvh * hd);
    ws.layers.resize_with(n_layer, LayerActs::default);

    // Forward.
    let x = sized(&mut ws.x, n * d);
    {
        let e = embed.get();
        x.par_chunks_mut(d)
            .zip(batch.ids.par_iter())
            .with_min_len(ROWS)
            .try_for_each(|(row, &id)| {
                let src = e.get(id as usize * d..(id as usize + 1) * d);
                match src {
                    Some(src) => {
                        row.copy_from_slice(src);
                        Ok(())
                    }
                    None => Err(candle_core::Error::Msg(format!(
                        "token id {id} outside the vocabulary"
                    ))),
                }
            })?;
    }
    for (li, lv) in layers.iter().enumerate() {
        // Layers below the lowest adapted one need no saved activations.
        let acts = if li >= lowest {
            &mut ws.layers[li]
        } else {
            &mut ws.unsaved
        };
        let x = &mut ws.x[..n * d];
        sized(&mut acts.x_in, n * d).copy_from_slice(x);
        let r1 = sized(&mut acts.r1, n);
        let h1 = sized(&mut ws.h, n * d);
        rms_forward(x, lv.attn_norm.get(), eps, r1, h1, true);
        let (q, k, v) = (
            sized(&mut acts.q, n * qw),
            sized(&mut acts.k, n * kw),
            sized(&mut acts.v, n * kw),
        );
        for (t, y) in [
            (LoraTarget::Q, &mut *q),
            (LoraTarget::K, k),
            (LoraTarget::V, v),
        ] {
            let i = t.index();
            linear(
                h1,
                n,
                lv.proj[i].get(),
                lv.bias[i].as_ref().map(View::get),
                y,
            );
            if let Some(pair) = &lv.lora[i] {
                lora_forward(
                    h1,
                    n,
                    pair,
                    lora.dropout,
                    rng.as_deref_mut(),
                    &mut acts.lora[i],
                    &mut ws.lora_x,
                    y,
                );
            }
        }
        let style = hp.rope_style;
        rope(q, h, hd, &pos, cos.get(), sin.get(), style, 1.0);
        rope(
            &mut acts.k[..n * kw],
            kvh,
            hd,
            &pos,
            cos.get(),
            sin.get(),
            style,
            1.0,
        );
        let probs = sized(&mut acts.probs, h * sq);
        let o_hm = sized(&mut ws.heads, n * qw);
        attention_forward(
            &acts.q[..n * qw],
            &acts.k[..n * kw],
            &acts.v[..n * kw],
            &batch.segs,
            hs,
            probs,
            o_hm,
        );
        let o = sized(&mut acts.o, n * qw);
        to_token_major(o_hm, o, h, n, hd);
        let a = sized(&mut ws.h, n * d);
        let oi = LoraTarget::O.index();
        linear(
            o,
            n,
            lv.proj[oi].get(),
            lv.bias[oi].as_ref().map(View::get),
            a,
        );
        if let Some(pair) = &lv.lora[oi] {
            lora_forward(
                o,
                n,
                pair,
                lora.dropout,
                rng.as_deref_mut(),
                &mut acts.lora[oi],
                &mut ws.lora_x,
                a,
            );
        }
        x.par_iter_mut()
            .zip(a.par_iter())
            .with_min_len(4096)
            .for_each(|(x, a)| *x += a);
        sized(&mut acts.x_mid, n * d).copy_from_slice(x);
        let r2 = sized(&mut acts.r2, n);
        let h2 = sized(&mut ws.h, n * d);
        rms_forward(x, lv.ffn_norm.get(), eps, r2, h2, true);
        let (gate, up) = (sized(&mut acts.gate, n * ff), sized(&mut acts.up, n * ff));
        for (t, y) in [(LoraTarget::Gate, &mut *gate), (LoraTarget::Up, &mut *up)] {
            let i = t.index();
            linear(
                h2,
                n,
                lv.proj[i].get(),
                lv.bias[i].as_ref().map(View::get),
                y,
            );
            if let Some(pair) = &lv.lora[i] {
                lora_forward(
                    h2,
                    n,
                    pair,
                    lora.dropout,
                    rng.as_deref_mut(),
                    &mut acts.lora[i],
                    &mut ws.lora_x,
                    y,
                );
            }
        }
        let m = sized(&mut ws.ff, n * ff);
        m.par_chunks_mut(4096)
            .zip(gate.par_chunks(4096).zip(up.par_chunks(4096)))
            .for_each(|(m, (g, u))| {
                for ((m, &g), &u) in m.iter_mut().zip(g).zip(u) {
                    *m = silu(g) * u;
                }
            });
        let dn = sized(&mut ws.h, n * d);
        let di = LoraTarget::Down.index();
        linear(
            m,
            n,
            lv.proj[di].get(),
            lv.bias[di].as_ref().map(View::get),
            dn,
        );
        if let Some(pair) = &lv.lora[di] {
            lora_forward(
                m,
                n,
                pair,
                lora.dropout,
                rng.as_deref_mut(),
                &mut acts.lora[di],
                &mut ws.lora_x,
                dn,
            );
        }
        x.par_iter_mut()
            .zip(dn.par_iter())
            .with_min_len(4096)
            .for_each(|(x, a)| *x += a);
    }

    // Head and loss: only the supervised rows.
    let nt = batch.targets.len();
    let vocab = hp.vocab_size;
    let head_w = head.as_ref().unwrap_or(&embed).get();
    if head_w.len() != vocab * d {
        candle_core::bail!(
            "train-cpu: output head of {} values, expected {}",
            head_w.len(),
            vocab * d
        )
    }
    let xf: Vec<f32> = batch
        .targets
        .iter()
        .flat_map(|&(row, _)| ws.x[row * d..(row + 1) * d].iter().copied())
        .collect();
    let mut rf = vec![0f32; nt];
    let mut hf = vec![0f32; nt * d];
    rms_forward(&xf, norm.get(), eps, &mut rf, &mut hf, true);
    let mut logits = vec![0f32; nt * vocab];
    matmul(
        &mut logits,
        vocab,
        Mat::new(&hf, nt, d),
        Mat::new(head_w, vocab, d).t(),
        1.0,
        false,
        true,
    );
    let coef = loss_scale / nt as f32;
    let loss: f64 = logits
        .par_chunks_mut(vocab)
        .zip(batch.targets.par_iter())
        .map(|(row, &(_, target))| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = row.iter().map(|&v| ((v - max) as f64).exp()).sum();
            let lse = max as f64 + sum.ln();
            let nll = lse - row.get(target as usize).copied().unwrap_or(f32::NAN) as f64;
            // d(loss)/d(logits) = (softmax − onehot) / n, times the caller's scale.
            for v in row.iter_mut() {
                *v = (((*v as f64) - lse).exp() as f32) * coef;
            }
            if let Some(t) = row.get_mut(target as usize) {
                *t -= coef;
            }
            nll
        })
        .sum::<f64>()
        / nt as f64;
    let mut grads = Vec::new();
    if lowest == n_layer {
        return Ok((loss, grads));
    }
    let mut dhf = vec![0f32; nt * d];
    matmul(
        &mut dhf,
        d,
        Mat::new(&logits, nt, vocab),
        Mat::new(head_w, vocab, d),
        1.0,
        false,
        true,
    );
    drop(logits);
    let mut dxf = vec![0f32; nt * d];
    rms_backward(&xf, &rf, norm.get(), &dhf, &mut dxf);
    let dx = zeroed(&mut ws.dx, n * d);
    for (i, &(row, _)) in batch.targets.iter().enumerate() {
        dx[row * d..(row + 1) * d].copy_from_slice(&dxf[i * d..(i + 1) * d]);
    }

    // Backward, from the last block down to the lowest adapted one.
    for li in (lowest..n_layer).rev() {
        let lv = &layers[li];
        let acts = &ws.layers[li];
        let dx = &mut ws.dx[..n * d];
        let mut push = |t: LoraTarget, (a, b): (Vec<f32>, Vec<f32>)| {
            grads.push(PairGrad {
                layer: li,
                target: t,
                a,
                b,
            })
        };
        // Feed-forward: dm = dx·W_down.
        let di = LoraTarget::Down.index();
        let dm = sized(&mut ws.dff, n * ff);
        linear_backward(dx, n, lv.proj[di].get(), dm, false);
        if let Some(pair) = &lv.lora[di] {
            let m = sized(&mut ws.ff, n * ff);
            m.par_chunks_mut(4096)
                .zip(acts.gate.par_chunks(4096).zip(acts.up.par_chunks(4096)))
                .for_each(|(m, (g, u))| {
                    for ((m, &g), &u) in m.iter_mut().zip(g).zip(u) {
                        *m = silu(g) * u;
                    }
                });
            let g = lora_backward(
                m,
                n,
                pair,
                &acts.lora[di],
                dx,
                &mut ws.lora_x,
                &mut ws.lora_dt,
                &mut ws.lora_dx,
                Some(dm),
            );
            push(LoraTarget::Down, g);
        }
        // SwiGLU: dgate into `dm`'s buffer, dup into `dff2`.
        let dup = sized(&mut ws.dff2, n * ff);
        dm.par_chunks_mut(4096)
            .zip(dup.par_chunks_mut(4096))
            .zip(acts.gate.par_chunks(4096).zip(acts.up.par_chunks(4096)))
            .for_each(|((dm, du), (g, u))| {
                for (((dm, du), &g), &u) in dm.iter_mut().zip(du.iter_mut()).zip(g).zip(u) {
                    let sg = 1.0 / (1.0 + (-g).exp());
                    *du = *dm * g * sg;
                    *dm *= u * sg * (1.0 + g * (1.0 - sg));
                }
            });
        let dgate = &ws.dff[..n * ff];
        let dup = &ws.dff2[..n * ff];
        let dh2 = sized(&mut ws.dh, n * d);
        linear_backward(
            dgate,
            n,
            lv.proj[LoraTarget::Gate.index()].get(),
            dh2,
            false,
        );
        linear_backward(dup, n, lv.proj[LoraTarget::Up.index()].get(), dh2, true);
        if lv.lora[LoraTarget::Gate.index()].is_some() || lv.lora[LoraTarget::Up.index()].is_some()
        {
            let h2 = sized(&mut ws.h, n * d);
            let mut r2 = acts.r2.clone();
            rms_forward(&acts.x_mid, lv.ffn_norm.get(), eps, &mut r2, h2, false);
            for (t, dy) in [(LoraTarget::Gate, dgate), (LoraTarget::Up, dup)] {
                if let Some(pair) = &lv.lora[t.index()] {
                    let g = lora_backward(
                        h2,
                        n,
                        pair,
                        &acts.lora[t.index()],
                        dy,
                        &mut ws.lora_x,
                        &mut ws.lora_dt,
                        &mut ws.lora_dx,
                        Some(dh2),
                    );
                    push(t, g);
                }
            }
        }
        // dx (now the gradient at x_mid) += RMS-norm backward.
        rms_backward(&acts.x_mid, &acts.r2, lv.ffn_norm.get(), dh2, dx);
        // Attention output projection.
        let oi = LoraTarget::O.index();
        let d_o = sized(&mut ws.dq, n * qw);
        linear_backward(dx, n, lv.proj[oi].get(), d_o, false);
        if let Some(pair) = &lv.lora[oi] {
            let g = lora_backward(
                &acts.o,
                n,
                pair,
                &acts.lora[oi],
                dx,
                &mut ws.lora_x,
                &mut ws.lora_dt,
                &mut ws.lora_dx,
                Some(d_o),
            );
            push(LoraTarget::O, g);
        }
        let (dq_hm, dk_hm, dv_hm) = (
            sized(&mut ws.dq_hm, n * qw),
            sized(&mut ws.dk_hm, n * kw),
            sized(&mut ws.dv_hm, n * kw),
        );
        attention_backward(
            &acts.q,
            &acts.k,
            &acts.v,
            &acts.probs,
            d_o,
            &batch.segs,
            hs,
            dq_hm,
            dk_hm,
            dv_hm,
        );
        let dq = sized(&mut ws.dq, n * qw);
        to_token_major(dq_hm, dq, h, n, hd);
        let dk = sized(&mut ws.dk, n * kw);
        to_token_major(dk_hm, dk, kvh, n, hd);
        let dv = sized(&mut ws.dv, n * kw);
        to_token_major(dv_hm, dv, kvh, n, hd);
        rope(dq, h, hd, &pos, cos.get(), sin.get(), hp.rope_style, -1.0);
        rope(dk, kvh, hd, &pos, cos.get(), sin.get(), hp.rope_style, -1.0);
        // q, k, v projections; below the lowest adapted layer no input gradient is needed.
        let need_dx = li > lowest;
        let dh1 = sized(&mut ws.dh, n * d);
        if need_dx {
            linear_backward(dq, n, lv.proj[LoraTarget::Q.index()].get(), dh1, false);
            linear_backward(dk, n, lv.proj[LoraTarget::K.index()].get(), dh1, true);
            linear_backward(dv, n, lv.proj[LoraTarget::V.index()].get(), dh1, true);
        }
        if [LoraTarget::Q, LoraTarget::K, LoraTarget::V]
            .iter()
            .any(|t| lv.lora[t.index()].is_some())
        {
            let h1 = sized(&mut ws.h, n * d);
            let mut r1 = acts.r1.clone();
            rms_forward(&acts.x_in, lv.attn_norm.get(), eps, &mut r1, h1, false);
            for (t, dy) in [
                (LoraTarget::Q, &*dq),
                (LoraTarget::K, &*dk),
                (LoraTarget::V, &*dv),
            ] {
                if let Some(pair) = &lv.lora[t.index()] {
                    let g = lora_backward(
                        h1,
                        n,
                        pair,
                        &acts.lora[t.index()],
                        dy,
                        &mut ws.lora_x,
                        &mut ws.lora_dt,
                        &mut ws.lora_dx,
                        need_dx.then_some(&mut *dh1),
                    );
                    push(t, g);
                }
            }
        }
        if need_dx {
            rms_backward(&acts.x_in, &acts.r1, lv.attn_norm.get(), dh1, dx);
        }
    }
    grads.sort_by_key(|g| (g.layer, g.target));
    Ok((loss, grads))
}
