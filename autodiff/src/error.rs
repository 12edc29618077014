//! Why a differentiable gradient could not be made.

/// The error of [`Tape::grad`](crate::Tape::grad).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GradError {
    /// The path from an output to an input goes through an op whose gradient is not itself
    /// differentiable, and a differentiable gradient was asked for.
    #[error(
        "{op} has no second derivative: a gradient through it cannot be differentiated again \
         (a gradient penalty needs a discriminator without it; batch norm can be replaced by \
         instance or layer norm, or left out as WGAN-GP's critic does)"
    )]
    NoSecondDerivative {
        /// The op's name, as its method is called (`batch_norm`, or a custom op's name).
        op: String,
    },
    /// An input of `grad` is a constant: nothing can be differentiated with respect to it.
    #[error(
        "grad: input {index} is a constant (lift it with Tape::leaf to differentiate with respect to it)"
    )]
    ConstantInput {
        /// Its position in the `inputs` slice.
        index: usize,
    },
}
