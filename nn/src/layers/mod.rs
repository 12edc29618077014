//! Layers, one per file, each with a config carrying PyTorch's defaults.

mod activation;
mod batch_norm;
mod conv;
mod conv_transpose;
mod dropout;
mod embedding;
mod instance_norm;
mod linear;
mod minibatch_std;
mod pad;
mod pixel_norm;
mod pool;
mod reshape;
mod sequential;
mod upsample;

pub use activation::{LeakyReLU, ReLU, Sigmoid, Tanh};
pub use batch_norm::{BatchNorm, BatchNormConfig};
pub use conv::{Conv2d, Conv2dConfig};
pub use conv_transpose::{ConvTranspose2d, ConvTranspose2dConfig};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use instance_norm::{InstanceNorm2d, InstanceNorm2dConfig};
pub use linear::{Linear, LinearConfig};
pub use minibatch_std::MinibatchStdDev;
pub use pad::ReflectionPad2d;
pub use pixel_norm::PixelNorm;
pub use pool::{AvgPool2d, AvgPool2dConfig};
pub use reshape::{Flatten, Reshape};
pub use sequential::Sequential;
pub use upsample::{Upsample, UpsampleMode};
