//! Matrix products with a narrow side, on AVX-512 or AVX2: `c [m, n] = op(a) · op(b)` for a
//! batch of `m <= MAX_ROWS` rows (a fully connected layer's forward pass and input gradient),
//! or summed over such a batch (its weight gradient).
//!
//! The `gemm` crate blocks these as it blocks square products, and splits them between threads
//! unevenly: an MLP GAN's layers at batch 64 ran their forward passes at 120-300 GFLOP/s on two
//! threads, where PyTorch's oneDNN reached 280-360 (AVX-512); on AVX2 the whole step's products
//! ran at 57-104 GFLOP/s, 1.6 times oneDNN's time. Here the batch is the side that gets
//! packed, once per product (at most [`MAX_ROWS`] x `k` values), the weights are read in place
//! by the broadcasts of [`Kernels::kernel`], and the row groups are dealt out evenly,
//! [`TASKS_PER_THREAD`] tasks a thread:
//!
//! - **Few rows**, weights `[n, k]` read transposed (a forward pass): `cᵀ = op(b)ᵀ · op(a)ᵀ`,
//!   the batch the kernel's columns (panels of [`Kernels::NR`]), the weights' rows its rows,
//!   summed a block of [`Kernels::KC`] steps at a time into a tile per task and panel that is
//!   then written out transposed.
//! - **Direct**, weights `[k, n]` read as stored (an input gradient): `c` by [`M`] rows of the
//!   batch and a panel of columns, each task packing the blocks of the weights' columns it
//!   covers.
//! - **Short sum**, at most `MAX_ROWS` steps (a weight gradient, `gyᵀ · x` over the batch):
//!   `c` by [`M`] rows of `op(a)`, copied side by side, against `op(b)` packed whole in panels.
//!   On AVX2 only: against the crate, alternated in one process, two threads, 48 MB of other
//!   data written before each call, a Zen 3 took 0.84-0.86 of the crate's time for an MLP's
//!   `[784, 1024]` gradient over 64 rows, 0.86-0.88 for `[1024, 512]`, 0.65-0.68 for `[512,
//!   8192]` over 8; its MLP GAN step 0.95-0.96. AVX-512 keeps the crate's kernels until the
//!   route is measured there; its kernels are tested at that level like the others.
//!
//! Every value is one chain of fused multiply-adds over the sum in order, whatever the task,
//! thread, block or vector width: the bits depend neither on the thread count nor on the other
//! rows of the batch, and are the same on AVX2 as on AVX-512 (tested). They differ from the
//! `gemm` crate's, so a product's bits depend on the CPU kind, as the crate's own kernels
//! already make them do.

use crate::microkernel::{ALayout, Out, transpose};
use crate::parallel::{PAR_MIN_ELEMS, filled, map_range, num_threads};
use crate::scratch::Scratch;
use crate::simd::{self, LINE, Level};

/// Rows per kernel call: 6 rows of 4 vectors accumulate in 24 of AVX-512's 32 registers, of
/// 2 vectors in 12 of AVX2's 16.
const M: usize = 6;

/// A level's kernels: the panel width, the block of the sum, and the kernel.
trait Kernels {
    /// Columns per kernel call (and per panel of the packed side).
    const NR: usize;
    /// Steps of the sum per block: the few-rows route's block of the packed side stays in the
    /// L1 cache while the weights' rows pass over it. Blocks do not change the bits (a later
    /// block continues each value's chain from where the last one stored it).
    const KC: usize;

    /// `c[R, NR] (+)= a . b` over `kc` steps: [`crate::microkernel::kernel`] at this level.
    ///
    /// # Safety
    /// The CPU runs the level; as [`crate::microkernel::kernel`]'s.
    unsafe fn kernel<const R: usize>(
        a: *const f32,
        layout: ALayout,
        b: (*const f32, usize),
        kc: usize,
        c: (*mut f32, usize),
        accumulate: bool,
    );
}

/// 16-lane vectors: panels of 4 (64 columns), blocks of 32 KiB.
struct Avx512;

impl Kernels for Avx512 {
    const NR: usize = 64;
    const KC: usize = 128;

    unsafe fn kernel<const R: usize>(
        a: *const f32,
        layout: ALayout,
        b: (*const f32, usize),
        kc: usize,
        c: (*mut f32, usize),
        accumulate: bool,
    ) {
        // SAFETY: the caller's contract.
        unsafe { crate::microkernel::kernel::<R, 4>(a, layout, b, kc, c, accumulate) }
    }
}

/// 8-lane vectors: panels of 2 (16 columns), blocks of 16 KiB.
struct Avx2;

impl Kernels for Avx2 {
    const NR: usize = 16;
    const KC: usize = 256;

    unsafe fn kernel<const R: usize>(
        a: *const f32,
        layout: ALayout,
        b: (*const f32, usize),
        kc: usize,
        c: (*mut f32, usize),
        accumulate: bool,
    ) {
        // SAFETY: the caller's contract.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            crate::microkernel::avx2::kernel::<R, 2>(a, layout, b, kc, c, accumulate)
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!(
            "the narrow products run only on x86-64 ({a:?}, {layout:?}, {b:?}, {kc}, {c:?}, {accumulate})"
        )
    }
}

