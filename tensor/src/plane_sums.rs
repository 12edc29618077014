//! Sums over planes side by side: the statistics of batch and instance normalisation.
//!
//! A plane's sum (in `f64`, in index order, so that its bits do not depend on how the work is
//! split) is a chain of dependent additions that alone waits on the adder at every value.
//! [`side_by_side`] runs [`LANES`] planes' chains at once: a block of [`BLOCK`] steps of each
//! plane is transposed into rows of `LANES` values, one row a step, and the sums over a row are
//! one vector operation. Reading the planes in place, value by value a plane apart, the
//! compiler had made gathers and scatters of it: batch norm's moments of a 64 x 128 x 16 x 16
//! batch ran at half a value a cycle (1.16 ms at two threads, 0.50-0.55 this way).

use crate::simd;

/// Planes summed side by side.
pub(crate) const LANES: usize = 16;

/// Steps of each plane transposed at a time (4 KiB of rows for two inputs).
const BLOCK: usize = 32;

/// For `lanes` (1 to [`LANES`]) planes of `s` values, `stride` apart from the start of `a`
/// (and of `b`: the same planes of a second input, or zeros without one), the `K` sums from
/// `zero` over each plane's values in index order of `term(constant, a value, b value)`, with
/// each plane's own `constants[lane]`: `sums[k][lane]`. Lanes from `lanes` on hold sums of
/// stale values, for no one to read.
pub(crate) fn side_by_side<P: Copy, const K: usize>(
    inputs: (&[f32], Option<&[f32]>),
    [lanes, s, stride]: [usize; 3],
    constants: &[P],
    zero: f64,
    term: impl Fn(P, f32, f32) -> [f64; K],
) -> [[f64; LANES]; K] {
    // Lanes past the planes repeat the last plane's constant, unread.
    let constants: [P; LANES] = std::array::from_fn(|l| constants[l.min(lanes - 1)]);
    let sums = [[zero; LANES]; K];
    fold_rows(inputs, [lanes, s, stride], sums, |sums, ra, rb| {
        for (l, (&x, &y)) in ra.iter().zip(rb).enumerate() {
            let t = term(constants[l], x, y);
            for (sum, t) in sums.iter_mut().zip(t) {
                sum[l] += t;
            }
        }
    })
}

/// Folds `lanes` (1 to [`LANES`]) planes of `s` values, `stride` apart from the start of `a`
/// (and of `b`, or zeros without one), into `state` a step at a time, in index order:
/// `step(state, a's row, b's row)` with a row holding the step's value of each plane (lanes from
/// `lanes` on stale). Compiled for the CPU's widest SIMD, `state` owned by the loop so that it
/// stays in registers.
pub(crate) fn fold_rows<S>(
    (a, b): (&[f32], Option<&[f32]>),
    [lanes, s, stride]: [usize; 3],
    state: S,
    step: impl Fn(&mut S, &[f32; LANES], &[f32; LANES]),
) -> S {
    assert!((1..=LANES).contains(&lanes) && s <= stride);
    let end = (lanes - 1) * stride + s;
    assert!(a.len() >= end && b.is_none_or(|b| b.len() >= end));
    simd::widest(
        #[inline(always)]
        || {
            let mut state = state;
            let mut rows_a = [[0.0f32; LANES]; BLOCK];
            let mut rows_b = [[0.0f32; LANES]; BLOCK];
            for i0 in (0..s).step_by(BLOCK) {
                let len = BLOCK.min(s - i0);
                transpose_block(&a[i0..], [lanes, len, stride], &mut rows_a);
                if let Some(b) = b {
                    transpose_block(&b[i0..], [lanes, len, stride], &mut rows_b);
                }
                for (ra, rb) in rows_a[..len].iter().zip(&rows_b[..len]) {
                    step(&mut state, ra, rb);
                }
            }
            state
        },
    )
}

/// Steps `0..len` of `lanes` planes `stride` apart from `src` into `rows`, a row a step, by
/// [`crate::microkernel::transpose`] (through the vector registers on AVX2 and AVX-512).
#[inline(always)]
fn transpose_block(
    src: &[f32],
    [lanes, len, stride]: [usize; 3],
    rows: &mut [[f32; LANES]; BLOCK],
) {
    debug_assert!(len <= BLOCK && src.len() >= (lanes - 1) * stride + len);
    // SAFETY: `src` holds `lanes` rows of `len` values `stride` apart (asserted by
    // `fold_rows`) and `rows` `len` rows of `LANES >= lanes`.
    unsafe {
        crate::microkernel::transpose(
            (src.as_ptr(), stride),
            [lanes, len],
            (rows.as_mut_ptr().cast::<f32>(), LANES),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every plane's sums are its own terms added in index order from `zero`, for any number
    /// of planes, lengths across and short of a block, with and without a second input, and a
    /// term that depends on each plane's constant.
    #[test]
    fn each_lane_is_its_plane_summed_in_order() {
        let values = |len: usize, seed: u32| -> Vec<f32> {
            (0..len as u32)
                .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 7.0 - 140.0)
                .collect()
        };
        for (lanes, s, stride) in [
            (16, 32, 32),
            (16, 77, 80),
            (3, 5, 9),
            (1, 100, 100),
            (9, 33, 40),
        ] {
            let (a, b) = (values(lanes * stride, 1), values(lanes * stride, 2));
            let weight = |l: usize| 1.0 + l as f64 / 3.0;
            let term =
                |l: usize, x: f32, y: f32| [f64::from(x) * weight(l), f64::from(x) * f64::from(y)];
            for with_b in [false, true] {
                // Each plane's constant is its lane, so the term depends on the lane.
                let lane_of: Vec<usize> = (0..lanes).collect();
                let got = side_by_side(
                    (&a, with_b.then_some(&b[..])),
                    [lanes, s, stride],
                    &lane_of,
                    -0.0,
                    term,
                );
                let lanes_got = got[0].iter().zip(&got[1]).take(lanes).enumerate();
                for (l, (&sum, &product)) in lanes_got {
                    let plane = l * stride..l * stride + s;
                    let y = |i: usize| if with_b { b[i] } else { 0.0 };
                    let want: [f64; 2] = std::array::from_fn(|k| {
                        plane
                            .clone()
                            .map(|i| term(l, a[i], y(i))[k])
                            .fold(-0.0, |acc, t| acc + t)
                    });
                    let bits = |v: [f64; 2]| v.map(f64::to_bits);
                    assert_eq!(
                        bits([sum, product]),
                        bits(want),
                        "{lanes} planes of {s} ({stride} apart), lane {l}, second input {with_b}"
                    );
                }
            }
        }
    }
}
