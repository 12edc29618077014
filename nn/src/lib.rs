//! # gantry-nn
//!
//! Layers, losses, initialisers, optimizers and `safetensors` state dicts, built on
//! `gantry-autodiff`. (Being built: see the project issues.)
