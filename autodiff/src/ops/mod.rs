//! The forward pass of every op, as methods on [`Var`](crate::Var), grouped by family. Each
//! computes its value with `gantry-tensor` and records an [`Op`](crate::op::Op) whose backward
//! rule is in `op.rs`.

mod activation;
mod arith;
mod linalg;
mod loss;
mod norm;
mod reduce;
mod shape;

pub use norm::BatchNormOutput;
