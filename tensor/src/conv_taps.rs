//! Stride-1 convolutions on small maps, or with few output channels, as sums of products over
//! the taps that land on the input, none on the zero padding, and without a column matrix.
//!
//! Through im2col, every output pixel multiplies all `C * kh * kw` rows of the column matrix,
//! zeros of the padding included. On a large map those are a thin border; on a small one with a
//! wide kernel they are a large share: dcgan28's first transposed convolution (256 to 128
//! channels, 5x5 taps, padding 2, on 7x7 maps) spends 31% of its multiply-adds on padding, and
//! it holds two thirds of that model's work. oneDNN's direct convolutions skip them. And where
//! a layer has few output channels (a PatchGAN's last, a layer to RGB), the column matrix of
//! `C * kh * kw` rows is far more to write and read back than the product it feeds.
//!
//! Here activations go channels innermost with the batch inside each row, `[H, W, N, C]`.
//! For one output row `y` and one tap `(ky, kx)`, the output pixels `(x, n)` whose tap lands
//! inside the input read one run of input pixels of the row `y + ky - ph`, shifted by
//! `(kx - pw) * N`: a product `[o, c] . [c, pixels]` with the tap's `[C, O]` block of the
//! rearranged weight `[kh, kw, C, O]`, adding into the output row's pixels. With channels
//! innermost on both sides the GEMM streams each pixel's channels (its broadcast operand,
//! unpacked) and packs only the weights; the input is never copied per tap. The input gradient
//! is the same correlation of the output gradient with the weight's channels exchanged and its
//! kernel reversed. The weight gradient is one product per tap and output row, summed over that
//! row's pixels (its input read `[H, C, W, N]`, each channel's pixels contiguous). Each product
//! is serial and blocked by its shapes alone, jobs are split by the shapes alone, and the sums
//! over products run in one order, so the bits do not depend on the thread count.

use crate::im2col::Geometry;
use crate::matmul::gemm_strided;
use crate::parallel::{filled, for_each_chunk_mut, map_range};
use crate::scratch::Scratch;
use crate::simd::LINE;

/// The smallest batch that goes through taps: the batch is the inner length of every product's
/// columns, and a short one makes thin products.
const MIN_BATCH: usize = 16;

/// The largest share of a convolution's multiply-adds that may land on the input for it to go
/// through taps: with fewer on the padding, im2col's one long product is as fast (a 3x3
/// convolution on 16x16 maps wastes 8%, on 8x8 16%; dcgan28's 5x5 on 7x7, 31%).
const MAX_VALID_SHARE: f64 = 0.86;

/// Output channels up to which a stride-1 convolution goes through taps whatever its maps and
/// batch: im2col's column matrix is `C * kh * kw` rows for a product only `o` rows tall, so
/// writing it and reading it back is most of the work. Against im2col, 2 threads: a PatchGAN's
/// last layer (512 channels to 1, 4x4, 31x31 maps, batch 1) 2.0 to 0.4 ms forward, 2.9 to 0.9
/// input gradient, 2.0 to 0.9 weight gradient; a 7x7 layer from 64 channels to RGB on 128x128,
/// 55 to 10, 49 to 3.5 and 60 to 12 ms; a 3x3 one on 64x64, 0.47 to 0.60 (slower), 0.60 to 0.51
/// and 1.40 to 0.77 ms. A 1x1 convolution has no column matrix to spare (its im2col reads the
/// input) and stays.
const FEW_OUTPUTS: usize = 4;

/// Channels per job at most: of the output in [`correlate`] (jobs of an output row and a
/// block of channels), of the input in [`grad_weight`] (a tap and a block of channels).
const MAX_CHANNEL_BLOCK: usize = 128;

/// The side of the tiles in which layouts are transposed: 8 values of one cache line on each
/// side, few enough lines that strides of whole kilobytes (all in one cache set) do not evict
/// them before they are used.
const TILE: usize = 8;

/// Whether a convolution of `n` samples with geometry `g` and `o` output channels goes through
/// taps: unit stride and dilation, padding narrower than the kernel (so that its input gradient
/// is a convolution of the same kind), channels on both sides, and either a batch of [`MIN_BATCH`] or more with at most
/// [`MAX_VALID_SHARE`] of its multiply-adds on the input, or at most [`FEW_OUTPUTS`] output
/// channels and a kernel of more than one tap.
pub(crate) fn takes_taps(g: &Geometry, n: usize, o: usize) -> bool {
    let unit = g.stride == [1, 1]
        && g.dilation == [1, 1]
        && g.channels > 0
        && o > 0
        && g.padding[0] < g.kernel[0]
        && g.padding[1] < g.kernel[1];
    let padded_small_maps = n >= MIN_BATCH && valid_share(g) <= MAX_VALID_SHARE;
    let few_outputs = o <= FEW_OUTPUTS && g.kernel[0] * g.kernel[1] > 1;
    unit && (padded_small_maps || few_outputs)
}

