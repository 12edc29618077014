//! 2-D convolution and transposed convolution, with the gradients of both, via im2col + GEMM.
//!
//! Each is written once: the transposed convolution *is* the gradient of the convolution with
//! respect to its input, and the gradient of the transposed convolution with respect to its input
//! is the convolution. Weights use PyTorch's layouts: conv2d `[out, in, kh, kw]`,
//! conv_transpose2d `[in, out, kh, kw]`.
//!
//! The whole batch is one GEMM: the column matrices of all samples sit side by side,
//! `[C * kh * kw, N * oh * ow]`, so the product is large enough to run near the GEMM peak and
//! parallel inside the GEMM. im2col fills rows in parallel; col2im runs per sample in parallel.
//! A plain forward pass over a batch large enough goes in blocks of samples instead (one sample
//! each where a sample's product is wide on its own), each block's column matrix made and used
//! in its thread's cache; see [`conv2d_blocks`].
//! Batches whose column matrix would exceed [`COL_LIMIT`] elements go in fixed-size chunks of
//! samples (the chunking depends only on the shapes, so the numbers do not depend on the thread
//! count). Two kinds of layer leave im2col: stride-1 layers on small padded maps or with few
//! outputs go through [`conv_taps`], and on AVX-512 the forward pass of strided layers with
//! enough output pixels packs its receptive fields straight into a kernel's panels
//! ([`conv_packed`]).

use crate::Tensor;
use crate::conv_packed::{self, takes_packed, takes_packed_grad_weight};
use crate::conv_taps::{self, takes_taps};
use crate::im2col::{Geometry, col2im_channel, im2col, im2col_rows, phases};
use crate::matmul::{
    gemm, gemm_ld, gemm_new, gemm_new_ld, gemm_uninit, transpose_into, transposed_ld,
};
use crate::parallel::{filled, for_each_chunk_mut};
use crate::scratch::Scratch;
use std::mem::MaybeUninit;

/// The most elements a column matrix may hold (64 MiB of f32).
const COL_LIMIT: usize = 1 << 24;

/// About how many input values one col2im work unit writes.
const COL2IM_UNIT: usize = 1 << 16;

/// Convolutions whose column matrix has at most this many rows (`C * kh * kw`: the 3-channel
/// first layer of a discriminator has 48), or at least [`PER_SAMPLE_COLS`] columns per sample,
/// and whose batch has at least [`PER_SAMPLE_MIN_BATCH`] samples take their forward product
/// one sample at a time; see [`conv2d_blocks`].
const PER_SAMPLE_ROWS: usize = 64;

/// Output pixels per sample from which a sample's own product is wide enough to run near the
/// GEMM's peak: the weights, packed again for every sample, then cost under 1/512 of the
/// product's multiply-adds. A 64x64 DCGAN's second layer (16x16 outputs) goes one sample at a
/// time, about 10-15% faster than batch-wide (criterion, 2 threads); its 8x8 and 4x4 layers stay
/// batch-wide.
const PER_SAMPLE_COLS: usize = 256;

/// The smallest batch that goes one sample at a time: smaller ones keep the batch-wide product,
/// which is parallel inside the GEMM.
const PER_SAMPLE_MIN_BATCH: usize = 4;

/// About how many output pixels a block of samples of [`conv2d_blocks`] spans where one
/// sample's are too few for a product of its own. Criterion-style runs at batch 64 (dcgan28's
/// second discriminator layer, 7x7 outputs; the 64x64 DCGAN's third and fourth, 8x8 and 4x4),
/// 2 threads: 256, 512 and 1,024 columns were all 5-20% faster than batch-wide in the
/// forward pass; 512 was never the slowest.
const BLOCK_COLS: usize = 512;

/// Stride, padding and dilation of a 2-D convolution, as `[height, width]` pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between receptive fields.
    pub stride: [usize; 2],
    /// Zeros added on each side of the input.
    pub padding: [usize; 2],
    /// Spacing between kernel taps.
    pub dilation: [usize; 2],
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
        }
    }
}

impl Conv2dParams {
    /// Square stride and padding, no dilation.
    pub fn new(stride: usize, padding: usize) -> Self {
        Conv2dParams {
            stride: [stride, stride],
            padding: [padding, padding],
            dilation: [1, 1],
        }
    }

    /// The output size along one axis, or `None` if the kernel does not fit.
    pub fn out_len(&self, axis: usize, input: usize, kernel: usize) -> Option<usize> {
        let span = self.dilation[axis] * (kernel.checked_sub(1)?) + 1;
        let padded = input + 2 * self.padding[axis];
        padded.checked_sub(span).map(|r| r / self.stride[axis] + 1)
    }
}

/// Stride, padding, output padding and dilation of a 2-D transposed convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dParams {
    /// Step of the convolution this one transposes.
    pub stride: [usize; 2],
    /// Padding of the convolution this one transposes (removed from the output).
    pub padding: [usize; 2],
    /// Extra rows/columns added on one side of the output to pick among the sizes that a
    /// strided convolution maps to the same size; must be smaller than the stride.
    pub output_padding: [usize; 2],
    /// Spacing between kernel taps.
    pub dilation: [usize; 2],
}

impl Default for ConvTranspose2dParams {
    fn default() -> Self {
        ConvTranspose2dParams {
            stride: [1, 1],
            padding: [0, 0],
            output_padding: [0, 0],
            dilation: [1, 1],
        }
    }
}

impl ConvTranspose2dParams {
    /// Square stride and padding, no output padding, no dilation.
    pub fn new(stride: usize, padding: usize) -> Self {
        ConvTranspose2dParams {
            stride: [stride, stride],
            padding: [padding, padding],
            ..Default::default()
        }
    }

    /// The convolution this one is the adjoint of.
    pub fn as_conv(&self) -> Conv2dParams {
        Conv2dParams {
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
        }
    }

    /// The output size along one axis:
    /// `(input - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1`,
    /// or `None` if that is not positive.
    pub fn out_len(&self, axis: usize, input: usize, kernel: usize) -> Option<usize> {
        ((input.checked_sub(1)?) * self.stride[axis]
            + self.dilation[axis] * (kernel.checked_sub(1)?)
            + self.output_padding[axis]
            + 1)
        .checked_sub(2 * self.padding[axis])
        .filter(|&n| n > 0)
    }
}

#[track_caller]
fn check_params(op: &str, p: &Conv2dParams) {
    assert!(
        p.stride.iter().chain(&p.dilation).all(|&v| v > 0),
        "{op}: stride {:?} and dilation {:?} must be positive",
        p.stride,
        p.dilation
    );
}

