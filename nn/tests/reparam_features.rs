//! Weight reparameterisation on built networks (names, state dicts, errors, spectral norm's
//! singular value), features returned beside a module's output, orthogonal initialisation,
//! and the state-dict round trip and configuration errors of the new layers.

use gantry_autodiff::Tape;
use gantry_nn::reparam::{self, EqualizedLr, SpectralNorm, largest_singular_value};
use gantry_nn::state_dict::{LoadOptions, load, save};
use gantry_nn::{
    AvgPool2dConfig, BatchNormConfig, Conv2dConfig, ConvTranspose2dConfig, InstanceNorm2dConfig,
    LeakyReLU, LinearConfig, Mode, Module, NnError, Sequential, Upsample, forward_with_features,
    init, named_params, param_count,
};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn rng() -> StdRng {
    StdRng::seed_from_u64(3)
}

fn discriminator(r: &mut StdRng) -> Sequential {
    Sequential::new()
        .add(
            Conv2dConfig::new(3, 8, 4)
                .stride(2)
                .padding(1)
                .build(r)
                .unwrap(),
        )
        .add(LeakyReLU::new(0.2))
        .add(
            Conv2dConfig::new(8, 16, 4)
                .stride(2)
                .padding(1)
                .bias(false)
                .build(r)
                .unwrap(),
        )
        .add(BatchNormConfig::new(16).build().unwrap())
        .add(LeakyReLU::new(0.2))
        .add(Conv2dConfig::new(16, 1, 4).build(r).unwrap())
}

fn names(m: &dyn Module) -> Vec<String> {
    named_params(m).into_iter().map(|(n, _)| n).collect()
}

#[test]
fn spectral_norm_wraps_every_conv_of_a_built_network_with_pytorch_names() {
    let mut r = rng();
    let d = discriminator(&mut r);
    let trainable_before = param_count(&d);
    let wrapped = reparam::apply(&d, reparam::conv_weights, |p| {
        SpectralNorm::default().attach(p, &mut r)
    })
    .unwrap();
    assert_eq!(wrapped, ["0.weight", "2.weight", "5.weight"]);
    assert_eq!(
        names(&d),
        [
            "0.weight_orig",
            "0.weight_u",
            "0.weight_v",
            "0.bias",
            "2.weight_orig",
            "2.weight_u",
            "2.weight_v",
            "3.weight",
            "3.bias",
            "3.running_mean",
            "3.running_var",
            "5.weight_orig",
            "5.weight_u",
            "5.weight_v",
            "5.bias",
        ]
    );
    assert_eq!(param_count(&d), trainable_before, "u and v are buffers");
    // A second wrap of the same weight is refused, naming both.
    let err = reparam::apply(&d, reparam::conv_weights, |p| {
        EqualizedLr::default().attach(p)
    })
    .unwrap_err();
    assert!(
        matches!(&err, NnError::Config { .. }) && err.to_string().contains("SpectralNorm"),
        "{err}"
    );
}

#[test]
fn spectral_norm_drives_the_largest_singular_value_to_one() {
    let mut r = rng();
    for (layer, axis) in [
        (
            Box::new(Conv2dConfig::new(6, 5, 3).build(&mut r).unwrap()) as Box<dyn Module>,
            0,
        ),
        (
            Box::new(ConvTranspose2dConfig::new(4, 7, 4).build(&mut r).unwrap()),
            1,
        ),
        (Box::new(LinearConfig::new(9, 12).build(&mut r).unwrap()), 0),
    ] {
        reparam::apply(layer.as_ref(), reparam::layer_weights, |p| {
            SpectralNorm::default().attach(p, &mut r)
        })
        .unwrap();
        let (_, weight) = named_params(layer.as_ref())
            .into_iter()
            .find(|(n, _)| n == "weight_orig")
            .expect("weight_orig");
        let raw = weight.value();
        let sigma_raw = largest_singular_value(&raw, axis, 10_000);
        let tape = Tape::new();
        let mut normalised = Tensor::zeros(&[1]);
        for _ in 0..200 {
            normalised = weight.read(&tape, Mode::Train).value();
        }
        let sigma = largest_singular_value(&normalised, axis, 10_000);
        assert!(
            (sigma - 1.0).abs() < 0.01,
            "{}: sigma of the normalised weight {sigma} (raw {sigma_raw})",
            layer.describe()
        );
        // Evaluation reuses the stored vectors: the same weight, and no update.
        let eval = weight.read(&tape, Mode::Eval).value();
        assert_eq!(
            eval.to_vec(),
            weight.read(&tape, Mode::Eval).value().to_vec()
        );
    }
}

