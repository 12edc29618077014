//! `im2col` and its adjoint `col2im`: the layout change that turns a convolution into one GEMM.
//!
//! For one image `[C, H, W]`, `im2col` writes the matrix `[C * kh * kw, oh * ow]` whose column
//! `p` holds the receptive field of output pixel `p`; `col2im` scatters such a matrix back,
//! adding overlapping contributions. They are adjoint: `<im2col(x), c> = <x, col2im(c)>`.

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

    /// Where kernel tap `row` (`(c * kh + ki) * kw + kj`) reads, computed once per row.
    fn tap(&self, row: usize) -> Tap {
        let [h, w] = self.in_hw;
        let [oh, ow] = self.out_hw;
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let [ph, pw] = self.padding;
        let [dh, dw] = self.dilation;
        let (c, ki, kj) = (row / (kh * kw), (row / kw) % kh, row % kw);
        let (y_lo, y_hi) = Self::valid(oh, h, sh, ki * dh, ph);
        let (mut x_lo, mut x_hi) = Self::valid(ow, w, sw, kj * dw, pw);
        if y_lo == y_hi || x_lo == x_hi {
            // Nothing of the input is read: make both ranges empty so callers only zero.
            (x_lo, x_hi) = (0, 0);
        }
        let ix0 = if x_lo < x_hi {
            x_lo * sw + kj * dw - pw
        } else {
            0
        };
        let first = if x_lo < x_hi {
            (y_lo * sh + ki * dh - ph) * w + ix0
        } else {
            0
        };
        Tap {
            channel: c,
            y: (y_lo, if x_lo < x_hi { y_hi } else { y_lo }),
            x: (x_lo, x_hi),
            first,
            row_step: sh * w,
            col_step: sw,
        }
    }
}

/// One kernel tap's runs: output rows `y.0..y.1` each read output columns `x.0..x.1` from
/// input plane `channel`, starting at `first` (within the plane) for output row `y.0` and moving
/// `row_step` per output row and `col_step` per output column. Everything else of the tap's
/// column-matrix row is padding.
#[derive(Clone, Copy, Debug)]
struct Tap {
    channel: usize,
    y: (usize, usize),
    x: (usize, usize),
    first: usize,
    row_step: usize,
    col_step: usize,
}

/// Copies `dst.len()` values from `src` taking every `step`-th.
#[inline]
fn gather(dst: &mut [f32], src: &[f32], step: usize) {
    match step {
        1 => dst.copy_from_slice(&src[..dst.len()]),
        // Stride 2 (every downsampling layer of the GAN discriminators) gets a loop of its own
        // with the step a constant: about 15% less time in im2col in a dcgan28 step (perf).
        2 => gather_strided(dst, src, 2),
        _ => gather_strided(dst, src, step),
    }
}

#[inline(always)]
fn gather_strided(dst: &mut [f32], src: &[f32], step: usize) {
    let Some(last) = dst.len().checked_sub(1) else {
        return;
    };
    // Slicing `src` to the exact span first lets the loop run without bounds checks or a
    // division to count chunks.
    let src = &src[..last * step + 1];
    for (d, s) in dst[..last].iter_mut().zip(src.chunks_exact(step)) {
        *d = s[0];
    }
    dst[last] = src[last * step];
}

/// Adds `src` into every `step`-th value of `dst` (which spans exactly those values).
#[inline]
fn scatter_add(dst: &mut [f32], src: &[f32], step: usize) {
    let Some(last) = src.len().checked_sub(1) else {
        return;
    };
    match step {
        1 => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s;
            }
        }
        _ => {
            for (d, s) in dst[..last * step].chunks_exact_mut(step).zip(src) {
                d[0] += s;
            }
            dst[last * step] += src[last];
        }
    }
}