/// The geometry of a convolution of a `[N, C, H, W]` input with a `[O, C, kh, kw]` weight.
#[track_caller]
fn conv_geometry(op: &str, input: &[usize], weight: &[usize], p: &Conv2dParams) -> Geometry {
    check_params(op, p);
    assert!(
        input.len() == 4 && weight.len() == 4,
        "{op}: input {input:?} and weight {weight:?} must both be 4-D"
    );
    assert!(
        input[1] == weight[1],
        "{op}: input {input:?} has {} channels, weight {weight:?} expects {}",
        input[1],
        weight[1]
    );
    let oh = p.out_len(0, input[2], weight[2]);
    let ow = p.out_len(1, input[3], weight[3]);
    let (Some(oh), Some(ow)) = (oh, ow) else {
        panic!("{op}: kernel of weight {weight:?} does not fit input {input:?} with {p:?}");
    };
    Geometry {
        channels: input[1],
        in_hw: [input[2], input[3]],
        kernel: [weight[2], weight[3]],
        stride: p.stride,
        padding: p.padding,
        dilation: p.dilation,
        out_hw: [oh, ow],
    }
}

/// Whether each output is the kernel laid over the whole (unpadded) input: one output pixel per
/// image, as in a DCGAN discriminator's last layer or, transposed, its generator's first. The
/// column matrix is then the input itself, `[N, C * kh * kw]` read transposed, and the
/// convolution a plain matrix product with no im2col, col2im or layout change.
fn covers_whole_input(g: &Geometry) -> bool {
    g.out_hw == [1, 1] && g.kernel == g.in_hw && g.padding == [0, 0]
}

/// The `[cols, rows]` transpose of a row-major `[rows, cols]` matrix (see [`transpose_into`]).
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * cols);
    transpose_into(m, rows, cols, &mut out.spare_capacity_mut()[..rows * cols]);
    // SAFETY: `transpose_into` wrote all `rows * cols` values.
    unsafe { out.set_len(rows * cols) };
    out
}

/// [`Tensor::conv2d`] of the `n` samples `x` through column matrices, in chunks of samples;
/// with `grad = Some((gy, total))` also [`Tensor::conv2d_grad_weight`] against the output
/// gradient `gy`, accumulated into `total` from the same column matrices (a transposed
/// convolution's backward needs both). The column matrix is laid out for the weight gradient's
/// transposed read (rows `transposed_ld` apart); the forward product reads it untransposed,
/// where the row stride does not change the bits (tested). A chunk of one sample (a batch of
/// one, as pix2pix trains) multiplies straight into its output and reads its own output
/// gradient in place: channel-major is its layout already.
fn conv2d_columns(
    x: &[f32],
    n: usize,
    w: &[f32],
    o: usize,
    g: &Geometry,
    mut grad: Option<(&[f32], &mut Option<Vec<f32>>)>,
) -> Vec<f32> {
    let (rows, cols) = (g.col_rows(), g.col_cols());
    // Every sample is written by one chunk's copy: zeroing the output first only to
    // overwrite it was most of the `memset` in a 64x64 DCGAN step's profile.
    filled(n * o * cols, |out| {
        for (n0, n1) in sample_chunks(n, rows * cols) {
            let k = (n1 - n0) * cols;
            let (ld, wide) = (wide_ld(k), wide(k));
            let col = batch_im2col(x, g, n0, n1, ld);
            if n1 - n0 == 1 && wide == k {
                // One sample's channel-major product is its output already.
                let dst = &mut out[n0 * o * cols..][..o * cols];
                gemm_uninit(o, k, rows, w, false, &col, false, ld, dst, true);
            } else {
                let mut y = Scratch::dirty(o * wide);
                gemm_ld(
                    o, wide, rows, w, false, &col, false, ld, &mut y, wide, false, true,
                );
                to_sample_major(&y, wide, [o, cols], [n0, n1], out);
            }
            if let Some((gy, total)) = grad.as_mut() {
                let gy_cm = channel_major(gy, o, cols, [n0, n1], k);
                add_grad_weight_chunk(total, o, rows, k, &gy_cm, &col, ld);
            }
        }
    })
}

/// [`Tensor::conv2d`] of the `n` samples `x` in blocks of `block` samples, in parallel over
/// blocks: each block's column matrix is made, multiplied and used up in its thread's cache, and
/// the product lands in the block's outputs (a sample alone writes it there directly). The
/// batch-wide path writes its column matrix (`rows x N oh ow`: 12 MiB for the first layer of a
/// 64x64 RGB batch of 64, 64 MiB for the second, 20 MiB for dcgan28's second) out to memory and
/// reads it back, and copies its product once more into sample-major order; with few rows, or
/// few output pixels per sample, that traffic costs more than the product. Each output value's
/// product is the batch-wide one (one pass over the `rows` products, in the same order: the
/// GEMM's blocking along the sum depends on its length alone), so every split gives the same
/// bits (tested here, and on whole training runs).
fn conv2d_blocks(x: &[f32], n: usize, w: &[f32], o: usize, g: &Geometry, block: usize) -> Vec<f32> {
    let (rows, cols) = (g.col_rows(), g.col_cols());
    let in_len = g.channels * g.in_hw[0] * g.in_hw[1];
    let taps = g.taps();
    filled(n * o * cols, |out| {
        for_each_chunk_mut(out, block * o * cols, |b, dst| {
            let (n0, n1) = (b * block, ((b + 1) * block).min(n));
            let (m, width) = (n1 - n0, (n1 - n0) * cols);
            let images = &x[n0 * in_len..n1 * in_len];
            let mut col = Scratch::dirty(rows * width);
            // On this block's thread: the blocks are the parallel units.
            im2col(&phases(images, g, false), g, &taps, &mut col);
            if m == 1 {
                gemm_uninit(o, width, rows, w, false, &col, false, width, dst, false);
                return;
            }
            let mut y = Scratch::dirty(o * width);
            gemm(o, width, rows, w, false, &col, false, &mut y, false, false);
            // [O, m * oh * ow] to the block's samples, [m, O, oh * ow].
            for (i, sample) in dst.chunks_exact_mut(o * cols).enumerate() {
                copy_sample(&y, width, cols, i, sample);
            }
        })
    })
}

/// The samples per block with which the plain forward pass of `n` samples goes through
/// [`conv2d_blocks`], or `None` for the batch-wide product: one sample where its column matrix
/// has few rows or its own product is wide ([`goes_per_sample`]); otherwise blocks of about
/// [`BLOCK_COLS`] output pixels, as many blocks per thread for each thread, where that makes at
/// least two blocks per thread (smaller batches keep the batch-wide product, parallel inside
/// the GEMM). The split does not change the bits, so it may follow the thread count.
fn forward_block(g: &Geometry, n: usize) -> Option<usize> {
    if goes_per_sample(g, n) {
        return Some(1);
    }
    let threads = crate::parallel::num_threads();
    let blocks = (n * g.col_cols()).div_ceil(threads * BLOCK_COLS) * threads;
    let block = n.div_ceil(blocks.max(1));
    (block > 1 && n.div_ceil(block) >= 2 * threads).then_some(block)
}

