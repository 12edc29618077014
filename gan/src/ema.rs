//! An exponential moving average of the generator's weights (Karras et al. 2018; Yazıcı et
//! al. 2019): samples from the average are smoother and better than from the last iterate.
//!
//! After the generator's `t`-th update (`t` from 0) each trainable weight's average moves as
//! `avg = d_t avg + (1 - d_t) w` with `d_t = min(decay, (1 + t) / (10 + t))`: the warm-up lets
//! the average forget the random initialisation quickly early on. Buffers (batch-norm
//! running statistics) are not averaged: sampling uses the live ones.

use crate::error::{GanError, Result};
use gantry_nn::{Module, ParamKind, named_params};
use gantry_tensor::Tensor;
use std::collections::HashMap;

/// The averaged weights of a generator, by parameter name.
#[derive(Clone, Debug)]
pub struct Ema {
    decay: f32,
    average: Vec<(String, Tensor)>,
}

/// The trainable parameters of `g` and their values.
fn trainable(g: &dyn Module) -> Vec<(String, Tensor)> {
    named_params(g)
        .into_iter()
        .filter(|(_, p)| p.kind() == ParamKind::Trainable)
        .map(|(n, p)| (n, p.value()))
        .collect()
}

impl Ema {
    /// An average starting at `g`'s current weights.
    pub fn new(decay: f32, g: &dyn Module) -> Self {
        Ema {
            decay,
            average: trainable(g),
        }
    }

    /// The configured decay.
    pub fn decay(&self) -> f32 {
        self.decay
    }

    /// The decay of update `t` (0-based): `min(decay, (1 + t) / (10 + t))`.
    pub fn decay_at(&self, t: u64) -> f32 {
        let warm = (1.0 + t as f64) / (10.0 + t as f64);
        (self.decay as f64).min(warm) as f32
    }

    /// Moves the average towards `g`'s weights after update `t` (0-based).
    pub fn update(&mut self, g: &dyn Module, t: u64) {
        let d = self.decay_at(t);
        let params = named_params(g);
        for ((name, avg), (pname, p)) in self.average.iter_mut().zip(
            params
                .iter()
                .filter(|(_, p)| p.kind() == ParamKind::Trainable),
        ) {
            debug_assert_eq!(name, pname);
            let w = p.value();
            let (w, a) = (w.as_slice(), avg.as_mut_slice());
            for (a, &w) in a.iter_mut().zip(w.iter()) {
                *a = d * *a + (1.0 - d) * w;
            }
        }
    }

    /// The averaged weights by name, for checkpoints.
    pub fn tensors(&self) -> &[(String, Tensor)] {
        &self.average
    }

    /// Restores averaged weights saved by [`Ema::tensors`].
    ///
    /// # Errors
    /// If one is missing or has another shape; the message names it.
    pub fn load(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        for (name, avg) in &mut self.average {
            let t = saved.get(name).ok_or_else(|| GanError::Objective {
                message: format!("the checkpoint has no averaged weight ema.{name}"),
            })?;
            if t.shape() != avg.shape() {
                return Err(GanError::Objective {
                    message: format!(
                        "the averaged weight ema.{name} has shape {:?}, the generator's {:?}",
                        t.shape(),
                        avg.shape()
                    ),
                });
            }
            *avg = t.clone();
        }
        Ok(())
    }

    /// Exchanges the averaged weights with `g`'s: call twice to put the live ones back.
    pub fn swap(&mut self, g: &dyn Module) {
        let params = named_params(g);
        for ((_, avg), (_, p)) in self.average.iter_mut().zip(
            params
                .iter()
                .filter(|(_, p)| p.kind() == ParamKind::Trainable),
        ) {
            let live = p.value();
            p.set(avg.clone());
            *avg = live;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_nn::{Param, ParamRole};

    struct One(Param);

    impl Module for One {
        fn visit<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(&str, &'a Param)) {
            f(&gantry_nn::join(prefix, "w"), &self.0);
        }
        fn forward<'t>(
            &self,
            x: gantry_autodiff::Var<'t>,
            _: gantry_nn::Mode,
        ) -> gantry_autodiff::Var<'t> {
            x
        }
    }

    #[test]
    fn the_average_after_n_steps_is_the_closed_form() {
        // Weights w_t = t + 1 after update t, starting from 0: the average after n updates is
        // Σ_t (1 - d_t) w_t Π_{s > t} d_s.
        let g = One(Param::trainable(
            Tensor::from_vec(&[2], vec![0.0, 0.0]),
            ParamRole::Other,
        ));
        let mut ema = Ema::new(0.9, &g);
        let n = 30u64;
        for t in 0..n {
            g.0.set(Tensor::from_vec(
                &[2],
                vec![(t + 1) as f32, -2.0 * (t + 1) as f32],
            ));
            ema.update(&g, t);
        }
        let d = |t: u64| 0.9f64.min((1.0 + t as f64) / (10.0 + t as f64));
        let mut want = 0.0f64;
        for t in 0..n {
            let later: f64 = (t + 1..n).map(d).product();
            want += (1.0 - d(t)) * (t + 1) as f64 * later;
        }
        let got = ema.tensors()[0].1.to_vec();
        assert!(
            (got[0] as f64 - want).abs() < 1e-3 * want,
            "{got:?} vs {want}"
        );
        assert!((got[1] as f64 + 2.0 * want).abs() < 2e-3 * want, "{got:?}");
        // The warm-up: the first update keeps a tenth of the old average.
        assert!((ema.decay_at(0) - 0.1).abs() < 1e-7);
        assert_eq!(ema.decay_at(1_000_000), 0.9);
    }

    #[test]
    fn swapping_twice_restores_the_live_weights() {
        let g = One(Param::trainable(
            Tensor::from_vec(&[1], vec![1.0]),
            ParamRole::Other,
        ));
        let mut ema = Ema::new(0.5, &g);
        g.0.set(Tensor::from_vec(&[1], vec![3.0]));
        ema.update(&g, 100);
        ema.swap(&g);
        assert_eq!(g.0.value().to_vec(), vec![2.0]);
        ema.swap(&g);
        assert_eq!(g.0.value().to_vec(), vec![3.0]);
    }
}
