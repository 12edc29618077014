//! Learning-rate schedules: a factor of the base rate per epoch (or step).

/// How the learning rate changes over epochs.
#[derive(Clone, Debug, PartialEq)]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// pix2pix's: the base rate for `hold` epochs, then linearly down towards 0 over `decay`
    /// epochs (`factor = 1 - max(0, e - hold) / (decay + 1)`).
    Linear {
        /// Epochs at the base rate.
        hold: usize,
        /// Epochs of decay.
        decay: usize,
    },
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Period.
        every: usize,
        /// Factor per period.
        gamma: f32,
    },
}

impl LrSchedule {
    /// The factor of the base learning rate at `epoch` (0-based).
    ///
    /// ```
    /// use gantry_nn::optim::LrSchedule;
    /// let s = LrSchedule::Linear { hold: 100, decay: 100 };
    /// assert_eq!(s.factor(50), 1.0);
    /// assert!((s.factor(150) - (1.0 - 50.0 / 101.0)).abs() < 1e-6);
    /// ```
    pub fn factor(&self, epoch: usize) -> f32 {
        match *self {
            LrSchedule::Constant => 1.0,
            LrSchedule::Linear { hold, decay } => {
                1.0 - epoch.saturating_sub(hold) as f32 / (decay + 1) as f32
            }
            LrSchedule::Step { every, gamma } => gamma.powi((epoch / every.max(1)) as i32),
        }
    }
}