#[test]
fn reparameterised_state_dicts_round_trip() {
    let mut r = rng();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.safetensors");
    let a = discriminator(&mut r);
    reparam::apply(&a, reparam::conv_weights, |p| {
        SpectralNorm::default().attach(p, &mut r)
    })
    .unwrap();
    let tape = Tape::new();
    let x = Tensor::randn(&[2, 3, 16, 16], 0.0, 1.0, &mut r);
    a.forward(tape.constant(x.clone()), Mode::Train); // moves u and v
    save(&a, &path).unwrap();

    let b = discriminator(&mut r);
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    // Unwrapped, the names differ: a strict load refuses and names the keys.
    let err = load(&b, &path, &strict).unwrap_err().to_string();
    assert!(
        err.contains("0.weight_orig") && err.contains("0.weight"),
        "{err}"
    );
    reparam::apply(&b, reparam::conv_weights, |p| {
        SpectralNorm::default().attach(p, &mut r)
    })
    .unwrap();
    load(&b, &path, &strict).unwrap();
    for ((na, pa), (nb, pb)) in named_params(&a).into_iter().zip(named_params(&b)) {
        assert_eq!(na, nb);
        assert_eq!(pa.value().to_vec(), pb.value().to_vec(), "{na}");
    }
    let t2 = Tape::new();
    let ya = a.forward(t2.constant(x.clone()), Mode::Eval).value();
    let yb = b.forward(t2.constant(x), Mode::Eval).value();
    assert_eq!(ya.to_vec(), yb.to_vec());
}

#[test]
fn equalized_lr_scales_by_he_constant_and_trains_the_stored_weight() {
    let mut r = rng();
    let conv = Conv2dConfig::new(3, 4, 3).build(&mut r).unwrap();
    init::normal_by_role(&conv, &mut r, |role| {
        (role == gantry_nn::ParamRole::ConvWeight).then_some((0.0, 1.0))
    });
    reparam::apply(&conv, reparam::conv_weights, |p| {
        EqualizedLr::default().attach(p)
    })
    .unwrap();
    assert_eq!(names(&conv), ["weight_orig", "bias"]);
    let tape = Tape::new();
    let read = conv.weight.read(&tape, Mode::Train).value().to_vec();
    let c = (2.0f32 / 27.0).sqrt();
    for (a, w) in read.iter().zip(conv.weight.value().to_vec()) {
        assert!((a - c * w).abs() <= 1e-6 * w.abs().max(1.0));
    }
    // The gradient reaches the stored weight, scaled by c.
    let x = tape.constant(Tensor::ones(&[1, 3, 3, 3]));
    let g = conv.forward(x, Mode::Train).sum().backward();
    let gw = g
        .get_key(conv.weight.id().0)
        .expect("gradient of the stored weight");
    assert!(gw.to_vec().iter().all(|v| (v - c).abs() < 1e-6), "{gw:?}");
    // A buffer or a vector is refused.
    let err = EqualizedLr::default()
        .attach(conv.bias.as_ref().unwrap())
        .unwrap_err();
    assert!(err.to_string().starts_with("EqualizedLr"), "{err}");
}

#[test]
fn sequential_features_equal_a_manual_forward() {
    let mut r = rng();
    let d = discriminator(&mut r);
    let x = Tensor::randn(&[2, 3, 16, 16], 0.0, 1.0, &mut r);
    let tape = Tape::new();
    let (y, features) = forward_with_features(&d, tape.constant(x.clone()), Mode::Eval);
    assert_eq!(features.names(), ["0", "1", "2", "3", "4", "5"]);
    let mut h = tape.constant(x);
    for (i, child) in d.children().iter().enumerate() {
        h = child.forward(h, Mode::Eval);
        let f = features.get(&i.to_string()).expect("a feature per child");
        assert_eq!(f.value().to_vec(), h.value().to_vec(), "feature {i}");
    }
    assert_eq!(y.value().to_vec(), h.value().to_vec());
    // A module without taps records nothing and gives its output.
    let up = Upsample::nearest(2).unwrap();
    let (_, none) =
        forward_with_features(&up, tape.constant(Tensor::ones(&[1, 1, 2, 2])), Mode::Eval);
    assert!(none.is_empty());
}

#[test]
fn orthogonal_init_gives_orthonormal_rows_or_columns() {
    let mut r = rng();
    for shape in [
        vec![4, 10],
        vec![10, 4],
        vec![6, 6],
        vec![3, 2, 3, 3],
        vec![20, 2, 2, 2],
    ] {
        let gain = 1.5;
        let w = init::orthogonal(&shape, gain, &mut r);
        assert_eq!(w.shape(), shape.as_slice());
        let rows = shape[0];
        let cols: usize = shape[1..].iter().product();
        let m = w.reshape(&[rows, cols]).mul_scalar(1.0 / gain);
        // W Wᵀ = I for wide (or square) matrices, Wᵀ W = I for tall ones.
        let gram = if rows <= cols {
            m.matmul(&m.transpose(0, 1))
        } else {
            m.transpose(0, 1).matmul(&m)
        };
        let k = rows.min(cols);
        let g = gram.to_vec();
        for i in 0..k {
            for j in 0..k {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!(
                    (g[i * k + j] - want).abs() < 1e-5,
                    "{shape:?} gram[{i},{j}] = {}",
                    g[i * k + j]
                );
            }
        }
    }
    // Haar distributed: the first entry of a 2x2 orthogonal matrix is cos of a uniform angle,
    // so its mean is 0 and its mean square 1/2.
    let draws: Vec<f32> = (0..4000)
        .map(|_| init::orthogonal(&[2, 2], 1.0, &mut r).to_vec()[0])
        .collect();
    let mean = draws.iter().sum::<f32>() / draws.len() as f32;
    let ms = draws.iter().map(|v| v * v).sum::<f32>() / draws.len() as f32;
    assert!(mean.abs() < 0.05, "mean {mean}");
    assert!((ms - 0.5).abs() < 0.03, "mean square {ms}");
}

