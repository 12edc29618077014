//! Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (PyTorch's).

use super::{Optimizer, saved_slot, to_vec, with_grads};
use crate::error::Result;
use crate::module::{Module, named_params};
use crate::param::ParamId;
use gantry_autodiff::Gradients;
use gantry_tensor::Tensor;
use std::collections::HashMap;

/// Settings of [`Sgd`].
#[derive(Clone, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (0 for plain SGD).
    pub momentum: f32,
    /// Dampening of the momentum's new gradient.
    pub dampening: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
}

impl SgdConfig {
    /// Plain SGD with this learning rate.
    pub fn new(lr: f32) -> Self {
        SgdConfig {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }

    /// With this momentum.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// An optimizer with these settings.
    pub fn build(&self) -> Sgd {
        Sgd {
            config: self.clone(),
            buffers: HashMap::new(),
        }
    }
}

/// SGD: `b = μ b + (1 - dampening) g` (`b = g` at the first step), `p -= lr · b`
/// (or `lr · (g + μ b)` with Nesterov).
#[derive(Debug)]
pub struct Sgd {
    config: SgdConfig,
    buffers: HashMap<ParamId, Vec<f32>>,
}

impl Optimizer for Sgd {
    fn step(&mut self, module: &dyn Module, grads: &Gradients) -> Result<()> {
        let params = with_grads(module, grads)?;
        let c = self.config.clone();
        for (_, p, g) in params {
            let mut g = to_vec(&g);
            if c.weight_decay != 0.0 {
                let w = p.value();
                for (gi, wi) in g.iter_mut().zip(w.as_slice().iter()) {
                    *gi += c.weight_decay * wi;
                }
            }
            if c.momentum != 0.0 {
                let buf = match self.buffers.get_mut(&p.id()) {
                    Some(b) => {
                        for (bi, gi) in b.iter_mut().zip(&g) {
                            *bi = c.momentum * *bi + (1.0 - c.dampening) * gi;
                        }
                        b
                    }
                    None => self.buffers.entry(p.id()).or_insert_with(|| g.clone()),
                };
                if c.nesterov {
                    for (gi, bi) in g.iter_mut().zip(buf.iter()) {
                        *gi += c.momentum * bi;
                    }
                } else {
                    g.clone_from(buf);
                }
            }
            p.update(|w| {
                for (wi, gi) in w.iter_mut().zip(&g) {
                    *wi -= c.lr * gi;
                }
            });
        }
        Ok(())
    }

    fn lr(&self) -> f32 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.config.lr = lr;
    }

    fn state(&self, module: &dyn Module) -> Vec<(String, Tensor)> {
        let mut out = vec![(
            "step".to_string(),
            Tensor::scalar(f32::from(u8::from(!self.buffers.is_empty()))),
        )];
        for (name, p) in named_params(module) {
            if let Some(b) = self.buffers.get(&p.id()) {
                out.push((
                    format!("{name}.momentum_buffer"),
                    Tensor::from_vec(&p.shape(), b.clone()),
                ));
            }
        }
        out
    }

    fn load_state(&mut self, module: &dyn Module, state: &HashMap<String, Tensor>) -> Result<()> {
        let mut buffers = HashMap::new();
        let started = state.get("step").is_some_and(|s| s.item() > 0.0);
        if started && self.config.momentum != 0.0 {
            for (name, p) in named_params(module)
                .into_iter()
                .filter(|(_, p)| p.is_trained())
            {
                buffers.insert(
                    p.id(),
                    to_vec(&saved_slot(state, &name, "momentum_buffer", p)?),
                );
            }
        }
        self.buffers = buffers;
        Ok(())
    }
}
