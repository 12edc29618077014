//! Parity with PyTorch for whole networks: one training iteration of each player of the DCGAN
//! (64x64, width 8) and of pix2pix (U-Net with 6 downsamplings and the 3-layer PatchGAN, width
//! 4), against `fixtures/torch/models.safetensors`; and the full-width parameter counts stored
//! in its metadata.
//!
//! The networks are built here from the public layers with PyTorch's `state_dict` names, loaded
//! from the fixture with a strict `load_tensors`, and run in the recorded order with a fresh
//! tape per player step, as the trainer does:
//!
//! - `tape_g`: `fake = G(z)`, once, in training mode (G's running statistics move once);
//! - `tape_d`: D on the real batch and on `fake` lifted in as a constant (detached); the D loss
//!   is differentiated there, giving D's gradients;
//! - back on `tape_g`: D on the same `fake` variable, the G loss, and its backward, giving G's
//!   gradients (D's running statistics move a third time, as in PyTorch).
//!
//! Tolerances, about ten times the measured errors (printed with `--nocapture`, listed in the
//! test docs): forward values and losses `5e-6 * max(1, max|ref|)`; gradients `2e-5 * max|ref|`
//! per tensor; running statistics `1e-6 * max(1, max|ref|)`.

mod common;

use common::{Fixtures, Report};
use gantry_autodiff::{Reduction, Tape, Var};
use gantry_nn::state_dict::{LoadOptions, load_tensors};
use gantry_nn::{
    BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig,
    LeakyReLU, Mode, Module, Param, ParamKind, ReLU, Sequential, Tanh, join, loss, named_params,
    param_count, set_requires_grad,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Forward values and losses, relative to `max(1, max|ref|)`.
const VALUE_TOL: f32 = 5e-6;
/// Parameter gradients, relative to each tensor's `max|ref|`.
const GRAD_TOL: f32 = 2e-5;
/// Running statistics after the iteration, relative to `max(1, max|ref|)`.
const STAT_TOL: f32 = 1e-6;

// ---------------------------------------------------------------------------------------------
// The networks, with PyTorch's names.

fn conv(i: usize, o: usize, stride: usize, pad: usize, bias: bool, rng: &mut StdRng) -> Conv2d {
    Conv2dConfig::new(i, o, 4)
        .stride(stride)
        .padding(pad)
        .bias(bias)
        .build(rng)
        .unwrap()
}

fn conv_t(
    i: usize,
    o: usize,
    stride: usize,
    pad: usize,
    bias: bool,
    rng: &mut StdRng,
) -> ConvTranspose2d {
    ConvTranspose2dConfig::new(i, o, 4)
        .stride(stride)
        .padding(pad)
        .bias(bias)
        .build(rng)
        .unwrap()
}

fn bn(c: usize) -> BatchNorm {
    BatchNormConfig::new(c).build().unwrap()
}

/// pytorch/examples' DCGAN generator: `0,3,6,9,12` transposed convs, `1,4,7,10` batch norms.
fn dcgan_generator(nz: usize, ngf: usize, nc: usize, rng: &mut StdRng) -> Sequential {
    let mut g = Sequential::new();
    let widths = [nz, ngf * 8, ngf * 4, ngf * 2, ngf];
    for (i, pair) in widths.windows(2).enumerate() {
        let (stride, pad) = if i == 0 { (1, 0) } else { (2, 1) };
        g = g
            .add(conv_t(pair[0], pair[1], stride, pad, false, rng))
            .add(bn(pair[1]))
            .add(ReLU);
    }
    g.add(conv_t(ngf, nc, 2, 1, false, rng)).add(Tanh)
}

/// pytorch/examples' DCGAN discriminator ending in a logit: `0,2,5,8,11` convs, `3,6,9` batch
/// norms.
fn dcgan_discriminator(nc: usize, ndf: usize, rng: &mut StdRng) -> Sequential {
    let mut d = Sequential::new()
        .add(conv(nc, ndf, 2, 1, false, rng))
        .add(LeakyReLU::new(0.2));
    for m in [1, 2, 4] {
        d = d
            .add(conv(ndf * m, ndf * m * 2, 2, 1, false, rng))
            .add(bn(ndf * m * 2))
            .add(LeakyReLU::new(0.2));
    }
    d.add(conv(ndf * 8, 1, 1, 0, false, rng))
}

/// pix2pix's 3-layer PatchGAN: `0,2,5,8,11` convs (bias on 0 and 11), `3,6,9` batch norms.
fn patchgan(input_nc: usize, ndf: usize, rng: &mut StdRng) -> Sequential {
    let mut d = Sequential::new()
        .add(conv(input_nc, ndf, 2, 1, true, rng))
        .add(LeakyReLU::new(0.2));
    for (m, stride) in [(1, 2), (2, 2), (4, 1)] {
        d = d
            .add(conv(ndf * m, ndf * m * 2, stride, 1, false, rng))
            .add(bn(ndf * m * 2))
            .add(LeakyReLU::new(0.2));
    }
    d.add(conv(ndf * 8, 1, 1, 1, true, rng))
}

/// pix2pix's U-Net (`UnetGenerator` with batch norm, no dropout), unrolled: `down.{i}` convs,
/// `down_bn.{i}` (none on the outermost nor the innermost), `up.{i}` transposed convs (bias
/// only on `up.0`), `up_bn.{i}` (none on `up.0`).
struct UNet {
    down: Vec<Conv2d>,
    down_bn: Vec<Option<BatchNorm>>,
    up: Vec<ConvTranspose2d>,
    up_bn: Vec<Option<BatchNorm>>,
}

impl UNet {
    fn new(
        input_nc: usize,
        output_nc: usize,
        num_downs: usize,
        ngf: usize,
        rng: &mut StdRng,
    ) -> UNet {
        let width = |i: usize| ngf * (1 << i.min(3));
        let inner = num_downs - 1;
        let down_in = |i: usize| if i == 0 { input_nc } else { width(i - 1) };
        let mut net = UNet {
            down: vec![],
            down_bn: vec![],
            up: vec![],
            up_bn: vec![],
        };
        for i in 0..num_downs {
            net.down.push(conv(down_in(i), width(i), 2, 1, false, rng));
            net.down_bn
                .push((i != 0 && i != inner).then(|| bn(width(i))));
            let up_in = if i == inner { width(i) } else { 2 * width(i) };
            let up_out = if i == 0 { output_nc } else { down_in(i) };
            net.up.push(conv_t(up_in, up_out, 2, 1, i == 0, rng));
            net.up_bn.push((i != 0).then(|| bn(up_out)));
        }
        net
    }
}

impl Module for UNet {
    fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
        for (i, (d, b)) in self.down.iter().zip(&self.down_bn).enumerate() {
            d.visit(&join(prefix, &format!("down.{i}")), f);
            if let Some(b) = b {
                b.visit(&join(prefix, &format!("down_bn.{i}")), f);
            }
        }
        for (i, (u, b)) in self.up.iter().zip(&self.up_bn).enumerate() {
            u.visit(&join(prefix, &format!("up.{i}")), f);
            if let Some(b) = b {
                b.visit(&join(prefix, &format!("up_bn.{i}")), f);
            }
        }
    }

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        let mut skips = Vec::with_capacity(self.down.len());
        let mut h = x;
        for (i, (d, b)) in self.down.iter().zip(&self.down_bn).enumerate() {
            if i > 0 {
                h = h.leaky_relu(0.2);
            }
            h = d.forward(h, mode);
            if let Some(b) = b {
                h = b.forward(h, mode);
            }
            skips.push(h);
        }
        let inner = self.down.len() - 1;
        for i in (0..=inner).rev() {
            let input = if i == inner {
                h
            } else {
                Var::concat(&[skips[i], h], 1)
            };
            h = self.up[i].forward(input.relu(), mode);
            if let Some(b) = &self.up_bn[i] {
                h = b.forward(h, mode);
            }
        }
        h.tanh()
    }
}

