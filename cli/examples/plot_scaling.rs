//! Draws the CSV of `bench/scaling.sh` as an SVG with three panels: seconds per iteration
//! against the batch size (one line per workload and thread count), against the image side
//! (the image-size sweep), and the speed-up from 1 to 2 threads against the batch size.
//!
//! ```text
//! cargo run --release -p gantry-cli --example plot_scaling -- docs/scaling.csv docs/scaling.svg
//! ```

use plotters::prelude::*;
use std::collections::BTreeMap;
use std::error::Error;

/// One row of the CSV.
struct Row {
    sweep: String,
    workload: String,
    image_size: f64,
    batch: f64,
    threads: usize,
    seconds: f64,
}

fn read(path: &str) -> Result<Vec<Row>, Box<dyn Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or(format!("{path}: empty"))?
        .split(',')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or(format!("{path}: no column '{name}'"))
    };
    let (sweep, workload, size, batch, threads, seconds) = (
        col("sweep")?,
        col("workload")?,
        col("image_size")?,
        col("batch")?,
        col("threads")?,
        col("sec_per_iter_median")?,
    );
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = || format!("{path}: line {} is not a scaling row: {line}", i + 2);
        let num = |j: usize| f.get(j).and_then(|v| v.parse::<f64>().ok()).ok_or_else(bad);
        rows.push(Row {
            sweep: f.get(sweep).ok_or_else(bad)?.to_string(),
            workload: f.get(workload).ok_or_else(bad)?.to_string(),
            image_size: num(size)?,
            batch: num(batch)?,
            threads: num(threads)? as usize,
            seconds: num(seconds)?,
        });
    }
    Ok(rows)
}

type Series = BTreeMap<String, Vec<(f64, f64)>>;

/// Points of `rows` of `sweep`, keyed by `label`, at `x`.
fn series<'a>(
    rows: impl IntoIterator<Item = &'a Row>,
    sweep: &str,
    label: impl Fn(&Row) -> String,
    x: impl Fn(&Row) -> f64,
) -> Series {
    let mut out = Series::new();
    for r in rows.into_iter().filter(|r| r.sweep == sweep) {
        out.entry(label(r)).or_default().push((x(r), r.seconds));
    }
    for points in out.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// Speed-up from 1 to 2 threads of the batch sweep, per workload.
fn speedups(rows: &[Row]) -> Series {
    let at = |t: usize| {
        series(
            rows.iter().filter(|r| r.threads == t),
            "batch",
            |r| r.workload.clone(),
            |r| r.batch,
        )
    };
    let two = at(2);
    let mut out = Series::new();
    for (w, p1) in at(1) {
        let Some(p2) = two.get(&w) else { continue };
        let points = p1
            .iter()
            .filter_map(|&(b, s1)| p2.iter().find(|p| p.0 == b).map(|&(_, s2)| (b, s1 / s2)))
            .collect();
        out.insert(w, points);
    }
    out
}

/// An axis label: at most three decimals, no trailing zeros.
fn short(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn bounds(s: &Series) -> Option<(f64, f64, f64, f64)> {
    let points: Vec<(f64, f64)> = s.values().flatten().copied().collect();
    let fold = |f: fn(&(f64, f64)) -> f64, init: f64, pick: fn(f64, f64) -> f64| {
        points.iter().map(f).fold(init, pick)
    };
    (!points.is_empty()).then(|| {
        (
            fold(|p| p.0, f64::INFINITY, f64::min),
            fold(|p| p.0, 0.0, f64::max),
            fold(|p| p.1, f64::INFINITY, f64::min),
            fold(|p| p.1, 0.0, f64::max),
        )
    })
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    data: &Series,
    log_y: bool,
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    let Some((x0, x1, y0, y1)) = bounds(data) else {
        area.titled(&format!("{title}: no data"), ("sans-serif", 18))?;
        return Ok(());
    };
    let x = (x0 / 1.3..x1 * 1.3).log_scale();
    let mut builder = ChartBuilder::on(area);
    let chart = builder
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60);
    let colors = [&BLUE, &RED, &GREEN, &MAGENTA, &CYAN, &BLACK];
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                .x_label_formatter(&|v| short(*v))
                .y_label_formatter(&|v| short(*v))
                .draw()?;
            for (i, (label, points)) in data.iter().enumerate() {
                let color = colors[i % colors.len()];
                chart
                    .draw_series(LineSeries::new(points.iter().copied(), color).point_size(3))?
                    .label(label.as_str())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], color));
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
        }};
    }
    if log_y {
        draw!(chart.build_cartesian_2d(x, (y0 / 1.5..y1 * 1.5).log_scale())?);
    } else {
        draw!(chart.build_cartesian_2d(x, 0.0..(y1 * 1.2).max(2.2))?);
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let input = args.first().map_or("docs/scaling.csv", String::as_str);
    let output = args.get(1).map_or("docs/scaling.svg", String::as_str);
    let rows = read(input)?;
    let root = SVGBackend::new(output, (1500, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 3));
    let by_batch = series(
        &rows,
        "batch",
        |r| format!("{} {}t", r.workload, r.threads),
        |r| r.batch,
    );
    panel(
        &panels[0],
        "time per iteration vs batch size",
        "batch size",
        "seconds per iteration",
        &by_batch,
        true,
    )?;
    let by_size = series(
        &rows,
        "image_size",
        |r| format!("{} batch {} {}t", r.workload, r.batch, r.threads),
        |r| r.image_size,
    );
    panel(
        &panels[1],
        "time per iteration vs image side",
        "image side (pixels)",
        "seconds per iteration",
        &by_size,
        true,
    )?;
    panel(
        &panels[2],
        "speed-up from 1 to 2 threads",
        "batch size",
        "time(1 thread) / time(2 threads)",
        &speedups(&rows),
        false,
    )?;
    root.present()?;
    println!("wrote {output}");
    Ok(())
}
