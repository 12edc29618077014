//! Decoding: gzip IDX (MNIST, emoji) into one byte buffer, and Canny edge maps.

use criterion::{Criterion, Throughput, criterion_group};
use gantry_datasets::{
    EdgeOptions, Split, bundled_data_dir, edges_of, load_idx_images, load_mnist,
};

fn decode(c: &mut Criterion) {
    let data = bundled_data_dir();
    let mut g = c.benchmark_group("decode");
    g.sample_size(10);
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("mnist_t10k_gz", |b| {
        b.iter(|| load_mnist(&data.join("mnist"), Split::Test).expect("bundled MNIST"))
    });
    let emoji_path = data.join("emoji-noto-64/emoji64-rgb-idx4-ubyte.gz");
    g.throughput(Throughput::Elements(3786));
    g.bench_function("emoji64_gz", |b| {
        b.iter(|| load_idx_images(&emoji_path, &mut |_, _| {}).expect("bundled emoji"))
    });
    let emoji = load_idx_images(&emoji_path, &mut |_, _| {}).expect("bundled emoji");
    let some = emoji.subset(&(0..500).collect::<Vec<_>>());
    g.throughput(Throughput::Elements(500));
    g.bench_function("canny_edges_emoji64", |b| {
        b.iter(|| edges_of(&some, EdgeOptions::default(), 3))
    });
    g.finish();
}

criterion_group!(benches, decode);
