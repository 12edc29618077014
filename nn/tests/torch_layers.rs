//! Parity with PyTorch for the layers of ProGAN, BigGAN and pix2pixHD and for the weight
//! reparameterisations, against `fixtures/torch/layers.safetensors` (written by
//! `fixtures/torch/gen_layers.py`; regenerate with `python fixtures/torch/make_fixtures.py
//! layers`). Each case compares the forward output, the input gradient, the parameter
//! gradients (of `sum(y * gy)`) and the state-dict names and shapes.
//!
//! Tolerances: `max |ours - torch| <= TOL * max(1, max |torch|)`; run with `--nocapture` to see
//! the measured errors.

mod common;

use common::{Fixtures, Report, setting_f32};
use gantry_autodiff::Tape;
use gantry_nn::reparam::{self, EqualizedLr, SpectralNorm};
use gantry_nn::state_dict::{LoadOptions, load_tensors};
use gantry_nn::{
    AvgPool2dConfig, Conv2dConfig, ConvTranspose2dConfig, Embedding, InstanceNorm2dConfig,
    LinearConfig, MaxoutConfig, MinibatchStdDev, Mode, Module, Param, PixelNorm, ReflectionPad2d,
    Upsample, named_params,
};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::HashMap;

/// Layers that only move, copy or average values (a few f32 roundings).
const EXACT_TOL: f32 = 1e-6;
/// Normalisations and reductions (sums of tens of terms, a square root).
const NORM_TOL: f32 = 1e-5;
/// Convolutions and linear layers behind a reparameterisation (dot products of up to 48
/// terms, then a division by the estimated singular value).
const REPARAM_TOL: f32 = 2e-5;

fn rng() -> StdRng {
    StdRng::seed_from_u64(15)
}

/// `settings["state_dict"]` as name -> shape.
fn torch_names(s: &serde_json::Value) -> Vec<(String, Vec<usize>)> {
    let mut v: Vec<(String, Vec<usize>)> = s["state_dict"]
        .as_object()
        .unwrap_or_else(|| panic!("no state_dict in settings {s}"))
        .iter()
        .map(|(k, shape)| {
            let dims = shape
                .as_array()
                .expect("a shape")
                .iter()
                .map(|d| d.as_u64().expect("a size") as usize)
                .collect();
            (k.clone(), dims)
        })
        .collect();
    v.sort();
    v
}

/// Our names and shapes, sorted.
#[track_caller]
fn assert_same_names(module: &dyn Module, s: &serde_json::Value, case: &str) {
    let mut ours: Vec<(String, Vec<usize>)> = named_params(module)
        .into_iter()
        .map(|(n, p)| (n, p.shape()))
        .collect();
    ours.sort();
    assert_eq!(ours, torch_names(s), "{case}: state-dict names and shapes");
}

/// Loads the case's `sd.*` tensors into `module`, strictly.
#[track_caller]
fn load_case_state(fx: &Fixtures, case: &str, module: &dyn Module) {
    let prefix = format!("{case}/sd.");
    let tensors: HashMap<String, Tensor> = fx
        .keys_under(&prefix)
        .into_iter()
        .map(|k| {
            let t = fx.get(case, &format!("sd.{k}"));
            (k, t)
        })
        .collect();
    assert!(!tensors.is_empty(), "{case}: no state dict in the fixtures");
    let options = LoadOptions {
        strict: true,
        ..Default::default()
    };
    load_tensors(module, &tensors, &options, &fx.path)
        .unwrap_or_else(|e| panic!("{case}: loading PyTorch's state dict: {e}"));
}

