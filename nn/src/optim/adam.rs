//! Adam (Kingma & Ba), with PyTorch's bias correction and L2 weight decay.

use super::{
    Optimizer, PAR_CHUNK, in_parallel_chunks, saved_slot, stop_step_timer, to_vec, with_grads,
};
use crate::error::{NnError, Result};
use crate::module::{Module, named_params};
use crate::param::ParamId;
use gantry_autodiff::Gradients;
use gantry_tensor::profile::Timer;
use gantry_tensor::{Tensor, simd};
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
#[inline(always)]
fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if w.abs() < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
    }
}

/// One step's constants, applied to every parameter.
struct Update {
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    step_size: f32,
    bc2_sqrt: f32,
}

impl Update {
    /// Updates weights `w`, first moments `m` and second moments `v` from gradients `g`.
    fn apply(&self, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        if in_parallel_chunks(w.len()) {
            use rayon::prelude::*;
            w.par_chunks_mut(PAR_CHUNK)
                .zip(g.par_chunks(PAR_CHUNK))
                .zip(m.par_chunks_mut(PAR_CHUNK))
                .zip(v.par_chunks_mut(PAR_CHUNK))
                .for_each(|(((w, g), m), v)| self.apply_serial(w, g, m, v));
        } else {
            self.apply_serial(w, g, m, v);
        }
    }

    /// The update on one thread, written with zipped iterators so that it vectorises, at the
    /// CPU's widest SIMD (the same bits at every width: see `gantry_tensor::simd`). AVX-512
    /// took a 1.5-million-weight update from 0.75 to 0.33 ms against the baseline's SSE2.
    fn apply_serial(&self, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        simd::widest(
            #[inline(always)]
            || self.apply_plain(w, g, m, v),
        );
    }

    #[inline(always)]
    fn apply_plain(&self, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        let one_minus_beta1 = 1.0 - self.beta1;
        let one_minus_beta2 = 1.0 - self.beta2;
        for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let gi = g + self.weight_decay * *w;
            *m = lerp(*m, gi, one_minus_beta1);
            *v = *v * self.beta2 + one_minus_beta2 * gi * gi;
            let denom = v.sqrt() / self.bc2_sqrt + self.eps;
            *w -= self.step_size * (*m / denom);
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, module: &dyn Module, grads: &Gradients) -> Result<()> {
        let timer = Timer::start();
        let params = with_grads(module, grads)?;
        self.step += 1;
        let c = &self.config;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        let step_size = c.lr / bc1;
        let update = Update {
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
            step_size,
            bc2_sqrt,
        };
        for (_, p, g) in &params {
            let g = g.as_slice();
            let (m, v) = self
                .moments
                .entry(p.id())
                .or_insert_with(|| (vec![0.0; g.len()], vec![0.0; g.len()]));
            p.update(|w| update.apply(w, &g, m, v));
        }
        stop_step_timer(timer, "adam", &params);
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

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_tensor::simd::Level;

    /// The update compiled for every SIMD level this CPU has gives the baseline's bits, on
    /// both of `lerp`'s branches (beta1 0.9 and 0.3), with weight decay, over a length that
    /// leaves a remainder after every vector width.
    #[test]
    fn every_simd_level_updates_to_the_same_bits() {
        let n = 1000 + 13;
        let wave = |i: usize, f: f32| ((i as f32 * f).sin() * 3.0).powi(3);
        let g: Vec<f32> = (0..n).map(|i| wave(i, 0.37)).collect();
        for beta1 in [0.9, 0.3] {
            let update = Update {
                beta1,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.01,
                step_size: 2e-4 / 0.1,
                bc2_sqrt: 0.3,
            };
            let start = || -> [Vec<f32>; 3] {
                [
                    (0..n).map(|i| wave(i, 0.11)).collect(),
                    (0..n).map(|i| wave(i, 0.05) * 0.1).collect(),
                    (0..n).map(|i| wave(i, 0.07).abs()).collect(),
                ]
            };
            let run = |level: Level| {
                let [mut w, mut m, mut v] = start();
                simd::at(
                    level,
                    #[inline(always)]
                    || update.apply_plain(&mut w, &g, &mut m, &mut v),
                );
                [w, m, v].map(|x| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>())
            };
            let base = run(Level::Baseline);
            for level in Level::available() {
                assert_eq!(run(level), base, "{level}, beta1 {beta1}");
            }
            // The route training takes: `apply_serial` at the active level, set to each.
            let through_widest = simd::at_each_level(|| {
                let [mut w, mut m, mut v] = start();
                update.apply_serial(&mut w, &g, &mut m, &mut v);
                [w, m, v].map(|x| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>())
            });
            for (level, bits) in through_widest {
                assert_eq!(bits, base, "{level} through simd::widest, beta1 {beta1}");
            }
        }
    }
}