// ---------------------------------------------------------------------------------------------
// Loading and comparing.

/// Loads `CASE/PLAYER.before.*` into `module` (strict, so every name must match both ways), and
/// checks that the running statistics start where a fresh PyTorch network's do (mean 0,
/// variance 1): the iteration's update of them is then compared with `after`.
fn load_before(fx: &Fixtures, case: &str, player: &str, module: &dyn Module) {
    let prefix = format!("{case}/{player}.before.");
    let rename = |k: &str| k.strip_prefix(prefix.as_str()).map(str::to_string);
    let options = LoadOptions {
        strict: true,
        rename: Some(&rename),
    };
    let report = load_tensors(module, &fx.file.tensors, &options, &fx.path)
        .unwrap_or_else(|e| panic!("{case}/{player}: {e}"));
    assert!(report.is_clean(), "{report}");
    let buffers: Vec<(String, &Param)> = named_params(module)
        .into_iter()
        .filter(|(_, p)| p.kind() == ParamKind::Buffer)
        .collect();
    assert!(!buffers.is_empty(), "{case}/{player} has batch norms");
    for (name, p) in buffers {
        let initial = if name.ends_with("running_var") {
            1.0
        } else {
            0.0
        };
        assert!(
            p.value().to_vec().iter().all(|&v| v == initial),
            "{case}/{player}.before.{name}: not PyTorch's initial {initial}"
        );
    }
}

