//! Fused differentiable ops for LoRA training on the CPU.
//!
//! candle's fast `rms_norm`, `rope_i` and `softmax_last_dim` kernels pass no gradient, and their
//! differentiable compositions (`rms_norm_slow`, `rope_i_slow`, `softmax`) put five to ten nodes
//! into the autograd graph per call, each with its own intermediate tensor and gradient buffer.
//! Each op here is one node with an analytic backward pass. The frozen parameters (the norm
//! weight, the rotary tables) receive no gradient.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: non-contiguous input")))?;
    Ok(&s.as_slice::<f32>()?[start..end])
}

fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.contiguous()?.flatten_all()?.to_vec1::<f32>()
}

/// `y = x / rms(x) · α` over the last dimension.
struct RmsNorm {
    alpha: Vec<f32>,
    eps: f32,
}

impl RmsNorm {
    fn inv_rms(&self, row: &[f32]) -> f32 {
        let ms = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
        1.0 / (ms + self.eps).sqrt()
    }
}

impl CustomOp1 for RmsNorm {
    fn name(&self) -> &'static str {
        "psyche-rms-norm"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, self.name())?;
        let d = self.alpha.len();
        let mut y = vec![0f32; x.len()];
        for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
            let r = self.inv_rms(xr);
            for ((y, &x), &a) in yr.iter_mut().zip(xr).zip(&self.alpha) {
                *y = x * r * a;
            }
        }
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    /// With `g = dy·α` and `r = 1/rms(x)`: `dx = r·g − x·r³·mean(g·x)`.
    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let xs = values(x)?;
        let gs = values(dy)?;
        let d = self.alpha.len();
        let mut dx = vec![0f32; xs.len()];
        for ((xr, gr), dr) in xs
            .chunks_exact(d)
            .zip(gs.chunks_exact(d))
            .zip(dx.chunks_exact_mut(d))
        {
            let r = self.inv_rms(xr);
            let gx = xr
                .iter()
                .zip(gr)
                .zip(&self.alpha)
                .map(|((x, g), a)| x * g * a)
                .sum::<f32>()
                / d as f32;
            for (((o, &x), &g), &a) in dr.iter_mut().zip(xr).zip(gr).zip(&self.alpha) {
                *o = r * g * a - x * r * r * r * gx;
            }
        }
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}

/// RMS norm over the last dimension with a frozen weight `alpha: [d]`.
pub(crate) fn rms_norm(x: &Tensor, alpha: &Tensor, eps: f32) -> Result<Tensor> {
    x.contiguous()?.apply_op1(RmsNorm {
        alpha: values(alpha)?,
        eps,
    })
}

/// Rotary embedding of `x: [b, h, t, hd]` with tables `[t, hd/2]`: dimension `i` pairs with
/// `2i + 1` after it (interleaved) or with `i + hd/2` (NeoX / Qwen2 halves).
struct Rope {
    cos: Vec<f32>,
    sin: Vec<f32>,
    t: usize,
    half: usize,
    interleaved: bool,
}

impl Rope {
    /// Rotates every pair by `+θ` (`sign = 1`) or `−θ` (`sign = -1`).
    fn rotate(&self, x: &[f32], sign: f32) -> Vec<f32> {
        let hd = 2 * self.half;
        let mut y = vec![0f32; x.len()];
        for (k, (xr, yr)) in x.chunks_exact(hd).zip(y.chunks_exact_mut(hd)).enumerate() {
            let pos = k % self.t;
            let cos = &self.cos[pos * self.half..(pos + 1) * self.half];
            let sin = &self.sin[pos * self.half..(pos + 1) * self.half];
            for i in 0..self.half {
                let (ia, ib) = if self.interleaved {
                    (2 * i, 2 * i + 1)
                } else {
                    (i, i + self.half)
                };
                let (a, b) = (xr[ia], xr[ib]);
                let (c, s) = (cos[i], sign * sin[i]);
                yr[ia] = a * c - b * s;
                yr[ib] = a * s + b * c;
            }
        }
        y
    }
}

impl CustomOp1 for Rope {
    fn name(&self) -> &'static str {
        "psyche-rope-i"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, self.name())?;
        Ok((CpuStorage::F32(self.rotate(x, 1.0)), l.shape().clone()))
    }

    /// A rotation's transpose is the rotation by `−θ`.
    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let g = values(dy)?;
        Ok(Some(Tensor::from_vec(
            self.rotate(&g, -1.0),
            x.shape(),
            x.device(),
        )?))
    }
}

