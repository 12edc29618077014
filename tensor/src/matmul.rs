//! Matrix products on the `gemm` crate's kernels (AVX2/AVX-512/NEON chosen at run time).
//!
//! [`gemm`] is the entry point of every product in gantry (matmul, conv via im2col, their
//! gradients), so the backend lives behind this one function, but for two kinds that have
//! kernels of their own: strided convolutions on AVX-512 (`conv_packed`), products of a batch
//! of at most 128 rows in [`Tensor::matmul_t`] on AVX2 and AVX-512, and tall products with few
//! columns on AVX-512 (`matmul_narrow`).

use crate::Tensor;
use crate::matmul_narrow::Route;
use crate::parallel::{
    filled, for_each_chunk_mut, gemm_parallelism, long_product_with_few_outputs, map_range,
    num_threads,
};
use crate::profile::{self, Timer};
use crate::scratch::Scratch;
use std::mem::MaybeUninit;

/// A `b` read transposed is `n` rows of length `k`, and the kernel reads a few of those rows
/// side by side at each step of `k`. When the rows are a multiple of 256 floats (1 KiB) apart,
/// those reads fall on the same few L1 cache sets and evict each other: a 64 x 784 x 1024
/// product (a linear layer's forward pass) took 3.1 ms instead of 1.2, a 3-channel
/// convolution's weight gradient 24 ms instead of 10 (one thread, AVX-512). Rows laid out
/// one cache line further apart avoid it; only the strides change, so the kernel does the
/// same arithmetic in the same order and every bit of the product stays as it was.
const ALIASING_STRIDE: usize = 256;

/// The row stride at which to lay out `rows of length k` that a product reads transposed:
/// `k`, or `k` plus one cache line when `k` is a multiple of [`ALIASING_STRIDE`].
pub(crate) fn transposed_ld(k: usize) -> usize {
    if k.is_multiple_of(ALIASING_STRIDE) {
        k + 16
    } else {
        k
    }
}

/// Rows of `c` from which gemm pads a transposed `b` it was given unpadded: the copy is
/// `1 / (2 m)` of the product's work, at most 1/16 from here (a bound chosen, not measured).
const PAD_MIN_ROWS: usize = 8;

/// The row stride of a `b` stored without gaps: `[n, k]` when read transposed, else `[k, n]`.
fn packed_ld(trans_b: bool, n: usize, k: usize) -> usize {
    if trans_b { k } else { n }
}

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
    let b_ld = packed_ld(trans_b, n, k);
    gemm_ld(
        m, n, k, a, trans_a, b, trans_b, b_ld, c, n, accumulate, parallel,
    );
}

