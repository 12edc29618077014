//! `im2col` and its adjoint `col2im`: the layout change that turns a convolution into one GEMM.
//!
//! For one image `[C, H, W]`, `im2col` writes the matrix `[C * kh * kw, oh * ow]` whose column
//! `p` holds the receptive field of output pixel `p`; `col2im` scatters such a matrix back,
//! adding overlapping contributions. They are adjoint: `<im2col(x), c> = <x, col2im(c)>`.
//!
//! Both go through the input's *stride phases*: each input plane, padding included, split into
//! `sh * sw` planes by the remainders of its coordinates modulo the stride. A kernel tap then
//! reads (or, for col2im, adds into) one phase plane along `oh` whole, contiguous lines of `ow`
//! values, with no zeros to fill and no strided gathers: on the stride-2 layers of the GAN
//! discriminators the direct way spent most of its time on per-line bookkeeping, short fills
//! and scalar gathers of lines of 4 to 16 values. Splitting a plane into its phases is one pass
//! over it, against `kh * kw` passes for the taps. At unit stride im2col reads the input itself
//! (its lines are contiguous already); col2im goes through phases at every stride.
//!
//! Copies and adds of whole lines go through [`for_lines`], which gives the common line widths a
//! loop of their own with the width a constant, so that a line of 4 to 16 values is a few vector
//! moves rather than a call to `memcpy`. Neither the copies nor the order of the additions
//! change: the column matrix and every sum have the bits of the direct loops (tested).

use crate::parallel::for_each_chunk_mut;
use crate::scratch::Scratch;

/// The sizes of one 2-D convolution, input side and output side.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub channels: usize,
    pub in_hw: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub out_hw: [usize; 2],
}

impl Geometry {
    /// Rows of the column matrix: `C * kh * kw`.
    pub fn col_rows(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    /// Columns of the column matrix: `oh * ow`.
    pub fn col_cols(&self) -> usize {
        self.out_hw[0] * self.out_hw[1]
    }

    /// The output positions `o` in `0..out` whose input index `o * stride + offset - pad` lies
    /// in `0..len`, as a half-open range.
    fn valid(out: usize, len: usize, stride: usize, offset: usize, pad: usize) -> (usize, usize) {
        // o * stride + offset >= pad  <=>  o >= ceil((pad - offset) / stride)
        let lo = pad.saturating_sub(offset).div_ceil(stride);
        // o * stride + offset - pad < len  <=>  o < ceil((len + pad - offset) / stride)
        let hi = (len + pad).saturating_sub(offset).div_ceil(stride);
        (lo.min(out), hi.min(out).max(lo.min(out)))
    }

    /// Rows and columns of one phase plane: enough for every tap's `oh` lines of `ow` values,
    /// `oh + (kh - 1) * dh / sh` by `ow + (kw - 1) * dw / sw`.
    pub(crate) fn phase_hw(&self) -> [usize; 2] {
        let extent = |axis: usize| {
            self.out_hw[axis] + (self.kernel[axis] - 1) * self.dilation[axis] / self.stride[axis]
        };
        [extent(0), extent(1)]
    }

    /// Values of the phase planes of one input plane: `sh * sw` planes of [`Self::phase_hw`].
    pub fn phases_len(&self) -> usize {
        let [hp, wp] = self.phase_hw();
        self.stride[0] * self.stride[1] * hp * wp
    }

    /// Whether im2col reads the input itself rather than its phases: at unit stride every tap's
    /// lines are already contiguous runs of the input, and a pass writing the padded copy that
    /// is its one phase cost more (3x3 and 4x4 stride-1 layers, 16-20%) than the short fills
    /// of zeros it saves.
    pub fn im2col_reads_input(&self) -> bool {
        self.stride == [1, 1]
    }

    /// Where each kernel tap `(ki, kj)` reads, in row order `ki * kw + kj`: worked out once per
    /// convolution and handed to [`im2col_rows`] and [`col2im_channel`], which run once per
    /// tap and image block (the divisions cost more than copying a 4x4 output's lines).
    pub fn taps(&self) -> Vec<Tap> {
        let [h, w] = self.in_hw;
        let [oh, ow] = self.out_hw;
        let [sh, sw] = self.stride;
        let [ph, pw] = self.padding;
        let [hp, wp] = self.phase_hw();
        let [kh, kw] = self.kernel;
        (0..kh * kw)
            .map(|t| {
                // Tap (ki, kj) of output pixel (oy, ox) reads the padded input at
                // (oy * sh + ki * dh, ox * sw + kj * dw).
                let (y, x) = ((t / kw) * self.dilation[0], (t % kw) * self.dilation[1]);
                let phase = (y % sh) * sw + x % sw;
                let rows = Geometry::valid(oh, h, sh, y, ph);
                let cols = Geometry::valid(ow, w, sw, x, pw);
                let reads = rows.0 < rows.1 && cols.0 < cols.1;
                Tap {
                    phase_offset: phase * hp * wp + (y / sh) * wp + x / sw,
                    rows,
                    cols,
                    first: if reads {
                        (rows.0 * sh + y - ph) * w + cols.0 * sw + x - pw
                    } else {
                        0
                    },
                }
            })
            .collect()
    }
}

/// Where one kernel tap reads, for input channel 0 (channel `c` reads `c` planes, or `c`
/// planes' phases, further on).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tap {
    /// Where its `oh` lines of `ow` values (`wp` apart) start in the channel's phases.
    pub(crate) phase_offset: usize,
    /// The output rows and columns whose receptive field it finds in the input rather than in
    /// the padding, as half-open ranges.
    rows: (usize, usize),
    cols: (usize, usize),
    /// Where in the input plane the first of those reads, if any (at unit stride the rest of
    /// its line follows it, and the next line starts `W` further on).
    first: usize,
}

