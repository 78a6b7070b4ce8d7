//! Products of a few activation rows with GGUF-quantized weights, computed straight from the
//! quantized blocks.
//!
//! A single-stream decode step multiplies one activation row by every weight matrix. With f32
//! weights that step reads 4 bytes per parameter and is bound by memory bandwidth; candle's own
//! quantized matmul is scalar for Q4_1 on a default x86 build. This module keeps the GGUF blocks
//! (repacked so the per-block scales are already f32) and dequantizes them on the fly inside the
//! dot product, with AVX2/FMA kernels chosen at run time and a portable fallback.
//!
//! The weights used are exactly the dequantized values of the f32 path (`d·q + m` for Q4_1,
//! `d·q` for Q8_0); only the order of the floating-point sums differs, so results agree with the
//! dense path to float rounding (tested below and in the model tests).

use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;
use rayon::prelude::*;

/// Elements per quantization block of the supported formats.
const QK: usize = 32;
/// Output rows computed by one parallel task.
const CHUNK: usize = 64;

/// Repacked blocks of one weight matrix.
#[derive(Debug, Clone)]
enum Blocks {
    /// 4-bit values `q ∈ 0..16`, weight `d·q + m`; 16 bytes per block (low nibbles hold the
    /// block's first 16 elements, high nibbles the last 16). Q4_0 is stored as `m = -8·d`.
    Nibbles {
        d: Vec<f32>,
        m: Vec<f32>,
        qs: Vec<u8>,
    },
    /// 8-bit values, weight `d·q`; 32 bytes per block.
    Bytes { d: Vec<f32>, qs: Vec<i8> },
}

/// A quantized `[out, in]` weight matrix ready for [`QuantMatrix::matmul`].
#[derive(Debug, Clone)]
pub(crate) struct QuantMatrix {
    out: usize,
    inp: usize,
    blocks: Blocks,
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

impl QuantMatrix {
    /// Repacks a 2-D Q4_0, Q4_1 or Q8_0 tensor; `None` for other formats or shapes.
    pub(crate) fn from_qtensor(q: &QTensor) -> candle_core::Result<Option<Self>> {
        let Ok((out, inp)) = q.shape().dims2() else {
            return Ok(None);
        };
        if inp % QK != 0 || out == 0 {
            return Ok(None);
        }
        let dtype = q.dtype();
        if !matches!(dtype, GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q8_0) {
            return Ok(None);
        }
        let raw = q.data()?;
        let n_blocks = out * inp / QK;
        let size = dtype.type_size();
        if raw.len() != n_blocks * size {
            candle_core::bail!(
                "quantized tensor holds {} bytes, expected {}",
                raw.len(),
                n_blocks * size
            )
        }
        let blocks = match dtype {
            GgmlDType::Q4_1 => {
                let (mut d, mut m, mut qs) = (
                    Vec::with_capacity(n_blocks),
                    Vec::with_capacity(n_blocks),
                    Vec::with_capacity(n_blocks * 16),
                );
                for b in raw.chunks_exact(size) {
                    d.push(f16_at(b, 0));
                    m.push(f16_at(b, 2));
                    qs.extend_from_slice(&b[4..20]);
                }
                Blocks::Nibbles { d, m, qs }
            }
            GgmlDType::Q4_0 => {
                let (mut d, mut m, mut qs) = (
                    Vec::with_capacity(n_blocks),
                    Vec::with_capacity(n_blocks),
                    Vec::with_capacity(n_blocks * 16),
                );
                for b in raw.chunks_exact(size) {
                    let scale = f16_at(b, 0);
                    d.push(scale);
                    m.push(-8.0 * scale);
                    qs.extend_from_slice(&b[2..18]);
                }
                Blocks::Nibbles { d, m, qs }
            }
            _ => {
                let (mut d, mut qs) = (Vec::with_capacity(n_blocks), Vec::with_capacity(inp * out));
                for b in raw.chunks_exact(size) {
                    d.push(f16_at(b, 0));
                    qs.extend(b[2..34].iter().map(|&v| v as i8));
                }
                Blocks::Bytes { d, qs }
            }
        };
        Ok(Some(Self { out, inp, blocks }))
    }

    /// `(out, in)`.
    pub(crate) fn out_in(&self) -> (usize, usize) {
        (self.out, self.inp)
    }

