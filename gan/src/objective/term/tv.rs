//! Total variation of the generator's output (CAAE's smoothness term): the mean absolute
//! difference of vertically adjacent pixels plus that of horizontally adjacent ones,
//! `mean |x[.., i+1, j] - x[.., i, j]| + mean |x[.., i, j+1] - x[.., i, j]|`, over
//! `[N, C, H, W]` images. It discourages the speckle and ghosting of a generator trained
//! on few images. (CAAE's reference code sums squared differences, over the image side and
//! the batch; absolute differences are the classic total variation, which smooths without
//! blurring edges as much, and means keep the weight independent of batch and image size.)

use super::{Term, TermEntry};
use crate::error::Result;
use crate::models::Gan;
use crate::objective::GContext;
use gantry_autodiff::Var;

/// Registration.
pub const ENTRY: TermEntry = TermEntry {
    name: "loss_g_tv",
    about: "total variation of G's images in G's loss: mean |vertical| + mean |horizontal| neighbour differences (CAAE)",
    build: || Box::new(TotalVariation),
};

struct TotalVariation;

impl Term for TotalVariation {
    fn check(&self, gan: &dyn Gan) -> std::result::Result<(), String> {
        let config = gan.config();
        if config.sample_shape().len() != 3 {
            return Err(format!(
                "{} makes samples of shape {:?}, not images; total variation needs [C, H, W] images",
                config.kind(),
                config.sample_shape()
            ));
        }
        Ok(())
    }

    fn generator<'t>(&self, cx: &GContext<'_, 't>) -> Result<Option<Var<'t>>> {
        Ok(Some(total_variation(cx.fake)))
    }
}

/// The total variation of `x` (`[N, C, H, W]`, at least 2x2) as the module doc defines it.
fn total_variation(x: Var<'_>) -> Var<'_> {
    let s = x.shape();
    let (h, w) = (s[2], s[3]);
    let dy = x.slice_axis(2, 1, h).sub(x.slice_axis(2, 0, h - 1));
    let dx = x.slice_axis(3, 1, w).sub(x.slice_axis(3, 0, w - 1));
    dy.abs().mean().add(dx.abs().mean())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_autodiff::Tape;
    use gantry_tensor::Tensor;

    #[test]
    fn hand_computed_on_a_tiny_batch() {
        // One 2x3 image:   1 2 4
        //                  0 2 7
        // vertical |diffs|: 1 0 3 -> mean 4/3; horizontal: 1 2, 2 5 -> mean 10/4.
        let tape = Tape::new();
        let x = tape.leaf(Tensor::from_vec(
            &[1, 1, 2, 3],
            vec![1.0, 2.0, 4.0, 0.0, 2.0, 7.0],
        ));
        let tv = total_variation(x);
        let want = 4.0 / 3.0 + 10.0 / 4.0;
        assert!(
            (tv.value().item() - want).abs() < 1e-6,
            "{}",
            tv.value().item()
        );
        // The top-left pixel (1) is above a 0, d|0 - x|/dx = +1, over 3 vertical pairs; left
        // of a 2, d|2 - x|/dx = -1, over 4 horizontal pairs.
        let g = tv.backward().get(x).unwrap().to_vec();
        assert!((g[0] - (1.0 / 3.0 - 1.0 / 4.0)).abs() < 1e-6, "{g:?}");
        // A flat image has none.
        let flat = tape.constant(Tensor::full(&[2, 3, 4, 4], 0.5));
        assert_eq!(total_variation(flat).value().item(), 0.0);
    }
}
