//! The forward pass: rotary tables, attention, and the blocks over a batch.

use candle_core::{D, DType, Device, Tensor};
use rand::Rng;

use crate::train_ops;

use super::hparams::{LoraTarget, RopeStyle};
use super::layers::{Ctx, KvCache, steer};
use super::weights::Weights;

pub(super) fn rope_tables(
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

impl Weights {
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
}
