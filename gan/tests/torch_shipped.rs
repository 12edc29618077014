//! The models gantry ships, checked against PyTorch: one `Trainer::train_step` of `dcgan`
//! (64x64 and the 28x28 tutorial network), `cdcgan`, `mlp` (digits, and the packed point
//! networks with batch norm) and `pix2pix`, against `fixtures/torch/shipped.safetensors`
//! (written by `fixtures/torch/gen_shipped.py` from the reference definitions: pytorch/examples,
//! the TensorFlow tutorial's network, junyanz's pix2pix; its docstring lists the cases).
//!
//! Each case builds the shipped model from its `ModelConfig` at the fixture's widths, loads the
//! reference's initial weights and running statistics by name (strictly: every parameter of
//! the model and every tensor of the reference), and checks:
//! - the outputs of one forward pass in training mode (the fake batch, D on the real and the
//!   fake batch), on a copy;
//! - one iteration of the trainer itself, its noise being the fixture's: every loss it logs,
//!   every gradient it hands to the optimizers (recorded by a wrapper), every weight after
//!   Adam's step and every running statistic after the iteration.
//!
//! Tolerances, about ten times the worst errors measured (printed with `--nocapture`):
//! values and losses `5e-6 * max(1, max|ref|)`, gradients `5e-5 * max|ref|` per tensor,
//! running statistics after the iteration `1e-6 * max(1, max|ref|)`, and each weight's update
//! `5e-2 * max|ref update|`. Adam's first step moves a weight by `lr * g / (|g| + 1e-8)`, about
//! the learning rate whatever the gradient's size: the updates check the gradients' signs, the
//! learning rate and the optimizer's order (not its betas, which a first step does not use);
//! the recorded gradients check their sizes. Where a gradient is near Adam's 1e-8, the update
//! magnifies the last bits of the gradient (measured: 0.6% of the learning rate on one weight
//! of the 28x28 generator's dense layer).

#[path = "../../nn/tests/common/mod.rs"]
mod common;
#[path = "common/recording.rs"]
mod recording;

use common::{Fixtures, Report, setting_f32};
use gantry_autodiff::Tape;
use gantry_gan::import::names;
use gantry_gan::models::{
    Batch, CdcganConfig, DcganConfig, DcganVariant, Gan, MlpConfig, MlpOutput, ModelConfig,
    Pix2PixConfig,
};
use gantry_gan::objective::ObjectiveConfig;
use gantry_gan::{OptimConfig, TrainConfig, Trainer};
use gantry_nn::state_dict::{LoadOptions, load_tensors, state_dict};
use gantry_nn::{Mode, Module};
use gantry_tensor::Tensor;
use rand::RngCore;
use rand::SeedableRng;
use recording::Recording;
use std::collections::{BTreeMap, HashMap};

const FILE: &str = "shipped.safetensors";
const VALUE_TOL: f32 = 5e-6;
const GRAD_TOL: f32 = 5e-5;
const UPDATE_TOL: f32 = 5e-2;
const STAT_TOL: f32 = 1e-6;

type Rename = fn(&str) -> Option<String>;

/// One fixture case: the shipped model's settings and how the reference names its weights.
struct Case {
    name: &'static str,
    model: ModelConfig,
    rename_g: Rename,
    rename_d: Rename,
}

fn strip_main(name: &str) -> Option<String> {
    Some(name.strip_prefix("main.").unwrap_or(name).to_string())
}

fn same(name: &str) -> Option<String> {
    Some(name.to_string())
}

fn unet6(name: &str) -> Option<String> {
    names::pix2pix_generator(name, 6)
}