/// Writes row `row` of the column matrices of `samples` consecutive images of `x` (each
/// `[C, H, W]`, `in_len` values apart) side by side into `dst` (`samples * oh * ow` values).
/// Every value of `dst` is written, zeros where the receptive field falls in the padding, so
/// `dst` need not be cleared first.
pub(crate) fn im2col_rows(x: &[f32], in_len: usize, g: &Geometry, row: usize, dst: &mut [f32]) {
    let [oh, ow] = g.out_hw;
    let t = g.tap(row);
    let (x_lo, x_hi) = t.x;
    let (y_lo, y_hi) = t.y;
    let plane = g.in_hw[0] * g.in_hw[1];
    // A tap that reaches into the padding has a few zeros in every line of every image: one
    // `fill` of the whole row (a few KiB, still in cache when the lines overwrite it) costs
    // less than the several short fills per image it replaces (im2col of a 64x64 DCGAN's
    // 8x8 and 4x4 layers spent most of its time on them).
    if (y_lo, y_hi, x_lo, x_hi) != (0, oh, 0, ow) {
        dst.fill(0.0);
    }
    for (image, out) in x.chunks(in_len).zip(dst.chunks_mut(oh * ow)) {
        let image = &image[t.channel * plane..];
        let mut start = t.first;
        for line in out[y_lo * ow..y_hi * ow].chunks_exact_mut(ow) {
            gather(&mut line[x_lo..x_hi], &image[start..], t.col_step);
            start += t.row_step;
        }
    }
}

/// Writes the column matrices of the images of `x` (each `[C, H, W]`, `in_len` values apart)
/// side by side into `col`: `[C * kh * kw, images * oh * ow]`.
pub(crate) fn im2col(x: &[f32], in_len: usize, g: &Geometry, col: &mut [f32]) {
    let width = x.len() / in_len.max(1) * g.col_cols();
    for (row, dst) in col.chunks_exact_mut(width).take(g.col_rows()).enumerate() {
        im2col_rows(x, in_len, g, row, dst);
    }
}

/// Adds the rows of channel `c` of a batch-wide column matrix back into that channel's planes:
/// the adjoint of `im2col` for one channel. `col` is `[C * kh * kw, m * oh * ow]` (the column
/// matrices of `m` samples side by side) and `planes` is channel `c` of samples
/// `first..first + planes.len() / (H * W)` of them, `[.., H, W]`, added into. Each plane's sums
/// run in the same order however the samples are split, so callers may split them freely.
///
/// Walking one channel's rows end to end reads the column matrix in order; reading it one sample
/// at a time instead strides across all of it, which costs more in cache and TLB misses than
/// the additions themselves.
pub(crate) fn col2im_channel(
    col: &[f32],
    g: &Geometry,
    c: usize,
    first: usize,
    planes: &mut [f32],
) {
    let [oh, ow] = g.out_hw;
    let taps = g.kernel[0] * g.kernel[1];
    let plane = g.in_hw[0] * g.in_hw[1];
    let ncols = col.len() / g.col_rows();
    let skip = first * oh * ow;
    for row in c * taps..(c + 1) * taps {
        let t = g.tap(row);
        let (x_lo, x_hi) = t.x;
        if x_lo == x_hi {
            continue;
        }
        let span = (x_hi - x_lo - 1) * t.col_step + 1;
        let src_row = &col[row * ncols + skip..(row + 1) * ncols];
        for (src_img, dst) in src_row
            .chunks_exact(oh * ow)
            .zip(planes.chunks_exact_mut(plane))
        {
            let mut start = t.first;
            for oy in t.y.0..t.y.1 {
                let src = &src_img[oy * ow + x_lo..oy * ow + x_hi];
                scatter_add(&mut dst[start..start + span], src, t.col_step);
                start += t.row_step;
            }
        }
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
        im2col(&x, x.len(), &g, &mut col);
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
            col2im_channel(&c, &g, ch, 0, &mut whole);
            let mut split = vec![0.0; samples * plane];
            let (first, rest) = split.split_at_mut(plane);
            col2im_channel(&c, &g, ch, 0, first);
            col2im_channel(&c, &g, ch, 1, rest);
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
        im2col(&x, x.len(), &g, &mut col);
        let mut back = vec![0.0; 40];
        for (ch, planes) in back.chunks_mut(20).enumerate() {
            col2im_channel(&c, &g, ch, 0, planes);
        }
        let lhs: f32 = col.iter().zip(&c).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
    }
}
