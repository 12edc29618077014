//! The register-blocked AVX-512 kernel behind the packed convolutions and the narrow matrix
//! products: `M` rows of broadcasts times `V` 16-lane vectors, one chain of fused
//! multiply-adds per output value, in the order of the sum; [`avx2`] has its 8-lane
//! counterpart, and [`transpose`] runs at the widest level the CPU has.

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;

/// An output that parallel tasks write through, each its own disjoint part of it.
#[derive(Clone, Copy)]
pub(crate) struct Out(pub(crate) *mut f32);

impl Out {
    /// The address of value `i`.
    ///
    /// # Safety
    /// `i` must lie inside the output.
    pub(crate) unsafe fn at(self, i: usize) -> *mut f32 {
        // SAFETY: the caller's contract.
        unsafe { self.0.add(i) }
    }
}
// SAFETY: the tasks that share an `Out` write disjoint values of it, and nothing reads the
// output until they are done.
unsafe impl Send for Out {}
// SAFETY: as for `Send`.
unsafe impl Sync for Out {}

/// Where a kernel reads its broadcasts: step `k`'s value for row `i`.
#[derive(Clone, Copy)]
// Read only by the x86-64 kernel; elsewhere the routes that build it never run.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum ALayout {
    /// `a[k * lds + i]`: a step's values side by side, steps `lds` apart (`M` when packed).
    Steps(usize),
    /// `a[i * lda + k]`: each row's steps contiguous, `lda` apart (the weight gradient's
    /// receptive fields, packed by runs).
    Rows(usize),
}

/// `c[M, 16 V] (+)= a . b` over `kc` steps of the sum: `a` as `layout` says, `b` `[kc, 16 V]`
/// with its rows `ldb` apart, `c`'s rows `ldc` apart; `c` is read first only where `accumulate`
/// (a later block of the sum), so each value is one chain of fused multiply-adds from zero over
/// every step in order.
///
/// # Safety
/// The CPU must have AVX-512 F; `a`, `b` and `c` must hold what they are said to.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn kernel<const M: usize, const V: usize>(
    a: *const f32,
    layout: ALayout,
    (b, ldb): (*const f32, usize),
    kc: usize,
    (c, ldc): (*mut f32, usize),
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's contract.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); V]; M];
        if accumulate {
            for (i, row) in acc.iter_mut().enumerate() {
                for (v, lane) in row.iter_mut().enumerate() {
                    *lane = _mm512_loadu_ps(c.add(i * ldc + 16 * v));
                }
            }
        }
        // One loop per layout, so that no step chooses its addresses at run time.
        match layout {
            // Packed steps (`M` apart) at a stride the compiler knows: 1-2% faster.
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
                _mm512_storeu_ps(c.add(i * ldc + 16 * v), *lane);
            }
        }
    }
}

/// The steps of [`kernel`]'s sum, step `k`'s broadcast for row `i` read at `at(k, i)`.
///
/// # Safety
/// As [`kernel`]'s.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn steps<const M: usize, const V: usize>(
    acc: &mut [[std::arch::x86_64::__m512; V]; M],
    (b, ldb): (*const f32, usize),
    kc: usize,
    at: impl Fn(usize, usize) -> *const f32,
) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's contract.
    unsafe {
        for k in 0..kc {
            let mut bk = [_mm512_setzero_ps(); V];
            for (v, lane) in bk.iter_mut().enumerate() {
                *lane = _mm512_loadu_ps(b.add(k * ldb + 16 * v));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*at(k, i));
                for (lane, bv) in row.iter_mut().zip(&bk) {
                    *lane = _mm512_fmadd_ps(ai, *bv, *lane);
                }
            }
        }
    }
}

