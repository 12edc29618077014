//! Strategies, input generators and the proptest configuration shared by the gradient-check
//! properties.
//!
//! Shapes and parameters come from `proptest` strategies; values come from a `ChaCha8Rng`
//! seeded by the case, so that a case is one seed plus a few sizes and shrinks cheaply.

use gantry_autodiff::tensor::{Conv2dParams, ConvTranspose2dParams, Tensor};
use gantry_autodiff::{GradcheckConfig, Tape, Var, gradcheck};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, RngSeed, TestCaseError};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// A reproducible runner: `cases` cases from a fixed seed, nothing persisted between runs, and a
/// bounded shrink so that a failure is reported quickly.
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x6761_6e74_7279),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    }
}

/// Runs [`gradcheck`] and turns a disagreement into a test failure that names it.
pub fn check<F>(f: F, inputs: &[Tensor], cfg: &GradcheckConfig) -> Result<(), TestCaseError>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Var<'t>,
{
    let shapes: Vec<&[usize]> = inputs.iter().map(Tensor::shape).collect();
    match gradcheck(f, inputs, cfg) {
        Ok(0) if inputs.iter().any(|x| !x.is_empty()) => Err(TestCaseError::fail(format!(
            "gradcheck checked nothing for inputs {shapes:?}"
        ))),
        Ok(_) => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!(
            "{e} (input shapes {shapes:?})"
        ))),
    }
}

/// Shapes of rank `1..=max_rank` with every size in `1..=max_dim`.
pub fn shape(max_rank: usize, max_dim: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1..=max_dim, 1..=max_rank)
}

/// Two shapes that broadcast together: both derived from one full shape (rank 1..=4, sizes
/// 1..=4) by dropping leading axes and setting some sizes to 1. Either may end up 0-D.
pub fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    shape(4, 4)
        .prop_flat_map(|full| {
            let n = full.len();
            let ones = prop::collection::vec(any::<bool>(), n);
            (Just(full), ones.clone(), ones, 0..=n, 0..=n)
        })
        .prop_map(|(full, ones_a, ones_b, drop_a, drop_b)| {
            let derive = |ones: &[bool], drop: usize| -> Vec<usize> {
                (drop..full.len())
                    .map(|i| if ones[i] { 1 } else { full[i] })
                    .collect()
            };
            (derive(&ones_a, drop_a), derive(&ones_b, drop_b))
        })
}

/// Values drawn uniformly from `[lo, hi)`.
pub fn uniform(shape: &[usize], lo: f32, hi: f32, rng: &mut ChaCha8Rng) -> Tensor {
    Tensor::rand_uniform(shape, lo, hi, rng)
}

/// Magnitudes uniform in `[lo, hi)` with a random sign: values kept away from zero.
pub fn signed(shape: &[usize], lo: f32, hi: f32, rng: &mut ChaCha8Rng) -> Tensor {
    let n = shape.iter().product();
    let data = (0..n)
        .map(|_| {
            let m = rng.random_range(lo..hi);
            if rng.random::<bool>() { m } else { -m }
        })
        .collect();
    Tensor::from_vec(shape, data)
}

/// Values uniform in `[lo, hi)` but more than `margin` away from every point of `kinks`
/// (rejection sampling, element by element).
///
/// # Panics
/// If the kinks leave no room in the range.
pub fn away_from(
    shape: &[usize],
    lo: f32,
    hi: f32,
    kinks: &[f32],
    margin: f32,
    rng: &mut ChaCha8Rng,
) -> Tensor {
    let n = shape.iter().product();
    let data = (0..n)
        .map(|_| {
            (0..1000)
                .map(|_| rng.random_range(lo..hi))
                .find(|v| kinks.iter().all(|k| (v - k).abs() > margin))
                .expect("away_from: the kinks cover the whole range")
        })
        .collect();
    Tensor::from_vec(shape, data)
}

/// Pairwise distinct values: a shuffled grid of spacing `gap` centred on 0, each value jittered
/// by at most `gap / 10`, so any two differ by at least `0.8 * gap`.
pub fn distinct(shape: &[usize], gap: f32, rng: &mut ChaCha8Rng) -> Tensor {
    let n: usize = shape.iter().product();
    let mut ranks: Vec<usize> = (0..n).collect();
    ranks.shuffle(rng);
    let centre = (n as f32 - 1.0) / 2.0;
    let data = ranks
        .into_iter()
        .map(|k| (k as f32 - centre) * gap + rng.random_range(-gap / 10.0..=gap / 10.0))
        .collect();
    Tensor::from_vec(shape, data)
}

