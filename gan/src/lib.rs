//! # gantry-gan
//!
//! GAN models (vanilla MLP GAN, DCGAN, pix2pix), the adversarial trainer, checkpoints and sample
//! grids. (Being built: see the project issues.)
