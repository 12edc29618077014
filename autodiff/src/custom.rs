//! Ops defined outside this crate.
//!
//! The built-in ops are one exhaustive `match` in `op.rs`; an op from another crate implements
//! [`CustomOp`] instead and is recorded with [`Var::custom`]. Its backward rule runs on tensors
//! (the fast first-order path); [`CustomOp::backward_graph`], when given, writes the same rule
//! in recorded `Var` ops so that a gradient through the op can be differentiated again.

use crate::calc::Calc;
use crate::op::Op;
use crate::tape::Var;
use gantry_tensor::Tensor;
use std::rc::Rc;

/// An op with its forward and backward rules, recorded on a tape like a built-in one.
///
/// ```
/// use gantry_autodiff::{CustomOp, Tape, Var};
/// use gantry_autodiff::tensor::Tensor;
///
/// /// `x³`: backward `3x² gy`, written again in `Var` ops so it can be differentiated twice.
/// struct Cube;
///
/// impl CustomOp for Cube {
///     fn name(&self) -> &str { "cube" }
///     fn forward(&self, x: &[&Tensor]) -> Tensor { x[0].powf(3.0) }
///     fn backward(&self, x: &[&Tensor], _y: &Tensor, gy: &Tensor) -> Vec<Option<Tensor>> {
///         vec![Some(gy.mul(&x[0].powf(2.0)).mul_scalar(3.0))]
///     }
///     fn backward_graph<'t>(&self, x: &[Var<'t>], _y: Var<'t>, gy: Var<'t>) -> Option<Vec<Option<Var<'t>>>> {
///         Some(vec![Some(gy.mul(x[0].powf(2.0)).mul_scalar(3.0))])
///     }
/// }
///
/// let tape = Tape::new();
/// let x = tape.leaf(Tensor::from_vec(&[2], vec![1., 2.]));
/// let y = Var::custom(Cube, &[x]).sum();
/// assert_eq!(y.backward().get(x).unwrap().to_vec(), vec![3., 12.]);
/// ```
pub trait CustomOp {
    /// The op's name, used in panics and in [`GradError`](crate::GradError).
    fn name(&self) -> &str;

    /// The output, from the inputs' values.
    fn forward(&self, inputs: &[&Tensor]) -> Tensor;

    /// The gradient of each input (`None` where there is none: an index, a constant), given
    /// the inputs, the output `y` and its gradient `gy`. Each gradient has its input's shape.
    fn backward(&self, inputs: &[&Tensor], y: &Tensor, gy: &Tensor) -> Vec<Option<Tensor>>;

    /// The same rule in recorded ops, so that the gradient is differentiable again; `None`
    /// (the default) if the op has no second derivative, which makes a differentiable
    /// gradient through it an error naming the op.
    fn backward_graph<'t>(
        &self,
        inputs: &[Var<'t>],
        y: Var<'t>,
        gy: Var<'t>,
    ) -> Option<Vec<Option<Var<'t>>>> {
        let _ = (inputs, y, gy);
        None
    }
}

/// A custom op as recorded: shared, so that cloning the tape's record is cheap.
#[derive(Clone)]
pub(crate) struct Recorded(pub Rc<dyn CustomOp>);

impl std::fmt::Debug for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomOp({})", self.0.name())
    }
}

impl<'t> Var<'t> {
    /// Applies a user-defined op to `inputs` (all on one tape) and records it.
    ///
    /// # Panics
    /// If `inputs` is empty or mixes tapes.
    #[track_caller]
    pub fn custom(op: impl CustomOp + 'static, inputs: &[Var<'t>]) -> Var<'t> {
        assert!(
            !inputs.is_empty(),
            "custom op {}: needs at least one input",
            op.name()
        );
        let tape = inputs[0].tape;
        crate::tape::same_tape(op.name(), inputs);
        let value = {
            let values: Vec<Tensor> = inputs.iter().map(|v| v.value()).collect();
            let refs: Vec<&Tensor> = values.iter().collect();
            op.forward(&refs)
        };
        let record = Op::Custom {
            op: Recorded(Rc::new(op)),
            inputs: inputs.iter().map(|v| v.id).collect(),
        };
        tape.record(value, record)
    }
}

/// Checks a custom rule's answer (one entry per input, each of its input's shape) and pairs
/// it with the input indices that want a gradient.
pub(crate) fn collect<C: Calc>(
    name: &str,
    inputs: &[usize],
    shapes: &[Vec<usize>],
    grads: Vec<Option<C>>,
    want: &dyn Fn(usize) -> bool,
) -> Vec<(usize, C)> {
    assert!(
        grads.len() == inputs.len(),
        "custom op {name}: backward returned {} gradients for {} inputs",
        grads.len(),
        inputs.len()
    );
    let mut out = Vec::new();
    for ((&i, shape), g) in inputs.iter().zip(shapes).zip(grads) {
        let Some(g) = g else { continue };
        assert!(
            &g.shape() == shape,
            "custom op {name}: gradient of shape {:?} for an input of shape {shape:?}",
            g.shape()
        );
        if want(i) {
            out.push((i, g));
        }
    }
    out
}
