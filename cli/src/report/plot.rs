//! Training curves as inline SVG, drawn with plotters' SVG backend.
//!
//! Plotters is built without its font features: the SVG backend writes every label as a
//! `<text>` element for the browser to lay out, and only needs a rough size estimate (its
//! built-in one) to place them. So the axes, ticks and legend are real, selectable text.

use super::load::Run;
use anyhow::{Result, anyhow};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Size of one plot in SVG pixels; the page scales it to the column width.
const SIZE: (u32, u32) = (640, 400);

/// Height of the legend's strip under the chart.
const LEGEND_HEIGHT: u32 = 34;

/// Distinguishable under the common colour-vision deficiencies (Okabe and Ito's palette).
const COLOURS: [RGBColor; 4] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
];

/// Past this many points the markers would hide the line, so only the line is drawn.
const MARKERS_UP_TO: usize = 60;

/// One plot: which metrics it draws, against which axis.
pub struct Spec {
    /// Heading inside the SVG.
    pub title: &'static str,
    /// Vertical axis description.
    pub y_desc: &'static str,
    /// A fixed vertical range (probabilities), or `None` to fit the data.
    pub y_range: Option<(f64, f64)>,
    /// `(metrics.jsonl key, legend text)` per series.
    pub series: Vec<(&'static str, &'static str)>,
    /// What the plot shows, for the caption under it.
    pub caption: &'static str,
}

/// The plots of a run: the players' losses, (for pix2pix) the generator's loss with its L1
/// term, which is about a hundred times larger and would flatten the others, and the
/// discriminator's outputs.
pub fn specs(run: &Run) -> Vec<Spec> {
    let pix2pix = !run.series("loss_g_l1").is_empty();
    let mut specs = Vec::new();
    if pix2pix {
        specs.push(Spec {
            title: "Adversarial losses",
            y_desc: "loss",
            y_range: None,
            series: vec![
                ("loss_d", "loss_d (discriminator)"),
                ("loss_g_gan", "loss_g_gan (generator, GAN term)"),
            ],
            caption: "The discriminator's loss and the GAN term of the generator's loss.",
        });
        specs.push(Spec {
            title: "Generator loss with L1",
            y_desc: "loss",
            y_range: None,
            series: vec![
                ("loss_g", "loss_g (GAN + L1)"),
                ("loss_g_l1", "loss_g_l1 (weighted L1)"),
            ],
            caption: "The generator's whole loss and its weighted L1 term (100 x mean |G(A) - B|).",
        });
    } else {
        specs.push(Spec {
            title: "Losses",
            y_desc: "loss",
            y_range: None,
            series: vec![
                ("loss_d", "loss_d (discriminator)"),
                ("loss_g", "loss_g (generator)"),
            ],
            caption: "The discriminator's and the generator's loss. At the equilibrium of the \
                      minimax game D outputs 1/2 everywhere and loss_d is 2 ln 2 = 1.39.",
        });
    }
    specs.push(Spec {
        title: "Discriminator outputs",
        y_desc: "mean D output",
        y_range: Some((0.0, 1.0)),
        series: vec![
            ("d_real", "D(x), real"),
            ("d_fake", "D(G(z)) before D's step"),
            ("d_fake_g", "D(G(z)) after D's step"),
        ],
        caption: "The discriminator's mean probability that its input is real, on a real batch \
                  and on fakes before and after its update.",
    });
    specs
}

