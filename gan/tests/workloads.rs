//! The benchmark workloads are the reference's networks: parameter counts and FLOPs against
//! the numbers `../shared/bench/gan_bench.py` computes with PyTorch (`count_params`,
//! `iter_flops(cfg, batch, 'seq')`, PyTorch 2.15), and a few iterations of each train: every
//! parameter moves and the discriminator learns the fixed real batch.

use gantry_gan::models::ModelConfig;
use gantry_gan::workloads::{self, Layer, Workload};
use gantry_nn::param_count;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// (workload, image side, params of G, params of D) from the reference's models. The sizes
/// other than the reference's were counted on the same classes with blocks added or removed
/// (pytorch/examples DCGAN) or `num_downs = log2(size)` (pix2pix).
const PARAMS: &[(Workload, usize, usize, usize)] = &[
    (Workload::Mlp, 28, 1_486_352, 533_505),
    (Workload::Dcgan28, 28, 2_305_472, 212_865),
    (Workload::Dcgan64c3, 64, 3_576_704, 2_765_568),
    (Workload::Dcgan64c1, 64, 3_574_656, 2_763_520),
    (Workload::P2p64, 64, 29_244_035, 2_768_705),
    (Workload::P2p256, 256, 54_413_955, 2_768_705),
    (Workload::Dcgan64c3, 16, 339_328, 136_448),
    (Workload::Dcgan64c3, 32, 1_068_928, 663_296),
    (Workload::Dcgan64c3, 128, 12_786_560, 11_164_416),
    (Workload::P2p64, 32, 16_659_075, 2_768_705),
    (Workload::P2p64, 128, 41_828_995, 2_768_705),
];

/// (workload, image side, batch, FLOPs of one iteration) as the reference prints them.
const FLOPS: &[(Workload, usize, usize, u64)] = &[
    (Workload::Mlp, 28, 64, 1_183_481_856),
    (Workload::Mlp, 28, 2, 36_983_808),
    (Workload::Dcgan28, 28, 64, 31_798_738_944),
    (Workload::Dcgan64c3, 64, 64, 159_774_670_848),
    (Workload::Dcgan64c1, 64, 64, 156_553_445_376),
    (Workload::Dcgan64c1, 64, 2, 4_892_295_168),
    (Workload::P2p64, 64, 1, 5_397_086_208),
    (Workload::P2p64, 64, 8, 43_176_689_664),
    (Workload::P2p256, 256, 1, 93_837_656_064),
    (Workload::Dcgan64c3, 16, 1, 56_315_904),
    (Workload::Dcgan64c3, 32, 1, 424_058_880),
    (Workload::Dcgan64c3, 128, 1, 13_197_017_088),
    (Workload::Dcgan64c3, 256, 1, 65_652_719_616),
    (Workload::P2p64, 32, 1, 1_188_102_144),
    (Workload::P2p64, 128, 1, 22_841_720_832),
];

#[test]
fn layer_lists_have_the_reference_parameter_counts() {
    for &(w, size, pg, pd) in PARAMS {
        let (g, d) = w.layers(size).unwrap();
        assert_eq!(
            (workloads::params(&g), workloads::params(&d)),
            (pg, pd),
            "{w} at {size}"
        );
    }
}

#[test]
fn gantry_models_have_the_reference_parameter_counts() {
    for &(w, size, pg, pd) in PARAMS {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let gan = w.model(size).unwrap().build(&mut rng).unwrap();
        assert_eq!(
            (
                param_count(gan.generator()),
                param_count(gan.discriminator())
            ),
            (pg, pd),
            "{w} at {size}"
        );
    }
}

#[test]
fn flops_per_iteration_are_the_reference_counts() {
    for &(w, size, batch, f) in FLOPS {
        assert_eq!(
            w.flops_per_iter(size, batch).unwrap(),
            f,
            "{w} at {size}, batch {batch}"
        );
    }
}

