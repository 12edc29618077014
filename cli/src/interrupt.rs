//! SIGINT and SIGTERM during training: finish the step, save, exit 128 + the signal.
//!
//! The handler only records which signal came (an atomic store, all a signal handler may
//! safely do); the training loop looks between steps. A second signal of the same kind ends
//! the process at once, for a user who does not want to wait for the step.

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Which of SIGINT and SIGTERM has arrived since [`Interrupt::install`].
pub struct Interrupt {
    received: Arc<AtomicUsize>,
}

impl Interrupt {
    /// Installs the handlers for the rest of the process.
    ///
    /// # Errors
    /// If the operating system refuses a handler.
    pub fn install() -> Result<Self> {
        let received = Arc::new(AtomicUsize::new(0));
        for signal in [SIGINT, SIGTERM] {
            let again = Arc::new(AtomicBool::new(false));
            // Registered first so that it runs first: on the first signal `again` is still
            // false and nothing happens; on the second, the process exits.
            signal_hook::flag::register_conditional_shutdown(signal, exit_code(signal), {
                Arc::clone(&again)
            })
            .and_then(|_| signal_hook::flag::register(signal, again))
            .and_then(|_| {
                signal_hook::flag::register_usize(signal, Arc::clone(&received), signal as usize)
            })
            .with_context(|| format!("cannot handle {}", signal_name(signal)))?;
        }
        Ok(Interrupt { received })
    }

    /// The signal received, if any.
    pub fn received(&self) -> Option<i32> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s as i32),
        }
    }
}

/// The shell's status for a process ended by `signal`: 128 + its number (130 for SIGINT,
/// 143 for SIGTERM).
pub fn exit_code(signal: i32) -> i32 {
    128 + signal
}

/// `SIGINT`, `SIGTERM`.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Training stopped on a signal after saving; `main` prints it and exits with
/// [`exit_code`].
#[derive(Debug)]
pub struct Interrupted {
    /// The signal.
    pub signal: i32,
    /// What was saved where.
    pub message: String,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Interrupted {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(exit_code(SIGINT), 130);
        assert_eq!(exit_code(SIGTERM), 143);
        assert_eq!(signal_name(SIGTERM), "SIGTERM");
    }
}
