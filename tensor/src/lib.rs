//! # gantry-tensor
//!
//! n-dimensional `f32` tensors on [`ndarray`], with the kernels a GAN needs: broadcasting
//! arithmetic, reductions, matrix products on the `gemm` crate (on AVX-512, those of a batch
//! of at most 128 rows, fully connected layers', on kernels of its own), 2-D convolution and
//! transposed convolution (and their gradients) via im2col + GEMM (or, for small stride-1
//! layers, products per kernel tap, and on AVX-512 for large strided ones, kernels that pack
//! receptive fields straight from the input with no column matrix), and seeded random
//! initialisation.
//!
//! Images are NCHW and weights use PyTorch's layouts, so values move between the two unchanged.
//! Work is parallel over the batch with `rayon` (feature `parallel`, on by default); without the
//! feature the numbers are the same, bit for bit. They are the same at any thread count too, and
//! on every CPU of one kind: the GEMM's kernels, the narrow products and the packed convolutions
//! differ between AVX2 and AVX-512, so bit-identity is promised per CPU kind.
//!
//! ```
//! use gantry_tensor::{Conv2dParams, Tensor};
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(42);
//! let images = Tensor::randn(&[8, 3, 64, 64], 0.0, 1.0, &mut rng);
//! let weight = Tensor::randn(&[16, 3, 4, 4], 0.0, 0.02, &mut rng);
//! let features = images.conv2d(&weight, None, Conv2dParams::new(2, 1)).leaky_relu(0.2);
//! assert_eq!(features.shape(), &[8, 16, 32, 32]);
//! ```
//!
//! Shape mismatches are programmer errors: they panic with a message naming the op and the
//! shapes (see each method's **Panics** section), as `ndarray` does.
#![warn(missing_docs)]

mod conv;
mod conv_packed;
mod conv_taps;
mod elementwise;
mod im2col;
mod instance_norm;
mod matmul;
mod matmul_narrow;
mod microkernel;
mod norm;
mod parallel;
mod pixel_norm;
mod plane_sums;
pub mod profile;
mod random;
mod reduce;
mod resample;
mod scratch;
pub mod simd;
mod tensor;

pub use conv::{Conv2dParams, ConvTranspose2dParams};
pub use elementwise::{broadcast_shape, sigmoid, tanh};
pub use matmul::gemm;
pub use parallel::{num_threads, with_workers_awake};
pub use resample::Pads2d;
pub use tensor::Tensor;

pub use ndarray;
pub use rand;