/// `K`'s kernel for `rows` (1 to [`M`]) rows.
///
/// # Safety
/// As [`Kernels::kernel`]'s for `rows` rows, with `b` holding `kc` rows of `K::NR` values.
unsafe fn call<K: Kernels>(
    rows: usize,
    a: *const f32,
    layout: ALayout,
    b: &[f32],
    kc: usize,
    c: (*mut f32, usize),
    accumulate: bool,
) {
    debug_assert!(b.len() >= kc * K::NR);
    let b = (b.as_ptr(), K::NR);
    // SAFETY: the caller's contract.
    unsafe {
        match rows {
            6 => K::kernel::<6>(a, layout, b, kc, c, accumulate),
            5 => K::kernel::<5>(a, layout, b, kc, c, accumulate),
            4 => K::kernel::<4>(a, layout, b, kc, c, accumulate),
            3 => K::kernel::<3>(a, layout, b, kc, c, accumulate),
            2 => K::kernel::<2>(a, layout, b, kc, c, accumulate),
            1 => K::kernel::<1>(a, layout, b, kc, c, accumulate),
            _ => unreachable!("kernel calls take 1 to {M} rows"),
        }
    }
}

/// The most rows of `c` the few-rows route takes (two panels of the batch).
const MAX_ROWS: usize = 128;

/// The fewest columns and steps of the sum for the few-rows route: a generator's first layer
/// at batch 64, 100 -> 256, ran in 22 µs here against 19 on the `gemm` crate (two threads).
const FEW_ROWS_MIN: usize = 128;

/// Shorter sums, from [`FEW_ROWS_SHORT_SUM`] steps, take the few-rows route for weights of at
/// least this many values: the 28x28 DCGAN's first layer at batch 64, 100 -> 12544, ran in
/// 0.58 ms against 1.11-1.14 on the crate inside its step (`gantry bench --profile`).
const FEW_ROWS_SHORT_SUM_MIN_WEIGHTS: usize = 1 << 17;

/// See [`FEW_ROWS_SHORT_SUM_MIN_WEIGHTS`].
const FEW_ROWS_SHORT_SUM: usize = 64;

/// The fewest values of `op(b)` (the weights, read as they are stored) for the direct route.
/// Measured at batch 64 against the `gemm` crate, two threads, AVX-512, each product timed
/// inside an MLP GAN's training step, where the weights arrive from L3 (µs): `[512, 784]`
/// 191 / 260, `[256, 512]` 60 / 65, `[512, 256]` 75 / 75; the step 4.38-4.43 against
/// 4.51-4.54 ms with the threshold at `1 << 19`. The same product repeated
/// alone (criterion), its weights staying in L2, had favoured the crate below `1 << 19`
/// (`[512, 784]` 172 / 154, `[256, 512]` 59 / 45): the crate's packing pays more for weights
/// that come from farther away. On AVX2 (a Zen 3, inside the step, four runs alternated) the
/// three `[256, 512]` products took 0.59-0.66 ms on this route against 0.73-0.87 on the crate
/// with the threshold at `1 << 18`, though alone (best of 60) 201 µs against 151.
const DIRECT_MIN_WEIGHTS: usize = 1 << 17;

/// The fewest columns for the short-sum route: with 100 (a 28x28 DCGAN's first layer,
/// 100 -> 12544, its weight gradient `[12544, 100]`) the partial last panel cost more than the
/// route saved, 1.07-1.10 times the `gemm` crate's time (two threads, AVX2, alternated).
const SHORT_SUM_MIN_COLUMNS: usize = 256;

/// The fewest values of `c` for the short-sum route: a `[200, 64]` product took 1.75 times the
/// crate's 47 µs (two threads, AVX2).
const SHORT_SUM_MIN_VALUES: usize = 1 << 17;

/// Tasks per thread: enough that uneven row groups even out.
const TASKS_PER_THREAD: usize = 4;

/// How a narrow product is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `cᵀ` by rows of `op(b)ᵀ`, the batch `op(a)` packed transposed.
    FewRows,
    /// `c` by rows of `op(a)`, `op(b)` packed in panels.
    Direct,
    /// `c` by groups of rows of `op(a)`, `op(b)` packed in panels, for a short sum.
    ShortSum,
}

impl Route {
    /// The route's name in a profile.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Route::FewRows => "narrow few rows",
            Route::Direct => "narrow direct",
            Route::ShortSum => "narrow short sum",
        }
    }
}

