//! Row-wise kernels of the CPU step: RMS norm, rotary embedding, layouts, frozen linear maps,
//! SiLU, and the workspace's buffer helpers.

use rayon::prelude::*;

use super::ROWS;
use crate::llama::RopeStyle;
use crate::matmul::{Mat, matmul};

/// `v` with length `n`; existing contents are kept (callers overwrite or clear).
pub(super) fn sized(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.resize(n, 0.0);
    &mut v[..n]
}

/// `v` with length `n`, all zero.
pub(super) fn zeroed(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.clear();
    v.resize(n, 0.0);
    &mut v[..n]
}

pub(super) fn inv_rms(row: &[f32], eps: f32) -> f32 {
    let ms = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
    1.0 / (ms + eps).sqrt()
}

/// `y = x·r·α` per row, computing `r = 1/rms(x)` into `r` when `compute_r`.
pub(super) fn rms_forward(
    x: &[f32],
    alpha: &[f32],
    eps: f32,
    r: &mut [f32],
    y: &mut [f32],
    compute_r: bool,
) {
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
pub(super) fn rms_backward(x: &[f32], r: &[f32], alpha: &[f32], dy: &[f32], dx: &mut [f32]) {
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
pub(super) fn rope(
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
pub(super) fn to_token_major(hm: &[f32], tm: &mut [f32], heads: usize, n: usize, hd: usize) {
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
pub(super) fn split_chunks(
    mut buf: &mut [f32],
    lens: impl Iterator<Item = usize>,
) -> Vec<&mut [f32]> {
    let mut out = Vec::new();
    for len in lens {
        let (head, rest) = std::mem::take(&mut buf).split_at_mut(len);
        out.push(head);
        buf = rest;
    }
    out
}

/// `y = x·Wᵀ (+ bias)` for `x: [n, in]`, `w: [out, in]`.
pub(super) fn linear(x: &[f32], n: usize, w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
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
pub(super) fn linear_backward(dy: &[f32], n: usize, w: &[f32], dx: &mut [f32], accumulate: bool) {
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

pub(super) fn silu(g: f32) -> f32 {
    g / (1.0 + (-g).exp())
}
