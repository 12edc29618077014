//! Every op's backward rule against central finite differences, through the public
//! [`gradcheck`], over random shapes, parameters and values.
//!
//! Inputs are drawn so that a finite difference of step `eps` is meaningful: non-smooth ops see
//! values more than `2 * eps` away from their kinks, `ln`/`sqrt`/`powf` positive values, `div`
//! denominators away from zero, `max_axes` distinct values (no ties), batch norm channels with a
//! real spread. The proptest runner uses a fixed seed and no failure persistence, so a run is
//! reproducible; the inputs are conditioned so that any seed passes, and a wrong rule fails
//! (see `gradcheck_rejects_a_wrong_gradient` for the harness itself, and
//! `gradcheck_controls.rs` for a wrong rule per family and the checker's resolution).

mod common;

use common::{
    away_from, broadcast_pair, check, config, conv_case, distinct, shape, signed, spread_channels,
    uniform,
};
use gantry_autodiff::tensor::{Conv2dParams, ConvTranspose2dParams, Tensor};
use gantry_autodiff::{GradcheckConfig, Reduction, Tape, Var, gradcheck};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The finite-difference step of every property here (the default of [`GradcheckConfig`]).
const EPS: f32 = 1e-2;

/// Kinks are avoided by this much: more than the `2 * EPS` a central difference spans.
const MARGIN: f32 = 3.0 * EPS;

/// The default tolerances with the projection and coordinate choice seeded by the case.
fn cfg(seed: u64) -> GradcheckConfig {
    GradcheckConfig {
        eps: EPS,
        seed,
        ..GradcheckConfig::default()
    }
}

#[test]
fn gradcheck_rejects_a_wrong_gradient() {
    // `detach` hides one of the two uses of x from the tape: the tape says x, the finite
    // difference says 2x. The harness must notice.
    let x = Tensor::from_vec(&[4], vec![0.5, -1.0, 1.5, 2.0]);
    let err = gradcheck(|_, v| v[0].detach().mul(v[0]), &[x], &cfg(0))
        .expect_err("a gradient that misses a use must be rejected");
    assert_eq!(err.input, 0);
    assert!((err.numeric - 2.0 * err.analytic).abs() < 1e-2, "{err}");
}