fn cases(fx: &Fixtures) -> Vec<Case> {
    let u = |case: &str, key: &str| fx.settings(case)[key].as_u64().unwrap() as usize;
    let dcgan28 = |case: &str| DcganConfig {
        nz: u(case, "nz"),
        ngf: u(case, "ngf"),
        ndf: u(case, "ndf"),
        d_dropout: Some(setting_f32(&fx.settings(case), "dropout")),
        ..DcganConfig::dcgan28()
    };
    let widths = |case: &str, key: &str| -> Vec<usize> {
        fx.settings(case)[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_u64().unwrap() as usize)
            .collect()
    };
    vec![
        Case {
            name: "dcgan64",
            model: ModelConfig::Dcgan(DcganConfig {
                nz: u("dcgan64", "nz"),
                ngf: u("dcgan64", "ngf"),
                ndf: u("dcgan64", "ndf"),
                ..DcganConfig::dcgan64(u("dcgan64", "channels"))
            }),
            rename_g: names::dcgan,
            rename_d: names::dcgan,
        },
        Case {
            name: "dcgan28",
            model: ModelConfig::Dcgan(dcgan28("dcgan28")),
            rename_g: same,
            rename_d: strip_main,
        },
        Case {
            name: "cdcgan28",
            model: ModelConfig::Cdcgan(CdcganConfig {
                embed_dim: u("cdcgan28", "embed"),
                ..CdcganConfig::new(dcgan28("cdcgan28"), u("cdcgan28", "classes"))
            }),
            rename_g: same,
            rename_d: strip_main,
        },
        Case {
            name: "mlp",
            model: ModelConfig::Mlp(MlpConfig {
                latent: u("mlp", "latent"),
                g_hidden: widths("mlp", "g_hidden"),
                d_hidden: widths("mlp", "d_hidden"),
                ..MlpConfig::digits()
            }),
            rename_g: strip_main,
            rename_d: strip_main,
        },
        Case {
            name: "mlp_points",
            model: ModelConfig::Mlp(MlpConfig {
                latent: u("mlp_points", "latent"),
                g_hidden: widths("mlp_points", "g_hidden"),
                d_hidden: widths("mlp_points", "d_hidden"),
                pack: u("mlp_points", "pack"),
                g_batch_norm: true,
                output: MlpOutput::Linear,
                ..MlpConfig::points()
            }),
            rename_g: strip_main,
            rename_d: strip_main,
        },
        Case {
            name: "pix2pix64",
            model: ModelConfig::Pix2Pix(Pix2PixConfig {
                ngf: u("pix2pix64", "ngf"),
                ndf: u("pix2pix64", "ndf"),
                d_layers: u("pix2pix64", "d_layers"),
                lambda_l1: setting_f32(&fx.settings("pix2pix64"), "lambda_l1"),
                dropout: false,
                ..Pix2PixConfig::new(64)
            }),
            rename_g: unet6,
            rename_d: names::pix2pix_discriminator,
        },
    ]
}

/// The reference tensors `CASE/PREFIX<name>` under gantry's names.
fn renamed(fx: &Fixtures, case: &str, prefix: &str, rename: Rename) -> BTreeMap<String, Tensor> {
    let full = format!("{case}/{prefix}");
    fx.keys_under(&full)
        .into_iter()
        .filter_map(|k| rename(&k).map(|n| (n, fx.get(case, &format!("{prefix}{k}")))))
        .collect()
}

/// The shipped model of `case` with the reference's initial weights.
fn loaded(fx: &Fixtures, case: &Case) -> Box<dyn Gan> {
    let gan = case
        .model
        .build(&mut rand::rngs::StdRng::seed_from_u64(0))
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    for (module, player, rename) in [
        (gan.generator(), "G", case.rename_g),
        (gan.discriminator(), "D", case.rename_d),
    ] {
        let tensors: HashMap<String, Tensor> = fx
            .keys_under(&format!("{}/{player}.before.", case.name))
            .into_iter()
            .map(|k| {
                (
                    k.clone(),
                    fx.get(case.name, &format!("{player}.before.{k}")),
                )
            })
            .collect();
        let options = LoadOptions {
            strict: true,
            rename: Some(&rename),
        };
        load_tensors(module, &tensors, &options, &fx.path)
            .unwrap_or_else(|e| panic!("{} {player}: {e}", case.name));
    }
    gan
}

/// The fixture's batch: `real`, with the labels and the condition where the case has them.
fn batch(fx: &Fixtures, case: &str) -> Batch {
    let has = |key: &str| fx.file.tensors.contains_key(&format!("{case}/{key}"));
    Batch {
        real: fx.get(case, "real"),
        condition: has("condition").then(|| fx.get(case, "condition")),
        labels: has("labels").then(|| {
            fx.get(case, "labels")
                .to_vec()
                .iter()
                .map(|&y| y as usize)
                .collect()
        }),
    }
}

/// A shipped model whose noise is the fixture's, everything else its own.
struct Scripted {
    inner: Box<dyn Gan>,
    z: Option<Tensor>,
}

impl Gan for Scripted {
    fn generator(&self) -> &dyn Module {
        self.inner.generator()
    }
    fn discriminator(&self) -> &dyn Module {
        self.inner.discriminator()
    }
    fn config(&self) -> ModelConfig {
        self.inner.config()
    }
    fn noise(&self, n: usize, _rng: &mut dyn RngCore) -> Option<Tensor> {
        let z = self.z.clone()?;
        assert_eq!(n, z.shape()[0], "the fixture's noise is for another batch");
        Some(z)
    }
    fn num_classes(&self) -> Option<usize> {
        self.inner.num_classes()
    }
    fn latent_input(&self, z: Tensor, labels: Option<&[usize]>) -> Tensor {
        self.inner.latent_input(z, labels)
    }
    fn pack(&self) -> usize {
        self.inner.pack()
    }
    fn discriminator_input<'t>(
        &self,
        x: gantry_autodiff::Var<'t>,
        batch: &Batch,
    ) -> gantry_autodiff::Var<'t> {
        self.inner.discriminator_input(x, batch)
    }
    fn d_loss_scale(&self) -> f32 {
        self.inner.d_loss_scale()
    }
    fn fake_first(&self) -> bool {
        self.inner.fake_first()
    }
}