/// [`Tensor::conv2d_grad_input`] of the `n` output gradients `gy` through batch-wide column
/// matrices, in chunks of samples: one product parallel inside the GEMM, col2im in parallel
/// over channels and blocks of samples, then the channel-major result copied into sample-major
/// order (a chunk of one sample reads its output gradient and scatters into its input gradient
/// in place, both channel-major already).
fn grad_input_columns(gy: &[f32], n: usize, w: &[f32], o: usize, g: &Geometry) -> Vec<f32> {
    let (rows, cols) = (g.col_rows(), g.col_cols());
    let plane = g.in_hw[0] * g.in_hw[1];
    let taps = g.taps();
    filled(n * g.channels * plane, |out| {
        for (n0, n1) in sample_chunks(n, rows * cols) {
            let ncols = (n1 - n0) * cols;
            let wide = wide(ncols);
            let gy_cm = channel_major(gy, o, cols, [n0, n1], wide);
            // col2im reads the rows `wide` apart (its `col.len() / rows`).
            let mut gcol = Scratch::dirty(rows * wide);
            gemm_ld(
                rows, wide, o, w, true, &gy_cm, false, wide, &mut gcol, wide, false, true,
            );
            // Units of one channel and a block of samples: a one-channel image (a grey-scale
            // generator's last layer) would otherwise leave all but one thread idle.
            let block = (COL2IM_UNIT / plane.max(1)).clamp(1, n1 - n0);
            let scatter = |gx_cm: &mut [f32]| {
                for_each_chunk_mut(gx_cm, (n1 - n0) * plane, |c, planes| {
                    for_each_chunk_mut(planes, block * plane, |j, samples| {
                        col2im_channel(&gcol, g, &taps, c, j * block, samples);
                    });
                });
            };
            if n1 - n0 == 1 {
                // One sample's channel-major planes are its input gradient already.
                scatter(zeroed(
                    &mut out[n0 * g.channels * plane..][..g.channels * plane],
                ));
            } else {
                let mut gx_cm = Scratch::zeroed(g.channels * (n1 - n0) * plane);
                scatter(&mut gx_cm);
                let ld = (n1 - n0) * plane;
                to_sample_major(&gx_cm, ld, [g.channels, plane], [n0, n1], out);
            }
        }
    })
}

/// [`Tensor::conv2d_grad_input`] of the `n` output gradients `gy` in blocks of `block` samples,
/// in parallel over blocks: each block's column matrix is one serial product, scattered into
/// its samples' planes while still in the thread's cache. The batch-wide path writes the whole
/// column matrix out to memory and reads it back for col2im, then copies the result once more
/// into sample-major order. Every column-matrix value is the batch-wide product's (its sum over
/// `o` is blocked by its length alone) and every plane's sums run in col2im's one order, so both
/// paths give the same bits (tested).
fn grad_input_blocks(
    gy: &[f32],
    n: usize,
    w: &[f32],
    o: usize,
    g: &Geometry,
    block: usize,
) -> Vec<f32> {
    let (rows, cols) = (g.col_rows(), g.col_cols());
    let plane = g.in_hw[0] * g.in_hw[1];
    let in_len = g.channels * plane;
    let mut out = vec![0.0f32; n * in_len];
    let taps = g.taps();
    for_each_chunk_mut(&mut out, block * in_len, |b, dst| {
        let (n0, n1) = (b * block, ((b + 1) * block).min(n));
        let width = (n1 - n0) * cols;
        let gy_cm;
        let gy_block = if n1 - n0 == 1 {
            // One sample's output gradient is already `[O, oh * ow]`.
            &gy[n0 * o * cols..n1 * o * cols]
        } else {
            let mut copy = Scratch::dirty(o * width);
            channel_major_into(gy, o, cols, n0, &mut copy);
            gy_cm = copy;
            &gy_cm[..]
        };
        let mut gcol = Scratch::dirty(rows * width);
        gemm(
            rows, width, o, w, true, gy_block, false, &mut gcol, false, false,
        );
        for (i, sample) in dst.chunks_exact_mut(in_len).enumerate() {
            for (c, planes) in sample.chunks_exact_mut(plane).enumerate() {
                col2im_channel(&gcol, g, &taps, c, i, planes);
            }
        }
    });
    out
}

/// Most column-matrix values a block of [`grad_input_blocks`] may hold (2 MiB of f32). At 2
/// threads (criterion and alternated runs), one sample at a time halved the time of 3-channel
/// layers (a 64x64 DCGAN's first and its generator's last: 48 rows) and took 4-12% off its
/// second layer and a 3x3 convolution at 16x16 (1-1.2 MiB per sample); blocks of 2.5 MiB
/// (dcgan28's second layer, eight samples) were level with batch-wide, and blocks of 4-8 MiB
/// (dcgan28's first transposed convolution, the 64x64 DCGAN's third and fourth layers) level or
/// slower.
const GRAD_INPUT_BLOCK_VALUES: usize = 1 << 19;

/// The samples per block with which the input gradient of `n` samples goes through
/// [`grad_input_blocks`] (the forward pass's split, [`forward_block`], where a block's column
/// matrix fits [`GRAD_INPUT_BLOCK_VALUES`]), or `None` for the batch-wide path.
fn grad_input_block(g: &Geometry, n: usize) -> Option<usize> {
    forward_block(g, n).filter(|&b| g.col_rows() * b * g.col_cols() <= GRAD_INPUT_BLOCK_VALUES)
}

/// Whether the forward product of `n` samples goes one sample at a time ([`PER_SAMPLE_ROWS`]).
fn goes_per_sample(g: &Geometry, n: usize) -> bool {
    (g.col_rows() <= PER_SAMPLE_ROWS || g.col_cols() >= PER_SAMPLE_COLS)
        && n >= PER_SAMPLE_MIN_BATCH
}

/// Adds one chunk's weight gradient, `gy_cm [o, k] . col [rows, k]^T` (the column matrix's rows
/// `ld` apart), into `total`: the first chunk's product is written into fresh memory, later
/// chunks add to it, so the sums run in chunk order.
fn add_grad_weight_chunk(
    total: &mut Option<Vec<f32>>,
    o: usize,
    rows: usize,
    k: usize,
    gy_cm: &[f32],
    col: &[f32],
    ld: usize,
) {
    match total.as_mut() {
        None => *total = Some(gemm_new_ld(o, rows, k, gy_cm, false, col, true, ld, true)),
        Some(t) => gemm_ld(o, rows, k, gy_cm, false, col, true, ld, t, rows, true, true),
    }
}

/// The sample ranges `n0..n1` a batch of `n` is processed in, for column matrices of
/// `per_sample` elements per sample.
fn sample_chunks(n: usize, per_sample: usize) -> impl Iterator<Item = (usize, usize)> {
    let step = (COL_LIMIT / per_sample.max(1)).clamp(1, n.max(1));
    (0..n).step_by(step).map(move |n0| (n0, (n0 + step).min(n)))
}

