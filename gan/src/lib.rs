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
//! classifier's scores and Fréchet distance, L1 / PSNR / SSIM).
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
pub mod metrics;
pub mod models;
pub mod objective;
pub mod samples;
mod train;
pub mod workloads;

pub use error::{GanError, Result};
pub use train::{OptimConfig, StepMetrics, TrainConfig, Trainer};