/// [`gemm`] with `b`'s rows `b_ld` values apart (`b_ld >= n`, or `>= k` when `trans_b`), for
/// a `b` laid out with [`transposed_ld`], and `c`'s rows `c_ld >= n` apart.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(crate) fn gemm_ld(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    trans_a: bool,
    b: &[f32],
    trans_b: bool,
    b_ld: usize,
    c: &mut [f32],
    c_ld: usize,
    accumulate: bool,
    parallel: bool,
) {
    check_lengths(m, n, k, a, b, trans_b, b_ld, c.len());
    assert!(
        c_ld >= n && (m == 0 || c.len() >= (m - 1) * c_ld + n),
        "gemm: c's rows of {n} values {c_ld} apart need more than {} elements",
        c.len()
    );
    // SAFETY: `c` holds `m` rows of `n` initialised values `c_ld` apart (checked) and is
    // borrowed mutably, so it aliases neither input.
    unsafe {
        gemm_raw(
            m,
            n,
            k,
            a,
            trans_a,
            b,
            trans_b,
            b_ld,
            (c.as_mut_ptr(), c_ld),
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
    let b_ld = packed_ld(trans_b, n, k);
    gemm_new_ld(m, n, k, a, trans_a, b, trans_b, b_ld, parallel)
}

/// [`gemm_new`] with `b`'s rows `b_ld` values apart, as [`gemm_ld`].
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(crate) fn gemm_new_ld(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    trans_a: bool,
    b: &[f32],
    trans_b: bool,
    b_ld: usize,
    parallel: bool,
) -> Vec<f32> {
    filled(m * n, |c| {
        gemm_uninit(m, n, k, a, trans_a, b, trans_b, b_ld, c, parallel)
    })
}

/// `c = a · b` as [`gemm_ld`] without `accumulate` (`b`'s rows `b_ld` values apart), into room
/// that need not hold values yet (a slice of a vector's spare capacity): the product writes
/// every one of the `m * n` values without reading it, so callers skip zeroing memory only to
/// overwrite it.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(crate) fn gemm_uninit(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    trans_a: bool,
    b: &[f32],
    trans_b: bool,
    b_ld: usize,
    c: &mut [MaybeUninit<f32>],
    parallel: bool,
) {
    if k == 0 {
        c[..m * n].fill(MaybeUninit::new(0.0));
        return;
    }
    check_lengths(m, n, k, a, b, trans_b, b_ld, c.len());
    // SAFETY: `c` has room for `m * n` values (checked) and is borrowed mutably, so it aliases
    // neither input; with `k > 0` and `accumulate` false the product writes each value
    // without reading it.
    unsafe {
        gemm_raw(
            m,
            n,
            k,
            a,
            trans_a,
            b,
            trans_b,
            b_ld,
            (c.as_mut_ptr().cast(), n),
            false,
            parallel,
        );
    }
}

#[allow(clippy::too_many_arguments)]
#[track_caller]
fn check_lengths(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    trans_b: bool,
    b_ld: usize,
    c_len: usize,
) {
    let (b_rows, b_row) = if trans_b { (n, k) } else { (k, n) };
    let b_len = if b_rows == 0 {
        0
    } else {
        (b_rows - 1) * b_ld + b_row
    };
    assert!(
        b_ld >= b_row,
        "gemm: b's rows of {b_row} values cannot be {b_ld} apart"
    );
    assert!(
        a.len() >= m * k && b.len() >= b_len && c_len >= m * n,
        "gemm: [{m}, {k}] x [{k}, {n}] needs {} + {b_len} + {} elements, got {} + {} + {c_len}",
        m * k,
        m * n,
        a.len(),
        b.len(),
    );
}

/// `rows` rows of length `len` from `b` into a buffer with rows `ld` apart.
fn pad_rows(b: &[f32], rows: usize, len: usize, ld: usize, parallel: bool) -> Scratch {
    let mut out = Scratch::dirty(rows * ld);
    let copy = |r: usize, dst: &mut [f32]| dst[..len].copy_from_slice(&b[r * len..][..len]);
    if parallel {
        for_each_chunk_mut(&mut out, ld, copy);
    } else {
        out.chunks_mut(ld)
            .enumerate()
            .for_each(|(r, dst)| copy(r, dst));
    }
    out
}

/// The product behind [`gemm`] and [`gemm_new`].
///
/// # Safety
/// `a` and `b` hold their matrices (see [`check_lengths`]); `c` points to `m` rows of `n`
/// writable values `c_ld` apart that alias neither, initialised when `accumulate` (or when
/// `k == 0`).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    trans_a: bool,
    b: &[f32],
    trans_b: bool,
    b_ld: usize,
    c: (*mut f32, usize),
    accumulate: bool,
    parallel: bool,
) {
    let timer = parallel.then(Timer::start);
    // SAFETY: forwarded from the caller.
    let route = unsafe {
        gemm_routed(
            [m, n, k],
            (a, trans_a),
            (b, trans_b, b_ld),
            c,
            accumulate,
            parallel,
        )
    };
    if let (Some(timer), Some(route)) = (timer, route) {
        stop_product_timer(timer, [m, n, k], trans_a, trans_b, route);
    }
}

/// Adds a product's time to the profile (section [`profile::PRODUCTS`]), labelled by its
/// shape, which operands it read transposed and the kernels' route.
pub(crate) fn stop_product_timer(
    timer: Timer,
    [m, n, k]: [usize; 3],
    trans_a: bool,
    trans_b: bool,
    route: &'static str,
) {
    let label = || {
        let a = if trans_a { "aᵀ" } else { "a" };
        let b = if trans_b { "bᵀ" } else { "b" };
        format!("{m}x{n}x{k} {a}·{b} {route}")
    };
    timer.stop(profile::PRODUCTS, label, 2.0 * (m * n * k) as f64);
}