/// Interleaved RoPE of `x: [b, h, t, hd]` with `cos, sin: [t, hd/2]`.
pub(crate) fn rope_i(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    rope_op(x, cos, sin, true)
}

/// NeoX-style (half-split) RoPE of `x: [b, h, t, hd]` with `cos, sin: [t, hd/2]`.
pub(crate) fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    rope_op(x, cos, sin, false)
}

fn rope_op(x: &Tensor, cos: &Tensor, sin: &Tensor, interleaved: bool) -> Result<Tensor> {
    let (_, _, t, hd) = x.dims4()?;
    x.contiguous()?.apply_op1(Rope {
        cos: values(cos)?,
        sin: values(sin)?,
        t,
        half: hd / 2,
        interleaved,
    })
}

/// Softmax over the last dimension.
struct Softmax {
    d: usize,
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "psyche-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, self.name())?;
        let mut y = vec![0f32; x.len()];
        for (xr, yr) in x.chunks_exact(self.d).zip(y.chunks_exact_mut(self.d)) {
            let max = xr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (y, &x) in yr.iter_mut().zip(xr) {
                *y = (x - max).exp();
                sum += *y;
            }
            for y in yr.iter_mut() {
                *y /= sum;
            }
        }
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    /// `dx = y·(dy − Σ dy·y)`.
    fn bwd(&self, x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let ys = values(y)?;
        let gs = values(dy)?;
        let mut dx = vec![0f32; ys.len()];
        for ((yr, gr), dr) in ys
            .chunks_exact(self.d)
            .zip(gs.chunks_exact(self.d))
            .zip(dx.chunks_exact_mut(self.d))
        {
            let dot = yr.iter().zip(gr).map(|(y, g)| y * g).sum::<f32>();
            for ((o, &y), &g) in dr.iter_mut().zip(yr).zip(gr) {
                *o = y * (g - dot);
            }
        }
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}

/// Softmax over the last dimension.
pub(crate) fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let d = x.dim(candle_core::D::Minus1)?;
    x.contiguous()?.apply_op1(Softmax { d })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{D, Device, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(shape: &[usize], seed: u64) -> Tensor {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.5..1.5)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn close(a: &Tensor, b: &Tensor) {
        let a = values(a).unwrap();
        let b = values(b).unwrap();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    /// Value and input gradient of `Σ w·f(x)` (a random `w` makes every output matter) for the
    /// fused op and for candle's differentiable composition.
    fn compare(
        x: &Tensor,
        fused: impl Fn(&Tensor) -> Result<Tensor>,
        reference: impl Fn(&Tensor) -> Result<Tensor>,
    ) {
        let w = random(x.dims(), 99);
        let mut out = Vec::new();
        for f in [&fused as &dyn Fn(&Tensor) -> Result<Tensor>, &reference] {
            let v = Var::from_tensor(x).unwrap();
            let y = f(v.as_tensor()).unwrap();
            let loss = (&y * &w).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            out.push((y, grads.get(v.as_tensor()).unwrap().clone()));
        }
        close(&out[0].0, &out[1].0);
        close(&out[0].1, &out[1].1);
    }

    #[test]
    fn rms_norm_matches_the_composition() {
        let alpha = random(&[16], 5);
        compare(
            &random(&[2, 3, 16], 1),
            |x| rms_norm(x, &alpha, 1e-5),
            |x| candle_nn::ops::rms_norm_slow(x, &alpha, 1e-5),
        );
    }

    #[test]
    fn rope_matches_the_composition() {
        let cos = random(&[5, 4], 2);
        let sin = random(&[5, 4], 3);
        compare(
            &random(&[2, 3, 5, 8], 4),
            |x| rope_i(x, &cos, &sin),
            |x| candle_nn::rotary_emb::rope_i_slow(x, &cos, &sin),
        );
        compare(
            &random(&[2, 3, 5, 8], 4),
            |x| rope(x, &cos, &sin),
            |x| candle_nn::rotary_emb::rope_slow(x, &cos, &sin),
        );
    }

    #[test]
    fn softmax_matches_the_composition() {
        compare(&random(&[2, 3, 7], 6), softmax_last_dim, |x| {
            candle_nn::ops::softmax(x, D::Minus1)
        });
    }
}
