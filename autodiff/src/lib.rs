//! # gantry-autodiff
//!
//! Reverse-mode automatic differentiation on an arena tape.
//!
//! A [`Tape`] records every operation in creation order, which is already a topological order;
//! a [`Var`] is a `Copy` handle into it. Every op is a method on `Var` that computes its value
//! with `gantry-tensor` and records an `Op` naming its inputs; [`Var::backward`] is one reverse
//! loop over one exhaustive `match` of backward rules (`op.rs`). Gradients accumulate, so a
//! value used twice gets the sum of both uses.
//!
//! Make a fresh tape per step. Lifting a value in with [`Tape::constant`] (or
//! [`Var::detach`]) stops gradients: a GAN's discriminator step cannot leak into its
//! generator, and no gradient is computed for what does not need one.
//!
//! ```
//! use gantry_autodiff::{Reduction, Tape};
//! use gantry_tensor::Tensor;
//!
//! // One step of logistic regression on two points.
//! let tape = Tape::new();
//! let x = tape.constant(Tensor::from_vec(&[2, 2], vec![1., 2., -1., -2.]));
//! let w = tape.leaf(Tensor::from_vec(&[2, 1], vec![0.1, -0.1]));
//! let logits = x.matmul(w);
//! let loss = logits.bce_with_logits(&Tensor::from_vec(&[2, 1], vec![1., 0.]), Reduction::Mean);
//! let grads = loss.backward();
//! assert_eq!(grads.get(w).unwrap().shape(), &[2, 1]);
//! assert!(grads.get(x).is_none()); // constants get no gradient
//! ```
//!
//! ## Gradients of gradients
//!
//! [`Tape::grad`] with [`CreateGraph::Yes`] returns gradients as variables recorded on the same
//! tape: a loss built from them (WGAN-GP's gradient penalty, R1) differentiates back to the
//! weights. Every backward rule is written once and runs either on tensors (the fast
//! first-order path) or on variables (recorded); an op without a second derivative (batch norm)
//! makes such a gradient a [`GradError`] naming it.
//!
//! ```
//! use gantry_autodiff::{CreateGraph, Tape};
//! use gantry_autodiff::tensor::Tensor;
//!
//! // R1 on a linear "critic" D(x) = Σ w x: the penalty ‖dD/dx‖² = Σ w² depends on w.
//! let tape = Tape::new();
//! let w = tape.leaf(Tensor::from_vec(&[3], vec![1., -2., 0.5]));
//! let x = tape.leaf(Tensor::from_vec(&[3], vec![0.3, 0.1, -0.4]));
//! let d = x.mul(w).sum();
//! let g = tape.grad(&[d], &[x], CreateGraph::Yes).unwrap()[0];
//! let r1 = g.mul(g).sum();
//! assert_eq!(r1.backward().get(w).unwrap().to_vec(), vec![2., -4., 1.]); // d(Σ w²)/dw
//! ```
//!
//! ## Checking and extending
//!
//! New ops are checked in one line with [`gradcheck`], and their second derivatives with
//! [`gradgradcheck`]. An op from another crate implements [`CustomOp`] and is recorded with
//! [`Var::custom`] (see `examples/custom_op.rs`).
#![warn(missing_docs)]

mod calc;
mod custom;
mod error;
mod gradcheck;
mod op;
mod ops;
mod tape;

pub use custom::CustomOp;
pub use error::GradError;
pub use gradcheck::{Check, GradcheckConfig, GradcheckError, gradcheck, gradgradcheck};
pub use op::Reduction;
pub use ops::BatchNormOutput;
pub use tape::{CreateGraph, Gradients, Tape, Var};

pub use gantry_tensor as tensor;