/// The column matrix `[rows, (n1 - n0) * oh * ow]` of samples `n0..n1` of `x` (`[N, C, H, W]`),
/// its rows `ld` values apart (`ld >= (n1 - n0) * oh * ow`; what lies between is unspecified).
fn batch_im2col(x: &[f32], g: &Geometry, n0: usize, n1: usize, ld: usize) -> Scratch {
    let in_len = g.channels * g.in_hw[0] * g.in_hw[1];
    let ncols = (n1 - n0) * g.col_cols();
    let phases = phases(&x[n0 * in_len..n1 * in_len], g, true);
    let mut col = Scratch::dirty(g.col_rows() * ld);
    let taps = g.taps();
    for_each_chunk_mut(&mut col, ld, |row, dst| {
        let (cols, pad) = dst.split_at_mut(ncols);
        im2col_rows(&phases, g, &taps, row, cols);
        // Products may run over the padding, as over pixels of their own (see `wide`).
        pad.fill(0.0);
    });
    col
}

/// The pixels a product over `pixels` columns runs over: from 2 to 1024 of them, rounded up to
/// a multiple of 16, the rest zero padding whose results are never read. The `gemm` crate
/// takes a row-major product's columns in panels of 16, and where there are at most 1024 of
/// them (twice its largest block) and their count is not a multiple of 16 it first copies that
/// whole operand into panels on one thread: at two threads, a PatchGAN's fourth layer on one
/// 256x256 pair (512 x 961 x 4096) took 12.3 ms as 961 columns and 9.8 ms as 976; 512 x 4 x
/// 8192 (a U-Net's innermost layers) 1.25 ms, and 0.68 ms as 16. One column goes through the
/// crate's matrix-vector route (0.49 ms; as 16, 0.68). Each column's sum is the same either
/// way, so the bits are the same.
fn wide(pixels: usize) -> usize {
    if (2..=1024).contains(&pixels) {
        pixels.next_multiple_of(16)
    } else {
        pixels
    }
}

/// The row stride of a column matrix of `pixels` columns that products run over [`wide`]ly,
/// laid out as [`transposed_ld`] for the weight gradient's transposed read.
fn wide_ld(pixels: usize) -> usize {
    transposed_ld(wide(pixels))
}

/// Samples `n0..n1` of `[N, C, HW]` data laid out channel-major: `[C, (n1 - n0) * HW]`.
/// With `ld` above `(n1 - n0) * HW`, each channel's row is that far apart, the rest zero. One
/// sample without padding is channel-major already, and is borrowed.
fn channel_major(
    x: &[f32],
    c: usize,
    hw: usize,
    [n0, n1]: [usize; 2],
    ld: usize,
) -> ChannelMajor<'_> {
    let m = n1 - n0;
    if m == 1 && ld == hw {
        return ChannelMajor::Borrowed(&x[n0 * c * hw..][..c * hw]);
    }
    let mut out = Scratch::dirty(c * ld);
    for_each_chunk_mut(&mut out, ld, |ch, dst| {
        let (line, pad) = dst.split_at_mut(m * hw);
        copy_channel(x, c, hw, n0, ch, line);
        pad.fill(0.0);
    });
    ChannelMajor::Copied(out)
}

/// What [`channel_major`] gives: the caller's data where it was laid out so, else a copy.
enum ChannelMajor<'a> {
    Borrowed(&'a [f32]),
    Copied(Scratch),
}

impl std::ops::Deref for ChannelMajor<'_> {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            ChannelMajor::Borrowed(x) => x,
            ChannelMajor::Copied(x) => x,
        }
    }
}

