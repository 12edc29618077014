//! The one place that knows whether the `parallel` feature is on.
//!
//! Every parallel loop in the crate goes through these helpers, so that turning the feature off
//! runs the same work, split the same way, on one thread, and gives the same numbers.

use std::mem::MaybeUninit;

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
/// `data` is values, or uninitialised room for them (`MaybeUninit<f32>`) that `f` fills.
pub(crate) fn for_each_chunk_mut<T: Send, F>(data: &mut [T], chunk_len: usize, f: F)
where
    F: Fn(usize, &mut [T]) + Sync + Send,
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

/// A new vector of `len` values, all written by `fill` into room that holds none yet: for
/// outputs computed in one pass (a product, an elementwise map, a convolution written block by
/// block), where zeroing memory first only to overwrite it is a pass of its own.
/// `fill` must write every one of the `len` values.
pub(crate) fn filled(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    fill(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: `fill` wrote every one of the `len` values (its contract above).
    unsafe { out.set_len(len) };
    out
}

/// `n` values written chunk by chunk by `fill(start, dst)`, where `dst` stands for the values
/// `start..start + dst.len()` and `fill` must write every one of them; in parallel chunks when
/// large. The output is written straight into uninitialised memory: allocating zeros first
/// cost a third of the time of a memory-bound elementwise op.
pub(crate) fn fill_chunks<F>(n: usize, fill: F) -> Vec<f32>
where
    F: Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send,
{
    filled(n, |dst| {
        #[cfg(feature = "parallel")]
        {
            use rayon::prelude::*;
            let chunk = PAR_MIN_ELEMS / 4;
            if n >= PAR_MIN_ELEMS && num_threads() > 1 {
                dst.par_chunks_mut(chunk)
                    .enumerate()
                    .for_each(|(i, d)| fill(i * chunk, d));
                return;
            }
        }
        fill(0, dst);
    })
}

/// `planes` planes of `s` values written once, run by run, in parallel chunks when large (see
/// [`fill_chunks`]): `write(p, i0, dst)` fills `dst` with the values of plane `p` from index
/// `i0` on. Chunks follow the element count, not the planes, so tiny planes (a `[N, C]` batch
/// norm's) do not become tiny tasks.
pub(crate) fn fill_planes<F>(planes: usize, s: usize, write: F) -> Vec<f32>
where
    F: Fn(usize, usize, &mut [MaybeUninit<f32>]) + Sync + Send,
{
    fill_chunks(planes * s, |start, mut dst| {
        // One division per chunk; after its first run every run starts a plane.
        let (mut p, mut i0) = (start / s.max(1), start % s.max(1));
        while !dst.is_empty() {
            let (run, rest) = dst.split_at_mut((s - i0).min(dst.len()));
            write(p, i0, run);
            (p, i0, dst) = (p + 1, 0, rest);
        }
    })
}

/// `a.iter().zip(b).map(f).collect()` (or of `a` alone when `b` is `None`), in parallel chunks
/// when large (see [`fill_chunks`]).
pub(crate) fn map_slices<F>(a: &[f32], b: Option<&[f32]>, f: F) -> Vec<f32>
where
    F: Fn(f32, f32) -> f32 + Sync + Send,
{
    let n = a.len();
    if let Some(b) = b {
        assert_eq!(b.len(), n, "map_slices: operands of different lengths");
    }
    fill_chunks(n, |start, dst| {
        let a = &a[start..start + dst.len()];
        match b {
            Some(b) => {
                let b = &b[start..start + dst.len()];
                for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
                    d.write(f(x, y));
                }
            }
            None => {
                for (d, &x) in dst.iter_mut().zip(a) {
                    d.write(f(x, 0.0));
                }
            }
        }
    })
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

/// Runs `work` with the pool's other threads kept looking for work until it returns, so that
/// each parallel loop inside it starts on all of them at once: for a run of short loops with
/// short serial gaps between them, as a training step is.
///
/// An idle rayon worker yields a few dozen times and then sleeps; the next loop wakes it, and
/// in a virtual machine that wake-up costs tens of microseconds (an interrupt to a halted
/// virtual CPU). Measured on a 2-vCPU KVM guest (Zen 3): after 50 us or more of serial work, a
/// two-way `join` of 50 us halves took 30-80 us longer than back to back. Keeping the other
/// worker awake through each training step cut its context switches (dcgan28 at batch 1, 33 to
/// 7 a step) and took steps to 0.91-1.00 of their time, 0.97-0.98 typically (an MLP GAN at
/// batch 64, dcgan28 and pix2pix 64x64 at batch 1; blocks of steps alternated in one process).
/// OpenMP runtimes, as PyTorch's, spin between parallel regions by default for the same reason.
///
/// The cost is a core busy for the whole of `work`, serial parts included: meant for the
/// compute-bound inner loop, not for work that waits on files. The other threads run only
/// rayon's own jobs meanwhile, whoever queued them, so results do not change. The spinning
/// stops when `work` returns or panics, and a worker stops spinning on its own once it has
/// found no job for a millisecond: rayon may hand a worker its spinner while it is inside one
/// of `work`'s jobs, which the caller then waits for, and that spinner must end for the job
/// to. Called on a thread outside the pool (which waits for each loop instead of taking part:
/// spinning workers would take its cores), with one thread, or without the `parallel`
/// feature, it just runs `work`; the `gantry` binary runs every command on a worker of its
/// pool.
pub fn with_workers_awake<R>(work: impl FnOnce() -> R) -> R {
    #[cfg(feature = "parallel")]
    if num_threads() > 1 && rayon::current_thread_index().is_some() {
        // Dropped when `work` returns or unwinds: the spinners stop either way.
        let _spinning = awake::Spinners::start();
        return work();
    }
    work()
}

#[cfg(feature = "parallel")]
mod awake {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// Spinners running now, in every pool (for the tests: they must all stop).
    pub(super) static RUNNING: AtomicUsize = AtomicUsize::new(0);

    /// Spinners started so far, in every pool (for the tests).
    pub(super) static STARTED: AtomicUsize = AtomicUsize::new(0);

    /// How long a spinner polls without finding a job before it stops.
    ///
    /// A worker takes its spinner like any job, also while it waits inside a job of `work`
    /// (a half of a parallel loop stolen from the caller, whose other half the caller then
    /// stole back): the spinner then sits on that job's stack, and the caller waits for the
    /// job. Spinning until `work` returned, it never returned: a `gantry train` hung in CI,
    /// and 3,000 steps back to back hung in 3 of 20 runs of the test
    /// `steps_back_to_back_with_nested_loops_finish`. With no job to find, such a spinner
    /// stops after this long, and the step goes on. A spinner at the top of its worker stops
    /// as well in a serial stretch this long, where a wake-up (tens of microseconds) matters
    /// little.
    pub(crate) const IDLE_LIMIT: Duration = Duration::from_millis(1);

    /// The current pool's workers other than the caller, each running jobs as they come until
    /// this is dropped.
    pub(super) struct Spinners(Arc<AtomicBool>);

    impl Spinners {
        pub(super) fn start() -> Self {
            let on = Arc::new(AtomicBool::new(true));
            let caller = rayon::current_thread_index();
            let flag = Arc::clone(&on);
            rayon::spawn_broadcast(move |cx| {
                if Some(cx.index()) == caller {
                    return;
                }
                RUNNING.fetch_add(1, Ordering::Relaxed);
                STARTED.fetch_add(1, Ordering::Relaxed);
                let mut last_job = Instant::now();
                while flag.load(Ordering::Relaxed) {
                    if rayon::yield_now() == Some(rayon::Yield::Executed) {
                        last_job = Instant::now();
                    } else if last_job.elapsed() > IDLE_LIMIT {
                        break;
                    } else {
                        // Between polls of the other workers' queues, so that polling does not
                        // keep their cache lines moving.
                        for _ in 0..32 {
                            std::hint::spin_loop();
                        }
                    }
                }
                RUNNING.fetch_sub(1, Ordering::Relaxed);
            });
            Spinners(on)
        }
    }

    impl Drop for Spinners {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Relaxed);
        }
    }
}

