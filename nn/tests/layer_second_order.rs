//! Second derivatives of the layers that can sit in a critic under a gradient penalty (WGAN-GP
//! differentiates the critic's input gradient with respect to the weights), against finite
//! differences of the first-order gradient, with respect to the input and the parameters.
//!
//! Parameterless layers go through [`gradgradcheck`] itself; layers with parameters through
//! `second_order::gradgradcheck_with_params`, the same check with the layer's own parameter
//! leaves among the inputs (see that module for why). Each layer is composed with `tanh` or a
//! square so that the rules' use of the output gradient is checked too. The runner's seed is
//! fixed and inputs are drawn away from kinks: a run is reproducible and a wrong rule fails.

mod second_order;

use gantry_autodiff::{CreateGraph, GradError, GradcheckConfig, Tape, Var, gradgradcheck};
use gantry_nn::reparam::{self, EqualizedLr, SpectralNorm};
use gantry_nn::{
    AvgPool2dConfig, ConditionalBatchNorm2d, Conv2dConfig, Embedding, Flatten,
    InstanceNorm2dConfig, LeakyReLU, LinearConfig, MinibatchStdDev, Mode, Module, Param, ParamRole,
    PixelNorm, ProjectionHead, ReflectionPad2d, ResBlockDown, ResBlockUp, SelfAttention,
    Sequential, Upsample,
};
use gantry_tensor::Tensor;
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, RngSeed};
use rand::SeedableRng;
use rand::rngs::StdRng;
use second_order::{gradgradcheck_with_params, on_any_tape, trainable};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x6761_6e74_7279),
        max_shrink_iters: 100,
        ..ProptestConfig::default()
    }
}

/// `gradgradcheck_props.rs`'s settings: a second derivative in f32 needs a larger step and
/// looser tolerances than a first.
fn cfg(seed: u64) -> GradcheckConfig {
    GradcheckConfig {
        eps: 1e-2,
        rtol: 2e-2,
        atol: 2e-3,
        max_checks_per_input: 16,
        seed,
    }
}

/// A smaller step for layers with (leaky) ReLUs or max pooling, whose kinks a wide central
/// difference could straddle.
fn fine(seed: u64) -> GradcheckConfig {
    GradcheckConfig {
        eps: 2e-3,
        ..cfg(seed)
    }
}

fn normal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 0.0, 1.0, &mut StdRng::seed_from_u64(seed))
}

/// [`gradgradcheck`] of a parameterless layer, composed with `tanh`.
fn check_plain(layer: &dyn Module, x: Tensor, seed: u64) -> Result<(), TestCaseError> {
    match gradgradcheck(
        |_, v| layer.forward(v[0], Mode::Train).tanh(),
        &[x],
        &cfg(seed),
    ) {
        Ok(0) => Err(TestCaseError::fail(format!(
            "{}: nothing checked",
            layer.describe()
        ))),
        Ok(_) => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!("{}: {e}", layer.describe()))),
    }
}

/// The second-order check of `layer` in `mode` with respect to its input and every trainable
/// parameter, the output squared.
fn check_params(
    layer: &dyn Module,
    x: Tensor,
    mode: Mode,
    cfg: &GradcheckConfig,
) -> Result<(), TestCaseError> {
    let params = trainable(layer);
    prop_assert!(!params.is_empty(), "{} has no parameter", layer.describe());
    let f = on_any_tape(|x| layer.forward(x, mode).powf(2.0));
    gradgradcheck_with_params(&layer.describe(), &f, &x, &params, cfg)?;
    Ok(())
}

