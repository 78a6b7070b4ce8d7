//! A LoRA pair's forward (with dropout) and backward on the packed activations.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::LoraActs;
use super::kernels::sized;
use super::views::PairView;
use crate::matmul::{Mat, matmul};

/// The dropped-out LoRA input `x ⊙ mask` (or `x` itself without dropout).
pub(super) fn lora_input<'b>(x: &'b [f32], mask: &[f32], scratch: &'b mut Vec<f32>) -> &'b [f32] {
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
pub(super) fn lora_forward(
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
pub(super) fn lora_backward(
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
