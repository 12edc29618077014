//! Determinism check: runs a fixed, seeded workload of every heavy kernel (conv2d forward and
//! both gradients, conv_transpose2d forward and both gradients, matmul in its layouts,
//! reductions and broadcasting) at batch 1 and batch 8, plus the stride-1 convolutions that go
//! through taps (small maps at batch 16, one output channel at batch 2) and a strided one large
//! enough for the packed kernel, and a batch-64 linear layer for the narrow products, and prints
//! one 64-bit FNV-1a hash of the bits of every output.
//!
//! The hash must be the same with and without the `parallel` feature and at any thread count:
//!
//! ```text
//! cargo run --release -p gantry-tensor --example determinism
//! cargo run --release -p gantry-tensor --example determinism --no-default-features
//! RAYON_NUM_THREADS=1 cargo run --release -p gantry-tensor --example determinism
//! RAYON_NUM_THREADS=2 cargo run --release -p gantry-tensor --example determinism
//! ```
//!
//! It may differ between machines whose CPUs select different GEMM kernels (AVX2 versus
//! AVX-512) or report different cache sizes (GEMM block sizes). Pass `-v` to print a hash per
//! output on stderr, to find which kernel diverged.
//!
//! The workload is also run by `tests/determinism.rs` inside rayon pools of several sizes.