/// Compares every trainable parameter's gradient with `CASE/PLAYER.grad.NAME`, and checks that
/// the file has no gradient the model lacks.
fn check_grads(
    report: &mut Report,
    fx: &Fixtures,
    case: &str,
    player: &str,
    module: &dyn Module,
    grads: &gantry_autodiff::Gradients,
) {
    let mut names = vec![];
    for (name, p) in named_params(module) {
        if p.kind() != ParamKind::Trainable {
            continue;
        }
        let got = grads
            .get_key(p.id().0)
            .unwrap_or_else(|| panic!("{case}: {player}.{name} got no gradient"));
        let want = fx.get(case, &format!("{player}.grad.{name}"));
        assert_eq!(got.shape(), want.shape(), "{player}.grad.{name}");
        report.check_rel(
            &format!("{case}:{player}.grad {name}"),
            got,
            &want,
            GRAD_TOL,
        );
        names.push(name);
    }
    names.sort();
    assert_eq!(
        names,
        fx.keys_under(&format!("{case}/{player}.grad.")),
        "{case}: the model's trainable parameters and the file's gradients"
    );
}

/// Compares the running statistics after the iteration with `CASE/PLAYER.after.*`.
fn check_running_stats(
    report: &mut Report,
    fx: &Fixtures,
    case: &str,
    player: &str,
    module: &dyn Module,
) {
    for (name, p) in named_params(module) {
        if p.kind() == ParamKind::Buffer {
            let want = fx.get(case, &format!("{player}.after.{name}"));
            report.check(
                &format!("{case}:{player}.after {name}"),
                &p.value(),
                &want,
                STAT_TOL,
            );
        }
    }
}

fn scalar(fx: &Fixtures, case: &str, key: &str) -> f32 {
    let t = fx.get(case, key);
    assert_eq!(t.len(), 1, "{case}/{key} is a scalar");
    t.to_vec()[0]
}

// ---------------------------------------------------------------------------------------------
// The two cases.

