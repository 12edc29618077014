//! The gradients of the ProGAN, BigGAN and pix2pixHD layers and of the weight
//! reparameterisations against central finite differences (`gantry_autodiff::gradcheck`),
//! over random shapes, settings and values. The runner's seed is fixed and inputs are drawn
//! away from the layers' kinks, so a run is reproducible and a wrong gradient fails.

use gantry_autodiff::{CustomOp, GradcheckConfig, Var, gradcheck};
use gantry_nn::reparam::{EqualizedLr, Reparam, SpectralNorm};
use gantry_nn::{
    AvgPool2dConfig, ConditionalBatchNorm2d, Embedding, InstanceNorm2dConfig, MaxoutConfig,
    MinibatchStdDev, Mode, Module, Param, ParamRole, PixelNorm, ProjectionHead, ReflectionPad2d,
    ResBlockDown, ResBlockUp, SelfAttention, Upsample,
};
use gantry_tensor::Tensor;
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, RngSeed};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(15),
        max_shrink_iters: 100,
        ..ProptestConfig::default()
    }
}

fn cfg(seed: u64) -> GradcheckConfig {
    GradcheckConfig {
        seed,
        ..GradcheckConfig::default()
    }
}

fn normal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 0.0, 1.0, &mut StdRng::seed_from_u64(seed))
}

/// Checks `module`'s input gradient at `x` in `mode`.
fn check_layer(module: &dyn Module, x: Tensor, mode: Mode, seed: u64) -> Result<(), TestCaseError> {
    gradcheck(|_, v| module.forward(v[0], mode), &[x], &cfg(seed))
        .map(|_| ())
        .map_err(|e| TestCaseError::fail(format!("{}: {e}", module.describe())))
}

