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
//! That holds for the main heap only. A step runs on a worker of the thread pool, and glibc
//! gives such threads heaps of their own ("arenas", grown 64 MiB at a time) and unmaps every
//! extra 64 MiB piece as soon as it is wholly free, whatever the trim threshold: a 64x64 DCGAN
//! step at 2 threads still took 10,000-24,000 faults. One arena for the whole process keeps
//! every thread's freed memory in the main heap (under 1 fault per step) and lowers that
//! step's peak memory from 600 to 505 MiB; the workers allocate little, so sharing the
//! arena's lock costs nothing measurable.
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
                && libc::mallopt(libc::M_ARENA_MAX, 1) == 1
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

    /// Minor page faults of the calling thread so far.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn thread_faults() -> i64 {
        // SAFETY: getrusage writes the struct it is given and nothing else.
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut usage), 0);
            usage.ru_minflt
        }
    }

    /// Allocates, touches and frees 96 MiB in blocks of 24 MiB (each under the mmap threshold,
    /// together more than one 64 MiB arena heap), twice; returns the page faults of the
    /// second round.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn faults_of_a_second_round() -> i64 {
        let round = || {
            let blocks: Vec<Vec<u8>> = (0..4).map(|i| vec![i as u8 + 1; 24 << 20]).collect();
            std::hint::black_box(&blocks);
        };
        round();
        let before = thread_faults();
        round();
        thread_faults() - before
    }

    /// glibc takes the settings, and freed memory comes back without faulting it in again, on
    /// the calling thread and on a thread started after the settings (as the thread pool's
    /// workers are). Run in a child process of its own: the settings bind only threads that
    /// allocate for the first time after them, and in this process the harness's threads
    /// (which share the heap with this test's) have allocated already.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn freed_memory_comes_back_without_page_faults() {
        const CHILD: &str = "GANTRY_ALLOCATOR_TEST_CHILD";
        const NAME: &str = "allocator::tests::freed_memory_comes_back_without_page_faults";
        if std::env::var_os(CHILD).is_some() {
            assert!(keep_freed_memory());
            // A freed 8 MiB block (above glibc's initial 128 KiB threshold) comes back from
            // the heap instead of a new mapping: the same address.
            let first = vec![1u8; 8 << 20];
            let addr = first.as_ptr() as usize;
            drop(first);
            let second = vec![2u8; 8 << 20];
            assert_eq!(second.as_ptr() as usize, addr);
            let faults = std::thread::spawn(faults_of_a_second_round).join().unwrap();
            // 96 MiB mapped afresh is up to 24,576 faults; with a heap per thread, 12,289.
            assert!(faults < 1000, "the second round took {faults} page faults");
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--test-threads", "1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "the child process failed:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
