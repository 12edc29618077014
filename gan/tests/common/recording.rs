//! An optimizer wrapper for the PyTorch step tests: it records the gradient of every trained
//! parameter it is handed, by name, then lets the wrapped optimizer step.

use gantry_autodiff::Gradients;
use gantry_nn::optim::Optimizer;
use gantry_nn::{Module, named_params};
use gantry_tensor::Tensor;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// An optimizer that records the gradients it is handed, by parameter name, then steps.
pub struct Recording {
    inner: Box<dyn Optimizer>,
    grads: Rc<RefCell<BTreeMap<String, Tensor>>>,
}

/// What a [`Recording`] saw: each trained parameter's last gradient, by name.
pub type Recorded = Rc<RefCell<BTreeMap<String, Tensor>>>;

impl Recording {
    /// Wraps `opt` in place; returns where its gradients will be.
    pub fn install(opt: &mut Box<dyn Optimizer>) -> Recorded {
        let grads = Recorded::default();
        // A stand-in for the moment the optimizer is moved into its wrapper.
        let inner = std::mem::replace(opt, gantry_gan::OptimConfig::adam_gan().build());
        *opt = Box::new(Recording {
            inner,
            grads: Rc::clone(&grads),
        });
        grads
    }
}

impl Optimizer for Recording {
    fn step(&mut self, module: &dyn Module, grads: &Gradients) -> gantry_nn::Result<()> {
        let mut seen = self.grads.borrow_mut();
        for (name, p) in named_params(module) {
            if let Some(g) = p.is_trained().then(|| grads.get_key(p.id().0)).flatten() {
                seen.insert(name, g.clone());
            }
        }
        self.inner.step(module, grads)
    }
    fn lr(&self) -> f32 {
        self.inner.lr()
    }
    fn set_lr(&mut self, lr: f32) {
        self.inner.set_lr(lr);
    }
    fn state(&self, module: &dyn Module) -> Vec<(String, Tensor)> {
        self.inner.state(module)
    }
    fn load_state(
        &mut self,
        module: &dyn Module,
        state: &HashMap<String, Tensor>,
    ) -> gantry_nn::Result<()> {
        self.inner.load_state(module, state)
    }
}
