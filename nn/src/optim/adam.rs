//! Adam (Kingma & Ba), with PyTorch's bias correction and L2 weight decay.

use super::{Optimizer, saved_slot, to_vec, with_grads};
use crate::error::{NnError, Result};
use crate::module::{Module, named_params};
use crate::param::ParamId;
use gantry_autodiff::Gradients;
use gantry_tensor::Tensor;
use std::collections::HashMap;

/// Settings of [`Adam`]; the default is PyTorch's (lr 1e-3, betas 0.9/0.999, eps 1e-8).
#[derive(Clone, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the denominator.
    pub eps: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    /// The GAN setting of Radford et al.: lr 2e-4, beta1 0.5.
    pub fn dcgan() -> Self {
        AdamConfig {
            lr: 2e-4,
            beta1: 0.5,
            ..Default::default()
        }
    }

    /// An optimizer with these settings.
    pub fn build(&self) -> Adam {
        Adam {
            config: self.clone(),
            step: 0,
            moments: HashMap::new(),
        }
    }
}

/// Adam: `m = β1 m + (1-β1) g`, `v = β2 v + (1-β2) g²`,
/// `p -= lr / (1-β1^t) · m / (√v / √(1-β2^t) + eps)`.
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    step: u64,
    moments: HashMap<ParamId, (Vec<f32>, Vec<f32>)>,
}

impl Adam {
    /// The number of steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }
}

/// PyTorch's `lerp(a, b, w)`, evaluated the same way so that moments match bit for bit.
fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if w.abs() < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
    }
}

impl Optimizer for Adam {
    fn step(&mut self, module: &dyn Module, grads: &Gradients) -> Result<()> {
        let params = with_grads(module, grads)?;
        self.step += 1;
        let c = &self.config;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        let step_size = c.lr / bc1;
        for (_, p, g) in params {
            let mut w = to_vec(&p.value());
            let g = to_vec(&g);
            let (m, v) = self
                .moments
                .entry(p.id())
                .or_insert_with(|| (vec![0.0; w.len()], vec![0.0; w.len()]));
            for i in 0..w.len() {
                let gi = g[i] + c.weight_decay * w[i];
                m[i] = lerp(m[i], gi, 1.0 - c.beta1);
                v[i] = v[i] * c.beta2 + (1.0 - c.beta2) * gi * gi;
                let denom = v[i].sqrt() / bc2_sqrt + c.eps;
                w[i] -= step_size * (m[i] / denom);
            }
            p.set(Tensor::from_vec(&p.shape(), w));
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
        let mut out = vec![("step".to_string(), Tensor::scalar(self.step as f32))];
        for (name, p) in named_params(module) {
            if let Some((m, v)) = self.moments.get(&p.id()) {
                out.push((
                    format!("{name}.exp_avg"),
                    Tensor::from_vec(&p.shape(), m.clone()),
                ));
                out.push((
                    format!("{name}.exp_avg_sq"),
                    Tensor::from_vec(&p.shape(), v.clone()),
                ));
            }
        }
        out
    }

    fn load_state(&mut self, module: &dyn Module, state: &HashMap<String, Tensor>) -> Result<()> {
        let step = state
            .get("step")
            .ok_or_else(|| NnError::OptimizerState("missing step".into()))?
            .item();
        let mut moments = HashMap::new();
        if step > 0.0 {
            for (name, p) in named_params(module)
                .into_iter()
                .filter(|(_, p)| p.is_trained())
            {
                let m = saved_slot(state, &name, "exp_avg", p)?;
                let v = saved_slot(state, &name, "exp_avg_sq", p)?;
                moments.insert(p.id(), (to_vec(&m), to_vec(&v)));
            }
        }
        self.step = step as u64;
        self.moments = moments;
        Ok(())
    }
}
