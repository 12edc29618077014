//! One `Trainer::train_step` (D step + G step with Adam) on random batches.

use criterion::{BenchmarkId, Criterion};
use gantry_gan::models::{Batch, CdcganConfig, DcganConfig, MlpConfig, ModelConfig, Pix2PixConfig};
use gantry_gan::{TrainConfig, Trainer};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

/// The reference workloads: name, model, batch size.
fn workloads() -> Vec<(&'static str, ModelConfig, usize)> {
    vec![
        ("mlp", ModelConfig::Mlp(MlpConfig::digits()), 64),
        ("dcgan28", ModelConfig::Dcgan(DcganConfig::dcgan28()), 64),
        ("cdcgan28", ModelConfig::Cdcgan(CdcganConfig::mnist()), 64),
        ("dcgan64c3", ModelConfig::Dcgan(DcganConfig::dcgan64(3)), 64),
        ("p2p64", ModelConfig::Pix2Pix(Pix2PixConfig::new(64)), 1),
        ("p2p64", ModelConfig::Pix2Pix(Pix2PixConfig::new(64)), 8),
        ("p2p256", ModelConfig::Pix2Pix(Pix2PixConfig::new(256)), 1),
    ]
}

fn batch(model: &ModelConfig, n: usize, rng: &mut ChaCha8Rng) -> Batch {
    let image = |c: usize, s: usize, rng: &mut ChaCha8Rng| {
        Tensor::rand_uniform(&[n, c, s, s], -1.0, 1.0, rng)
    };
    match model {
        ModelConfig::Mlp(_) => Batch::new(image(1, 28, rng)),
        ModelConfig::Dcgan(c) => Batch::new(image(c.channels, c.image_size, rng)),
        ModelConfig::Pix2Pix(c) => Batch {
            condition: Some(image(3, c.image_size, rng)),
            ..Batch::new(image(3, c.image_size, rng))
        },
        ModelConfig::Cdcgan(c) => Batch {
            labels: Some((0..n).map(|i| i % c.num_classes).collect()),
            ..Batch::new(image(c.dcgan.channels, c.dcgan.image_size, rng))
        },
    }
}

/// Benches a training iteration of every workload.
pub fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    for (name, model, n) in workloads() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut trainer = Trainer::new(
            model.build(&mut rng).expect("valid model"),
            TrainConfig::default(),
        );
        let data = batch(&model, n, &mut rng);
        group.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter(|| {
                let mut next = || data.clone();
                trainer.train_step(&mut next).expect("finite losses")
            })
        });
    }
    group.finish();
}