/// `dst` with every value set to zero, as initialised values.
fn zeroed(dst: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    dst.fill(MaybeUninit::new(0.0));
    // SAFETY: every value was just written, and `MaybeUninit<f32>` has `f32`'s layout.
    unsafe { &mut *(dst as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// [`channel_major`] into `dst` (`[C, m * HW]` for `m` samples from `n0`), on the calling thread.
fn channel_major_into(x: &[f32], c: usize, hw: usize, n0: usize, dst: &mut [f32]) {
    let m = dst.len() / (c * hw).max(1);
    for (ch, line) in dst.chunks_exact_mut(m * hw).enumerate() {
        copy_channel(x, c, hw, n0, ch, line);
    }
}

/// Channel `ch` of samples `n0..` of `[N, C, HW]` data, one after another, into `dst`.
fn copy_channel(x: &[f32], c: usize, hw: usize, n0: usize, ch: usize, dst: &mut [f32]) {
    for (i, d) in dst.chunks_exact_mut(hw).enumerate() {
        d.copy_from_slice(&x[((n0 + i) * c + ch) * hw..][..hw]);
    }
}

/// Writes channel-major `[C, m * HW]` data into samples `n0..n0 + m` of `[N, C, HW]` `out`.
fn to_sample_major(
    src: &[f32],
    ld: usize,
    [c, hw]: [usize; 2],
    [n0, n1]: [usize; 2],
    out: &mut [MaybeUninit<f32>],
) {
    let dst = &mut out[n0 * c * hw..n1 * c * hw];
    for_each_chunk_mut(dst, c * hw, |i, sample| copy_sample(src, ld, hw, i, sample));
}

/// Sample `i` of channel-major `[C, m * HW]` data, its channels `ld` apart, into `sample`
/// (`[C, HW]`), every value written.
fn copy_sample(src: &[f32], ld: usize, hw: usize, i: usize, sample: &mut [MaybeUninit<f32>]) {
    for (ch, plane) in sample.chunks_exact_mut(hw).enumerate() {
        for (d, &v) in plane.iter_mut().zip(&src[ch * ld + i * hw..][..hw]) {
            d.write(v);
        }
    }
}

/// Adds `bias[c]` to every element of channel `c` of a `[N, C, ...]` buffer.
fn add_channel_bias(out: &mut [f32], bias: &[f32], plane: usize) {
    if plane == 0 {
        return;
    }
    // Whole planes per task, about 8K values (on one thread a critic's 64 x 64 x 32 x 32
    // output took 1.7 ms).
    let planes = (8192 / plane).max(1);
    for_each_chunk_mut(out, planes * plane, |i, chunk| {
        for (j, values) in chunk.chunks_mut(plane).enumerate() {
            let b = bias[(i * planes + j) % bias.len()];
            values.iter_mut().for_each(|v| *v += b);
        }
    });
}

#[track_caller]
fn check_bias(op: &str, bias: Option<&Tensor>, channels: usize) -> Option<Vec<f32>> {
    bias.map(|b| {
        assert!(
            b.shape() == [channels],
            "{op}: bias {:?} must be [{channels}]",
            b.shape()
        );
        b.to_vec()
    })
}

impl Tensor {
    /// 2-D convolution (cross-correlation, as PyTorch): input `[N, C, H, W]`, weight
    /// `[O, C, kh, kw]`, optional bias `[O]`; output `[N, O, oh, ow]` with
    /// `oh = (H + 2 * padding - dilation * (kh - 1) - 1) / stride + 1`.
    ///
    /// ```
    /// use gantry_tensor::{Conv2dParams, Tensor};
    /// let x = Tensor::ones(&[1, 1, 4, 4]);
    /// let w = Tensor::ones(&[2, 1, 3, 3]);
    /// let y = x.conv2d(&w, None, Conv2dParams::new(1, 1));
    /// assert_eq!(y.shape(), &[1, 2, 4, 4]);
    /// assert_eq!(y.to_vec()[..4], [4., 6., 6., 4.]);
    /// ```
    ///
    /// # Panics
    /// If the shapes disagree (the message names both), the kernel does not fit, or a stride or
    /// dilation is zero.
    #[track_caller]
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, p: Conv2dParams) -> Tensor {
        let g = conv_geometry("conv2d", self.shape(), weight.shape(), &p);
        let (n, o) = (self.shape()[0], weight.shape()[0]);
        let bias = check_bias("conv2d", bias, o);
        let (x, w) = (self.as_slice(), weight.as_slice());
        let (rows, cols) = (g.col_rows(), g.col_cols());
        let mut out = if covers_whole_input(&g) {
            // [O, N] = w [O, rows] . col [rows, N], with the column matrix a plain transpose
            // of x; the product is the column path's, operand layouts included, so the same
            // bits (read through strides instead, the GEMM rounds differently).
            let col = transpose(&x, n, rows);
            transpose(&gemm_new(o, n, rows, &w, false, &col, false, true), o, n)
        } else if takes_packed(&g, n, o) {
            conv_packed::conv2d(&x, n, &w, o, &g)
        } else if takes_taps(&g, n, o) {
            conv_taps::conv2d(&x, n, &w, o, &g)
        } else if let Some(block) = forward_block(&g, n) {
            conv2d_blocks(&x, n, &w, o, &g, block)
        } else {
            conv2d_columns(&x, n, &w, o, &g, None)
        };
        if let Some(b) = bias {
            add_channel_bias(&mut out, &b, cols);
        }
        Tensor::from_vec(&[n, o, g.out_hw[0], g.out_hw[1]], out)
    }

    /// The gradient of [`Tensor::conv2d`] with respect to its input, for an input of spatial
    /// size `input_hw`, given the output gradient `self` (`[N, O, oh, ow]`) and the weight.
    /// This is also the forward pass of the transposed convolution.
    ///
    /// # Panics
    /// If the shapes disagree with a convolution of `input_hw` by `weight` with `p`.
    #[track_caller]
    pub fn conv2d_grad_input(
        &self,
        weight: &Tensor,
        input_hw: [usize; 2],
        p: Conv2dParams,
    ) -> Tensor {
        let ws = weight.shape();
        assert!(
            self.ndim() == 4 && ws.len() == 4 && self.shape()[1] == ws[0],
            "conv2d_grad_input: output gradient {:?} has {} channels, weight {ws:?} makes {}",
            self.shape(),
            self.shape().get(1).copied().unwrap_or(0),
            ws.first().copied().unwrap_or(0)
        );
        let n = self.shape()[0];
        let input = [n, ws[1], input_hw[0], input_hw[1]];
        let g = conv_geometry("conv2d_grad_input", &input, ws, &p);
        assert!(
            g.out_hw == [self.shape()[2], self.shape()[3]],
            "conv2d_grad_input: output gradient {:?} does not match input {input:?} and weight {ws:?} ({p:?})",
            self.shape()
        );
        let (gy, w) = (self.as_slice(), weight.as_slice());
        let (rows, o) = (g.col_rows(), ws[0]);
        if covers_whole_input(&g) {
            // [rows, N] = w [O, rows]^T . gy [N, O]^T: the column path's product (the same
            // bits), and since every input value has exactly one tap, col2im is a transpose.
            let gcol = gemm_new(rows, n, o, &w, true, &gy, true, true);
            return Tensor::from_vec(&input, transpose(&gcol, rows, n));
        }
        if takes_taps(&g, n, o) {
            let gx = conv_taps::conv2d_grad_input(&gy, n, &w, o, &g);
            return Tensor::from_vec(&input, gx);
        }
        let out = match grad_input_block(&g, n) {
            Some(block) => grad_input_blocks(&gy, n, &w, o, &g, block),
            None => grad_input_columns(&gy, n, &w, o, &g),
        };
        Tensor::from_vec(&input, out)
    }

    /// The gradient of [`Tensor::conv2d`] with respect to its weight (`[O, C, kh, kw]` for
    /// `kernel = [kh, kw]`), given the input `self` and the output gradient `grad_out`.
    ///
    /// # Panics
    /// If the shapes disagree with such a convolution.
    #[track_caller]
    pub fn conv2d_grad_weight(
        &self,
        grad_out: &Tensor,
        kernel: [usize; 2],
        p: Conv2dParams,
    ) -> Tensor {
        let (xs, gs) = (self.shape(), grad_out.shape());
        assert!(
            xs.len() == 4 && gs.len() == 4 && xs[0] == gs[0],
            "conv2d_grad_weight: input {xs:?} and output gradient {gs:?} must be 4-D with equal batch"
        );
        let wshape = [gs[1], xs[1], kernel[0], kernel[1]];
        let g = conv_geometry("conv2d_grad_weight", xs, &wshape, &p);
        assert!(
            g.out_hw == [gs[2], gs[3]],
            "conv2d_grad_weight: output gradient {gs:?} does not match input {xs:?} and kernel {kernel:?} ({p:?})"
        );
        let (x, gy) = (self.as_slice(), grad_out.as_slice());
        let (n, o, rows, cols) = (xs[0], gs[1], g.col_rows(), g.col_cols());
        if covers_whole_input(&g) {
            // [O, rows] = gy [O, N] . col [rows, N]^T with both laid out as the column path
            // lays them out (the same bits).
            let (gy_cm, col) = (transpose(&gy, n, o), transpose(&x, n, rows));
            let gw = gemm_new(o, rows, n, &gy_cm, false, &col, true, true);
            return Tensor::from_vec(&wshape, gw);
        }
        if takes_taps(&g, n, o) {
            let gw = conv_taps::conv2d_grad_weight(&x, n, &gy, o, &g);
            return Tensor::from_vec(&wshape, gw);
        }
        if takes_packed_grad_weight(&g, n, o) {
            let gw = conv_packed::conv2d_grad_weight(&x, n, &gy, o, &g);
            return Tensor::from_vec(&wshape, gw);
        }
        let mut total: Option<Vec<f32>> = None;
        for (n0, n1) in sample_chunks(n, rows * cols) {
            // The product reads the column matrix transposed: laid out with `transposed_ld`,
            // its rows do not evict each other from the cache (same bits, see `matmul`).
            let k = (n1 - n0) * cols;
            let ld = transposed_ld(k);
            let col = batch_im2col(&x, &g, n0, n1, ld);
            let gy_cm = channel_major(&gy, o, cols, [n0, n1], k);
            add_grad_weight_chunk(&mut total, o, rows, k, &gy_cm, &col, ld);
        }
        let total = total.unwrap_or_else(|| vec![0.0; o * rows]);
        Tensor::from_vec(&wshape, total)
    }

    /// [`Tensor::conv2d`] of `self` by `weight` (no bias) and [`Tensor::conv2d_grad_weight`] of
    /// `self` against `grad_out`, with the bits of each. Both read the column matrix of `self`;
    /// a transposed convolution's backward (`self` its output gradient, `grad_out` its input)
    /// needs both, and where the convolution goes through a batch-wide column matrix this makes
    /// that matrix once instead of twice.
    ///
    /// # Panics
    /// As the two methods: shapes that disagree (`grad_out` must have the convolution's output
    /// shape), a kernel that does not fit, a zero stride or dilation.
    #[track_caller]
    pub fn conv2d_and_grad_weight(
        &self,
        weight: &Tensor,
        grad_out: &Tensor,
        p: Conv2dParams,
    ) -> (Tensor, Tensor) {
        let g = conv_geometry("conv2d_and_grad_weight", self.shape(), weight.shape(), &p);
        let (n, o) = (self.shape()[0], weight.shape()[0]);
        let kernel = g.kernel;
        let out_shape = [n, o, g.out_hw[0], g.out_hw[1]];
        assert!(
            grad_out.shape() == out_shape,
            "conv2d_and_grad_weight: output gradient {:?} must be the convolution's output {out_shape:?}",
            grad_out.shape()
        );
        if covers_whole_input(&g)
            || goes_per_sample(&g, n)
            || takes_taps(&g, n, o)
            || takes_packed(&g, n, o)
        {
            // No batch-wide column matrix in the forward product: nothing to share.
            return (
                self.conv2d(weight, None, p),
                self.conv2d_grad_weight(grad_out, kernel, p),
            );
        }
        let (x, w, gy) = (self.as_slice(), weight.as_slice(), grad_out.as_slice());
        let mut total: Option<Vec<f32>> = None;
        let out = conv2d_columns(&x, n, &w, o, &g, Some((&gy, &mut total)));
        let wshape = [o, g.channels, kernel[0], kernel[1]];
        let total = total.unwrap_or_else(|| vec![0.0; o * g.col_rows()]);
        (
            Tensor::from_vec(&out_shape, out),
            Tensor::from_vec(&wshape, total),
        )
    }

    /// 2-D transposed convolution: input `[N, Cin, H, W]`, weight `[Cin, Cout, kh, kw]`,
    /// optional bias `[Cout]`; output `[N, Cout, oh, ow]` with
    /// `oh = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1`.
    ///
    /// ```
    /// use gantry_tensor::{ConvTranspose2dParams, Tensor};
    /// let z = Tensor::ones(&[2, 100, 1, 1]);
    /// let w = Tensor::zeros(&[100, 8, 4, 4]);
    /// let y = z.conv_transpose2d(&w, None, ConvTranspose2dParams::new(1, 0));
    /// assert_eq!(y.shape(), &[2, 8, 4, 4]); // DCGAN's first layer
    /// ```
    ///
    /// # Panics
    /// If the shapes disagree, the output would be empty, or `output_padding >= stride`.
    #[track_caller]
    pub fn conv_transpose2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        p: ConvTranspose2dParams,
    ) -> Tensor {
        let (xs, ws) = (self.shape(), weight.shape());
        assert!(
            xs.len() == 4 && ws.len() == 4 && xs[1] == ws[0],
            "conv_transpose2d: input {xs:?} has {} channels, weight {ws:?} expects {}",
            xs.get(1).copied().unwrap_or(0),
            ws.first().copied().unwrap_or(0)
        );
        assert!(
            p.output_padding[0] < p.stride[0] && p.output_padding[1] < p.stride[1],
            "conv_transpose2d: output_padding {:?} must be smaller than stride {:?}",
            p.output_padding,
            p.stride
        );
        let oh = p.out_len(0, xs[2], ws[2]);
        let ow = p.out_len(1, xs[3], ws[3]);
        let (Some(oh), Some(ow)) = (oh, ow) else {
            panic!(
                "conv_transpose2d: input {xs:?} and weight {ws:?} give an empty output with {p:?}"
            );
        };
        let bias = check_bias("conv_transpose2d", bias, ws[1]);
        let y = self.conv2d_grad_input(weight, [oh, ow], p.as_conv());
        match bias {
            None => y,
            Some(b) => {
                let mut v = y.to_vec();
                add_channel_bias(&mut v, &b, oh * ow);
                Tensor::from_vec(y.shape(), v)
            }
        }
    }

    /// The gradient of [`Tensor::conv_transpose2d`] with respect to its input, given the output
    /// gradient `self`: the convolution with the same weight.
    #[track_caller]
    pub fn conv_transpose2d_grad_input(&self, weight: &Tensor, p: ConvTranspose2dParams) -> Tensor {
        self.conv2d(weight, None, p.as_conv())
    }

    /// The gradient of [`Tensor::conv_transpose2d`] with respect to its weight
    /// (`[Cin, Cout, kh, kw]`), given its input `self` and the output gradient `grad_out`.
    #[track_caller]
    pub fn conv_transpose2d_grad_weight(
        &self,
        grad_out: &Tensor,
        kernel: [usize; 2],
        p: ConvTranspose2dParams,
    ) -> Tensor {
        grad_out.conv2d_grad_weight(self, kernel, p.as_conv())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The forward pass and the input gradient in blocks of samples give the batch-wide paths'
    /// bits, whatever the split (one sample at a time, blocks of 2 and 3 with a ragged last one,
    /// the whole batch), on a discriminator's first layer (3 channels, 4x4, stride 2), a dilated
    /// one-channel convolution, a 64-row one with an output too wide for one GEMM tile, a
    /// DCGAN's second layer (1,024 rows: a product long enough for the GEMM to block the sum),
    /// dcgan28's second (1,600 rows, 7x7 outputs), a 64x64 DCGAN's fourth (4x4 outputs) and a
    /// 3x3 convolution.
    #[test]
    fn blocks_give_the_batch_wide_bits() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let cases = [
            ([6, 3, 32, 32], [64, 3, 4, 4], Conv2dParams::new(2, 1)),
            (
                [4, 1, 13, 11],
                [5, 1, 3, 3],
                Conv2dParams {
                    stride: [1, 2],
                    padding: [2, 1],
                    dilation: [2, 1],
                },
            ),
            ([5, 4, 9, 9], [70, 4, 4, 4], Conv2dParams::new(1, 2)),
            ([4, 64, 32, 32], [128, 64, 4, 4], Conv2dParams::new(2, 1)),
            ([7, 64, 14, 14], [128, 64, 5, 5], Conv2dParams::new(2, 2)),
            ([5, 256, 8, 8], [96, 256, 4, 4], Conv2dParams::new(2, 1)),
            ([4, 24, 16, 16], [40, 24, 3, 3], Conv2dParams::new(1, 1)),
        ];
        for (xs, ws, p) in cases {
            let g = conv_geometry("test", &xs, &ws, &p);
            let x = Tensor::randn(&xs, 0.0, 1.0, &mut rng).to_vec();
            let w = Tensor::randn(&ws, 0.0, 1.0, &mut rng).to_vec();
            let gy_shape = [xs[0], ws[0], g.out_hw[0], g.out_hw[1]];
            let gy = Tensor::randn(&gy_shape, 0.0, 1.0, &mut rng).to_vec();
            let y = conv2d_columns(&x, xs[0], &w, ws[0], &g, None);
            let gx = grad_input_columns(&gy, xs[0], &w, ws[0], &g);
            assert!(y.iter().any(|&v| v != 0.0) && gx.iter().any(|&v| v != 0.0));
            for block in [1, 2, 3, xs[0]] {
                let y_blocks = conv2d_blocks(&x, xs[0], &w, ws[0], &g, block);
                assert!(
                    bits_equal(&y, &y_blocks),
                    "{xs:?} * {ws:?} in blocks of {block}: the outputs differ"
                );
                let gx_blocks = grad_input_blocks(&gy, xs[0], &w, ws[0], &g, block);
                assert!(
                    bits_equal(&gx, &gx_blocks),
                    "{xs:?} * {ws:?} in blocks of {block}: the input gradients differ"
                );
            }
        }
    }

    /// Batches of 64 go one sample at a time where a sample's product is wide or its column
    /// matrix short, in blocks where neither (dcgan28's second discriminator layer), and
    /// batch-wide when too small for two blocks per thread.
    #[test]
    fn forward_splits_follow_the_shapes() {
        let split = |xs: [usize; 4], ws: [usize; 4], p| {
            forward_block(&conv_geometry("test", &xs, &ws, &p), xs[0])
        };
        let p2 = Conv2dParams::new(2, 1);
        assert_eq!(split([64, 3, 64, 64], [64, 3, 4, 4], p2), Some(1));
        assert_eq!(split([64, 64, 32, 32], [128, 64, 4, 4], p2), Some(1));
        let d28 = split([64, 64, 14, 14], [128, 64, 5, 5], Conv2dParams::new(2, 2));
        assert!(d28.is_some_and(|b| b > 1 && b < 64), "{d28:?}");
        assert_eq!(split([2, 256, 8, 8], [512, 256, 4, 4], p2), None);
    }

    /// The input gradient goes in blocks only where a block's column matrix is small: the 64x64
    /// DCGAN's first two layers and a BigGAN-style 3x3 convolution at 16x16 one sample at a
    /// time, dcgan28's layers batch-wide.
    #[test]
    fn grad_input_splits_follow_the_shapes() {
        let split = |xs: [usize; 4], ws: [usize; 4], p| {
            grad_input_block(&conv_geometry("test", &xs, &ws, &p), xs[0])
        };
        let p2 = Conv2dParams::new(2, 1);
        assert_eq!(split([64, 64, 32, 32], [128, 64, 4, 4], p2), Some(1));
        assert_eq!(
            split([16, 128, 16, 16], [128, 128, 3, 3], Conv2dParams::new(1, 1)),
            Some(1)
        );
        assert_eq!(split([64, 3, 64, 64], [64, 3, 4, 4], p2), Some(1));
        let d28 = split([64, 64, 14, 14], [128, 64, 5, 5], Conv2dParams::new(2, 2));
        assert_eq!(d28, None);
        let g28 = split([64, 128, 7, 7], [256, 128, 5, 5], Conv2dParams::new(1, 2));
        assert_eq!(g28, None);
    }

    fn bits_equal(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    fn same_bits(a: &Tensor, b: &Tensor) -> bool {
        a.shape() == b.shape() && bits_equal(&a.to_vec(), &b.to_vec())
    }

    /// The batch-wide forward with its column matrix laid out without gaps (`ld = k`): what
    /// `conv2d_columns` computed before it took the weight gradient's padded layout.
    fn unpadded_columns_forward(
        x: &[f32],
        n: usize,
        w: &[f32],
        o: usize,
        g: &Geometry,
    ) -> Vec<f32> {
        let (rows, cols) = (g.col_rows(), g.col_cols());
        filled(n * o * cols, |out| {
            for (n0, n1) in sample_chunks(n, rows * cols) {
                let k = (n1 - n0) * cols;
                let col = batch_im2col(x, g, n0, n1, k);
                let mut y = Scratch::dirty(o * k);
                gemm(o, k, rows, w, false, &col, false, &mut y, false, true);
                to_sample_major(&y, k, [o, cols], [n0, n1], out);
            }
        })
    }

    /// `grad_input_columns` as it was before its products ran over padded widths.
    fn exact_width_grad_input(gy: &[f32], n: usize, w: &[f32], o: usize, g: &Geometry) -> Vec<f32> {
        let (rows, cols) = (g.col_rows(), g.col_cols());
        let plane = g.in_hw[0] * g.in_hw[1];
        let ncols = n * cols;
        let gy_cm = channel_major(gy, o, cols, [0, n], ncols);
        let mut gcol = vec![0.0; rows * ncols];
        gemm(
            rows, ncols, o, w, true, &gy_cm, false, &mut gcol, false, true,
        );
        let mut gx_cm = vec![0.0; g.channels * n * plane];
        for (c, planes) in gx_cm.chunks_exact_mut(n * plane).enumerate() {
            col2im_channel(&gcol, g, &g.taps(), c, 0, planes);
        }
        let mut out = vec![0.0; n * g.channels * plane];
        for (c, line) in gx_cm.chunks_exact(n * plane).enumerate() {
            for (i, src) in line.chunks_exact(plane).enumerate() {
                out[(i * g.channels + c) * plane..][..plane].copy_from_slice(src);
            }
        }
        out
    }

    /// Products over pixels rounded up to a multiple of 16 ([`wide`]) give each pixel the bits
    /// of the exact width, forward (through `conv2d_columns`) and for the input gradient
    /// (through `grad_input_columns`): a PatchGAN's stride-1 layer on one sample (11x11
    /// outputs, 121 pixels) and a strided one (15x15, 225).
    #[test]
    fn wide_products_keep_the_exact_widths_bits() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for (xs, ws, p) in [
            ([1, 8, 12, 12], [16, 8, 4, 4], Conv2dParams::new(1, 1)),
            ([1, 16, 30, 30], [8, 16, 4, 4], Conv2dParams::new(2, 1)),
        ] {
            let g = conv_geometry("test", &xs, &ws, &p);
            let (n, o) = (xs[0], ws[0]);
            assert!(
                !covers_whole_input(&g)
                    && !takes_taps(&g, n, o)
                    && forward_block(&g, n).is_none()
                    && grad_input_block(&g, n).is_none()
                    && sample_chunks(n, g.col_rows() * g.col_cols()).count() == 1
                    && wide(n * g.col_cols()) != n * g.col_cols(),
                "{xs:?} * {ws:?} no longer goes through the column paths at a padded width"
            );
            let x = Tensor::randn(&xs, 0.0, 1.0, &mut rng);
            let w = Tensor::randn(&ws, 0.0, 1.0, &mut rng);
            let y = x.conv2d(&w, None, p);
            let exact = unpadded_columns_forward(&x.to_vec(), n, &w.to_vec(), o, &g);
            assert!(bits_equal(&y.to_vec(), &exact), "{xs:?} * {ws:?}: forward");
            let gy = Tensor::randn(y.shape(), 0.0, 1.0, &mut rng);
            let gx = gy.conv2d_grad_input(&w, g.in_hw, p);
            let exact = exact_width_grad_input(&gy.to_vec(), n, &w.to_vec(), o, &g);
            assert!(
                bits_equal(&gx.to_vec(), &exact),
                "{xs:?} * {ws:?}: input gradient"
            );
        }
    }

    /// A batch of one multiplies straight into its output and scatters straight into its
    /// input gradient; each gives the bits the same sample gets in a batch of two, which goes
    /// through the copies (a 4x4 stride-2 layer on 8x8 maps, 16 output pixels per sample), and
    /// the fused forward and weight gradient give each method's bits.
    #[test]
    fn one_sample_lands_in_place_with_the_batch_bits() {
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let (xs, ws, p) = ([2, 8, 8, 8], [16, 8, 4, 4], Conv2dParams::new(2, 1));
        let g = conv_geometry("test", &[1, 8, 8, 8], &ws, &p);
        assert!(
            !covers_whole_input(&g)
                && !takes_taps(&g, 1, ws[0])
                && forward_block(&g, 1).is_none()
                && grad_input_block(&g, 1).is_none()
                && wide(g.col_cols()) == g.col_cols(),
            "a batch of one no longer goes through the column paths in place"
        );
        let pair = Tensor::randn(&xs, 0.0, 1.0, &mut rng);
        let w = Tensor::randn(&ws, 0.0, 1.0, &mut rng);
        let first = |t: &Tensor| {
            let len = t.len() / 2;
            let mut shape = t.shape().to_vec();
            shape[0] = 1;
            Tensor::from_vec(&shape, t.to_vec()[..len].to_vec())
        };
        let x = first(&pair);
        let (y, y2) = (x.conv2d(&w, None, p), pair.conv2d(&w, None, p));
        assert!(same_bits(&y, &first(&y2)), "forward");
        let gy2 = Tensor::randn(y2.shape(), 0.0, 1.0, &mut rng);
        let gy = first(&gy2);
        let (gx, gx2) = (
            gy.conv2d_grad_input(&w, g.in_hw, p),
            gy2.conv2d_grad_input(&w, g.in_hw, p),
        );
        assert!(same_bits(&gx, &first(&gx2)), "input gradient");
        assert!(y.to_vec().iter().any(|&v| v != 0.0) && gx.to_vec().iter().any(|&v| v != 0.0));
        // The fused forward and weight gradient (a transposed convolution's backward) take the
        // same in-place forward and the borrowed output gradient.
        let (yf, gwf) = x.conv2d_and_grad_weight(&w, &gy, p);
        assert!(same_bits(&yf, &y), "fused forward");
        assert!(
            same_bits(&gwf, &x.conv2d_grad_weight(&gy, g.kernel, p)),
            "fused weight gradient"
        );
    }

    /// The shared column matrix gives each product the bits of its own method: on a dcgan28
    /// generator layer's backward (5x5, stride 1), a strided one whose columns per chunk are a
    /// multiple of 256 (the padded layout), one large enough to go in several chunks, and the
    /// per-sample and whole-input shapes that share nothing.
    #[test]
    fn conv2d_and_grad_weight_give_each_methods_bits() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let cases = [
            ([8, 32, 7, 7], [16, 32, 5, 5], Conv2dParams::new(1, 2)),
            ([4, 16, 16, 16], [8, 16, 4, 4], Conv2dParams::new(2, 1)),
            // Five output channels: with four or fewer, the layer goes through taps.
            ([2, 64, 64, 64], [5, 64, 8, 8], Conv2dParams::new(1, 0)),
            ([5, 2, 28, 28], [4, 2, 5, 5], Conv2dParams::new(2, 2)),
            ([6, 8, 4, 4], [3, 8, 4, 4], Conv2dParams::new(1, 0)),
        ];
        let (mut shared, mut padded, mut chunked) = (0, false, false);
        for (xs, ws, p) in cases {
            let x = Tensor::randn(&xs, 0.0, 1.0, &mut rng);
            let w = Tensor::randn(&ws, 0.0, 1.0, &mut rng);
            let g = conv_geometry("test", &xs, &ws, &p);
            let gy = Tensor::randn(
                &[xs[0], ws[0], g.out_hw[0], g.out_hw[1]],
                0.0,
                1.0,
                &mut rng,
            );
            let shares = !covers_whole_input(&g)
                && !goes_per_sample(&g, xs[0])
                && !takes_taps(&g, xs[0], ws[0]);
            if shares {
                shared += 1;
                padded |= transposed_ld(xs[0] * g.col_cols()) != xs[0] * g.col_cols();
                chunked |= sample_chunks(xs[0], g.col_rows() * g.col_cols()).count() > 1;
            }
            let (y, gw) = x.conv2d_and_grad_weight(&w, &gy, p);
            let (y0, gw0) = (
                x.conv2d(&w, None, p),
                x.conv2d_grad_weight(&gy, g.kernel, p),
            );
            assert!(
                same_bits(&y, &y0),
                "{xs:?} * {ws:?}: the convolutions differ"
            );
            if shares {
                let unpadded = unpadded_columns_forward(&x.to_vec(), xs[0], &w.to_vec(), ws[0], &g);
                assert!(
                    bits_equal(&y.to_vec(), &unpadded),
                    "{xs:?} * {ws:?}: the padded column matrix changes the forward's bits"
                );
            }
            assert!(
                same_bits(&gw, &gw0),
                "{xs:?} * {ws:?}: the weight gradients differ"
            );
            assert!(y.to_vec().iter().any(|&v| v != 0.0) && gw.to_vec().iter().any(|&v| v != 0.0));
        }
        assert!(
            shared == 3 && padded && chunked,
            "the cases no longer exercise the shared matrix, its padded layout and its chunks"
        );
    }
}
