//! The page: HTML with inline CSS, built as a string.
//!
//! Every string that comes from the run directory (config values, eval keys, file names, the
//! directory's name) goes through [`esc`] on its way in; the rest is this file's own markup.

use super::load::{Picture, Run};
use super::plot;
use anyhow::Result;
use serde_json::Value;
use std::fmt::Write;

/// Escapes text for HTML content and for quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes one path segment, so that a file name with `#`, `?`, `%` or a space still
/// names that file in a relative URL.
fn url_segment(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A number for people: whole numbers as integers, others to six significant digits without
/// trailing zeros (the f32 learning rate 2e-4 is stored as 0.00019999999494757503).
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let magnitude = v.abs().log10().floor() as i32;
    if (-4..9).contains(&magnitude) {
        let decimals = (5 - magnitude).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}"))
    } else {
        let text = format!("{v:.5e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        format!("{}e{exponent}", trim_zeros(mantissa))
    }
}

fn trim_zeros(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text.to_string()
    }
}

/// A JSON value on one line: numbers through [`number`], strings bare at the top level and
/// quoted inside arrays and objects, arrays as `[1, 2, 3]`. Not escaped.
fn inline(value: &Value, top: bool) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => number(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) if top => s.clone(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|v| inline(v, false)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k:?}: {}", inline(v, false)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Flattens nested objects into `(dotted.key, value)` rows; arrays stay whole, on one line.
pub fn flatten(value: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, rows);
                }
            }
            v => rows.push((prefix.to_string(), inline(v, true))),
        }
    }
    let mut rows = Vec::new();
    walk("", value, &mut rows);
    rows
}

/// The settings worth seeing first, with readable names, from `config.json` as `gantry
/// train` writes it; absent keys are skipped.
fn summary(config: &Value) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut add = |label: &str, v: &Value| {
        if !v.is_null() {
            rows.push((label.to_string(), inline(v, true)));
        }
    };
    add("model", &config["run"]["model"]);
    add("variant", &config["model"]["variant"]);
    add("data", &config["run"]["data"]);
    add("batch size", &config["run"]["batch_size"]);
    add("image size", &config["run"]["image_size"]);
    add("seed", &config["run"]["seed"]);
    add("D steps per G step (k)", &config["train"]["k"]);
    let objective = &config["train"]["objective"];
    if objective.is_object() {
        add("loss", &objective["loss"]);
        add("real label", &objective["real_label"]);
        if let Some(terms) = objective["terms"].as_array().filter(|t| !t.is_empty()) {
            add("terms", &Value::String(terms_text(terms)));
        }
    } else {
        // Runs written before objectives existed.
        add("generator loss", &config["train"]["gen_loss"]);
        add("real label", &config["train"]["real_label"]);
    }
    add("EMA of G's weights", &config["train"]["ema"]);
    if let Some(policy) = config["train"]["diffaug"]
        .as_array()
        .filter(|p| !p.is_empty())
    {
        let names: Vec<String> = policy.iter().map(|p| inline(p, true)).collect();
        add("DiffAugment", &Value::String(names.join(", ")));
    }
    let (g, d) = (&config["train"]["optim_g"], &config["train"]["optim_d"]);
    if g == d {
        add("optimizer", &Value::String(optimizer(g)));
    } else {
        add("optimizer of G", &Value::String(optimizer(g)));
        add("optimizer of D", &Value::String(optimizer(d)));
    }
    rows.retain(|(_, v)| !v.is_empty());
    rows
}

/// `loss_g_l1 x 100, r1 x 1 every 16` from the objective's terms.
fn terms_text(terms: &[Value]) -> String {
    let text: Vec<String> = terms
        .iter()
        .map(|t| {
            let mut s = format!(
                "{} x {}",
                inline(&t["name"], true),
                inline(&t["weight"], false)
            );
            if t["every"].as_u64().is_some_and(|n| n > 1) {
                s += &format!(" every {}", t["every"]);
            }
            s
        })
        .collect();
    text.join(", ")
}

/// `adam (lr 0.0002, beta1 0.5, beta2 0.999)` from `{"kind": "adam", "lr": ..., ...}`.
fn optimizer(v: &Value) -> String {
    let Some(map) = v.as_object() else {
        return String::new();
    };
    let kind = map.get("kind").map_or("?".to_string(), |k| inline(k, true));
    let rest: Vec<String> = map
        .iter()
        .filter(|(k, _)| *k != "kind")
        .map(|(k, v)| format!("{k} {}", inline(v, false)))
        .collect();
    format!("{kind} ({})", rest.join(", "))
}