use gantry_tensor::{Conv2dParams, ConvTranspose2dParams, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Runs the workload and returns its outputs, named for diagnostics, in a fixed order.
pub fn workload() -> Vec<(String, Tensor)> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_6a27);
    let mut out = Vec::new();
    let mut push = |name: String, t: Tensor| out.push((name, t));
    for batch in [1, 8] {
        // A discriminator-style strided convolution with bias.
        let p = Conv2dParams::new(2, 1);
        let x = Tensor::randn(&[batch, 16, 32, 32], 0.0, 1.0, &mut rng);
        let w = Tensor::randn(&[32, 16, 4, 4], 0.0, 0.1, &mut rng);
        let b = Tensor::randn(&[32], 0.0, 0.1, &mut rng);
        let y = x.conv2d(&w, Some(&b), p);
        let gy = Tensor::randn(y.shape(), 0.0, 1.0, &mut rng);
        push(
            format!("b{batch}/conv2d/gx"),
            gy.conv2d_grad_input(&w, [32, 32], p),
        );
        push(
            format!("b{batch}/conv2d/gw"),
            x.conv2d_grad_weight(&gy, [4, 4], p),
        );
        push(
            format!("b{batch}/conv2d/gb"),
            gy.sum_axes(&[0, 2, 3], false),
        );
        push(format!("b{batch}/conv2d/y"), y);

        // A same-size dilated 3x3 convolution, non-square input.
        let p = Conv2dParams {
            stride: [1, 1],
            padding: [2, 2],
            dilation: [2, 2],
        };
        let x = Tensor::randn(&[batch, 8, 24, 20], 0.0, 1.0, &mut rng);
        let w = Tensor::randn(&[24, 8, 3, 3], 0.0, 0.1, &mut rng);
        let y = x.conv2d(&w, None, p);
        let gy = Tensor::randn(y.shape(), 0.0, 1.0, &mut rng);
        push(
            format!("b{batch}/dilated/gx"),
            gy.conv2d_grad_input(&w, [24, 20], p),
        );
        push(
            format!("b{batch}/dilated/gw"),
            x.conv2d_grad_weight(&gy, [3, 3], p),
        );
        push(format!("b{batch}/dilated/y"), y);

        // Generator-style transposed convolutions: the 1x1 -> 4x4 projection and an upsampling.
        let p = ConvTranspose2dParams::new(1, 0);
        let z = Tensor::randn(&[batch, 100, 1, 1], 0.0, 1.0, &mut rng);
        let w = Tensor::randn(&[100, 64, 4, 4], 0.0, 0.02, &mut rng);
        let y = z.conv_transpose2d(&w, None, p);
        let gy = Tensor::randn(y.shape(), 0.0, 1.0, &mut rng);
        push(
            format!("b{batch}/project/gx"),
            gy.conv_transpose2d_grad_input(&w, p),
        );
        push(
            format!("b{batch}/project/gw"),
            z.conv_transpose2d_grad_weight(&gy, [4, 4], p),
        );
        push(format!("b{batch}/project/y"), y);

        let p = ConvTranspose2dParams {
            output_padding: [1, 1],
            ..ConvTranspose2dParams::new(2, 2)
        };
        let x = Tensor::randn(&[batch, 32, 12, 12], 0.0, 1.0, &mut rng);
        let w = Tensor::randn(&[32, 16, 5, 5], 0.0, 0.1, &mut rng);
        let b = Tensor::randn(&[16], 0.0, 0.1, &mut rng);
        let y = x.conv_transpose2d(&w, Some(&b), p);
        let gy = Tensor::randn(y.shape(), 0.0, 1.0, &mut rng);
        push(
            format!("b{batch}/upsample/gx"),
            gy.conv_transpose2d_grad_input(&w, p),
        );
        push(
            format!("b{batch}/upsample/gw"),
            x.conv_transpose2d_grad_weight(&gy, [5, 5], p),
        );

        // Elementwise work and reductions on the upsampled activations (parallel-sized).
        let act = y.add(&b.reshape(&[1, 16, 1, 1])).leaky_relu(0.2);
        push(format!("b{batch}/act/sigmoid"), act.sigmoid());
        push(format!("b{batch}/act/tanh_mul"), act.tanh().mul(&y));
        push(
            format!("b{batch}/reduce/sum_nhw"),
            act.sum_axes(&[0, 2, 3], true),
        );
        push(
            format!("b{batch}/reduce/mean_c"),
            act.mean_axes(&[1], false),
        );
        push(
            format!("b{batch}/reduce/max_hw"),
            act.max_axes(&[2, 3], false),
        );
        push(
            format!("b{batch}/reduce/sum_all"),
            Tensor::scalar(act.sum_all()),
        );
        push(format!("b{batch}/reduce/sum_to"), act.sum_to(&[16, 1, 1]));
        push(format!("b{batch}/upsample/y"), y);

        // Matrix products: a linear layer and its gradients, and a batched product.
        let x = Tensor::randn(&[batch * 16, 320], 0.0, 1.0, &mut rng);
        let w = Tensor::randn(&[192, 320], 0.0, 0.1, &mut rng);
        let y = x.matmul_t(&w, false, true);
        let gy = Tensor::randn(y.shape(), 0.0, 1.0, &mut rng);
        push(format!("b{batch}/linear/gx"), gy.matmul(&w));
        push(format!("b{batch}/linear/gw"), gy.matmul_t(&x, true, false));
        push(format!("b{batch}/linear/y"), y);
        let a = Tensor::randn(&[batch, 64, 96], 0.0, 1.0, &mut rng);
        let m = Tensor::randn(&[96, 80], 0.0, 1.0, &mut rng);
        push(format!("b{batch}/bmm"), a.matmul(&m));
    }
    // A strided convolution over 4,608 output pixels to 64 channels, enough for the packed
    // kernels on AVX-512 (the forward pass's panels and the weight gradient's rows split across
    // threads), through the transposed form's backward.
    let p = Conv2dParams::new(2, 1);
    let x = Tensor::randn(&[8, 16, 48, 48], 0.0, 1.0, &mut rng);
    let w = Tensor::randn(&[64, 16, 4, 4], 0.0, 0.1, &mut rng);
    let y = x.conv2d(&w, None, p);
    let gy = Tensor::randn(y.shape(), 0.0, 1.0, &mut rng);
    let (gx, gw) = x.conv2d_and_grad_weight(&w, &gy, p);
    push("packed/y".to_owned(), y);
    push("packed/fused_y".to_owned(), gx);
    push("packed/fused_gw".to_owned(), gw);

    // A fully connected layer of an MLP GAN at batch 64, with weights large enough for the
    // narrow products on AVX-512 (the forward pass's tiles, the input gradient's panels) and
    // sums longer than their blocks.
    let x = Tensor::randn(&[64, 1024], 0.0, 1.0, &mut rng);
    let w = Tensor::randn(&[520, 1024], 0.0, 0.05, &mut rng);
    let y = x.matmul_t(&w, false, true);
    let gy = Tensor::randn(y.shape(), 0.0, 1.0, &mut rng);
    push("narrow/gx".to_owned(), gy.matmul(&w));
    push("narrow/y".to_owned(), y);

    // One large square product, multi-threaded inside the GEMM.
    let a = Tensor::randn(&[384, 512], 0.0, 1.0, &mut rng);
    let b = Tensor::randn(&[512, 256], 0.0, 1.0, &mut rng);
    push("square".to_owned(), a.matmul(&b));

    // A stride-1 transposed convolution on small maps at batch 16, which skips the taps on the
    // padding (dcgan28's first, narrower), and a 3x3 convolution on 4x4 maps.
    let p = ConvTranspose2dParams::new(1, 2);
    let x = Tensor::randn(&[16, 48, 7, 7], 0.0, 1.0, &mut rng);
    let w = Tensor::randn(&[48, 40, 5, 5], 0.0, 0.1, &mut rng);
    let y = x.conv_transpose2d(&w, None, p);
    let gy = Tensor::randn(y.shape(), 0.0, 1.0, &mut rng);
    push(
        "b16/taps/gx".to_owned(),
        gy.conv_transpose2d_grad_input(&w, p),
    );
    push(
        "b16/taps/gw".to_owned(),
        x.conv_transpose2d_grad_weight(&gy, [5, 5], p),
    );
    push("b16/taps/y".to_owned(), y);
    let p = Conv2dParams::new(1, 1);
    let x = Tensor::randn(&[16, 24, 4, 4], 0.0, 1.0, &mut rng);
    let w = Tensor::randn(&[130, 24, 3, 3], 0.0, 0.1, &mut rng);
    push("b16/taps3x3/y".to_owned(), x.conv2d(&w, None, p));
    // A PatchGAN's last layer (one output channel, 4x4, stride 1), which goes through taps at
    // any batch.
    let x = Tensor::randn(&[2, 96, 9, 9], 0.0, 1.0, &mut rng);
    let w = Tensor::randn(&[1, 96, 4, 4], 0.0, 0.1, &mut rng);
    let y = x.conv2d(&w, None, p);
    let gy = Tensor::randn(y.shape(), 0.0, 1.0, &mut rng);
    push(
        "b2/patch/gx".to_owned(),
        gy.conv2d_grad_input(&w, [9, 9], p),
    );
    push(
        "b2/patch/gw".to_owned(),
        x.conv2d_grad_weight(&gy, [4, 4], p),
    );
    push("b2/patch/y".to_owned(), y);
    out
}