/// Checks a reparameterisation's gradient with respect to the raw weight.
fn check_reparam(r: &dyn Reparam, w: Tensor, seed: u64) -> Result<(), TestCaseError> {
    gradcheck(
        |_, v: &[Var<'_>]| r.apply(v[0], Mode::Eval),
        &[w],
        &cfg(seed),
    )
    .map(|_| ())
    .map_err(|e| TestCaseError::fail(format!("{}: {e}", r.describe())))
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn upsample_nearest(n in 1usize..=2, c in 1usize..=3, h in 1usize..=4, w in 1usize..=4,
                        f in 1usize..=3, seed in any::<u64>()) {
        check_layer(&Upsample::nearest(f).unwrap(), normal(&[n, c, h, w], seed), Mode::Train, seed)?;
    }

    #[test]
    fn upsample_bilinear(n in 1usize..=2, c in 1usize..=2, h in 1usize..=4, w in 1usize..=4,
                         f in 1usize..=3, seed in any::<u64>()) {
        check_layer(&Upsample::bilinear(f).unwrap(), normal(&[n, c, h, w], seed), Mode::Train, seed)?;
    }

    #[test]
    fn avg_pool(k in 1usize..=3, s in 1usize..=3, p in 0usize..=1, include in any::<bool>(),
                extra in prop::array::uniform2(0usize..=3), seed in any::<u64>()) {
        prop_assume!(2 * p <= k);
        let layer = AvgPool2dConfig::new(k).stride(s).padding(p).count_include_pad(include)
            .build().unwrap();
        let x = normal(&[2, 2, k + extra[0], k + extra[1]], seed);
        check_layer(&layer, x, Mode::Train, seed)?;
    }

    #[test]
    fn instance_norm(c in 1usize..=3, h in 2usize..=4, w in 2usize..=4, affine in any::<bool>(),
                     seed in any::<u64>()) {
        let layer = InstanceNorm2dConfig::new(c).affine(affine).build().unwrap();
        // A real spread in every channel keeps 1/sqrt(var) smooth at the finite-difference step.
        let x = normal(&[2, c, h, w], seed).mul_scalar(2.0);
        check_layer(&layer, x, Mode::Train, seed)?;
    }

    #[test]
    fn reflection_pad(h in 2usize..=5, w in 2usize..=5, pads in prop::array::uniform4(0usize..=3),
                      seed in any::<u64>()) {
        let layer = ReflectionPad2d { left: pads[0] % w, right: pads[1] % w, top: pads[2] % h,
                                      bottom: pads[3] % h };
        check_layer(&layer, normal(&[2, 2, h, w], seed), Mode::Train, seed)?;
    }

    #[test]
    fn pixel_norm(c in 1usize..=4, hw in 1usize..=3, seed in any::<u64>()) {
        // Values well away from a zero feature vector, where the norm has its kink.
        let x = normal(&[2, c, hw, hw], seed).abs().add_scalar(1.0);
        check_layer(&PixelNorm::default(), x, Mode::Train, seed)?;
    }

    #[test]
    fn minibatch_std(groups in 1usize..=2, g in 2usize..=4, c in 1usize..=3, hw in 1usize..=2,
                     whole in any::<bool>(), seed in any::<u64>()) {
        let layer = MinibatchStdDev { group_size: (!whole).then_some(g), ..Default::default() };
        let x = normal(&[groups * g, c, hw, hw], seed).mul_scalar(2.0);
        check_layer(&layer, x, Mode::Train, seed)?;
    }

    #[test]
    fn spectral_norm_weight(out in 1usize..=4, inp in 1usize..=4, k in 1usize..=2, axis in 0usize..=1,
                            seed in any::<u64>()) {
        let w = normal(&[out, inp, k, k], seed);
        let p = Param::trainable(w.clone(), ParamRole::ConvWeight).with_out_axis(axis);
        let mut rng = StdRng::seed_from_u64(seed);
        let sn = SpectralNorm { iterations: 1, ..SpectralNorm::default() }.attach(&p, &mut rng).unwrap();
        // Settle u and v first, so sigma is a smooth function near w.
        let tape = gantry_autodiff::Tape::new();
        for _ in 0..30 {
            sn.apply(tape.constant(w.clone()), Mode::Train);
        }
        check_reparam(sn.as_ref(), w, seed)?;
    }

    #[test]
    fn equalized_lr_weight(out in 1usize..=4, inp in 1usize..=4, seed in any::<u64>()) {
        let w = normal(&[out, inp], seed);
        let p = Param::trainable(w.clone(), ParamRole::LinearWeight);
        check_reparam(EqualizedLr::default().attach(&p).unwrap().as_ref(), w, seed)?;
    }
}

// BigGAN's parts contain ReLUs and max pooling, whose kinks a finite difference can straddle:
// fewer cases, and the check looks at the input (and condition) gradients that a gradient
// penalty differentiates.
proptest! {
    #![proptest_config(config(6))]

    #[test]
    fn conditional_batch_norm(c in 1usize..=3, d in 1usize..=4, seed in any::<u64>()) {
        let cbn = ConditionalBatchNorm2d::new(c, d, &mut StdRng::seed_from_u64(seed)).unwrap();
        let x = normal(&[3, c, 2, 2], seed).mul_scalar(2.0);
        let cond = normal(&[3, d], seed ^ 1);
        gradcheck(|_, v| cbn.forward_cond(v[0], v[1], Mode::Train), &[x, cond], &cfg(seed))
            .map_err(|e| TestCaseError::fail(format!("ConditionalBatchNorm2d: {e}")))?;
    }

    #[test]
    fn self_attention(seed in any::<u64>()) {
        let att = SelfAttention::new(8, &mut StdRng::seed_from_u64(seed)).unwrap();
        att.gamma.set(Tensor::from_vec(&[1], vec![0.8]));
        check_layer(&att, normal(&[2, 8, 2, 4], seed), Mode::Train, seed)?;
    }

    #[test]
    fn projection_head(c in 1usize..=4, seed in any::<u64>()) {
        let head = ProjectionHead::new(c, 3, &mut StdRng::seed_from_u64(seed)).unwrap();
        let labels = Embedding::one_hot(&[2, 0], 3);
        gradcheck(
            |tape, v| head.forward_cond(v[0], tape.constant(labels.clone()), Mode::Train),
            &[normal(&[2, c, 2, 2], seed)],
            &cfg(seed),
        )
        .map_err(|e| TestCaseError::fail(format!("ProjectionHead: {e}")))?;
    }

    #[test]
    fn residual_blocks(pre in any::<bool>(), down in any::<bool>(), seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        // ReLUs inside (and, in the up block, batch statistics before them, which move every
        // pixel of a channel when one input moves) put kinks near any point; a smaller step
        // than the default keeps a finite difference on one side of them.
        let fine = GradcheckConfig { eps: 2e-3, ..cfg(seed) };
        let d = ResBlockDown::new(2, 3, pre, down, &mut rng).unwrap();
        gradcheck(|_, v| d.forward(v[0], Mode::Train), &[normal(&[2, 2, 4, 4], seed)], &fine)
            .map_err(|e| TestCaseError::fail(format!("{}: {e}", d.describe())))?;
        let up = ResBlockUp::new(2, 2, 3, &mut rng).unwrap();
        // A batch of 4x3x3 per channel and a small condition keep the batch statistics and
        // the gains smooth at the finite-difference step.
        let x = normal(&[4, 2, 3, 3], seed).mul_scalar(2.0);
        let cond = normal(&[4, 3], seed ^ 2).mul_scalar(0.3);
        gradcheck(|_, v| up.forward_cond(v[0], v[1], Mode::Train), &[x, cond], &fine)
            .map_err(|e| TestCaseError::fail(format!("ResBlockUp: {e}")))?;
    }
}

/// The maximum over the last axis of `[N, units, pieces]`, with a gradient rule of its own:
/// the right one (to the largest piece) or a wrong one (always to piece 0), the negative
/// control of the maxout check below.
struct PieceMax {
    right: bool,
}

impl CustomOp for PieceMax {
    fn name(&self) -> &str {
        "piece_max"
    }
    fn forward(&self, x: &[&Tensor]) -> Tensor {
        x[0].max_axes(&[2], false)
    }
    fn backward(&self, x: &[&Tensor], _y: &Tensor, gy: &Tensor) -> Vec<Option<Tensor>> {
        let k = x[0].shape()[2];
        let (xs, gys) = (x[0].to_vec(), gy.to_vec());
        let mut g = vec![0.0; xs.len()];
        for (u, row) in xs.chunks_exact(k).enumerate() {
            let best = if self.right { argmax(row) } else { 0 };
            g[u * k + best] = gys[u];
        }
        vec![Some(Tensor::from_vec(x[0].shape(), g))]
    }
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |b, i| if row[i] > row[b] { i } else { b })
}

