//! # gantry-gan
//!
//! GAN models and the adversarial training loop: the vanilla GAN of Goodfellow et al.
//! ([`models::Mlp`]), DCGAN ([`models::Dcgan`]), pix2pix ([`models::Pix2Pix`]) and the
//! label-conditional DCGAN ([`models::Cdcgan`]), each with an optional PacGAN discriminator
//! that judges `pack` samples at once ([`models::Packed`]); one [`Trainer`] for all of them
//! (Algorithm 1 with `k` discriminator steps) that asks an [`objective`] for each player's
//! loss as named parts (non-saturating, minimax, hinge, least-squares or Wasserstein loss;
//! penalties, pix2pix's L1, mode seeking), an [`ema`] of the generator's weights,
//! differentiable augmentation ([`diffaug`]), atomic checkpoints that resume bit for bit,
//! PNG sample grids, and the [`metrics`] that score samples (mode coverage, a digit
//! classifier's scores, Fréchet and kernel distances, precision and
//! recall, L1 / PSNR / SSIM). Generators leave as ONNX files that any ONNX runtime runs
//! ([`export`]), and PyTorch checkpoints of pytorch/examples' DCGAN and junyanz's pix2pix
//! come in ([`import`]).
//!
//! Examples (in `gan/examples/`, each run by `gan/tests/examples.rs`):
//! - `train_dcgan.rs`: a DCGAN trained on the bundled MNIST from Rust, no CLI, writing a
//!   sample grid (`cargo run --release -p gantry-gan --example train_dcgan -- 2000 digits.png`);
//! - `custom_gan.rs`: a model defined in user code (its own layer, its own [`models::Gan`]
//!   implementation) trained with the [`Trainer`]
//!   (`cargo run --release -p gantry-gan --example custom_gan`).
//!
//! The smallest use, one training step of the vanilla GAN on 2-D points:
//!
//! ```
//! use gantry_gan::models::{Batch, MlpConfig, ModelConfig};
//! use gantry_gan::{TrainConfig, Trainer};
//! use gantry_tensor::Tensor;
//! use rand::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
//! let gan = ModelConfig::Mlp(MlpConfig::points()).build(&mut rng).unwrap();
//! let mut trainer = Trainer::new(gan, TrainConfig::default()).unwrap();
//! let mut data = || Batch::new(Tensor::randn(&[16, 2], 0.0, 1.0, &mut rng));
//! let metrics = trainer.train_step(&mut data).unwrap();
//! assert_eq!(metrics.step, 1);
//! assert!(metrics.loss_d.is_finite() && metrics.loss_g.is_finite());
//! ```
#![warn(missing_docs)]

pub mod checkpoint;
pub mod diffaug;
pub mod ema;
pub mod error;
pub mod export;
pub mod import;
pub mod metrics;
pub mod models;
pub mod objective;
pub mod samples;
mod train;
pub mod truncation;
pub mod workloads;

pub use error::{GanError, Result};
pub use train::{OptimConfig, StepMetrics, TrainConfig, Trainer};
