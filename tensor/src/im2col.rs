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

    /// Calls `f(out_y, in_row_start, x_lo, x_hi, in_x0)` for each output row of kernel tap
    /// `row` (`(c * kh + ki) * kw + kj`) whose input row exists: output columns `x_lo..x_hi`
    /// read input columns `in_x0 + (ox - x_lo) * stride_x` of the input row starting at
    /// `in_row_start` in the `[C, H, W]` image.
    fn for_each_run(&self, row: usize, mut f: impl FnMut(usize, usize, usize, usize, usize)) {
        let [h, w] = self.in_hw;
        let [oh, ow] = self.out_hw;
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let [ph, pw] = self.padding;
        let [dh, dw] = self.dilation;
        let (c, ki, kj) = (row / (kh * kw), (row / kw) % kh, row % kw);
        let (y_lo, y_hi) = Self::valid(oh, h, sh, ki * dh, ph);
        let (x_lo, x_hi) = Self::valid(ow, w, sw, kj * dw, pw);
        if x_lo == x_hi {
            return;
        }
        let ix0 = x_lo * sw + kj * dw - pw;
        for oy in y_lo..y_hi {
            let iy = oy * sh + ki * dh - ph;
            f(oy, c * h * w + iy * w, x_lo, x_hi, ix0);
        }
    }
}

/// Writes row `row` of the column matrix of one image `x` (`[C, H, W]`) into `dst`
/// (`oh * ow` values), zeros where the receptive field falls in the padding.
pub(crate) fn im2col_row(x: &[f32], g: &Geometry, row: usize, dst: &mut [f32]) {
    let ow = g.out_hw[1];
    let sw = g.stride[1];
    dst.fill(0.0);
    g.for_each_run(row, |oy, in_row, x_lo, x_hi, ix0| {
        let out = &mut dst[oy * ow + x_lo..oy * ow + x_hi];
        let src = &x[in_row + ix0..];
        if sw == 1 {
            out.copy_from_slice(&src[..out.len()]);
        } else {
            for (i, d) in out.iter_mut().enumerate() {
                *d = src[i * sw];
            }
        }
    });
}

/// Writes the whole column matrix `[C * kh * kw, oh * ow]` of one image `x` into `col`.
#[cfg(test)]
pub(crate) fn im2col(x: &[f32], g: &Geometry, col: &mut [f32]) {
    let cols = g.col_cols();
    for (row, dst) in col.chunks_mut(cols).take(g.col_rows()).enumerate() {
        im2col_row(x, g, row, dst);
    }
}

/// Adds a column matrix back into one image `x` (`[C, H, W]`): the adjoint of `im2col`.
/// Row `r` of the matrix is `col[r * ld..][..oh * ow]`, so the matrix may be one sample's
/// block of columns in a wider, batch-wide matrix of leading dimension `ld`.
pub(crate) fn col2im(col: &[f32], ld: usize, g: &Geometry, x: &mut [f32]) {
    let ow = g.out_hw[1];
    let sw = g.stride[1];
    for row in 0..g.col_rows() {
        let src_row = &col[row * ld..];
        g.for_each_run(row, |oy, in_row, x_lo, x_hi, ix0| {
            let src = &src_row[oy * ow + x_lo..oy * ow + x_hi];
            let dst = &mut x[in_row + ix0..];
            if sw == 1 {
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += s;
                }
            } else {
                for (i, s) in src.iter().enumerate() {
                    dst[i * sw] += s;
                }
            }
        });
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
        im2col(&x, &g, &mut col);
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
    fn col2im_is_the_adjoint() {
        let g = geometry();
        let x: Vec<f32> = (0..40).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        let c: Vec<f32> = (0..g.col_rows() * g.col_cols())
            .map(|i| ((i * 5) % 13) as f32 - 6.0)
            .collect();
        let mut col = vec![0.0; c.len()];
        im2col(&x, &g, &mut col);
        let mut back = vec![0.0; 40];
        col2im(&c, g.col_cols(), &g, &mut back);
        let lhs: f32 = col.iter().zip(&c).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
    }
}