/// Runs `module` on the case's `x` in `mode`, compares `y` and `gx`, and the gradient of each
/// `(key, param)` against `g_KEY`.
fn check_case(
    fx: &Fixtures,
    case: &str,
    module: &dyn Module,
    mode: Mode,
    params: &[(&str, &Param)],
    tol: f32,
    report: &mut Report,
) {
    let tape = Tape::new();
    let x = tape.leaf(fx.get(case, "x"));
    let y = module.forward(x, mode);
    report.check(&format!("{case} y"), &y.value(), &fx.get(case, "y"), tol);
    let grads = y.backward_with(fx.get(case, "gy"));
    report.check(
        &format!("{case} gx"),
        grads.get(x).expect("input gradient"),
        &fx.get(case, "gx"),
        tol,
    );
    for (key, p) in params {
        let g = grads
            .get_key(p.id().0)
            .unwrap_or_else(|| panic!("{case}: no gradient for {key}"));
        report.check(
            &format!("{case} g_{key}"),
            g,
            &fx.get(case, &format!("g_{key}")),
            tol,
        );
    }
}

#[test]
fn upsampling_matches_pytorch() {
    let fx = Fixtures::open("layers.safetensors");
    let mut report = Report::default();
    for case in [
        "upsample/nearest2",
        "upsample/nearest3",
        "upsample/bilinear2",
        "upsample/bilinear3",
    ] {
        let s = fx.settings(case);
        let factor = s["factor"].as_u64().expect("factor") as usize;
        let layer = match s["mode"].as_str() {
            Some("nearest") => Upsample::nearest(factor),
            Some("bilinear") => Upsample::bilinear(factor),
            other => panic!("{case}: mode {other:?}"),
        }
        .unwrap();
        assert_same_names(&layer, &s, case);
        check_case(&fx, case, &layer, Mode::Train, &[], EXACT_TOL, &mut report);
    }
    report.finish();
}

#[test]
fn avg_pool_matches_pytorch() {
    let fx = Fixtures::open("layers.safetensors");
    let mut report = Report::default();
    for case in [
        "avg_pool/k3s2p1_exclude",
        "avg_pool/k3s2p1_include",
        "avg_pool/k2s2p0",
    ] {
        let s = fx.settings(case);
        let get = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{case}: {k}")) as usize;
        let layer = AvgPool2dConfig::new(get("kernel"))
            .stride(get("stride"))
            .padding(get("padding"))
            .count_include_pad(s["count_include_pad"].as_bool().expect("count_include_pad"))
            .build()
            .unwrap();
        assert_same_names(&layer, &s, case);
        check_case(&fx, case, &layer, Mode::Train, &[], EXACT_TOL, &mut report);
    }
    report.finish();
}

#[test]
fn instance_norm_matches_pytorch() {
    let fx = Fixtures::open("layers.safetensors");
    let mut report = Report::default();
    for case in ["instance_norm/plain", "instance_norm/affine"] {
        let s = fx.settings(case);
        let affine = s["affine"].as_bool().expect("affine");
        let mut config = InstanceNorm2dConfig::new(4).affine(affine);
        config.eps = setting_f32(&s, "eps");
        let layer = config.build().unwrap();
        assert_same_names(&layer, &s, case);
        let params: Vec<(&str, &Param)> = match layer.affine() {
            Some((w, b)) => {
                w.set(fx.get(case, "weight"));
                b.set(fx.get(case, "bias"));
                vec![("weight", w), ("bias", b)]
            }
            None => vec![],
        };
        // No running statistics: both modes normalise with the instance's own.
        for mode in [Mode::Train, Mode::Eval] {
            check_case(&fx, case, &layer, mode, &params, NORM_TOL, &mut report);
        }
    }
    report.finish();
}

#[test]
fn reflection_pad_matches_pytorch() {
    let fx = Fixtures::open("layers.safetensors");
    let mut report = Report::default();
    for case in ["reflection_pad/p2", "reflection_pad/l1r2t3b0"] {
        let s = fx.settings(case);
        let get = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{case}: {k}")) as usize;
        let layer = ReflectionPad2d {
            left: get("left"),
            right: get("right"),
            top: get("top"),
            bottom: get("bottom"),
        };
        assert_same_names(&layer, &s, case);
        check_case(&fx, case, &layer, Mode::Train, &[], EXACT_TOL, &mut report);
    }
    report.finish();
}