#[test]
fn new_layers_refuse_bad_settings_with_a_message() {
    for (err, layer) in [
        (Upsample::nearest(0).unwrap_err(), "Upsample"),
        (AvgPool2dConfig::new(0).build().unwrap_err(), "AvgPool2d"),
        (
            AvgPool2dConfig::new(2).padding(2).build().unwrap_err(),
            "AvgPool2d",
        ),
        (
            AvgPool2dConfig::new(2).stride(0).build().unwrap_err(),
            "AvgPool2d",
        ),
        (
            InstanceNorm2dConfig::new(0).build().unwrap_err(),
            "InstanceNorm2d",
        ),
    ] {
        assert!(
            err.to_string().starts_with(layer),
            "{err} should name {layer}"
        );
    }
}

#[test]
fn instance_norm_state_dict_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.safetensors");
    let a = InstanceNorm2dConfig::new(3).affine(true).build().unwrap();
    let (w, _) = a.affine().unwrap();
    w.set(Tensor::from_vec(&[3], vec![0.5, 2.0, -1.0]));
    save(&a, &path).unwrap();
    let b = InstanceNorm2dConfig::new(3).affine(true).build().unwrap();
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    load(&b, &path, &strict).unwrap();
    assert_eq!(names(&b), ["weight", "bias"]);
    assert_eq!(b.affine().unwrap().0.value().to_vec(), vec![0.5, 2.0, -1.0]);
    // Without the affine transform there is nothing to save, as PyTorch.
    assert!(names(&InstanceNorm2dConfig::new(3).build().unwrap()).is_empty());
}

#[test]
fn equalized_lr_uses_pytorch_fan_in_on_transposed_convolutions_and_embeddings() {
    let mut r = rng();
    // [in, out, k, k] = [4, 3, 4, 4]: PyTorch's fan_in is size(1)·k·k = 48.
    let convt = ConvTranspose2dConfig::new(4, 3, 4).build(&mut r).unwrap();
    let table = gantry_nn::Embedding::new(7, 5, &mut r);
    for (module, weight, fan_in) in [
        (&convt as &dyn Module, &convt.weight, 48.0f32),
        (&table, &table.weight, 5.0),
    ] {
        reparam::apply(module, reparam::layer_weights, |p| {
            EqualizedLr::default().attach(p)
        })
        .unwrap();
        assert!(names(module).contains(&"weight_orig".to_string()));
        let tape = Tape::new();
        let read = weight.read(&tape, Mode::Train).value().to_vec();
        let c = (2.0 / fan_in).sqrt();
        for (a, w) in read.iter().zip(weight.value().to_vec()) {
            assert!(
                (a - c * w).abs() <= 1e-6 * w.abs().max(1.0),
                "{}",
                module.describe()
            );
        }
    }
}

#[test]
fn orthogonal_weights_initialises_every_layer_weight_and_nothing_else() {
    let mut r = rng();
    let d = discriminator(&mut r);
    let bias_before = named_params(&d)
        .into_iter()
        .find(|(n, _)| n == "0.bias")
        .map(|(_, p)| p.value().to_vec())
        .unwrap();
    init::orthogonal_weights(&d, 1.0, &mut r);
    for (name, p) in named_params(&d) {
        if name.ends_with("weight") && p.shape().len() == 4 {
            let s = p.shape();
            let (rows, cols) = (s[0], s[1..].iter().product::<usize>());
            let m = p.value().reshape(&[rows, cols]);
            // Every convolution of this discriminator is wide: W Wᵀ = I.
            assert!(rows <= cols, "{name}");
            let gram = m.matmul(&m.transpose(0, 1)).to_vec();
            for i in 0..rows {
                for j in 0..rows {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((gram[i * rows + j] - want).abs() < 1e-5, "{name} [{i},{j}]");
                }
            }
        }
    }
    let bias_after = named_params(&d)
        .into_iter()
        .find(|(n, _)| n == "0.bias")
        .map(|(_, p)| p.value().to_vec())
        .unwrap();
    assert_eq!(bias_before, bias_after, "biases are not layer weights");
    let bn = named_params(&d)
        .into_iter()
        .find(|(n, _)| n == "3.weight")
        .map(|(_, p)| p.value().to_vec())
        .unwrap();
    assert!(bn.iter().all(|&v| v == 1.0), "norm weights are untouched");
}