/// An `[N, C, ...]` input whose every channel is spread out: the `N * S` values of a channel
/// are a shuffled, jittered grid over `[-1.5, 1.5]`, scaled by `[0.8, 2)` and shifted by
/// `[-1, 1)`, so each channel's variance is at least 0.3 and batch norm is well conditioned.
///
/// # Panics
/// If a channel has fewer than 2 values.
pub fn spread_channels(shape: &[usize], rng: &mut ChaCha8Rng) -> Tensor {
    let (n, c) = (shape[0], shape[1]);
    let s: usize = shape[2..].iter().product();
    let m = n * s;
    assert!(
        m >= 2,
        "spread_channels: {shape:?} has {m} value per channel"
    );
    let mut data = vec![0.0f32; n * c * s];
    for ch in 0..c {
        let (scale, shift) = (rng.random_range(0.8..2.0), rng.random_range(-1.0..1.0));
        let mut grid: Vec<f32> = (0..m)
            .map(|k| -1.5 + 3.0 * k as f32 / (m - 1) as f32)
            .collect();
        grid.shuffle(rng);
        let jitter = 0.3 / m as f32;
        for (k, v) in grid.into_iter().enumerate() {
            let (b, i) = (k / s, k % s);
            let value = (v + rng.random_range(-jitter..=jitter)) * scale + shift;
            data[(b * c + ch) * s + i] = value;
        }
    }
    Tensor::from_vec(shape, data)
}

/// A convolution's sizes and settings, drawn within the ranges the properties cover.
#[derive(Clone, Debug)]
pub struct ConvCase {
    /// Batch size.
    pub batch: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Input height and width.
    pub input_hw: [usize; 2],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride per axis.
    pub stride: [usize; 2],
    /// Padding per axis.
    pub padding: [usize; 2],
    /// Dilation per axis.
    pub dilation: [usize; 2],
    /// Output padding per axis (transposed convolution only; always below the stride).
    pub output_padding: [usize; 2],
    /// Whether there is a bias.
    pub bias: bool,
}

impl ConvCase {
    /// The settings as a convolution's.
    pub fn conv_params(&self) -> Conv2dParams {
        Conv2dParams {
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
        }
    }

    /// The settings as a transposed convolution's.
    pub fn transpose_params(&self) -> ConvTranspose2dParams {
        ConvTranspose2dParams {
            stride: self.stride,
            padding: self.padding,
            output_padding: self.output_padding,
            dilation: self.dilation,
        }
    }

    /// `[N, Cin, H, W]`.
    pub fn input_shape(&self) -> Vec<usize> {
        vec![self.batch, self.cin, self.input_hw[0], self.input_hw[1]]
    }

    /// `[Cout, Cin, kh, kw]` for a convolution, `[Cin, Cout, kh, kw]` for a transposed one.
    pub fn weight_shape(&self, transposed: bool) -> Vec<usize> {
        let (a, b) = if transposed {
            (self.cin, self.cout)
        } else {
            (self.cout, self.cin)
        };
        vec![a, b, self.kernel[0], self.kernel[1]]
    }

    /// Whether the kernel fits (convolution) or the output is non-empty (transposed).
    fn valid(&self, transposed: bool) -> bool {
        (0..2).all(|axis| {
            let (len, k) = (self.input_hw[axis], self.kernel[axis]);
            if transposed {
                self.transpose_params().out_len(axis, len, k).is_some()
            } else {
                self.conv_params().out_len(axis, len, k).is_some()
            }
        })
    }
}

/// Convolutions with batch 1..=2, channels 1..=3, spatial sizes 1..=7, kernels 1..=4, strides
/// 1..=3, paddings 0..=2, dilations 1..=2 (each per axis) and, when `transposed`, an output
/// padding below the stride; invalid combinations are filtered out.
pub fn conv_case(transposed: bool) -> impl Strategy<Value = ConvCase> {
    let pair = |lo: usize, hi: usize| prop::array::uniform2(lo..=hi);
    (
        (1usize..=2, 1usize..=3, 1usize..=3),
        (pair(1, 7), pair(1, 4), pair(1, 3)),
        (pair(0, 2), pair(1, 2), pair(0, 2)),
        any::<bool>(),
    )
        .prop_map(
            move |(
                (batch, cin, cout),
                (input_hw, kernel, stride),
                (padding, dilation, op),
                bias,
            )| {
                let output_padding = if transposed {
                    [op[0] % stride[0], op[1] % stride[1]]
                } else {
                    [0, 0]
                };
                ConvCase {
                    batch,
                    cin,
                    cout,
                    input_hw,
                    kernel,
                    stride,
                    padding,
                    dilation,
                    output_padding,
                    bias,
                }
            },
        )
        .prop_filter("the kernel must fit", move |c| c.valid(transposed))
}
