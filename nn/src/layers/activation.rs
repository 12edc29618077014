//! Activation layers (no parameters).

use crate::module::{Mode, Module};
use crate::param::Param;
use gantry_autodiff::Var;

macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, |$x:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;

        impl Module for $name {
            fn visit<'a>(&'a self, _prefix: &str, _f: &mut dyn FnMut(&str, &'a Param)) {}

            fn forward<'t>(&self, $x: Var<'t>, _mode: Mode) -> Var<'t> {
                $body
            }
        }
    };
}

activation!(
    /// `max(x, 0)`.
    ReLU,
    |x| x.relu()
);
activation!(
    /// `tanh x`.
    Tanh,
    |x| x.tanh()
);
activation!(
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    |x| x.sigmoid()
);

/// `x` for positive `x`, `slope * x` otherwise (slope 0.01 by default, as PyTorch; GANs use 0.2).
#[derive(Clone, Copy, Debug)]
pub struct LeakyReLU {
    /// The slope for negative inputs.
    pub slope: f32,
}

impl LeakyReLU {
    /// With this negative slope.
    pub fn new(slope: f32) -> Self {
        LeakyReLU { slope }
    }
}

impl Default for LeakyReLU {
    fn default() -> Self {
        LeakyReLU { slope: 0.01 }
    }
}

impl Module for LeakyReLU {
    fn visit<'a>(&'a self, _prefix: &str, _f: &mut dyn FnMut(&str, &'a Param)) {}

    fn forward<'t>(&self, x: Var<'t>, _mode: Mode) -> Var<'t> {
        x.leaky_relu(self.slope)
    }

    fn describe(&self) -> String {
        format!("LeakyReLU({})", self.slope)
    }
}
