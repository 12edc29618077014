//! Layer behaviour through the public API: configuration errors, training versus evaluation
//! mode, names, gradients reaching (or not reaching) parameters, optimizer errors, schedules
//! and summaries.

use gantry_autodiff::{Reduction, Tape};
use gantry_nn::optim::{AdamConfig, LrSchedule, Optimizer, SgdConfig};
use gantry_nn::{
    BatchNormConfig, Conv2dConfig, ConvTranspose2dConfig, Dropout, Embedding, Flatten, LeakyReLU,
    LinearConfig, MaxoutConfig, Mode, Module, NnError, ParamKind, ParamRole, ReLU, Reshape,
    Sequential, Sigmoid, Tanh, init, loss, named_params, param_count, set_requires_grad, summary,
};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

/// The message of a configuration error, which must name the layer.
#[track_caller]
fn config_message(r: Result<impl std::fmt::Debug, NnError>, layer: &str) -> String {
    match r {
        Err(e @ NnError::Config { .. }) => {
            let m = e.to_string();
            assert!(m.starts_with(layer), "{m} should name {layer}");
            m
        }
        other => panic!("expected a {layer} configuration error, got {other:?}"),
    }
}

#[test]
fn invalid_configurations_are_errors() {
    let mut r = rng();
    config_message(LinearConfig::new(0, 3).build(&mut r), "Linear");
    config_message(LinearConfig::new(3, 0).build(&mut r), "Linear");

    config_message(Conv2dConfig::new(0, 4, 3).build(&mut r), "Conv2d");
    config_message(Conv2dConfig::new(3, 0, 3).build(&mut r), "Conv2d");
    config_message(Conv2dConfig::new(3, 4, 0).build(&mut r), "Conv2d");
    config_message(Conv2dConfig::new(3, 4, 3).stride(0).build(&mut r), "Conv2d");
    config_message(
        Conv2dConfig::new(3, 4, 3).dilation(0).build(&mut r),
        "Conv2d",
    );

    config_message(
        ConvTranspose2dConfig::new(0, 4, 4).build(&mut r),
        "ConvTranspose2d",
    );
    config_message(
        ConvTranspose2dConfig::new(4, 4, 0).build(&mut r),
        "ConvTranspose2d",
    );
    config_message(
        ConvTranspose2dConfig::new(4, 4, 4).stride(0).build(&mut r),
        "ConvTranspose2d",
    );
    for (stride, op) in [(1, 1), (2, 2), (2, 3)] {
        let m = config_message(
            ConvTranspose2dConfig::new(4, 4, 4)
                .stride(stride)
                .output_padding(op)
                .build(&mut r),
            "ConvTranspose2d",
        );
        assert!(
            m.contains(&format!(
                "output_padding {op} must be smaller than stride {stride}"
            )),
            "{m}"
        );
    }
    assert!(
        ConvTranspose2dConfig::new(4, 4, 5)
            .stride(2)
            .output_padding(1)
            .build(&mut r)
            .is_ok()
    );

    config_message(BatchNormConfig::new(0).build(), "BatchNorm");
    for (eps, momentum) in [
        (0.0, 0.1),
        (-1e-5, 0.1),
        (f32::NAN, 0.1),
        (1e-5, -0.1),
        (1e-5, 1.5),
    ] {
        let c = BatchNormConfig {
            eps,
            momentum,
            ..BatchNormConfig::new(4)
        };
        config_message(c.build(), "BatchNorm");
    }
}

#[test]
fn layer_configs_default_to_pytorch() {
    let c = Conv2dConfig::new(3, 8, 4);
    assert_eq!((c.stride, c.padding, c.dilation, c.bias), (1, 0, 1, true));
    let t = ConvTranspose2dConfig::new(3, 8, 4);
    assert_eq!(
        (t.stride, t.padding, t.output_padding, t.dilation, t.bias),
        (1, 0, 0, 1, true)
    );
    let b = BatchNormConfig::new(8);
    assert_eq!((b.eps, b.momentum), (1e-5, 0.1));
    assert!(LinearConfig::new(2, 3).bias);
    assert_eq!(LeakyReLU::default().slope, 0.01);

    // PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in * k * k, or
    // out * k * k for a transposed convolution (the weight's second axis).
    let mut r = rng();
    let conv = Conv2dConfig::new(4, 6, 3).build(&mut r).unwrap();
    let bound = 1.0 / (4.0f32 * 9.0).sqrt();
    let w = conv.weight.value().to_vec();
    assert!(w.iter().all(|v| v.abs() <= bound));
    assert!(
        w.iter().any(|v| v.abs() > 0.8 * bound),
        "spread over the range"
    );
    let convt = ConvTranspose2dConfig::new(4, 6, 3).build(&mut r).unwrap();
    assert_eq!(convt.weight.shape(), [4, 6, 3, 3]);
    let bound = 1.0 / (6.0f32 * 9.0).sqrt();
    assert!(
        convt
            .weight
            .value()
            .to_vec()
            .iter()
            .all(|v| v.abs() <= bound)
    );
}

