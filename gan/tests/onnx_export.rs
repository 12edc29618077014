//! ONNX round trips: every generator is exported, run by `tract-onnx` (a runtime that is not
//! gantry), and compared with gantry's own forward pass on the same input.
//!
//! Tolerance: the largest absolute difference must stay below `TOL` = 1e-4 on outputs in
//! [-1, 1] (two f32 implementations summing in different orders differ by ~1e-6 here).

use gantry_autodiff::Tape;
use gantry_gan::export::{TestMode, to_onnx};
use gantry_gan::models::{
    CdcganConfig, DcganConfig, DcganVariant, Gan, MlpConfig, ModelConfig, Pix2PixConfig,
};
use gantry_nn::{Mode, named_params};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tract_onnx::prelude::{
    Datum, Framework, InferenceFact, InferenceModelExt, IntoTValue, TValue, Tensor as TractTensor,
    tvec,
};

const TOL: f32 = 1e-4;

/// Builds `config` and gives its batch norms non-trivial running statistics and affine
/// parameters, so that the running-statistics path is really exercised.
fn model(config: ModelConfig, seed: u64) -> Box<dyn Gan> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let gan = config.build(&mut rng).unwrap();
    for (name, p) in named_params(gan.generator()) {
        let shape = p.shape();
        let r = Tensor::rand_uniform(&shape, -0.5, 0.5, &mut rng);
        if name.ends_with("running_var") {
            p.set(r.map(|v| 1.0 + v));
        } else if name.ends_with("running_mean") || p.shape().len() == 1 {
            p.set(r);
        } else {
            // Weights of unit gain (the models' N(0, 0.02) leaves activations so small in
            // eval mode that a wrong slope or padding would hide below the tolerance).
            let fan_in: usize = shape[1..].iter().product();
            let std = 1.0 / (fan_in as f32).sqrt();
            p.set(Tensor::randn(&shape, 0.0, std, &mut rng));
        }
    }
    gan
}

fn f32_input(t: &Tensor) -> TValue {
    TractTensor::from_shape(t.shape(), &t.to_vec())
        .unwrap()
        .into_tvalue()
}

fn fact<T: Datum>(shape: &[usize]) -> InferenceFact {
    InferenceFact::dt_shape(T::datum_type(), shape)
}

/// Runs the ONNX `bytes` with tract on `inputs` (float tensors, then int64 labels).
fn run_tract(bytes: &[u8], floats: &[&Tensor], labels: Option<&[usize]>) -> Tensor {
    let mut m = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .expect("tract reads the exported file");
    let mut values = tvec![];
    for (i, t) in floats.iter().enumerate() {
        m = m.with_input_fact(i, fact::<f32>(t.shape())).unwrap();
        values.push(f32_input(t));
    }
    if let Some(l) = labels {
        m = m
            .with_input_fact(floats.len(), fact::<i64>(&[l.len()]))
            .unwrap();
        let l: Vec<i64> = l.iter().map(|&y| y as i64).collect();
        values.push(
            TractTensor::from_shape(&[l.len()], &l)
                .unwrap()
                .into_tvalue(),
        );
    }
    let plan = m
        .into_optimized()
        .expect("tract optimises the graph")
        .into_runnable()
        .unwrap();
    let out = plan.run(values).expect("tract runs the graph");
    let view = out[0].to_array_view::<f32>().unwrap();
    Tensor::from_vec(view.shape(), view.iter().copied().collect())
}

fn gantry_forward(gan: &dyn Gan, input: &Tensor, mode: Mode) -> Tensor {
    let tape = Tape::with_seed(0);
    gan.generator()
        .forward(tape.constant(input.clone()), mode)
        .value()
}

#[track_caller]
fn assert_close(ours: &Tensor, theirs: &Tensor, what: &str) {
    assert_eq!(ours.shape(), theirs.shape(), "{what}: shapes differ");
    let worst = ours
        .to_vec()
        .iter()
        .zip(theirs.to_vec())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst < TOL,
        "{what}: tract and gantry differ by {worst} (tolerance {TOL})"
    );
}

