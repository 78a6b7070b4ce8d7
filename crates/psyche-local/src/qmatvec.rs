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

/// Elements per quantization block of the repacked layout (and of the 32-element formats).
const QK: usize = 32;
/// Output rows computed by one parallel task.
const CHUNK: usize = 64;

/// The GGUF formats whose blocks this module repacks for its kernels; the others go through
/// candle (dequantized to f32, or its quantized matmul).
pub(crate) const KERNEL_FORMATS: [GgmlDType; 8] = [
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q4K,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q5K,
    GgmlDType::Q6K,
    GgmlDType::Q8_0,
];

/// Repacked blocks of one weight matrix.
#[derive(Debug, Clone)]
enum Blocks {
    /// 4-bit values `q ∈ 0..16`, weight `d·q + m`; 16 bytes per 32-element block (low nibbles
    /// hold the block's first 16 elements, high nibbles the last 16). Q4_0 is stored as
    /// `m = -8·d`; Q4_K's sub-blocks of 32 carry their own `d = d·scale` and `m = -dmin·min`.
    Nibbles {
        d: Vec<f32>,
        m: Vec<f32>,
        qs: Vec<u8>,
    },
    /// 8-bit values, weight `d·q` (`+ m` when present); 32 bytes per block. Q8_0 and Q5_0 (as
    /// `q - 16`) have no `m`; Q5_1 and Q5_K (`q ∈ 0..32`) have one.
    Bytes {
        d: Vec<f32>,
        m: Option<Vec<f32>>,
        qs: Vec<i8>,
    },
    /// 8-bit values with one scale per 16 elements (two per block), weight `d·q`: Q6_K.
    Bytes16 { d: Vec<f32>, qs: Vec<i8> },
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

/// The values of a tensor's blocks in element order, with the scale (`d`) and offset (`m`) of
/// every sub-block, exactly as candle's dequantization computes them.
#[derive(Default)]
struct Unpacked {
    q: Vec<i8>,
    d: Vec<f32>,
    m: Vec<f32>,
}

impl Unpacked {
    /// One 32-element block of 4-bit values (`lo` nibbles first, then `hi`).
    fn nibbles(&mut self, qs: &[u8]) {
        self.q.extend(qs.iter().map(|&v| (v & 0x0F) as i8));
        self.q.extend(qs.iter().map(|&v| (v >> 4) as i8));
    }

    /// One 32-element block of 5-bit values: `qs` holds the low 4 bits, `qh` the fifth bits.
    fn five_bits(&mut self, qs: &[u8], qh: u32, offset: i8) {
        let hi = |j: usize, shift: usize| ((((qh >> (j + shift)) << 4) & 0x10) as u8) as i8;
        self.q
            .extend((0..16).map(|j| (qs[j] & 0x0F) as i8 + hi(j, 0) - offset));
        self.q
            .extend((0..16).map(|j| (qs[j] >> 4) as i8 + hi(j, 16) - offset));
    }