/// The share of the `oh * ow * kh * kw` taps of a stride-1 convolution that land on its input.
fn valid_share(g: &Geometry) -> f64 {
    let axis = |a: usize| {
        let valid: usize = (0..g.kernel[a])
            .map(|k| {
                let (lo, hi) = tap_range(g.out_hw[a], g.in_hw[a], k, g.padding[a]);
                hi - lo
            })
            .sum();
        valid as f64 / (g.out_hw[a] * g.kernel[a]) as f64
    };
    axis(0) * axis(1)
}

/// The output positions `o` in `0..out` whose tap `k` reads input `o + k - pad` inside `0..len`.
fn tap_range(out: usize, len: usize, k: usize, pad: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(k).min(out);
    let hi = (len + pad).saturating_sub(k).min(out).max(lo);
    (lo, hi)
}

/// Calls `f(i, j)` for every cell of a `rows x cols` grid, tile by tile ([`TILE`]): a
/// transpose that reads along `j` and writes along `i` then touches `2 * TILE` lines per tile.
#[inline(always)]
fn in_tiles(rows: usize, cols: usize, mut f: impl FnMut(usize, usize)) {
    for i0 in (0..rows).step_by(TILE) {
        for j0 in (0..cols).step_by(TILE) {
            for i in i0..(i0 + TILE).min(rows) {
                for j in j0..(j0 + TILE).min(cols) {
                    f(i, j);
                }
            }
        }
    }
}

/// `[N, C, H, W]` data as `[H, W, N, C]`, in parallel over rows.
fn to_hwnc(x: &[f32], [n, c, h, w]: [usize; 4]) -> Scratch {
    let mut out = Scratch::dirty(n * c * h * w);
    for_each_chunk_mut(&mut out, w * n * c, |y, row| {
        for s in 0..n {
            let src = &x[s * c * h * w + y * w..];
            in_tiles(w, c, |i, ch| {
                row[(i * n + s) * c + ch] = src[ch * h * w + i]
            });
        }
    });
    out
}

/// `[N, C, H, W]` data as `[H, C, W, N]`, in parallel over rows of a channel.
fn to_hcwn(x: &[f32], [n, c, h, w]: [usize; 4]) -> Scratch {
    let mut out = Scratch::dirty(n * c * h * w);
    for_each_chunk_mut(&mut out, w * n, |hc, line| {
        let (y, ch) = (hc / c, hc % c);
        let src = &x[(ch * h + y) * w..];
        in_tiles(w, n, |i, s| line[i * n + s] = src[s * c * h * w + i]);
    });
    out
}

/// `[H, W, N, C]` data as `[N, C, H, W]`, in parallel over samples.
fn from_hwnc(x: &[f32], [n, c, h, w]: [usize; 4]) -> Vec<f32> {
    let hw = h * w;
    filled(n * c * hw, |dst| {
        for_each_chunk_mut(dst, c * hw, |s, sample| {
            in_tiles(hw, c, |p, ch| {
                sample[ch * hw + p].write(x[(p * n + s) * c + ch]);
            })
        })
    })
}

/// A `[O, C, kh, kw]` weight rearranged for [`correlate`] as `[kh, kw, C, O]`; with `flip`, the
/// weight of the input gradient instead, `[kh, kw, O, C]` with both kernel axes reversed. One
/// job per [`LINE`] values of the blocks' rows: it reads its `LINE` weights' runs of taps once,
/// in order, and fills whole cache lines of every tap's block (a job per tap read every weight
/// once per tap: 1.7% of a dcgan28 step).
fn arrange(w: &[f32], [o, c, kh, kw]: [usize; 4], flip: bool) -> Scratch {
    let taps = kh * kw;
    // Each tap's block is `[rows, cols]`: `[C, O]`, or `[O, C]` with `flip`.
    let (rows, cols) = if flip { (o, c) } else { (c, o) };
    let mut out = Scratch::dirty(w.len());
    // Addresses, not pointers, cross into the pool; each job writes its own columns.
    let out_at = out.as_mut_ptr() as usize;
    map_range(cols.div_ceil(LINE), |job| {
        let (j0, j1) = (job * LINE, ((job + 1) * LINE).min(cols));
        for r in 0..rows {
            for t in 0..taps {
                // Reversing both kernel axes reverses the tap order.
                let slot = if flip { taps - 1 - t } else { t };
                for j in j0..j1 {
                    let (oi, ci) = if flip { (r, j) } else { (j, r) };
                    let v = w[(oi * c + ci) * taps + t];
                    // SAFETY: `(slot * rows + r) * cols + j < taps * rows * cols = w.len()`,
                    // the length of `out`; column `j` belongs to this job alone.
                    unsafe { *(out_at as *mut f32).add((slot * rows + r) * cols + j) = v };
                }
            }
        }
    });
    out
}