/// Calls `f(y, line, row)` for every line `a` of the phases `(py, ..)` of a plane, in order:
/// `y` is the plane row at padded row `a * sh + py` (`None` where that is padding), `line` the
/// offset of line `a` of phase `(py, 0)` (phase `(py, px)`'s is `px * hp * wp` further on), and
/// `row` scratch room for one padded row (`sw * wp` values), zero outside the plane row's span
/// ([`RowLayout`]) and left as the last call left it there.
fn for_each_phase_line(g: &Geometry, mut f: impl FnMut(Option<usize>, usize, &mut [f32])) {
    let [sh, sw] = g.stride;
    let [hp, wp] = g.phase_hw();
    // Padded rows up to 2 KiB live on the stack: the phases of every plane of a batch are
    // written one plane at a time, and a heap allocation for each cost more than the work on
    // small planes.
    let mut stack = [0.0f32; 512];
    let mut heap = Vec::new();
    let row = if sw * wp <= stack.len() {
        &mut stack[..sw * wp]
    } else {
        heap.resize(sw * wp, 0.0);
        &mut heap[..]
    };
    for py in 0..sh {
        let (a_lo, a_hi) = Geometry::valid(hp, g.in_hw[0], sh, py, g.padding[0]);
        for a in 0..hp {
            let y = (a_lo..a_hi)
                .contains(&a)
                .then(|| a * sh + py - g.padding[0]);
            f(y, (py * sw * hp + a) * wp, row);
        }
    }
}

/// How a plane's rows map onto padded rows and phase lines.
struct RowLayout {
    /// Plane row length `W`.
    w: usize,
    /// Phases along a row: `sw`.
    sw: usize,
    /// Phase line length `wp`.
    wp: usize,
    /// Values of one phase plane, `hp * wp`: the step from phase `(py, px)` to `(py, px + 1)`.
    phase: usize,
    /// Values `lo..hi` of a padded row (`sw * wp` values) are the plane row's first `hi - lo`;
    /// the rest is padding (or lies beyond what any tap reads).
    lo: usize,
    hi: usize,
}

impl RowLayout {
    fn of(g: &Geometry) -> RowLayout {
        let [hp, wp] = g.phase_hw();
        let len = g.stride[1] * wp;
        let lo = g.padding[1].min(len);
        RowLayout {
            w: g.in_hw[1],
            sw: g.stride[1],
            wp,
            phase: hp * wp,
            lo,
            hi: (g.padding[1] + g.in_hw[1]).min(len),
        }
    }
}

