//! Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (PyTorch's).

use super::{
    Optimizer, PAR_CHUNK, in_parallel_chunks, saved_slot, stop_step_timer, to_vec, with_grads,
};
use crate::error::Result;
use crate::module::{Module, named_params};
use crate::param::ParamId;
use gantry_autodiff::Gradients;
use gantry_tensor::profile::Timer;
use gantry_tensor::{Tensor, simd};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

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

/// One step's settings, applied to every parameter in one pass over its values.
struct Update {
    lr: f32,
    momentum: f32,
    dampening: f32,
    nesterov: bool,
    weight_decay: f32,
}

impl From<&SgdConfig> for Update {
    fn from(c: &SgdConfig) -> Update {
        Update {
            lr: c.lr,
            momentum: c.momentum,
            dampening: c.dampening,
            nesterov: c.nesterov,
            weight_decay: c.weight_decay,
        }
    }
}

impl Update {
    /// Updates weights `w` from gradients `g` and, with momentum, the buffer `b` (`fresh`:
    /// made this step, so it takes the gradient as it is, as PyTorch's first step does).
    fn apply(&self, w: &mut [f32], g: &[f32], b: Option<(&mut [f32], bool)>) {
        let parallel = in_parallel_chunks(w.len());
        match b {
            Some((b, fresh)) if parallel => {
                use rayon::prelude::*;
                w.par_chunks_mut(PAR_CHUNK)
                    .zip(g.par_chunks(PAR_CHUNK))
                    .zip(b.par_chunks_mut(PAR_CHUNK))
                    .for_each(|((w, g), b)| self.apply_serial(w, g, Some((b, fresh))));
            }
            None if parallel => {
                use rayon::prelude::*;
                w.par_chunks_mut(PAR_CHUNK)
                    .zip(g.par_chunks(PAR_CHUNK))
                    .for_each(|(w, g)| self.apply_serial(w, g, None));
            }
            b => self.apply_serial(w, g, b),
        }
    }

    /// The update on one thread, at the CPU's widest SIMD (the same bits at every width).
    fn apply_serial(&self, w: &mut [f32], g: &[f32], b: Option<(&mut [f32], bool)>) {
        simd::widest(
            #[inline(always)]
            || match b {
                Some((b, fresh)) => {
                    for ((w, &g), b) in w.iter_mut().zip(g).zip(b.iter_mut()) {
                        *w = self.momentum_step(*w, g, b, fresh);
                    }
                }
                None => {
                    for (w, &g) in w.iter_mut().zip(g) {
                        *w -= self.lr * self.decayed(*w, g);
                    }
                }
            },
        );
    }

    /// The gradient with weight decay added, if any.
    #[inline(always)]
    fn decayed(&self, w: f32, g: f32) -> f32 {
        if self.weight_decay != 0.0 {
            g + self.weight_decay * w
        } else {
            g
        }
    }

    /// One weight's step with momentum: updates its buffer value `b`, returns the new weight.
    #[inline(always)]
    fn momentum_step(&self, w: f32, g: f32, b: &mut f32, fresh: bool) -> f32 {
        let g = self.decayed(w, g);
        *b = if fresh {
            g
        } else {
            self.momentum * *b + (1.0 - self.dampening) * g
        };
        let d = if self.nesterov {
            g + self.momentum * *b
        } else {
            *b
        };
        w - self.lr * d
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, module: &dyn Module, grads: &Gradients) -> Result<()> {
        let timer = Timer::start();
        let params = with_grads(module, grads)?;
        let (c, update) = (&self.config, Update::from(&self.config));
        for (_, p, g) in &params {
            let g = g.as_slice();
            let b = (c.momentum != 0.0).then(|| match self.buffers.entry(p.id()) {
                Entry::Occupied(e) => (e.into_mut().as_mut_slice(), false),
                Entry::Vacant(e) => (e.insert(vec![0.0; g.len()]).as_mut_slice(), true),
            });
            p.update(|w| update.apply(w, &g, b));
        }
        stop_step_timer(timer, "sgd", &params);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The update as it was written before it became one pass: the gradient copied, weight
    /// decay added, the buffer updated (or made from the gradient), the step taken from it.
    fn multi_pass(c: &SgdConfig, w: &mut [f32], g: &[f32], buf: &mut Option<Vec<f32>>) {
        let mut g = g.to_vec();
        if c.weight_decay != 0.0 {
            for (gi, wi) in g.iter_mut().zip(w.iter()) {
                *gi += c.weight_decay * wi;
            }
        }
        if c.momentum != 0.0 {
            match buf {
                Some(b) => {
                    for (bi, gi) in b.iter_mut().zip(&g) {
                        *bi = c.momentum * *bi + (1.0 - c.dampening) * gi;
                    }
                }
                None => *buf = Some(g.clone()),
            }
            let b = buf.as_ref().unwrap();
            if c.nesterov {
                for (gi, bi) in g.iter_mut().zip(b) {
                    *gi += c.momentum * bi;
                }
            } else {
                g.clone_from(b);
            }
        }
        for (wi, gi) in w.iter_mut().zip(&g) {
            *wi -= c.lr * gi;
        }
    }

    /// Three steps of the one-pass update give the multi-pass bits for every combination of
    /// momentum, dampening, Nesterov and weight decay, at every SIMD level, on a parameter
    /// long enough for parallel chunks with a ragged last one, on two threads.
    #[test]
    fn one_pass_keeps_the_multi_pass_bits() {
        let n = 2 * PAR_CHUNK + 77;
        let wave = |i: usize, f: f32| (i as f32 * f).sin() * 2.0;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut configs = vec![SgdConfig::new(0.1)];
        for (dampening, nesterov, weight_decay) in
            [(0.0, false, 0.0), (0.1, false, 0.01), (0.0, true, 0.01)]
        {
            configs.push(SgdConfig {
                dampening,
                nesterov,
                weight_decay,
                ..SgdConfig::new(0.05).momentum(0.9)
            });
        }
        for c in &configs {
            let (mut w_ref, mut buf) = ((0..n).map(|i| wave(i, 0.3)).collect::<Vec<_>>(), None);
            let mut expected = Vec::new();
            for step in 0..3 {
                let g: Vec<f32> = (0..n).map(|i| wave(i, 0.17 + step as f32)).collect();
                multi_pass(c, &mut w_ref, &g, &mut buf);
                expected.push(w_ref.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
            }
            let update = Update::from(c);
            let runs = simd::at_each_level(|| {
                pool.install(|| {
                    let mut w: Vec<f32> = (0..n).map(|i| wave(i, 0.3)).collect();
                    let mut b = vec![0.0; n];
                    let mut got = Vec::new();
                    for step in 0..3 {
                        let g: Vec<f32> = (0..n).map(|i| wave(i, 0.17 + step as f32)).collect();
                        let buf = (c.momentum != 0.0).then_some((b.as_mut_slice(), step == 0));
                        update.apply(&mut w, &g, buf);
                        got.push(w.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
                    }
                    got
                })
            });
            for (level, got) in runs {
                assert!(got == expected, "{c:?} at {level}");
            }
        }
    }
}
