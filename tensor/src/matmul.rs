//! Matrix products on the `gemm` crate's kernels (AVX2/AVX-512/NEON chosen at run time).
//!
//! [`gemm`] is the single entry point every product in gantry goes through (matmul, conv via
//! im2col, their gradients), so the backend lives behind this one function.

use crate::Tensor;
use crate::parallel::{gemm_parallelism, map_range, num_threads};

/// `c = a · b` (or `c += a · b` when `accumulate`), all row-major.
///
/// `a` is `[m, k]`, or `[k, m]` read transposed when `trans_a`; `b` is `[k, n]`, or `[n, k]` read
/// transposed when `trans_b`; `c` is `[m, n]`. `parallel` lets the kernel use the rayon pool; pass
/// `false` from inside a parallel loop.
///
/// # Panics
/// If a slice is shorter than its matrix.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn gemm(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    trans_a: bool,
    b: &[f32],
    trans_b: bool,
    c: &mut [f32],
    accumulate: bool,
    parallel: bool,
) {
    check_lengths(m, n, k, a, b, c.len());
    // SAFETY: `c` holds `m * n` initialised values (checked) and is borrowed mutably, so it
    // aliases neither input.
    unsafe {
        gemm_raw(
            m,
            n,
            k,
            a,
            trans_a,
            b,
            trans_b,
            c.as_mut_ptr(),
            accumulate,
            parallel,
        )
    }
}

/// `a · b` into a new `[m, n]` buffer, as [`gemm`] without `accumulate`: the product writes
/// every value, so the buffer is not zeroed first (zeroing a weight gradient's worth of memory
/// only to overwrite it cost an MLP step some 5% of its time).
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(crate) fn gemm_new(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    trans_a: bool,
    b: &[f32],
    trans_b: bool,
    parallel: bool,
) -> Vec<f32> {
    let mut c = Vec::with_capacity(m * n);
    if k == 0 {
        c.resize(m * n, 0.0);
        return c;
    }
    check_lengths(m, n, k, a, b, m * n);
    // SAFETY: the capacity is `m * n`; with `k > 0` and `accumulate` false the product writes
    // each of the `m * n` values without reading it, so all are initialised before `set_len`.
    unsafe {
        gemm_raw(
            m,
            n,
            k,
            a,
            trans_a,
            b,
            trans_b,
            c.as_mut_ptr(),
            false,
            parallel,
        );
        c.set_len(m * n);
    }
    c
}

#[track_caller]
fn check_lengths(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c_len: usize) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c_len >= m * n,
        "gemm: [{m}, {k}] x [{k}, {n}] needs {} + {} + {} elements, got {} + {} + {c_len}",
        m * k,
        k * n,
        m * n,
        a.len(),
        b.len(),
    );
}

