//! Property tests of the convolution kernels over random shapes, strides, paddings, dilations
//! and output paddings.
//!
//! Every kernel is compared with a naive `f64` reference written here from the definitions: the
//! direct 7-loop convolution and the scatter form of the transposed convolution, each with its
//! gradients. Tolerances are the classical worst-case bound for a floating-point sum of `K`
//! products, `gamma(K) * sum |terms|` with `gamma(K) = K u / (1 - K u)` and `u = 2^-24`, so a
//! pass is never luck and a wrong or missing term cannot hide below the tolerance.

use gantry_tensor::{Conv2dParams, ConvTranspose2dParams, Tensor};
mod prop_config;

use prop_config::config;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A row-major 4-D array of `f64`: the working type of the references.
#[derive(Clone, Debug)]
struct Arr4 {
    shape: [usize; 4],
    data: Vec<f64>,
}

impl Arr4 {
    /// Zeros of `shape`.
    fn zeros(shape: [usize; 4]) -> Self {
        Arr4 {
            shape,
            data: vec![0.0; shape.iter().product()],
        }
    }

    /// The values of a 4-D tensor, widened to `f64`.
    fn of(t: &Tensor) -> Self {
        let s = t.shape();
        assert_eq!(s.len(), 4, "reference arrays are 4-D, got {s:?}");
        Arr4 {
            shape: [s[0], s[1], s[2], s[3]],
            data: t.to_vec().into_iter().map(f64::from).collect(),
        }
    }

    /// The elementwise absolute value: running a reference on `|x|`, `|w|` gives the sum of the
    /// magnitudes of the terms of every output, which scales its rounding error.
    fn abs(&self) -> Self {
        Arr4 {
            shape: self.shape,
            data: self.data.iter().map(|v| v.abs()).collect(),
        }
    }

    /// The flat offset of index `i`.
    fn at(&self, i: [usize; 4]) -> usize {
        ((i[0] * self.shape[1] + i[1]) * self.shape[2] + i[2]) * self.shape[3] + i[3]
    }
}

/// `gamma(k) = k u / (1 - k u)`: the relative worst-case error of a sum of `k` products in `f32`.
fn gamma(k: usize) -> f64 {
    let ku = k as f64 * f64::from(f32::EPSILON) / 2.0;
    ku / (1.0 - ku)
}

/// `sum a_i b_i` in `f64`.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The values of a tensor as `f64`.
fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_vec().into_iter().map(f64::from).collect()
}

/// Checks `got` against the reference `want` elementwise: `|got - want| <= 2 gamma(k) mag`,
/// where `mag` holds each element's sum of term magnitudes. `what` names the quantity.
fn check_close(
    what: &str,
    got: &Tensor,
    want: &Arr4,
    mag: &Arr4,
    k: usize,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.shape(), &want.shape[..], "{}: shape", what);
    let tol = 2.0 * gamma(k);
    for (i, ((&g, &w), &m)) in got
        .to_vec()
        .iter()
        .zip(&want.data)
        .zip(&mag.data)
        .enumerate()
    {
        let err = (f64::from(g) - w).abs();
        prop_assert!(
            err <= tol * m,
            "{}: element {} is {} but the reference gives {} (error {:e} > {:e})",
            what,
            i,
            g,
            w,
            err,
            tol * m
        );
    }
    Ok(())
}

/// Output length of a convolution along one axis, from the definition.
fn conv_out_len(input: usize, kernel: usize, stride: usize, pad: usize, dil: usize) -> usize {
    (input + 2 * pad - dil * (kernel - 1) - 1) / stride + 1
}

/// Output length of a transposed convolution along one axis, from the definition.
fn conv_t_out_len(
    input: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    out_pad: usize,
) -> usize {
    (input - 1) * stride + dil * (kernel - 1) + out_pad + 1 - 2 * pad
}

/// The input position that output position `o` reads at kernel tap `k`, if inside `0..len`.
fn tap(o: usize, k: usize, stride: usize, pad: usize, dil: usize, len: usize) -> Option<usize> {
    let i = (o * stride + k * dil) as isize - pad as isize;
    (0..len as isize).contains(&i).then_some(i as usize)
}