/// Writes the stride phases of the input plane `plane` (`[H, W]`) into `dst`
/// ([`Geometry::phases_len`] values): phase `(py, px)` holds, at `(a, b)`, the padded input's
/// value at `(a * sh + py, b * sw + px)`, zero in the padding. Each padded row is laid out once
/// and dealt out to its `sw` phase lines.
pub(crate) fn write_phases(plane: &[f32], g: &Geometry, dst: &mut [f32]) {
    let l = RowLayout::of(g);
    for_each_phase_line(g, |y, line, row| {
        let Some(y) = y else {
            for px in 0..l.sw {
                dst[line + px * l.phase..][..l.wp].fill(0.0);
            }
            return;
        };
        let src = &plane[y * l.w..][..l.hi - l.lo];
        match l.sw {
            // One phase: the padded row itself.
            1 => {
                let out = &mut dst[line..][..l.wp];
                out[..l.lo].fill(0.0);
                out[l.lo..l.hi].copy_from_slice(src);
                out[l.hi..].fill(0.0);
            }
            // Two phases: one pass over the row, evens to one, odds to the other.
            2 => {
                row[l.lo..l.hi].copy_from_slice(src);
                let (even, odd) = dst[line..].split_at_mut(l.phase);
                for ((pair, e), o) in row
                    .chunks_exact(2)
                    .zip(&mut even[..l.wp])
                    .zip(&mut odd[..l.wp])
                {
                    *e = pair[0];
                    *o = pair[1];
                }
            }
            _ => {
                row[l.lo..l.hi].copy_from_slice(src);
                for px in 0..l.sw {
                    gather(&mut dst[line + px * l.phase..][..l.wp], &row[px..], l.sw);
                }
            }
        }
    });
}

/// Adds the stride phases `phases` (as [`write_phases`] lays them out) back into the input plane
/// `plane` (`[H, W]`), dropping the padding: the adjoint of [`write_phases`]. Each padded row is
/// gathered from its `sw` phase lines, then added into the plane row in one pass.
fn add_phases(phases: &[f32], g: &Geometry, plane: &mut [f32]) {
    let l = RowLayout::of(g);
    for_each_phase_line(g, |y, line, row| {
        let Some(y) = y else { return };
        let padded: &[f32] = match l.sw {
            // One phase: the padded row itself.
            1 => &phases[line..][..l.wp],
            2 => {
                let (even, odd) = (&phases[line..][..l.wp], &phases[line + l.phase..][..l.wp]);
                for ((pair, e), o) in row.chunks_exact_mut(2).zip(even).zip(odd) {
                    pair[0] = *e;
                    pair[1] = *o;
                }
                row
            }
            _ => {
                for px in 0..l.sw {
                    scatter(&mut row[px..], &phases[line + px * l.phase..][..l.wp], l.sw);
                }
                row
            }
        };
        let dst = &mut plane[y * l.w..][..l.hi - l.lo];
        for (d, s) in dst.iter_mut().zip(&padded[l.lo..l.hi]) {
            *d += s;
        }
    });
}

/// What im2col reads: the stride phases of whole images (`[images, C, phases_len]`), or the
/// images themselves where it reads those ([`Geometry::im2col_reads_input`]).
pub(crate) enum Phases<'a> {
    Input(&'a [f32]),
    Written(Scratch),
}

impl std::ops::Deref for Phases<'_> {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            Phases::Input(x) => x,
            Phases::Written(s) => s,
        }
    }
}

/// What im2col reads of the images `x` (`[images, C, H, W]`): their stride phases, written plane
/// by plane (in parallel where `in_parallel`), or `x` itself ([`Geometry::im2col_reads_input`]).
pub(crate) fn phases<'a>(x: &'a [f32], g: &Geometry, in_parallel: bool) -> Phases<'a> {
    if g.im2col_reads_input() {
        return Phases::Input(x);
    }
    let plane = g.in_hw[0] * g.in_hw[1];
    let planes = x.len() / plane.max(1);
    let mut out = Scratch::dirty(planes * g.phases_len());
    let write = |i: usize, dst: &mut [f32]| write_phases(&x[i * plane..][..plane], g, dst);
    if in_parallel {
        for_each_chunk_mut(&mut out, g.phases_len(), write);
    } else {
        out.chunks_exact_mut(g.phases_len())
            .enumerate()
            .for_each(|(i, dst)| write(i, dst));
    }
    Phases::Written(out)
}

/// Copies `dst.len()` values from `src` taking every `step`-th (strides of 3 or more: unit
/// stride and stride 2 have loops of their own in [`write_phases`]).
#[inline]
fn gather(dst: &mut [f32], src: &[f32], step: usize) {
    for (i, d) in dst.iter_mut().enumerate() {
        *d = src[i * step];
    }
}