fn table(rows: &[(String, String)], class: &str) -> String {
    let mut out = format!("<table class=\"{class}\">\n");
    for (k, v) in rows {
        let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    out.push_str("</table>\n");
    out
}

/// Seconds as `42.1 s`, `12 min 5 s` or `2 h 3 min`.
fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if s < 3600 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    }
}

/// An `<img>` of `samples/{file}`. The width is a whole-number zoom of the PNG (sharp pixels
/// for small grids) fitting `max` pixels each way, or a reduction where the PNG is larger.
fn img(picture: &Picture, alt: &str, max: u32) -> String {
    let src = format!("samples/{}", url_segment(&picture.file));
    let size = match picture.size {
        Some((w, h)) => {
            let zoom = (max / w).min(max / h).max(1);
            let (w, h) = (w * zoom, h * zoom);
            let shrink = (max as f64 / w as f64).min(max as f64 / h as f64).min(1.0);
            let (w, h) = (
                (w as f64 * shrink).round() as u32,
                (h as f64 * shrink).round() as u32,
            );
            format!(" width=\"{w}\" height=\"{h}\"")
        }
        None => String::new(),
    };
    format!(
        "<img src=\"{}\" alt=\"{}\"{size} loading=\"lazy\">",
        esc(&src),
        esc(alt)
    )
}

const STYLE: &str = "
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0;
       color: #1d2330; background: #f4f5f7; line-height: 1.45; }