/// Writes the transpose of the `[rows, cols]` matrix at `src` (rows `lds` apart) to `dst`
/// (`[cols, rows]`, rows `ldd` apart): in 16 x 16 blocks through the vector registers on
/// AVX-512 (three rounds of shuffles, a quarter of a shuffle a value), 8 x 8 blocks on AVX2
/// ([`avx2::transpose`]), value by value elsewhere. The blocks at the edges load and store
/// under masks, as fast as whole ones (value by value they had taken 70% of the transposes of
/// an MLP's narrow products, whose tiles are a multiple of 6 rows).
///
/// # Safety
/// `src` holds `rows` rows of `cols` readable values `lds` apart and `dst` `cols` rows of
/// `rows` writable values `ldd` apart, not overlapping `src`.
pub(crate) unsafe fn transpose(
    (src, lds): (*const f32, usize),
    [rows, cols]: [usize; 2],
    (dst, ldd): (*mut f32, usize),
) {
    #[cfg(target_arch = "x86_64")]
    match crate::simd::active() {
        // SAFETY: the level is the CPU's or below it; the rest is the caller's contract.
        crate::simd::Level::Avx512 => {
            return unsafe { transpose_avx512((src, lds), [rows, cols], (dst, ldd)) };
        }
        // SAFETY: as above.
        crate::simd::Level::Avx2 => {
            return unsafe { avx2::transpose((src, lds), [rows, cols], (dst, ldd)) };
        }
        crate::simd::Level::Baseline => {}
    }
    for i in 0..rows {
        for j in 0..cols {
            // SAFETY: the caller's contract.
            unsafe { *dst.add(j * ldd + i) = *src.add(i * lds + j) };
        }
    }
}

/// [`transpose`] in 16 x 16 blocks.
///
/// # Safety
/// The CPU must have AVX-512 F; otherwise as [`transpose`]'s.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_avx512(
    (src, lds): (*const f32, usize),
    [rows, cols]: [usize; 2],
    (dst, ldd): (*mut f32, usize),
) {
    // SAFETY: the caller's contract; each block stays inside `rows` x `cols`.
    unsafe {
        for i in (0..rows).step_by(16) {
            for j in (0..cols).step_by(16) {
                let (from, to) = (src.add(i * lds + j), dst.add(j * ldd + i));
                let [r, c] = [16.min(rows - i), 16.min(cols - j)];
                if r == 16 && c == 16 {
                    transpose16::<true>((from, lds), [r, c], (to, ldd));
                } else {
                    transpose16::<false>((from, lds), [r, c], (to, ldd));
                }
            }
        }
    }
}