fn sigmoid(t: &Tensor) -> Tensor {
    Tensor::from_vec(
        t.shape(),
        t.to_vec()
            .iter()
            .map(|x| 1.0 / (1.0 + (-x).exp()))
            .collect(),
    )
}

fn mean(t: &Tensor) -> f32 {
    let v = t.to_vec();
    (v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64) as f32
}

fn scalar(x: f32) -> Tensor {
    Tensor::from_vec(&[1], vec![x])
}

/// Forward values of the shipped players on the fixture's inputs, in training mode.
fn check_forward(fx: &Fixtures, case: &Case, probabilities: bool, report: &mut Report) {
    let gan = loaded(fx, case);
    let batch = batch(fx, case.name);
    let input = match &batch.condition {
        Some(a) => a.clone(),
        None => gan.latent_input(fx.get(case.name, "z"), batch.labels.as_deref()),
    };
    let tape = Tape::new();
    let fake = gan.generator().forward(tape.constant(input), Mode::Train);
    let judge = |x: Tensor| {
        let x = gan.discriminator_input(tape.constant(x), &batch);
        let logits = gan.discriminator().forward(x, Mode::Train).value();
        if probabilities {
            sigmoid(&logits)
        } else {
            logits
        }
    };
    // The order matters: each pass moves D's running statistics.
    let (d_real, d_fake) = if gan.fake_first() {
        let f = judge(fake.value());
        (judge(batch.real.clone()), f)
    } else {
        let r = judge(batch.real.clone());
        (r, judge(fake.value()))
    };
    let n = case.name;
    report.check(
        &format!("{n} fake"),
        &fake.value(),
        &fx.get(n, "fake"),
        VALUE_TOL,
    );
    report.check(
        &format!("{n} d_real"),
        &d_real,
        &fx.get(n, "d_real"),
        VALUE_TOL,
    );
    report.check(
        &format!("{n} d_fake"),
        &d_fake,
        &fx.get(n, "d_fake"),
        VALUE_TOL,
    );
}

/// One `Trainer::train_step` against the reference iteration.
fn check_step(fx: &Fixtures, case: &Case, probabilities: bool, report: &mut Report) {
    let n = case.name;
    let settings = fx.settings(n);
    let betas = settings["betas"].as_array().unwrap();
    let adam = OptimConfig::Adam {
        lr: setting_f32(&settings, "lr"),
        beta1: betas[0].as_f64().unwrap() as f32,
        beta2: betas[1].as_f64().unwrap() as f32,
    };
    let gan = Scripted {
        inner: loaded(fx, case),
        z: fx
            .file
            .tensors
            .contains_key(&format!("{n}/z"))
            .then(|| fx.get(n, "z")),
    };
    let config = TrainConfig {
        objective: ObjectiveConfig::default_for(&case.model),
        optim_g: adam.clone(),
        optim_d: adam,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(Box::new(gan), config).unwrap();
    let g_grads = Recording::install(&mut trainer.opt_g);
    let d_grads = Recording::install(&mut trainer.opt_d);
    let batch = batch(fx, n);
    let metrics = trainer.train_step(&mut || batch.clone()).unwrap();

    let logged = |name: &str| {
        metrics
            .get(name)
            .unwrap_or_else(|| panic!("{n}: the step logged no {name}: {metrics:?}"))
    };
    let scale = trainer.gan.d_loss_scale();
    for (name, factor) in [
        ("loss_d", 1.0),
        ("loss_d_real", scale),
        ("loss_d_fake", scale),
        ("loss_g", 1.0),
        ("loss_g_gan", 1.0),
        ("loss_g_l1", 1.0),
    ] {
        if name == "loss_g_l1" && !fx.file.tensors.contains_key(&format!("{n}/{name}")) {
            continue;
        }
        let want = fx.get(n, name).to_vec()[0] * factor;
        report.check(
            &format!("{n} {name}"),
            &scalar(logged(name)),
            &scalar(want),
            VALUE_TOL,
        );
    }
    // The mean probabilities D gave, as the step logs them.
    for (name, key) in [
        ("d_real", "d_real"),
        ("d_fake", "d_fake"),
        ("d_fake_g", "d_fake_g"),
    ] {
        let out = fx.get(n, key);
        let want = mean(&if probabilities { out } else { sigmoid(&out) });
        report.check(
            &format!("{n} {name}"),
            &scalar(logged(name)),
            &scalar(want),
            VALUE_TOL,
        );
    }
    for (player, grads, rename) in [
        ("G", &g_grads, case.rename_g),
        ("D", &d_grads, case.rename_d),
    ] {
        let want = renamed(fx, n, &format!("{player}.grad."), rename);
        let got = grads.borrow();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{n}: {player}'s trained parameters and the reference's"
        );
        for (name, w) in &want {
            report.check_rel(
                &format!("{n} {player}.grad.{name}"),
                &got[name],
                w,
                GRAD_TOL,
            );
        }
    }
    for (player, module, rename, trained) in [
        ("G", trainer.gan.generator(), case.rename_g, &g_grads),
        ("D", trainer.gan.discriminator(), case.rename_d, &d_grads),
    ] {
        let before = renamed(fx, n, &format!("{player}.before."), rename);
        let want = renamed(fx, n, &format!("{player}.after."), rename);
        let got: BTreeMap<String, Tensor> = state_dict(module).into_iter().collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{n}: {player}'s state and the reference's"
        );
        for (name, w) in &want {
            let label = format!("{n} {player}.after.{name}");
            if trained.borrow().contains_key(name) {
                // Adam's update, relative to its size (about the learning rate).
                let step = |t: &Tensor| t.sub(&before[name]);
                report.check_rel(&label, &step(&got[name]), &step(w), UPDATE_TOL);
            } else {
                report.check(&label, &got[name], w, STAT_TOL);
            }
        }
    }
}