/// FNV-1a, 64 bits: a fixed, portable hash (unlike `std`'s, which may change between releases).
pub struct Fnv1a(u64);

impl Fnv1a {
    /// The FNV-1a offset basis.
    pub fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    /// Mixes in `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

/// Hashes one tensor: its shape, then the bits of its elements in row-major order.
pub fn hash_tensor(h: &mut Fnv1a, t: &Tensor) {
    for &d in t.shape() {
        h.write(&(d as u64).to_le_bytes());
    }
    for v in t.to_vec() {
        h.write(&v.to_bits().to_le_bytes());
    }
}

/// The hash of every output, names included, in order.
pub fn hash_outputs(outputs: &[(String, Tensor)]) -> u64 {
    let mut h = Fnv1a::new();
    for (name, t) in outputs {
        h.write(name.as_bytes());
        hash_tensor(&mut h, t);
    }
    h.finish()
}

fn main() {
    let verbose = std::env::args().any(|a| a == "-v" || a == "--verbose");
    let outputs = workload();
    assert!(
        outputs.iter().all(|(_, t)| t.all_finite()),
        "the workload produced a non-finite value"
    );
    if verbose {
        for (name, t) in &outputs {
            let mut h = Fnv1a::new();
            hash_tensor(&mut h, t);
            eprintln!("{name:24} {:?} {:016x}", t.shape(), h.finish());
        }
    }
    eprintln!(
        "threads: {}, parallel feature: {}",
        gantry_tensor::num_threads(),
        cfg!(feature = "parallel")
    );
    println!("{:016x}", hash_outputs(&outputs));
}