/// Products with fewer outputs (`m * n`) or multiply-adds than these run on the calling
/// thread. Measured at two threads on AVX-512, the crate's split of a product with few outputs
/// and a long sum lost to one thread: a first convolution's weight gradient, 64 x 25 x 12544,
/// ran at 12.7 GFLOP/s against 66.8, 64 x 48 x 65536 at 42 against 65; so did small products
/// (64 x 1024 x 16, 1 M multiply-adds: 64 against 92). From 1024 x 4 x 8192 (4096 outputs,
/// 1.36x) and from about 16 M multiply-adds (1.4-2x) the split paid.
#[cfg(feature = "parallel")]
const GEMM_PAR_MIN_OUTPUTS: usize = 4096;
/// See [`GEMM_PAR_MIN_OUTPUTS`].
#[cfg(feature = "parallel")]
const GEMM_PAR_MIN_MULADDS: usize = 1 << 22;

/// The GEMM parallelism for one `[m, k] x [k, n]` product issued from the calling thread
/// (never from inside another parallel loop, which would oversubscribe the cores). The crate's
/// result does not depend on it.
pub(crate) fn gemm_parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    #[cfg(feature = "parallel")]
    {
        let threads = num_threads();
        if threads > 1 && m * n >= GEMM_PAR_MIN_OUTPUTS && m * n * k >= GEMM_PAR_MIN_MULADDS {
            return gemm::Parallelism::Rayon(threads);
        }
    }
    let _ = (m, n, k);
    gemm::Parallelism::None
}

