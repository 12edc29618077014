//! The arena tape, variable handles, and the reverse pass.

use crate::calc::Calc;
use crate::error::GradError;
use crate::op::Op;
use gantry_tensor::Tensor;
use gantry_tensor::profile::{self, Timer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::cell::{Cell, Ref, RefCell, RefMut};
use std::collections::HashMap;
use std::fmt;
use std::time::Instant;

/// One recorded value: what it is, how it was made, and whether a gradient can reach a leaf
/// through it.
pub(crate) struct Node {
    pub value: Tensor,
    pub op: Op,
    pub needs_grad: bool,
}

/// A recording of operations, in creation order (which is already a topological order).
///
/// Make a fresh tape per step: values are kept until the tape is dropped.
///
/// ```
/// use gantry_autodiff::Tape;
/// use gantry_tensor::Tensor;
///
/// let tape = Tape::new();
/// let x = tape.leaf(Tensor::from_vec(&[3], vec![1., 2., 3.]));
/// let y = x.mul(x).sum(); // Σ x²
/// let grads = y.backward();
/// assert_eq!(grads.get(x).unwrap().to_vec(), vec![2., 4., 6.]);
/// ```
pub struct Tape {
    nodes: RefCell<Vec<Node>>,
    /// Leaves lifted under a stable key (a parameter's id), so that a parameter used twice
    /// in one step is one leaf and its gradient can be found by key.
    keyed: RefCell<HashMap<u64, usize>>,
    rng: RefCell<ChaCha8Rng>,
    /// When the last value was recorded, while profiling: an op's forward time is the time
    /// from there to its own record (see [`Tape::record`]).
    last_record: Cell<Option<Instant>>,
}

impl Default for Tape {
    fn default() -> Self {
        Tape::with_seed(0)
    }
}

/// An op's row in a profile: its name, the shape of its first input and of the value it makes.
fn op_label(op: &Op, nodes: &[Node], value: &Tensor) -> String {
    let input = op
        .inputs()
        .first()
        .map(|&i| nodes[i].value.shape().to_vec());
    match input {
        Some(x) => format!("{} {x:?} -> {:?}", op.name(), value.shape()),
        None => format!("{} {:?}", op.name(), value.shape()),
    }
}

/// A handle to a value on a [`Tape`]: cheap to copy, valid as long as the tape.
#[derive(Clone, Copy)]
pub struct Var<'t> {
    pub(crate) id: usize,
    pub(crate) tape: &'t Tape,
}

impl Tape {
    /// An empty tape whose random stream (for dropout) starts from seed 0.
    pub fn new() -> Self {
        Tape::default()
    }

    /// An empty tape whose random stream starts from `seed`: a trainer seeds each step's tape
    /// from the run seed and the step number, so a resumed run draws the same masks.
    pub fn with_seed(seed: u64) -> Self {
        Tape {
            nodes: RefCell::new(Vec::new()),
            keyed: RefCell::new(HashMap::new()),
            rng: RefCell::new(ChaCha8Rng::seed_from_u64(seed)),
            last_record: Cell::new(None),
        }
    }