/// Every trainable parameter of `m` redrawn from `N(0, std²)`, so that no test starts from a
/// special point (a zero attention gain, unit norm gains).
fn randomise(m: &dyn Module, std: f32, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for p in trainable(m) {
        p.set(Tensor::randn(&p.shape(), 0.0, std, &mut rng));
    }
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn upsample(n in 1usize..=2, c in 1usize..=2, h in 1usize..=3, w in 1usize..=3,
                f in 1usize..=3, seed in any::<u64>()) {
        let x = normal(&[n, c, h, w], seed);
        check_plain(&Upsample::nearest(f).unwrap(), x.clone(), seed)?;
        check_plain(&Upsample::bilinear(f).unwrap(), x, seed)?;
    }

    #[test]
    fn avg_pool(k in 1usize..=3, s in 1usize..=2, p in 0usize..=1,
                extra in prop::array::uniform2(0usize..=2), seed in any::<u64>()) {
        prop_assume!(2 * p <= k);
        let x = normal(&[2, 2, k + extra[0], k + extra[1]], seed);
        for include in [true, false] {
            let layer = AvgPool2dConfig::new(k).stride(s).padding(p).count_include_pad(include)
                .build().unwrap();
            check_plain(&layer, x.clone(), seed)?;
        }
    }

    #[test]
    fn instance_norm(c in 1usize..=2, h in 2usize..=3, w in 2usize..=3, seed in any::<u64>()) {
        // A real spread in every channel keeps 1/sqrt(var) smooth at the step.
        let x = normal(&[2, c, h, w], seed).mul_scalar(2.0);
        check_plain(&InstanceNorm2dConfig::new(c).build().unwrap(), x.clone(), seed)?;
        let affine = InstanceNorm2dConfig::new(c).affine(true).build().unwrap();
        randomise(&affine, 1.0, seed ^ 1);
        check_params(&affine, x, Mode::Train, &cfg(seed))?;
    }

    #[test]
    fn reflection_pad(h in 2usize..=4, w in 2usize..=4, pads in prop::array::uniform4(0usize..=3),
                      seed in any::<u64>()) {
        let layer = ReflectionPad2d { left: pads[0] % w, right: pads[1] % w, top: pads[2] % h,
                                      bottom: pads[3] % h };
        check_plain(&layer, normal(&[1, 2, h, w], seed), seed)?;
    }

    #[test]
    fn pixel_norm(c in 1usize..=4, hw in 1usize..=2, seed in any::<u64>()) {
        // Feature vectors well away from zero, where the norm has its kink.
        let x = normal(&[2, c, hw, hw], seed).abs().add_scalar(1.0);
        check_plain(&PixelNorm::default(), x, seed)?;
    }

    #[test]
    fn minibatch_std(groups in 1usize..=2, g in 2usize..=3, c in 1usize..=2, hw in 1usize..=2,
                     whole in any::<bool>(), seed in any::<u64>()) {
        let layer = MinibatchStdDev { group_size: (!whole).then_some(g), ..Default::default() };
        // Each sample shifted by its index: the members of a group differ by at least the
        // number of positions, so no feature's group deviation is near the kink of the root.
        let n = groups * g;
        let shift = Tensor::from_vec(&[n, 1, 1, 1], (0..n).map(|i| i as f32).collect());
        let x = normal(&[n, c, hw, hw], seed).mul_scalar(0.3).add(&shift);
        check_plain(&layer, x, seed)?;
    }

    #[test]
    fn equalized_lr_conv_and_linear(cin in 1usize..=2, cout in 1usize..=2, k in 1usize..=3,
                                    s in 1usize..=2, seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let conv = Conv2dConfig::new(cin, cout, k).stride(s).padding(k / 2).build(&mut rng).unwrap();
        let linear = LinearConfig::new(cin * 3, cout).build(&mut rng).unwrap();
        for layer in [&conv as &dyn Module, &linear] {
            // ProGAN's weights are drawn N(0, 1) and scaled at every read.
            randomise(layer, 1.0, seed ^ 2);
            let wrapped = reparam::apply(layer, reparam::layer_weights, |p| EqualizedLr::default().attach(p))
                .unwrap();
            prop_assert_eq!(wrapped, vec!["weight".to_string()]);
        }
        check_params(&conv, normal(&[2, cin, 4, 4], seed), Mode::Train, &cfg(seed))?;
        check_params(&linear, normal(&[2, cin * 3], seed), Mode::Train, &cfg(seed))?;
    }

    #[test]
    fn spectral_norm_conv(cin in 1usize..=2, cout in 1usize..=3, k in 1usize..=2, seed in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let conv = Conv2dConfig::new(cin, cout, k).build(&mut rng).unwrap();
        reparam::apply(&conv, reparam::conv_weights, |p| SpectralNorm::default().attach(p, &mut rng))
            .unwrap();
        // Settle u and v by training forwards; the check then runs in evaluation mode, where
        // they are the constants of sigma = uᵀ W v and only W is differentiated.
        let tape = Tape::new();
        let x = normal(&[2, cin, 3, 3], seed);
        for _ in 0..30 {
            conv.forward(tape.constant(x.clone()), Mode::Train);
        }
        check_params(&conv, x, Mode::Eval, &cfg(seed))?;
    }
}