/// [`gemm_raw`]'s work: computes the product on the route its shape and layout take and
/// returns the route's name (`None` for an empty product).
///
/// # Safety
/// As [`gemm_raw`].
unsafe fn gemm_routed(
    [m, n, k]: [usize; 3],
    (a, trans_a): (&[f32], bool),
    (b, trans_b, b_ld): (&[f32], bool, usize),
    (c, c_ld): (*mut f32, usize),
    accumulate: bool,
    parallel: bool,
) -> Option<&'static str> {
    if m == 0 || n == 0 {
        return None;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                // SAFETY: the caller guarantees `m` rows of `n` initialised values `c_ld`
                // apart when `k == 0`.
                unsafe { std::slice::from_raw_parts_mut(c.add(r * c_ld), n) }.fill(0.0);
            }
        }
        return None;
    }
    if !accumulate && goes_few_columns([m, n, k], trans_a, trans_b, b_ld) {
        // SAFETY: as the caller guarantees for `c`; `b` has no gaps (checked).
        unsafe { few_columns([m, n, k], (a, trans_a), (b, trans_b), (c, c_ld), parallel) };
        return Some("narrow direct, cᵀ");
    }
    if !trans_a && trans_b && !accumulate && c_ld == n && goes_transposed(m, n, k) {
        // SAFETY: as the caller guarantees for `c`; `b_ld` and `k` bound the reads.
        unsafe { gemm_transposed([m, n, k], a, b, b_ld, c, parallel) };
        return Some("gemm crate, cᵀ");
    }
    let padded;
    let wanted_ld = transposed_ld(k);
    let (b, b_ld) = if trans_b && b_ld == k && wanted_ld != k && m >= PAD_MIN_ROWS {
        padded = pad_rows(b, n, k, wanted_ld, parallel);
        (&padded[..], wanted_ld)
    } else {
        (b, b_ld)
    };
    let a_strides = if trans_a {
        (m as isize, 1)
    } else {
        (1, k as isize)
    };
    let b_strides = if trans_b {
        (b_ld as isize, 1)
    } else {
        (1, b_ld as isize)
    };
    // SAFETY: the caller's lengths keep every strided access inside its buffer.
    unsafe {
        crate_gemm(
            [m, n, k],
            c,
            c_ld,
            accumulate,
            (a.as_ptr(), a_strides),
            (b.as_ptr(), b_strides),
            parallel,
        )
    };
    Some("gemm crate")
}

/// The fewest rows of `c` for [`few_columns`].
const FEW_COLUMNS_MIN_ROWS: usize = 1024;

/// The shortest sum for [`few_columns`]: with few steps the transposed copy is most of the
/// work. The 28x28 DCGAN's 100 -> 12544 weight gradient at batch 64 (12544 x 100 x 64) took
/// 1.7-1.9 ms that way in its step against 0.53-0.55 on the crate (`gantry bench --profile`).
const FEW_COLUMNS_MIN_SUM: usize = 512;

/// Whether `c [m, n] = op(a) · op(b)` goes through [`few_columns`]: `c` with 16 to 128 columns
/// and at least [`FEW_COLUMNS_MIN_ROWS`] rows, sums of [`FEW_COLUMNS_MIN_SUM`] steps or more,
/// `a` read transposed (a transposed
/// convolution's or an input gradient's column matrix `wᵀ · x` of a small map at batch 1: 8192
/// x 64 for a U-Net's 1024 channels on 8x8) and `cᵀ` taking the narrow products' direct route.
/// Inside a pix2pix 256 step (two threads, AVX-512) the `gemm` crate ran these at 55-110
/// GFLOP/s: 8192 x 64 x 1024 in 11.1 ms, 8192 x 16 x 1024 in 4.9; through `cᵀ`, 4.9 and 2.7
/// (and 8192 x 64 x 512 4.9 -> 2.5, 8192 x 16 x 512 2.3 -> 1.5), plus 0.06-0.33 ms for the
/// transposed copy. The few-rows route for `cᵀ` (`a` read as stored) lost to the crate there:
/// 1024 x 64 x 8192 in 5.9 ms against 3.2. On AVX2 (a Zen 3, two threads, each product alone
/// against the crate, best of 20) the route gained on sums of 512 (8192 x 64 x 512 7.6 -> 6.0
/// ms, 8192 x 16 x 512 3.2 -> 2.6) and lost on sums of 1024 (14.6 -> 15.6, 7.6 -> 9.7): it is
/// taken on AVX-512 only.
fn goes_few_columns([m, n, k]: [usize; 3], trans_a: bool, trans_b: bool, b_ld: usize) -> bool {
    let gapless = b_ld == if trans_b { k } else { n };
    crate::simd::active() == crate::simd::Level::Avx512
        && m >= FEW_COLUMNS_MIN_ROWS
        && k >= FEW_COLUMNS_MIN_SUM
        && gapless
        && crate::matmul_narrow::route([n, m, k], !trans_a) == Some(Route::Direct)
}