    /// The tape's random stream, for stochastic ops such as dropout.
    ///
    /// # Panics
    /// If it is already borrowed.
    pub fn rng(&self) -> RefMut<'_, ChaCha8Rng> {
        self.rng.borrow_mut()
    }

    /// The leaf (or constant, if `trainable` is false) registered under `key`, lifting
    /// `value()` in on first use. A parameter lifted twice in one step is one node, so the
    /// gradients of both uses add up, and [`Gradients::get_key`] finds it.
    pub fn keyed(&self, key: u64, trainable: bool, value: impl FnOnce() -> Tensor) -> Var<'_> {
        if let Some(&id) = self.keyed.borrow().get(&key) {
            return Var { id, tape: self };
        }
        let var = if trainable {
            self.leaf(value())
        } else {
            self.constant(value())
        };
        self.keyed.borrow_mut().insert(key, var.id);
        var
    }

    /// A variable to differentiate with respect to (a parameter or an input).
    pub fn leaf(&self, value: Tensor) -> Var<'_> {
        self.push(value, Op::Leaf, true)
    }

    /// A value that is not differentiated (data, labels, a detached result).
    pub fn constant(&self, value: Tensor) -> Var<'_> {
        self.push(value, Op::Constant, false)
    }

    /// The number of recorded nodes.
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn push(&self, value: Tensor, op: Op, needs_grad: bool) -> Var<'_> {
        self.profile_forward(&op, &value);
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(Node {
            value,
            op,
            needs_grad,
        });
        Var {
            id: nodes.len() - 1,
            tape: self,
        }
    }

    /// While profiling, adds the time since the previous record on this tape to `op`'s forward
    /// row (labelled by name and output shape), unless `op` is a leaf or a constant. An op
    /// computes its value from recorded inputs just before recording it, so that time is its
    /// computation; what a caller computes off the tape between two ops (rarely more than a
    /// parameter lookup) counts towards the later op, and a leaf or a constant starts afresh.
    fn profile_forward(&self, op: &Op, value: &Tensor) {
        if !profile::enabled() {
            self.last_record.set(None);
            return;
        }
        let now = Instant::now();
        let last = self.last_record.replace(Some(now));
        if let (Some(last), false) = (last, matches!(op, Op::Leaf | Op::Constant)) {
            let label = || op_label(op, &self.nodes.borrow(), value);
            profile::add(profile::FORWARD, label, now - last, 0.0);
        }
    }

    /// Records `value` made by `op`: it needs a gradient if any input does.
    pub(crate) fn record(&self, value: Tensor, op: Op) -> Var<'_> {
        let needs_grad = {
            let nodes = self.nodes.borrow();
            op.inputs().iter().any(|&i| nodes[i].needs_grad)
        };
        self.push(value, op, needs_grad)
    }

    pub(crate) fn nodes(&self) -> Ref<'_, Vec<Node>> {
        self.nodes.borrow()
    }

    /// The reverse pass from `roots`, each seeded with its gradient, on tensors (the
    /// first-order path, recording nothing) or on `Var`s (recorded, so differentiable again).
    ///
    /// Only nodes that need a gradient and, if `relevant` is given, lie on a path to one of
    /// the wanted inputs are visited. The gradient of a node in `keep` is left in the result;
    /// every other non-leaf node's gradient is dropped once it has been passed on.
    fn reverse<C: Calc>(
        &self,
        roots: Vec<(usize, C)>,
        relevant: Option<&[bool]>,
        keep: &[usize],
        val: &dyn Fn(usize) -> C,
    ) -> Result<Vec<Option<C>>, GradError> {
        let top = roots.iter().map(|(id, _)| *id).max().unwrap_or(0);
        let mut grads: Vec<Option<C>> = vec![None; top + 1];
        for (id, seed) in roots {
            grads[id] = Some(match grads[id].take() {
                Some(acc) => acc.accumulate(&seed),
                None => seed,
            });
        }
        let on_path = |i: usize| relevant.is_none_or(|r| r.get(i).copied().unwrap_or(false));
        for id in (0..=top).rev() {
            let op = {
                let nodes = self.nodes.borrow();
                let node = &nodes[id];
                if !node.needs_grad || !on_path(id) {
                    grads[id] = None;
                    continue;
                }
                if matches!(node.op, Op::Leaf) {
                    continue;
                }
                node.op.clone()
            };
            let gy = if keep.contains(&id) {
                grads[id].clone()
            } else {
                grads[id].take()
            };
            let Some(gy) = gy else { continue };
            let want = |i: usize| on_path(i) && self.nodes.borrow()[i].needs_grad;
            let timer = Timer::start();
            for (input, g) in op.backward(&gy, &val(id), val, &want)? {
                // A value used more than once sums the gradients of its uses.
                grads[input] = Some(match grads[input].take() {
                    Some(acc) => acc.accumulate(&g),
                    None => g,
                });
            }
            let label = || {
                let nodes = self.nodes.borrow();
                op_label(&op, &nodes, &nodes[id].value)
            };
            timer.stop(profile::BACKWARD, label, 0.0);
        }
        Ok(grads)
    }

    /// The first-order pass from one root (what [`Var::backward`] runs).
    fn backward_from(&self, root: usize, seed: Tensor) -> Gradients {
        let val = |i: usize| self.nodes.borrow()[i].value.clone();
        let grads = self
            .reverse(vec![(root, seed)], None, &[], &val)
            .expect("a first-order pass has no second-order rule to miss");
        Gradients {
            grads,
            keyed: self.keyed.borrow().clone(),
        }
    }

    /// The gradients of the sum of every element of `outputs` with respect to each of
    /// `inputs`, as variables on this tape (PyTorch's `torch.autograd.grad` with
    /// `grad_outputs` of ones).
    ///
    /// With [`CreateGraph::Yes`] every step of the reverse pass is recorded, so a loss built
    /// from the gradients (a gradient penalty, R1) can be differentiated again, with respect to
    /// anything the gradients depend on (a discriminator's weights). With [`CreateGraph::No`]
    /// the gradients are constants. An input that the outputs do not depend on gets zeros.
    /// Only the part of the tape between the inputs and the outputs is visited.
    ///
    /// ```
    /// use gantry_autodiff::{CreateGraph, Tape};
    /// use gantry_autodiff::tensor::Tensor;
    ///
    /// // d/dx (x³) = 3x², and d/dx of that is 6x.
    /// let tape = Tape::new();
    /// let x = tape.leaf(Tensor::from_vec(&[2], vec![1., 2.]));
    /// let y = x.mul(x).mul(x);
    /// let dy = tape.grad(&[y], &[x], CreateGraph::Yes).unwrap()[0];
    /// assert_eq!(dy.value().to_vec(), vec![3., 12.]);
    /// let d2y = tape.grad(&[dy], &[x], CreateGraph::No).unwrap()[0];
    /// assert_eq!(d2y.value().to_vec(), vec![6., 12.]);
    /// ```
    ///
    /// # Errors
    /// [`GradError::NoSecondDerivative`] naming the op when a differentiable gradient would
    /// pass through an op that has none (batch norm); [`GradError::ConstantInput`] when an
    /// input is a constant.
    ///
    /// # Panics
    /// If a variable comes from another tape, or `outputs` is empty.
    #[track_caller]
    pub fn grad<'t>(
        &'t self,
        outputs: &[Var<'t>],
        inputs: &[Var<'t>],
        create: CreateGraph,
    ) -> Result<Vec<Var<'t>>, GradError> {
        assert!(!outputs.is_empty(), "grad: no outputs to differentiate");
        for v in outputs.iter().chain(inputs) {
            assert!(
                std::ptr::eq(v.tape, self),
                "grad: a variable comes from another tape"
            );
        }
        if let Some(index) = inputs.iter().position(|v| !v.needs_grad()) {
            return Err(GradError::ConstantInput { index });
        }
        let relevant = self.between(inputs, outputs);
        let keep: Vec<usize> = inputs.iter().map(|v| v.id).collect();
        let grads: Vec<Option<Var<'t>>> = match create {
            CreateGraph::Yes => {
                let roots = outputs
                    .iter()
                    .map(|o| (o.id, self.constant(Tensor::ones(&o.shape()))))
                    .collect();
                let val = |i: usize| Var { id: i, tape: self };
                self.reverse(roots, Some(&relevant), &keep, &val)?
            }
            CreateGraph::No => {
                let roots = outputs
                    .iter()
                    .map(|o| (o.id, Tensor::ones(&o.shape())))
                    .collect();
                let val = |i: usize| self.nodes.borrow()[i].value.clone();
                let grads = self.reverse(roots, Some(&relevant), &keep, &val)?;
                grads
                    .into_iter()
                    .map(|g| g.map(|t| self.constant(t)))
                    .collect()
            }
        };
        Ok(inputs
            .iter()
            .map(|x| {
                grads
                    .get(x.id)
                    .copied()
                    .flatten()
                    .unwrap_or_else(|| self.constant(Tensor::zeros(&x.shape())))
            })
            .collect())
    }

    /// Which nodes lie on a path from one of `inputs` to one of `outputs`' ancestors: those
    /// that depend on an input (an input itself included).
    fn between(&self, inputs: &[Var<'_>], outputs: &[Var<'_>]) -> Vec<bool> {
        let nodes = self.nodes.borrow();
        let top = outputs.iter().map(|o| o.id).max().unwrap_or(0);
        let mut depends = vec![false; top + 1];
        for x in inputs {
            if x.id <= top {
                depends[x.id] = true;
            }
        }
        let first = inputs.iter().map(|x| x.id).min().unwrap_or(top + 1);
        for id in first..=top {
            if !depends[id] {
                depends[id] = nodes[id].op.inputs().iter().any(|&i| depends[i]);
            }
        }
        depends
    }
}

