//! The AVX2 counterparts of the kernel and the transpose, for CPUs without AVX-512: 8-lane
//! vectors in 16 registers. Each value is the same chain of fused multiply-adds in the same
//! order as on AVX-512, so the narrow products give the same bits at either level (tested).

use super::ALayout;
use std::arch::x86_64::*;

/// `c[M, 8 V] (+)= a . b` over `kc` steps, as [`super::kernel`] with 8-lane vectors: `M x V`
/// accumulators, `V` loads and a broadcast must fit the 16 registers (6 x 2 does).
///
/// # Safety
/// The CPU must have AVX2 and FMA; `a`, `b` and `c` must hold what they are said to.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn kernel<const M: usize, const V: usize>(
    a: *const f32,
    layout: ALayout,
    (b, ldb): (*const f32, usize),
    kc: usize,
    (c, ldc): (*mut f32, usize),
    accumulate: bool,
) {
    // SAFETY: the caller's contract.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); V]; M];
        if accumulate {
            for (i, row) in acc.iter_mut().enumerate() {
                for (v, lane) in row.iter_mut().enumerate() {
                    *lane = _mm256_loadu_ps(c.add(i * ldc + 8 * v));
                }
            }
        }
        match layout {
            ALayout::Steps(lds) if lds == M => {
                steps(&mut acc, (b, ldb), kc, |k, i| a.add(k * M + i))
            }
            ALayout::Steps(lds) => steps(&mut acc, (b, ldb), kc, |k, i| a.add(k * lds + i)),
            ALayout::Rows(lda) => {
                let mut starts = [a; M];
                for (i, start) in starts.iter_mut().enumerate() {
                    *start = a.add(i * lda);
                }
                steps(&mut acc, (b, ldb), kc, |k, i| starts[i].add(k))
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (v, lane) in row.iter().enumerate() {
                _mm256_storeu_ps(c.add(i * ldc + 8 * v), *lane);
            }
        }
    }
}

/// The steps of [`kernel`]'s sum, step `k`'s broadcast for row `i` read at `at(k, i)`.
///
/// # Safety
/// As [`kernel`]'s.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn steps<const M: usize, const V: usize>(
    acc: &mut [[__m256; V]; M],
    (b, ldb): (*const f32, usize),
    kc: usize,
    at: impl Fn(usize, usize) -> *const f32,
) {
    // SAFETY: the caller's contract.
    unsafe {
        for k in 0..kc {
            let mut bk = [_mm256_setzero_ps(); V];
            for (v, lane) in bk.iter_mut().enumerate() {
                *lane = _mm256_loadu_ps(b.add(k * ldb + 8 * v));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm256_broadcast_ss(&*at(k, i));
                for (lane, bv) in row.iter_mut().zip(&bk) {
                    *lane = _mm256_fmadd_ps(ai, *bv, *lane);
                }
            }
        }
    }
}

/// Lane masks for `_mm256_maskload_ps` and `_mm256_maskstore_ps`: the 8 values from `8 - n`
/// select lanes `0..n`.
static MASKS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

/// [`super::transpose`] in 8 x 8 blocks through the vector registers, the blocks at the edges
/// under masks.
///
/// # Safety
/// The CPU must have AVX2; otherwise as [`super::transpose`]'s.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn transpose(
    (src, lds): (*const f32, usize),
    [rows, cols]: [usize; 2],
    (dst, ldd): (*mut f32, usize),
) {
    // SAFETY: the caller's contract; each block stays inside `rows` x `cols`.
    unsafe {
        for i in (0..rows).step_by(8) {
            for j in (0..cols).step_by(8) {
                let (from, to) = (src.add(i * lds + j), dst.add(j * ldd + i));
                let [r, c] = [8.min(rows - i), 8.min(cols - j)];
                if r == 8 && c == 8 {
                    transpose8::<true>((from, lds), [r, c], (to, ldd));
                } else {
                    transpose8::<false>((from, lds), [r, c], (to, ldd));
                }
            }
        }
    }
}

/// One block of [`transpose`]: `[rows, cols]` of at most 8 x 8, all of it when `WHOLE`.
///
/// # Safety
/// As [`transpose`]'s for the block.
#[target_feature(enable = "avx2")]
unsafe fn transpose8<const WHOLE: bool>(
    (src, lds): (*const f32, usize),
    [rows, cols]: [usize; 2],
    (dst, ldd): (*mut f32, usize),
) {
    // SAFETY: the caller's contract; masked loads and stores touch only the block's values,
    // and the masks' 8 values lie in `MASKS`.
    unsafe {
        let lanes = |n: usize| _mm256_loadu_si256(MASKS[8 - n..].as_ptr().cast::<__m256i>());
        let load_mask = lanes(cols);
        let r: [__m256; 8] = std::array::from_fn(|i| {
            if WHOLE {
                _mm256_loadu_ps(src.add(i * lds))
            } else if i < rows {
                _mm256_maskload_ps(src.add(i * lds), load_mask)
            } else {
                _mm256_setzero_ps()
            }
        });
        // Per group of four rows `g`: `s[g][c]` holds column `c` of those rows in its low
        // half and column `c + 4` in its high half.
        let s: [[__m256; 4]; 2] = std::array::from_fn(|g| {
            let lo01 = _mm256_unpacklo_ps(r[4 * g], r[4 * g + 1]);
            let hi01 = _mm256_unpackhi_ps(r[4 * g], r[4 * g + 1]);
            let lo23 = _mm256_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]);
            let hi23 = _mm256_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
            [
                _mm256_shuffle_ps::<0x44>(lo01, lo23),
                _mm256_shuffle_ps::<0xEE>(lo01, lo23),
                _mm256_shuffle_ps::<0x44>(hi01, hi23),
                _mm256_shuffle_ps::<0xEE>(hi01, hi23),
            ]
        });
        let store_mask = lanes(rows);
        let column = |j: usize, v: __m256| {
            if WHOLE {
                _mm256_storeu_ps(dst.add(j * ldd), v)
            } else if j < cols {
                _mm256_maskstore_ps(dst.add(j * ldd), store_mask, v)
            }
        };
        let [top, bottom] = s;
        for (c, (low, high)) in top.into_iter().zip(bottom).enumerate() {
            column(c, _mm256_permute2f128_ps::<0x20>(low, high));
            column(c + 4, _mm256_permute2f128_ps::<0x31>(low, high));
        }
    }
}