/// `c = op(a) · op(b)` as `cᵀ = op(b)ᵀ · op(a)ᵀ` on the narrow products' direct route, then
/// transposed into `c`. Each value is the direct route's single chain of fused multiply-adds
/// in order: the bits depend neither on the thread count nor on the other columns.
///
/// # Safety
/// As [`gemm_raw`]'s, with `b` gapless.
unsafe fn few_columns(
    [m, n, k]: [usize; 3],
    (a, trans_a): (&[f32], bool),
    (b, trans_b): (&[f32], bool),
    (c, c_ld): (*mut f32, usize),
    parallel: bool,
) {
    let ct = crate::matmul_narrow::product(
        Route::Direct,
        [n, m, k],
        (b, !trans_b),
        (a, !trans_a),
        parallel,
    );
    // SAFETY: `ct` holds `n` rows of `m` values and `c` `m` rows of `n` writable values
    // `c_ld` apart.
    unsafe { crate::microkernel::transpose((ct.as_ptr(), m), [n, m], (c, c_ld)) };
}

/// Whether `c [m, n] = a [m, k] · b [n, k]ᵀ` (both operands read along `k`) goes through
/// [`gemm_transposed`]. The `gemm` crate runs such a product far below its peak when `c` is
/// short and wide (a weight gradient with few output channels, a linear layer's forward pass
/// on a batch of 64), and at its peak as `cᵀ` with the operands' roles exchanged. Measured on
/// AVX-512 (one thread / two): 64 x 1024 x 4096 at 64 / 75 GFLOP/s plainly and 89 / 134 through
/// `cᵀ`; 128 x 1152 x 4096 (a 3x3 convolution's weight gradient) 79 / 135 and 95 / 148. With
/// `m` at 256 or more, or `n` under 8 `m`, the plain route was as fast or faster (512 x 4096 x
/// 1024: 102 / 190 against 98 / 153), and for `m` of 128 too when `k` is short (the copy of `cᵀ`
/// into `c` is then a larger share).
fn goes_transposed(m: usize, n: usize, k: usize) -> bool {
    (16..=128).contains(&m) && n >= 8 * m && (m <= 64 || k >= 1024)
}

/// `c [m, n] = a [m, k] · b [n, k]ᵀ` computed as `cᵀ = b · aᵀ` into a scratch buffer and
/// copied into `c`. Each value of `c` is the same sum over `k` in the same order as the plain
/// route's, so the bits are the same (unit test). Not for accumulating products: the crate
/// adds `c`'s old value in partway through the sum, so `c + cᵀ`'s copy would round otherwise.
///
/// # Safety
/// As [`gemm_raw`]: `c` points to `m * n` writable values that alias neither input; `b`'s `n`
/// rows of `k` values are `b_ld` apart.
unsafe fn gemm_transposed(
    [m, n, k]: [usize; 3],
    a: &[f32],
    b: &[f32],
    b_ld: usize,
    c: *mut f32,
    parallel: bool,
) {
    let mut ct = Scratch::dirty(n * m);
    // SAFETY: `ct` holds `n * m` values; `b` is `n` rows `b_ld` apart, `a` is `m` rows of `k`.
    unsafe {
        crate_gemm(
            [n, m, k],
            ct.as_mut_ptr(),
            m,
            false,
            (b.as_ptr(), (1, b_ld as isize)),
            (a.as_ptr(), (k as isize, 1)),
            parallel,
        )
    };
    // SAFETY: the caller gives `m * n` writable values; as `MaybeUninit` they need not be
    // initialised, and `transpose_into` writes every one.
    let c = unsafe { std::slice::from_raw_parts_mut(c.cast::<MaybeUninit<f32>>(), m * n) };
    transpose_into(&ct, n, m, c);
}

/// Writes the `[cols, rows]` transpose of the row-major `[rows, cols]` matrix `m` into `out`, in
/// tiles of 8 x 8: one cache line of each side, and few enough lines that a power-of-two stride
/// (thousands of columns apart, all in one cache set) does not evict them before they are used.
pub(crate) fn transpose_into(m: &[f32], rows: usize, cols: usize, out: &mut [MaybeUninit<f32>]) {
    const TILE: usize = 8;
    for i0 in (0..rows).step_by(TILE) {
        for j0 in (0..cols).step_by(TILE) {
            for j in j0..(j0 + TILE).min(cols) {
                for i in i0..(i0 + TILE).min(rows) {
                    out[j * rows + i].write(m[i * cols + j]);
                }
            }
        }
    }
}

