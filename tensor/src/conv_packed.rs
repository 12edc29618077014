//! Strided convolutions on AVX-512 with no column matrix: the receptive fields of a few dozen
//! output pixels are packed straight from the input's stride phases into the panel that a
//! register-blocked kernel multiplies by the weights (the forward pass) or by the output
//! gradient (the weight gradient).
//!
//! Through im2col, a 64x64 DCGAN discriminator's second layer writes a column matrix of
//! 1024 x 256 values per sample (64 MiB for a batch of 64), and the `gemm` crate then reads it
//! back and packs it once more, along with the weights for every sample's product: about a
//! third more time than the multiply-adds take at the GEMM's peak. Here each panel of
//! [`NR`] output pixels (consecutive in the batch, across samples where a sample has fewer) is
//! packed a block of [`KC`] rows at a time into 24 KiB that stay in the L1 cache while every
//! output channel's weights pass over them, so the column matrix never exists.
//!
//! Every output value is one sum over the rows of the column matrix in order, each step one
//! fused multiply-add, whatever the panel, the task or the thread that computes it: the bits do
//! not depend on the thread count, the batch size or where a sample sits in its batch (tested).
//! Every weight-gradient value is likewise one sum over the batch's output pixels in order,
//! whatever the task or thread.
//! They differ from the `gemm` crate's (another blocking of the sum), and the kernel exists only
//! at [`Level::Avx512`]: at lower levels, or on other architectures, convolutions keep im2col.

use crate::im2col::{Geometry, phases};
use crate::matmul::transpose_into;
use crate::microkernel::{ALayout, Out, kernel};
use crate::parallel::{filled, for_each_chunk_mut, map_range, num_threads};
use crate::simd::{self, Level};

/// Output channels per kernel call: one broadcast weight each per step of the sum.
const MR: usize = 8;

/// Output pixels per panel: three 16-lane vectors, so that a step of the sum is 24 fused
/// multiply-adds on 3 loads and 8 broadcasts, with 24 of the 32 vector registers accumulating.
const NR: usize = 48;

/// Rows of the column matrix per block of the sum: a panel's block (`KC * NR` values, 24 KiB)
/// stays in the L1 cache while the weights of every output channel pass over it.
const KC: usize = 128;

/// About how many bytes of output a task keeps in flight while it walks the blocks of the sum:
/// its panels' outputs are read and written again for each block, from the L2 cache.
const TASK_OUTPUT_BYTES: usize = 256 << 10;

/// The fewest output pixels (over the whole batch) for which [`conv2d`] runs: its only split
/// across threads is by panels, and the `gemm` crate's product, parallel inside, wins on fewer.
/// Against im2col, 2 threads, AVX-512, the fastest of 15-20 runs: 256 pixels from 4096 rows to
/// 512 channels, 2.8 -> 3.9 ms; a 64x64 DCGAN's 8x8 -> 4x4 layer at batch 64 (1024 pixels,
/// 4096 rows), 11.4 -> 13.0; 2048 from 1024 rows to 128 (pix2pix-64's 32x32 -> 16x16 layers at
/// batch 8), 1.70 -> 1.51 alone, yet that workload's whole step ran 10% slower with them; from
/// 4096 on (the DCGAN's 16x16 -> 8x8, 12.4 -> 11.4; its 32x32 -> 16x16, 13.6 -> 11.3) it wins,
/// and at 3136 (the 28x28 DCGAN's 14x14 -> 7x7 at batch 64, 1600 rows to 128): its three
/// forward passes in a step 13.5 -> 11.9 ms (`gantry bench --profile`), the step 96-100 -> 93-96
/// ms (six alternations), the same at one thread.
/// A fixed count, not one per thread: the path sets the bits, which must not depend on the
/// thread count.
const MIN_PIXELS: usize = 3072;

/// Whether the packed kernels can compute a convolution with `o` output channels: strides above
/// one (im2col reads the input through its stride phases) and whole groups of [`MR`] output
/// channels (the weight gradient asks for whole slabs of [`GW_NR`] besides).
fn shape_fits(g: &Geometry, o: usize) -> bool {
    !g.im2col_reads_input() && o > 0 && o.is_multiple_of(MR) && g.col_rows() > 0
}