/// Draws `spec` from the run's metrics as an `<svg>` element, or a "no data" panel when no
/// logged row has any of its series.
pub fn svg(run: &Run, spec: &Spec) -> Result<String> {
    let data: Vec<(&str, Vec<(f64, f64)>)> = spec
        .series
        .iter()
        .map(|&(key, label)| (label, run.series(key)))
        .filter(|(_, points)| !points.is_empty())
        .collect();
    let mut buf = String::new();
    draw(&mut buf, spec, &data).map_err(|e| anyhow!("cannot draw the plot {}: {e}", spec.title))?;
    // HTML puts an inline <svg> in the SVG namespace by itself; without the declaration the
    // page holds no URL at all, which keeps "no network" a one-line check.
    Ok(buf.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1))
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw(buf: &mut String, spec: &Spec, data: &[(&str, Vec<(f64, f64)>)]) -> DrawResult {
    let root = SVGBackend::with_string(buf, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let font = "sans-serif";
    if data.is_empty() {
        let root = root.titled(spec.title, (font, 26))?;
        let (w, h) = root.dim_in_pixel();
        let grey = BLACK.mix(0.6);
        let centre = TextStyle::from((font, 20))
            .color(&grey)
            .pos(Pos::new(HPos::Center, VPos::Center));
        root.draw_text(
            "no data: no step logged yet",
            &centre,
            (w as i32 / 2, h as i32 / 2),
        )?;
        root.present()?;
        return Ok(());
    }
    let x = padded(data.iter().flat_map(|(_, p)| p.iter().map(|p| p.0)), false);
    let y = spec
        .y_range
        .unwrap_or_else(|| padded(data.iter().flat_map(|(_, p)| p.iter().map(|p| p.1)), true));
    // The legend gets a strip of its own under the chart, so it never hides a curve.
    let (upper, lower) = root.split_vertically(SIZE.1 - LEGEND_HEIGHT);
    let mut chart = ChartBuilder::on(&upper)
        .caption(spec.title, (font, 26))
        .margin(14)
        .margin_bottom(4)
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(spec.y_desc)
        .axis_desc_style((font, 19))
        .label_style((font, 16))
        .x_labels(x_ticks(data))
        .y_labels(8)
        .x_label_formatter(&|v| integer_or_short(*v))
        .y_label_formatter(&|v| super::html::number(*v))
        .light_line_style(BLACK.mix(0.05))
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;
    let mut left = 86;
    for (i, (label, points)) in data.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart.draw_series(LineSeries::new(
            points.iter().copied(),
            colour.stroke_width(2),
        ))?;
        if points.len() <= MARKERS_UP_TO {
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
        let y = LEGEND_HEIGHT as i32 / 2;
        lower.draw(&PathElement::new(
            vec![(left, y), (left + 24, y)],
            colour.stroke_width(4),
        ))?;
        let text = TextStyle::from((font, 17)).pos(Pos::new(HPos::Left, VPos::Center));
        lower.draw_text(label, &text, (left + 30, y))?;
        // The backend cannot measure text; about 0.55 em per character of a sans-serif font.
        left += 30 + (label.chars().count() as f64 * 17.0 / 1.24 * 0.55) as i32 + 28;
    }
    root.present()?;
    Ok(())
}

/// The range of `values` with 5% of air on each side. Losses start the axis at zero when they
/// are all positive, so that their scale reads honestly; a single value gets a unit range.
fn padded(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if from_zero && lo >= 0.0 {
        lo = 0.0;
    }
    if hi - lo < 1e-9 {
        lo -= 0.5;
        hi += 0.5;
    }
    let air = (hi - lo) * 0.05;
    (
        if from_zero && lo == 0.0 {
            0.0
        } else {
            lo - air
        },
        hi + air,
    )
}

/// At most eight step ticks, and no more than there are whole steps in the range, so that a
/// short run is not labelled at step 1.5.
fn x_ticks(data: &[(&str, Vec<(f64, f64)>)]) -> usize {
    let steps = data.iter().flat_map(|(_, p)| p.iter().map(|p| p.0));
    let (lo, hi) = steps.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
        (lo.min(s), hi.max(s))
    });
    ((hi - lo).max(0.0) as usize + 1).min(8)
}

/// Step ticks: whole numbers, and no label where a tick falls between two steps.
fn integer_or_short(v: f64) -> String {
    if (v - v.round()).abs() < 1e-6 {
        format!("{}", v.round() as i64)
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_have_air_and_losses_start_at_zero() {
        assert_eq!(padded([2.0, 4.0].into_iter(), false), (1.9, 4.1));
        let (lo, hi) = padded([0.5, 1.5].into_iter(), true);
        assert_eq!(lo, 0.0);
        assert!((hi - 1.575).abs() < 1e-12);
        assert_eq!(padded([3.0].into_iter(), false), (2.45, 3.55));
        assert_eq!(padded(std::iter::empty(), true), (0.0, 1.0));
        assert_eq!(integer_or_short(20.0), "20");
    }
}