/// The route for `c [m, n] = op(a) [m, k] · op(b) [k, n]`, or `None` for the `gemm` crate's.
pub(crate) fn route([m, n, k]: [usize; 3], trans_b: bool) -> Option<Route> {
    let level = simd::active();
    if !cfg!(target_arch = "x86_64") || level < Level::Avx2 {
        return None;
    }
    if level == Level::Avx2
        && m > MAX_ROWS
        && k <= MAX_ROWS
        && n >= SHORT_SUM_MIN_COLUMNS
        && m * n >= SHORT_SUM_MIN_VALUES
    {
        Some(Route::ShortSum)
    } else if !(16..=MAX_ROWS).contains(&m) {
        None
    } else if trans_b
        && n >= FEW_ROWS_MIN
        && (k >= FEW_ROWS_MIN
            || (k >= FEW_ROWS_SHORT_SUM && n * k >= FEW_ROWS_SHORT_SUM_MIN_WEIGHTS))
    {
        Some(Route::FewRows)
    } else if !trans_b && n * k >= DIRECT_MIN_WEIGHTS {
        Some(Route::Direct)
    } else {
        None
    }
}

/// `op(a) · op(b)` for `[m, n, k]` along `route`: `a` is `[m, k]`, or `[k, m]` when `trans_a`;
/// `b` is `[k, n]`, or `[n, k]` when `trans_b`; both without gaps.
pub(crate) fn product(
    route: Route,
    [m, n, k]: [usize; 3],
    (a, trans_a): (&[f32], bool),
    (b, trans_b): (&[f32], bool),
    parallel: bool,
) -> Vec<f32> {
    let level = simd::active();
    assert!(
        cfg!(target_arch = "x86_64") && level >= Level::Avx2,
        "matmul_narrow: needs AVX2 or AVX-512"
    );
    assert!(
        a.len() >= m * k && b.len() >= k * n && k > 0,
        "matmul_narrow: [{m}, {k}] x [{k}, {n}] from {} and {} values",
        a.len(),
        b.len()
    );
    let shape = [m, n, k];
    match (route, level) {
        (Route::FewRows, Level::Avx512) => {
            few_rows::<Avx512>(shape, (a, trans_a), (b, trans_b), parallel)
        }
        (Route::FewRows, _) => few_rows::<Avx2>(shape, (a, trans_a), (b, trans_b), parallel),
        (Route::Direct, Level::Avx512) => {
            direct::<Avx512>(shape, (a, trans_a), (b, trans_b), parallel)
        }
        (Route::Direct, _) => direct::<Avx2>(shape, (a, trans_a), (b, trans_b), parallel),
        (Route::ShortSum, Level::Avx512) => {
            short_sum::<Avx512>(shape, (a, trans_a), (b, trans_b), parallel)
        }
        (Route::ShortSum, _) => short_sum::<Avx2>(shape, (a, trans_a), (b, trans_b), parallel),
    }
}

/// Runs `tasks` tasks, on the pool when `parallel`.
fn run(tasks: usize, parallel: bool, f: impl Fn(usize) + Sync + Send) {
    if parallel {
        map_range(tasks, f);
    } else {
        (0..tasks).for_each(f);
    }
}

/// How many tasks split `units` units of work: about [`TASKS_PER_THREAD`] per thread.
fn tasks_for(units: usize, parallel: bool) -> usize {
    let threads = if parallel { num_threads() } else { 1 };
    (TASKS_PER_THREAD * threads).clamp(1, units.max(1))
}

/// `op(a)ᵀ` in panels of `NR` of its `m` columns, `[panels, k, NR]`, zero past `m`: a task
/// per block of `KC` steps of a panel.
fn pack_transposed<K: Kernels>(
    a: &[f32],
    trans_a: bool,
    [m, k]: [usize; 2],
    parallel: bool,
) -> Scratch {
    let panels = m.div_ceil(K::NR);
    let blocks = k.div_ceil(K::KC);
    // Every value is written below: zeroing the buffer first was a serial pass of its own.
    let mut packed = Scratch::dirty(panels * k * K::NR);
    let out = Out(packed.as_mut_ptr());
    run(
        panels * blocks,
        parallel && packed.len() >= PAR_MIN_ELEMS,
        |index| {
            let (p, k0) = (index / blocks, index % blocks * K::KC);
            let (cols, steps) = (K::NR.min(m - p * K::NR), K::KC.min(k - k0));
            // SAFETY: steps `k0..k0 + steps` of panel `p` lie in `packed`, and only this task
            // writes them.
            let chunk = unsafe {
                std::slice::from_raw_parts_mut(out.at((p * k + k0) * K::NR), steps * K::NR)
            };
            if trans_a {
                for (s, line) in chunk.chunks_exact_mut(K::NR).enumerate() {
                    line[..cols].copy_from_slice(&a[(k0 + s) * m + p * K::NR..][..cols]);
                }
            } else {
                // SAFETY: rows `p * NR..` (`cols` of them) of `a` hold steps `k0..k0 + steps`,
                // and the chunk `steps` rows of `NR`.
                unsafe {
                    transpose(
                        (a[(p * K::NR) * k + k0..].as_ptr(), k),
                        [cols, steps],
                        (chunk.as_mut_ptr(), K::NR),
                    )
                };
            }
            for line in chunk.chunks_exact_mut(K::NR) {
                line[cols..].fill(0.0);
            }
        },
    );
    packed
}

