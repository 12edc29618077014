//! # gantry-nn
//!
//! Layers, losses, initialisers, optimizers and `safetensors` state dicts on
//! `gantry-autodiff`.
//!
//! A [`Module`] names its parameters by visiting them (`down.3.weight`, PyTorch's names), and
//! applies itself with an explicit [`Mode`]. Optimizers and state dicts are built on the
//! visitor; nothing else needs to know a module's fields.
//!
//! Training a two-layer network on XOR:
//!
//! ```
//! use gantry_autodiff::{Reduction, Tape};
//! use gantry_nn::optim::{AdamConfig, Optimizer};
//! use gantry_nn::{LinearConfig, Mode, Module, Sequential, Tanh, loss};
//! use gantry_tensor::Tensor;
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let model = Sequential::new()
//!     .add(LinearConfig::new(2, 8).build(&mut rng).unwrap())
//!     .add(Tanh)
//!     .add(LinearConfig::new(8, 1).build(&mut rng).unwrap());
//! let x = Tensor::from_vec(&[4, 2], vec![0., 0., 0., 1., 1., 0., 1., 1.]);
//! let y = Tensor::from_vec(&[4, 1], vec![0., 1., 1., 0.]);
//! let mut opt = AdamConfig { lr: 0.05, ..Default::default() }.build();
//! let mut last = f32::INFINITY;
//! for _ in 0..300 {
//!     let tape = Tape::new();
//!     let logits = model.forward(tape.constant(x.clone()), Mode::Train);
//!     let l = loss::bce_with_logits(logits, &y, Reduction::Mean);
//!     last = l.value().item();
//!     opt.step(&model, &l.backward()).unwrap();
//! }
//! assert!(last < 0.05, "loss {last}");
//! ```
#![warn(missing_docs)]

pub mod error;
pub mod init;
mod layers;
pub mod loss;
mod module;
pub mod optim;
mod param;
pub mod reparam;
pub mod state_dict;

pub use error::{NnError, Result};
pub use layers::*;
pub use module::{
    Features, Mode, Module, forward_with_features, join, named_params, param_count,
    set_requires_grad, summary, visit_list, visit_weight_bias,
};
pub use param::{Param, ParamId, ParamKind, ParamRole};