/// Writes `src` into every `step`-th value of `dst`, from the first.
#[inline]
fn scatter(dst: &mut [f32], src: &[f32], step: usize) {
    for (i, s) in src.iter().enumerate() {
        dst[i * step] = *s;
    }
}

/// What [`for_lines`] does to each pair of lines: `apply` for the common widths, a constant
/// the compiler turns into a few vector moves or adds, `apply_any` for the rest.
trait LineOp: Copy {
    fn apply<const N: usize>(self, dst: &mut [f32; N], src: &[f32; N]);
    fn apply_any(self, dst: &mut [f32], src: &[f32]);
}

/// Copies the source line.
#[derive(Clone, Copy)]
struct CopyLine;

impl LineOp for CopyLine {
    #[inline(always)]
    fn apply<const N: usize>(self, dst: &mut [f32; N], src: &[f32; N]) {
        *dst = *src;
    }
    #[inline(always)]
    fn apply_any(self, dst: &mut [f32], src: &[f32]) {
        dst.copy_from_slice(src);
    }
}

/// Adds the source line into the destination.
#[derive(Clone, Copy)]
struct AddLine;

impl LineOp for AddLine {
    #[inline(always)]
    fn apply<const N: usize>(self, dst: &mut [f32; N], src: &[f32; N]) {
        // Through a local copy: added in place, the lines were added one value at a time (the
        // compiler could not rule out that they overlap).
        let mut sum = *dst;
        for (d, s) in sum.iter_mut().zip(src) {
            *d += s;
        }
        *dst = sum;
    }
    #[inline(always)]
    fn apply_any(self, dst: &mut [f32], src: &[f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d += s;
        }
    }
}

/// Applies `op` to `lines` pairs of lines of `width` values, those of `dst` starting `dst_step`
/// values apart and those of `src` `src_step` apart. The common widths get a copy of the loop
/// with the width a constant, so that a line is a few vector moves or adds rather than a call.
#[inline(always)]
fn for_lines<Op: LineOp>(
    (dst, dst_step): (&mut [f32], usize),
    (src, src_step): (&[f32], usize),
    (lines, width): (usize, usize),
    op: Op,
) {
    #[inline(always)]
    fn each<const N: usize, Op: LineOp>(
        (dst, dst_step): (&mut [f32], usize),
        (src, src_step): (&[f32], usize),
        lines: usize,
        op: Op,
    ) {
        for i in 0..lines {
            let d: &mut [f32; N] = (&mut dst[i * dst_step..][..N]).try_into().unwrap();
            let s: &[f32; N] = (&src[i * src_step..][..N]).try_into().unwrap();
            op.apply(d, s);
        }
    }
    let (d, s) = ((dst, dst_step), (src, src_step));
    macro_rules! by_width {
        ($($n:literal)*) => {
            match width {
                $($n => each::<$n, Op>(d, s, lines, op),)*
                _ => {
                    let (dst, src) = (d.0, s.0);
                    for i in 0..lines {
                        op.apply_any(&mut dst[i * dst_step..][..width], &src[i * src_step..][..width]);
                    }
                }
            }
        };
    }
    // Every width of a small feature map (and of its lines clipped by the padding), and 32.
    by_width!(2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 32)
}

/// Writes row `row` of the column matrices of consecutive images side by side into `dst`
/// (`images * oh * ow` values, every one written), reading `src` as [`phases`] gives it: the
/// images' stride phases (`[images, C, phases_len]`), or at unit stride the images themselves.
/// `taps` is [`Geometry::taps`].
pub(crate) fn im2col_rows(src: &[f32], g: &Geometry, taps: &[Tap], row: usize, dst: &mut [f32]) {
    let (c, tap) = (row / taps.len(), &taps[row % taps.len()]);
    if g.im2col_reads_input() {
        return im2col_rows_of_input(src, g, c, tap, dst);
    }
    let [oh, ow] = g.out_hw;
    let wp = g.phase_hw()[1];
    let phases_len = g.phases_len();
    for (image, out) in src
        .chunks_exact(g.channels * phases_len)
        .zip(dst.chunks_exact_mut(oh * ow))
    {
        let lines = &image[c * phases_len + tap.phase_offset..];
        if wp == ow {
            out.copy_from_slice(&lines[..oh * ow]);
        } else {
            for_lines((out, ow), (lines, wp), (oh, ow), CopyLine);
        }
    }
}