#[test]
fn every_shipped_model_takes_pytorchs_training_step() {
    let fx = Fixtures::open(FILE);
    let mut report = Report::default();
    let all = cases(&fx);
    let in_file: Vec<String> = fx
        .file
        .metadata
        .keys()
        .filter_map(|k| k.strip_prefix("case:").map(str::to_string))
        .collect();
    for case in &all {
        let probabilities = fx.settings(case.name)["outputs"] == "probabilities";
        check_forward(&fx, case, probabilities, &mut report);
        check_step(&fx, case, probabilities, &mut report);
    }
    let mut tested: Vec<&str> = all.iter().map(|c| c.name).collect();
    tested.sort_unstable();
    let mut in_file: Vec<&str> = in_file.iter().map(String::as_str).collect();
    in_file.sort_unstable();
    assert_eq!(tested, in_file, "every case of {FILE} is tested");
    report.finish();
}

/// The comparison can fail: a shipped model one setting away from the reference does not
/// pass, whether the difference is in a layer (the 28x28 DCGAN with the tutorial's dropout
/// left on) or in the objective (pix2pix's L1 weighted 99 instead of 100).
#[test]
fn a_step_that_differs_from_the_reference_fails() {
    let fx = Fixtures::open(FILE);
    let all = cases(&fx);
    let pick = |name: &str| all.iter().position(|c| c.name == name).unwrap();
    let mut dropout = cases(&fx).swap_remove(pick("dcgan28"));
    match &mut dropout.model {
        ModelConfig::Dcgan(c) if c.variant == DcganVariant::Dcgan28 => c.d_dropout = Some(0.3),
        other => panic!("not the 28x28 DCGAN: {other:?}"),
    }
    let mut l1 = cases(&fx).swap_remove(pick("pix2pix64"));
    match &mut l1.model {
        ModelConfig::Pix2Pix(c) => c.lambda_l1 = 99.0,
        other => panic!("not pix2pix: {other:?}"),
    }
    for case in [dropout, l1] {
        let mut report = Report::default();
        check_step(&fx, &case, false, &mut report);
        assert!(
            std::panic::catch_unwind(move || report.finish()).is_err(),
            "{}: a model unlike the reference passed",
            case.name
        );
    }
}

/// The shipped models at full width have the references' trainable parameter counts (the
/// file's `param_counts`, counted by PyTorch).
#[test]
fn full_width_models_have_the_references_parameter_counts() {
    let fx = Fixtures::open(FILE);
    let counts = fx.json("param_counts");
    let models = [
        ("dcgan64", ModelConfig::Dcgan(DcganConfig::dcgan64(3))),
        ("dcgan28", ModelConfig::Dcgan(DcganConfig::dcgan28())),
        ("cdcgan_mnist", ModelConfig::Cdcgan(CdcganConfig::mnist())),
        ("mlp_digits", ModelConfig::Mlp(MlpConfig::digits())),
        ("pix2pix256", ModelConfig::Pix2Pix(Pix2PixConfig::new(256))),
    ];
    for (name, model) in models {
        let gan = model
            .build(&mut rand::rngs::StdRng::seed_from_u64(0))
            .unwrap();
        for (player, module) in [("G", gan.generator()), ("D", gan.discriminator())] {
            let key = format!("{name}_{player}");
            let want = counts[&key]
                .as_u64()
                .unwrap_or_else(|| panic!("param_counts has no {key}"));
            assert_eq!(gantry_nn::param_count(module) as u64, want, "{key}");
        }
    }
}