/// The largest divisor of `len` not above `most`.
fn divisor_at_most(len: usize, most: usize) -> usize {
    (1..=most.min(len))
        .rev()
        .find(|d| len.is_multiple_of(*d))
        .unwrap_or(1)
}

/// The stride-1 cross-correlation of `x` (`[h, w, n, c]`) with `wr` (`[kh, kw, c, o]`, see
/// [`arrange`]) and padding `pad`: `[oh, ow, n, o]`. One product per output row, tap and block
/// of output channels, over the row's pixels whose tap lands on the input; with channels
/// innermost on both sides, the GEMM streams each pixel's channels (its broadcast operand,
/// unpacked) and packs the weights. Jobs are an output row and a block of channels: whole rows
/// keep each product wide, and the blocks make enough jobs to share the threads.
#[allow(clippy::too_many_arguments)]
fn correlate(
    x: &[f32],
    [h, w, c]: [usize; 3],
    n: usize,
    wr: &[f32],
    o: usize,
    [kh, kw]: [usize; 2],
    [ph, pw]: [usize; 2],
    [oh, ow]: [usize; 2],
) -> Scratch {
    let row = ow * n;
    let block = divisor_at_most(o, MAX_CHANNEL_BLOCK);
    let per_row = o / block;
    let mut out = Scratch::zeroed(oh * row * o);
    // Addresses, not pointers, cross into the pool; each job adds into its own row and block.
    let out_at = out.as_mut_ptr() as usize;
    map_range(oh * per_row, |job| {
        let (y, o0) = (job / per_row, (job % per_row) * block);
        for ky in 0..kh {
            // The output rows whose tap `ky` reads input row `y + ky - ph` inside the input.
            let (y0, y1) = tap_range(oh, h, ky, ph);
            if !(y0..y1).contains(&y) {
                continue;
            }
            let iy = y + ky - ph;
            for kx in 0..kw {
                let (x0, x1) = tap_range(ow, w, kx, pw);
                if x0 == x1 {
                    continue;
                }
                let (j0, j1) = (x0 * n, x1 * n);
                let a = &wr[(ky * kw + kx) * c * o + o0..][..(c - 1) * o + block];
                // Output pixel `j` of the row reads input pixel `j + (kx - pw) * n`.
                let b = &x[(iy * w * n + j0 + kx * n - pw * n) * c..][..(j1 - j0) * c];
                // SAFETY: `out` holds `oh` rows of `row` pixels of `o` channels, zeroed; this
                // job alone touches channels `o0..o0 + block` of row `y`, pixels `j0..j1 <= row`;
                // `a` is the block's columns of the tap's `[c, o]` weights; `b` holds the
                // `j1 - j0` input pixels of `c` channels the output pixels read (`x1 + kx - pw
                // <= w`).
                unsafe {
                    let dst = (out_at as *mut f32).add((y * row + j0) * o + o0);
                    gemm_strided(
                        [block, j1 - j0, c],
                        (dst, 1, o),
                        true,
                        (a.as_ptr(), 1, o),
                        (b.as_ptr(), 1, c),
                    )
                };
            }
        }
    });
    out
}