/// Whether a product issued from the calling thread has the multiply-adds to be worth splitting
/// but too few outputs for the crate's own split (see [`GEMM_PAR_MIN_OUTPUTS`]): such a
/// product may be split by its rows instead.
pub(crate) fn long_product_with_few_outputs(m: usize, n: usize, k: usize) -> bool {
    #[cfg(feature = "parallel")]
    {
        num_threads() > 1 && m * n < GEMM_PAR_MIN_OUTPUTS && m * n * k >= GEMM_PAR_MIN_MULADDS
    }
    #[cfg(not(feature = "parallel"))]
    {
        let _ = (m, n, k);
        false
    }
}

#[cfg(all(test, feature = "parallel"))]
mod tests {
    use super::awake::{RUNNING, STARTED};
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    /// The tests that count spinners, one at a time.
    static COUNTING: Mutex<()> = Mutex::new(());

    /// Whether `test` holds within five seconds.
    fn within_seconds(test: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if test() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a pool")
    }

    #[test]
    fn the_other_workers_spin_through_the_work_and_stop_after_it() {
        let _one = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
        let values: Vec<f32> = (0..1 << 16).map(|i| (i % 7) as f32).collect();
        let before = STARTED.load(Ordering::Relaxed);
        let (sum, spun) = pool(3).install(|| {
            with_workers_awake(|| {
                let spun = within_seconds(|| STARTED.load(Ordering::Relaxed) == before + 2);
                let doubled = map_slices(&values, None, |x, _| 2.0 * x);
                (doubled.iter().sum::<f32>(), spun)
            })
        });
        assert!(
            spun,
            "the two other workers of three never started spinning"
        );
        assert_eq!(sum, 2.0 * values.iter().sum::<f32>());
        assert!(
            within_seconds(|| RUNNING.load(Ordering::Relaxed) == 0),
            "{} spinners still running after the work",
            RUNNING.load(Ordering::Relaxed)
        );
    }

    #[test]
    fn the_spinning_stops_when_the_work_panics() {
        let _one = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
        let before = STARTED.load(Ordering::Relaxed);
        let panicked = pool(2).install(|| {
            std::panic::catch_unwind(|| {
                with_workers_awake(|| {
                    within_seconds(|| STARTED.load(Ordering::Relaxed) > before);
                    panic!("the work failed")
                })
            })
        });
        assert!(panicked.is_err());
        assert!(
            within_seconds(|| RUNNING.load(Ordering::Relaxed) == 0),
            "a spinner still runs after the work panicked"
        );
    }

    /// Steps back to back, each a few nested parallel loops, as training runs them. The other
    /// worker can take the next step's spinner while it is inside a loop's job (stolen from
    /// the caller, even inside the last step's spinner): that spinner then sits on a stack
    /// the caller waits for, and once it did not stop until the step ended, which it never
    /// did (a `gantry train` hung in CI; see [`awake::IDLE_LIMIT`]). The work must finish.
    #[test]
    fn steps_back_to_back_with_nested_loops_finish() {
        let _one = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
        // A microsecond or so of work a task, so that the loops' halves get stolen.
        fn work(seed: usize) -> usize {
            (0..2000).fold(seed, |acc, i| std::hint::black_box(acc ^ i) % 7)
        }
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let total = pool(2).install(|| {
                (0..20_000)
                    .map(|step| {
                        with_workers_awake(|| {
                            (0..3)
                                .map(|_| map_range(32, |i| work(i + step)).iter().sum::<usize>())
                                .sum::<usize>()
                        })
                    })
                    .sum::<usize>()
            });
            let _ = done.send(total);
        });
        let want: usize = (0..20_000)
            .map(|step| 3 * (0..32).map(|i| work(i + step)).sum::<usize>())
            .sum();
        match finished.recv_timeout(Duration::from_secs(120)) {
            Ok(total) => assert_eq!(total, want),
            Err(_) => {
                panic!("20,000 short steps did not finish in two minutes: a spinner blocks a step")
            }
        }
    }

    #[test]
    fn one_thread_or_a_caller_outside_the_pool_runs_the_work_alone() {
        let _one = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
        let count = || {
            std::thread::sleep(Duration::from_millis(20));
            RUNNING.load(Ordering::Relaxed)
        };
        assert_eq!(pool(1).install(|| with_workers_awake(count)), 0);
        let two = pool(2);
        assert_eq!(two.in_place_scope(|_| with_workers_awake(count)), 0);
    }
}
