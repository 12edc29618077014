//! One module per family of benches.

pub mod batch;
pub mod decode;