/// Maxout's input gradient against finite differences, on inputs whose winning piece stays
/// the winner under the check's step; with the reduction's rule broken (the gradient always to
/// the first piece) the same check fails wherever another piece wins.
#[test]
fn maxout_gradient_and_a_broken_rule_that_the_check_rejects() {
    let (mut checked, mut rejected) = (0, 0);
    for seed in 0..48u64 {
        let mut r = StdRng::seed_from_u64(seed);
        let (n, i, o, k) = (
            1 + seed as usize % 3,
            1 + seed as usize % 4,
            1 + seed as usize / 4 % 3,
            1 + seed as usize / 12,
        );
        let layer = MaxoutConfig::new(i, o, k).build(&mut r).unwrap();
        let x = normal(&[n, i], seed);
        let w = layer.weight.value();
        let b = layer.bias.value();
        let pre = Tensor::from_vec(&[n, o, k], x.matmul_t(&w, false, true).add(&b).to_vec());
        // The check moves x by 0.01, so each piece by at most 0.01 |w_row|_1: keep inputs
        // whose two best pieces are further apart than twice the most either can move.
        let reach = 0.01
            * w.abs()
                .sum_axes(&[1], false)
                .to_vec()
                .iter()
                .fold(0f32, |a, &v| a.max(v));
        let clear = pre.to_vec().chunks_exact(k).all(|row| {
            let mut sorted = row.to_vec();
            sorted.sort_by(|a, b| b.total_cmp(a));
            sorted.len() < 2 || sorted[0] - sorted[1] > 4.0 * reach
        });
        if !clear {
            continue;
        }
        checked += 1;
        gradcheck(
            |_, v| layer.forward(v[0], Mode::Train),
            std::slice::from_ref(&x),
            &cfg(seed),
        )
        .unwrap_or_else(|e| panic!("seed {seed}: {}: {e}", layer.describe()));
        let (wc, bc) = (w.clone(), b.clone());
        let composed = |right: bool| {
            gradcheck(
                |tape, v: &[Var<'_>]| {
                    let pre = v[0]
                        .linear(tape.constant(wc.clone()), Some(tape.constant(bc.clone())))
                        .reshape(&[n, o, k]);
                    Var::custom(PieceMax { right }, &[pre])
                },
                std::slice::from_ref(&x),
                &cfg(seed),
            )
        };
        composed(true).unwrap_or_else(|e| panic!("seed {seed}: the right rule: {e}"));
        let first_wins = pre.to_vec().chunks_exact(k).all(|row| argmax(row) == 0);
        if !first_wins {
            assert!(
                composed(false).is_err(),
                "seed {seed}: the broken rule passed"
            );
            rejected += 1;
        }
    }
    assert!(
        checked >= 20 && rejected >= 10,
        "{checked} checked, {rejected} rejected"
    );
}