// Layers built from convolutions, ReLUs and max pooling: a finer step, and the check skips
// the few coordinates whose central difference straddles a kink.
proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn self_attention(seed in any::<u64>()) {
        let att = SelfAttention::new(8, &mut StdRng::seed_from_u64(seed)).unwrap();
        randomise(&att, 0.5, seed ^ 3);
        check_params(&att, normal(&[1, 8, 2, 2], seed), Mode::Train, &fine(seed))?;
    }

    #[test]
    fn projection_head(c in 1usize..=3, seed in any::<u64>()) {
        let head = ProjectionHead::new(c, 3, &mut StdRng::seed_from_u64(seed)).unwrap();
        let labels = Embedding::one_hot(&[2, 0], 3);
        let f = on_any_tape(|x| {
            head.forward_cond(x, x.tape().constant(labels.clone()), Mode::Train).tanh()
        });
        gradgradcheck_with_params("ProjectionHead", &f, &normal(&[2, c, 2, 2], seed),
                                  &trainable(&head), &cfg(seed))?;
    }

    #[test]
    fn res_block_down(pre in any::<bool>(), down in any::<bool>(), same in any::<bool>(),
                      seed in any::<u64>()) {
        let cout = if same { 2 } else { 3 };
        let block = ResBlockDown::new(2, cout, pre, down, &mut StdRng::seed_from_u64(seed)).unwrap();
        check_params(&block, normal(&[1, 2, 4, 4], seed), Mode::Train, &fine(seed))?;
    }
}

/// A small ProGAN-style critic: equalised-LR convolutions and a linear head, leaky ReLUs,
/// minibatch standard deviation and average pooling.
fn progan_critic(seed: u64) -> Sequential {
    let mut rng = StdRng::seed_from_u64(seed);
    let critic = Sequential::new()
        .add(
            Conv2dConfig::new(2, 3, 3)
                .padding(1)
                .build(&mut rng)
                .unwrap(),
        )
        .add(LeakyReLU::new(0.2))
        .add(AvgPool2dConfig::new(2).build().unwrap())
        .add(MinibatchStdDev::default())
        .add(
            Conv2dConfig::new(4, 3, 3)
                .padding(1)
                .build(&mut rng)
                .unwrap(),
        )
        .add(LeakyReLU::new(0.2))
        .add(Flatten)
        .add(LinearConfig::new(12, 1).build(&mut rng).unwrap());
    randomise(&critic, 1.0, seed ^ 4);
    reparam::apply(&critic, reparam::layer_weights, |p| {
        EqualizedLr::default().attach(p)
    })
    .unwrap();
    critic
}

proptest! {
    #![proptest_config(config(8))]

    /// The critic's second derivatives with respect to its input and every weight: what the
    /// gradient penalty's weight gradient is made of.
    #[test]
    fn a_progan_critic_end_to_end(seed in any::<u64>()) {
        let critic = progan_critic(seed);
        let x = normal(&[4, 2, 4, 4], seed);
        let f = on_any_tape(|x| critic.forward(x, Mode::Train));
        gradgradcheck_with_params("ProGAN critic", &f, &x, &trainable(&critic), &fine(seed))?;
    }
}

/// The WGAN-GP penalty `mean_n (‖∇ₓ D(x)ₙ‖ - 1)²` at `x`, on a tape whose parameter leaves the
/// caller reads back.
fn penalty<'t>(tape: &'t Tape, critic: &dyn Module, x: &Tensor, create: CreateGraph) -> Var<'t> {
    let x = tape.leaf(x.clone());
    let d = critic.forward(x, Mode::Train).sum();
    let g = tape.grad(&[d], &[x], create).unwrap()[0];
    let n = x.shape()[0];
    g.mul(g)
        .reshape(&[n, g.value().len() / n])
        .sum_axes(&[1], false)
        .add_scalar(1e-12)
        .sqrt()
        .add_scalar(-1.0)
        .powf(2.0)
        .mean()
}