/// A deterministic `[N, C, H, W]` input with per-channel offsets.
fn input(shape: &[usize], seed: u64) -> Tensor {
    let mut r = StdRng::seed_from_u64(seed);
    Tensor::randn(shape, 0.5, 2.0, &mut r)
}

#[test]
fn batch_norm_train_normalises_and_updates_running_statistics() {
    let bn = BatchNormConfig::new(3).build().unwrap();
    let x = input(&[4, 3, 5, 5], 1);
    let tape = Tape::new();
    let y = bn.forward(tape.constant(x.clone()), Mode::Train).value();
    let (mean, var) = x.channel_moments();
    let (ym, yv) = y.channel_moments();
    assert!(ym.to_vec().iter().all(|v| v.abs() < 1e-5), "{ym:?}");
    assert!(yv.to_vec().iter().all(|v| (v - 1.0).abs() < 1e-3), "{yv:?}");
    // running = 0.9 running + 0.1 batch, the variance unbiased (n = 100 per channel).
    let n = 100.0;
    for c in 0..3 {
        let (m, v) = (mean.to_vec()[c], var.to_vec()[c]);
        let rm = bn.running_mean.value().to_vec()[c];
        let rv = bn.running_var.value().to_vec()[c];
        assert!(
            (rm - 0.1 * m).abs() < 1e-6,
            "channel {c}: {rm} vs {}",
            0.1 * m
        );
        let want = 0.9 + 0.1 * v * n / (n - 1.0);
        assert!((rv - want).abs() < 1e-5, "channel {c}: {rv} vs {want}");
    }
}

#[test]
fn batch_norm_eval_uses_running_statistics_and_leaves_them() {
    let bn = BatchNormConfig::new(2).build().unwrap();
    bn.running_mean.set(Tensor::from_vec(&[2], vec![1.0, -2.0]));
    bn.running_var.set(Tensor::from_vec(&[2], vec![4.0, 0.25]));
    bn.weight.set(Tensor::from_vec(&[2], vec![2.0, 1.0]));
    bn.bias.set(Tensor::from_vec(&[2], vec![0.5, 0.0]));
    let x = Tensor::from_vec(&[2, 2], vec![3.0, -2.0, 1.0, -1.5]);
    let tape = Tape::new();
    let xv = tape.leaf(x);
    let y = bn.forward(xv, Mode::Eval);
    let eps = 1e-5f32;
    let want = [
        (3.0 - 1.0) / (4.0 + eps).sqrt() * 2.0 + 0.5,
        0.0,
        0.5,
        (-1.5 + 2.0) / (0.25 + eps).sqrt(),
    ];
    for (g, w) in y.value().to_vec().iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{g} vs {w}");
    }
    assert_eq!(bn.running_mean.value().to_vec(), vec![1.0, -2.0]);
    assert_eq!(bn.running_var.value().to_vec(), vec![4.0, 0.25]);
    // The statistics are constants: dx = gamma / sigma * dy.
    let grads = y.sum().backward();
    let gx = grads.get(xv).unwrap().to_vec();
    let k = [2.0 / (4.0 + eps).sqrt(), 1.0 / (0.25 + eps).sqrt()];
    for (i, g) in gx.iter().enumerate() {
        assert!((g - k[i % 2]).abs() < 1e-5, "{g} vs {}", k[i % 2]);
    }
}

