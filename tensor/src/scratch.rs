//! Reusable scratch buffers for the temporaries of convolutions (column matrices, layout
//! copies, GEMM results).
//!
//! A DCGAN step makes dozens of such buffers of up to 64 MiB each. Fresh allocations of that
//! size come from `mmap`, so every step paid for page faults and for the kernel zeroing pages
//! that the caller then overwrote anyway. A small per-thread pool hands the same memory back
//! instead. Buffers come out *dirty* (whatever the previous user left): callers write every
//! value before reading it, or ask for [`Scratch::zeroed`].

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

/// Most buffers a thread keeps for reuse.
const MAX_KEPT: usize = 4;
/// Most `f32` values a thread keeps for reuse in all (512 MiB would be wasteful to hold: this
/// is two of the largest column matrices).
const MAX_KEPT_ELEMS: usize = 2 << 24;

thread_local! {
    static FREE: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A `Vec<f32>` borrowed from the calling thread's pool; it goes back when dropped.
///
/// The vector keeps its full initialised length and the buffer shows only its first `len`
/// values: truncating it instead meant zeroing the tail again each time a later user needed
/// more of it (1.3% of a dcgan28 step went to that).
pub(crate) struct Scratch {
    buf: Vec<f32>,
    len: usize,
}

impl Scratch {
    /// A buffer of `len` values with unspecified (but initialised) contents.
    pub fn dirty(len: usize) -> Scratch {
        let reused = FREE.with(|free| {
            let mut free = free.borrow_mut();
            // The smallest kept buffer that is large enough, so big ones stay for big uses.
            let best = free
                .iter()
                .enumerate()
                .filter(|(_, v)| v.len() >= len)
                .min_by_key(|(_, v)| v.len())
                .map(|(i, _)| i);
            best.map(|i| free.swap_remove(i))
        });
        let buf = reused.unwrap_or_else(|| vec![0.0; len]);
        Scratch { buf, len }
    }

    /// A buffer of `len` zeros.
    pub fn zeroed(len: usize) -> Scratch {
        let mut s = Scratch::dirty(len);
        s.fill(0.0);
        s
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.buf);
        if v.is_empty() || v.len() > MAX_KEPT_ELEMS {
            return;
        }
        // During thread teardown the pool may be gone; the buffer is then simply freed.
        let _ = FREE.try_with(|free| {
            let mut free = free.borrow_mut();
            free.push(v);
            // Keep the largest buffers within the limits; free the rest.
            free.sort_unstable_by_key(|v| std::cmp::Reverse(v.len()));
            let mut total = 0;
            let keep = free
                .iter()
                .take(MAX_KEPT)
                .take_while(|v| {
                    total += v.len();
                    total <= MAX_KEPT_ELEMS
                })
                .count();
            free.truncate(keep);
        });
    }
}

impl Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.buf[..self.len]
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_sized() {
        let ptr = {
            let mut a = Scratch::dirty(1000);
            a.fill(7.0);
            a.as_ptr()
        };
        let b = Scratch::dirty(500);
        assert_eq!(b.len(), 500);
        assert_eq!(b.as_ptr(), ptr, "the freed buffer is handed out again");
        assert!(b.iter().all(|&v| v == 7.0), "dirty means not cleared");
        drop(b);
        // Lent out shorter, the buffer comes back whole: a longer request is not re-zeroed.
        let d = Scratch::dirty(900);
        assert_eq!(d.as_ptr(), ptr);
        assert!(d.iter().all(|&v| v == 7.0), "the tail was cleared again");
        drop(d);
        let c = Scratch::zeroed(800);
        assert_eq!(c.len(), 800);
        assert!(c.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn the_pool_stays_bounded() {
        let held: Vec<Scratch> = (1..=10).map(|i| Scratch::dirty(i * 100)).collect();
        drop(held);
        FREE.with(|free| {
            let free = free.borrow();
            assert!(free.len() <= MAX_KEPT);
            assert_eq!(free[0].len(), 1000, "the largest are kept");
        });
    }
}