/// In how many parts of rows, one per thread, a product the crate would run on one thread (too
/// few outputs for its own split: [`long_product_with_few_outputs`]) goes on the pool instead,
/// or `None`. Only products the crate treats as small (`m` and `n` at most 64: its sum is then
/// blocked in runs of 512 whatever `m`) and whose parts stay clear of its other small-product
/// kernels (at least two rows and more than 256 outputs each), so that every value is the same
/// sum in the same order as in the whole product: the same bits (unit test). A first layer's
/// weight gradient (64 x 48 outputs summed over 65,536 columns in a 64x64 DCGAN) ran on one of
/// two threads.
fn row_parts(m: usize, n: usize, k: usize) -> Option<usize> {
    if !long_product_with_few_outputs(m, n, k) || m > 64 || !(2..=64).contains(&n) {
        return None;
    }
    let parts = num_threads().min(m / 2);
    if parts < 2 {
        return None;
    }
    let last = m.checked_sub((parts - 1) * m.div_ceil(parts))?;
    (last >= 2 && last * n > 256).then_some(parts)
}

/// The longest sum [`short_sum_parts`] splits: a weight gradient over a batch of up to 128.
const SHORT_SUM: usize = 128;

/// In how many parts of rows, one per thread, a product with a short sum (a fully connected
/// layer's weight gradient, summed over its batch) goes on the pool instead of through the
/// crate's own split, or `None`. 784 x 1024 summed over 64, AVX-512: 486 µs on one thread,
/// 274 on two through the crate's split, yet two one-thread copies side by side took 489 each:
/// the split, not the machine, lost the 12%. The sum fits in one of the crate's blocks, so each
/// value is the same chain in any part (unit test), and parts keep at least 128 rows, clear of
/// its small-product kernels.
fn short_sum_parts(m: usize, n: usize, k: usize) -> Option<usize> {
    let parts = num_threads();
    (parts > 1 && k <= SHORT_SUM && n >= 64 && m / parts >= 128).then_some(parts)
}

/// One call of the `gemm` crate: `c [m, n]` (row-major, rows `c_ld` apart) `(+)= a · b`, each
/// operand given as its pointer and its (column, row) strides.
///
/// # Safety
/// The strides keep every access inside the operands' buffers; `c` aliases neither and is
/// initialised when `accumulate`.
unsafe fn crate_gemm(
    [m, n, k]: [usize; 3],
    c: *mut f32,
    c_ld: usize,
    accumulate: bool,
    (a, (a_cs, a_rs)): (*const f32, (isize, isize)),
    (b, (b_cs, b_rs)): (*const f32, (isize, isize)),
    parallel: bool,
) {
    let parts = parallel.then(|| row_parts(m, n, k).or_else(|| short_sum_parts(m, n, k)));
    if let Some(parts) = parts.flatten() {
        // Addresses, not pointers, cross into the pool; each part writes its own rows of `c`.
        let (c_at, a_at, b_at) = (c as usize, a as usize, b as usize);
        let per = m.div_ceil(parts);
        map_range(parts, |p| {
            let (r0, r1) = (p * per, ((p + 1) * per).min(m));
            // SAFETY: rows `r0..r1` of `c` and of `a` lie inside the caller's matrices, and
            // the parts' rows of `c` are disjoint.
            unsafe {
                crate_gemm(
                    [r1 - r0, n, k],
                    (c_at as *mut f32).add(r0 * c_ld),
                    c_ld,
                    accumulate,
                    (
                        (a_at as *const f32).offset(r0 as isize * a_rs),
                        (a_cs, a_rs),
                    ),
                    (b_at as *const f32, (b_cs, b_rs)),
                    false,
                )
            }
        });
        return;
    }
    let par = if parallel {
        gemm_parallelism(m, n, k)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: forwarded from the caller.
    unsafe {
        call_crate(
            [m, n, k],
            (c, c_ld as isize, 1),
            accumulate,
            (a, a_rs, a_cs),
            (b, b_rs, b_cs),
            par,
        )
    }
}

/// The one call of `gemm::gemm`: `c (+)= a · b`, each matrix as its pointer and its (row,
/// column) strides, with `par` the crate's threading.
///
/// # Safety
/// As [`gemm_strided`].
unsafe fn call_crate(
    [m, n, k]: [usize; 3],
    (c, c_rs, c_cs): (*mut f32, isize, isize),
    accumulate: bool,
    (a, a_rs, a_cs): (*const f32, isize, isize),
    (b, b_rs, b_cs): (*const f32, isize, isize),
    par: gemm::Parallelism,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m, n, k, c, c_cs, c_rs, accumulate, a, a_cs, a_rs, b, b_cs, b_rs, 1.0, 1.0, false,
            false, false, par,
        );
    }
}

