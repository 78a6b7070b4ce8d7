//! The output head and the loss, at the supervised rows only, and the gradient they send
//! back into the last block.

use rayon::prelude::*;

use super::kernels::{rms_backward, rms_forward, zeroed};
use super::{Dims, Packed, Workspace};
use crate::matmul::{Mat, matmul};

/// The mean cross-entropy of the supervised rows of `ws.x` under the output head `head_w`
/// (`[vocab, d]`) after the final norm; with `backward`, also the gradient of
/// `loss_scale · loss` with respect to `x`, into `ws.dx`.
#[allow(clippy::too_many_arguments)]
pub(super) fn head_and_loss(
    s: &Dims<'_>,
    batch: &Packed,
    ws: &mut Workspace,
    head_w: &[f32],
    norm: &[f32],
    vocab: usize,
    loss_scale: f32,
    backward: bool,
) -> candle_core::Result<f64> {
    let Dims { n, d, eps, .. } = *s;
    let nt = batch.targets.len();
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
    rms_forward(&xf, norm, eps, &mut rf, &mut hf, true);
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
    if !backward {
        return Ok(loss);
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
    rms_backward(&xf, &rf, norm, &dhf, &mut dxf);
    let dx = zeroed(&mut ws.dx, n * d);
    for (i, &(row, _)) in batch.targets.iter().enumerate() {
        dx[row * d..(row + 1) * d].copy_from_slice(&dxf[i * d..(i + 1) * d]);
    }
    Ok(loss)
}