#[test]
fn batch_norm_buffers_are_saved_but_not_trained() {
    let bn = BatchNormConfig::new(3).build().unwrap();
    let kinds: Vec<(String, ParamKind)> = named_params(&bn)
        .into_iter()
        .map(|(n, p)| (n, p.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("weight".to_string(), ParamKind::Trainable),
            ("bias".to_string(), ParamKind::Trainable),
            ("running_mean".to_string(), ParamKind::Buffer),
            ("running_var".to_string(), ParamKind::Buffer),
        ]
    );
    assert_eq!(param_count(&bn), 6);
    // An optimizer needs no gradient for the buffers and leaves them alone.
    let tape = Tape::new();
    let y = bn.forward(tape.constant(input(&[4, 3], 2)), Mode::Train);
    let stats = (
        bn.running_mean.value().to_vec(),
        bn.running_var.value().to_vec(),
    );
    let grads = y.mul(y).sum().backward();
    SgdConfig::new(0.1).build().step(&bn, &grads).unwrap();
    assert_eq!(
        (
            bn.running_mean.value().to_vec(),
            bn.running_var.value().to_vec()
        ),
        stats
    );
}

#[test]
fn dropout_is_identity_in_eval_and_scales_in_train() {
    let d = Dropout::new(0.25);
    let x = Tensor::full(&[100, 100], 2.0);
    let tape = Tape::new();
    let xv = tape.leaf(x.clone());
    assert_eq!(d.forward(xv, Mode::Eval).value().to_vec(), x.to_vec());

    let y = d.forward(xv, Mode::Train);
    let v = y.value().to_vec();
    let kept = v.iter().filter(|&&e| e != 0.0).count();
    assert!(
        v.iter().all(|&e| e == 0.0 || (e - 2.0 / 0.75).abs() < 1e-6),
        "kept elements are scaled by 1/(1-p)"
    );
    let frac = kept as f32 / v.len() as f32;
    assert!((frac - 0.75).abs() < 0.02, "kept fraction {frac}");
    // The gradient goes through the same mask.
    let grads = y.sum().backward();
    let g = grads.get(xv).unwrap().to_vec();
    for (gi, yi) in g.iter().zip(&v) {
        assert_eq!(*gi, if *yi == 0.0 { 0.0 } else { 1.0 / 0.75 });
    }
    // The mask comes from the tape's seed: reproducible.
    let again = Tape::new();
    let y2 = d.forward(again.constant(x.clone()), Mode::Train).value();
    assert_eq!(y2.to_vec(), v);
    let other = Tape::with_seed(1);
    let y3 = d.forward(other.constant(x), Mode::Train).value();
    assert_ne!(y3.to_vec(), v);
    // p = 0 is the identity in both modes.
    let none = Dropout::new(0.0);
    assert_eq!(
        none.forward(xv, Mode::Train).value().to_vec(),
        vec![2.0; 10_000]
    );
}

#[test]
#[should_panic(expected = "Dropout: probability 1 outside [0, 1)")]
fn dropout_rejects_probability_one() {
    let _ = Dropout::new(1.0);
}

fn two_layers(r: &mut StdRng) -> Sequential {
    Sequential::new()
        .add(LinearConfig::new(3, 4).build(r).unwrap())
        .add(Tanh)
        .add(LinearConfig::new(4, 2).build(r).unwrap())
}

fn values(m: &dyn Module) -> Vec<Vec<f32>> {
    named_params(m)
        .into_iter()
        .map(|(_, p)| p.value().to_vec())
        .collect()
}

#[test]
fn unused_trainable_parameter_is_a_missing_gradient_error() {
    let mut r = rng();
    let net = two_layers(&mut r);
    let tape = Tape::new();
    // Only the first layer takes part in the loss.
    let first = &net.children()[0];
    let h = first.forward(tape.constant(input(&[5, 3], 3)), Mode::Train);
    let grads = h.mul(h).sum().backward();
    let before = values(&net);
    for mut opt in [
        Box::new(AdamConfig::default().build()) as Box<dyn Optimizer>,
        Box::new(SgdConfig::new(0.1).momentum(0.9).build()),
    ] {
        let err = opt.step(&net, &grads).unwrap_err();
        assert!(
            matches!(&err, NnError::MissingGradient { name } if name == "2.weight"),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("parameter 2.weight received no gradient")
        );
        assert_eq!(values(&net), before, "nothing is updated");
    }
}