/// One penalty step of a ProGAN-style critic: the penalty's gradient with respect to every
/// weight (through the recorded input gradient) against central differences of the penalty.
#[test]
fn wgan_gp_penalty_weight_gradients_match_finite_differences() {
    let critic = progan_critic(21);
    let x = normal(&[4, 2, 4, 4], 22);
    let tape = Tape::new();
    let p = penalty(&tape, &critic, &x, CreateGraph::Yes);
    let grads = p.backward();
    let eps = 2e-3;
    let mut checked = 0;
    for param in trainable(&critic) {
        // The last layer's bias does not reach the input gradient: no gradient is a zero one.
        let analytic = grads
            .get_key(param.id().0)
            .map_or_else(|| vec![0.0; param.len()], Tensor::to_vec);
        let base = param.value();
        for j in (0..base.len()).step_by(base.len().div_ceil(8)) {
            let at = |delta: f32| {
                let mut v = base.to_vec();
                v[j] += delta;
                param.set(Tensor::from_vec(base.shape(), v));
                let value = penalty(&Tape::new(), &critic, &x, CreateGraph::No)
                    .value()
                    .to_vec()[0];
                param.set(base.clone());
                f64::from(value)
            };
            let numeric = ((at(eps) - at(-eps)) / (2.0 * f64::from(eps))) as f32;
            let a = analytic[j];
            assert!(
                (a - numeric).abs() <= 2e-3 + 2e-2 * a.abs().max(numeric.abs()),
                "weight {:?} element {j}: analytic {a} vs numeric {numeric}",
                param.shape()
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} coordinates checked");
}

// -------------------------------------------------------------------- batch norm in the forward

fn assert_no_batch_norm_second_derivative(name: &str, result: Result<Vec<Var<'_>>, GradError>) {
    match result {
        Err(e) => assert_eq!(
            e,
            GradError::NoSecondDerivative {
                op: "batch_norm".into()
            },
            "{name}"
        ),
        Ok(_) => panic!("{name}: a differentiable gradient through batch norm must be refused"),
    }
}

#[test]
fn conditional_batch_norm_has_no_second_derivative() {
    let mut rng = StdRng::seed_from_u64(31);
    let cbn = ConditionalBatchNorm2d::new(2, 3, &mut rng).unwrap();
    let tape = Tape::new();
    let x = tape.leaf(normal(&[4, 2, 3, 3], 32));
    let cond = tape.leaf(normal(&[4, 3], 33));
    let y = cbn.forward_cond(x, cond, Mode::Train).tanh().sum();
    assert_no_batch_norm_second_derivative(
        "ConditionalBatchNorm2d",
        tape.grad(&[y], &[x], CreateGraph::Yes),
    );
    // First order is still there.
    assert!(tape.grad(&[y], &[x, cond], CreateGraph::No).is_ok());
}

#[test]
fn res_block_up_has_no_second_derivative() {
    let mut rng = StdRng::seed_from_u64(34);
    let block = ResBlockUp::new(2, 2, 3, &mut rng).unwrap();
    let tape = Tape::new();
    let x = tape.leaf(normal(&[4, 2, 2, 2], 35));
    let cond = tape.constant(normal(&[4, 3], 36));
    let y = block.forward_cond(x, cond, Mode::Train).tanh().sum();
    assert_no_batch_norm_second_derivative("ResBlockUp", tape.grad(&[y], &[x], CreateGraph::Yes));
    let w = block.conv1.weight.var(&tape);
    assert_no_batch_norm_second_derivative(
        "ResBlockUp (weights)",
        tape.grad(&[y], &[w], CreateGraph::Yes),
    );
}

// -------------------------------------------------------------------- the check itself

/// A layer `x · w` that reads its weight detached on the recorded path: right values, the
/// dependence of the input gradient on `w` lost, as a wrong layer rule would.
#[derive(Debug)]
struct DetachedScale {
    w: Param,
}

impl Module for DetachedScale {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        f(&gantry_nn::join(prefix, "w"), &self.w);
    }

    fn forward<'t>(&self, x: Var<'t>, _mode: Mode) -> Var<'t> {
        let w = self.w.var(x.tape());
        // Value x·w and gradient for w kept (through the sum), but ∂(∂y/∂x)/∂w is dropped.
        x.mul(w.detach())
            .add(x.detach().mul(w))
            .sub(x.detach().mul(w.detach()))
    }
}

#[test]
fn the_parameter_check_catches_a_lost_dependence_on_a_weight() {
    let layer = DetachedScale {
        w: Param::trainable(normal(&[3], 41), ParamRole::Other),
    };
    let err = check_params(&layer, normal(&[3], 42), Mode::Train, &cfg(7))
        .expect_err("the lost mixed derivative must be caught");
    assert!(err.to_string().contains("second derivative"), "{err}");
    // And restores the weight it perturbed.
    assert_eq!(layer.w.value().to_vec(), normal(&[3], 41).to_vec());
}

#[test]
fn the_parameter_check_agrees_with_gradgradcheck_on_a_linear_layer() {
    let mut rng = StdRng::seed_from_u64(43);
    let linear = LinearConfig::new(3, 2).build(&mut rng).unwrap();
    let x = normal(&[2, 3], 44);
    let f = on_any_tape(|x| linear.forward(x, Mode::Train).tanh());
    let checked =
        gradgradcheck_with_params("Linear", &f, &x, &trainable(&linear), &cfg(8)).unwrap();
    assert_eq!(checked, 6 + 6 + 2);
    let (w, b) = (linear.weight.value(), linear.bias.as_ref().unwrap().value());
    gradgradcheck(
        |_, v| v[0].linear(v[1], Some(v[2])).tanh(),
        &[x, w, b],
        &cfg(8),
    )
    .unwrap();
}
