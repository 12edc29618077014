//! Dropout.

use crate::module::{Mode, Module};
use crate::param::Param;
use gantry_autodiff::Var;

/// Zeroes each element with probability `p` in [`Mode::Train`] and scales the rest by
/// `1 / (1 - p)`; the identity in [`Mode::Eval`]. The mask comes from the tape's seeded random
/// stream, so a run is reproducible.
#[derive(Clone, Debug)]
pub struct Dropout {
    p: f32,
}

impl Dropout {
    /// Dropout with probability `p`.
    ///
    /// # Panics
    /// If `p` is outside `[0, 1)`.
    #[track_caller]
    pub fn new(p: f32) -> Self {
        assert!(
            (0.0..1.0).contains(&p),
            "Dropout: probability {p} outside [0, 1)"
        );
        Dropout { p }
    }
}

impl Module for Dropout {
    fn visit<'a>(&'a self, _prefix: &str, _f: &mut dyn FnMut(&str, &'a Param)) {}

    fn forward<'t>(&self, x: Var<'t>, mode: Mode) -> Var<'t> {
        match mode {
            Mode::Train if self.p > 0.0 => {
                let tape = x.tape();
                let mut rng = tape.rng();
                x.dropout(self.p, &mut rng)
            }
            _ => x,
        }
    }

    fn describe(&self) -> String {
        format!("Dropout(p={})", self.p)
    }
}