/// Measured (x86-64, 2 threads): fake 2.2e-7, D outputs 4.8e-7, losses 1.2e-7, gradients
/// (relative to each tensor's max) at most 1.4e-6, running statistics at most 1.2e-7.
#[test]
fn dcgan64_iteration_matches_pytorch() {
    let fx = Fixtures::open("models.safetensors");
    let case = "dcgan64";
    let s = fx.settings(case);
    let size = |k: &str| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("{case}: setting {k}")) as usize
    };
    let (nz, ngf, ndf, nc) = (size("nz"), size("ngf"), size("ndf"), size("nc"));
    let mut rng = StdRng::seed_from_u64(1);
    let g = dcgan_generator(nz, ngf, nc, &mut rng);
    let d = dcgan_discriminator(nc, ndf, &mut rng);
    assert_eq!(param_count(&g), size("params_G"));
    assert_eq!(param_count(&d), size("params_D"));
    load_before(&fx, case, "G", &g);
    load_before(&fx, case, "D", &d);
    let (z, real) = (fx.get(case, "z"), fx.get(case, "real"));
    let mut report = Report::default();

    // G(z), once, on the generator's tape.
    let tape_g = Tape::new();
    let fake = g.forward(tape_g.constant(z), Mode::Train);
    report.check("fake", &fake.value(), &fx.get(case, "fake"), VALUE_TOL);

    // The discriminator's step on its own tape: real, then the detached fake.
    let tape_d = Tape::new();
    let d_real = d.forward(tape_d.constant(real), Mode::Train);
    let d_fake = d.forward(tape_d.constant(fake.value()), Mode::Train);
    let loss_d =
        loss::bce_with_logits(d_real, &loss::full_like(&d_real, 1.0), Reduction::Mean).add(
            loss::bce_with_logits(d_fake, &loss::full_like(&d_fake, 0.0), Reduction::Mean),
        );
    report.check(
        "d_out d_real",
        &d_real.value(),
        &fx.get(case, "d_real"),
        VALUE_TOL,
    );
    report.check(
        "d_out d_fake",
        &d_fake.value(),
        &fx.get(case, "d_fake"),
        VALUE_TOL,
    );
    report.check_scalar(
        "loss loss_d",
        loss_d.value().item(),
        scalar(&fx, case, "loss_d"),
        VALUE_TOL,
    );
    let grads_d = loss_d.backward();
    check_grads(&mut report, &fx, case, "D", &d, &grads_d);

    // The generator's step, back on its tape: D (not frozen, as pytorch/examples) on the same
    // fake; D's gradients from this pass are not used.
    let d_fake_g = d.forward(fake, Mode::Train);
    let loss_g = loss::bce_with_logits(d_fake_g, &loss::full_like(&d_fake_g, 1.0), Reduction::Mean);
    report.check(
        "d_out d_fake_for_g",
        &d_fake_g.value(),
        &fx.get(case, "d_fake_for_g"),
        VALUE_TOL,
    );
    report.check_scalar(
        "loss loss_g",
        loss_g.value().item(),
        scalar(&fx, case, "loss_g"),
        VALUE_TOL,
    );
    let grads_g = loss_g.backward();
    check_grads(&mut report, &fx, case, "G", &g, &grads_g);

    check_running_stats(&mut report, &fx, case, "G", &g);
    check_running_stats(&mut report, &fx, case, "D", &d);
    report.finish();
}