/// The weight gradient `[o, c, kh, kw]` of a stride-1 convolution of `x` (`[h, c, w, n]`) with
/// padding `pad`, given the output gradient `gy` (`[oh, ow, n, o]`): for each tap, one product
/// per output row, `gy[y] [(x, n), o]^T . x[y + ky - ph] [c, (x + kx - pw, n)]^T` over the
/// output pixels whose tap lands on the input, summed in row order. Both operands are read
/// along the pixels, where each is contiguous.
#[allow(clippy::too_many_arguments)]
fn grad_weight(
    x: &[f32],
    [h, c, w]: [usize; 3],
    n: usize,
    gy: &[f32],
    o: usize,
    [kh, kw]: [usize; 2],
    [ph, pw]: [usize; 2],
    [oh, ow]: [usize; 2],
) -> Vec<f32> {
    let block = divisor_at_most(c, MAX_CHANNEL_BLOCK);
    let per_tap = c / block;
    let taps = kh * kw;
    // [kh * kw, c, o], each tap's block of input channels one job.
    let mut by_tap = Scratch::dirty(taps * c * o);
    for_each_chunk_mut(&mut by_tap, block * o, |job, dst| {
        let (tap, c0) = (job / per_tap, (job % per_tap) * block);
        let (ky, kx) = (tap / kw, tap % kw);
        let (y0, y1) = tap_range(oh, h, ky, ph);
        let (x0, x1) = tap_range(ow, w, kx, pw);
        if y0 == y1 || x0 == x1 {
            dst.fill(0.0);
            return;
        }
        for y in y0..y1 {
            let a = &gy[(y * ow + x0) * n * o..][..(x1 - x0) * n * o];
            let b = &x[((y + ky - ph) * c + c0) * w * n + (x0 + kx - pw) * n..]
                [..(block - 1) * w * n + (x1 - x0) * n];
            // SAFETY: `dst` holds `block * o` values, written by the first row's product and
            // added to by later ones; `a` holds the `(x1 - x0) * n` output pixels of `o`
            // channels from pixel `x0 * n` of row `y`; `b` holds the block's `block` channels
            // of input row `y + ky - ph` (`< h`), `w * n` apart, each with the `(x1 - x0) * n`
            // pixels the output pixels read (`x1 + kx - pw <= w`).
            unsafe {
                gemm_strided(
                    [o, block, (x1 - x0) * n],
                    (dst.as_mut_ptr(), 1, o),
                    y > y0,
                    (a.as_ptr(), 1, o),
                    (b.as_ptr(), 1, w * n),
                )
            };
        }
    });
    // [kh * kw, c, o] -> [o, c, kh, kw], in parallel over runs of LINE output channels, each
    // read a cache line at a time and written as LINE sequential streams.
    filled(o * c * taps, |dst| {
        for_each_chunk_mut(dst, LINE * c * taps, |job, run| {
            let o0 = job * LINE;
            let o1 = o0 + run.len() / (c * taps);
            for ci in 0..c {
                for t in 0..taps {
                    let src = &by_tap[(t * c + ci) * o..];
                    for oi in o0..o1 {
                        run[((oi - o0) * c + ci) * taps + t].write(src[oi]);
                    }
                }
            }
        })
    })
}

/// [`crate::Tensor::conv2d`] (no bias) of the `n` samples `x` (`[n, c, h, w]`) by `w`
/// (`[o, c, kh, kw]`) through taps.
pub(crate) fn conv2d(x: &[f32], n: usize, w: &[f32], o: usize, g: &Geometry) -> Vec<f32> {
    let [h, wd] = g.in_hw;
    let c = g.channels;
    let x_hwnc = to_hwnc(x, [n, c, h, wd]);
    let wr = arrange(w, [o, c, g.kernel[0], g.kernel[1]], false);
    let y = correlate(
        &x_hwnc,
        [h, wd, c],
        n,
        &wr,
        o,
        g.kernel,
        g.padding,
        g.out_hw,
    );
    from_hwnc(&y, [n, o, g.out_hw[0], g.out_hw[1]])
}

/// [`crate::Tensor::conv2d_grad_input`] through taps: the stride-1 correlation of the output
/// gradient `gy` (`[n, o, oh, ow]`) with the weight's channels exchanged and kernel reversed,
/// padded by `k - 1 - pad`.
pub(crate) fn conv2d_grad_input(
    gy: &[f32],
    n: usize,
    w: &[f32],
    o: usize,
    g: &Geometry,
) -> Vec<f32> {
    let [kh, kw] = g.kernel;
    let [oh, ow] = g.out_hw;
    let c = g.channels;
    let gy_hwnc = to_hwnc(gy, [n, o, oh, ow]);
    let wr = arrange(w, [o, c, kh, kw], true);
    let pad = [kh - 1 - g.padding[0], kw - 1 - g.padding[1]];
    let gx = correlate(&gy_hwnc, [oh, ow, o], n, &wr, c, g.kernel, pad, g.in_hw);
    from_hwnc(&gx, [n, c, g.in_hw[0], g.in_hw[1]])
}

