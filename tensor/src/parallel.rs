//! The one place that knows whether the `parallel` feature is on.
//!
//! Every parallel loop in the crate goes through these helpers, so that turning the feature off
//! runs the same work, split the same way, on one thread, and gives the same numbers.

/// Elementwise work below this many elements stays on the calling thread: spawning costs more.
pub(crate) const PAR_MIN_ELEMS: usize = 1 << 15;

/// Number of threads the parallel loops may use (1 without the `parallel` feature).
pub fn num_threads() -> usize {
    #[cfg(feature = "parallel")]
    {
        rayon::current_num_threads()
    }
    #[cfg(not(feature = "parallel"))]
    {
        1
    }
}

/// Calls `f(i, chunk)` for each `chunk_len`-sized chunk of `data`, in parallel when allowed.
pub(crate) fn for_each_chunk_mut<F>(data: &mut [f32], chunk_len: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync + Send,
{
    if chunk_len == 0 {
        return;
    }
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        if data.len() >= PAR_MIN_ELEMS.min(2 * chunk_len) && num_threads() > 1 {
            data.par_chunks_mut(chunk_len)
                .enumerate()
                .for_each(|(i, c)| f(i, c));
            return;
        }
    }
    data.chunks_mut(chunk_len)
        .enumerate()
        .for_each(|(i, c)| f(i, c));
}

/// `(0..n).map(f).collect()`, in parallel when allowed; the order of the results is kept.
pub(crate) fn map_range<T: Send, F>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> T + Sync + Send,
{
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        if n > 1 && num_threads() > 1 {
            return (0..n).into_par_iter().map(f).collect();
        }
    }
    (0..n).map(f).collect()
}

/// The GEMM parallelism for one product of `flops` multiply-adds issued from the calling
/// thread (never from inside another parallel loop, which would oversubscribe the cores).
pub(crate) fn gemm_parallelism(flops: usize) -> gemm::Parallelism {
    #[cfg(feature = "parallel")]
    {
        let threads = num_threads();
        if threads > 1 && flops >= 1 << 18 {
            return gemm::Parallelism::Rayon(threads);
        }
    }
    let _ = flops;
    gemm::Parallelism::None
}
