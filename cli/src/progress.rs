//! The training progress bar.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `total` steps starting at `done`, with steps/s, ETA and a message for the
/// losses; hidden when `quiet`.
pub fn steps(done: u64, total: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_position(done);
    bar.reset_eta();
    bar
}