#[test]
fn frozen_parameters_get_no_gradient_and_no_update() {
    let mut r = rng();
    let net = two_layers(&mut r);
    set_requires_grad(net.children()[0].as_ref(), false);
    let x = input(&[5, 3], 4);
    let mut opt = AdamConfig {
        lr: 0.1,
        ..Default::default()
    }
    .build();
    let before = values(&net);
    for _ in 0..2 {
        let tape = Tape::new();
        let out = net.forward(tape.constant(x.clone()), Mode::Train);
        let grads = loss::mse(out, &Tensor::zeros(&[5, 2]), Reduction::Mean).backward();
        let first: Vec<_> = named_params(net.children()[0].as_ref());
        for (name, p) in &first {
            assert!(
                grads.get_key(p.id().0).is_none(),
                "frozen {name} got a gradient"
            );
        }
        opt.step(&net, &grads).unwrap();
    }
    let after = values(&net);
    assert_eq!(after[..2], before[..2], "the frozen layer is unchanged");
    assert_ne!(after[2], before[2], "the trained layer moved");
    assert_ne!(after[3], before[3]);
    // Unfrozen, it trains again.
    set_requires_grad(&net, true);
    let tape = Tape::new();
    let out = net.forward(tape.constant(x), Mode::Train);
    let grads = loss::mse(out, &Tensor::zeros(&[5, 2]), Reduction::Mean).backward();
    opt.step(&net, &grads).unwrap();
    assert_ne!(values(&net)[0], before[0]);
}

#[test]
fn a_parameter_used_twice_sums_both_gradients() {
    let mut r = rng();
    let lin = LinearConfig::new(3, 3).no_bias().build(&mut r).unwrap();
    let x = input(&[2, 3], 5);
    let tape = Tape::new();
    let y = lin.forward(
        lin.forward(tape.constant(x.clone()), Mode::Train),
        Mode::Train,
    );
    let g_shared = y
        .sum()
        .backward()
        .get_key(lin.weight.id().0)
        .unwrap()
        .clone();
    // The same function with two independent copies of the weight.
    let tape = Tape::new();
    let (w1, w2) = (tape.leaf(lin.weight.value()), tape.leaf(lin.weight.value()));
    let h = tape.constant(x).matmul(w1.transpose(0, 1));
    let y2 = h.matmul(w2.transpose(0, 1)).sum();
    let grads = y2.backward();
    let sum = grads.get(w1).unwrap().add(grads.get(w2).unwrap());
    assert!(g_shared.max_abs_diff(&sum) < 1e-6);
}

#[test]
fn learning_rate_schedules() {
    assert_eq!(LrSchedule::Constant.factor(0), 1.0);
    assert_eq!(LrSchedule::Constant.factor(1000), 1.0);
    // pix2pix: 100 epochs at the base rate, then linearly towards 0 over 100 more.
    let lin = LrSchedule::Linear {
        hold: 100,
        decay: 100,
    };
    assert_eq!(lin.factor(0), 1.0);
    assert_eq!(lin.factor(100), 1.0);
    assert!((lin.factor(101) - (1.0 - 1.0 / 101.0)).abs() < 1e-7);
    assert!((lin.factor(199) - 2.0 / 101.0).abs() < 1e-6);
    assert!(lin.factor(199) > 0.0, "never reaches 0 within the schedule");
    let factors: Vec<f32> = (0..200).map(|e| lin.factor(e)).collect();
    assert!(factors.windows(2).all(|w| w[1] <= w[0]), "non-increasing");
    let step = LrSchedule::Step {
        every: 10,
        gamma: 0.5,
    };
    assert_eq!(step.factor(9), 1.0);
    assert_eq!(step.factor(10), 0.5);
    assert_eq!(step.factor(25), 0.25);

    // An optimizer's rate follows: set_lr(base * factor).
    let mut opt = AdamConfig::dcgan().build();
    let base = opt.lr();
    opt.set_lr(base * lin.factor(150));
    assert!((opt.lr() - 2e-4 * (1.0 - 50.0 / 101.0)).abs() < 1e-10);
}

