//! Layers, one per file, each with a config carrying PyTorch's defaults.

mod activation;
mod batch_norm;
mod conv;
mod conv_transpose;
mod dropout;
mod embedding;
mod linear;
mod reshape;
mod sequential;

pub use activation::{LeakyReLU, ReLU, Sigmoid, Tanh};
pub use batch_norm::{BatchNorm, BatchNormConfig};
pub use conv::{Conv2d, Conv2dConfig};
pub use conv_transpose::{ConvTranspose2d, ConvTranspose2dConfig};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use linear::{Linear, LinearConfig};
pub use reshape::{Flatten, Reshape};
pub use sequential::Sequential;