proptest! {
    #![proptest_config(config(64))]

    // ---------------------------------------------------------------- broadcasting arithmetic

    #[test]
    fn add_broadcasts((sa, sb) in broadcast_pair(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (a, b) = (uniform(&sa, -2.0, 2.0, &mut rng), uniform(&sb, -2.0, 2.0, &mut rng));
        check(|_, v| v[0].add(v[1]), &[a, b], &cfg(seed))?;
    }

    #[test]
    fn sub_broadcasts((sa, sb) in broadcast_pair(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (a, b) = (uniform(&sa, -2.0, 2.0, &mut rng), uniform(&sb, -2.0, 2.0, &mut rng));
        check(|_, v| v[0].sub(v[1]), &[a, b], &cfg(seed))?;
    }

    #[test]
    fn mul_broadcasts((sa, sb) in broadcast_pair(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (a, b) = (uniform(&sa, -2.0, 2.0, &mut rng), uniform(&sb, -2.0, 2.0, &mut rng));
        check(|_, v| v[0].mul(v[1]), &[a, b], &cfg(seed))?;
    }

    #[test]
    fn div_broadcasts((sa, sb) in broadcast_pair(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let a = uniform(&sa, -2.0, 2.0, &mut rng);
        let b = signed(&sb, 0.5, 2.0, &mut rng);
        check(|_, v| v[0].div(v[1]), &[a, b], &cfg(seed))?;
    }

    #[test]
    fn value_used_twice_accumulates(s in shape(3, 4), seed in any::<u64>()) {
        let x = uniform(&s, -2.0, 2.0, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].mul(v[0]).add(v[0]), &[x], &cfg(seed))?;
    }

    // ---------------------------------------------------------------- elementwise math

    #[test]
    fn neg_add_scalar_mul_scalar(s in shape(3, 4), c in -3.0f32..3.0, seed in any::<u64>()) {
        let x = uniform(&s, -2.0, 2.0, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].neg(), std::slice::from_ref(&x), &cfg(seed))?;
        check(|_, v| v[0].add_scalar(c), std::slice::from_ref(&x), &cfg(seed))?;
        check(|_, v| v[0].mul_scalar(c), &[x], &cfg(seed))?;
    }

    #[test]
    fn exp(s in shape(3, 4), seed in any::<u64>()) {
        let x = uniform(&s, -2.0, 2.0, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].exp(), &[x], &cfg(seed))?;
    }

    #[test]
    fn ln_of_positive(s in shape(3, 4), seed in any::<u64>()) {
        let x = uniform(&s, 0.3, 3.0, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].ln(), &[x], &cfg(seed))?;
    }

    #[test]
    fn sqrt_of_positive(s in shape(3, 4), seed in any::<u64>()) {
        let x = uniform(&s, 0.2, 4.0, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].sqrt(), &[x], &cfg(seed))?;
    }

    #[test]
    fn powf_of_positive(s in shape(3, 4), p in -2.0f32..3.0, seed in any::<u64>()) {
        let x = uniform(&s, 0.5, 2.0, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].powf(p), &[x], &cfg(seed))?;
    }

    #[test]
    fn abs_away_from_zero(s in shape(3, 4), seed in any::<u64>()) {
        let x = away_from(&s, -2.0, 2.0, &[0.0], MARGIN, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].abs(), &[x], &cfg(seed))?;
    }

    #[test]
    fn clamp_away_from_bounds(
        s in shape(3, 4),
        lo in -1.0f32..0.0,
        width in 0.5f32..2.0,
        seed in any::<u64>(),
    ) {
        let hi = lo + width;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Inside, below and above the range, so that all three branches are exercised.
        let x = away_from(&s, lo - 1.0, hi + 1.0, &[lo, hi], MARGIN, &mut rng);
        check(|_, v| v[0].clamp(lo, hi), &[x], &cfg(seed))?;
    }

    #[test]
    fn relu_away_from_zero(s in shape(3, 4), seed in any::<u64>()) {
        let x = away_from(&s, -2.0, 2.0, &[0.0], MARGIN, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].relu(), &[x], &cfg(seed))?;
    }

    #[test]
    fn leaky_relu_away_from_zero(s in shape(3, 4), slope in 0.01f32..0.5, seed in any::<u64>()) {
        let x = away_from(&s, -2.0, 2.0, &[0.0], MARGIN, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].leaky_relu(slope), &[x], &cfg(seed))?;
    }

    #[test]
    fn sigmoid_and_tanh(s in shape(3, 4), seed in any::<u64>()) {
        let x = uniform(&s, -3.0, 3.0, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].sigmoid(), std::slice::from_ref(&x), &cfg(seed))?;
        check(|_, v| v[0].tanh(), &[x], &cfg(seed))?;
    }

    #[test]
    fn log_softmax_along_an_axis(s in shape(3, 5), axis in 0usize..3, seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let axis = axis % s.len();
        let x = uniform(&s, -4.0, 4.0, &mut rng);
        check(|_, v| v[0].log_softmax(axis), &[x], &cfg(seed))?;
    }

    #[test]
    fn dropout_with_a_fixed_mask(s in shape(3, 4), p in 0.0f32..0.9, seed in any::<u64>()) {
        let x = uniform(&s, -2.0, 2.0, &mut ChaCha8Rng::seed_from_u64(seed));
        // The generator is created inside `f`, so every evaluation draws the same mask.
        check(
            move |_, v| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 7);
                v[0].dropout(p, &mut rng)
            },
            &[x],
            &cfg(seed),
        )?;
    }

    // ---------------------------------------------------------------- reductions

    #[test]
    fn sum_axes_over_subsets(
        (s, axes) in shape(4, 4).prop_flat_map(|s| {
            let n = s.len();
            (Just(s), prop::sample::subsequence((0..n).collect::<Vec<_>>(), 0..=n))
        }),
        keepdim in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let x = uniform(&s, -2.0, 2.0, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].sum_axes(&axes, keepdim), std::slice::from_ref(&x), &cfg(seed))?;
        check(|_, v| v[0].mean_axes(&axes, keepdim), std::slice::from_ref(&x), &cfg(seed))?;
        check(|_, v| v[0].sum(), std::slice::from_ref(&x), &cfg(seed))?;
        check(|_, v| v[0].mean(), &[x], &cfg(seed))?;
    }

    #[test]
    fn max_axes_of_distinct_values(
        (s, axes) in shape(4, 4).prop_flat_map(|s| {
            let n = s.len();
            (Just(s), prop::sample::subsequence((0..n).collect::<Vec<_>>(), 1..=n))
        }),
        keepdim in any::<bool>(),
        seed in any::<u64>(),
    ) {
        // Neighbouring values differ by at least 0.08 > 2 * EPS: a step never changes the argmax.
        let x = distinct(&s, 0.1, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].max_axes(&axes, keepdim), &[x], &cfg(seed))?;
    }

    // ---------------------------------------------------------------- shape changes

    #[test]
    fn reshape_and_flatten(
        (s, order) in shape(4, 4).prop_flat_map(|s| {
            let n = s.len();
            (Just(s), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        }),
        seed in any::<u64>(),
    ) {
        let x = uniform(&s, -2.0, 2.0, &mut ChaCha8Rng::seed_from_u64(seed));
        // The same sizes in another order: same element count, different layout.
        let target: Vec<usize> = order.iter().map(|&i| s[i]).collect();
        check(|_, v| v[0].reshape(&target), std::slice::from_ref(&x), &cfg(seed))?;
        check(|_, v| v[0].flatten(), &[x], &cfg(seed))?;
    }

    #[test]
    fn permute_and_transpose(
        (s, perm, a, b) in shape(4, 4).prop_flat_map(|s| {
            let n = s.len();
            (Just(s), Just((0..n).collect::<Vec<_>>()).prop_shuffle(), 0..n, 0..n)
        }),
        seed in any::<u64>(),
    ) {
        let x = uniform(&s, -2.0, 2.0, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].permute(&perm), std::slice::from_ref(&x), &cfg(seed))?;
        check(|_, v| v[0].transpose(a, b), &[x], &cfg(seed))?;
    }

    #[test]
    fn slice_axis(
        (s, axis, start, end) in shape(4, 5)
            .prop_flat_map(|s| { let n = s.len(); (Just(s), 0..n) })
            .prop_flat_map(|(s, axis)| { let len = s[axis]; (Just(s), Just(axis), 0..len) })
            .prop_flat_map(|(s, axis, start)| {
                let len = s[axis];
                (Just(s), Just(axis), Just(start), start + 1..=len)
            }),
        seed in any::<u64>(),
    ) {
        let x = uniform(&s, -2.0, 2.0, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].slice_axis(axis, start, end), &[x], &cfg(seed))?;
    }

    #[test]
    fn pad(
        (s, pads) in shape(4, 3).prop_flat_map(|s| {
            let n = s.len();
            (Just(s), prop::collection::vec((0usize..=2, 0usize..=2), 0..=n))
        }),
        value in -1.0f32..1.0,
        seed in any::<u64>(),
    ) {
        let x = uniform(&s, -2.0, 2.0, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].pad(&pads, value), &[x], &cfg(seed))?;
    }

    #[test]
    fn upsample_nearest_and_sum_pool(
        n in 1usize..=2, c in 1usize..=2, h in 1usize..=3, w in 1usize..=3, f in 1usize..=3,
        seed in any::<u64>(),
    ) {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        let x = uniform(&[n, c, h, w], -2.0, 2.0, &mut r);
        let y = uniform(&[n, c, h * f, w * f], -2.0, 2.0, &mut r);
        check(|_, v| v[0].upsample_nearest2d(f), &[x], &cfg(seed))?;
        check(|_, v| v[0].sum_pool2d(f), &[y], &cfg(seed))?;
    }

    #[test]
    fn reflection_pad_and_fold(
        (h, w, pads) in (2usize..=4, 2usize..=4).prop_flat_map(|(h, w)| {
            (Just(h), Just(w), [0..w, 0..w, 0..h, 0..h])
        }),
        seed in any::<u64>(),
    ) {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        let [l, rt, t, b] = pads;
        let x = uniform(&[1, 2, h, w], -2.0, 2.0, &mut r);
        let y = uniform(&[1, 2, h + t + b, w + l + rt], -2.0, 2.0, &mut r);
        check(|_, v| v[0].reflection_pad2d(pads), &[x], &cfg(seed))?;
        check(|_, v| v[0].reflection_pad2d_fold(pads), &[y], &cfg(seed))?;
    }

    #[test]
    fn concat(
        (s, axis, sizes) in shape(4, 3).prop_flat_map(|s| {
            let n = s.len();
            (Just(s), 0..n, prop::collection::vec(1usize..=3, 1..=3))
        }),
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let parts: Vec<Tensor> = sizes
            .iter()
            .map(|&len| {
                let mut part = s.clone();
                part[axis] = len;
                uniform(&part, -2.0, 2.0, &mut rng)
            })
            .collect();
        check(|_, v| Var::concat(v, axis), &parts, &cfg(seed))?;
    }

    // ---------------------------------------------------------------- batch statistics (cheap)

    #[test]
    fn spread_channels_have_a_real_variance(
        s in (1usize..=3, 1usize..=3, 0usize..=2).prop_map(|(n, c, k)| {
            let mut s = vec![n.max(2), c];
            s.extend(std::iter::repeat_n(2, k));
            s
        }),
        seed in any::<u64>(),
    ) {
        // The generator the batch-norm properties rely on: every channel has variance >= 0.3.
        let x = spread_channels(&s, &mut ChaCha8Rng::seed_from_u64(seed));
        let (_, var) = x.channel_moments();
        prop_assert!(var.to_vec().iter().all(|&v| v >= 0.3), "{:?}", var.to_vec());
    }

    // ---------------------------------------------------------------- matrix products

    #[test]
    fn matmul_2d(m in 1usize..=5, k in 1usize..=5, n in 1usize..=5, seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (a, b) = (uniform(&[m, k], -1.0, 1.0, &mut rng), uniform(&[k, n], -1.0, 1.0, &mut rng));
        check(|_, v| v[0].matmul(v[1]), &[a, b], &cfg(seed))?;
    }

    #[test]
    fn matmul_batched(
        batch in shape(2, 3),
        (m, k, n) in (1usize..=4, 1usize..=4, 1usize..=4),
        shared in 0usize..3,
        seed in any::<u64>(),
    ) {
        // shared: 0 both batched, 1 the left operand is one matrix for the whole batch, 2 the
        // right one is (its gradient sums over the batch).
        let with = |rows, cols, own_batch: bool| {
            let mut s = if own_batch { batch.clone() } else { vec![] };
            s.extend([rows, cols]);
            s
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let a = uniform(&with(m, k, shared != 1), -1.0, 1.0, &mut rng);
        let b = uniform(&with(k, n, shared != 2), -1.0, 1.0, &mut rng);
        check(|_, v| v[0].matmul(v[1]), &[a, b], &cfg(seed))?;
    }

    #[test]
    fn linear(n in 1usize..=4, i in 1usize..=5, o in 1usize..=5, bias in any::<bool>(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = uniform(&[n, i], -1.0, 1.0, &mut rng);
        let w = uniform(&[o, i], -1.0, 1.0, &mut rng);
        let b = uniform(&[o], -1.0, 1.0, &mut rng);
        if bias {
            check(|_, v| v[0].linear(v[1], Some(v[2])), &[x, w, b], &cfg(seed))?;
        } else {
            check(|_, v| v[0].linear(v[1], None), &[x, w], &cfg(seed))?;
        }
    }

    // ---------------------------------------------------------------- convolutions

    #[test]
    fn conv2d(c in conv_case(false), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut inputs = vec![
            uniform(&c.input_shape(), -1.0, 1.0, &mut rng),
            uniform(&c.weight_shape(false), -1.0, 1.0, &mut rng),
        ];
        if c.bias {
            inputs.push(uniform(&[c.cout], -1.0, 1.0, &mut rng));
        }
        let p = c.conv_params();
        check(|_, v| v[0].conv2d(v[1], v.get(2).copied(), p), &inputs, &cfg(seed))?;
    }

    #[test]
    fn conv_transpose2d(c in conv_case(true), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut inputs = vec![
            uniform(&c.input_shape(), -1.0, 1.0, &mut rng),
            uniform(&c.weight_shape(true), -1.0, 1.0, &mut rng),
        ];
        if c.bias {
            inputs.push(uniform(&[c.cout], -1.0, 1.0, &mut rng));
        }
        let p = c.transpose_params();
        check(|_, v| v[0].conv_transpose2d(v[1], v.get(2).copied(), p), &inputs, &cfg(seed))?;
    }

    // ---------------------------------------------------------------- batch norm

    #[test]
    fn batch_norm_train(s in bn_shape(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let c = s[1];
        let x = spread_channels(&s, &mut rng);
        let gamma = signed(&[c], 0.5, 1.5, &mut rng);
        let beta = uniform(&[c], -1.0, 1.0, &mut rng);
        check(|_, v| v[0].batch_norm_train(v[1], v[2], 1e-5).y, &[x, gamma, beta], &cfg(seed))?;
    }

    #[test]
    fn batch_norm_eval(s in bn_shape(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let c = s[1];
        let x = uniform(&s, -2.0, 2.0, &mut rng);
        let gamma = signed(&[c], 0.5, 1.5, &mut rng);
        let beta = uniform(&[c], -1.0, 1.0, &mut rng);
        let mean = uniform(&[c], -1.0, 1.0, &mut rng);
        let var = uniform(&[c], 0.5, 2.0, &mut rng);
        check(
            |_, v| v[0].batch_norm_eval(v[1], v[2], &mean, &var, 1e-5),
            &[x, gamma, beta],
            &cfg(seed),
        )?;
    }

    #[test]
    fn instance_norm(
        n in 1usize..=2, c in 1usize..=3, h in 2usize..=3, w in 2usize..=4,
        seed in any::<u64>(),
    ) {
        let x = spread_planes(&[n, c, h, w], &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].instance_norm(1e-5), &[x], &cfg(seed))?;
    }

    #[test]
    fn pixel_norm(
        shape in prop::collection::vec(1usize..=3, 2..=4), seed in any::<u64>(),
    ) {
        // Values away from 0, so that no position's features are all near zero.
        let x = signed(&shape, 0.5, 1.5, &mut ChaCha8Rng::seed_from_u64(seed));
        check(|_, v| v[0].pixel_norm(1e-8), &[x], &cfg(seed))?;
    }

    // ---------------------------------------------------------------- losses

    #[test]
    fn bce_with_logits_soft_targets(s in shape(3, 4), sum in any::<bool>(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let logits = uniform(&s, -4.0, 4.0, &mut rng);
        let target = uniform(&s, 0.0, 1.0, &mut rng);
        let red = reduction(sum);
        // |σ''| <= 1 / (6 √3) < 0.1.
        let third = 0.1 * red.scale(target.len());
        let loss = value_at(&logits, |x| x.bce_with_logits(&target, red));
        let cfg = loss_cfg(seed, loss, third);
        check(|_, v| v[0].bce_with_logits(&target, red), &[logits], &cfg)?;
    }

    #[test]
    fn bce_on_probabilities(s in shape(3, 4), sum in any::<bool>(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Away from 0 and 1, where the logarithms' third derivatives blow up.
        let probs = uniform(&s, 0.15, 0.85, &mut rng);
        let target = uniform(&s, 0.0, 1.0, &mut rng);
        let red = reduction(sum);
        // The term's third derivative in p is 2t/p³ + 2(1-t)/(1-p)³, largest at the step's ends.
        let third = probs
            .to_vec()
            .iter()
            .zip(target.to_vec())
            .map(|(&p, t)| 2.0 * t / (p - EPS).powi(3) + 2.0 * (1.0 - t) / (1.0 - p - EPS).powi(3))
            .fold(0.0f32, f32::max)
            * red.scale(target.len());
        let loss = value_at(&probs, |x| x.bce(&target, red));
        let cfg = loss_cfg(seed, loss, third);
        check(|_, v| v[0].bce(&target, red), &[probs], &cfg)?;
    }

    #[test]
    fn l1_loss_away_from_the_target(s in shape(3, 4), sum in any::<bool>(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let target = uniform(&s, -1.0, 1.0, &mut rng);
        let pred = target.add(&signed(&s, MARGIN, 1.5, &mut rng));
        let red = reduction(sum);
        let loss = value_at(&pred, |x| x.l1_loss(&target, red));
        let cfg = loss_cfg(seed, loss, 0.0);
        check(|_, v| v[0].l1_loss(&target, red), &[pred], &cfg)?;
    }

    #[test]
    fn mse_loss(s in shape(3, 4), sum in any::<bool>(), seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (pred, target) = (uniform(&s, -2.0, 2.0, &mut rng), uniform(&s, -1.0, 1.0, &mut rng));
        let red = reduction(sum);
        let loss = value_at(&pred, |x| x.mse_loss(&target, red));
        let cfg = loss_cfg(seed, loss, 0.0);
        check(|_, v| v[0].mse_loss(&target, red), &[pred], &cfg)?;
    }
}

proptest! {
    #![proptest_config(config(32))]

    #[test]
    fn two_layer_network(
        (n, cin, c1, cout) in (1usize..=2, 1usize..=3, 1usize..=3, 1usize..=2),
        hw in prop::array::uniform2(2usize..=4),
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let inputs = [
            uniform(&[n, cin, hw[0], hw[1]], -1.0, 1.0, &mut rng),
            uniform(&[c1, cin, 3, 3], -0.5, 0.5, &mut rng),
            uniform(&[c1], -0.5, 0.5, &mut rng),
            signed(&[c1], 0.5, 1.5, &mut rng),
            uniform(&[c1], -0.5, 0.5, &mut rng),
            uniform(&[c1, cout, 4, 4], -0.5, 0.5, &mut rng),
            uniform(&[cout], -0.5, 0.5, &mut rng),
        ];
        let target = uniform(&[n, cout, 2 * hw[0], 2 * hw[1]], -0.9, 0.9, &mut rng);
        // Keep the leaky ReLU's inputs out of reach of a step: each pre-activation must be
        // further from 0 than 3 * eps times its largest sensitivity to any single input.
        let tape = Tape::new();
        let vars: Vec<Var> = inputs.iter().map(|x| tape.leaf(x.clone())).collect();
        let (_, var) = vars[0].conv2d(vars[1], Some(vars[2]), Conv2dParams::new(1, 1))
            .value()
            .channel_moments();
        prop_assume!(var.to_vec().iter().all(|&v| v > 0.02), "a channel is nearly constant");
        let h = pre_activation(&vars);
        let hv = h.value().to_vec();
        for (j, &hj) in hv.iter().enumerate() {
            let mut onehot = vec![0.0; hv.len()];
            onehot[j] = 1.0;
            let grads = h.backward_with(Tensor::from_vec(&h.shape(), onehot));
            let sensitivity = vars
                .iter()
                .map(|&v| max_abs(&grads.get_or_zeros(v)))
                .fold(0.0f32, f32::max);
            prop_assume!(hj.abs() > 3.0 * NET_EPS * sensitivity, "a kink within reach");
        }

        // As for the losses: a tight absolute tolerance plus the rounding of the loss over 2 eps.
        let loss = network(&vars, &target).value().item();
        let atol = 1e-4 + f32::EPSILON * loss.abs() / NET_EPS;
        let cfg = GradcheckConfig { eps: NET_EPS, atol, ..cfg(seed) };
        check(|_, v| network(v, &target), &inputs, &cfg)?;
    }
}

/// The finite-difference step of the network property: small, so that few cases are rejected
/// for a kink within reach.
const NET_EPS: f32 = 1e-3;

/// The network's first layer up to its activation: conv 3x3 (stride 1, padding 1, bias) and
/// batch norm with batch statistics. `v` is `[x, w1, b1, gamma, beta, ..]`.
fn pre_activation<'t>(v: &[Var<'t>]) -> Var<'t> {
    v[0].conv2d(v[1], Some(v[2]), Conv2dParams::new(1, 1))
        .batch_norm_train(v[3], v[4], 1e-5)
        .y
}

/// conv 3x3 -> batch norm -> leaky ReLU -> transposed conv 4x4 stride 2 -> tanh -> MSE against
/// `target`. `v` is `[x, w1, b1, gamma, beta, w2, b2]`.
fn network<'t>(v: &[Var<'t>], target: &Tensor) -> Var<'t> {
    pre_activation(v)
        .leaky_relu(0.2)
        .conv_transpose2d(v[5], Some(v[6]), ConvTranspose2dParams::new(2, 1))
        .tanh()
        .mse_loss(target, Reduction::Mean)
}