/// Whether the forward pass of a convolution of `n` samples with `o` output channels goes
/// through [`conv2d`]: at [`Level::Avx512`] (the level in force, which `GANTRY_SIMD` may cap),
/// for the shapes it fits, from [`MIN_PIXELS`] output pixels on.
pub(crate) fn takes_packed(g: &Geometry, n: usize, o: usize) -> bool {
    cfg!(target_arch = "x86_64")
        && simd::active() == Level::Avx512
        && shape_fits(g, o)
        && n * g.col_cols() >= MIN_PIXELS
}

/// One run of consecutive output pixels within one output row of one sample, of a panel (or of
/// a block of the weight gradient's sum): consecutive there, in the output, and (for any row of
/// the column matrix) in the input's phases.
#[derive(Clone, Copy)]
// Read only by the x86-64 packing; elsewhere the packed route never runs.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Run {
    /// Where the run's first pixel reads in the batch's phases, before the row's own offset.
    src: usize,
    /// The run's first column in the panel (or block).
    col: usize,
    /// Its pixels.
    len: usize,
    /// Where its first pixel's first output channel lies in the output `[N, O, oh, ow]`.
    out: usize,
}

/// A panel of up to [`NR`] consecutive output pixels of the batch.
struct Panel {
    runs: Vec<Run>,
    /// Whether the panel is [`NR`] pixels of one sample, written straight into the output
    /// (`ldc = oh * ow`); otherwise it goes through a tile of its own and then out by runs
    /// (a short last panel too: its other columns hold whatever `b` held, and their sums,
    /// each column's its own, are never read).
    in_place: bool,
}

/// The runs of the batch's output pixels `first..end` (for an output of `o` channels).
fn runs(g: &Geometry, (first, end): (usize, usize), o: usize) -> Vec<Run> {
    let plane = g.col_cols();
    let [_, ow] = g.out_hw;
    let wp = g.phase_hw()[1];
    let image_len = g.channels * g.phases_len();
    let mut runs = Vec::new();
    let mut i = first;
    while i < end {
        let (image, p) = (i / plane, i % plane);
        let (oy, ox) = (p / ow, p % ow);
        let len = (ow - ox).min(end - i);
        runs.push(Run {
            src: image * image_len + oy * wp + ox,
            col: i - first,
            len,
            out: image * o * plane + p,
        });
        i += len;
    }
    runs
}

impl Panel {
    fn new(index: usize, g: &Geometry, n: usize, o: usize) -> Panel {
        let plane = g.col_cols();
        let (first, end) = (index * NR, ((index + 1) * NR).min(n * plane));
        Panel {
            in_place: end - first == NR && first / plane == (end - 1) / plane,
            runs: runs(g, (first, end), o),
        }
    }
}

/// The weights `[o, rows]` in groups of [`MR`] output channels, each group `[rows, MR]`: the
/// kernel's broadcasts for one step of the sum sit side by side.
fn pack_weights(w: &[f32], o: usize, rows: usize) -> Vec<f32> {
    filled(o * rows, |dst| {
        for_each_chunk_mut(dst, rows * MR, |group, dst| {
            let w = &w[group * MR * rows..][..MR * rows];
            for (k, step) in dst.chunks_exact_mut(MR).enumerate() {
                for (i, d) in step.iter_mut().enumerate() {
                    d.write(w[i * rows + k]);
                }
            }
        })
    })
}

/// Where row `c * kh * kw + t` of the column matrix starts in one sample's phases: channel
/// `c`'s phases, then tap `t`'s first line.
fn row_offsets(g: &Geometry) -> Vec<usize> {
    let taps = g.taps();
    (0..g.channels)
        .flat_map(|c| {
            taps.iter()
                .map(move |t| c * g.phases_len() + t.phase_offset)
        })
        .collect()
}

/// Rows of the column matrix per weight-gradient kernel call (its broadcasts): five, so that
/// 20 accumulators, 4 loaded vectors and the broadcasts fit the 32 vector registers (with six,
/// the compiler kept accumulators on the stack).
const GW_MR: usize = 5;

/// Output channels per weight-gradient kernel call: four 16-lane vectors.
const GW_NR: usize = 64;

/// Output pixels per block of the weight gradient's sum: a block of a group's rows (2.5 KiB)
/// and of 64 channels of the output gradient (32 KiB) stay in the L1 cache.
const GW_KC: usize = 128;