/// [`crate::Tensor::conv2d_grad_weight`] through taps, of the input `x` (`[n, c, h, w]`) and
/// the output gradient `gy` (`[n, o, oh, ow]`).
pub(crate) fn conv2d_grad_weight(
    x: &[f32],
    n: usize,
    gy: &[f32],
    o: usize,
    g: &Geometry,
) -> Vec<f32> {
    let [h, w] = g.in_hw;
    let [oh, ow] = g.out_hw;
    let x_hcwn = to_hcwn(x, [n, g.channels, h, w]);
    let gy_hwnc = to_hwnc(gy, [n, o, oh, ow]);
    grad_weight(
        &x_hcwn,
        [h, g.channels, w],
        n,
        &gy_hwnc,
        o,
        g.kernel,
        g.padding,
        g.out_hw,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(c: usize, hw: usize, k: usize, stride: usize, pad: usize) -> Geometry {
        let out = (hw + 2 * pad - k) / stride + 1;
        Geometry {
            channels: c,
            in_hw: [hw, hw],
            kernel: [k, k],
            stride: [stride, stride],
            padding: [pad, pad],
            dilation: [1, 1],
            out_hw: [out, out],
        }
    }

    /// The layers that go through taps: dcgan28's first transposed convolution (and its
    /// gradients, 69% of whose taps land on the input) and 3x3 convolutions on 8x8 maps or
    /// smaller; not those on 16x16 maps (92%), strided or unpadded ones, nor small batches;
    /// and layers with few output channels (a PatchGAN's last, a 7x7 layer to RGB).
    #[test]
    fn small_padded_stride_one_maps_take_taps() {
        let dcgan28 = geometry(128, 7, 5, 1, 2);
        assert!((valid_share(&dcgan28) - (29.0f64 / 35.0).powi(2)).abs() < 1e-12);
        assert!(takes_taps(&dcgan28, 64, 128));
        assert!(takes_taps(&dcgan28, MIN_BATCH, 128));
        assert!(!takes_taps(&dcgan28, MIN_BATCH - 1, 128));
        assert!(takes_taps(&geometry(64, 8, 3, 1, 1), 64, 64));
        assert!(takes_taps(&geometry(64, 4, 3, 1, 1), 64, 64));
        assert!(!takes_taps(&geometry(64, 16, 3, 1, 1), 64, 64));
        assert!(!takes_taps(&geometry(64, 14, 5, 2, 2), 64, 64));
        assert!(!takes_taps(&geometry(64, 7, 5, 1, 0), 64, 64));
        assert!(
            !takes_taps(&geometry(64, 7, 3, 1, 3), 64, 64),
            "padding as wide as the kernel"
        );
        // Few output channels at any batch and map size; not 1x1 kernels, not strided ones.
        assert!(takes_taps(&geometry(512, 31, 4, 1, 1), 1, 1));
        assert!(takes_taps(&geometry(64, 128, 7, 1, 3), 1, FEW_OUTPUTS));
        assert!(!takes_taps(&geometry(64, 128, 7, 1, 3), 1, FEW_OUTPUTS + 1));
        assert!(!takes_taps(&geometry(64, 64, 1, 1, 0), 4, 3));
        assert!(!takes_taps(&geometry(512, 32, 4, 2, 1), 1, 1));
        assert!(
            !takes_taps(&geometry(0, 7, 5, 1, 2), 64, 1),
            "no input channels"
        );
        assert!(
            !takes_taps(&geometry(8, 7, 5, 1, 2), 64, 0),
            "no output channels"
        );
    }

    /// The layout changes are exact inverses of each other and of the definitions.
    #[test]
    fn layouts_round_trip() {
        let dims = [3, 5, 4, 7];
        let x: Vec<f32> = (0..3 * 5 * 4 * 7).map(|v| v as f32).collect();
        let hwnc = to_hwnc(&x, dims);
        assert_eq!(from_hwnc(&hwnc, dims), x);
        let hcwn = to_hcwn(&x, dims);
        // Sample 2, channel 3, row 1, column 6.
        let at = ((2 * 5 + 3) * 4 + 1) * 7 + 6;
        assert_eq!(hwnc[((7 + 6) * 3 + 2) * 5 + 3], x[at]);
        assert_eq!(hcwn[((5 + 3) * 7 + 6) * 3 + 2], x[at]);
    }
}
