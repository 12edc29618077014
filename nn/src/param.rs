//! Parameters: trainable weights and saved-only buffers, each with a unique id.

use crate::module::Mode;
use crate::reparam::Reparam;
use gantry_autodiff::{Tape, Var};
use gantry_tensor::Tensor;
use std::cell::{Cell, OnceCell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique parameter identity: optimizer state and gradients are keyed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(pub u64);

/// Whether the optimizer trains a parameter or only saves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// Updated by the optimizer from its gradient.
    Trainable,
    /// State that is saved and loaded but never trained (batch-norm running statistics).
    Buffer,
}

/// What a parameter is for, so that initialisers can treat a whole model by layer kind
/// (the DCGAN recipe: conv weights `N(0, 0.02)`, norm weights `N(1, 0.02)`, norm biases 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamRole {
    /// A linear layer's weight.
    LinearWeight,
    /// A convolution's (or transposed convolution's) weight.
    ConvWeight,
    /// A normalisation layer's scale (gamma).
    NormWeight,
    /// A normalisation layer's shift (beta).
    NormBias,
    /// A linear or convolution layer's bias.
    Bias,
    /// An embedding table.
    Embedding,
    /// A running statistic.
    Statistic,
    /// Anything else (user layers).
    Other,
}

/// A named value of a module: a weight, a bias or a buffer.
///
/// The value sits behind a `RefCell` so that a forward pass (`&self`) can update running
/// statistics, and an optimizer can write new weights through a shared module reference.
///
/// A parameter may carry one [`Reparam`] (spectral normalisation, the equalised learning
/// rate): layers read their weights through [`Param::read`], which applies it, so one
/// mechanism covers every layer, built-in or not, and can be attached to a network that is
/// already built (see [`crate::reparam`]).
#[derive(Debug)]
pub struct Param {
    id: ParamId,
    kind: ParamKind,
    role: ParamRole,
    requires_grad: Cell<bool>,
    value: RefCell<Tensor>,
    out_axis: usize,
    // A `OnceCell` hands out references that live as long as the parameter, so the visitor
    // can name the reparameterisation's buffers; PyTorch too refuses a second hook.
    reparam: OnceCell<Box<dyn Reparam>>,
}

