//! Bounds-checked strided f32 matrix products on the CPU, through the `gemm` crate (the kernels
//! candle's CPU matmul uses, AVX-512/AVX2 chosen at run time) but without candle's per-call
//! output allocation and copies. Used by the CPU training step ([`crate::train_cpu`]).

/// A read-only strided view of an f32 matrix: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `[rows, cols]` matrix starting at `data[0]`, rows `rs` apart.
    pub(crate) fn strided(data: &'a [f32], rows: usize, cols: usize, rs: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs,
            cs: 1,
        }
    }

    /// A dense row-major `[rows, cols]` matrix.
    pub(crate) fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// The transpose (a view; nothing is copied).
    pub(crate) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Whether every element lies inside `data`.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `dst = β·a·b` (or `dst += β·a·b` when `accumulate`), where `dst` is row-major
/// `[a.rows, b.cols]` with rows `dst_rs` apart. `parallel` splits the product over the current
/// rayon pool.
///
/// # Panics
///
/// When the shapes disagree or a view reaches outside its slice (a programming error).
pub(crate) fn matmul(
    dst: &mut [f32],
    dst_rs: usize,
    a: Mat<'_>,
    b: Mat<'_>,
    beta: f32,
    accumulate: bool,
    parallel: bool,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "matmul: inner dimensions differ");
    assert!(a.in_bounds() && b.in_bounds(), "matmul: view out of bounds");
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        n <= dst_rs && (m - 1) * dst_rs + n <= dst.len(),
        "matmul: destination too small"
    );
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * dst_rs..r * dst_rs + n].fill(0.0);
            }
        }
        return;
    }
    let threads = rayon::current_num_threads();
    let parallelism = if parallel && threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let isz = |v: usize| v as isize;
    // SAFETY: the assertions above keep every element of `a`, `b` and `dst` inside its slice;
    // `dst` is borrowed mutably, so it cannot alias `a` or `b`; rows of `dst` do not overlap
    // (`n <= dst_rs`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            isz(dst_rs),
            accumulate,
            a.data.as_ptr(),
            isz(a.cs),
            isz(a.rs),
            b.data.as_ptr(),
            isz(b.cs),
            isz(b.rs),
            1.0,
            beta,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(a: Mat<'_>, b: Mat<'_>) -> Vec<f32> {
        let mut y = vec![0f32; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                y[i * b.cols + j] = (0..a.cols)
                    .map(|p| a.data[i * a.rs + p * a.cs] * b.data[p * b.rs + j * b.cs])
                    .sum();
            }
        }
        y
    }

    #[test]
    fn strided_and_transposed_products_match_the_definition() {
        let a: Vec<f32> = (0..35).map(|v| (v as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..42).map(|v| (v as f32 * 0.11).cos()).collect();
        // a: 5×7 dense; b: 7×6 dense, and the same data viewed as the transpose of 6×7.
        let (ma, mb) = (Mat::new(&a, 5, 7), Mat::new(&b, 7, 6));
        let mbt = Mat::new(&b, 6, 7).t();
        for (x, y) in [(ma, mb), (ma, mbt)] {
            let want = reference(x, y);
            for parallel in [false, true] {
                let mut got = vec![1f32; 5 * 8];
                matmul(&mut got, 8, x, y, 2.0, false, parallel);
                for i in 0..5 {
                    for j in 0..6 {
                        let (g, w) = (got[i * 8 + j], 2.0 * want[i * 6 + j]);
                        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
                    }
                    // Columns past `n` are untouched.
                    assert_eq!(got[i * 8 + 6], 1.0);
                }
                let mut acc = vec![1f32; 30];
                matmul(&mut acc, 6, x, y, 1.0, true, parallel);
                for (g, w) in acc.iter().zip(&want) {
                    assert!((g - (w + 1.0)).abs() < 1e-5);
                }
            }
        }
        // A strided sub-block: columns 2..5 of `a`'s rows 1..4.
        let sub = Mat::strided(&a[7 + 2..], 3, 3, 7);
        let mut got = vec![0f32; 9];
        matmul(&mut got, 3, sub, Mat::new(&b[..9], 3, 3), 1.0, false, false);
        assert_eq!(got.len(), 9);
        let want = reference(sub, Mat::new(&b[..9], 3, 3));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5);
        }
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn views_past_the_slice_are_refused() {
        let a = vec![0f32; 10];
        let mut y = vec![0f32; 4];
        matmul(
            &mut y,
            2,
            Mat::new(&a, 2, 6),
            Mat::new(&a, 6, 2),
            1.0,
            false,
            false,
        );
    }
}