#[test]
fn flops_by_hand() {
    // mlp, per sample: G 2 (100*256 + 256*512 + 512*1024 + 1024*784), D 2 (784*512 +
    // 512*256 + 256); an iteration is 3 G + 9 D.
    let g = 2 * (100 * 256 + 256 * 512 + 512 * 1024 + 1024 * 784);
    let d = 2 * (784 * 512 + 512 * 256 + 256);
    assert_eq!(Workload::Mlp.flops_per_iter(28, 1).unwrap(), 3 * g + 9 * d);
    // A stride-2 4x4 transposed convolution scatters every input pixel over Cout x 16.
    let up = Layer::ConvTranspose2d {
        input: 8,
        cin: 128,
        cout: 64,
        kernel: 4,
        stride: 2,
        padding: 1,
        output_padding: 0,
        bias: false,
    };
    assert_eq!(up.output_side(), 16);
    assert_eq!(up.flops(), 2 * 128 * 64 * 64 * 16);
    // The PatchGAN's stride-1 convolutions shrink 32 -> 31 -> 30 at 256x256.
    let (_, d) = Workload::P2p256.layers(256).unwrap();
    let sides: Vec<usize> = d
        .iter()
        .filter(|l| matches!(l, Layer::Conv2d { .. }))
        .map(Layer::output_side)
        .collect();
    assert_eq!(sides, [128, 64, 32, 31, 30]);
}

/// Taps on the input of one sample, counted pixel by pixel: for a convolution every (output
/// pixel, tap) whose input pixel is inside the input; for a transposed convolution every (input
/// pixel, tap) whose output pixel is inside the output. Times `2 cin cout`.
fn flops_on_input_by_enumeration(layer: &Layer) -> u64 {
    let (positions, len, kernel, stride, padding, cin, cout) = match *layer {
        Layer::Conv2d {
            input,
            cin,
            cout,
            kernel,
            stride,
            padding,
            ..
        } => (
            layer.output_side(),
            input,
            kernel,
            stride,
            padding,
            cin,
            cout,
        ),
        Layer::ConvTranspose2d {
            input,
            cin,
            cout,
            kernel,
            stride,
            padding,
            ..
        } => (
            input,
            layer.output_side(),
            kernel,
            stride,
            padding,
            cin,
            cout,
        ),
        _ => return layer.flops(),
    };
    let inside = |o: usize, k: usize| {
        let i = (o * stride + k) as i64 - padding as i64;
        (0..len as i64).contains(&i)
    };
    let mut taps = 0u64;
    for (oy, ox) in (0..positions).flat_map(|y| (0..positions).map(move |x| (y, x))) {
        for (ky, kx) in (0..kernel).flat_map(|y| (0..kernel).map(move |x| (y, x))) {
            taps += u64::from(inside(oy, ky) && inside(ox, kx));
        }
    }
    2 * (cin * cout) as u64 * taps
}

#[test]
fn flops_on_input_leave_out_the_padding() {
    for w in Workload::ALL {
        let size = w.default_image_size();
        let (g, d) = w.layers(size).unwrap();
        for layer in g.iter().chain(&d) {
            let on_input = layer.flops_on_input();
            assert_eq!(
                on_input,
                flops_on_input_by_enumeration(layer),
                "{w}: {layer:?}"
            );
            assert!(on_input <= layer.flops(), "{w}: {layer:?}");
        }
        let (all, on_input) = (
            w.flops_per_iter(size, 8).unwrap(),
            w.flops_on_input_per_iter(size, 8).unwrap(),
        );
        match w {
            Workload::Mlp => assert_eq!(on_input, all),
            _ => assert!(on_input < all, "{w}: {on_input} of {all}"),
        }
    }
    // dcgan28's first transposed convolution: 5x5 over 7x7 with padding 2 puts 3, 4, 5, 5, 5,
    // 4 and 3 taps on the input along each axis, 29 of 35.
    let g1 = Workload::Dcgan28.layers(28).unwrap().0[2];
    assert!(
        matches!(
            g1,
            Layer::ConvTranspose2d {
                input: 7,
                kernel: 5,
                stride: 1,
                padding: 2,
                ..
            }
        ),
        "{g1:?}"
    );
    assert_eq!(g1.flops_on_input() * 35 * 35, g1.flops() * 29 * 29);
    // Without padding every tap is on the input.
    let valid = Layer::Conv2d {
        input: 11,
        cin: 256,
        cout: 128,
        kernel: 5,
        stride: 1,
        padding: 0,
        bias: false,
    };
    assert_eq!(valid.flops_on_input(), valid.flops());
}