#[test]
fn sequential_names_children_by_index() {
    let mut r = rng();
    let net = Sequential::new()
        .add(
            Conv2dConfig::new(3, 4, 3)
                .bias(false)
                .build(&mut r)
                .unwrap(),
        )
        .add(BatchNormConfig::new(4).build().unwrap())
        .add(ReLU)
        .add(Flatten)
        .add(LinearConfig::new(16, 1).build(&mut r).unwrap())
        .add(Sigmoid);
    let names: Vec<String> = named_params(&net).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "0.weight",
            "1.weight",
            "1.bias",
            "1.running_mean",
            "1.running_var",
            "4.weight",
            "4.bias"
        ]
    );
    // Nested: a prefix per level, as PyTorch.
    let outer = Sequential::new().add(LeakyReLU::new(0.2)).add(net);
    let nested: Vec<String> = named_params(&outer).into_iter().map(|(n, _)| n).collect();
    assert_eq!(nested[0], "1.0.weight");
    assert_eq!(nested[6], "1.4.bias");
    let tape = Tape::new();
    let y = outer.forward(tape.constant(input(&[2, 3, 4, 4], 6)), Mode::Train);
    assert_eq!(y.shape(), [2, 1]);
    assert!(y.value().to_vec().iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn summary_lists_names_shapes_counts_and_total() {
    let mut r = rng();
    let net = Sequential::new()
        .add(
            Conv2dConfig::new(3, 8, 4)
                .stride(2)
                .padding(1)
                .build(&mut r)
                .unwrap(),
        )
        .add(BatchNormConfig::new(8).build().unwrap())
        .add(LeakyReLU::new(0.2));
    let s = summary(&net);
    println!("{s}");
    let line = |name: &str| {
        s.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no line for {name} in\n{s}"))
            .to_string()
    };
    let w = line("0.weight");
    assert!(
        w.contains("[8, 3, 4, 4]") && w.contains("384") && w.contains("trainable"),
        "{w}"
    );
    let b = line("0.bias");
    assert!(
        b.contains("[8]") && b.contains(" 8 ") && b.contains("trainable"),
        "{b}"
    );
    assert!(line("1.running_var").contains("buffer"));
    assert!(s.contains("Conv2d(3, 8, k=4, s=2, p=1, bias=true)"), "{s}");
    assert!(s.contains("LeakyReLU(0.2)"), "{s}");
    assert!(s.contains("(2): LeakyReLU"), "{s}");
    // 384 + 8 + 8 + 8 trainable; the 16 buffer elements are not counted.
    assert!(s.trim_end().ends_with("trainable parameters: 408"), "{s}");
    assert_eq!(param_count(&net), 408);
}

#[test]
fn dcgan_init_follows_the_recipe_by_role() {
    let mut r = rng();
    let net = Sequential::new()
        .add(
            ConvTranspose2dConfig::new(64, 64, 4)
                .bias(false)
                .build(&mut r)
                .unwrap(),
        )
        .add(BatchNormConfig::new(4096).build().unwrap());
    init::dcgan(&net, &mut r);
    let stats = |v: Vec<f32>| {
        let n = v.len() as f32;
        let m = v.iter().sum::<f32>() / n;
        let s = (v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / n).sqrt();
        (m, s)
    };
    let params = named_params(&net);
    let (m, s) = stats(params[0].1.value().to_vec());
    assert_eq!(params[0].1.role(), ParamRole::ConvWeight);
    assert!(
        m.abs() < 1e-3 && (s - 0.02).abs() < 1e-3,
        "conv weight N(0, 0.02): {m} {s}"
    );
    let (m, s) = stats(params[1].1.value().to_vec());
    assert!(
        (m - 1.0).abs() < 2e-3 && (s - 0.02).abs() < 2e-3,
        "bn weight N(1, 0.02): {m} {s}"
    );
    assert!(
        params[2].1.value().to_vec().iter().all(|&v| v == 0.0),
        "bn bias 0"
    );
    // The buffers are left alone.
    assert!(params[4].1.value().to_vec().iter().all(|&v| v == 1.0));
}

#[test]
fn shapes_through_layers() {
    let mut r = rng();
    let tape = Tape::new();
    let x = tape.constant(input(&[2, 3, 8, 8], 8));
    let conv = Conv2dConfig::new(3, 5, 4)
        .stride(2)
        .padding(1)
        .build(&mut r)
        .unwrap();
    let h = conv.forward(x, Mode::Train);
    assert_eq!(h.shape(), [2, 5, 4, 4]);
    let up = ConvTranspose2dConfig::new(5, 3, 4)
        .stride(2)
        .padding(1)
        .build(&mut r)
        .unwrap();
    assert_eq!(up.forward(h, Mode::Train).shape(), [2, 3, 8, 8]);
    let op = ConvTranspose2dConfig::new(5, 3, 5)
        .stride(2)
        .padding(2)
        .output_padding(1)
        .build(&mut r)
        .unwrap();
    assert_eq!(op.forward(h, Mode::Train).shape(), [2, 3, 8, 8]);
    let flat = Flatten.forward(h, Mode::Train);
    assert_eq!(flat.shape(), [2, 80]);
    assert_eq!(
        Reshape::new(&[5, 16]).forward(flat, Mode::Train).shape(),
        [2, 5, 16]
    );

    // Embedding: one-hot rows times the table pick rows.
    let emb = Embedding::new(4, 3, &mut r);
    let onehot = Embedding::one_hot(&[2, 0], 4);
    let rows = emb
        .forward(tape.constant(onehot), Mode::Train)
        .value()
        .to_vec();
    let table = emb.weight.value().to_vec();
    assert_eq!(rows[..3], table[6..9]);
    assert_eq!(rows[3..], table[..3]);
}

#[test]
fn maxout_takes_each_units_largest_piece_by_hand() {
    let layer = MaxoutConfig::new(2, 2, 2).build(&mut rng()).unwrap();
    // Rows: unit 0 pieces 0 and 1, then unit 1 pieces 0 and 1.
    layer.weight.set(Tensor::from_vec(
        &[4, 2],
        vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0, -1.0, 2.0],
    ));
    layer
        .bias
        .set(Tensor::from_vec(&[4], vec![0.0, 0.5, -1.0, 0.0]));
    let tape = Tape::new();
    let x = tape.leaf(Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, -1.0]));
    let y = layer.forward(x, Mode::Train);
    // Sample 0: unit 0 max(1, 2.5), unit 1 max(2, 3); sample 1: max(3, -0.5), max(1, -5).
    assert_eq!(y.value().shape(), &[2, 2]);
    assert_eq!(y.value().to_vec(), vec![2.5, 3.0, 3.0, 1.0]);
    let grads = y.sum().backward();
    // Each unit passes its gradient to its winning row: sample 0 to rows 1 and 3, sample 1
    // to rows 0 and 2.
    assert_eq!(grads.get(x).unwrap().to_vec(), vec![-1.0, 3.0, 2.0, 1.0]);
    let gw = grads.get_key(layer.weight.id().0).unwrap().to_vec();
    assert_eq!(gw, vec![3.0, -1.0, 1.0, 2.0, 3.0, -1.0, 1.0, 2.0]);
    let gb = grads.get_key(layer.bias.id().0).unwrap().to_vec();
    assert_eq!(gb, vec![1.0; 4]);
}