/// The largest magnitude in `t`.
fn max_abs(t: &Tensor) -> f32 {
    t.to_vec().into_iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// `[N, C, ...]` batch-norm inputs: N 1..=3, C 1..=3, 0..=2 spatial axes of 1..=3, with at
/// least 2 values per channel (a variance to normalise by).
fn bn_shape() -> impl Strategy<Value = Vec<usize>> {
    (
        1usize..=3,
        1usize..=3,
        prop::collection::vec(1usize..=3, 0..=2),
    )
        .prop_map(|(n, c, spatial)| [vec![n, c], spatial].concat())
        .prop_filter("N * spatial >= 2", |s| {
            s[0] * s[2..].iter().product::<usize>() >= 2
        })
}

/// Mean or sum reduction.
fn reduction(sum: bool) -> Reduction {
    if sum { Reduction::Sum } else { Reduction::Mean }
}

/// The scalar `f(x)`, evaluated on a tape of its own.
fn value_at<F>(x: &Tensor, f: F) -> f32
where
    F: for<'t> Fn(Var<'t>) -> Var<'t>,
{
    let tape = Tape::new();
    f(tape.constant(x.clone())).value().item()
}

/// Losses are scalars; their mean-reduced gradients are `O(1/n)`, so the absolute tolerance is
/// tight (1e-4) plus the two errors a central difference of a scalar `f32` loss can make:
/// - rounding: half an ulp of the loss at each end, `ulp(L) <= EPSILON * |L|`, over `2 * eps`;
/// - truncation: `eps² / 6 * |f'''|`, where `third` bounds the third derivative of the loss
///   along one coordinate over the step (the losses are sums of per-element terms, so it is the
///   per-element bound times the reduction's scale).
fn loss_cfg(seed: u64, loss: f32, third: f32) -> GradcheckConfig {
    let c = cfg(seed);
    let rounding = f32::EPSILON * loss.abs() / c.eps;
    let truncation = c.eps * c.eps / 6.0 * third;
    GradcheckConfig {
        atol: 1e-4 + rounding + truncation,
        ..c
    }
}

/// Values whose `[H, W]` planes each have a spread of at least 1 (a ramp plus noise), so that
/// instance norm's division by the plane's deviation stays well conditioned.
fn spread_planes(shape: &[usize], rng: &mut ChaCha8Rng) -> Tensor {
    let noise = uniform(shape, -0.3, 0.3, rng).to_vec();
    let s = shape[2] * shape[3];
    let v = noise
        .iter()
        .enumerate()
        .map(|(i, e)| (i % s) as f32 * 2.0 / s as f32 + e)
        .collect();
    Tensor::from_vec(shape, v)
}