    /// The weights as f32 `[out, in]`, row-major (the values the dense path uses).
    pub(crate) fn dequantize(&self) -> Vec<f32> {
        let mut w = Vec::with_capacity(self.out * self.inp);
        match &self.blocks {
            Blocks::Nibbles { d, m, qs } => {
                for ((q, &d), &m) in qs.chunks_exact(16).zip(d).zip(m) {
                    w.extend(q.iter().map(|&v| (v & 0x0F) as f32 * d + m));
                    w.extend(q.iter().map(|&v| (v >> 4) as f32 * d + m));
                }
            }
            Blocks::Bytes { d, qs } => {
                for (q, &d) in qs.chunks_exact(QK).zip(d) {
                    w.extend(q.iter().map(|&v| v as f32 * d));
                }
            }
        }
        w
    }

    /// `y = x·Wᵀ` for `x: [rows, in]` (row-major); returns `[rows, out]`. Runs on the current
    /// rayon pool.
    pub(crate) fn matmul(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let (out, inp) = (self.out, self.inp);
        debug_assert_eq!(x.len(), rows * inp);
        let nb = inp / QK;
        // Per-row, per-block input sums: the `m` term of every output is `Σ_b m_b·xsum_b`.
        let xsum: Vec<f32> = x.chunks_exact(QK).map(|c| c.iter().sum()).collect();
        let simd = simd_available();
        // Outputs in `[out, rows]` order so each task writes one contiguous chunk.
        let mut y = vec![0f32; out * rows];
        y.par_chunks_mut(CHUNK * rows)
            .enumerate()
            .for_each(|(ci, chunk)| {
                let o0 = ci * CHUNK;
                let mut r0 = 0;
                while r0 < rows {
                    let n = (rows - r0).min(4);
                    let xs = &x[r0 * inp..(r0 + n) * inp];
                    let sums = &xsum[r0 * nb..(r0 + n) * nb];
                    for (k, o) in (o0..o0 + chunk.len() / rows).enumerate() {
                        let mut acc = [0f32; 4];
                        self.row_dot(o, xs, sums, n, simd, &mut acc);
                        for (j, v) in acc[..n].iter().enumerate() {
                            chunk[k * rows + r0 + j] = *v;
                        }
                    }
                    r0 += n;
                }
            });
        if rows == 1 {
            return y;
        }
        let mut t = vec![0f32; out * rows];
        for o in 0..out {
            for r in 0..rows {
                t[r * out + o] = y[o * rows + r];
            }
        }
        t
    }

    /// Dot products of weight row `o` with `n ≤ 4` activation rows.
    fn row_dot(
        &self,
        o: usize,
        xs: &[f32],
        sums: &[f32],
        n: usize,
        simd: bool,
        acc: &mut [f32; 4],
    ) {
        let inp = self.inp;
        let nb = inp / QK;
        match &self.blocks {
            Blocks::Nibbles { d, m, qs } => {
                let d = &d[o * nb..(o + 1) * nb];
                let m = &m[o * nb..(o + 1) * nb];
                let qs = &qs[o * nb * 16..(o + 1) * nb * 16];
                dispatch_nibbles(qs, d, xs, inp, n, simd, acc);
                for (r, a) in acc[..n].iter_mut().enumerate() {
                    *a += dot(m, &sums[r * nb..(r + 1) * nb]);
                }
            }
            Blocks::Bytes { d, qs } => {
                let d = &d[o * nb..(o + 1) * nb];
                let qs = &qs[o * inp..(o + 1) * inp];
                dispatch_bytes(qs, d, xs, inp, n, simd, acc);
            }
        }
    }
}

/// The CPU features that select kernels (ours and the `gemm` crate's under candle), recorded
/// with every result because they change float rounding.
pub(crate) fn cpu_features() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && simd_available() {
            return "avx512f+avx2+fma";
        }
        if simd_available() {
            return "avx2+fma";
        }
    }
    "portable"
}

/// `Σ a·b` with eight independent partial sums: a plain `sum()` is one serial chain of float
/// additions (the compiler may not reorder them), which costs more than the block kernels here.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
fn simd_available() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

#[cfg(not(target_arch = "x86_64"))]
fn simd_available() -> bool {
    false
}

macro_rules! per_rows {
    ($n:expr, $f:ident, $($arg:expr),*) => {
        match $n {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            _ => $f::<4>($($arg),*),
        }
    };
}

