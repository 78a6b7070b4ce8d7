//! Causal attention inside each packed example, forward and backward.

use std::ops::Range;

use rayon::prelude::*;

use super::kernels::{split_chunks, zeroed};
use crate::matmul::{Mat, matmul};

/// Shapes of the attention step.
#[derive(Clone, Copy)]
pub(super) struct Heads {
    pub(super) h: usize,
    pub(super) kvh: usize,
    pub(super) hd: usize,
    pub(super) scale: f32,
}

/// Causal attention inside every example: fills `probs` (per head, per example) and the
/// head-major output `o_hm`.
pub(super) fn attention_forward(
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
pub(super) fn attention_backward(
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