/// Exports `gan` in `mode`, runs it on `n` fresh noise samples and compares with gantry in
/// `gantry_mode`.
fn round_trip_noise(gan: &dyn Gan, mode: TestMode, gantry_mode: Mode, n: usize, what: &str) {
    let onnx = to_onnx(gan, mode).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let z = gan.noise(n, &mut rng).unwrap();
    let labels: Option<Vec<usize>> = gan.num_classes().map(|k| (0..n).map(|i| i % k).collect());
    let ours = gantry_forward(
        gan,
        &gan.latent_input(z.clone(), labels.as_deref()),
        gantry_mode,
    );
    let theirs = run_tract(&onnx.bytes, &[&z], labels.as_deref());
    assert_close(&ours, &theirs, what);
}

fn small_dcgan64(size: usize) -> DcganConfig {
    DcganConfig {
        image_size: size,
        nz: 12,
        ngf: 4,
        ndf: 4,
        ..DcganConfig::dcgan64(3)
    }
}

#[test]
fn mlp_images_and_points_run_in_tract_as_in_gantry() {
    let digits = MlpConfig {
        latent: 8,
        sample_shape: vec![1, 4, 4],
        g_hidden: vec![16, 32],
        ..MlpConfig::digits()
    };
    let gan = model(ModelConfig::Mlp(digits), 1);
    let onnx = to_onnx(gan.as_ref(), TestMode::Eval).unwrap();
    assert_eq!(onnx.inputs[0].shape, vec![None, Some(8)]);
    assert_eq!(onnx.outputs[0].shape, vec![None, Some(1), Some(4), Some(4)]);
    round_trip_noise(gan.as_ref(), TestMode::Eval, Mode::Eval, 3, "mlp digits");
    let points = model(ModelConfig::Mlp(MlpConfig::points()), 2);
    round_trip_noise(points.as_ref(), TestMode::Eval, Mode::Eval, 5, "mlp points");
}

#[test]
fn dcgan64_runs_in_tract_as_in_gantry_in_both_modes() {
    let gan = model(ModelConfig::Dcgan(small_dcgan64(32)), 3);
    let onnx = to_onnx(gan.as_ref(), TestMode::Eval).unwrap();
    assert_eq!(onnx.inputs[0].name, "z");
    assert_eq!(onnx.inputs[0].shape, vec![None, Some(12), Some(1), Some(1)]);
    assert_eq!(onnx.outputs[0].name, "image");
    round_trip_noise(gan.as_ref(), TestMode::Eval, Mode::Eval, 2, "dcgan64 eval");
    round_trip_noise(
        gan.as_ref(),
        TestMode::Paper,
        Mode::Train,
        4,
        "dcgan64 paper",
    );
}

#[test]
fn dcgan64_batch_size_is_free() {
    let gan = model(ModelConfig::Dcgan(small_dcgan64(16)), 4);
    for n in [1, 5] {
        round_trip_noise(
            gan.as_ref(),
            TestMode::Eval,
            Mode::Eval,
            n,
            &format!("N = {n}"),
        );
    }
}

#[test]
fn dcgan28_runs_in_tract_as_in_gantry() {
    let c = DcganConfig {
        nz: 10,
        ..DcganConfig::dcgan28()
    };
    assert_eq!(c.variant, DcganVariant::Dcgan28);
    let gan = model(ModelConfig::Dcgan(c), 5);
    let onnx = to_onnx(gan.as_ref(), TestMode::Eval).unwrap();
    assert_eq!(onnx.inputs[0].shape, vec![None, Some(10)]);
    round_trip_noise(gan.as_ref(), TestMode::Eval, Mode::Eval, 2, "dcgan28 eval");
    round_trip_noise(
        gan.as_ref(),
        TestMode::Paper,
        Mode::Train,
        3,
        "dcgan28 paper",
    );
}