/// One product of the `gemm` crate on the calling thread, on strided operands: `c [m, n]
/// (+)= a [m, k] · b [k, n]`, each matrix given as its pointer and its (row, column) strides.
/// For layouts no other entry point covers (the convolutions through taps, `conv_taps`); the
/// crate blocks the sum by the shapes alone, so the bits do not depend on where it runs.
///
/// # Safety
/// The strides keep every access inside the operands' buffers; `c` aliases neither and is
/// initialised when `accumulate`.
pub(crate) unsafe fn gemm_strided(
    [m, n, k]: [usize; 3],
    (c, c_rs, c_cs): (*mut f32, usize, usize),
    accumulate: bool,
    (a, a_rs, a_cs): (*const f32, usize, usize),
    (b, b_rs, b_cs): (*const f32, usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        call_crate(
            [m, n, k],
            (c, c_rs as isize, c_cs as isize),
            accumulate,
            (a, a_rs as isize, a_cs as isize),
            (b, b_rs as isize, b_cs as isize),
            gemm::Parallelism::None,
        )
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
                let mut y = y;
                let b = b.as_slice();
                for row in y.as_mut_slice().chunks_exact_mut(ws[0]) {
                    row.iter_mut().zip(b.iter()).for_each(|(y, b)| *y += b);
                }
                y
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
        let narrow = crate::matmul_narrow::route([m, n, k], trans_b);
        let product = |i: usize, parallel: bool| {
            if let Some(route) = narrow {
                let timer = parallel.then(Timer::start);
                let c = crate::matmul_narrow::product(
                    route,
                    [m, n, k],
                    (&a[i * a_step..], trans_a),
                    (&b[i * b_step..], trans_b),
                    parallel,
                );
                if let Some(timer) = timer {
                    stop_product_timer(timer, [m, n, k], trans_a, trans_b, route.name());
                }
                return c;
            }
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
    use super::{crate_gemm, gemm, gemm_ld, gemm_new_ld, goes_transposed, transposed_ld};
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
    fn a_transposed_b_at_an_aliasing_stride_keeps_its_bits() {
        // k a multiple of 256: gemm copies b to rows one cache line further apart. The product
        // must have the bits of the kernel run on b where it lies, and a b laid out by the
        // caller with NaN padding must give them too (the padding is never read).
        for (m, n, k) in [
            (64, 40, 512),
            (8, 17, 256),
            (9, 3, 768),
            (7, 5, 256),
            (33, 1, 512),
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let bt: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.11).cos()).collect();
            let mut unpadded = vec![0.0; m * n];
            // SAFETY: every matrix is as long as its shape and strides say.
            unsafe {
                crate_gemm(
                    [m, n, k],
                    unpadded.as_mut_ptr(),
                    n,
                    false,
                    (a.as_ptr(), (1, k as isize)),
                    (bt.as_ptr(), (k as isize, 1)),
                    false,
                )
            };
            let mut got = vec![0.0; m * n];
            gemm(m, n, k, &a, false, &bt, true, &mut got, false, false);
            assert_eq!(bits(&got), bits(&unpadded), "{m}x{n}x{k}");
            let b_row_major: Vec<f32> = (0..k * n).map(|i| bt[(i % n) * k + i / n]).collect();
            let reference = naive(&a, &b_row_major, m, k, n);
            let worst = got.iter().zip(&reference).map(|(g, r)| (g - r).abs());
            assert!(worst.fold(0.0, f32::max) < 1e-3, "{m}x{n}x{k}");

            let ld = transposed_ld(k);
            assert_eq!(ld, k + 16);
            let mut padded = vec![f32::NAN; n * ld];
            for (row, dst) in bt.chunks(k).zip(padded.chunks_mut(ld)) {
                dst[..k].copy_from_slice(row);
            }
            let laid_out = gemm_new_ld(m, n, k, &a, false, &padded, true, ld, false);
            assert_eq!(
                bits(&laid_out),
                bits(&unpadded),
                "{m}x{n}x{k}, caller's layout"
            );
        }
        assert_eq!(transposed_ld(100), 100);
    }

    #[test]
    fn short_wide_products_through_the_transpose_keep_their_bits() {
        // The crate run plainly on the same operands is the reference: the route through cᵀ
        // must give every bit of it on one thread or the pool, and must not read the padding
        // of a b laid out by the caller (NaN here); accumulating products stay plain.
        for (m, n, k) in [
            (64, 512, 784),
            (16, 131, 40),
            (100, 900, 1030),
            (33, 300, 1024),
        ] {
            assert!(goes_transposed(m, n, k), "{m}x{n}x{k}");
            let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
            let ld = k + 3;
            let mut b = vec![f32::NAN; n * ld];
            for (i, row) in b.chunks_mut(ld).enumerate() {
                for (j, v) in row[..k].iter_mut().enumerate() {
                    *v = ((i * k + j) as f32 * 0.11).cos();
                }
            }
            let start: Vec<f32> = (0..m * n).map(|i| (i as f32 * 0.05).sin()).collect();
            for accumulate in [false, true] {
                let mut plain = start.clone();
                // SAFETY: every matrix is as long as its shape and strides say.
                unsafe {
                    crate_gemm(
                        [m, n, k],
                        plain.as_mut_ptr(),
                        n,
                        accumulate,
                        (a.as_ptr(), (1, k as isize)),
                        (b.as_ptr(), (ld as isize, 1)),
                        false,
                    )
                };
                for parallel in [false, true] {
                    let mut got = start.clone();
                    gemm_ld(
                        m, n, k, &a, false, &b, true, ld, &mut got, n, accumulate, parallel,
                    );
                    let what = format!("{m}x{n}x{k} accumulate {accumulate} parallel {parallel}");
                    let differ = bits(&got)
                        .iter()
                        .zip(bits(&plain))
                        .filter(|(g, p)| *g != p)
                        .count();
                    assert_eq!(differ, 0, "{what}: values with other bits");
                }
            }
            let fresh = gemm_new_ld(m, n, k, &a, false, &b, true, ld, true);
            let dense: Vec<f32> = b.chunks(ld).flat_map(|r| r[..k].to_vec()).collect();
            let b_row_major: Vec<f32> = (0..k * n).map(|i| dense[(i % n) * k + i / n]).collect();
            let reference = naive(&a, &b_row_major, m, k, n);
            let worst = fresh.iter().zip(&reference).map(|(g, r)| (g - r).abs());
            assert!(worst.fold(0.0, f32::max) < 1e-3, "{m}x{n}x{k}");
        }
        assert!(!goes_transposed(256, 4096, 1024) && !goes_transposed(64, 256, 4096));
        assert!(!goes_transposed(128, 2048, 512) && !goes_transposed(1, 8192, 64));
    }

    /// Tall products with few columns, `a` read transposed, go through `cᵀ` on the narrow
    /// direct route: within f32 rounding of the `f64` definition, with `b` either way and `c`
    /// with a stride (the values past each row untouched), the same bits on one thread and
    /// three; a wrong value is caught; other shapes keep their routes.
    #[cfg(feature = "parallel")]
    #[test]
    fn tall_products_with_few_columns_go_through_the_transpose() {
        use super::goes_few_columns;
        use crate::microkernel::tests::values;
        let _steady = crate::simd::level_steady();
        if crate::simd::active() != crate::simd::Level::Avx512 {
            // Without AVX-512 (or capped below it by `GANTRY_SIMD`): the crate's route.
            eprintln!(
                "matmul few columns: no AVX-512 here; the crate's route, nothing else to test"
            );
            assert!(!goes_few_columns([1024, 64, 512], true, false, 64));
            return;
        }
        let on = |threads: usize, f: &(dyn Fn() -> Vec<f32> + Sync)| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
            pool.expect("a pool").install(f)
        };
        for (m, n, k, trans_b) in [
            (1024, 64, 512, false),
            (1100, 17, 600, true),
            (2048, 128, 512, false),
        ] {
            assert!(goes_few_columns(
                [m, n, k],
                true,
                trans_b,
                if trans_b { k } else { n }
            ));
            let (a, b) = (values(k * m, 1), values(k * n, 2));
            let c_ld = n + 5;
            let product = || {
                let mut c = vec![7.0f32; m * c_ld];
                let b_ld = if trans_b { k } else { n };
                gemm_ld(
                    m, n, k, &a, true, &b, trans_b, b_ld, &mut c, c_ld, false, true,
                );
                c
            };
            let (one, three) = (on(1, &product), on(3, &product));
            assert_eq!(bits(&one), bits(&three), "{m}x{n}x{k}");
            let worst = |c: &[f32]| {
                let mut worst = 0.0f64;
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|p| {
                                let bv = if trans_b { b[j * k + p] } else { b[p * n + j] };
                                f64::from(a[p * m + i]) * f64::from(bv)
                            })
                            .sum();
                        worst = worst.max((f64::from(c[i * c_ld + j]) - want).abs());
                    }
                    assert!(c[i * c_ld + n..(i + 1) * c_ld].iter().all(|&v| v == 7.0));
                }
                worst
            };
            assert!(worst(&one) < 1e-3, "{m}x{n}x{k}: {}", worst(&one));
            let mut wrong = one.clone();
            wrong[m / 2 * c_ld + n / 2] += 1e-2;
            assert!(worst(&wrong) > 1e-3, "the check misses a wrong value");
        }
        // Not for `a` as stored, short or wide `c`, too few rows or short sums.
        assert!(!goes_few_columns([12544, 100, 64], true, false, 100));
        assert!(!goes_few_columns([8192, 64, 1024], false, false, 64));
        assert!(!goes_few_columns([8192, 8, 1024], true, false, 8));
        assert!(!goes_few_columns([8192, 256, 1024], true, false, 256));
        assert!(!goes_few_columns([512, 64, 1024], true, false, 64));
    }

    /// Products with few outputs and a long sum, split by rows over two threads, give the bits
    /// of the crate's one-thread product: written and accumulated, either operand transposed,
    /// parts of equal and unequal height.
    #[cfg(feature = "parallel")]
    #[test]
    fn row_parts_and_short_sum_parts_keep_the_one_thread_bits() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            // The split product against the whole one on one thread, layout by layout.
            let keeps_bits = |[m, n, k]: [usize; 3], layouts: &[(bool, bool, bool)]| {
                let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
                let b: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.11).cos()).collect();
                let start: Vec<f32> = (0..m * n).map(|i| (i as f32 * 0.05).sin()).collect();
                for &(trans_a, trans_b, accumulate) in layouts {
                    let mut one = start.clone();
                    let mut split = start.clone();
                    gemm(
                        m, n, k, &a, trans_a, &b, trans_b, &mut one, accumulate, false,
                    );
                    gemm(
                        m, n, k, &a, trans_a, &b, trans_b, &mut split, accumulate, true,
                    );
                    assert_eq!(
                        bits(&one),
                        bits(&split),
                        "{m}x{n}x{k}, trans {trans_a}/{trans_b}, accumulate {accumulate}"
                    );
                }
            };
            for (m, n, k) in [(64, 48, 8192), (64, 25, 12544), (13, 48, 9000)] {
                assert_eq!(super::row_parts(m, n, k), Some(2), "{m}x{n}x{k}");
                let layouts = [
                    (false, true, false),
                    (false, false, true),
                    (true, true, true),
                    (true, false, false),
                ];
                keeps_bits([m, n, k], &layouts);
            }
            for (m, n, k) in [(256, 100, 64), (784, 1024, 64), (300, 70, 128)] {
                assert_eq!(super::short_sum_parts(m, n, k), Some(2), "{m}x{n}x{k}");
                keeps_bits([m, n, k], &[(true, false, false), (false, true, true)]);
            }
            for (m, n, k) in [(255, 100, 64), (784, 63, 64), (784, 1024, 129)] {
                assert_eq!(super::short_sum_parts(m, n, k), None, "{m}x{n}x{k}");
            }
            // Too few rows, too many outputs, or a part under the crate's small kernels.
            let none = [
                (3, 64, 65536),
                (64, 64, 4096),
                (100, 40, 8192),
                (8, 40, 65536),
            ];
            for (m, n, k) in none {
                assert_eq!(super::row_parts(m, n, k), None, "{m}x{n}x{k}");
            }
        });
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    #[should_panic(expected = "gemm: b's rows of 8 values cannot be 4 apart")]
    fn a_stride_shorter_than_a_row_panics() {
        gemm_new_ld(2, 3, 8, &[0.0; 16], false, &[0.0; 32], true, 4, false);
    }

    #[test]
    #[should_panic(expected = "matmul: shapes [2, 3] and [2, 3] do not multiply")]
    fn inner_mismatch_panics() {
        Tensor::zeros(&[2, 3]).matmul(&Tensor::zeros(&[2, 3]));
    }
}