/// Defines `$name`, which runs `$simd` (AVX2) or `$scalar` for `n ≤ 4` rows.
macro_rules! dispatcher {
    ($name:ident, $q:ty, $simd:ident, $scalar:ident) => {
        fn $name(
            qs: &[$q],
            d: &[f32],
            xs: &[f32],
            inp: usize,
            n: usize,
            simd: bool,
            acc: &mut [f32; 4],
        ) {
            #[cfg(target_arch = "x86_64")]
            if simd {
                // SAFETY: AVX2 and FMA were detected at run time; slice lengths are checked
                // inside.
                unsafe { per_rows!(n, $simd, qs, d, xs, inp, acc) };
                return;
            }
            let _ = simd;
            per_rows!(n, $scalar, qs, d, xs, inp, acc);
        }
    };
}

dispatcher!(dispatch_nibbles, u8, nibbles_avx2, nibbles_scalar);
dispatcher!(dispatch_bytes, i8, bytes_avx2, bytes_scalar);

/// `Σ_b d_b · Σ_j q_bj · x_bj` (without the `m` term) for `R` rows.
fn nibbles_scalar<const R: usize>(
    qs: &[u8],
    d: &[f32],
    xs: &[f32],
    inp: usize,
    acc: &mut [f32; 4],
) {
    let mut w = [0f32; QK];
    for (b, (q, &db)) in qs.chunks_exact(16).zip(d).enumerate() {
        for j in 0..16 {
            w[j] = (q[j] & 0x0F) as f32;
            w[j + 16] = (q[j] >> 4) as f32;
        }
        for (r, a) in acc.iter_mut().enumerate().take(R) {
            let x = &xs[r * inp + b * QK..r * inp + (b + 1) * QK];
            *a += db * w.iter().zip(x).map(|(w, x)| w * x).sum::<f32>();
        }
    }
}

/// `Σ_b d_b · Σ_j q_bj · x_bj` for `R` rows.
fn bytes_scalar<const R: usize>(qs: &[i8], d: &[f32], xs: &[f32], inp: usize, acc: &mut [f32; 4]) {
    for (b, (q, &db)) in qs.chunks_exact(QK).zip(d).enumerate() {
        for (r, a) in acc.iter_mut().enumerate().take(R) {
            let x = &xs[r * inp + b * QK..r * inp + (b + 1) * QK];
            *a += db * q.iter().zip(x).map(|(&q, x)| q as f32 * x).sum::<f32>();
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
        _mm_cvtss_f32(s)
    }

    /// The 32 values of one block as four vectors of 8 floats.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn widen_u8(lo: __m128i, hi: __m128i) -> [__m256; 4] {
        [
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)),
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128::<8>(lo))),
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)),
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128::<8>(hi))),
        ]
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn widen_i8(lo: __m128i, hi: __m128i) -> [__m256; 4] {
        [
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)),
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(lo))),
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)),
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(hi))),
        ]
    }

    /// Accumulates `d · Σ w·x` of one block into `acc[r]` for `R` rows.
    ///
    /// # Safety
    /// `xs` must hold `R` rows of `inp` floats and `off + 32 <= inp`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block<const R: usize>(
        w: &[__m256; 4],
        d: f32,
        xs: &[f32],
        inp: usize,
        off: usize,
        acc: &mut [__m256; 4],
    ) {
        let db = _mm256_set1_ps(d);
        for (r, a) in acc.iter_mut().enumerate().take(R) {
            // SAFETY: the caller guarantees `r * inp + off + 32 <= xs.len()`.
            unsafe {
                let p = xs.as_ptr().add(r * inp + off);
                let mut s = _mm256_mul_ps(w[0], _mm256_loadu_ps(p));
                s = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(p.add(8)), s);
                s = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(p.add(16)), s);
                s = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(p.add(24)), s);
                *a = _mm256_fmadd_ps(s, db, *a);
            }
        }
    }
}