#[test]
fn cdcgan_takes_int64_labels_in_both_variants() {
    let c28 = CdcganConfig {
        embed_dim: 6,
        ..CdcganConfig::new(
            // Narrower than the tutorial: the export follows the widths.
            DcganConfig {
                nz: 10,
                ngf: 8,
                ndf: 4,
                ..DcganConfig::dcgan28()
            },
            4,
        )
    };
    let gan = model(ModelConfig::Cdcgan(c28), 6);
    let onnx = to_onnx(gan.as_ref(), TestMode::Eval).unwrap();
    let names: Vec<_> = onnx
        .inputs
        .iter()
        .map(|s| (s.name.as_str(), s.dtype))
        .collect();
    assert_eq!(names, vec![("z", "float32"), ("label", "int64")]);
    assert_eq!(onnx.inputs[1].shape, vec![None]);
    round_trip_noise(gan.as_ref(), TestMode::Eval, Mode::Eval, 4, "cdcgan28");

    let c64 = CdcganConfig::new(small_dcgan64(16), 3);
    let gan = model(ModelConfig::Cdcgan(c64), 7);
    let onnx = to_onnx(gan.as_ref(), TestMode::Eval).unwrap();
    assert_eq!(onnx.inputs[0].shape, vec![None, Some(12), Some(1), Some(1)]);
    round_trip_noise(gan.as_ref(), TestMode::Eval, Mode::Eval, 3, "cdcgan64");
}

fn small_pix2pix(size: usize, dropout: bool) -> Pix2PixConfig {
    Pix2PixConfig {
        ngf: 4,
        ndf: 4,
        dropout,
        ..Pix2PixConfig::new(size)
    }
}

#[test]
fn pix2pix_runs_in_tract_as_in_gantry_in_both_modes() {
    let gan = model(ModelConfig::Pix2Pix(small_pix2pix(32, false)), 8);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let a = Tensor::rand_uniform(&[2, 3, 32, 32], -1.0, 1.0, &mut rng);
    for (mode, gantry_mode) in [(TestMode::Eval, Mode::Eval), (TestMode::Paper, Mode::Train)] {
        let onnx = to_onnx(gan.as_ref(), mode).unwrap();
        assert_eq!(onnx.inputs[0].name, "image");
        assert_eq!(onnx.outputs[0].name, "translated");
        let ours = gantry_forward(gan.as_ref(), &a, gantry_mode);
        let theirs = run_tract(&onnx.bytes, &[&a], None);
        assert_close(&ours, &theirs, &format!("pix2pix {mode:?}"));
    }
}

#[test]
fn pix2pix_dropout_is_written_as_the_identity() {
    // The same weights with and without dropout layers (the U-Net draws nothing for them):
    // the exported graphs must be identical, in both modes.
    let with = model(ModelConfig::Pix2Pix(small_pix2pix(64, true)), 10);
    let without = model(ModelConfig::Pix2Pix(small_pix2pix(64, false)), 10);
    for mode in [TestMode::Eval, TestMode::Paper] {
        let a = to_onnx(with.as_ref(), mode).unwrap().bytes;
        let b = to_onnx(without.as_ref(), mode).unwrap().bytes;
        assert!(a == b, "{mode:?}: dropout changed the exported graph");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let a = Tensor::rand_uniform(&[1, 3, 64, 64], -1.0, 1.0, &mut rng);
    let onnx = to_onnx(with.as_ref(), TestMode::Eval).unwrap();
    let ours = gantry_forward(with.as_ref(), &a, Mode::Eval);
    assert_close(
        &ours,
        &run_tract(&onnx.bytes, &[&a], None),
        "pix2pix 64 eval",
    );
}

#[test]
fn the_file_declares_opset_17_and_the_batch_as_a_symbol() {
    let gan = model(ModelConfig::Dcgan(small_dcgan64(16)), 12);
    let bytes = to_onnx(gan.as_ref(), TestMode::Eval).unwrap().bytes;
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .unwrap();
    assert_eq!(proto.ir_version, 8);
    assert_eq!(proto.opset_import[0].version, 17);
    let graph = proto.graph.unwrap();
    let dim = &graph.input[0].r#type.as_ref().unwrap();
    assert!(format!("{dim:?}").contains("DimParam(\"N\")"), "{dim:?}");
}