    /// The 6-bit scales and mins of a Q4_K / Q5_K super-block (candle's `get_scale_min_k4`).
    fn scale_min_k4(j: usize, s: &[u8]) -> (f32, f32) {
        if j < 4 {
            ((s[j] & 63) as f32, (s[j + 4] & 63) as f32)
        } else {
            (
                ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4)) as f32,
                ((s[j + 4] >> 4) | ((s[j] >> 6) << 4)) as f32,
            )
        }
    }

    fn push(&mut self, dtype: GgmlDType, b: &[u8]) {
        match dtype {
            GgmlDType::Q4_0 => {
                let d = f16_at(b, 0);
                self.d.push(d);
                self.m.push(-8.0 * d);
                self.nibbles(&b[2..18]);
            }
            GgmlDType::Q4_1 => {
                self.d.push(f16_at(b, 0));
                self.m.push(f16_at(b, 2));
                self.nibbles(&b[4..20]);
            }
            GgmlDType::Q5_0 => {
                self.d.push(f16_at(b, 0));
                let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                self.five_bits(&b[6..22], qh, 16);
            }
            GgmlDType::Q5_1 => {
                self.d.push(f16_at(b, 0));
                self.m.push(f16_at(b, 2));
                let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                self.five_bits(&b[8..24], qh, 0);
            }
            GgmlDType::Q8_0 => {
                self.d.push(f16_at(b, 0));
                self.q.extend(b[2..34].iter().map(|&v| v as i8));
            }
            // d f16, dmin f16, scales[12], (Q5_K: qh[32]), qs[128]; four chunks of 64 elements,
            // each two sub-blocks of 32 (low nibbles, then high nibbles).
            GgmlDType::Q4K | GgmlDType::Q5K => {
                let (d, dmin, scales) = (f16_at(b, 0), f16_at(b, 2), &b[4..16]);
                let (qh, qs) = if dtype == GgmlDType::Q5K {
                    (Some(&b[16..48]), &b[48..176])
                } else {
                    (None, &b[16..144])
                };
                for chunk in 0..4 {
                    let ql = &qs[chunk * 32..(chunk + 1) * 32];
                    for half in 0..2 {
                        let (sc, mn) = Self::scale_min_k4(2 * chunk + half, scales);
                        self.d.push(d * sc);
                        self.m.push(-(dmin * mn));
                        let bit = 1u8 << (2 * chunk + half);
                        self.q.extend(ql.iter().enumerate().map(|(l, &v)| {
                            let low = if half == 0 { v & 0x0F } else { v >> 4 };
                            let high = qh.map_or(0, |h| if h[l] & bit != 0 { 16 } else { 0 });
                            (low + high) as i8
                        }));
                    }
                }
            }
            // ql[128], qh[64], scales[16] (i8), d f16; element e has scale `scales[e / 16]`.
            GgmlDType::Q6K => {
                let (ql, qh, sc, d) = (&b[..128], &b[128..192], &b[192..208], f16_at(b, 208));
                self.d.extend(sc.iter().map(|&s| d * (s as i8) as f32));
                let mut q = [0i8; 256];
                for n in 0..2 {
                    let (ql, qh, q) = (&ql[64 * n..], &qh[32 * n..], &mut q[128 * n..]);
                    for l in 0..32 {
                        let v = |lo: u8, shift: u8| (lo | (((qh[l] >> shift) & 3) << 4)) as i8 - 32;
                        q[l] = v(ql[l] & 0x0F, 0);
                        q[l + 32] = v(ql[l + 32] & 0x0F, 2);
                        q[l + 64] = v(ql[l] >> 4, 4);
                        q[l + 96] = v(ql[l + 32] >> 4, 6);
                    }
                }
                self.q.extend_from_slice(&q);
            }
            _ => {}
        }
    }
}

impl QuantMatrix {
    /// Repacks a 2-D tensor in one of [`KERNEL_FORMATS`]; `None` for other formats or shapes.
    pub(crate) fn from_qtensor(q: &QTensor) -> candle_core::Result<Option<Self>> {
        let Ok((out, inp)) = q.shape().dims2() else {
            return Ok(None);
        };
        let dtype = q.dtype();
        if inp % dtype.block_size() != 0 || inp % QK != 0 || out == 0 {
            return Ok(None);
        }
        if !KERNEL_FORMATS.contains(&dtype) {
            return Ok(None);
        }
        let raw = q.data()?;
        let n_blocks = out * inp / dtype.block_size();
        let size = dtype.type_size();
        if raw.len() != n_blocks * size {
            candle_core::bail!(
                "quantized tensor holds {} bytes, expected {}",
                raw.len(),
                n_blocks * size
            )
        }
        let mut u = Unpacked {
            q: Vec::with_capacity(out * inp),
            ..Unpacked::default()
        };
        for b in raw.chunks_exact(size) {
            u.push(dtype, b);
        }
        let Unpacked { q: values, d, m } = u;
        let blocks = match dtype {
            GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q4K => Blocks::Nibbles {
                d,
                m,
                qs: values
                    .chunks_exact(QK)
                    .flat_map(|v| (0..16).map(move |j| v[j] as u8 | ((v[j + 16] as u8) << 4)))
                    .collect(),
            },
            GgmlDType::Q6K => Blocks::Bytes16 { d, qs: values },
            _ => Blocks::Bytes {
                d,
                m: (!m.is_empty()).then_some(m),
                qs: values,
            },
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
            Blocks::Bytes { d, m, qs } => {
                for (b, (q, &d)) in qs.chunks_exact(QK).zip(d).enumerate() {
                    match m {
                        Some(m) => w.extend(q.iter().map(|&v| v as f32 * d + m[b])),
                        None => w.extend(q.iter().map(|&v| v as f32 * d)),
                    }
                }
            }
            Blocks::Bytes16 { d, qs } => {
                for (q, &d) in qs.chunks_exact(QK / 2).zip(d) {
                    w.extend(q.iter().map(|&v| d * v as f32));
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
        let simd = Avx2Fma::detect();
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
        simd: Option<Avx2Fma>,
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
            Blocks::Bytes { d, m, qs } => {
                let d = &d[o * nb..(o + 1) * nb];
                let qs = &qs[o * inp..(o + 1) * inp];
                dispatch_bytes(qs, d, xs, inp, n, simd, acc);
                if let Some(m) = m {
                    let m = &m[o * nb..(o + 1) * nb];
                    for (r, a) in acc[..n].iter_mut().enumerate() {
                        *a += dot(m, &sums[r * nb..(r + 1) * nb]);
                    }
                }
            }
            Blocks::Bytes16 { d, qs } => {
                let d = &d[o * 2 * nb..(o + 1) * 2 * nb];
                let qs = &qs[o * inp..(o + 1) * inp];
                dispatch_bytes16(qs, d, xs, inp, n, simd, acc);
            }
        }
    }
}

/// The CPU features that select kernels (ours and the `gemm` crate's under candle), recorded
/// with every result because they change float rounding.
pub(crate) fn cpu_features() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && Avx2Fma::detect().is_some() {
            return "avx512f+avx2+fma";
        }
        if Avx2Fma::detect().is_some() {
            return "avx2+fma";
        }
    }
    "portable"
}