#[test]
fn names_defaults_and_errors() {
    for w in Workload::ALL {
        assert_eq!(w.name().parse::<Workload>().unwrap(), w);
    }
    let err = "dcgan".parse::<Workload>().unwrap_err().to_string();
    assert!(
        err.contains("unknown workload 'dcgan'") && err.contains("p2p256"),
        "{err}"
    );
    assert_eq!(Workload::P2p64.default_batches(), [1, 8]);
    assert_eq!(Workload::Dcgan64c1.default_batches(), [64]);
    assert!(Workload::Mlp.model(64).is_err());
    assert!(Workload::Dcgan28.layers(32).is_err());
    assert!(Workload::Dcgan64c3.model(48).is_err());
    assert!(Workload::Dcgan64c3.model(8).is_err());
    assert!(Workload::P2p64.setup(64, 0, 0).is_err());
}

#[test]
fn the_models_match_the_variants() {
    let ModelConfig::Dcgan(c) = Workload::Dcgan64c1.model(32).unwrap() else {
        panic!("a DCGAN")
    };
    assert_eq!(
        (c.image_size, c.channels, c.nz, c.ngf, c.ndf),
        (32, 1, 100, 64, 64)
    );
    let ModelConfig::Pix2Pix(c) = Workload::P2p256.model(256).unwrap() else {
        panic!("a pix2pix")
    };
    assert_eq!((c.num_downs(), c.ngf, c.ndf, c.d_layers), (8, 64, 64, 3));
    assert!(c.dropout && c.lambda_l1 == 100.0);
    let t = Workload::Dcgan28.train_config();
    assert_eq!(
        t.optim_d,
        gantry_gan::OptimConfig::Adam {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999
        }
    );
    assert_eq!(t.k, 1);
}

/// Every parameter of a network, by name.
fn params(net: &dyn gantry_nn::Module) -> Vec<(String, Vec<f32>)> {
    gantry_nn::state_dict::state_dict(net)
        .into_iter()
        .map(|(k, t)| (k, t.to_vec()))
        .collect()
}

#[test]
fn a_few_iterations_of_the_small_workloads_train() {
    // Four steps on one fixed batch: both networks must move, every parameter of each, and the
    // discriminator must come to score that real batch as more real than it did at first
    // (`d_real` of a step is measured before its update, so the last one reflects three).
    const STEPS: usize = 4;
    for (w, size, batch) in [
        (Workload::Mlp, 28, 4),
        (Workload::Dcgan28, 28, 2),
        (Workload::Dcgan64c1, 16, 2),
        (Workload::P2p64, 32, 1),
    ] {
        let (mut trainer, data) = w.setup(size, batch, 0).unwrap();
        assert_eq!(data.real.shape()[0], batch);
        let before = (
            params(trainer.gan.generator()),
            params(trainer.gan.discriminator()),
        );
        let metrics: Vec<_> = (0..STEPS)
            .map(|_| trainer.train_step(&mut || data.clone()).unwrap())
            .collect();
        for m in &metrics {
            assert!(m.loss_d.is_finite() && m.loss_g.is_finite(), "{w}: {m:?}");
            assert_eq!(
                m.get("loss_g_l1").is_some(),
                matches!(w, Workload::P2p64),
                "{w}: L1 term only for pix2pix"
            );
        }
        let after = (
            params(trainer.gan.generator()),
            params(trainer.gan.discriminator()),
        );
        for (net, was, is) in [("G", &before.0, &after.0), ("D", &before.1, &after.1)] {
            assert_eq!(was.len(), is.len());
            for ((name, a), (_, b)) in was.iter().zip(is) {
                assert!(a != b, "{w}: {net}.{name} did not change in {STEPS} steps");
            }
        }
        let d_real =
            |m: &gantry_gan::StepMetrics| m.get("d_real").expect("a cross-entropy loss logs D(x)");
        let (first, last) = (d_real(&metrics[0]), d_real(&metrics[STEPS - 1]));
        assert!(
            last > first,
            "{w}: D(x) of the fixed real batch went from {first} to {last}"
        );
    }
}