/// The fewest rows of the column matrix for which [`conv2d_grad_weight`] runs: with fewer (the
/// first layers, from 1 to 6 channels), its one pass laying out the output gradient costs more
/// than the sum. 2 threads, fastest of 10: a 64x64 DCGAN's first layer at batch 64 (48 rows),
/// 3.4 -> 3.9 ms; pix2pix 256's first PatchGAN layer (96 rows), 1.8 -> 2.3.
const GW_MIN_ROWS: usize = 256;

/// Whether the weight gradient of a convolution of `n` samples with `o` output channels goes
/// through [`conv2d_grad_weight`]: as [`takes_packed`], for whole groups of [`GW_NR`] output
/// channels.
pub(crate) fn takes_packed_grad_weight(g: &Geometry, n: usize, o: usize) -> bool {
    cfg!(target_arch = "x86_64")
        && simd::active() == Level::Avx512
        && shape_fits(g, o)
        && o.is_multiple_of(GW_NR)
        && g.col_rows() >= GW_MIN_ROWS
        && n * g.col_cols() >= MIN_PIXELS
}

/// The gradient of the convolution of the `n` samples `x` with respect to its weights, given
/// the output gradient `gy` (`[n, o, oh, ow]`): `[o, C, kh, kw]`, each value one chain of fused
/// multiply-adds over the batch's output pixels in order. The output gradient is laid out
/// pixel-major once, in slabs of [`GW_NR`] channels (`[o / 64, n * oh * ow, 64]`); then each
/// task takes groups of [`GW_MR`] rows of the column matrix, packs their receptive fields a
/// block of [`GW_KC`] pixels at a time from the input's phases, and sums them against every
/// slab. Against im2col, 2 threads, fastest of 10: a 64x64 DCGAN's 32x32 -> 16x16 layer at batch
/// 64, 15.0-16.6 -> 13.4-14.0 ms; its 16x16 -> 8x8, 13.0-13.2 -> 13.0; pix2pix 256's 128x128 ->
/// 64x64 (batch 1), 3.6 -> 3.2.
/// On a CPU with AVX-512, for the shapes [`takes_packed_grad_weight`] admits.
pub(crate) fn conv2d_grad_weight(
    x: &[f32],
    n: usize,
    gy: &[f32],
    o: usize,
    g: &Geometry,
) -> Vec<f32> {
    assert!(
        cfg!(target_arch = "x86_64")
            && Level::detected() == Level::Avx512
            && shape_fits(g, o)
            && o.is_multiple_of(GW_NR),
        "conv_packed::conv2d_grad_weight: needs AVX-512 and a strided convolution to groups of {GW_NR} channels"
    );
    let (rows, plane) = (g.col_rows(), g.col_cols());
    let pixels = n * plane;
    let src = phases(x, g, true);
    let offsets = row_offsets(g);
    let prefetching = worth_prefetching(g);
    // Slabs of GW_NR channels, each `[pixels, GW_NR]`: a block's 128 pixels of one slab are
    // 32 KiB in one piece (pixel-major over all channels, rows 512 B or more apart filled only
    // some of the L1 cache's sets, and the block did not stay there).
    let gy_t = filled(pixels * o, |dst| {
        for_each_chunk_mut(dst, plane * GW_NR, |i, dst| {
            let (slab, sample) = (i / n, i % n);
            let rows = &gy[(sample * o + slab * GW_NR) * plane..][..GW_NR * plane];
            transpose_into(rows, GW_NR, plane, dst)
        })
    });
    let blocks: Vec<Vec<Run>> = (0..pixels.div_ceil(GW_KC))
        .map(|b| runs(g, (b * GW_KC, ((b + 1) * GW_KC).min(pixels)), o))
        .collect();
    let groups = rows.div_ceil(GW_MR);
    // About four tasks a thread: the groups' work is even, the threads' pace is not.
    let per_task = groups.div_ceil(4 * num_threads()).max(1);
    let tiles: Vec<Vec<f32>> = map_range(groups.div_ceil(per_task), |task| {
        let first = task * per_task;
        let count = per_task.min(groups - first);
        let mut sums = vec![0.0f32; count * GW_MR * o];
        // The task's rows of one block of the column matrix, `[count * GW_MR, GW_KC]`.
        let mut a = vec![0.0f32; count * GW_MR * GW_KC];
        let r0 = first * GW_MR;
        let live = (count * GW_MR).min(rows - r0);
        for (block, runs) in blocks.iter().enumerate() {
            let p0 = block * GW_KC;
            let kc = GW_KC.min(pixels - p0);
            // Rows past the column matrix's last (in its last group) stay zero.
            // SAFETY: the runs read receptive fields inside `src`; `a` holds `live` rows of
            // `GW_KC` values, room for every run of a block.
            unsafe {
                pack(
                    src.as_ptr(),
                    &offsets[r0..r0 + live],
                    runs,
                    (a.as_mut_ptr(), GW_KC),
                )
            };
            // Each block of 64 channels' output gradient (32 KiB) stays in the L1 cache
            // while every group's rows pass over it; meanwhile the next block's receptive
            // fields are asked for, a share before each kernel call.
            let calls = o / GW_NR * count;
            let next = blocks.get(block + 1).filter(|_| prefetching);
            for channels in (0..o).step_by(GW_NR) {
                for group in 0..count {
                    if let Some(runs) = next {
                        let call = channels / GW_NR * count + group;
                        prefetch(&src, share(&offsets[r0..r0 + live], call, calls), runs);
                    }
                    // SAFETY: `a` holds this group's `GW_MR` rows of `kc` values, `gy_t`
                    // `kc` pixels of `o` channels from `p0`, `sums` the group's `GW_MR`
                    // rows of `o`.
                    unsafe {
                        kernel::<GW_MR, { GW_NR / 16 }>(
                            a.as_ptr().add(group * GW_MR * GW_KC),
                            ALayout::Rows(GW_KC),
                            (gy_t.as_ptr().add(channels * pixels + p0 * GW_NR), GW_NR),
                            kc,
                            (sums.as_mut_ptr().add(group * GW_MR * o + channels), o),
                            block > 0,
                        )
                    };
                }
            }
        }
        sums
    });
    let sums: Vec<f32> = tiles.concat();
    // `[rows, o]` (and the last group's spare rows) to the weights' `[o, rows]`.
    filled(o * rows, |out| {
        transpose_into(&sums[..rows * o], rows, o, out)
    })
}

