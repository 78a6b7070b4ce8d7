//! The forward stages of the CPU step: the token embedding, then per block the attention
//! half and the feed-forward half, saving what the backward pass needs.

use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::attention::attention_forward;
use super::kernels::{linear, rms_forward, rope, silu, sized, to_token_major};
use super::lora_ops::lora_forward;
use super::views::{LayerViews, View};
use super::{Dims, ROWS, Workspace};
use crate::llama::LoraTarget;

/// Copies each token's embedding row into `x` (`[n, d]`).
pub(super) fn embed_tokens(
    x: &mut [f32],
    e: &[f32],
    ids: &[u32],
    d: usize,
) -> candle_core::Result<()> {
    x.par_chunks_mut(d)
        .zip(ids.par_iter())
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
        })
}

/// Block `li`'s attention half, `x += O(attention(norm(x)))`, saving its activations in the
/// block's slot (`saved`) or in the scratch slot of blocks below the lowest adapted one.
pub(super) fn attention_half(
    s: &Dims<'_>,
    lv: &LayerViews<'_>,
    ws: &mut Workspace,
    li: usize,
    saved: bool,
    mut rng: Option<&mut ChaCha8Rng>,
) {
    let Dims {
        n,
        d,
        h,
        kvh,
        hd,
        qw,
        kw,
        sq,
        eps,
        hs,
        style,
        ..
    } = *s;
    let acts = if saved {
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
                s.dropout,
                rng.as_deref_mut(),
                &mut acts.lora[i],
                &mut ws.lora_x,
                y,
            );
        }
    }
    rope(q, h, hd, &s.pos, s.cos.get(), s.sin.get(), style, 1.0);
    rope(
        &mut acts.k[..n * kw],
        kvh,
        hd,
        &s.pos,
        s.cos.get(),
        s.sin.get(),
        style,
        1.0,
    );
    let probs = sized(&mut acts.probs, h * sq);
    let o_hm = sized(&mut ws.heads, n * qw);
    attention_forward(
        &acts.q[..n * qw],
        &acts.k[..n * kw],
        &acts.v[..n * kw],
        s.segs,
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
            s.dropout,
            rng,
            &mut acts.lora[oi],
            &mut ws.lora_x,
            a,
        );
    }
    x.par_iter_mut()
        .zip(a.par_iter())
        .with_min_len(4096)
        .for_each(|(x, a)| *x += a);
}

/// Block `li`'s feed-forward half, `x += down(silu(gate(norm(x))) ⊙ up(norm(x)))`, saving
/// its activations as [`attention_half`] does.
pub(super) fn feed_forward_half(
    s: &Dims<'_>,
    lv: &LayerViews<'_>,
    ws: &mut Workspace,
    li: usize,
    saved: bool,
    mut rng: Option<&mut ChaCha8Rng>,
) {
    let Dims { n, d, ff, eps, .. } = *s;
    let acts = if saved {
        &mut ws.layers[li]
    } else {
        &mut ws.unsaved
    };
    let x = &mut ws.x[..n * d];
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
                s.dropout,
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
            s.dropout,
            rng,
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