/// [`im2col_rows`] at unit stride, from the images `x` (`[images, C, H, W]`): each output line
/// is one run of an input line, with zeros on either side where the tap reaches into the padding.
fn im2col_rows_of_input(x: &[f32], g: &Geometry, c: usize, tap: &Tap, dst: &mut [f32]) {
    let [h, w] = g.in_hw;
    let [oh, ow] = g.out_hw;
    let ((y_lo, y_hi), (x_lo, x_hi)) = (tap.rows, tap.cols);
    // A tap that reaches into the padding has a few zeros in every line of every image: one
    // `fill` of the whole row (a few KiB, still in cache when the lines overwrite it) costs
    // less than several short fills per image.
    if (y_lo, y_hi, x_lo, x_hi) != (0, oh, 0, ow) {
        dst.fill(0.0);
    }
    if y_lo == y_hi || x_lo == x_hi {
        return;
    }
    for (image, out) in x
        .chunks_exact(g.channels * h * w)
        .zip(dst.chunks_exact_mut(oh * ow))
    {
        let lines = &image[c * h * w + tap.first..];
        let out = &mut out[y_lo * ow + x_lo..];
        for_lines((out, ow), (lines, w), (y_hi - y_lo, x_hi - x_lo), CopyLine);
    }
}

/// Writes the column matrices of images side by side into `col` (`[C * kh * kw, images * oh *
/// ow]`), reading `src` as [`phases`] gives it (see [`im2col_rows`]).
pub(crate) fn im2col(src: &[f32], g: &Geometry, taps: &[Tap], col: &mut [f32]) {
    let image_len = if g.im2col_reads_input() {
        g.channels * g.in_hw[0] * g.in_hw[1]
    } else {
        g.channels * g.phases_len()
    };
    let width = src.len() / image_len.max(1) * g.col_cols();
    for (row, dst) in col.chunks_exact_mut(width).take(g.col_rows()).enumerate() {
        im2col_rows(src, g, taps, row, dst);
    }
}