/// Measured (x86-64, 2 threads): fake_b 2.8e-7, PatchGAN outputs 8.3e-7, losses at most
/// 1.5e-7 (the L1 term 7.6e-6 of 50), gradients (relative to each tensor's max) at most 3.0e-6,
/// running statistics at most 1.2e-7.
#[test]
fn pix2pix64_iteration_matches_pytorch() {
    let fx = Fixtures::open("models.safetensors");
    let case = "pix2pix64";
    let s = fx.settings(case);
    let size = |k: &str| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("{case}: setting {k}")) as usize
    };
    let lambda = common::setting_f32(&s, "lambda_l1");
    let mut rng = StdRng::seed_from_u64(2);
    let g = UNet::new(3, 3, size("num_downs"), size("ngf"), &mut rng);
    let d = patchgan(6, size("ndf"), &mut rng);
    assert_eq!(param_count(&g), size("params_G"));
    assert_eq!(param_count(&d), size("params_D"));
    load_before(&fx, case, "G", &g);
    load_before(&fx, case, "D", &d);
    let (a, b) = (fx.get(case, "a"), fx.get(case, "b"));
    let mut report = Report::default();

    let tape_g = Tape::new();
    let fake_b = g.forward(tape_g.constant(a.clone()), Mode::Train);
    report.check(
        "fake_b",
        &fake_b.value(),
        &fx.get(case, "fake_b"),
        VALUE_TOL,
    );

    // D step: the conditional pairs (a, fake_b) detached, then (a, b).
    let tape_d = Tape::new();
    let pair_fake = Var::concat(
        &[tape_d.constant(a.clone()), tape_d.constant(fake_b.value())],
        1,
    );
    let pred_fake = d.forward(pair_fake, Mode::Train);
    let pair_real = Var::concat(&[tape_d.constant(a.clone()), tape_d.constant(b.clone())], 1);
    let pred_real = d.forward(pair_real, Mode::Train);
    let loss_d = loss::bce_with_logits(
        pred_fake,
        &loss::full_like(&pred_fake, 0.0),
        Reduction::Mean,
    )
    .add(loss::bce_with_logits(
        pred_real,
        &loss::full_like(&pred_real, 1.0),
        Reduction::Mean,
    ))
    .mul_scalar(0.5);
    report.check(
        "d_out pred_fake",
        &pred_fake.value(),
        &fx.get(case, "pred_fake"),
        VALUE_TOL,
    );
    report.check(
        "d_out pred_real",
        &pred_real.value(),
        &fx.get(case, "pred_real"),
        VALUE_TOL,
    );
    report.check_scalar(
        "loss loss_d",
        loss_d.value().item(),
        scalar(&fx, case, "loss_d"),
        VALUE_TOL,
    );
    let grads_d = loss_d.backward();
    check_grads(&mut report, &fx, case, "D", &d, &grads_d);

    // G step: D frozen (pix2pix's set_requires_grad), on the generator's tape.
    set_requires_grad(&d, false);
    let pair = Var::concat(&[tape_g.constant(a), fake_b], 1);
    let pred_fake_g = d.forward(pair, Mode::Train);
    let gan = loss::bce_with_logits(
        pred_fake_g,
        &loss::full_like(&pred_fake_g, 1.0),
        Reduction::Mean,
    );
    let l1 = loss::l1(fake_b, &b, Reduction::Mean).mul_scalar(lambda);
    report.check(
        "d_out pred_fake_g",
        &pred_fake_g.value(),
        &fx.get(case, "pred_fake_g"),
        VALUE_TOL,
    );
    report.check_scalar(
        "loss loss_g_gan",
        gan.value().item(),
        scalar(&fx, case, "loss_g_gan"),
        VALUE_TOL,
    );
    report.check_scalar(
        "loss loss_g_l1",
        l1.value().item(),
        scalar(&fx, case, "loss_g_l1"),
        VALUE_TOL,
    );
    let grads_g = gan.add(l1).backward();
    set_requires_grad(&d, true);
    for (name, p) in named_params(&d) {
        assert!(
            grads_g.get_key(p.id().0).is_none(),
            "frozen D.{name} got a gradient"
        );
    }
    check_grads(&mut report, &fx, case, "G", &g, &grads_g);

    check_running_stats(&mut report, &fx, case, "G", &g);
    check_running_stats(&mut report, &fx, case, "D", &d);
    report.finish();
}

/// The full-width networks have PyTorch's parameter counts (the file's `param_counts`).
#[test]
fn full_width_parameter_counts_match_pytorch() {
    let fx = Fixtures::open("models.safetensors");
    let counts = fx.json("param_counts");
    let want = |k: &str| {
        counts[k]
            .as_u64()
            .unwrap_or_else(|| panic!("param_counts.{k}")) as usize
    };
    let mut rng = StdRng::seed_from_u64(3);
    assert_eq!(
        param_count(&dcgan_generator(100, 64, 3, &mut rng)),
        want("dcgan64_G_nc3_ngf64")
    );
    assert_eq!(
        param_count(&dcgan_discriminator(3, 64, &mut rng)),
        want("dcgan64_D_nc3_ndf64")
    );
    assert_eq!(
        param_count(&patchgan(6, 64, &mut rng)),
        want("patchgan_n3_ndf64_in6")
    );
    // pix2pix's unet_256: 8 downsamplings of 256x256 to 1x1.
    assert_eq!(
        param_count(&UNet::new(3, 3, 8, 64, &mut rng)),
        want("unet256_ngf64_batchnorm")
    );
}