/// `c [m, n]` for `m <= MAX_ROWS`: see the module's documentation.
///
/// Each task takes a range of the weights' rows, and each group of [`M`] of them passes over
/// every panel of the batch before the next group: the weights, which come from memory inside
/// a training step, are read once rather than once per panel (four times at batch 64 on AVX2).
/// On a Zen 3 (two threads, `gantry bench --workload mlp --profile`, four runs alternated) the
/// few-rows products took 1.13-1.18 times the direct products' time of the same step with a
/// task per panel, 1.06-1.11 with this. With the weights evicted from every cache before each
/// call (the `linear_cold` bench) it was no faster: 0.86-1.43 of the old time, ten pairs.
fn few_rows<K: Kernels>(
    [m, n, k]: [usize; 3],
    (a, trans_a): (&[f32], bool),
    (b, trans_b): (&[f32], bool),
    parallel: bool,
) -> Vec<f32> {
    let packed = pack_transposed::<K>(a, trans_a, [m, k], parallel);
    let panels = m.div_ceil(K::NR);
    let groups = n.div_ceil(M);
    let parts = tasks_for(groups, parallel);
    filled(m * n, |out| {
        let out = Out(out.as_mut_ptr().cast::<f32>());
        run(parts, parallel, |part| {
            let (g0, g1) = (part * groups / parts, (part + 1) * groups / parts);
            let (first, end) = (g0 * M, (g1 * M).min(n));
            let rows = end - first;
            // A tile per panel, `[rows, NR]`; the sum's first block writes every value.
            let mut tiles = Scratch::dirty(panels * rows * K::NR);
            for k0 in (0..k).step_by(K::KC) {
                let kc = K::KC.min(k - k0);
                for i0 in (first..end).step_by(M) {
                    // Row `i` of the kernel's broadcasts is column `i` of `op(b)`.
                    let (at, layout) = broadcasts(!trans_b, [n, k], i0, k0);
                    for p in 0..panels {
                        // SAFETY: `product` chose `K` for this CPU; the rows `i0..` (at most
                        // `M`, within `n`) and steps `k0..k0 + kc` lie in `b`; panel `p`'s
                        // tile holds these rows of `NR` values.
                        unsafe {
                            call::<K>(
                                M.min(n - i0),
                                b[at..].as_ptr(),
                                layout,
                                &packed[(p * k + k0) * K::NR..],
                                kc,
                                (tiles[(p * rows + i0 - first) * K::NR..].as_mut_ptr(), K::NR),
                                k0 > 0,
                            )
                        };
                    }
                }
            }
            for (p, tile) in tiles.chunks_exact(rows * K::NR).enumerate() {
                let cols = K::NR.min(m - p * K::NR);
                // SAFETY: columns `first..end` of this panel's `cols` rows are this task's;
                // the tile holds `rows` rows of `NR` values.
                unsafe {
                    transpose(
                        (tile.as_ptr(), K::NR),
                        [rows, cols],
                        (out.at(p * K::NR * n + first), n),
                    )
                };
            }
        });
    })
}

/// `c [m, n]` for a sum of at most [`MAX_ROWS`] steps: see the module's documentation.
///
/// `op(b)` is packed whole, in panels (`[panels, k, NR]`, at most `MAX_ROWS x n` values, in
/// L2); each task takes a range of [`M`]-row groups of `op(a)`, copies a group's rows side by
/// side (`[k, M]`, in L1) and sums it against every panel. Broadcasting the group from `op(a)`
/// in place instead read a line a step apart, the same 4 KiB apart (so the same L1 set) when
/// `m` is 1024: the `[1024, 512]` weight gradient of an MLP's layer took 0.94-1.03 times the
/// crate's time that way, 0.86-0.88 with the copy.
fn short_sum<K: Kernels>(
    [m, n, k]: [usize; 3],
    (a, trans_a): (&[f32], bool),
    (b, trans_b): (&[f32], bool),
    parallel: bool,
) -> Vec<f32> {
    // `op(b)` is `[k, n]`: its columns are packed as `op(a)`'s rows are for the few-rows route.
    let panels_of_b = pack_transposed::<K>(b, !trans_b, [n, k], parallel);
    let panels = n.div_ceil(K::NR);
    let groups = m.div_ceil(M);
    let tasks = tasks_for(groups, parallel);
    filled(m * n, |out| {
        let out = Out(out.as_mut_ptr().cast::<f32>());
        run(tasks, parallel, |task| {
            let mut group = Scratch::dirty(k * M);
            // The last panel of `c` may be partial: summed in a tile, then copied.
            let mut tile = (n % K::NR != 0).then(|| Scratch::dirty(M * K::NR));
            for r0 in (task * groups / tasks..(task + 1) * groups / tasks).map(|g| g * M) {
                let rows = M.min(m - r0);
                pack_group((a, trans_a), [m, k], r0..r0 + rows, &mut group);
                for q in 0..panels {
                    let (c, ldc) = match &mut tile {
                        Some(tile) if q + 1 == panels => (tile.as_mut_ptr(), K::NR),
                        // SAFETY: rows `r0..r0 + rows` of `c` are this task's.
                        _ => (unsafe { out.at(r0 * n + q * K::NR) }, n),
                    };
                    // SAFETY: `product` chose `K` for this CPU; the group holds `k` steps of
                    // `M` values (the first `rows` of each written), panel `q` `k` steps of
                    // `NR`; `c` holds `rows` rows of `NR` values `ldc` apart.
                    unsafe {
                        call::<K>(
                            rows,
                            group.as_ptr(),
                            ALayout::Steps(M),
                            &panels_of_b[q * k * K::NR..],
                            k,
                            (c, ldc),
                            false,
                        )
                    };
                }
                if let Some(tile) = &tile {
                    // SAFETY: rows `r0..r0 + rows` of `c` are this task's.
                    unsafe { copy_last_panel::<K>(tile, (0..rows).map(|r| (r, r0 + r)), out, n) };
                }
            }
        });
    })
}

