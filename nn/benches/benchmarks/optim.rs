//! Optimizer steps over the full-width DCGAN generator (nz 100, ngf 64, nc 3: 3,576,704
//! parameters), from fixed gradients.

use criterion::{Criterion, Throughput, criterion_group};
use gantry_autodiff::{Gradients, Tape};
use gantry_nn::optim::{AdamConfig, Optimizer, SgdConfig};
use gantry_nn::{
    BatchNormConfig, ConvTranspose2dConfig, Mode, Module, ReLU, Sequential, Tanh, param_count,
};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// pytorch/examples' DCGAN generator.
fn dcgan_generator(rng: &mut StdRng) -> Sequential {
    let widths = [100, 512, 256, 128, 64, 3];
    let mut g = Sequential::new();
    for (i, w) in widths.windows(2).enumerate() {
        let (stride, pad) = if i == 0 { (1, 0) } else { (2, 1) };
        let conv = ConvTranspose2dConfig::new(w[0], w[1], 4)
            .stride(stride)
            .padding(pad)
            .bias(false)
            .build(rng)
            .unwrap();
        g = g.add(conv);
        if i + 2 < widths.len() {
            g = g.add(BatchNormConfig::new(w[1]).build().unwrap()).add(ReLU);
        }
    }
    g.add(Tanh)
}

/// The gradients of one small batch, computed once.
fn gradients(g: &Sequential, rng: &mut StdRng) -> Gradients {
    let tape = Tape::new();
    let z = tape.constant(Tensor::randn(&[2, 100, 1, 1], 0.0, 1.0, rng));
    g.forward(z, Mode::Train).mean().backward()
}

fn optim(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(0);
    let g = dcgan_generator(&mut rng);
    let n = param_count(&g);
    assert_eq!(n, 3_576_704);
    let grads = gradients(&g, &mut rng);
    let mut group = c.benchmark_group("optim_step_dcgan_g");
    group.throughput(Throughput::Elements(n as u64));
    let mut adam = AdamConfig::dcgan().build();
    group.bench_function("adam", |b| b.iter(|| adam.step(&g, &grads).unwrap()));
    let mut sgd = SgdConfig::new(0.01).momentum(0.9).build();
    group.bench_function("sgd_momentum", |b| b.iter(|| sgd.step(&g, &grads).unwrap()));
    group.finish();
}

criterion_group! {
    name = benches;
    config = super::config();
    targets = optim
}
