//! The backward stages of the CPU step, per block from the top down: the feed-forward half,
//! then the attention half, pushing the `A`/`B` gradients of every adapted projection and
//! carrying the input gradient down to the lowest adapted block.

use rayon::prelude::*;

use super::attention::attention_backward;
use super::kernels::{
    linear_backward, rms_backward, rms_forward, rope, silu, sized, to_token_major,
};
use super::lora_ops::lora_backward;
use super::views::LayerViews;
use super::{Dims, PairGrad, Workspace};
use crate::llama::LoraTarget;

/// Block `li`'s feed-forward half backward: `ws.dx` becomes the gradient at the block's
/// middle (after attention).
pub(super) fn feed_forward_back(
    s: &Dims<'_>,
    lv: &LayerViews<'_>,
    ws: &mut Workspace,
    li: usize,
    grads: &mut Vec<PairGrad>,
) {
    let Dims { n, d, ff, eps, .. } = *s;
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
    if lv.lora[LoraTarget::Gate.index()].is_some() || lv.lora[LoraTarget::Up.index()].is_some() {
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
}

/// Block `li`'s attention half backward: `ws.dx` becomes the gradient at the block's input
/// (not computed for the lowest adapted block, whose input gradient nothing needs).
pub(super) fn attention_back(
    s: &Dims<'_>,
    lv: &LayerViews<'_>,
    ws: &mut Workspace,
    li: usize,
    lowest: usize,
    grads: &mut Vec<PairGrad>,
) {
    let Dims {
        n,
        d,
        h,
        kvh,
        hd,
        qw,
        kw,
        eps,
        hs,
        style,
        ..
    } = *s;
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
        s.segs,
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
    rope(dq, h, hd, &s.pos, s.cos.get(), s.sin.get(), style, -1.0);
    rope(dk, kvh, hd, &s.pos, s.cos.get(), s.sin.get(), style, -1.0);
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