#[test]
fn pixel_norm_and_minibatch_std_match_the_reference() {
    let fx = Fixtures::open("layers.safetensors");
    let mut report = Report::default();
    let s = fx.settings("pixel_norm");
    let pn = PixelNorm {
        eps: setting_f32(&s, "eps"),
    };
    check_case(
        &fx,
        "pixel_norm",
        &pn,
        Mode::Train,
        &[],
        NORM_TOL,
        &mut report,
    );
    for case in ["minibatch_std/group4", "minibatch_std/whole"] {
        let s = fx.settings(case);
        let layer = MinibatchStdDev {
            group_size: s["group_size"].as_u64().map(|g| g as usize),
            ..Default::default()
        };
        check_case(&fx, case, &layer, Mode::Train, &[], NORM_TOL, &mut report);
    }
    report.finish();
}

#[test]
fn equalized_lr_matches_pytorch() {
    let fx = Fixtures::open("layers.safetensors");
    let mut report = Report::default();
    let mut r = rng();
    let conv = Conv2dConfig::new(3, 4, 3).padding(1).build(&mut r).unwrap();
    let linear = LinearConfig::new(6, 5).build(&mut r).unwrap();
    for (case, module, weight, bias) in [
        (
            "equalized_lr/conv",
            &conv as &dyn Module,
            &conv.weight,
            conv.bias.as_ref().unwrap(),
        ),
        (
            "equalized_lr/linear",
            &linear,
            &linear.weight,
            linear.bias.as_ref().unwrap(),
        ),
    ] {
        let s = fx.settings(case);
        let eq = EqualizedLr {
            gain: setting_f32(&s, "gain"),
        };
        let wrapped = reparam::apply(module, reparam::layer_weights, |p| eq.attach(p)).unwrap();
        assert_eq!(wrapped, ["weight"], "{case}");
        assert_same_names(module, &s, case);
        load_case_state(&fx, case, module);
        let params = [("weight_orig", weight), ("bias", bias)];
        check_case(
            &fx,
            case,
            module,
            Mode::Train,
            &params,
            REPARAM_TOL,
            &mut report,
        );
    }
    report.finish();
}

/// Spectral norm on one layer: PyTorch's state dict loads, one training forward gives its
/// output, gradients and updated vectors, and evaluation (before and after) uses the stored
/// vectors as PyTorch does.
fn check_spectral_case(
    fx: &Fixtures,
    case: &str,
    build: &dyn Fn() -> Box<dyn Module>,
    report: &mut Report,
) {
    let s = fx.settings(case);
    let sn = SpectralNorm::default();
    let mut r = rng();
    let attach = |module: &dyn Module, r: &mut StdRng| {
        let wrapped = reparam::apply(module, reparam::layer_weights, |p| sn.attach(p, r)).unwrap();
        assert_eq!(wrapped, ["weight"], "{case}");
        assert_same_names(module, &s, case);
        load_case_state(fx, case, module);
    };
    // Evaluation straight from the loaded state: the stored vectors, no iteration.
    let fresh = build();
    attach(fresh.as_ref(), &mut r);
    let tape = Tape::new();
    let y = fresh.forward(tape.constant(fx.get(case, "x")), Mode::Eval);
    report.check(
        &format!("{case} y_eval_before"),
        &y.value(),
        &fx.get(case, "y_eval_before"),
        REPARAM_TOL,
    );

    let module = build();
    attach(module.as_ref(), &mut r);
    let named: HashMap<String, &Param> = named_params(module.as_ref()).into_iter().collect();
    let params = [
        ("weight_orig", named["weight_orig"]),
        ("bias", named["bias"]),
    ];
    check_case(
        fx,
        case,
        module.as_ref(),
        Mode::Train,
        &params,
        REPARAM_TOL,
        report,
    );
    report.check(
        &format!("{case} u_after"),
        &named["weight_u"].value(),
        &fx.get(case, "u_after"),
        REPARAM_TOL,
    );
    report.check(
        &format!("{case} v_after"),
        &named["weight_v"].value(),
        &fx.get(case, "v_after"),
        REPARAM_TOL,
    );
    let tape = Tape::new();
    let y = module.forward(tape.constant(fx.get(case, "x")), Mode::Eval);
    report.check(
        &format!("{case} y_eval_after"),
        &y.value(),
        &fx.get(case, "y_eval_after"),
        REPARAM_TOL,
    );
}