/// The naive reference of a convolution (PyTorch's cross-correlation), its input and weight
/// gradients for the output gradient `gy`, computed in `f64` with the seven loops of the
/// definition. Returns `(y, gx, gw)`; `gy` may be `None` to skip the gradients.
fn conv2d_reference(
    x: &Arr4,
    w: &Arr4,
    bias: Option<&[f64]>,
    gy: Option<&Arr4>,
    p: &Conv2dParams,
) -> (Arr4, Arr4, Arr4) {
    let [n, c, h, wd] = x.shape;
    let [o, c2, kh, kw] = w.shape;
    assert_eq!(c, c2);
    let oh = conv_out_len(h, kh, p.stride[0], p.padding[0], p.dilation[0]);
    let ow = conv_out_len(wd, kw, p.stride[1], p.padding[1], p.dilation[1]);
    let mut y = Arr4::zeros([n, o, oh, ow]);
    let mut gx = Arr4::zeros(x.shape);
    let mut gw = Arr4::zeros(w.shape);
    for b in 0..n {
        for oc in 0..o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let yi = y.at([b, oc, oy, ox]);
                    y.data[yi] = bias.map_or(0.0, |bs| bs[oc]);
                    for ic in 0..c {
                        for ki in 0..kh {
                            let Some(iy) = tap(oy, ki, p.stride[0], p.padding[0], p.dilation[0], h)
                            else {
                                continue;
                            };
                            for kj in 0..kw {
                                let Some(ix) =
                                    tap(ox, kj, p.stride[1], p.padding[1], p.dilation[1], wd)
                                else {
                                    continue;
                                };
                                let xi = x.at([b, ic, iy, ix]);
                                let wi = w.at([oc, ic, ki, kj]);
                                y.data[yi] += x.data[xi] * w.data[wi];
                                if let Some(gy) = gy {
                                    let g = gy.data[yi];
                                    gx.data[xi] += w.data[wi] * g;
                                    gw.data[wi] += x.data[xi] * g;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    (y, gx, gw)
}

/// The naive reference of a transposed convolution (weight `[Cin, Cout, kh, kw]`) in its
/// scatter form: every input element adds `x * w` at each output position its kernel taps
/// reach. Also returns the input and weight gradients for `gy` (skipped when `None`).
fn conv_transpose2d_reference(
    x: &Arr4,
    w: &Arr4,
    bias: Option<&[f64]>,
    gy: Option<&Arr4>,
    p: &ConvTranspose2dParams,
) -> (Arr4, Arr4, Arr4) {
    let [n, cin, h, wd] = x.shape;
    let [cin2, cout, kh, kw] = w.shape;
    assert_eq!(cin, cin2);
    let oh = conv_t_out_len(
        h,
        kh,
        p.stride[0],
        p.padding[0],
        p.dilation[0],
        p.output_padding[0],
    );
    let ow = conv_t_out_len(
        wd,
        kw,
        p.stride[1],
        p.padding[1],
        p.dilation[1],
        p.output_padding[1],
    );
    let mut y = Arr4::zeros([n, cout, oh, ow]);
    if let Some(bs) = bias {
        for (i, v) in y.data.iter_mut().enumerate() {
            *v = bs[(i / (oh * ow)) % cout];
        }
    }
    let mut gx = Arr4::zeros(x.shape);
    let mut gw = Arr4::zeros(w.shape);
    for b in 0..n {
        for ic in 0..cin {
            for iy in 0..h {
                for ix in 0..wd {
                    let xi = x.at([b, ic, iy, ix]);
                    for oc in 0..cout {
                        for ki in 0..kh {
                            let Some(oy) =
                                tap(iy, ki, p.stride[0], p.padding[0], p.dilation[0], oh)
                            else {
                                continue;
                            };
                            for kj in 0..kw {
                                let Some(ox) =
                                    tap(ix, kj, p.stride[1], p.padding[1], p.dilation[1], ow)
                                else {
                                    continue;
                                };
                                let yi = y.at([b, oc, oy, ox]);
                                let wi = w.at([ic, oc, ki, kj]);
                                y.data[yi] += x.data[xi] * w.data[wi];
                                if let Some(gy) = gy {
                                    let g = gy.data[yi];
                                    gx.data[xi] += w.data[wi] * g;
                                    gw.data[wi] += x.data[xi] * g;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    (y, gx, gw)
}

/// One random convolution problem.
#[derive(Clone, Debug)]
struct ConvCase {
    batch: usize,
    in_ch: usize,
    out_ch: usize,
    in_hw: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    output_padding: [usize; 2],
    bias: bool,
    seed: u64,
}

impl ConvCase {
    fn conv(&self) -> Conv2dParams {
        Conv2dParams {
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
        }
    }

    fn conv_t(&self) -> ConvTranspose2dParams {
        ConvTranspose2dParams {
            stride: self.stride,
            padding: self.padding,
            output_padding: self.output_padding,
            dilation: self.dilation,
        }
    }

    fn rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed)
    }
}

/// Per-axis `(kernel, stride, padding, dilation, output_padding, extra size)`.
fn axis() -> impl Strategy<Value = (usize, usize, usize, usize, usize, usize)> {
    (
        1usize..=5,
        1usize..=3,
        0usize..=2,
        1usize..=2,
        0usize..3,
        0usize..=6,
    )
        .prop_map(|(k, s, p, d, op, extra)| (k, s, p, d, op % s, extra))
}

/// Random convolution problems whose kernel always fits the padded input.
fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        // From 4 samples on, a forward pass with few rows goes one sample at a time.
        1usize..=5,
        1usize..=4,
        1usize..=4,
        axis(),
        axis(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(batch, in_ch, out_ch, ah, aw, bias, seed)| {
            // The smallest input the kernel span fits once padded, plus a random margin.
            let size = |(k, _, p, d, _, extra): (usize, usize, usize, usize, usize, usize)| {
                (d * (k - 1) + 1).saturating_sub(2 * p).max(1) + extra
            };
            ConvCase {
                batch,
                in_ch,
                out_ch,
                in_hw: [size(ah), size(aw)],
                kernel: [ah.0, aw.0],
                stride: [ah.1, aw.1],
                padding: [ah.2, aw.2],
                dilation: [ah.3, aw.3],
                output_padding: [ah.4, aw.4],
                bias,
                seed,
            }
        })
}

/// Random transposed-convolution problems: the input size is raised until the output is
/// non-empty.
fn conv_t_case() -> impl Strategy<Value = ConvCase> {
    conv_case().prop_map(|mut c| {
        for a in 0..2 {
            // A transposed convolution's input is a convolution's output: keep it small.
            c.in_hw[a] = 1 + c.in_hw[a] % 6;
            // The output `span + 1 - 2 * padding` must be at least 1.
            let span = |c: &ConvCase| {
                (c.in_hw[a] - 1) * c.stride[a]
                    + c.dilation[a] * (c.kernel[a] - 1)
                    + c.output_padding[a]
            };
            while span(&c) < 2 * c.padding[a] {
                c.in_hw[a] += 1;
            }
        }
        c
    })
}

/// Random stride-1 problems of the kinds that go through taps (`conv_taps`): unit dilation,
/// padding narrower than the kernel, and either a batch of 16 or more on maps small enough that
/// at most 86% of the taps land on the input, or at most 4 output channels at any batch (with a
/// kernel of more than one tap); cases outside both are set aside (a unit test there checks the
/// rule). Output channels include 66 and 130 (jobs of whole divisors, more than one GEMM tile),
/// maps may be 1 pixel wide, kernels and padding differ between the axes.
fn tap_case() -> impl Strategy<Value = ConvCase> {
    let axis = (1usize..=5, 0usize..=4, 1usize..=7).prop_map(|(k, p, size)| (k, p % k, size));
    (
        prop::sample::select(vec![1usize, 2, 16, 17, 18]),
        1usize..=3,
        prop::sample::select(vec![1usize, 2, 3, 4, 66, 130]),
        axis.clone(),
        axis,
        any::<u64>(),
    )
        .prop_map(|(batch, in_ch, out_ch, ah, aw, seed)| {
            // The kernel must fit the padded input.
            let size = |(k, p, size): (usize, usize, usize)| {
                size.max((k + 1).saturating_sub(2 * p)).max(1)
            };
            ConvCase {
                batch,
                in_ch,
                out_ch,
                in_hw: [size(ah), size(aw)],
                kernel: [ah.0, aw.0],
                stride: [1, 1],
                padding: [ah.1, aw.1],
                dilation: [1, 1],
                output_padding: [0, 0],
                bias: false,
                seed,
            }
        })
        .prop_filter("goes through taps", |c| {
            let share = |a: usize| {
                let out = c.in_hw[a] + 2 * c.padding[a] + 1 - c.kernel[a];
                let valid: usize = (0..out)
                    .flat_map(|o| (0..c.kernel[a]).map(move |k| (o, k)))
                    .filter(|&(o, k)| tap(o, k, 1, c.padding[a], 1, c.in_hw[a]).is_some())
                    .count();
                valid as f64 / (out * c.kernel[a]) as f64
            };
            let small_maps = c.batch >= 16 && share(0) * share(1) <= 0.86;
            small_maps || (c.out_ch <= 4 && c.kernel[0] * c.kernel[1] > 1)
        })
}

/// The random input, weight, output (without bias) and output gradient of a convolution
/// problem, with the generator that made them.
fn conv_problem(case: &ConvCase) -> (ChaCha8Rng, Tensor, Tensor, Tensor, Tensor) {
    let mut rng = case.rng();
    let x = Tensor::rand_uniform(
        &[case.batch, case.in_ch, case.in_hw[0], case.in_hw[1]],
        -1.0,
        1.0,
        &mut rng,
    );
    let w = Tensor::rand_uniform(
        &[case.out_ch, case.in_ch, case.kernel[0], case.kernel[1]],
        -1.0,
        1.0,
        &mut rng,
    );
    let y = x.conv2d(&w, None, case.conv());
    let gy = Tensor::rand_uniform(y.shape(), -1.0, 1.0, &mut rng);
    (rng, x, w, y, gy)
}

/// A few random flat indices into a tensor of `len` elements.
fn some_indices(rng: &mut ChaCha8Rng, len: usize) -> Vec<usize> {
    (0..3).map(|_| rng.random_range(0..len)).collect()
}

/// Central difference of the linear functional `f` at coordinate `j` of `v`, in `f64`.
fn central_difference(v: &Arr4, j: usize, f: impl Fn(&Arr4) -> f64) -> f64 {
    let h = 1e-3;
    let (mut plus, mut minus) = (v.clone(), v.clone());
    plus.data[j] += h;
    minus.data[j] -= h;
    (f(&plus) - f(&minus)) / (2.0 * h)
}

/// Checks `grad[j]` against a finite difference `fd`, allowing the rounding of a sum of `k`
/// terms of total magnitude `mag` plus the (tiny) truncation of the `f64` difference.
fn check_fd(
    what: &str,
    j: usize,
    grad: f32,
    fd: f64,
    mag: f64,
    k: usize,
) -> Result<(), TestCaseError> {
    let tol = 2.0 * gamma(k) * mag + 1e-9 * (1.0 + mag);
    let err = (f64::from(grad) - fd).abs();
    prop_assert!(
        err <= tol,
        "{}: coordinate {} has gradient {} but the finite difference is {} (error {:e} > {:e})",
        what,
        j,
        grad,
        fd,
        err,
        tol
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    /// conv2d (with and without bias) equals the direct 7-loop definition.
    #[test]
    fn conv2d_matches_direct_loops(case in conv_case()) {
        let mut rng = case.rng();
        let p = case.conv();
        let x = Tensor::rand_uniform(&[case.batch, case.in_ch, case.in_hw[0], case.in_hw[1]], -1.0, 1.0, &mut rng);
        let w = Tensor::rand_uniform(&[case.out_ch, case.in_ch, case.kernel[0], case.kernel[1]], -1.0, 1.0, &mut rng);
        let b = case.bias.then(|| Tensor::rand_uniform(&[case.out_ch], -1.0, 1.0, &mut rng));
        let y = x.conv2d(&w, b.as_ref(), p);
        let bias = b.as_ref().map(f64s);
        let abs_bias = bias.as_ref().map(|v| v.iter().map(|b| b.abs()).collect::<Vec<_>>());
        let (want, _, _) = conv2d_reference(&Arr4::of(&x), &Arr4::of(&w), bias.as_deref(), None, &p);
        let (mag, _, _) = conv2d_reference(&Arr4::of(&x).abs(), &Arr4::of(&w).abs(), abs_bias.as_deref(), None, &p);
        check_close("conv2d y", &y, &want, &mag, case.in_ch * case.kernel[0] * case.kernel[1] + 1)?;
    }

    /// conv2d_grad_input and conv2d_grad_weight equal the reference gradients elementwise, satisfy
    /// `<conv2d(x, w), gy> = <x, grad_input(gy, w)> = <w, grad_weight(x, gy)>`, and match central
    /// finite differences of the reference loss `<conv2d_ref(x, w), gy>` at random coordinates.
    #[test]
    fn conv2d_gradients_are_adjoints(case in conv_case()) {
        let p = case.conv();
        let (mut rng, x, w, y, gy) = conv_problem(&case);
        let gx = gy.conv2d_grad_input(&w, case.in_hw, p);
        let gw = x.conv2d_grad_weight(&gy, case.kernel, p);

        let (xr, wr, gyr) = (Arr4::of(&x), Arr4::of(&w), Arr4::of(&gy));
        let (yr, gxr, gwr) = conv2d_reference(&xr, &wr, None, Some(&gyr), &p);
        let (ym, gxm, gwm) = conv2d_reference(&xr.abs(), &wr.abs(), None, Some(&gyr.abs()), &p);
        let k_x = case.out_ch * case.kernel[0] * case.kernel[1];
        let k_w = case.batch * yr.shape[2] * yr.shape[3];
        check_close("conv2d gx", &gx, &gxr, &gxm, k_x)?;
        check_close("conv2d gw", &gw, &gwr, &gwm, k_w)?;

        // The three pairings are one trilinear sum; each differs from the exact value only by
        // the rounding of its f32 factor.
        let exact = dot(&yr.data, &gyr.data);
        let bound = dot(&ym.data, &gyr.abs().data);
        let k = (case.in_ch * case.kernel[0] * case.kernel[1]).max(k_x).max(k_w);
        let tol = 2.0 * gamma(k) * bound + 1e-12;
        let pairings = [
            ("<y, gy>", dot(&f64s(&y), &gyr.data)),
            ("<x, gx>", dot(&xr.data, &f64s(&gx))),
            ("<w, gw>", dot(&wr.data, &f64s(&gw))),
        ];
        for (name, v) in pairings {
            prop_assert!((v - exact).abs() <= tol, "{} = {} but the exact pairing is {} (tol {:e})", name, v, exact, tol);
        }

        let loss_x = |xv: &Arr4| dot(&conv2d_reference(xv, &wr, None, None, &p).0.data, &gyr.data);
        let loss_w = |wv: &Arr4| dot(&conv2d_reference(&xr, wv, None, None, &p).0.data, &gyr.data);
        let (gx_v, gw_v) = (gx.to_vec(), gw.to_vec());
        for j in some_indices(&mut rng, x.len()) {
            check_fd("conv2d gx", j, gx_v[j], central_difference(&xr, j, loss_x), gxm.data[j], k_x)?;
        }
        for j in some_indices(&mut rng, w.len()) {
            check_fd("conv2d gw", j, gw_v[j], central_difference(&wr, j, loss_w), gwm.data[j], k_w)?;
        }
    }

    /// conv_transpose2d (with and without bias) equals the scatter definition, including output
    /// padding and dilation.
    #[test]
    fn conv_transpose2d_matches_scatter(case in conv_t_case()) {
        let mut rng = case.rng();
        let p = case.conv_t();
        let x = Tensor::rand_uniform(&[case.batch, case.in_ch, case.in_hw[0], case.in_hw[1]], -1.0, 1.0, &mut rng);
        let w = Tensor::rand_uniform(&[case.in_ch, case.out_ch, case.kernel[0], case.kernel[1]], -1.0, 1.0, &mut rng);
        let b = case.bias.then(|| Tensor::rand_uniform(&[case.out_ch], -1.0, 1.0, &mut rng));
        let y = x.conv_transpose2d(&w, b.as_ref(), p);
        let bias = b.as_ref().map(f64s);
        let abs_bias = bias.as_ref().map(|v| v.iter().map(|b| b.abs()).collect::<Vec<_>>());
        let (want, _, _) = conv_transpose2d_reference(&Arr4::of(&x), &Arr4::of(&w), bias.as_deref(), None, &p);
        let (mag, _, _) =
            conv_transpose2d_reference(&Arr4::of(&x).abs(), &Arr4::of(&w).abs(), abs_bias.as_deref(), None, &p);
        check_close("conv_transpose2d y", &y, &want, &mag, case.in_ch * case.kernel[0] * case.kernel[1] + 1)?;
    }

    /// The gradients of conv_transpose2d equal the reference elementwise, are adjoint to the
    /// forward pass and match central finite differences of the reference loss.
    #[test]
    fn conv_transpose2d_gradients_are_adjoints(case in conv_t_case()) {
        let mut rng = case.rng();
        let p = case.conv_t();
        let x = Tensor::rand_uniform(&[case.batch, case.in_ch, case.in_hw[0], case.in_hw[1]], -1.0, 1.0, &mut rng);
        let w = Tensor::rand_uniform(&[case.in_ch, case.out_ch, case.kernel[0], case.kernel[1]], -1.0, 1.0, &mut rng);
        let y = x.conv_transpose2d(&w, None, p);
        let gy = Tensor::rand_uniform(y.shape(), -1.0, 1.0, &mut rng);
        let gx = gy.conv_transpose2d_grad_input(&w, p);
        let gw = x.conv_transpose2d_grad_weight(&gy, case.kernel, p);

        let (xr, wr, gyr) = (Arr4::of(&x), Arr4::of(&w), Arr4::of(&gy));
        let (yr, gxr, gwr) = conv_transpose2d_reference(&xr, &wr, None, Some(&gyr), &p);
        let (ym, gxm, gwm) = conv_transpose2d_reference(&xr.abs(), &wr.abs(), None, Some(&gyr.abs()), &p);
        let k_y = case.in_ch * case.kernel[0] * case.kernel[1];
        let k_x = case.out_ch * case.kernel[0] * case.kernel[1];
        let k_w = case.batch * case.in_hw[0] * case.in_hw[1];
        check_close("conv_transpose2d gx", &gx, &gxr, &gxm, k_x)?;
        check_close("conv_transpose2d gw", &gw, &gwr, &gwm, k_w)?;

        let exact = dot(&yr.data, &gyr.data);
        let bound = dot(&ym.data, &gyr.abs().data);
        let tol = 2.0 * gamma(k_y.max(k_x).max(k_w)) * bound + 1e-12;
        let pairings = [
            ("<y, gy>", dot(&f64s(&y), &gyr.data)),
            ("<x, gx>", dot(&xr.data, &f64s(&gx))),
            ("<w, gw>", dot(&wr.data, &f64s(&gw))),
        ];
        for (name, v) in pairings {
            prop_assert!((v - exact).abs() <= tol, "{} = {} but the exact pairing is {} (tol {:e})", name, v, exact, tol);
        }

        let loss_x = |xv: &Arr4| dot(&conv_transpose2d_reference(xv, &wr, None, None, &p).0.data, &gyr.data);
        let loss_w = |wv: &Arr4| dot(&conv_transpose2d_reference(&xr, wv, None, None, &p).0.data, &gyr.data);
        let (gx_v, gw_v) = (gx.to_vec(), gw.to_vec());
        for j in some_indices(&mut rng, x.len()) {
            check_fd("conv_transpose2d gx", j, gx_v[j], central_difference(&xr, j, loss_x), gxm.data[j], k_x)?;
        }
        for j in some_indices(&mut rng, w.len()) {
            check_fd("conv_transpose2d gw", j, gw_v[j], central_difference(&wr, j, loss_w), gwm.data[j], k_w)?;
        }
    }
}

proptest! {
    #![proptest_config(config(32))]

    /// Stride-1 convolutions through taps (small padded maps, few output channels): the
    /// forward pass, both gradients, the fused forward and weight gradient and the transposed
    /// convolution equal the direct loops elementwise.
    #[test]
    fn stride_one_through_taps_matches_direct_loops(case in tap_case()) {
        let p = case.conv();
        let (_, x, w, y, gy) = conv_problem(&case);
        let (xr, wr, gyr) = (Arr4::of(&x), Arr4::of(&w), Arr4::of(&gy));
        let (yr, gxr, gwr) = conv2d_reference(&xr, &wr, None, Some(&gyr), &p);
        let (ym, gxm, gwm) = conv2d_reference(&xr.abs(), &wr.abs(), None, Some(&gyr.abs()), &p);
        let k_y = case.in_ch * case.kernel[0] * case.kernel[1];
        let k_x = case.out_ch * case.kernel[0] * case.kernel[1];
        let k_w = case.batch * yr.shape[2] * yr.shape[3];
        check_close("y", &y, &yr, &ym, k_y)?;
        check_close("gx", &gy.conv2d_grad_input(&w, case.in_hw, p), &gxr, &gxm, k_x)?;
        check_close("gw", &x.conv2d_grad_weight(&gy, case.kernel, p), &gwr, &gwm, k_w)?;
        let (y2, gw2) = x.conv2d_and_grad_weight(&w, &gy, p);
        prop_assert_eq!(y2.to_vec(), y.to_vec(), "fused forward");
        check_close("fused gw", &gw2, &gwr, &gwm, k_w)?;
        // The transposed convolution by `w` of `gy` is the input gradient.
        let t = ConvTranspose2dParams { padding: case.padding, ..ConvTranspose2dParams::default() };
        check_close("conv_transpose2d", &gy.conv_transpose2d(&w, None, t), &gxr, &gxm, k_x)?;
    }
}

/// Wide channel counts on both sides through taps (the random cases keep inputs to 3
/// channels): 130 input channels split the weight gradient's jobs and the input gradient's
/// output into blocks of 65, with 66 outputs (blocks of 66) at batch 16 and 3 outputs at
/// batch 1.
#[test]
fn wide_stride_one_layers_through_taps_match_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(43);
    for (n, o, hw, k, pad) in [(16, 66, 5, 3, 1), (1, 3, 6, 4, 1)] {
        let p = Conv2dParams::new(1, pad);
        let x = Tensor::rand_uniform(&[n, 130, hw, hw], -1.0, 1.0, &mut rng);
        let w = Tensor::rand_uniform(&[o, 130, k, k], -1.0, 1.0, &mut rng);
        let y = x.conv2d(&w, None, p);
        let gy = Tensor::rand_uniform(y.shape(), -1.0, 1.0, &mut rng);
        let (xr, wr, gyr) = (Arr4::of(&x), Arr4::of(&w), Arr4::of(&gy));
        let (yr, gxr, gwr) = conv2d_reference(&xr, &wr, None, Some(&gyr), &p);
        let (ym, gxm, gwm) = conv2d_reference(&xr.abs(), &wr.abs(), None, Some(&gyr.abs()), &p);
        check_close("y", &y, &yr, &ym, 130 * k * k).unwrap();
        let gx = gy.conv2d_grad_input(&w, [hw, hw], p);
        check_close("gx", &gx, &gxr, &gxm, o * k * k).unwrap();
        let gw = x.conv2d_grad_weight(&gy, [k, k], p);
        check_close("gw", &gw, &gwr, &gwm, n * yr.shape[2] * yr.shape[3]).unwrap();
    }
}

/// The tolerance of the properties above catches a single tap left out of a stride-1 layer on
/// a small map (here the corner tap of a 5x5 kernel, padding 2, on 7x7 maps, batch 16): the
/// test fails on a kernel that drops one term.
#[test]
fn a_missing_tap_fails_the_tolerance() {
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    let p = Conv2dParams::new(1, 2);
    let x = Tensor::rand_uniform(&[16, 3, 7, 7], -1.0, 1.0, &mut rng);
    let w = Tensor::rand_uniform(&[4, 3, 5, 5], -1.0, 1.0, &mut rng);
    let y = x.conv2d(&w, None, p);
    let (xr, wr) = (Arr4::of(&x), Arr4::of(&w));
    let (ym, _, _) = conv2d_reference(&xr.abs(), &wr.abs(), None, None, &p);
    check_close(
        "y",
        &y,
        &conv2d_reference(&xr, &wr, None, None, &p).0,
        &ym,
        75,
    )
    .unwrap();
    let mut dropped = wr.clone();
    dropped.data[0] = 0.0;
    let (wrong, _, _) = conv2d_reference(&xr, &dropped, None, None, &p);
    assert!(check_close("y", &y, &wrong, &ym, 75).is_err());
}

/// The references themselves agree with hand-computed values, so that the properties above do
/// not rest on a reference that is wrong in the same way as the kernel.
#[test]
fn references_match_hand_computed_values() {
    // 1x1x3x3 input 1..9, 2x2 kernel of ones, stride 1, padding 0: sums of 2x2 windows.
    let x = Tensor::from_vec(&[1, 1, 3, 3], (1..=9).map(|v| v as f32).collect());
    let w = Tensor::ones(&[1, 1, 2, 2]);
    let (y, _, _) = conv2d_reference(
        &Arr4::of(&x),
        &Arr4::of(&w),
        None,
        None,
        &Conv2dParams::default(),
    );
    assert_eq!(y.shape, [1, 1, 2, 2]);
    assert_eq!(y.data, vec![12.0, 16.0, 24.0, 28.0]);
    // Transposed, stride 2, 1x1 input of 2 and a 2x2 kernel 1..4: the kernel scaled by 2.
    let x = Tensor::from_vec(&[1, 1, 1, 1], vec![2.0]);
    let w = Tensor::from_vec(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let (y, _, _) = conv_transpose2d_reference(
        &Arr4::of(&x),
        &Arr4::of(&w),
        None,
        None,
        &ConvTranspose2dParams::new(2, 0),
    );
    assert_eq!(y.data, vec![2.0, 4.0, 6.0, 8.0]);
    // ... and the kernel under test agrees with both.
    let got = x.conv_transpose2d(&w, None, ConvTranspose2dParams::new(2, 0));
    assert_eq!(got.to_vec(), vec![2.0, 4.0, 6.0, 8.0]);
}

/// A DCGAN-sized layer, once: big enough that the batch runs in parallel and each GEMM is
/// blocked, which the small random cases above never reach.
#[test]
fn dcgan_sized_layer_matches_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let p = Conv2dParams::new(2, 1);
    let x = Tensor::rand_uniform(&[4, 16, 16, 16], -1.0, 1.0, &mut rng);
    let w = Tensor::rand_uniform(&[32, 16, 4, 4], -1.0, 1.0, &mut rng);
    let y = x.conv2d(&w, None, p);
    let gy = Tensor::rand_uniform(y.shape(), -1.0, 1.0, &mut rng);
    let (xr, wr, gyr) = (Arr4::of(&x), Arr4::of(&w), Arr4::of(&gy));
    let (yr, gxr, gwr) = conv2d_reference(&xr, &wr, None, Some(&gyr), &p);
    let (ym, gxm, gwm) = conv2d_reference(&xr.abs(), &wr.abs(), None, Some(&gyr.abs()), &p);
    check_close("y", &y, &yr, &ym, 16 * 16).unwrap();
    check_close(
        "gx",
        &gy.conv2d_grad_input(&w, [16, 16], p),
        &gxr,
        &gxm,
        32 * 16,
    )
    .unwrap();
    check_close(
        "gw",
        &x.conv2d_grad_weight(&gy, [4, 4], p),
        &gwr,
        &gwm,
        4 * 8 * 8,
    )
    .unwrap();
    // The transposed convolution of the same shapes is the input gradient above.
    let t = ConvTranspose2dParams::new(2, 1);
    check_close(
        "conv_transpose2d",
        &gy.conv_transpose2d(&w, None, t),
        &gxr,
        &gxm,
        32 * 16,
    )
    .unwrap();
}

/// A batch whose column matrix exceeds 2^24 elements (64 MiB), the size above which the kernels
/// process the batch in chunks of samples: the chunk offsets and the weight gradient's
/// accumulation across chunks must not change the numbers.
#[test]
fn chunked_batch_matches_reference() {
    let (n, c, o, hw, k) = (7, 128, 2, 36, 5);
    let out_hw = hw - k + 1;
    assert!(
        n * c * k * k * out_hw * out_hw > 1 << 24,
        "the batch must not fit one chunk"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let p = Conv2dParams::default();
    let x = Tensor::rand_uniform(&[n, c, hw, hw], -1.0, 1.0, &mut rng);
    let w = Tensor::rand_uniform(&[o, c, k, k], -1.0, 1.0, &mut rng);
    let y = x.conv2d(&w, None, p);
    let gy = Tensor::rand_uniform(y.shape(), -1.0, 1.0, &mut rng);
    let (xr, wr, gyr) = (Arr4::of(&x), Arr4::of(&w), Arr4::of(&gy));
    let (yr, gxr, gwr) = conv2d_reference(&xr, &wr, None, Some(&gyr), &p);
    let (ym, gxm, gwm) = conv2d_reference(&xr.abs(), &wr.abs(), None, Some(&gyr.abs()), &p);
    check_close("y", &y, &yr, &ym, c * k * k).unwrap();
    check_close(
        "gx",
        &gy.conv2d_grad_input(&w, [hw, hw], p),
        &gxr,
        &gxm,
        o * k * k,
    )
    .unwrap();
    check_close(
        "gw",
        &x.conv2d_grad_weight(&gy, [k, k], p),
        &gwr,
        &gwm,
        n * out_hw * out_hw,
    )
    .unwrap();
    // The transposed convolution runs the same chunked input-gradient path.
    let t = ConvTranspose2dParams::default();
    check_close(
        "conv_transpose2d",
        &gy.conv_transpose2d(&w, None, t),
        &gxr,
        &gxm,
        o * k * k,
    )
    .unwrap();
}

/// Kernels that cover the whole unpadded input (one output pixel per image: a DCGAN
/// discriminator's last layer, and transposed, its generator's first) run as plain matrix
/// products without column matrices; with and without bias, stride 1 and 2, both directions.
#[test]
fn kernel_over_the_whole_input_matches_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    for (n, c, o, hw, stride) in [(5, 24, 3, 4, 1), (9, 7, 16, 3, 2), (1, 1, 1, 1, 1)] {
        let p = Conv2dParams::new(stride, 0);
        let x = Tensor::rand_uniform(&[n, c, hw, hw], -1.0, 1.0, &mut rng);
        let w = Tensor::rand_uniform(&[o, c, hw, hw], -1.0, 1.0, &mut rng);
        let b = Tensor::rand_uniform(&[o], -1.0, 1.0, &mut rng);
        let y = x.conv2d(&w, Some(&b), p);
        assert_eq!(y.shape(), &[n, o, 1, 1]);
        let gy = Tensor::rand_uniform(y.shape(), -1.0, 1.0, &mut rng);
        let (xr, wr, gyr) = (Arr4::of(&x), Arr4::of(&w), Arr4::of(&gy));
        let bias: Vec<f64> = b.to_vec().into_iter().map(f64::from).collect();
        let (yr, gxr, gwr) = conv2d_reference(&xr, &wr, Some(&bias), Some(&gyr), &p);
        let abs_bias: Vec<f64> = bias.iter().map(|v| v.abs()).collect();
        let (ym, gxm, gwm) =
            conv2d_reference(&xr.abs(), &wr.abs(), Some(&abs_bias), Some(&gyr.abs()), &p);
        let taps = c * hw * hw;
        check_close("y", &y, &yr, &ym, taps + 1).unwrap();
        let gx = gy.conv2d_grad_input(&w, [hw, hw], p);
        check_close("gx", &gx, &gxr, &gxm, o).unwrap();
        check_close("gw", &x.conv2d_grad_weight(&gy, [hw, hw], p), &gwr, &gwm, n).unwrap();
        let t = ConvTranspose2dParams::new(stride, 0);
        check_close(
            "conv_transpose2d",
            &gy.conv_transpose2d(&w, None, t),
            &gxr,
            &gxm,
            o,
        )
        .unwrap();
    }
}
