//! Property tests of the reductions (`sum_axes`, `mean_axes`, `max_axes` over random axis
//! subsets given in any order, with and without `keepdim`) and of `sum_to`, the gradient of
//! broadcasting.

use gantry_tensor::Tensor;
mod prop_config;

use prop_config::config;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The reference reduction: visits every input element and folds it into the output element
/// whose index is the input's with the reduced axes removed (or set to 0 with `keepdim`).
/// Returns the output shape, the `f64` sums, the maxima and the sums of magnitudes.
fn reference(
    x: &Tensor,
    axes: &[usize],
    keepdim: bool,
) -> (Vec<usize>, Vec<f64>, Vec<f32>, Vec<f64>) {
    let shape = x.shape();
    let reduced = |i: usize| axes.contains(&i);
    let out_shape: Vec<usize> = (0..shape.len())
        .filter_map(|i| match (reduced(i), keepdim) {
            (false, _) => Some(shape[i]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    let kept: Vec<usize> = (0..shape.len()).filter(|&i| !reduced(i)).collect();
    let out_len: usize = kept.iter().map(|&i| shape[i]).product();
    let mut sums = vec![0.0f64; out_len];
    let mut mags = vec![0.0f64; out_len];
    let mut maxs = vec![f32::NEG_INFINITY; out_len];
    for (flat, &v) in x.to_vec().iter().enumerate() {
        // Unravel the input index, then ravel its kept axes.
        let mut rest = flat;
        let mut idx = vec![0; shape.len()];
        for i in (0..shape.len()).rev() {
            idx[i] = rest % shape[i];
            rest /= shape[i];
        }
        let o = kept.iter().fold(0, |acc, &i| acc * shape[i] + idx[i]);
        sums[o] += f64::from(v);
        mags[o] += f64::from(v).abs();
        maxs[o] = maxs[o].max(v);
    }
    (out_shape, sums, maxs, mags)
}

/// A random shape (rank 1 to 4, lengths 1 to 5), a random subset of its axes in random order,
/// `keepdim`, and a seed for the values.
fn reduce_case() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, bool, u64)> {
    (
        prop::collection::vec(1usize..=5, 1..=4),
        any::<u64>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(shape, pick, keepdim, seed)| {
            let mut rng = ChaCha8Rng::seed_from_u64(pick);
            let mut axes: Vec<usize> = (0..shape.len()).filter(|_| rng.random_bool(0.5)).collect();
            axes.shuffle(&mut rng);
            (shape, axes, keepdim, seed)
        })
}

/// Checks `sum_axes`, `mean_axes` and `max_axes` of `x` over `axes` against the reference.
fn check_reductions(x: &Tensor, axes: &[usize], keepdim: bool) -> Result<(), TestCaseError> {
    let (shape, sums, maxs, mags) = reference(x, axes, keepdim);
    let count: usize = axes.iter().map(|&a| x.shape()[a]).product();
    let sum = x.sum_axes(axes, keepdim);
    let mean = x.mean_axes(axes, keepdim);
    let max = x.max_axes(axes, keepdim);
    for t in [&sum, &mean, &max] {
        prop_assert_eq!(
            t.shape(),
            &shape[..],
            "reducing {:?} over {:?}",
            x.shape(),
            axes
        );
    }
    // The crate sums in f64 too, in another order: the results may differ by the final
    // rounding to f32 (half an ulp) plus the f64 reordering (negligible); mean adds a product.
    let eps = f64::from(f32::EPSILON);
    let (sum, mean, max) = (sum.to_vec(), mean.to_vec(), max.to_vec());
    for (i, ((&s, &m), &mag)) in sums.iter().zip(&maxs).zip(&mags).enumerate() {
        let got_sum = f64::from(sum[i]);
        prop_assert!(
            (got_sum - s).abs() <= eps * s.abs() + 1e-12 * mag,
            "sum {}: {} vs {}",
            i,
            got_sum,
            s
        );
        let want_mean = s / count as f64;
        let got_mean = f64::from(mean[i]);
        prop_assert!(
            (got_mean - want_mean).abs() <= 2.0 * eps * want_mean.abs() + 1e-12 * mag,
            "mean {}: {} vs {}",
            i,
            got_mean,
            want_mean
        );
        prop_assert_eq!(max[i].to_bits(), m.to_bits(), "max {}", i);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    /// Sums, means and maxima over any subset of axes, in any order, equal the reference.
    #[test]
    fn reductions_match_reference((shape, axes, keepdim, seed) in reduce_case()) {
        let x = Tensor::rand_uniform(&shape, -4.0, 4.0, &mut ChaCha8Rng::seed_from_u64(seed));
        check_reductions(&x, &axes, keepdim)?;
    }

    /// `sum_to` undoes a broadcast: broadcasting `x` to a larger shape (new leading axes,
    /// stretched length-1 axes) and summing back gives `x` times the number of copies. The values
    /// are small integers, so the sums are exact and the comparison is exact.
    #[test]
    fn sum_to_inverts_broadcast(
        target in prop::collection::vec(prop_oneof![Just(1usize), 1usize..=4], 0..=3),
        lead in prop::collection::vec(1usize..=3, 0..=2),
        stretch in prop::collection::vec(1usize..=3, 3),
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n: usize = target.iter().product();
        let x = Tensor::from_vec(&target, (0..n).map(|_| rng.random_range(-8i32..=8) as f32).collect());
        let mut big = lead.clone();
        big.extend(target.iter().zip(&stretch).map(|(&d, &s)| if d == 1 { s } else { d }));
        let broadcast = x.add(&Tensor::zeros(&big));
        prop_assert_eq!(broadcast.shape(), &big[..]);
        let copies = (big.iter().product::<usize>() / n.max(1)) as f32;
        let back = broadcast.sum_to(&target);
        prop_assert_eq!(back.shape(), &target[..]);
        prop_assert_eq!(back.to_vec(), x.mul_scalar(copies).to_vec());
    }
}

/// Tensors large enough for the parallel path reduce to the same values.
#[test]
fn large_reductions_match_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let x = Tensor::rand_uniform(&[16, 32, 12, 10], -1.0, 1.0, &mut rng);
    for axes in [&[0, 2, 3][..], &[1], &[3, 0], &[0, 1, 2, 3], &[]] {
        for keepdim in [false, true] {
            check_reductions(&x, axes, keepdim).unwrap();
        }
    }
}

/// `max_axes` lets NaN win, as documented, and the whole-tensor helpers agree with the axes form.
#[test]
fn max_propagates_nan_and_totals_agree() {
    let x = Tensor::from_vec(&[2, 3], vec![1.0, f32::NAN, -2.0, 4.0, 5.0, -6.0]);
    let m = x.max_axes(&[1], false).to_vec();
    assert!(m[0].is_nan() && m[1] == 5.0, "{m:?}");
    let y = Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, 4.5]);
    assert_eq!(y.sum_all(), 10.5);
    assert_eq!(y.mean_all(), 2.625);
}

/// The reductions' error messages name the op and the shape.
#[test]
#[should_panic(expected = "sum_axes: axes [1, 1] invalid for shape [2, 3]")]
fn repeated_axis_panics() {
    Tensor::zeros(&[2, 3]).sum_axes(&[1, 1], false);
}