#[test]
fn spectral_norm_matches_pytorch() {
    let fx = Fixtures::open("layers.safetensors");
    let mut report = Report::default();
    check_spectral_case(
        &fx,
        "spectral_norm/conv",
        &|| {
            let m = Conv2dConfig::new(3, 4, 3)
                .padding(1)
                .build(&mut rng())
                .unwrap();
            Box::new(m)
        },
        &mut report,
    );
    check_spectral_case(
        &fx,
        "spectral_norm/linear",
        &|| Box::new(LinearConfig::new(6, 5).build(&mut rng()).unwrap()),
        &mut report,
    );
    check_spectral_case(
        &fx,
        "spectral_norm/conv_transpose",
        &|| {
            let m = ConvTranspose2dConfig::new(3, 2, 4)
                .stride(2)
                .padding(1)
                .build(&mut rng())
                .unwrap();
            Box::new(m)
        },
        &mut report,
    );
    report.finish();
}

#[test]
fn spectral_norm_on_an_embedding_matches_pytorch() {
    let fx = Fixtures::open("layers.safetensors");
    let case = "spectral_norm/embedding";
    let s = fx.settings(case);
    let labels: Vec<usize> = s["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .map(|l| l.as_u64().expect("a label") as usize)
        .collect();
    let mut r = rng();
    let table = Embedding::new(7, 5, &mut r);
    let sn = SpectralNorm::default();
    reparam::apply(&table, reparam::layer_weights, |p| sn.attach(p, &mut r)).unwrap();
    assert_same_names(&table, &s, case);
    load_case_state(&fx, case, &table);
    let tape = Tape::new();
    let y = table.forward(tape.constant(Embedding::one_hot(&labels, 7)), Mode::Train);
    let mut report = Report::default();
    report.check("embedding y", &y.value(), &fx.get(case, "y"), REPARAM_TOL);
    let grads = y.backward_with(fx.get(case, "gy"));
    report.check(
        "embedding g_weight_orig",
        grads.get_key(table.weight.id().0).expect("weight gradient"),
        &fx.get(case, "g_weight_orig"),
        REPARAM_TOL,
    );
    let named: HashMap<String, &Param> = named_params(&table).into_iter().collect();
    report.check(
        "embedding u_after",
        &named["weight_u"].value(),
        &fx.get(case, "u_after"),
        REPARAM_TOL,
    );
    report.check(
        "embedding v_after",
        &named["weight_v"].value(),
        &fx.get(case, "v_after"),
        REPARAM_TOL,
    );
    report.finish();
}

/// Maxout as PacGAN's toy discriminator uses it, against a PyTorch module written from its
/// definition (`linear`, then the maximum over each unit's pieces, row `j * pieces + k` piece
/// `k` of unit `j`): the output and the gradients of the input, the weight and the bias.
#[test]
fn maxout_matches_pytorch() {
    let fx = Fixtures::open("layers.safetensors");
    let mut report = Report::default();
    let case = "maxout/6_4x5";
    let s = fx.settings(case);
    let get = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{case}: {k}")) as usize;
    let layer = MaxoutConfig::new(get("in"), get("out"), get("pieces"))
        .build(&mut rng())
        .unwrap();
    assert_same_names(&layer, &s, case);
    load_case_state(&fx, case, &layer);
    let params = [("weight", &layer.weight), ("bias", &layer.bias)];
    check_case(
        &fx,
        case,
        &layer,
        Mode::Train,
        &params,
        EXACT_TOL,
        &mut report,
    );
    report.finish();
}
