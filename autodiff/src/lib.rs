//! # gantry-autodiff