/// Copies rows of `tile` (`NR` values apart) into the partial last panel of `c` (`[m, n]`):
/// each `(from, to)` pair is a tile row and the row of `c` it becomes.
///
/// # Safety
/// `n` is not a multiple of `NR`, the tile holds every `from` row, and every `to` row lies in
/// `c` and is the caller's to write.
unsafe fn copy_last_panel<K: Kernels>(
    tile: &[f32],
    rows: impl Iterator<Item = (usize, usize)>,
    out: Out,
    n: usize,
) {
    let col = n / K::NR * K::NR;
    for (from, to) in rows {
        // SAFETY: the caller's contract; the panel holds `n - col` columns of row `to`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                tile[from * K::NR..].as_ptr(),
                out.at(to * n + col),
                n - col,
            )
        };
    }
}

/// Rows `rows` of `op(a)` (`[m, k]`) step by step into `group` (`[k, M]`): the values of a
/// step side by side, as the kernel broadcasts them. Slots past the rows are left as they are:
/// the kernel reads only the rows it is given.
fn pack_group(
    (a, trans_a): (&[f32], bool),
    [m, k]: [usize; 2],
    rows: std::ops::Range<usize>,
    group: &mut [f32],
) {
    assert!(rows.len() <= M && group.len() >= k * M);
    if trans_a {
        // Stored `[k, m]`: a step's values already lie side by side.
        for (s, line) in group[..k * M].chunks_exact_mut(M).enumerate() {
            line[..rows.len()].copy_from_slice(&a[s * m + rows.start..][..rows.len()]);
        }
    } else {
        let block = &a[rows.start * k..][..rows.len() * k];
        // SAFETY: `block` holds the rows' `k` values each, and `group` `k` lines of `M`.
        unsafe {
            transpose(
                (block.as_ptr(), k),
                [rows.len(), k],
                (group.as_mut_ptr(), M),
            )
        };
    }
}

/// Panels a direct task packs together, a block of steps at a time: a step's lines of these
/// panels lie side by side in the weights' row, so they are read as one run (8 cache lines on
/// AVX2) rather than a line a row apart, each often on a page of its own.
const PACK_PANELS: usize = 8;