/// One block of [`transpose_avx512`]: `[rows, cols]` of at most 16 x 16, all of it when `WHOLE`.
///
/// # Safety
/// As [`transpose`]'s for the block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose16<const WHOLE: bool>(
    (src, lds): (*const f32, usize),
    [rows, cols]: [usize; 2],
    (dst, ldd): (*mut f32, usize),
) {
    use std::arch::x86_64::*;
    // Lanes `0..n` of a vector.
    let lanes = |n: usize| ((1u32 << n) - 1) as __mmask16;
    // SAFETY: the caller's contract; masked loads and stores touch only the block's values.
    unsafe {
        let r: [__m512; 16] = std::array::from_fn(|i| {
            if WHOLE {
                _mm512_loadu_ps(src.add(i * lds))
            } else if i < rows {
                _mm512_maskz_loadu_ps(lanes(cols), src.add(i * lds))
            } else {
                _mm512_setzero_ps()
            }
        });
        // Per group of four rows `g` and 128-bit lane: `u[g][c]` holds column `c` (and
        // `c + 4`, `c + 8`, `c + 12` in the other lanes) of those four rows.
        let u: [[__m512; 4]; 4] = std::array::from_fn(|g| {
            let lo01 = _mm512_unpacklo_ps(r[4 * g], r[4 * g + 1]);
            let hi01 = _mm512_unpackhi_ps(r[4 * g], r[4 * g + 1]);
            let lo23 = _mm512_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]);
            let hi23 = _mm512_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
            [
                _mm512_shuffle_ps::<0x44>(lo01, lo23),
                _mm512_shuffle_ps::<0xEE>(lo01, lo23),
                _mm512_shuffle_ps::<0x44>(hi01, hi23),
                _mm512_shuffle_ps::<0xEE>(hi01, hi23),
            ]
        });
        let by_column: [[__m512; 4]; 4] = std::array::from_fn(|c| std::array::from_fn(|g| u[g][c]));
        let column = |j: usize, v: __m512| {
            if WHOLE {
                _mm512_storeu_ps(dst.add(j * ldd), v)
            } else if j < cols {
                _mm512_mask_storeu_ps(dst.add(j * ldd), lanes(rows), v)
            }
        };
        for (c, [g0, g1, g2, g3]) in by_column.into_iter().enumerate() {
            // Lanes 0 and 2 (columns c, c + 8), then 1 and 3 (c + 4, c + 12) of rows 0-7 and
            // of rows 8-15, then those halves side by side.
            let even01 = _mm512_shuffle_f32x4::<0x88>(g0, g1);
            let odd01 = _mm512_shuffle_f32x4::<0xDD>(g0, g1);
            let even23 = _mm512_shuffle_f32x4::<0x88>(g2, g3);
            let odd23 = _mm512_shuffle_f32x4::<0xDD>(g2, g3);
            column(c, _mm512_shuffle_f32x4::<0x88>(even01, even23));
            column(c + 8, _mm512_shuffle_f32x4::<0xDD>(even01, even23));
            column(c + 4, _mm512_shuffle_f32x4::<0x88>(odd01, odd23));
            column(c + 12, _mm512_shuffle_f32x4::<0xDD>(odd01, odd23));
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) unsafe fn kernel<const M: usize, const V: usize>(
    _: *const f32,
    _: ALayout,
    _: (*const f32, usize),
    _: usize,
    _: (*mut f32, usize),
    _: bool,
) {
    unreachable!("the packed kernels run only on x86-64")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::simd::Level;

    /// `len` values in [-1, 1], spread by `seed`.
    pub(crate) fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    /// Whether this CPU runs the AVX-512 kernels; says so for `module`'s tests when not, which
    /// then check nothing.
    pub(crate) fn avx512_here(module: &str) -> bool {
        let here = Level::detected() == Level::Avx512;
        if !here {
            eprintln!("{module}: this CPU has no AVX-512; its kernels do not run here");
        }
        here
    }

    /// At every level the machine has (16 x 16 blocks, 8 x 8 blocks, value by value).
    #[test]
    fn transpose_moves_every_value_to_its_place() {
        // Whole blocks, blocks cut short in rows, columns or both (masked), and nothing.
        let shapes = [
            (16, 16),
            (64, 130),
            (37, 64),
            (30, 64),
            (5, 3),
            (48, 17),
            (17, 15),
            (8, 8),
            (13, 7),
        ];
        let levels = crate::simd::at_each_level(|| {
            for (rows, cols) in shapes
                .into_iter()
                .chain([(1, 16), (16, 1), (33, 47), (0, 9)])
            {
                let (lds, ldd) = (cols + 3, rows + 5);
                let src: Vec<f32> = (0..rows * lds).map(|i| i as f32).collect();
                let mut dst = vec![-1.0f32; cols * ldd];
                // SAFETY: the buffers hold the matrices with their strides.
                unsafe { transpose((src.as_ptr(), lds), [rows, cols], (dst.as_mut_ptr(), ldd)) };
                for j in 0..cols {
                    for i in 0..ldd {
                        let want = if i < rows { src[i * lds + j] } else { -1.0 };
                        let level = crate::simd::active();
                        assert_eq!(
                            dst[j * ldd + i],
                            want,
                            "{level}: [{rows}, {cols}] at ({i}, {j})"
                        );
                    }
                }
            }
        });
        assert_eq!(levels.len(), Level::available().len());
    }
}