/// A raw pointer to the output, shared by the tasks: each writes only its own panels' pixels.
/// The forward pass of the convolution of the `n` samples `x` (`[n, C, H, W]`) by the weights
/// `w` (`[o, C, kh, kw]`), `[n, o, oh, ow]`, on a CPU with AVX-512, for the shapes
/// [`shape_fits`] admits.
pub(crate) fn conv2d(x: &[f32], n: usize, w: &[f32], o: usize, g: &Geometry) -> Vec<f32> {
    assert!(
        cfg!(target_arch = "x86_64") && Level::detected() == Level::Avx512 && shape_fits(g, o),
        "conv_packed::conv2d: needs AVX-512 and a strided convolution to groups of {MR} channels"
    );
    let (rows, plane) = (g.col_rows(), g.col_cols());
    let panels = (n * plane).div_ceil(NR);
    // As many tasks for every thread, each of at most `cap` panels, the panels dealt out evenly
    // (uneven tasks left one thread idle at the end: a 64x64 DCGAN's 8x8-to-4x4 layer has 22
    // panels for the whole batch).
    let cap = (TASK_OUTPUT_BYTES / (o * NR * 4)).max(1);
    let threads = num_threads();
    let tasks = panels.div_ceil(cap).div_ceil(threads).max(1) * threads;
    let tasks = tasks.min(panels);
    let src = phases(x, g, true);
    let offsets = row_offsets(g);
    let prefetching = worth_prefetching(g);
    let a = pack_weights(w, o, rows);
    filled(n * o * plane, |out| {
        let out = Out(out.as_mut_ptr().cast::<f32>());
        map_range(tasks, |task| {
            let (first, end) = (task * panels / tasks, (task + 1) * panels / tasks);
            let panels: Vec<Panel> = (first..end).map(|p| Panel::new(p, g, n, o)).collect();
            // SAFETY: the panels are this task's alone; `src`, `offsets` and `a` have the
            // lengths `Panel::new`, `row_offsets` and `pack_weights` give for `g`, `n`, `o`.
            unsafe { run_task(&src, &offsets, &a, [o, plane], &panels, out, prefetching) };
        });
    })
}