impl Param {
    /// A parameter with a fresh id.
    pub fn new(value: Tensor, kind: ParamKind, role: ParamRole) -> Self {
        Param {
            id: ParamId(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            kind,
            role,
            requires_grad: Cell::new(true),
            value: RefCell::new(value),
            out_axis: 0,
            reparam: OnceCell::new(),
        }
    }

    /// With the axis that indexes output channels set to `axis` (default 0; 1 for a
    /// transposed convolution's `[in, out, k, k]` weight, as PyTorch's `spectral_norm`
    /// assumes for `ConvTranspose*`).
    ///
    /// # Panics
    /// If the value has no such axis.
    #[track_caller]
    pub fn with_out_axis(mut self, axis: usize) -> Self {
        assert!(
            axis < self.value.borrow().shape().len(),
            "Param::with_out_axis: axis {axis} out of range for shape {:?}",
            self.value.borrow().shape()
        );
        self.out_axis = axis;
        self
    }

    /// The axis that indexes output channels (see [`Param::with_out_axis`]).
    pub fn out_axis(&self) -> usize {
        self.out_axis
    }

    /// A trainable parameter.
    pub fn trainable(value: Tensor, role: ParamRole) -> Self {
        Param::new(value, ParamKind::Trainable, role)
    }

    /// A buffer (saved, never trained).
    pub fn buffer(value: Tensor) -> Self {
        Param::new(value, ParamKind::Buffer, ParamRole::Statistic)
    }

    /// The identity.
    pub fn id(&self) -> ParamId {
        self.id
    }

    /// Trainable or buffer.
    pub fn kind(&self) -> ParamKind {
        self.kind
    }

    /// What the parameter is for.
    pub fn role(&self) -> ParamRole {
        self.role
    }

    /// The current value (a cheap clone).
    pub fn value(&self) -> Tensor {
        self.value.borrow().clone()
    }

    /// The shape of the value.
    pub fn shape(&self) -> Vec<usize> {
        self.value.borrow().shape().to_vec()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.value.borrow().len()
    }

    /// Whether the value has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the value.
    ///
    /// # Panics
    /// If the shape changes.
    #[track_caller]
    pub fn set(&self, value: Tensor) {
        let mut slot = self.value.borrow_mut();
        assert!(
            slot.shape() == value.shape(),
            "Param::set: shape {:?} differs from the parameter's {:?}",
            value.shape(),
            slot.shape()
        );
        *slot = value;
    }

    /// Changes the value in place: `f` gets its elements in row-major order. Nothing is
    /// copied when no other tensor holds the value (copy on write otherwise, see
    /// [`Tensor::as_mut_slice`]); optimizers update parameters this way.
    pub fn update(&self, f: impl FnOnce(&mut [f32])) {
        f(self.value.borrow_mut().as_mut_slice());
    }

    /// Whether a forward pass lifts this parameter as a differentiable leaf.
    pub fn is_trained(&self) -> bool {
        self.kind == ParamKind::Trainable && self.requires_grad.get()
    }

    /// Freezes (`false`) or unfreezes a trainable parameter: a frozen one enters the tape as a
    /// constant, so no gradient is computed for it (PyTorch's `requires_grad_`).
    pub fn set_requires_grad(&self, on: bool) {
        self.requires_grad.set(on);
    }

    /// This parameter on `tape`: a leaf if trained, a constant otherwise; the same node if
    /// lifted twice on one tape. This is the raw value: layers read weights with
    /// [`Param::read`], which applies a reparameterisation if one is attached.
    pub fn var<'t>(&self, tape: &'t Tape) -> Var<'t> {
        tape.keyed(self.id.0, self.is_trained(), || self.value())
    }

    /// The value a layer computes with: the raw [`Param::var`], or, if a [`Reparam`] is
    /// attached, its function of it (which may update the reparameterisation's buffers in
    /// [`Mode::Train`], as spectral normalisation's power iteration does). Gradients flow to
    /// the raw parameter, keyed by its id as usual.
    pub fn read<'t>(&self, tape: &'t Tape, mode: Mode) -> Var<'t> {
        let raw = self.var(tape);
        match self.reparam.get() {
            Some(r) => r.apply(raw, mode),
            None => raw,
        }
    }

    /// The attached reparameterisation, if any.
    pub fn reparam(&self) -> Option<&dyn Reparam> {
        self.reparam.get().map(|r| r.as_ref())
    }

    /// Attaches a reparameterisation; later [`Param::read`]s apply it, and the state dict
    /// names this parameter `NAME_orig` beside the reparameterisation's buffers.
    ///
    /// # Errors
    /// If one is attached already (PyTorch also refuses two `spectral_norm` hooks on one
    /// weight), or this is a buffer.
    pub fn set_reparam(&self, r: Box<dyn Reparam>) -> crate::Result<()> {
        if self.kind == ParamKind::Buffer {
            return Err(crate::error::config_error(
                "reparam",
                format!("{} cannot reparameterise a buffer", r.describe()),
            ));
        }
        self.reparam.set(r).map_err(|r| {
            crate::error::config_error(
                "reparam",
                format!(
                    "cannot attach {}: the parameter already has {}",
                    r.describe(),
                    self.reparam().map(|o| o.describe()).unwrap_or_default()
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_changes_the_value_but_not_earlier_copies() {
        let p = Param::trainable(Tensor::from_vec(&[3], vec![1.0, 2.0, 3.0]), ParamRole::Bias);
        let earlier = p.value();
        p.update(|w| w.iter_mut().for_each(|x| *x *= 2.0));
        assert_eq!(p.value().to_vec(), vec![2.0, 4.0, 6.0]);
        assert_eq!(
            earlier.to_vec(),
            vec![1.0, 2.0, 3.0],
            "a tape's copy changed"
        );
        assert_eq!(p.shape(), vec![3]);
    }

    /// A model may move to another thread (a trainer's worker): a reparameterisation must not
    /// take that away.
    #[test]
    fn params_are_send() {
        fn is_send<T: Send>() {}
        is_send::<Param>();
    }
}