/// AVX2 version of [`nibbles_scalar`].
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn nibbles_avx2<const R: usize>(
    qs: &[u8],
    d: &[f32],
    xs: &[f32],
    inp: usize,
    acc: &mut [f32; 4],
) {
    use std::arch::x86_64::*;
    let nb = inp / QK;
    assert!(qs.len() >= nb * 16 && d.len() >= nb && xs.len() >= R * inp);
    let mask = _mm_set1_epi8(0x0F);
    let mut vacc = [_mm256_setzero_ps(); 4];
    for (b, &db) in d.iter().enumerate().take(nb) {
        // SAFETY: `b * 16 + 16 <= qs.len()` by the assertion above.
        let raw = unsafe { _mm_loadu_si128(qs.as_ptr().add(b * 16) as *const __m128i) };
        let lo = _mm_and_si128(raw, mask);
        let hi = _mm_and_si128(_mm_srli_epi16::<4>(raw), mask);
        let w = avx2::widen_u8(lo, hi);
        // SAFETY: `xs` holds `R` rows of `inp` floats and `b * 32 + 32 <= inp`.
        unsafe { avx2::block::<R>(&w, db, xs, inp, b * QK, &mut vacc) };
    }
    for (a, v) in acc.iter_mut().zip(vacc).take(R) {
        *a = avx2::hsum(v);
    }
}

/// AVX2 version of [`bytes_scalar`].
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn bytes_avx2<const R: usize>(
    qs: &[i8],
    d: &[f32],
    xs: &[f32],
    inp: usize,
    acc: &mut [f32; 4],
) {
    use std::arch::x86_64::*;
    let nb = inp / QK;
    assert!(qs.len() >= nb * QK && d.len() >= nb && xs.len() >= R * inp);
    let mut vacc = [_mm256_setzero_ps(); 4];
    for (b, &db) in d.iter().enumerate().take(nb) {
        // SAFETY: `b * 32 + 32 <= qs.len()` by the assertion above.
        let (lo, hi) = unsafe {
            let p = qs.as_ptr().add(b * QK) as *const __m128i;
            (_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)))
        };
        let w = avx2::widen_i8(lo, hi);
        // SAFETY: `xs` holds `R` rows of `inp` floats and `b * 32 + 32 <= inp`.
        unsafe { avx2::block::<R>(&w, db, xs, inp, b * QK, &mut vacc) };
    }
    for (a, v) in acc.iter_mut().zip(vacc).take(R) {
        *a = avx2::hsum(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn dense_reference(w: &Tensor, x: &[f32], rows: usize) -> Vec<f32> {
        let (out, inp) = w.dims2().unwrap();
        let w = w.to_vec2::<f32>().unwrap();
        let mut y = vec![0f64; rows * out];
        for r in 0..rows {
            for o in 0..out {
                y[r * out + o] = (0..inp)
                    .map(|i| w[o][i] as f64 * x[r * inp + i] as f64)
                    .sum();
            }
        }
        y.into_iter().map(|v| v as f32).collect()
    }

    fn check(dtype: GgmlDType, simd: bool) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (out, inp) = (150, 96);
        let data: Vec<f32> = (0..out * inp)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let w = Tensor::from_vec(data, (out, inp), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, dtype).unwrap();
        let deq = q.dequantize(&Device::Cpu).unwrap();
        let m = QuantMatrix::from_qtensor(&q).unwrap().expect("supported");
        assert_eq!(m.out_in(), (out, inp));
        for rows in [1, 3, 4, 6] {
            let x: Vec<f32> = (0..rows * inp)
                .map(|_| rng.random_range(-2.0..2.0))
                .collect();
            let want = dense_reference(&deq, &x, rows);
            let got = if simd {
                m.matmul(&x, rows)
            } else {
                // The portable path, whatever the CPU.
                let nb = inp / QK;
                let xsum: Vec<f32> = x.chunks_exact(QK).map(|c| c.iter().sum()).collect();
                let mut y = vec![0f32; rows * out];
                for r in 0..rows {
                    for o in 0..out {
                        let mut acc = [0f32; 4];
                        m.row_dot(
                            o,
                            &x[r * inp..(r + 1) * inp],
                            &xsum[r * nb..(r + 1) * nb],
                            1,
                            false,
                            &mut acc,
                        );
                        y[r * out + o] = acc[0];
                    }
                }
                y
            };
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                    "{dtype:?} rows {rows}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn matches_the_dequantized_weights() {
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q8_0] {
            check(dtype, true);
            check(dtype, false);
        }
    }

    #[test]
    fn unsupported_formats_are_declined() {
        let w = Tensor::zeros((4, 40), candle_core::DType::F32, &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::F32).unwrap();
        assert!(QuantMatrix::from_qtensor(&q).unwrap().is_none());
        let w = Tensor::zeros((4, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::F16).unwrap();
        assert!(QuantMatrix::from_qtensor(&q).unwrap().is_none());
    }
}