header { background: #1d2330; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 26px; word-break: break-all; }
header p { margin: 0; color: #c9cfdb; }
main { max-width: 1360px; margin: 0 auto; padding: 8px 32px 32px; }
section { background: #fff; border-radius: 8px; padding: 8px 20px 16px; margin: 18px 0;
          box-shadow: 0 1px 3px rgba(0,0,0,.08); }
h2 { font-size: 19px; margin: 10px 0 12px; }
table { border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 4px 14px 4px 0; border-bottom: 1px solid #eceef2;
         vertical-align: top; }
th { font-weight: 600; white-space: nowrap; }
td { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; word-break: break-word; }
details { margin-top: 10px; }
summary { cursor: pointer; color: #44506a; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 16px; }
figure { margin: 0; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 13px; color: #5a6478; margin-top: 4px; }
img { image-rendering: pixelated; background: #fff; border: 1px solid #e2e5ea; }
.latest img { max-width: 100%; height: auto; }
.gallery { display: flex; flex-wrap: wrap; gap: 14px; margin-top: 14px; }
.gallery figure { text-align: center; }
.note { color: #5a6478; }
code { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; background: #f0f1f4;
       padding: 1px 4px; border-radius: 3px; }
footer { text-align: center; color: #7a8396; font-size: 12px; padding-bottom: 20px; }
";

/// The whole page of `run`.
pub fn page(run: &Run) -> Result<String> {
    let version = env!("CARGO_PKG_VERSION");
    let mut out = String::new();
    let title = esc(&run.name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}: gantry report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    out.push_str(&header(run, version));
    out.push_str("<main>\n");

    out.push_str("<section id=\"config\">\n<h2>Configuration</h2>\n");
    let summary = summary(&run.config);
    if !summary.is_empty() {
        out.push_str(&table(&summary, "summary"));
    }
    out.push_str("<details>\n<summary>everything in <code>config.json</code></summary>\n");
    out.push_str(&table(&flatten(&run.config), "config"));
    out.push_str("</details>\n</section>\n");

    out.push_str("<section id=\"curves\">\n<h2>Training curves</h2>\n<div class=\"plots\">\n");
    for spec in plot::specs(run) {
        out.push_str(&figure(&plot::svg(run, &spec)?, &spec.caption));
    }
    out.push_str("</div>\n</section>\n");

    out.push_str(&samples(run));

    out.push_str("<section id=\"eval\">\n<h2>Evaluation</h2>\n");
    match &run.eval {
        Some(eval) => {
            out.push_str("<p class=\"note\">From <code>eval.json</code>.</p>\n");
            let sweep = plot::sweep_specs(eval);
            if !sweep.is_empty() {
                out.push_str("<div class=\"plots\">\n");
                for spec in sweep {
                    out.push_str(&figure(&plot::sweep_svg(eval, &spec)?, &spec.caption));
                }
                out.push_str("</div>\n");
            }
            out.push_str(&table(&flatten(eval), "eval"));
        }
        None => {
            let _ = writeln!(
                out,
                "<p class=\"note\">no eval.json yet: run <code>gantry eval --run {}</code></p>",
                esc(&run.dir.display().to_string())
            );
        }
    }
    out.push_str("</section>\n</main>\n");
    let _ = write!(
        out,
        "<footer>written by <code>gantry report</code> {}</footer>\n</body>\n</html>\n",
        esc(version)
    );
    Ok(out)
}

/// A plot with its caption.
fn figure(svg: &str, caption: &str) -> String {
    format!(
        "<figure>\n{svg}<figcaption>{}</figcaption>\n</figure>\n",
        esc(caption)
    )
}

fn header(run: &Run, version: &str) -> String {
    let mut facts = Vec::new();
    let config = &run.config;
    if let (Some(model), Some(data)) = (
        config["run"]["model"].as_str(),
        config["run"]["data"].as_str(),
    ) {
        facts.push(format!("{} on {}", esc(model), esc(data)));
    }
    facts.push(match run.last_step() {
        Some(1) => "1 step".to_string(),
        Some(step) => format!("{step} steps"),
        None => "no step logged".to_string(),
    });
    if let Some((seconds, sessions)) = run.wall_time() {
        let over = if sessions > 1 {
            format!(" over {sessions} sessions")
        } else {
            String::new()
        };
        facts.push(format!("wall time {}{over}", duration(seconds)));
    }
    let trained = config["gantry"].as_str().unwrap_or(version);
    if trained == version {
        facts.push(format!("gantry {}", esc(version)));
    } else {
        facts.push(format!(
            "gantry {} (trained with {})",
            esc(version),
            esc(trained)
        ));
    }
    format!(
        "<header>\n<h1>{}</h1>\n<p>{}</p>\n</header>\n",
        esc(&run.name),
        facts.join(" &middot; ")
    )
}

fn samples(run: &Run) -> String {
    let s = &run.samples;
    let mut out = String::from("<section id=\"samples\">\n<h2>Samples</h2>\n");
    if s.real.is_none() && s.steps.is_empty() && s.other.is_empty() {
        out.push_str("<p class=\"note\">no sample grids in samples/ yet</p>\n</section>\n");
        return out;
    }
    if let Some((step, picture)) = s.steps.last() {
        let _ = writeln!(
            out,
            "<figure class=\"latest\">{}<figcaption>latest: step {step}, from the fixed sample \
             inputs</figcaption></figure>",
            img(picture, &format!("samples at step {step}"), 640)
        );
    }
    out.push_str("<div class=\"gallery\">\n");
    let mut thumb = |picture: &Picture, caption: &str| {
        let _ = writeln!(
            out,
            "<figure>{}<figcaption>{}</figcaption></figure>",
            img(picture, caption, 200),
            esc(caption)
        );
    };
    if let Some(real) = &s.real {
        thumb(real, "real data");
    }
    for (step, picture) in &s.steps {
        thumb(picture, &format!("step {step}"));
    }
    for picture in &s.other {
        thumb(picture, &picture.file);
    }
    out.push_str("</div>\n</section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escaping_covers_content_and_attributes() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(url_segment("a b#?%.png"), "a%20b%23%3F%25.png");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(0.00019999999494757503), "0.0002");
        assert_eq!(number(0.9990000128746033), "0.999");
        assert_eq!(number(64.0), "64");
        assert_eq!(number(12.345678), "12.3457");
        assert_eq!(number(-1.5e-7), "-1.5e-7");
        assert_eq!(number(3.0e12 + 0.5), "3e12");
    }

    #[test]
    fn nested_objects_flatten_to_dotted_keys() {
        let rows = flatten(&json!({
            "fd": 12.5, "real": {"fd": 1, "inner": {"x": "y"}}, "hist": [1, 2.25, "a"], "e": {}
        }));
        let rows: Vec<(&str, &str)> = rows.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            rows,
            vec![
                ("e", "{}"),
                ("fd", "12.5"),
                ("hist", "[1, 2.25, \"a\"]"),
                ("real.fd", "1"),
                ("real.inner.x", "y"),
            ]
        );
    }

    #[test]
    fn the_summary_names_the_optimizer() {
        let config = json!({"run": {"model": "mlp", "batch_size": 64, "image_size": null},
            "train": {"optim_g": {"kind": "adam", "lr": 0.0002}, "optim_d": {"kind": "adam", "lr": 0.0002}}});
        assert_eq!(
            summary(&config),
            vec![
                ("model".to_string(), "mlp".to_string()),
                ("batch size".to_string(), "64".to_string()),
                ("optimizer".to_string(), "adam (lr 0.0002)".to_string()),
            ]
        );
        assert_eq!(duration(75.4), "1 min 15 s");
        assert_eq!(duration(7322.0), "2 h 2 min");
    }
}
