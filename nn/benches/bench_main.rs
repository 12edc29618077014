//! Criterion benches of gantry-nn: each layer's forward and backward pass at DCGAN sizes
//! (batch 64), and optimizer steps over the full-width DCGAN generator (3.58M parameters).
//!
//! Throughput is in FLOPs for the matrix layers (forward + both gradients, about three times
//! the forward's `2·M·N·K`), in elements for batch norm and activations, and in parameters
//! for the optimizers; the ProGAN, BigGAN and pix2pixHD layers and the weight
//! reparameterisations at batch 16 (`gan_layers`). Run with `cargo bench -p gantry-nn`, or one
//! family with `cargo bench -p gantry-nn -- gan_layer`.

mod benchmarks;

criterion::criterion_main!(
    benchmarks::layers::benches,
    benchmarks::gan_layers::benches,
    benchmarks::optim::benches
);