#[test]
fn maxout_settings_names_and_initialisation() {
    let mut r = rng();
    for (i, o, k) in [(0, 3, 2), (3, 0, 2), (3, 3, 0)] {
        let m = config_message(MaxoutConfig::new(i, o, k).build(&mut r), "Maxout");
        assert!(m.contains("pieces"), "{m}");
    }
    let layer = MaxoutConfig::new(4, 3, 5).build(&mut r).unwrap();
    let names: Vec<(String, Vec<usize>)> = named_params(&layer)
        .into_iter()
        .map(|(n, p)| (n, p.shape()))
        .collect();
    assert_eq!(
        names,
        [
            ("weight".to_string(), vec![15, 4]),
            ("bias".to_string(), vec![15])
        ]
    );
    // A linear layer's default initialisation, U(-1/2, 1/2) for 4 inputs.
    let w = layer.weight.value().to_vec();
    assert!(w.iter().all(|v| v.abs() <= 0.5), "{w:?}");
    assert!(w.iter().any(|v| v.abs() > 0.25), "{w:?}");
    assert_eq!(layer.describe(), "Maxout(4, 3, pieces=5)");
    let tape = Tape::new();
    let y = layer.forward(tape.constant(input(&[6, 4], 1)), Mode::Eval);
    assert_eq!(y.value().shape(), &[6, 3]);
}
