//! Parity with PyTorch for BigGAN's parts (conditional batch norm, self-attention, the
//! projection head, residual up and down blocks) against `fixtures/torch/layers.safetensors`
//! (cases `biggan/*`, written by `fixtures/torch/gen_layers.py` from BigGAN-PyTorch's layer
//! definitions). Each case loads PyTorch's state dict strictly (so the names and shapes are
//! PyTorch's), runs one training forward, and compares the output, the input (and condition)
//! gradients, every parameter's gradient and the running statistics after the step.
//!
//! Tolerance: `max |ours - torch| <= TOL * max(1, max |torch|)`; `--nocapture` prints the
//! measured errors.

mod common;

use common::{Fixtures, Report};
use gantry_autodiff::{Tape, Var};
use gantry_nn::state_dict::{LoadOptions, load_tensors};
use gantry_nn::{
    ConditionalBatchNorm2d, Embedding, Mode, Module, ParamKind, ProjectionHead, ResBlockDown,
    ResBlockUp, SelfAttention, named_params,
};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::HashMap;

/// Convolutions, batch statistics and a softmax in sequence (f32, sums of up to 36 terms).
const TOL: f32 = 2e-5;

fn rng() -> StdRng {
    StdRng::seed_from_u64(9)
}

/// Loads the case's state, runs `forward(tape, x, cond)` in training mode and compares.
fn check(
    fx: &Fixtures,
    case: &str,
    module: &dyn Module,
    forward: &dyn for<'t> Fn(Var<'t>, Option<Var<'t>>) -> Var<'t>,
    report: &mut Report,
) {
    let state: HashMap<String, Tensor> = fx
        .keys_under(&format!("{case}/sd."))
        .into_iter()
        .map(|k| {
            let t = fx.get(case, &format!("sd.{k}"));
            (k, t)
        })
        .collect();
    assert!(!state.is_empty(), "{case}: no state dict in the fixtures");
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    load_tensors(module, &state, &strict, &fx.path)
        .unwrap_or_else(|e| panic!("{case}: PyTorch's state dict does not load: {e}"));

    let tape = Tape::new();
    let x = tape.leaf(fx.get(case, "x"));
    let has_cond = !fx.keys_under(&format!("{case}/cond")).is_empty();
    let cond = has_cond.then(|| tape.leaf(fx.get(case, "cond")));
    let y = forward(x, cond);
    report.check(&format!("{case} y"), &y.value(), &fx.get(case, "y"), TOL);
    let grads = y.backward_with(fx.get(case, "gy"));
    report.check(
        &format!("{case} gx"),
        grads.get(x).expect("gx"),
        &fx.get(case, "gx"),
        TOL,
    );
    if let Some(c) = cond {
        report.check(
            &format!("{case} gcond"),
            grads.get(c).expect("gradient of the condition"),
            &fx.get(case, "gcond"),
            TOL,
        );
    }
    for (name, p) in named_params(module) {
        match p.kind() {
            ParamKind::Trainable => {
                let g = grads
                    .get_key(p.id().0)
                    .unwrap_or_else(|| panic!("{case}: no gradient for {name}"));
                report.check(
                    &format!("{case} g.{name}"),
                    g,
                    &fx.get(case, &format!("g.{name}")),
                    TOL,
                );
            }
            ParamKind::Buffer => {
                report.check(
                    &format!("{case} after.{name}"),
                    &p.value(),
                    &fx.get(case, &format!("after.{name}")),
                    TOL,
                );
            }
        }
    }
}

#[test]
fn conditional_batch_norm_matches_pytorch() {
    let fx = Fixtures::open("layers.safetensors");
    let mut report = Report::default();
    let cbn = ConditionalBatchNorm2d::new(3, 5, &mut rng()).unwrap();
    check(
        &fx,
        "biggan/cbn",
        &cbn,
        &|x, c| cbn.forward_cond(x, c.expect("a condition"), Mode::Train),
        &mut report,
    );
    report.finish();
}

#[test]
fn self_attention_matches_pytorch() {
    let fx = Fixtures::open("layers.safetensors");
    let mut report = Report::default();
    let att = SelfAttention::new(16, &mut rng()).unwrap();
    assert_eq!(att.gamma.value().to_vec(), vec![0.0], "gamma starts at 0");
    check(
        &fx,
        "biggan/attention",
        &att,
        &|x, _| att.forward(x, Mode::Train),
        &mut report,
    );
    report.finish();
}

#[test]
fn projection_head_matches_pytorch() {
    let fx = Fixtures::open("layers.safetensors");
    let case = "biggan/projection";
    let labels: Vec<usize> = fx.settings(case)["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .map(|l| l.as_u64().expect("a label") as usize)
        .collect();
    let mut report = Report::default();
    let head = ProjectionHead::new(6, 5, &mut rng()).unwrap();
    let one_hot = Embedding::one_hot(&labels, 5);
    check(
        &fx,
        case,
        &head,
        &|x, _| {
            let y = x.tape().constant(one_hot.clone());
            head.forward_cond(x, y, Mode::Train)
        },
        &mut report,
    );
    report.finish();
}

#[test]
fn residual_blocks_match_pytorch() {
    let fx = Fixtures::open("layers.safetensors");
    let mut report = Report::default();
    let up = ResBlockUp::new(4, 3, 5, &mut rng()).unwrap();
    check(
        &fx,
        "biggan/gblock",
        &up,
        &|x, c| up.forward_cond(x, c.expect("a condition"), Mode::Train),
        &mut report,
    );
    for case in [
        "biggan/dblock_first",
        "biggan/dblock_pre",
        "biggan/dblock_same",
    ] {
        let s = fx.settings(case);
        let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{case}: {k}")) as usize;
        let b = |k: &str| s[k].as_bool().unwrap_or_else(|| panic!("{case}: {k}"));
        let down = ResBlockDown::new(
            n("in"),
            n("out"),
            b("preactivation"),
            b("downsample"),
            &mut rng(),
        )
        .unwrap();
        check(
            &fx,
            case,
            &down,
            &|x, _| down.forward(x, Mode::Train),
            &mut report,
        );
    }
    report.finish();
}