/// `c [m, n]` directly: see the module's documentation.
///
/// The weights are packed once per product, a chunk of [`PACK_PANELS`] panels and a block of
/// [`Kernels::KC`] steps at a time, and the next block's lines are prefetched while this one is
/// summed ([`Prefetch`]). Inside an MLP GAN's step the weights arrive from memory, and packing
/// them was a pass of its own that the kernels waited for: on a Zen 3 (AVX2, two threads,
/// `gantry bench --workload mlp --profile`, four runs alternated) the direct products took
/// 1.02-1.18 times the few-rows products' time in the same step before, 0.87-0.90 after.
fn direct<K: Kernels>(
    [m, n, k]: [usize; 3],
    (a, trans_a): (&[f32], bool),
    (b, trans_b): (&[f32], bool),
    parallel: bool,
) -> Vec<f32> {
    let panels = n.div_ceil(K::NR);
    let groups = m.div_ceil(M);
    // The (panel, row group) units, panel by panel, dealt out in even ranges: a panel's
    // packing is repeated only by the tasks its units are split between.
    let units = panels * groups;
    let tasks = tasks_for(units, parallel);
    filled(m * n, |out| {
        let out = Out(out.as_mut_ptr().cast::<f32>());
        run(tasks, parallel, |task| {
            let (first, end) = (task * units / tasks, (task + 1) * units / tasks);
            let (q_first, q_end) = (first / groups, (end - 1) / groups + 1);
            // This task's rows of panel `q`.
            let rows_of = |q: usize| {
                let g0 = if q == q_first { first % groups } else { 0 };
                let g1 = (end - q * groups).min(groups);
                g0 * M..(g1 * M).min(m)
            };
            // The blocks in the order they are summed: (chunk of panels, first step).
            let chunks = (q_first..q_end).step_by(PACK_PANELS);
            let mut blocks = chunks
                .flat_map(|q0| {
                    (0..k)
                        .step_by(K::KC)
                        .map(move |k0| (q0..(q0 + PACK_PANELS).min(q_end), k0))
                })
                .peekable();
            // Each block's lines are written whole before the kernel reads them.
            let mut block = Scratch::dirty(K::KC.min(k) * PACK_PANELS.min(q_end - q_first) * K::NR);
            // The last panel of `c` may be partial: summed in a tile, then copied.
            let mut tile = (q_end == panels && n % K::NR != 0).then(|| Scratch::dirty(m * K::NR));
            while let Some((chunk, k0)) = blocks.next() {
                let kc = K::KC.min(k - k0);
                pack_block::<K>((b, trans_b), [k, n], chunk.clone(), k0..k0 + kc, &mut block);
                let calls = chunk.clone().map(|q| rows_of(q).len().div_ceil(M)).sum();
                let mut prefetch = Prefetch::new::<K>((b, trans_b), [k, n], blocks.peek(), calls);
                for q in chunk.clone() {
                    let rows = rows_of(q);
                    let (c, ldc) = match &mut tile {
                        Some(tile) if q + 1 == panels => (tile.as_mut_ptr(), K::NR),
                        // SAFETY: the rows `rows` of panel `q`'s columns are this task's.
                        _ => (unsafe { out.at(q * K::NR) }, n),
                    };
                    let panel = &block[(q - chunk.start) * kc * K::NR..][..kc * K::NR];
                    for r0 in rows.step_by(M) {
                        prefetch.share();
                        let (at, layout) = broadcasts(trans_a, [m, k], r0, k0);
                        // SAFETY: `product` chose `K` for this CPU; rows `r0..` (at most `M`,
                        // within `m`) of `op(a)` and the steps `k0..k0 + kc` lie in `a`; `c`
                        // holds `m` rows of `NR` values `ldc` apart.
                        unsafe {
                            call::<K>(
                                M.min(m - r0),
                                a[at..].as_ptr(),
                                layout,
                                panel,
                                kc,
                                (c.add(r0 * ldc), ldc),
                                k0 > 0,
                            )
                        };
                    }
                }
            }
            if let Some(tile) = tile {
                // SAFETY: the rows `rows_of(panels - 1)` of the last panel are this task's.
                unsafe { copy_last_panel::<K>(&tile, rows_of(panels - 1).map(|r| (r, r)), out, n) };
            }
        });
    })
}

/// Steps `steps` of `op(b)`'s panels `panels` into `block`, panel by panel (`[panel, step,
/// NR]`), zero past `n`. The whole panels of weights read as stored are moved a step's run at
/// a time, a line of `NR` values per panel: with a copy of its own for each line, its bounds
/// checks and edge cases, a `[64, 784] x [784, 1024]` product alone on one thread took
/// 1.17-1.28 times the few-rows route's `[64, 784] x [1024, 784]ᵀ`, with this 1.10-1.15.
fn pack_block<K: Kernels>(
    (b, trans_b): (&[f32], bool),
    [k, n]: [usize; 2],
    panels: std::ops::Range<usize>,
    steps: std::ops::Range<usize>,
    block: &mut [f32],
) {
    let kc = steps.len();
    assert!(block.len() >= panels.len() * kc * K::NR && steps.end <= k);
    let whole = if trans_b {
        0
    } else {
        (n / K::NR).clamp(panels.start, panels.end) - panels.start
    };
    for (s, step) in steps.clone().enumerate() {
        let run = &b[step * n + panels.start * K::NR..][..whole * K::NR];
        for (p, line) in run.chunks_exact(K::NR).enumerate() {
            block[(p * kc + s) * K::NR..][..K::NR].copy_from_slice(line);
        }
    }
    for (s, step) in steps.enumerate() {
        for q in panels.start + whole..panels.end {
            let cols = K::NR.min(n - q * K::NR);
            let line = &mut block[((q - panels.start) * kc + s) * K::NR..][..K::NR];
            if trans_b {
                for (j, value) in line[..cols].iter_mut().enumerate() {
                    *value = b[(q * K::NR + j) * k + step];
                }
            } else {
                line[..cols].copy_from_slice(&b[step * n + q * K::NR..][..cols]);
            }
            line[cols..].fill(0.0);
        }
    }
}

/// Brings the lines of the block a direct task packs next toward the core, a share before each
/// kernel call of the current block, so that they come from memory while the kernels run
/// rather than while the packing waits for them.
struct Prefetch<'b> {
    /// The weights' values, read as stored.
    b: &'b [f32],
    /// Where the block's first step starts in `b`, and the distance between steps.
    start: usize,
    n: usize,
    /// Lines per step, lines in all, the next line to fetch, and lines per share.
    per_step: usize,
    lines: usize,
    next: usize,
    share: usize,
}