/// Whether [`Tape::grad`] records its gradients so that they can be differentiated again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateGraph {
    /// Record the reverse pass: the gradients are differentiable (gradient penalties).
    Yes,
    /// Compute the gradients as constants (the fast first-order path).
    No,
}

/// Panics, naming `op`, unless every variable lives on the first one's tape.
#[track_caller]
pub(crate) fn same_tape(op: &str, vars: &[Var<'_>]) {
    if let Some(first) = vars.first() {
        assert!(
            vars.iter().all(|v| std::ptr::eq(v.tape, first.tape)),
            "{op}: variables come from different tapes"
        );
    }
}

impl<'t> Var<'t> {
    /// The value (a cheap, reference-counted clone).
    pub fn value(&self) -> Tensor {
        self.tape.nodes.borrow()[self.id].value.clone()
    }

    /// The shape of the value.
    pub fn shape(&self) -> Vec<usize> {
        self.tape.nodes.borrow()[self.id].value.shape().to_vec()
    }

    /// The tape this variable lives on.
    pub fn tape(&self) -> &'t Tape {
        self.tape
    }

    /// Whether a gradient can flow from this value back to a leaf.
    pub fn needs_grad(&self) -> bool {
        self.tape.nodes.borrow()[self.id].needs_grad
    }

    /// The same value as a constant: gradients stop here.
    pub fn detach(self) -> Var<'t> {
        self.tape.constant(self.value())
    }

    /// Gradients of this scalar with respect to every leaf it depends on.
    ///
    /// # Panics
    /// If the value is not a single element.
    #[track_caller]
    pub fn backward(self) -> Gradients {
        let shape = self.shape();
        assert!(
            shape.iter().product::<usize>() == 1,
            "backward: the root must be a scalar, got shape {shape:?} (use backward_with)"
        );
        self.tape.backward_from(self.id, Tensor::ones(&shape))
    }

    /// Gradients of `Σ self * seed` with respect to every leaf: a vector-Jacobian product.
    ///
    /// # Panics
    /// If `seed` does not have this value's shape.
    #[track_caller]
    pub fn backward_with(self, seed: Tensor) -> Gradients {
        let shape = self.shape();
        assert!(
            seed.shape() == shape.as_slice(),
            "backward_with: seed {:?} differs from value {shape:?}",
            seed.shape()
        );
        self.tape.backward_from(self.id, seed)
    }
}

impl fmt::Debug for Var<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Var#{} {:?}", self.id, self.shape())
    }
}

/// The result of a reverse pass: the gradient of each leaf that the root depends on.
pub struct Gradients {
    grads: Vec<Option<Tensor>>,
    keyed: HashMap<u64, usize>,
}

impl Gradients {
    /// The gradient with respect to leaf `var`, or `None` if the root does not depend on it.
    pub fn get(&self, var: Var<'_>) -> Option<&Tensor> {
        self.grads.get(var.id).and_then(Option::as_ref)
    }

    /// The gradient of the leaf lifted with [`Tape::keyed`] under `key`, or `None` if it was
    /// not lifted or the root does not depend on it.
    pub fn get_key(&self, key: u64) -> Option<&Tensor> {
        let id = *self.keyed.get(&key)?;
        self.grads.get(id).and_then(Option::as_ref)
    }

    /// The gradient with respect to `var`, zeros if the root does not depend on it.
    pub fn get_or_zeros(&self, var: Var<'_>) -> Tensor {
        self.get(var)
            .cloned()
            .unwrap_or_else(|| Tensor::zeros(&var.shape()))
    }
}