/// Computes `panels` into the output `out` (`o` channels of `plane` pixels a sample), block of
/// the sum by block, asking for the next step's receptive fields while one step's kernels run
/// when `prefetching`.
///
/// # Safety
/// `out` must hold `[n, o, plane]` values of which these panels' are no other task's; `src`,
/// `offsets` and `a` must be as [`conv2d`] makes them for the same geometry.
unsafe fn run_task(
    src: &[f32],
    offsets: &[usize],
    a: &[f32],
    [o, plane]: [usize; 2],
    panels: &[Panel],
    out: Out,
    prefetching: bool,
) {
    let rows = offsets.len();
    let mut b = vec![0.0f32; KC * NR];
    // Panels not written in place accumulate in tiles of their own, `[o, NR]` each.
    let tile_of: Vec<Option<usize>> = {
        let mut next = 0;
        panels
            .iter()
            .map(|p| {
                (!p.in_place).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect()
    };
    let tiles = tile_of.iter().flatten().count();
    let mut tile = vec![0.0f32; tiles * o * NR];
    for k0 in (0..rows).step_by(KC) {
        let kc = KC.min(rows - k0);
        for (index, (panel, tile_index)) in panels.iter().zip(&tile_of).enumerate() {
            // The step after this one: the next panel, or the first of the next block.
            let next = if !prefetching {
                None
            } else if index + 1 < panels.len() {
                Some((k0, index + 1))
            } else {
                (k0 + KC < rows).then_some((k0 + KC, 0))
            }
            .map(|(k0, p)| (&offsets[k0..(k0 + KC).min(rows)], &panels[p].runs));
            // SAFETY: every run's reads lie in `src` (its pixels' receptive fields, for
            // the rows `offsets` names) and its writes in the panel's `kc` rows of `b`.
            unsafe {
                pack(
                    src.as_ptr(),
                    &offsets[k0..k0 + kc],
                    &panel.runs,
                    (b.as_mut_ptr(), NR),
                )
            };
            let (c, ldc) = match tile_index {
                Some(t) => (tile[t * o * NR..].as_mut_ptr(), NR),
                None => {
                    let run = &panel.runs[0];
                    // SAFETY: the panel's `NR` pixels are one sample's, from `run.out` on.
                    (unsafe { out.at(run.out) }, plane)
                }
            };
            let groups = o / MR;
            for group in 0..groups {
                if let Some((offsets, runs)) = next {
                    prefetch(src, share(offsets, group, groups), runs);
                }
                let weights = &a[(group * rows + k0) * MR..][..kc * MR];
                // SAFETY: `c` holds `MR` rows of `NR` values `ldc` apart for this group.
                unsafe {
                    kernel::<MR, { NR / 16 }>(
                        weights.as_ptr(),
                        ALayout::Steps(MR),
                        (b.as_ptr(), NR),
                        kc,
                        (c.add(group * MR * ldc), ldc),
                        k0 > 0,
                    )
                };
            }
        }
    }
    for (panel, tile_index) in panels.iter().zip(&tile_of) {
        let Some(t) = tile_index else { continue };
        let tile = &tile[t * o * NR..][..o * NR];
        for run in &panel.runs {
            for (channel, line) in tile.chunks_exact(NR).enumerate() {
                let from = &line[run.col..][..run.len];
                // SAFETY: the run's pixels of each channel are this task's to write.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        from.as_ptr(),
                        out.at(run.out + channel * plane),
                        run.len,
                    )
                };
            }
        }
    }
}

/// Whether [`prefetch`] pays for a convolution: for output rows of 16 pixels or more, whose
/// runs are whole cache lines. On a Zen 5 (2 threads, alternated in one process, medians of 15
/// pairs' ratios, two runs), a 64x64 DCGAN's layers at batch 64: the forward passes 0.81-0.86
/// of the time without at 32x32 -> 16x16, 0.86-0.95 at 64x64 -> 32x32 (3 channels), the
/// weight gradient 0.91-0.95 at 32x32 -> 16x16; pix2pix 256's 128x128 -> 64x64 layer (batch 1)
/// 0.88-0.92 and 0.88-0.94; whole training steps 0.97-0.98 (the 64x64 DCGANs) and 0.97
/// (pix2pix 256). On rows of 4 to 8 pixels it was a wash or a loss: the 16x16 -> 8x8 layer's
/// forward pass 0.94-0.95 but its weight gradient 1.04, the 28x28 DCGAN's 14x14 -> 7x7 layer
/// (5x5 taps) 1.07-1.12 in both passes: many short runs cost as many prefetches, of lines the
/// hardware had fetched well enough.
fn worth_prefetching(g: &Geometry) -> bool {
    g.out_hw[1] >= 16
}