impl<'b> Prefetch<'b> {
    /// For the block `(panels, k0)` of `op(b)`, in `calls` shares; nothing to fetch for no
    /// block, or for weights read transposed (a line per value: not worth it).
    fn new<K: Kernels>(
        (b, trans_b): (&'b [f32], bool),
        [k, n]: [usize; 2],
        block: Option<&(std::ops::Range<usize>, usize)>,
        calls: usize,
    ) -> Self {
        let (start, per_step, lines) = match block {
            Some((panels, k0)) if !trans_b => {
                let width = (panels.end * K::NR).min(n) - panels.start * K::NR;
                let per_step = width.div_ceil(LINE);
                (
                    k0 * n + panels.start * K::NR,
                    per_step,
                    per_step * K::KC.min(k - k0),
                )
            }
            _ => (0, 1, 0),
        };
        let share = lines.div_ceil(calls.max(1));
        Prefetch {
            b,
            start,
            n,
            per_step,
            lines,
            next: 0,
            share,
        }
    }

    /// Fetches the next share of lines.
    fn share(&mut self) {
        let end = (self.next + self.share).min(self.lines);
        for line in self.next..end {
            let (step, at) = (line / self.per_step, line % self.per_step * LINE);
            let value = &self.b[self.start + step * self.n + at];
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a prefetch only hints; the address is that of a value of `b`.
            unsafe {
                use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
                _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast())
            };
        }
        self.next = end;
    }
}