/// The kernels [`QuantMatrix::matmul`] runs on this CPU: `avx2` or `portable`.
pub(crate) fn kernel_name() -> &'static str {
    if Avx2Fma::detect().is_some() {
        "avx2"
    } else {
        "portable"
    }
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

/// Proof that the CPU supports AVX2 and FMA. The private field makes [`Avx2Fma::detect`] (a
/// run-time check) the only way to obtain one, so code holding a token may call the
/// `#[target_feature(enable = "avx2,fma")]` kernels.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) struct Avx2Fma(());

impl Avx2Fma {
    /// `Some` when this CPU supports AVX2 and FMA (checked at run time; cached by std).
    pub(crate) fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Some(Self(()));
        }
        None
    }
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

/// Defines `$name`, which runs `$simd` (AVX2) for `n ≤ 4` rows when given an [`Avx2Fma`]
/// token, else `$scalar`.
macro_rules! dispatcher {
    ($name:ident, $q:ty, $simd:ident, $scalar:ident) => {
        fn $name(
            qs: &[$q],
            d: &[f32],
            xs: &[f32],
            inp: usize,
            n: usize,
            simd: Option<Avx2Fma>,
            acc: &mut [f32; 4],
        ) {
            #[cfg(target_arch = "x86_64")]
            if let Some(Avx2Fma(())) = simd {
                // SAFETY: an `Avx2Fma` token exists only after AVX2 and FMA were detected at
                // run time; slice lengths are checked inside the kernels.
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
dispatcher!(dispatch_bytes16, i8, bytes16_avx2, bytes16_scalar);

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

/// `Σ_k d_k · Σ_j q_kj · x_kj` over sub-blocks of `32 / S` elements for `R` rows.
fn bytes_scalar_impl<const R: usize, const S: usize>(
    qs: &[i8],
    d: &[f32],
    xs: &[f32],
    inp: usize,
    acc: &mut [f32; 4],
) {
    let sub = QK / S;
    for (k, (q, &dk)) in qs.chunks_exact(sub).zip(d).enumerate() {
        for (r, a) in acc.iter_mut().enumerate().take(R) {
            let x = &xs[r * inp + k * sub..r * inp + (k + 1) * sub];
            *a += dk * q.iter().zip(x).map(|(&q, x)| q as f32 * x).sum::<f32>();
        }
    }
}

/// `Σ_b d_b · Σ_j q_bj · x_bj` for `R` rows (one scale per 32 elements).
fn bytes_scalar<const R: usize>(qs: &[i8], d: &[f32], xs: &[f32], inp: usize, acc: &mut [f32; 4]) {
    bytes_scalar_impl::<R, 1>(qs, d, xs, inp, acc);
}

/// As [`bytes_scalar`] with one scale per 16 elements.
fn bytes16_scalar<const R: usize>(
    qs: &[i8],
    d: &[f32],
    xs: &[f32],
    inp: usize,
    acc: &mut [f32; 4],
) {
    bytes_scalar_impl::<R, 2>(qs, d, xs, inp, acc);
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

    /// Accumulates `Σ_k d_k · Σ w·x` of one 32-element block into `acc[r]` for `R` rows, with
    /// `S` scales per block (`S = 1`: one for all 32; `S = 2`: one per 16).
    ///
    /// # Safety
    /// `xs` must hold `R` rows of `inp` floats and `off + 32 <= inp`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block<const R: usize, const S: usize>(
        w: &[__m256; 4],
        d: [f32; S],
        xs: &[f32],
        inp: usize,
        off: usize,
        acc: &mut [__m256; 4],
    ) {
        let db = d.map(|v| _mm256_set1_ps(v));
        for (r, a) in acc.iter_mut().enumerate().take(R) {
            // SAFETY: the caller guarantees `r * inp + off + 32 <= xs.len()`.
            unsafe {
                let p = xs.as_ptr().add(r * inp + off);
                let mut s = _mm256_mul_ps(w[0], _mm256_loadu_ps(p));
                s = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(p.add(8)), s);
                if S == 2 {
                    *a = _mm256_fmadd_ps(s, db[0], *a);
                    s = _mm256_mul_ps(w[2], _mm256_loadu_ps(p.add(16)));
                } else {
                    s = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(p.add(16)), s);
                }
                s = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(p.add(24)), s);
                *a = _mm256_fmadd_ps(s, db[S - 1], *a);
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
        unsafe { avx2::block::<R, 1>(&w, [db], xs, inp, b * QK, &mut vacc) };
    }
    for (a, v) in acc.iter_mut().zip(vacc).take(R) {
        *a = avx2::hsum(v);
    }
}

/// AVX2 version of [`bytes_scalar_impl`].
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn bytes_avx2_impl<const R: usize, const S: usize>(
    qs: &[i8],
    d: &[f32],
    xs: &[f32],
    inp: usize,
    acc: &mut [f32; 4],
) {
    use std::arch::x86_64::*;
    let nb = inp / QK;
    assert!(qs.len() >= nb * QK && d.len() >= nb * S && xs.len() >= R * inp);
    let mut vacc = [_mm256_setzero_ps(); 4];
    for (b, db) in d.chunks_exact(S).enumerate().take(nb) {
        // SAFETY: `b * 32 + 32 <= qs.len()` by the assertion above.
        let (lo, hi) = unsafe {
            let p = qs.as_ptr().add(b * QK) as *const __m128i;
            (_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)))
        };
        let w = avx2::widen_i8(lo, hi);
        let db: [f32; S] = std::array::from_fn(|k| db[k]);
        // SAFETY: `xs` holds `R` rows of `inp` floats and `b * 32 + 32 <= inp`.
        unsafe { avx2::block::<R, S>(&w, db, xs, inp, b * QK, &mut vacc) };
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
    // SAFETY: the caller upholds the same contract.
    unsafe { bytes_avx2_impl::<R, 1>(qs, d, xs, inp, acc) }
}

/// AVX2 version of [`bytes16_scalar`].
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn bytes16_avx2<const R: usize>(
    qs: &[i8],
    d: &[f32],
    xs: &[f32],
    inp: usize,
    acc: &mut [f32; 4],
) {
    // SAFETY: the caller upholds the same contract.
    unsafe { bytes_avx2_impl::<R, 2>(qs, d, xs, inp, acc) }
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
        // K-quant rows hold whole super-blocks of 256.
        let (out, inp) = (150, 512);
        let data: Vec<f32> = (0..out * inp)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let w = Tensor::from_vec(data, (out, inp), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, dtype).unwrap();
        let deq = q.dequantize(&Device::Cpu).unwrap();
        let m = QuantMatrix::from_qtensor(&q).unwrap().expect("supported");
        assert_eq!(m.out_in(), (out, inp));
        // The repacked weights are candle's dequantized values, bit for bit (Q4_0's `q·d - 8·d`
        // rounds differently from candle's `(q - 8)·d`).
        let ours = m.dequantize();
        let theirs = deq.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            if dtype == GgmlDType::Q4_0 {
                assert!(
                    (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                    "{dtype:?} [{i}]: {a} vs {b}"
                );
            } else {
                assert_eq!(a.to_bits(), b.to_bits(), "{dtype:?} [{i}]: {a} vs {b}");
            }
        }
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
                            None,
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
        for dtype in KERNEL_FORMATS {
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
        let w = Tensor::zeros((4, 256), candle_core::DType::F32, &Device::Cpu).unwrap();
        for dtype in [GgmlDType::Q2K, GgmlDType::Q3K] {
            let q = QTensor::quantize(&w, dtype).unwrap();
            assert!(
                QuantMatrix::from_qtensor(&q).unwrap().is_none(),
                "{dtype:?}"
            );
        }
    }
}
