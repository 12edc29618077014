//! Each generator's forward pass, written against the ONNX [`Graph`] builder.
//!
//! These mirror `models/*.rs` layer for layer and read the weights by the same names; a
//! weight the graph does not read, or one it asks for that the model lacks, is an error (see
//! [`Graph::finish`]), so the two cannot drift apart silently. The tests run each exported
//! graph and compare it with gantry's own forward.

use super::ExportError;
use super::graph::{ConvSpec, Dim, Graph, NormStats};
use crate::models::{CdcganConfig, DcganConfig, DcganVariant, MlpConfig, MlpOutput, Pix2PixConfig};

type Result<T> = std::result::Result<T, ExportError>;

/// `z` `[N, latent]` -> the MLP's samples `[N, sample_shape...]`.
pub(crate) fn mlp(g: &mut Graph, c: &MlpConfig) -> Result<()> {
    let mut x = g.input("z", &[Dim::Batch, Dim::Fixed(c.latent)]);
    let mut index = 0;
    for _ in &c.g_hidden {
        x = g.linear(&x, &index.to_string())?;
        x = if c.leaky_slope > 0.0 {
            g.leaky_relu(&x, c.leaky_slope)
        } else {
            g.relu(&x)
        };
        index += 2;
    }
    x = g.linear(&x, &index.to_string())?;
    if c.output == MlpOutput::Tanh {
        x = g.tanh(&x);
    }
    let mut dims = vec![Dim::Batch];
    dims.extend(c.sample_shape.iter().map(|&d| Dim::Fixed(d)));
    if c.sample_shape.len() > 1 {
        let mut shape = vec![-1i64];
        shape.extend(c.sample_shape.iter().map(|&d| d as i64));
        x = g.reshape(&x, &shape);
    }
    g.output(&x, "sample", &dims);
    Ok(())
}

/// The latent input of a DCGAN: `[N, nz, 1, 1]` for pytorch/examples' network, `[N, nz]`
/// for the 28x28 one.
fn latent_dims(c: &DcganConfig) -> Vec<Dim> {
    match c.variant {
        DcganVariant::Dcgan64 => vec![Dim::Batch, Dim::Fixed(c.nz), Dim::Fixed(1), Dim::Fixed(1)],
        DcganVariant::Dcgan28 => vec![Dim::Batch, Dim::Fixed(c.nz)],
    }
}

fn image_dims(c: &DcganConfig) -> [Dim; 4] {
    [
        Dim::Batch,
        Dim::Fixed(c.channels),
        Dim::Fixed(c.image_size),
        Dim::Fixed(c.image_size),
    ]
}

/// `z` -> image `[N, C, H, W]` in `[-1, 1]`.
pub(crate) fn dcgan(g: &mut Graph, c: &DcganConfig, stats: NormStats) -> Result<()> {
    let z = g.input("z", &latent_dims(c));
    let x = dcgan_net(g, &z, c, "", stats)?;
    g.output(&x, "image", &image_dims(c));
    Ok(())
}

/// `z` and the int64 class `label` `[N]` -> image.
pub(crate) fn cdcgan(g: &mut Graph, c: &CdcganConfig, stats: NormStats) -> Result<()> {
    let d = &c.dcgan;
    let z = g.input("z", &latent_dims(d));
    let label = g.input_i64("label", &[Dim::Batch]);
    let flat = match d.variant {
        DcganVariant::Dcgan64 => g.reshape(&z, &[0, -1]),
        DcganVariant::Dcgan28 => z,
    };
    let e = g.embedding(&label, "embed.weight")?;
    let mut h = g.concat(&[&flat, &e], 1);
    if d.variant == DcganVariant::Dcgan64 {
        h = g.reshape(&h, &[0, -1, 1, 1]);
    }
    let widened = DcganConfig {
        nz: d.nz + c.embed_dim,
        ..d.clone()
    };
    let x = dcgan_net(g, &h, &widened, "net.", stats)?;
    g.output(&x, "image", &image_dims(d));
    Ok(())
}

/// DCGAN's generator on `z`, its parameters named `{prefix}...`.
fn dcgan_net(
    g: &mut Graph,
    z: &str,
    c: &DcganConfig,
    prefix: &str,
    stats: NormStats,
) -> Result<String> {
    match c.variant {
        DcganVariant::Dcgan64 => {
            let blocks = c.image_size.trailing_zeros() as usize - 2;
            let mut x = g.conv_transpose(z, &format!("{prefix}0"), ConvSpec::new(1, 0))?;
            let mut i = 0;
            for _ in 0..blocks {
                x = g.batch_norm(&x, &format!("{prefix}{}", i + 1), 1e-5, 4, stats)?;
                x = g.relu(&x);
                i += 3;
                x = g.conv_transpose(&x, &format!("{prefix}{i}"), ConvSpec::new(2, 1))?;
            }
            Ok(g.tanh(&x))
        }
        DcganVariant::Dcgan28 => {
            // Keras' batch-norm epsilon, as `Generator28`.
            let eps = 1e-3;
            let slope = 0.3;
            let mut x = g.linear(z, &format!("{prefix}fc"))?;
            x = g.batch_norm(&x, &format!("{prefix}bn0"), eps, 2, stats)?;
            x = g.leaky_relu(&x, slope);
            x = g.reshape(&x, &[-1, 4 * c.ngf as i64, 7, 7]);
            x = g.conv_transpose(&x, &format!("{prefix}conv.0"), ConvSpec::new(1, 2))?;
            let up = ConvSpec {
                output_padding: 1,
                ..ConvSpec::new(2, 2)
            };
            for i in [1, 4] {
                x = g.batch_norm(&x, &format!("{prefix}conv.{i}"), eps, 4, stats)?;
                x = g.leaky_relu(&x, slope);
                x = g.conv_transpose(&x, &format!("{prefix}conv.{}", i + 2), up)?;
            }
            Ok(g.tanh(&x))
        }
    }
}

/// pix2pix's U-Net: `image` (A) `[N, C_in, H, W]` -> `translated` (B) `[N, C_out, H, W]`.
/// Dropout is written as its expectation, the identity (gantry's dropout rescales what it
/// keeps by `1 / (1 - p)`, so the mean passes through unchanged).
pub(crate) fn pix2pix(g: &mut Graph, c: &Pix2PixConfig, stats: NormStats) -> Result<()> {
    let size = Dim::Fixed(c.image_size);
    let x = g.input(
        "image",
        &[Dim::Batch, Dim::Fixed(c.in_channels), size, size],
    );
    let n = c.num_downs();
    let mut skips = Vec::with_capacity(n);
    let mut h = x;
    for i in 0..n {
        if i > 0 {
            h = g.leaky_relu(&h, 0.2);
        }
        h = g.conv(&h, &format!("down.{i}"), ConvSpec::new(2, 1))?;
        if i > 0 && i < n - 1 {
            h = g.batch_norm(&h, &format!("down_bn.{i}"), 1e-5, 4, stats)?;
        }
        skips.push(h.clone());
    }
    for i in (0..n).rev() {
        let input = if i == n - 1 {
            h
        } else {
            g.concat(&[&skips[i], &h], 1)
        };
        let r = g.relu(&input);
        h = g.conv_transpose(&r, &format!("up.{i}"), ConvSpec::new(2, 1))?;
        if i > 0 {
            h = g.batch_norm(&h, &format!("up_bn.{i}"), 1e-5, 4, stats)?;
        }
    }
    let out = g.tanh(&h);
    g.output(
        &out,
        "translated",
        &[Dim::Batch, Dim::Fixed(c.out_channels), size, size],
    );
    Ok(())
}
