//! How the `gantry` binary asks the C allocator to keep memory it frees.
//!
//! A training step allocates its activations, gradients and temporaries (up to tens of MiB
//! each) and frees them all before the next step asks for the same sizes again. glibc's
//! `malloc` hands blocks above its mmap threshold (128 KiB at first, learning up to 32 MiB) to
//! fresh `mmap` calls and unmaps them on `free`, and trims the top of its heap back to the
//! kernel once 128 KiB lie free there. So each step the kernel faulted in and zeroed the same
//! pages again: about 5,000 minor page faults per dcgan28 step, some 5% of its time
//! (`gantry bench` reports `minor_faults_per_iter`). With the threshold at its maximum and no
//! trimming, freed blocks stay in the heap for the next step, and the process's peak memory is
//! what it was (the step needs that memory at its peak anyway).
//!
//! Only the binary sets this: a library does not choose its user's allocator. Programs that
//! train with the gantry crates can do the same, or use an allocator that keeps freed memory.

/// glibc's largest mmap threshold on 64-bit targets (`DEFAULT_MMAP_THRESHOLD_MAX`): `mallopt`
/// refuses anything larger.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_MAX: libc::c_int = 32 << 20;

/// Keeps freed memory in the process for reuse (glibc on Linux; elsewhere nothing changes).
/// Returns whether the allocator took the settings.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; it is called before any other
        // thread exists, and glibc serialises it against allocations anyway.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_settings() {
        assert!(keep_freed_memory());
        // A freed 8 MiB block (above glibc's initial 128 KiB threshold) comes back from the
        // heap instead of a new mapping: the same address, no new page faults to touch it.
        let first = vec![1u8; 8 << 20];
        let addr = first.as_ptr() as usize;
        drop(first);
        let second = vec![2u8; 8 << 20];
        assert_eq!(second.as_ptr() as usize, addr);
    }
}