/// Adds the rows of channel `c` of a batch-wide column matrix back into that channel's planes:
/// the adjoint of `im2col` for one channel. `col` is `[C * kh * kw, m * oh * ow]` (the column
/// matrices of `m` samples side by side) and `planes` is channel `c` of samples
/// `first..first + planes.len() / (H * W)` of them, `[.., H, W]`, added into. Each value's sum
/// runs over the taps in one order (from zero, in tap order, then added into `planes`) however
/// the samples are split, so callers may split them freely. `taps` is [`Geometry::taps`].
///
/// The taps add whole lines into the samples' stride phases, which then go back into the planes
/// in one strided pass. Walking one channel's rows end to end reads the column matrix in order;
/// reading it one sample at a time instead strides across all of it, which costs more in cache
/// and TLB misses than the additions themselves.
pub(crate) fn col2im_channel(
    col: &[f32],
    g: &Geometry,
    taps: &[Tap],
    c: usize,
    first: usize,
    planes: &mut [f32],
) {
    let [oh, ow] = g.out_hw;
    let wp = g.phase_hw()[1];
    let plane = g.in_hw[0] * g.in_hw[1];
    let phases_len = g.phases_len();
    let samples = planes.len() / plane.max(1);
    let ncols = col.len() / g.col_rows();
    let skip = first * oh * ow;
    let mut phases = Scratch::zeroed(samples * phases_len);
    for (t, tap) in taps.iter().enumerate() {
        let row = c * taps.len() + t;
        let offset = tap.phase_offset;
        let src_row = &col[row * ncols + skip..][..samples * oh * ow];
        for (src, image) in src_row
            .chunks_exact(oh * ow)
            .zip(phases.chunks_exact_mut(phases_len))
        {
            for_lines((&mut image[offset..], wp), (src, ow), (oh, ow), AddLine);
        }
    }
    for (image, dst) in phases
        .chunks_exact(phases_len)
        .zip(planes.chunks_exact_mut(plane))
    {
        add_phases(image, g, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry() -> Geometry {
        Geometry {
            channels: 2,
            in_hw: [5, 4],
            kernel: [3, 2],
            stride: [2, 1],
            padding: [1, 2],
            dilation: [1, 2],
            out_hw: [3, 5],
        }
    }

    #[test]
    fn im2col_reads_the_receptive_field() {
        let g = geometry();
        let x: Vec<f32> = (0..40).map(|i| i as f32 + 1.0).collect();
        let mut col = vec![f32::NAN; g.col_rows() * g.col_cols()];
        im2col(&phases(&x, &g, false), &g, &g.taps(), &mut col);
        for c in 0..2 {
            for ki in 0..3 {
                for kj in 0..2 {
                    for oy in 0..3 {
                        for ox in 0..5 {
                            let iy = (oy * 2 + ki) as isize - 1;
                            let ix = (ox + kj * 2) as isize - 2;
                            let want = if (0..5).contains(&iy) && (0..4).contains(&ix) {
                                x[c * 20 + iy as usize * 4 + ix as usize]
                            } else {
                                0.0
                            };
                            let row = (c * 3 + ki) * 2 + kj;
                            assert_eq!(col[row * 15 + oy * 5 + ox], want);
                        }
                    }
                }
            }
        }
    }

    /// Geometries whose output lines take every specialised width and some that are not, each
    /// at strides 1 to 3, with dilation and padding as wide as the kernel (so that lines clipped
    /// by the padding take other widths too).
    fn many_geometries() -> Vec<Geometry> {
        let mut out = Vec::new();
        for ow in (1usize..=17).chain([31, 32, 33]) {
            for (i, (k, s, p, d)) in [(4, 2, 1, 1), (3, 1, 1, 1), (5, 2, 2, 1), (2, 3, 2, 2)]
                .into_iter()
                .enumerate()
            {
                // The narrowest input with `ow` outputs, plus up to `s - 1` columns no tap reads.
                let w = ((ow - 1) * s + d * (k - 1) + 1)
                    .saturating_sub(2 * p)
                    .max(1)
                    + ow % s;
                let (kh, sh, ph) = [(3, 1, 1), (4, 2, 1), (1, 3, 0)][(ow + i) % 3];
                let h = 3 + (ow + i) % 5;
                let oh = (h + 2 * ph - kh) / sh + 1;
                let ow = (w + 2 * p - d * (k - 1) - 1) / s + 1;
                out.push(Geometry {
                    channels: 1 + (ow + i) % 3,
                    in_hw: [h, w],
                    kernel: [kh, k],
                    stride: [sh, s],
                    padding: [ph, p],
                    dilation: [1, d],
                    out_hw: [oh, ow],
                });
            }
        }
        out
    }

    /// Input index along one axis read by output `o` through tap `k`, if not padding.
    fn source(o: usize, k: usize, g: &Geometry, axis: usize) -> Option<usize> {
        (o * g.stride[axis] + k * g.dilation[axis])
            .checked_sub(g.padding[axis])
            .filter(|&i| i < g.in_hw[axis])
    }

    /// The column matrix of `images` images `x` and the col2im of `c`, by loops straight from
    /// the definition: col2im adds each value into its input from zero, in tap order.
    fn direct_loops(x: &[f32], c: &[f32], g: &Geometry, images: usize) -> (Vec<f32>, Vec<f32>) {
        let [h, w] = g.in_hw;
        let [oh, ow] = g.out_hw;
        let [kh, kw] = g.kernel;
        let in_len = g.channels * h * w;
        let ncols = images * oh * ow;
        let mut col = vec![0.0f32; g.col_rows() * ncols];
        let mut back = vec![0.0f32; images * in_len];
        for row in 0..g.col_rows() {
            let (ch, ki, kj) = (row / (kh * kw), (row / kw) % kh, row % kw);
            for n in 0..images {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let at = row * ncols + (n * oh + oy) * ow + ox;
                        if let Some((iy, ix)) = source(oy, ki, g, 0).zip(source(ox, kj, g, 1)) {
                            let i = n * in_len + (ch * h + iy) * w + ix;
                            back[i] += c[at];
                            col[at] = x[i];
                        }
                    }
                }
            }
        }
        (col, back)
    }

    /// im2col (into a NaN-filled matrix) and col2im (plane by plane) of `images` images.
    fn ours(x: &[f32], c: &[f32], g: &Geometry, images: usize) -> (Vec<f32>, Vec<f32>) {
        let [h, w] = g.in_hw;
        let mut col = vec![f32::NAN; g.col_rows() * images * g.col_cols()];
        im2col(&phases(x, g, false), g, &g.taps(), &mut col);
        let in_len = g.channels * h * w;
        let mut back = vec![0.0f32; images * in_len];
        for ch in 0..g.channels {
            let mut planes = vec![0.0f32; images * h * w];
            col2im_channel(c, g, &g.taps(), ch, 0, &mut planes);
            for (n, plane) in planes.chunks_exact(h * w).enumerate() {
                back[n * in_len + ch * h * w..][..h * w].copy_from_slice(plane);
            }
        }
        (col, back)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }

    fn inputs(g: &Geometry, images: usize) -> (Vec<f32>, Vec<f32>) {
        let x_len = images * g.channels * g.in_hw[0] * g.in_hw[1];
        let x = (0..x_len).map(|i| i as f32 + 1.0).collect();
        let c = (0..g.col_rows() * images * g.col_cols())
            .map(|i| ((i * 7919) % 103) as f32 * 0.37 - 19.0)
            .collect();
        (x, c)
    }

    /// im2col and col2im of several images against the direct loops, bit for bit, on lines of
    /// every specialised width and some others, at strides 1 to 3.
    #[test]
    fn im2col_and_col2im_match_direct_loops() {
        let geometries = many_geometries();
        let widths: std::collections::BTreeSet<usize> =
            geometries.iter().map(|g| g.out_hw[1]).collect();
        assert!(
            (2..=16).chain([32]).all(|w| widths.contains(&w)) && widths.contains(&17),
            "the geometries no longer cover every specialised line width: {widths:?}"
        );
        for g in geometries {
            let images = 3;
            let (x, c) = inputs(&g, images);
            let (col, back) = ours(&x, &c, &g, images);
            let (want_col, want_back) = direct_loops(&x, &c, &g, images);
            assert_eq!(bits(&col), bits(&want_col), "{g:?}: im2col");
            assert_eq!(bits(&back), bits(&want_back), "{g:?}: col2im");
        }
    }

    /// The negative control: with the padding one less than the loops assume, both differ.
    #[test]
    fn direct_loops_see_a_shifted_window() {
        for g in many_geometries().into_iter().filter(|g| g.padding[1] > 0) {
            let (x, c) = inputs(&g, 2);
            let (want_col, want_back) = direct_loops(&x, &c, &g, 2);
            let shifted = Geometry {
                padding: [g.padding[0], g.padding[1] - 1],
                ..g
            };
            let (col, back) = ours(&x, &c, &shifted, 2);
            assert_ne!(bits(&col), bits(&want_col), "{g:?}: im2col");
            assert_ne!(bits(&back), bits(&want_back), "{g:?}: col2im");
        }
    }

    #[test]
    fn col2im_split_by_samples_gives_the_same_bits() {
        let g = geometry();
        let samples = 3;
        let c: Vec<f32> = (0..g.col_rows() * g.col_cols() * samples)
            .map(|i| ((i * 7919) % 101) as f32 * 0.37 - 18.0)
            .collect();
        let plane = 20;
        for ch in 0..2 {
            let mut whole = vec![0.0; samples * plane];
            col2im_channel(&c, &g, &g.taps(), ch, 0, &mut whole);
            let mut split = vec![0.0; samples * plane];
            let (first, rest) = split.split_at_mut(plane);
            col2im_channel(&c, &g, &g.taps(), ch, 0, first);
            col2im_channel(&c, &g, &g.taps(), ch, 1, rest);
            assert_eq!(whole, split, "channel {ch}");
            assert!(
                whole[2 * plane..].iter().any(|&v| v != 0.0),
                "the last sample is written"
            );
        }
    }

    #[test]
    fn col2im_is_the_adjoint() {
        let g = geometry();
        let x: Vec<f32> = (0..40).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        let c: Vec<f32> = (0..g.col_rows() * g.col_cols())
            .map(|i| ((i * 5) % 13) as f32 - 6.0)
            .collect();
        let mut col = vec![0.0; c.len()];
        im2col(&phases(&x, &g, false), &g, &g.taps(), &mut col);
        let mut back = vec![0.0; 40];
        for (ch, planes) in back.chunks_mut(20).enumerate() {
            col2im_channel(&c, &g, &g.taps(), ch, 0, planes);
        }
        let lhs: f32 = col.iter().zip(&c).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
    }
}
