//! The `gantry` command-line tool.

fn main() {
    println!("gantry {}", env!("CARGO_PKG_VERSION"));
}
