//! Batch assembly: shuffled NCHW batches of 64 in [-1, 1], with and without augmentation.

use criterion::{Criterion, Throughput, criterion_group};
use gantry_datasets::{
    Augment, BatchConfig, Batches, Split, bundled_data_dir, edges2emoji, load_idx_images,
    load_mnist,
};

fn batch(c: &mut Criterion) {
    let data = bundled_data_dir();
    let mnist = load_mnist(&data.join("mnist"), Split::Test).expect("bundled MNIST");
    let emoji = load_idx_images(
        &data.join("emoji-noto-64/emoji64-rgb-idx4-ubyte.gz"),
        &mut |_, _| {},
    )
    .expect("bundled emoji");
    let pairs = edges2emoji(&emoji, Split::Test);
    let mut g = c.benchmark_group("batch64");
    g.throughput(Throughput::Elements(64));

    let mut it = Batches::new(&mnist, BatchConfig::new(64).forever());
    g.bench_function("mnist", |b| b.iter(|| it.next()));
    let mut it = Batches::new(
        &mnist,
        BatchConfig::new(64).forever().augment(Augment::jitter(28)),
    );
    g.bench_function("mnist_jitter", |b| b.iter(|| it.next()));
    let mut it = Batches::new(&emoji, BatchConfig::new(64).forever());
    g.bench_function("emoji64", |b| b.iter(|| it.next()));
    let mut it = Batches::new(
        &emoji,
        BatchConfig::new(64).forever().augment(Augment::jitter(64)),
    );
    g.bench_function("emoji64_jitter", |b| b.iter(|| it.next()));
    let mut it = Batches::new(
        &pairs,
        BatchConfig::new(64).forever().augment(Augment::jitter(64)),
    );
    g.bench_function("edges2emoji_pairs_jitter", |b| b.iter(|| it.next()));
    g.finish();
}

criterion_group!(benches, batch);
