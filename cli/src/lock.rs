//! One training process per run directory: an advisory lock on `DIR/.lock`.
//!
//! Two processes writing one run directory destroy each other's work (one deletes the
//! other's checkpoint temporary file, both append to `metrics.jsonl`). The lock is the
//! operating system's (`flock` on Unix), so it is released when its holder exits, even by
//! `kill -9`; the file itself stays and holds the last holder's pid, which the refusal names.

use anyhow::{Context, Result, bail};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The lock file's name inside a run directory.
pub const LOCK: &str = ".lock";

/// A held lock on a run directory; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    // Held for its lock, never read.
    _file: File,
}

/// Takes the lock of the run directory `dir` (which must exist), or fails with one line
/// naming the directory and the pid of the process that holds it.
///
/// # Errors
/// If another process holds the lock, or the lock file cannot be opened.
pub fn acquire(dir: &Path) -> Result<RunLock> {
    let path = dir.join(LOCK);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = match text.trim().parse::<u32>() {
                Ok(pid) => format!("pid {pid}"),
                Err(_) => "a process that has not written its pid yet".to_string(),
            };
            bail!(
                "{} is in use by another gantry process ({holder}); wait for it to finish or stop it",
                dir.display()
            );
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    // The pid is for the message of a refused second process only.
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| write!(file, "{}", std::process::id()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(RunLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_directory_is_refused_with_the_holders_pid() {
        let dir = tempfile_dir("second");
        let held = acquire(&dir).unwrap();
        let err = acquire(&dir).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains(&dir.display().to_string()), "{err}");
        drop(held);
        // Another test of this binary may spawn a process meanwhile: between its fork and exec
        // the child holds a copy of every descriptor, the lock's included (flock locks follow
        // the open file, not the process), for a moment after `held` is gone. So the lock is
        // free again within a short wait, not necessarily at once (a CI run saw the race).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let again = loop {
            match acquire(&dir) {
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                result => break result,
            }
        };
        again.expect("free again once the holder is gone");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gantry-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