/// Part `part` of `parts` nearly equal parts of `items`.
fn share<T>(items: &[T], part: usize, parts: usize) -> &[T] {
    &items[part * items.len() / parts..(part + 1) * items.len() / parts]
}

/// Asks the L2 cache for every line that [`pack`] will read for rows `offsets` of `runs`.
///
/// A panel's receptive fields lie a few dozen values here and there over the input's phases,
/// a pattern the hardware's prefetchers do not follow: on a Zen 5 the packing of a 64x64 DCGAN
/// discriminator's 32x32 -> 16x16 forward pass waited on memory for about a third of the
/// pass (7.4-10.4 ms of the two threads' time; 1.7-2.2 with the next step's lines asked for
/// while the kernels run, into L1 then; into L2, as here, the passes were as fast, and the L1
/// cache is left to the kernels' operands). See [`worth_prefetching`] for where it pays.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn prefetch(src: &[f32], offsets: &[usize], runs: &[Run]) {
    #[cfg(target_arch = "x86_64")]
    for &offset in offsets {
        for run in runs {
            let from = src[run.src + offset..].as_ptr();
            // A line per 16 values, and the run's last (it need not start a line).
            for j in (0..run.len).step_by(16).chain([run.len - 1]) {
                // SAFETY: a prefetch only hints; it reads nothing and cannot fault, and
                // `from + j` lies inside `src` (the run's values are in the phases).
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(
                        from.add(j).cast(),
                    )
                };
            }
        }
    }
}

