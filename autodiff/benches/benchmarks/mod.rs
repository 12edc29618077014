//! One module per bench family, gathered by `bench_main.rs`. They live in this folder rather
//! than beside `bench_main.rs` because Cargo would build every `benches/*.rs` as a bench target
//! of its own.

pub mod tape;
