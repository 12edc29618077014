//! Training curves, and the truncation sweep of `gantry eval`, as inline SVG drawn with
//! plotters' SVG backend.
//!
//! Plotters is built without its font features: the SVG backend writes every label as a
//! `<text>` element for the browser to lay out, and only needs a rough size estimate (its
//! built-in one) to place them. So the axes, ticks and legend are real, selectable text.

use super::load::Run;
use anyhow::{Result, anyhow};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;

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

/// One plot: which metrics it draws.
pub struct Spec {
    /// Heading inside the SVG.
    pub title: String,
    /// Horizontal axis description: `step` for training curves, whose ticks are whole steps.
    pub x_desc: String,
    /// Vertical axis description.
    pub y_desc: String,
    /// `(metrics.jsonl key, legend text)` per series.
    pub series: Vec<(String, String)>,
    /// What the plot shows, for the caption under it.
    pub caption: String,
}

/// Keys of `metrics.jsonl` that are not plotted as curves.
const NOT_CURVES: [&str; 2] = ["step", "seconds"];

/// What a known key means, for legends; any other key is shown as it is.
fn legend(key: &str) -> String {
    let what = match key {
        "loss_d" => "discriminator",
        "loss_g" => "generator",
        "d_real" => "D(x), real",
        "d_fake" => "D(G(z)) before D's step",
        "d_fake_g" => "D(G(z)) after D's step",
        "d_out_real" => "mean D(x)",
        "d_out_fake" => "mean D(G(z)) before D's step",
        "d_out_fake_g" => "mean D(G(z)) after D's step",
        _ => return key.to_string(),
    };
    format!("{key} ({what})")
}

/// Every key any row logged, in order of first appearance.
fn logged_keys(run: &Run) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for row in &run.metrics {
        for (k, v) in row {
            if v.is_number() && !NOT_CURVES.contains(&k.as_str()) && !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    keys
}

/// The plots of a run, from whatever it logged: both players' losses together; D's mean
/// outputs together (probabilities through a sigmoid for the cross-entropy losses, raw
/// outputs for the others); then every other logged part (`loss_d_real`, `gp`, `loss_g_l1`,
/// `w_estimate`, ...) in a plot of its own, so that a term a hundred times larger than the
/// others (pix2pix's L1) flattens nothing. Every axis fits its values.
pub fn specs(run: &Run) -> Vec<Spec> {
    let keys = logged_keys(run);
    let pick = |f: &dyn Fn(&str) -> bool| -> Vec<(String, String)> {
        keys.iter()
            .filter(|k| f(k))
            .map(|k| (k.clone(), legend(k)))
            .collect()
    };
    let mut specs = vec![Spec {
        title: "Losses".into(),
        x_desc: "step".into(),
        y_desc: "loss".into(),
        series: pick(&|k| k == "loss_d" || k == "loss_g"),
        caption: "The discriminator's and the generator's whole loss (the sum of the parts \
                  plotted below). With the cross-entropy loss, at the equilibrium of the \
                  minimax game D outputs 1/2 everywhere and loss_d is 2 ln 2 = 1.39."
            .into(),
    }];
    let outputs = pick(&|k| k.starts_with("d_"));
    // A run with no row yet shows both usual plots, saying there is no data.
    if !outputs.is_empty() || keys.is_empty() {
        let probabilities = outputs.iter().any(|(k, _)| k == "d_real");
        specs.push(Spec {
            title: "Discriminator outputs".into(),
            x_desc: "step".into(),
            y_desc: if probabilities {
                "mean D output".into()
            } else {
                "mean raw D output".into()
            },
            series: outputs,
            caption: if probabilities {
                "The discriminator's mean probability that its input is real, on a real batch \
                 and on fakes before and after its update."
                    .into()
            } else {
                "The discriminator's mean raw output on a real batch and on fakes before and \
                 after its update (not a probability under this loss)."
                    .into()
            },
        });
    }
    for key in keys
        .iter()
        .filter(|k| !k.starts_with("d_") && *k != "loss_d" && *k != "loss_g")
    {
        specs.push(Spec {
            title: key.clone(),
            x_desc: "step".into(),
            y_desc: "value".into(),
            series: vec![(key.clone(), legend(key))],
            caption: format!(
                "{key}, as the objective logged it (weighted, where it is part of a loss)."
            ),
        });
    }
    specs
}

/// Draws `spec` from the run's metrics as an `<svg>` element, or a "no data" panel when no
/// logged row has any of its series.
pub fn svg(run: &Run, spec: &Spec) -> Result<String> {
    svg_of(spec, |key| run.series(key))
}

/// The plots of a truncation sweep (`truncation_sweep` in `eval.json`): FD, and precision
/// with recall, against the threshold; none when the evaluation made no sweep.
pub fn sweep_specs(eval: &Value) -> Vec<Spec> {
    if eval["truncation_sweep"]
        .as_array()
        .is_none_or(|rows| rows.is_empty())
    {
        return Vec::new();
    }
    let spec = |title: &str, y_desc: &str, keys: &[&str], caption: &str| Spec {
        title: title.into(),
        x_desc: "truncation threshold".into(),
        y_desc: y_desc.into(),
        series: keys
            .iter()
            .map(|k| (k.to_string(), k.to_string()))
            .collect(),
        caption: caption.into(),
    };
    vec![
        spec(
            "FD against truncation",
            "Fréchet distance",
            &["fd"],
            "The Fréchet distance of samples drawn from noise truncated at each threshold \
             (values beyond it redrawn), in the classifier's feature space; lower is closer to \
             the real images.",
        ),
        spec(
            "Precision and recall against truncation",
            "fraction",
            &["precision", "recall"],
            "Precision (samples inside the real images' manifold: fidelity) and recall (real \
             images inside the samples': variety) at each threshold. Truncation trades one \
             for the other.",
        ),
    ]
}

/// Draws `spec` from the rows of a truncation sweep.
pub fn sweep_svg(eval: &Value, spec: &Spec) -> Result<String> {
    let rows = eval["truncation_sweep"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    svg_of(spec, |key| {
        rows.iter()
            .filter_map(|r| Some((r["truncation"].as_f64()?, r[key].as_f64()?)))
            .collect()
    })
}

/// Draws `spec` with the points `series` gives for each of its keys.
fn svg_of(spec: &Spec, series: impl Fn(&str) -> Vec<(f64, f64)>) -> Result<String> {
    let data: Vec<(&str, Vec<(f64, f64)>)> = spec
        .series
        .iter()
        .map(|(key, label)| (label.as_str(), series(key)))
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
        let root = root.titled(&spec.title, (font, 26))?;
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
    let steps = spec.x_desc == "step";
    let x = padded(data.iter().flat_map(|(_, p)| p.iter().map(|p| p.0)), false);
    let y = padded(data.iter().flat_map(|(_, p)| p.iter().map(|p| p.1)), true);
    // The legend gets a strip of its own under the chart, so it never hides a curve.
    let (upper, lower) = root.split_vertically(SIZE.1 - LEGEND_HEIGHT);
    let mut chart = ChartBuilder::on(&upper)
        .caption(&spec.title, (font, 26))
        .margin(14)
        .margin_bottom(4)
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    chart
        .configure_mesh()
        .x_desc(&spec.x_desc)
        .y_desc(&spec.y_desc)
        .axis_desc_style((font, 19))
        .label_style((font, 16))
        .x_labels(if steps { x_ticks(data) } else { 8 })
        .y_labels(8)
        .x_label_formatter(&|v| {
            if steps {
                integer_or_short(*v)
            } else {
                super::html::number(*v)
            }
        })
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