/// Packs rows `offsets` of the column matrix's columns that `runs` cover into `b` (a row per
/// offset, `ldb` apart), run by run straight from the phases `src`.
///
/// # Safety
/// Every `src + run.src + offset` must start `run.len` readable values and `b` must hold
/// `offsets.len()` rows of `ldb` values, each with room for every run.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pack(src: *const f32, offsets: &[usize], runs: &[Run], (b, ldb): (*mut f32, usize)) {
    use std::arch::x86_64::*;
    for (k, &offset) in offsets.iter().enumerate() {
        for run in runs {
            // SAFETY: the caller's contract; the masks keep every load and store inside the
            // run (masked-off lanes are neither read nor written).
            unsafe {
                let (from, to) = (src.add(run.src + offset), b.add(k * ldb + run.col));
                let mut j = 0;
                while j < run.len {
                    let mask = if run.len - j >= 16 {
                        u16::MAX
                    } else {
                        (1u16 << (run.len - j)) - 1
                    };
                    let v = _mm512_maskz_loadu_ps(mask, from.add(j));
                    _mm512_mask_storeu_ps(to.add(j), mask, v);
                    j += 16;
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn pack(_: *const f32, _: &[usize], _: &[Run], _: (*mut f32, usize)) {
    unreachable!("takes_packed is false off x86-64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::microkernel::tests::{avx512_here, values};
    use proptest::prelude::*;

    /// Calls `f(input, weight, output)` with the indices of every product of the convolution
    /// of `n` samples to `o` channels (the taps that land on the padding have none).
    fn for_each_product(n: usize, o: usize, g: &Geometry, mut f: impl FnMut(usize, usize, usize)) {
        let ([h, w], [oh, ow], [kh, kw], c) = (g.in_hw, g.out_hw, g.kernel, g.channels);
        let at = |out: usize, k: usize, axis: usize| {
            (out * g.stride[axis] + k * g.dilation[axis]).checked_sub(g.padding[axis])
        };
        for (b, ch, ci) in
            (0..n).flat_map(|b| (0..o).flat_map(move |ch| (0..c).map(move |ci| (b, ch, ci))))
        {
            for (oy, ox, ky, kx) in (0..oh).flat_map(|oy| {
                (0..ow).flat_map(move |ox| {
                    (0..kh).flat_map(move |ky| (0..kw).map(move |kx| (oy, ox, ky, kx)))
                })
            }) {
                let (Some(iy), Some(ix)) = (at(oy, ky, 0), at(ox, kx, 1)) else {
                    continue;
                };
                if iy < h && ix < w {
                    f(
                        ((b * c + ci) * h + iy) * w + ix,
                        ((ch * c + ci) * kh + ky) * kw + kx,
                        ((b * o + ch) * oh + oy) * ow + ox,
                    );
                }
            }
        }
    }

    /// The convolution in f64 by its definition, and each output's sum of absolute products
    /// (the scale of its rounding error).
    fn direct(x: &[f32], n: usize, w: &[f32], o: usize, g: &Geometry) -> (Vec<f64>, Vec<f64>) {
        let len = n * o * g.col_cols();
        let (mut y, mut scale) = (vec![0.0; len], vec![0.0; len]);
        for_each_product(n, o, g, |xi, wi, yi| {
            let p = x[xi] as f64 * w[wi] as f64;
            y[yi] += p;
            scale[yi] += p.abs();
        });
        (y, scale)
    }

    /// The weight gradient in f64 by its definition, and each value's sum of absolute products.
    fn direct_grad_weight(
        x: &[f32],
        n: usize,
        gy: &[f32],
        o: usize,
        g: &Geometry,
    ) -> (Vec<f64>, Vec<f64>) {
        let len = o * g.col_rows();
        let (mut gw, mut scale) = (vec![0.0; len], vec![0.0; len]);
        for_each_product(n, o, g, |xi, wi, yi| {
            let p = x[xi] as f64 * gy[yi] as f64;
            gw[wi] += p;
            scale[wi] += p.abs();
        });
        (gw, scale)
    }

    fn geometry(
        c: usize,
        hw: [usize; 2],
        k: [usize; 2],
        s: [usize; 2],
        p: [usize; 2],
        d: [usize; 2],
    ) -> Option<Geometry> {
        let out = |a: usize| {
            let span = d[a] * (k[a] - 1) + 1;
            (hw[a] + 2 * p[a] >= span).then(|| (hw[a] + 2 * p[a] - span) / s[a] + 1)
        };
        Some(Geometry {
            channels: c,
            in_hw: hw,
            kernel: k,
            stride: s,
            padding: p,
            dilation: d,
            out_hw: [out(0)?, out(1)?],
        })
    }

    /// Whether this CPU runs the kernel; where it does not, the convolutions keep im2col and
    /// there is nothing here to test (the message says so in the test's output).
    fn runs_here() -> bool {
        avx512_here("conv_packed")
    }

    /// Whether every output is within `tol` of the f64 definition, relative to its scale.
    fn close(got: &[f32], (want, scale): &(Vec<f64>, Vec<f64>), tol: f64) -> bool {
        got.iter()
            .zip(want)
            .zip(scale)
            .all(|((&g, &w), &s)| (g as f64 - w).abs() <= tol * (s + 1e-30))
    }

    prop_compose! {
        /// Strided geometries (kernels, paddings and dilations of every kind, some that do not
        /// fit) and batches: short panels and blocks, runs across samples and rows.
        fn cases()(
            c in 1usize..12, n in 1usize..5, h in 3usize..20, w in 3usize..20,
            kh in 1usize..6, kw in 1usize..6, sh in 1usize..4, sw in 2usize..4,
            ph in 0usize..3, pw in 0usize..3, dh in 1usize..3, dw in 1usize..3,
        ) -> (Option<Geometry>, usize) {
            (geometry(c, [h, w], [kh, kw], [sh, sw], [ph, pw], [dh, dw]), n)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Panels in place and in tiles, sums over more and fewer than one block of rows.
        #[test]
        fn packed_matches_the_definition((g, n) in cases(), groups in 1usize..4) {
            if !runs_here() {
                return Ok(());
            }
            let Some(g) = g else { return Ok(()) };
            let o = groups * MR;
            let x = values(n * g.channels * g.in_hw[0] * g.in_hw[1], 7);
            let wt = values(o * g.col_rows(), 11);
            let y = conv2d(&x, n, &wt, o, &g);
            prop_assert!(close(&y, &direct(&x, n, &wt, o, &g), 1e-5));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// A last group of rows short, one and two slabs of channels.
        #[test]
        fn packed_grad_weight_matches_the_definition((g, n) in cases(), slabs in 1usize..3) {
            if !runs_here() {
                return Ok(());
            }
            let Some(g) = g else { return Ok(()) };
            let o = slabs * GW_NR;
            let x = values(n * g.channels * g.in_hw[0] * g.in_hw[1], 7);
            let gy = values(n * o * g.col_cols(), 13);
            let gw = conv2d_grad_weight(&x, n, &gy, o, &g);
            prop_assert!(close(&gw, &direct_grad_weight(&x, n, &gy, o, &g), 1e-5));
        }
    }

    /// The comparison above catches one output gradient off by a part in a thousand, and the
    /// weight gradient's bits do not depend on the thread count.
    #[test]
    fn grad_weight_catches_a_wrong_value_and_keeps_its_bits_on_any_threads() {
        if !runs_here() {
            return;
        }
        let g = geometry(20, [18, 18], [4, 4], [2, 2], [1, 1], [1, 1]).unwrap();
        let (n, o) = (3, 128);
        let x = values(n * 20 * 18 * 18, 3);
        let gy = values(n * o * g.col_cols(), 5);
        let mut wrong = gy.clone();
        wrong[200] *= 1.001;
        let want = direct_grad_weight(&x, n, &gy, o, &g);
        let on = |threads: usize, gy: &[f32]| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| conv2d_grad_weight(&x, n, gy, o, &g))
        };
        let gw = on(1, &gy);
        assert!(close(&gw, &want, 1e-5));
        assert!(!close(&on(1, &wrong), &want, 1e-5));
        assert_eq!(gw, on(3, &gy));
    }

    /// Output rows of 16 pixels or more take the prefetching path: runs over several cache
    /// lines, the next panel's and the next block's lines asked for in both passes (two
    /// blocks of the sum's rows, five panels, two blocks of the weight gradient's pixels).
    #[test]
    fn long_rows_prefetch_and_match_the_definition() {
        if !runs_here() {
            return;
        }
        // 9 channels of 4x4 taps: 144 rows; 3 x 37 outputs a sample.
        let g = geometry(9, [6, 74], [4, 4], [2, 2], [1, 1], [1, 1]).unwrap();
        assert!(worth_prefetching(&g) && g.col_rows() > KC && g.out_hw == [3, 37]);
        let (n, o) = (2, GW_NR);
        let x = values(n * 9 * 6 * 74, 3);
        let w = values(o * g.col_rows(), 5);
        let gy = values(n * o * g.col_cols(), 7);
        let y = conv2d(&x, n, &w, o, &g);
        assert!(close(&y, &direct(&x, n, &w, o, &g), 1e-5));
        let gw = conv2d_grad_weight(&x, n, &gy, o, &g);
        assert!(close(&gw, &direct_grad_weight(&x, n, &gy, o, &g), 1e-5));
    }

    /// The comparison above catches one weight off by a part in a thousand.
    #[test]
    fn the_definition_catches_a_wrong_weight() {
        if !runs_here() {
            return;
        }
        let g = geometry(5, [13, 11], [4, 4], [2, 2], [1, 1], [1, 1]).unwrap();
        let (n, o) = (3, 16);
        let x = values(n * 5 * 13 * 11, 3);
        let w = values(o * g.col_rows(), 5);
        let mut wrong = w.clone();
        wrong[37] *= 1.001;
        let want = direct(&x, n, &w, o, &g);
        assert!(close(&conv2d(&x, n, &w, o, &g), &want, 1e-5));
        assert!(!close(&conv2d(&x, n, &wrong, o, &g), &want, 1e-5));
    }

    /// Each value is one chain of fused multiply-adds over the rows in order wherever its
    /// pixel sits: alone or in a batch (another panel, another column, in place or in a tile)
    /// and on any number of threads, the bits are the same.
    #[test]
    fn bits_do_not_depend_on_the_batch_or_the_threads() {
        if !runs_here() {
            return;
        }
        // 300 rows (three blocks of the sum), 10x10 outputs: panels cross samples.
        let g = geometry(12, [20, 20], [5, 5], [2, 2], [2, 2], [1, 1]).unwrap();
        let (n, o, per) = (5, 24, 12 * 20 * 20);
        let x = values(n * per, 1);
        let w = values(o * g.col_rows(), 2);
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| conv2d(&x, n, &w, o, &g))
        };
        let batch = on(1);
        assert_eq!(batch, on(3));
        let plane = o * g.col_cols();
        for i in 0..n {
            let alone = conv2d(&x[i * per..][..per], 1, &w, o, &g);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&alone),
                bits(&batch[i * plane..][..plane]),
                "sample {i}"
            );
        }
    }
}