/// Where the kernel's broadcasts for rows `r0..` and steps `k0..` of a `[rows, steps]` matrix
/// start, and how they lie: the matrix stored as it is, or transposed (`[steps, rows]`).
fn broadcasts(
    transposed: bool,
    [rows, steps]: [usize; 2],
    r0: usize,
    k0: usize,
) -> (usize, ALayout) {
    if transposed {
        (k0 * rows + r0, ALayout::Steps(rows))
    } else {
        (r0 * steps + k0, ALayout::Rows(steps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microkernel::tests::values;
    use proptest::prelude::*;

    /// `f` at each level the narrow products run at on this machine (AVX2, AVX-512), with the
    /// level; says so when there is none, and then checks nothing.
    fn at_each_kernel_level<R>(f: impl Fn(Level) -> R) -> Vec<R> {
        let results: Vec<R> = simd::at_each_level(|| {
            let level = simd::active();
            (level >= Level::Avx2).then(|| f(level))
        })
        .into_iter()
        .filter_map(|(_, r)| r)
        .collect();
        if results.is_empty() {
            eprintln!("matmul_narrow: this CPU has neither AVX2 nor AVX-512; nothing runs here");
        }
        results
    }

    /// `op(a) · op(b)` in `f64`, with the sum of the terms' magnitudes for each value.
    fn definition(
        [m, n, k]: [usize; 3],
        (a, trans_a): (&[f32], bool),
        (b, trans_b): (&[f32], bool),
    ) -> (Vec<f64>, Vec<f64>) {
        let at = |i: usize, s: usize| if trans_a { a[s * m + i] } else { a[i * k + s] };
        let bt = |s: usize, j: usize| if trans_b { b[j * k + s] } else { b[s * n + j] };
        let mut want = vec![0.0; m * n];
        let mut scale = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for s in 0..k {
                    let term = at(i, s) as f64 * bt(s, j) as f64;
                    want[i * n + j] += term;
                    scale[i * n + j] += term.abs();
                }
            }
        }
        (want, scale)
    }

    fn close(got: &[f32], (want, scale): &(Vec<f64>, Vec<f64>), tol: f64) -> bool {
        got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .zip(scale)
                .all(|((&g, &w), &s)| (g as f64 - w).abs() <= tol * (s + 1e-30))
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn on<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(f)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        // Rows past one panel and short of the next, partial row groups and panels, sums
        // across blocks and short of one, every transposition, on 1 to 3 threads (each route
        // computes any shape; `route` picks one by speed).
        #[test]
        fn every_route_matches_the_definition(
            m in 1usize..140,
            n in 1usize..150,
            k in 1usize..300,
            trans_a: bool,
            trans_b: bool,
            route in 0usize..3,
            threads in 1usize..4,
        ) {
            let route = [Route::FewRows, Route::Direct, Route::ShortSum][route];
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let want = definition([m, n, k], (&a, trans_a), (&b, trans_b));
            for (level, got) in at_each_kernel_level(|level| {
                let got = on(threads, || {
                    product(route, [m, n, k], (&a, trans_a), (&b, trans_b), threads > 1)
                });
                (level, got)
            }) {
                prop_assert!(close(&got, &want, 1e-5), "{level}: {route:?} [{m}, {n}, {k}]");
            }
        }
    }

    #[test]
    fn the_definition_catches_a_wrong_value() {
        let (m, n, k) = (64, 200, 260);
        let (a, b) = (values(m * k, 3), values(k * n, 4));
        at_each_kernel_level(|level| {
            for route in [Route::FewRows, Route::Direct, Route::ShortSum] {
                let want = definition([m, n, k], (&a, false), (&b, true));
                let mut got = product(route, [m, n, k], (&a, false), (&b, true), true);
                assert!(close(&got, &want, 1e-5), "{level}: {route:?}");
                got[m * n - 1] += 1e-3;
                assert!(!close(&got, &want, 1e-5), "{level}: {route:?}");
            }
        });
    }

    #[test]
    fn direct_tasks_span_chunks_of_panels_and_a_partial_last_one() {
        // One thread, four tasks: each task's panels run past a chunk at either level (panels
        // of 16 and 64 columns), whole panels and the partial last one in the same chunk, the
        // weights read as stored and transposed.
        let (m, n, k) = (20, 4 * 64 * (PACK_PANELS + 1) + 5, 300);
        let (a, b) = (values(m * k, 7), values(k * n, 8));
        at_each_kernel_level(|level| {
            for (trans_a, trans_b) in [(false, false), (true, false), (false, true)] {
                let want = definition([m, n, k], (&a, trans_a), (&b, trans_b));
                let got = on(1, || {
                    product(Route::Direct, [m, n, k], (&a, trans_a), (&b, trans_b), true)
                });
                assert!(close(&got, &want, 1e-5), "{level}: {trans_a} {trans_b}");
            }
        });
    }

    #[test]
    fn bits_do_not_depend_on_the_threads_the_batch_or_the_level() {
        // Sums of several blocks at either level (128 and 256 steps).
        let (m, n, k) = (100, 300, 600);
        let (a, b) = (values(m * k, 5), values(k * n, 6));
        let per_level = at_each_kernel_level(|level| {
            [
                (Route::FewRows, true),
                (Route::Direct, false),
                (Route::ShortSum, false),
            ]
            .map(|(route, trans_b)| {
                let full = || product(route, [m, n, k], (&a, false), (&b, trans_b), true);
                let (whole, three) = (on(1, full), on(3, full));
                assert_eq!(bits(&whole), bits(&three), "{level}: {route:?}");
                // The last 30 rows alone: each value is the same sum in the same order.
                let tail = product(
                    route,
                    [30, n, k],
                    (&a[70 * k..], false),
                    (&b, trans_b),
                    false,
                );
                assert_eq!(bits(&tail), bits(&whole[70 * n..]), "{level}: {route:?}");
                bits(&whole)
            })
        });
        // AVX2's 8-lane kernels and AVX-512's 16-lane ones: the same chains, the same bits.
        for other in per_level.iter().skip(1) {
            assert!(other == &per_level[0], "the levels' bits differ");
        }
    }

    #[test]
    fn routes_only_on_avx2_or_wider_and_only_for_few_rows() {
        let _steady = simd::level_steady();
        let wide = route([64, 1024, 784], true);
        let vectors = simd::active() >= Level::Avx2;
        assert_eq!(wide.is_some(), vectors);
        assert_eq!(route([256, 1024, 784], true), None);
        assert_eq!(route([64, 100, 256], false), None);
        // Short sums only for wide weights: a DCGAN's 100 -> 12544, not an MLP's 100 -> 256.
        let short_wide = route([64, 12544, 100], true);
        assert_eq!(short_wide, vectors.then_some(Route::FewRows));
        assert_eq!(route([64, 256, 100], true), None);
        assert_eq!(route([64, 12544, 50], true), None);
    }

    #[test]
    fn short_sums_route_only_on_avx2_and_only_when_wide() {
        let avx2 = (simd::active() == Level::Avx2).then_some(Route::ShortSum);
        // An MLP's weight gradients over a batch of 64, and a 1x1 layer's over a batch of 8.
        assert_eq!(route([784, 1024, 64], false), avx2);
        assert_eq!(route([256, 512, 64], false), avx2);
        assert_eq!(route([512, 8192, 8], true), avx2);
        // A sum past the batch, few columns, few values.
        assert_eq!(route([784, 1024, 200], false), None);
        assert_eq!(route([12544, 100, 64], false), None);
        assert_eq!(route([200, 300, 64], false), None);
    }

    #[test]
    fn short_sum_tasks_cover_partial_groups_and_a_partial_last_panel() {
        // Four tasks on one thread, each over several groups with the last one partial; a
        // partial last panel at either level (16 and 64 columns); every transposition.
        let (m, n, k) = (4 * 3 * M + 5, 2 * 64 + 7, 70);
        let (a, b) = (values(m * k, 9), values(k * n, 10));
        at_each_kernel_level(|level| {
            for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
                let want = definition([m, n, k], (&a, trans_a), (&b, trans_b));
                let got = on(1, || {
                    product(
                        Route::ShortSum,
                        [m, n, k],
                        (&a, trans_a),
                        (&b, trans_b),
                        true,
                    )
                });
                assert!(close(&got, &want, 1e-5), "{level}: {trans_a} {trans_b}");
            }
        });
    }
}