/// The product behind [`gemm`] and [`gemm_new`].
///
/// # Safety
/// `a` and `b` hold their matrices (see [`check_lengths`]); `c` points to `m * n` writable
/// values that alias neither, initialised when `accumulate` (or when `k == 0`).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    trans_a: bool,
    b: &[f32],
    trans_b: bool,
    c: *mut f32,
    accumulate: bool,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            // SAFETY: the caller guarantees `m * n` initialised values when `k == 0`.
            unsafe { std::slice::from_raw_parts_mut(c, m * n) }.fill(0.0);
        }
        return;
    }
    let (a_cs, a_rs) = if trans_a {
        (m as isize, 1)
    } else {
        (1, k as isize)
    };
    let (b_cs, b_rs) = if trans_b {
        (k as isize, 1)
    } else {
        (1, n as isize)
    };
    let par = if parallel {
        gemm_parallelism(m * n * k)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the caller's lengths keep every strided access inside its buffer.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

impl Tensor {
    /// Matrix product: `[m, k] x [k, n] -> [m, n]`, or batched over equal leading axes
    /// (`[.., m, k] x [.., k, n]`); a 2-D operand is shared by every batch entry.
    ///
    /// ```
    /// use gantry_tensor::Tensor;
    /// let a = Tensor::from_vec(&[2, 2], vec![1., 2., 3., 4.]);
    /// let b = Tensor::from_vec(&[2, 1], vec![1., 1.]);
    /// assert_eq!(a.matmul(&b).to_vec(), vec![3., 7.]);
    /// ```
    ///
    /// # Panics
    /// If either operand has fewer than 2 axes, the inner sizes differ or the batch axes differ.
    #[track_caller]
    pub fn matmul(&self, rhs: &Tensor) -> Tensor {
        self.matmul_t(rhs, false, false)
    }

    /// A fully connected layer: `self · weightᵀ + bias` for `self` `[N, in]`, `weight`
    /// `[out, in]` (PyTorch's layout, read transposed in place) and `bias` `[out]`.
    ///
    /// ```
    /// use gantry_tensor::Tensor;
    /// let x = Tensor::from_vec(&[1, 2], vec![1., 2.]);
    /// let w = Tensor::from_vec(&[3, 2], vec![1., 0., 0., 1., 1., 1.]);
    /// let b = Tensor::from_vec(&[3], vec![0.5, 0.5, 0.5]);
    /// assert_eq!(x.linear(&w, Some(&b)).to_vec(), vec![1.5, 2.5, 3.5]);
    /// ```
    ///
    /// # Panics
    /// If `self` or `weight` is not 2-D, the inner sizes differ or `bias` is not `[out]`.
    #[track_caller]
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let (xs, ws) = (self.shape(), weight.shape());
        assert!(
            xs.len() == 2 && ws.len() == 2 && xs[1] == ws[1],
            "linear: input {xs:?} and weight {ws:?} must be [N, in] and [out, in]"
        );
        let y = self.matmul_t(weight, false, true);
        match bias {
            None => y,
            Some(b) => {
                assert!(
                    b.shape() == [ws[0]],
                    "linear: bias {:?} must be [{}]",
                    b.shape(),
                    ws[0]
                );
                let mut v = y.to_vec();
                let b = b.as_slice();
                for row in v.chunks_exact_mut(ws[0]) {
                    row.iter_mut().zip(b.iter()).for_each(|(y, b)| *y += b);
                }
                Tensor::from_vec(&[xs[0], ws[0]], v)
            }
        }
    }

    /// Matrix product with either operand's last two axes read transposed, without copying:
    /// `matmul_t(b, true, false)` is `selfᵀ · b`. Used by the gradients of `matmul`.
    ///
    /// # Panics
    /// As [`Tensor::matmul`].
    #[track_caller]
    pub fn matmul_t(&self, rhs: &Tensor, trans_a: bool, trans_b: bool) -> Tensor {
        let (sa, sb) = (self.shape(), rhs.shape());
        assert!(
            sa.len() >= 2 && sb.len() >= 2,
            "matmul: operands {sa:?} and {sb:?} need at least 2 axes"
        );
        let last2 = |s: &[usize], t: bool| {
            let (r, c) = (s[s.len() - 2], s[s.len() - 1]);
            if t { (c, r) } else { (r, c) }
        };
        let (m, k) = last2(sa, trans_a);
        let (k2, n) = last2(sb, trans_b);
        let (ba, bb) = (&sa[..sa.len() - 2], &sb[..sb.len() - 2]);
        assert!(
            k == k2 && (ba == bb || ba.is_empty() || bb.is_empty()),
            "matmul: shapes {sa:?} and {sb:?} do not multiply"
        );
        let batch_shape = if ba.is_empty() { bb } else { ba };
        let batch: usize = batch_shape.iter().product();
        let (a, b) = (self.as_slice(), rhs.as_slice());
        let a_step = if ba.is_empty() { 0 } else { m * k };
        let b_step = if bb.is_empty() { 0 } else { k * n };
        let product = |i: usize, parallel: bool| {
            gemm_new(
                m,
                n,
                k,
                &a[i * a_step..],
                trans_a,
                &b[i * b_step..],
                trans_b,
                parallel,
            )
        };
        let out = if batch == 1 {
            product(0, true)
        } else if batch >= num_threads() {
            map_range(batch, |i| product(i, false)).concat()
        } else {
            (0..batch).flat_map(|i| product(i, true)).collect()
        };
        let mut shape = batch_shape.to_vec();
        shape.extend([m, n]);
        Tensor::from_vec(&shape, out)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn matches_naive_product_and_transposes() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let ta = Tensor::from_vec(&[m, k], a.clone());
        let tb = Tensor::from_vec(&[k, n], b.clone());
        let want = Tensor::from_vec(&[m, n], naive(&a, &b, m, k, n));
        assert!(ta.matmul(&tb).max_abs_diff(&want) < 1e-5);
        let at = ta.transpose(0, 1);
        let bt = tb.transpose(0, 1);
        assert!(at.matmul_t(&tb, true, false).max_abs_diff(&want) < 1e-5);
        assert!(ta.matmul_t(&bt, false, true).max_abs_diff(&want) < 1e-5);
    }

    #[test]
    fn products_do_not_read_the_memory_they_are_written_into() {
        // Freed NaNs of the product's size lie where the next allocation is likely to land:
        // a product that read its (unzeroed) output buffer would carry them.
        for (m, k, n) in [(3, 4, 5), (64, 100, 64), (17, 1, 9)] {
            drop(vec![f32::NAN; m * n]);
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
            let got =
                Tensor::from_vec(&[m, k], a.clone()).matmul(&Tensor::from_vec(&[k, n], b.clone()));
            let want = Tensor::from_vec(&[m, n], naive(&a, &b, m, k, n));
            assert!(got.max_abs_diff(&want) < 1e-4, "{m}x{k}x{n}");
        }
        drop(vec![f32::NAN; 6]);
        let empty_inner = Tensor::zeros(&[2, 0]).matmul(&Tensor::zeros(&[0, 3]));
        assert_eq!(empty_inner.to_vec(), vec![0.0; 6], "k = 0 gives zeros");
        let batched = Tensor::zeros(&[0, 2, 2]).matmul(&Tensor::zeros(&[0, 2, 2]));
        assert_eq!(batched.shape(), &[0, 2, 2]);
    }

    #[test]
    fn batched_shares_a_2d_operand() {
        let a = Tensor::from_vec(&[2, 1, 2], vec![1., 2., 3., 4.]);
        let b = Tensor::from_vec(&[2, 1], vec![1., 10.]);
        assert_eq!(a.matmul(&b).to_vec(), vec![21., 43.]);
        assert_eq!(a.matmul(&b).shape(), &[2, 1, 1]);
    }

    #[test]
    #[should_panic(expected = "matmul: shapes [2, 3] and [2, 3] do not multiply")]
    fn inner_mismatch_panics() {
        Tensor::zeros(&[2, 3]).matmul(&Tensor::zeros(&[2, 3]));
    }
}
