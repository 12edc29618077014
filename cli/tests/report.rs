//! `gantry report` end to end: real tiny runs through the binary, the page parsed as a browser
//! would (html5ever via scraper) and checked for its plots, pictures, tables, escaping and the
//! absence of anything fetched from the network; broken run directories give one clear line.

mod common;

use common::{Scratch, fails_in_one_line, ok, s, temp};
use scraper::{ElementRef, Html, Selector};
use std::collections::BTreeSet;
use std::path::Path;

fn sel(css: &str) -> Selector {
    Selector::parse(css).unwrap()
}

fn text(e: ElementRef) -> String {
    e.text().collect::<Vec<_>>().join(" ")
}

/// Runs `gantry report`, checks that it printed the page's path, and parses the page.
fn report(run: &Path) -> (String, Html) {
    let stdout = ok(&["report", "--run", s(run)]);
    let page = run.join("index.html");
    assert_eq!(stdout.trim(), page.display().to_string());
    let html = std::fs::read_to_string(&page).unwrap();
    let doc = Html::parse_document(&html);
    assert!(doc.errors.is_empty(), "HTML parse errors: {:?}", doc.errors);
    let leftovers: Vec<_> = std::fs::read_dir(run)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    (html, doc)
}

/// The page fetches nothing: no URL with a scheme in any attribute, no scripts, no
/// stylesheets or fonts from elsewhere, not even the SVG namespace as text.
fn assert_offline(html: &str, doc: &Html) {
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert_eq!(
        doc.select(&sel("script, link, iframe, object, embed"))
            .count(),
        0
    );
    for style in doc.select(&sel("style")) {
        let css = text(style);
        assert!(!css.contains("url(") && !css.contains("@import"), "{css}");
    }
    for e in doc.select(&sel("*")) {
        for (name, value) in e.value().attrs() {
            if matches!(name, "src" | "href" | "xlink:href" | "srcset" | "action") {
                assert!(
                    !value.contains(':'),
                    "{name}={value} is not a relative path"
                );
            }
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Every `<img>` names a file that exists relative to the run directory, and every PNG in
/// `samples/` is shown.
fn assert_pictures(run: &Path, doc: &Html) {
    let shown: BTreeSet<String> = doc
        .select(&sel("img"))
        .map(|img| percent_decode(img.value().attr("src").expect("an img has a src")))
        .collect();
    for src in &shown {
        assert!(run.join(src).is_file(), "{src} is shown but not on disk");
    }
    for entry in std::fs::read_dir(run.join("samples")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".png") {
            assert!(
                shown.contains(&format!("samples/{name}")),
                "{name} not shown"
            );
        }
    }
}

/// The text of each inline SVG plot.
fn plots(doc: &Html) -> Vec<String> {
    doc.select(&sel("#curves svg")).map(text).collect()
}

/// The `(key, value)` rows of a table.
fn rows(doc: &Html, table: &str) -> Vec<(String, String)> {
    doc.select(&sel(&format!("{table} tr")))
        .map(|tr| {
            let th = tr.select(&sel("th")).next().map(text).unwrap_or_default();
            let td = tr.select(&sel("td")).next().map(text).unwrap_or_default();
            (th, td)
        })
        .collect()
}

#[test]
fn an_mlp_run_gets_a_self_contained_page_with_plots_samples_and_eval() {
    let run = temp("mlp");
    ok(&[
        "train",
        "--model",
        "mlp",
        "--data",
        "ring",
        "--steps",
        "30",
        "--sample-every",
        "10",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let (html, doc) = report(&run);
    assert_offline(&html, &doc);
    assert_pictures(&run, &doc);
    // real.png, three steps, and the last step once more, large.
    assert_eq!(doc.select(&sel("#samples img")).count(), 5);
    let latest = doc.select(&sel(".latest img")).next().unwrap();
    assert_eq!(latest.value().attr("src"), Some("samples/step_000030.png"));
    let captions: Vec<String> = doc.select(&sel(".gallery figcaption")).map(text).collect();
    assert_eq!(captions, ["real data", "step 10", "step 20", "step 30"]);

    let header = text(doc.select(&sel("header")).next().unwrap());
    assert!(
        header.contains("mlp on ring") && header.contains("30 steps"),
        "{header}"
    );
    assert!(
        header.contains("wall time") && header.contains("gantry 0.1.0"),
        "{header}"
    );

    let summary = rows(&doc, "table.summary");
    for row in [
        ("model", "mlp"),
        ("data", "ring"),
        ("batch size", "64"),
        ("seed", "0"),
    ] {
        assert!(
            summary.contains(&(row.0.into(), row.1.into())),
            "{row:?} in {summary:?}"
        );
    }
    let optimizer = &summary.iter().find(|r| r.0 == "optimizer").unwrap().1;
    assert!(
        optimizer.starts_with("adam") && optimizer.contains("lr 0.0002"),
        "{optimizer}"
    );
    let config = rows(&doc, "table.config");
    assert!(config.contains(&("model.g_hidden".into(), "[128, 128, 128]".into())));

    let plots = plots(&doc);
    // Both losses, D's outputs, then each logged part in a plot of its own.
    assert_eq!(plots.len(), 5, "{plots:?}");
    for (plot, part) in plots[2..]
        .iter()
        .zip(["loss_d_fake", "loss_d_real", "loss_g_gan"])
    {
        assert!(plot.contains(part), "{part} missing from {plot}");
    }
    for label in [
        "Losses",
        "loss_d (discriminator)",
        "loss_g (generator)",
        "step",
        "loss",
    ] {
        assert!(
            plots[0].contains(label),
            "{label} missing from {}",
            plots[0]
        );
    }
    for label in [
        "D(x), real",
        "D(G(z)) before D's step",
        "D(G(z)) after D's step",
    ] {
        assert!(
            plots[1].contains(label),
            "{label} missing from {}",
            plots[1]
        );
    }
    // One line per series, and tick labels on both axes.
    let lines: Vec<usize> = doc
        .select(&sel("#curves svg"))
        .map(|svg| svg.select(&sel("polyline")).count())
        .collect();
    assert!(lines[0] >= 2 && lines[1] >= 3, "{lines:?}");
    assert!(
        plots[0].contains("10") && plots[0].contains("30"),
        "step ticks"
    );
    assert!(
        plots[1].contains("0.5") || plots[1].contains("0.4"),
        "probability ticks"
    );

    let note = text(doc.select(&sel("#eval")).next().unwrap());
    assert!(
        note.contains("no eval.json yet") && note.contains("gantry eval --run"),
        "{note}"
    );

    std::fs::write(
        run.join("eval.json"),
        r#"{"model":"mlp","data":"ring","step":30,"modes":7,"modes_total":8,
            "high_quality":0.8125,"reverse_kl":0.123456789,"class_hist":[3,5,0,1],
            "real":{"fd":1.5,"deep":{"x":true}}}"#,
    )
    .unwrap();
    let (html, doc) = report(&run);
    assert_offline(&html, &doc);
    let eval = rows(&doc, "#eval table");
    for row in [
        ("modes", "7"),
        ("modes_total", "8"),
        ("high_quality", "0.8125"),
        ("reverse_kl", "0.123457"),
        ("class_hist", "[3, 5, 0, 1]"),
        ("real.fd", "1.5"),
        ("real.deep.x", "true"),
    ] {
        assert!(
            eval.contains(&(row.0.into(), row.1.into())),
            "{row:?} in {eval:?}"
        );
    }
    assert!(!html.contains("no eval.json yet"));
}

#[test]
fn a_pix2pix_run_plots_its_l1_term_apart() {
    let run = temp("p2p");
    ok(&[
        "train",
        "--model",
        "pix2pix",
        "--data",
        "edges2digits",
        "--image-size",
        "32",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--steps",
        "4",
        "--batch-size",
        "2",
        "--sample-every",
        "2",
        "--log-every",
        "1",
        "--quiet",
        "--out",
        s(&run),
    ]);
    let (html, doc) = report(&run);
    assert_offline(&html, &doc);
    assert_pictures(&run, &doc);
    let plots = plots(&doc);
    assert_eq!(
        plots.len(),
        6,
        "losses, D outputs, and loss_d_fake, loss_d_real, loss_g_gan, loss_g_l1 each alone"
    );
    assert!(plots[0].contains("loss_d") && plots[0].contains("loss_g (generator)"));
    assert!(plots[1].contains("D(x)"));
    // The L1 term, a hundred times the others, has a plot of its own.
    let l1 = plots.iter().find(|p| p.contains("loss_g_l1")).unwrap();
    assert!(!l1.contains("loss_g_gan"));
    let header = text(doc.select(&sel("header")).next().unwrap());
    assert!(header.contains("pix2pix on edges2digits") && header.contains("4 steps"));
}

/// A run directory made by hand: `config.json`, `metrics.jsonl`, and `samples/`.
fn fake_run(name: &str, config: &str, metrics: &str) -> Scratch {
    let run = temp(name);
    std::fs::create_dir_all(run.join("samples")).unwrap();
    std::fs::write(run.join("config.json"), config).unwrap();
    std::fs::write(run.join("metrics.jsonl"), metrics).unwrap();
    run
}

#[test]
fn an_empty_metrics_log_still_gives_a_page_whose_plots_say_no_data() {
    let run = fake_run(
        "empty",
        r#"{"run": {"model": "dcgan", "data": "mnist"}}"#,
        "",
    );
    let (html, doc) = report(&run);
    assert_offline(&html, &doc);
    let plots = plots(&doc);
    assert_eq!(plots.len(), 2);
    assert!(plots.iter().all(|p| p.contains("no data")), "{plots:?}");
    let header = text(doc.select(&sel("header")).next().unwrap());
    assert!(header.contains("no step logged"), "{header}");
    assert!(text(doc.select(&sel("#samples")).next().unwrap()).contains("no sample grids"));
}

#[test]
fn hostile_strings_from_the_run_directory_are_escaped() {
    let evil = r#"<script>alert(1)</script><img src=x onerror=alert(2)>&amp;"'"#;
    let config = serde_json::json!({
        "gantry": evil, "run": {"model": "mlp", "data": evil}, "train": {evil: 1},
    });
    let run = fake_run(
        "evil<b>&\"dir\"",
        &config.to_string(),
        "{\"step\":1,\"loss_d\":1.0,\"loss_g\":2.0,\"d_real\":0.5,\"d_fake\":0.5,\"d_fake_g\":0.5}\n",
    );
    let odd_png = "x\" onerror=\"alert(3) #?%.png";
    std::fs::write(run.join("samples").join(odd_png), b"not really a png").unwrap();
    std::fs::write(
        run.join("eval.json"),
        serde_json::json!({ evil: evil, "nested": { evil: [evil] } }).to_string(),
    )
    .unwrap();
    let (html, doc) = report(&run);
    assert_offline(&html, &doc);
    assert_pictures(&run, &doc);
    assert_eq!(doc.select(&sel("script")).count(), 0);
    assert_eq!(
        doc.select(&sel("header b, header img, td img, td script"))
            .count(),
        0
    );
    assert!(doc.select(&sel("[onerror]")).next().is_none());
    // The strings survive as text, exactly.
    let title = text(doc.select(&sel("h1")).next().unwrap());
    assert!(title.starts_with("gantry-test-evil<b>&\"dir\""), "{title}");
    let eval = rows(&doc, "#eval table");
    assert!(
        eval.contains(&(evil.to_string(), evil.to_string())),
        "{eval:?}"
    );
    assert!(
        eval.contains(&(format!("nested.{evil}"), format!("[{evil:?}]"))),
        "{eval:?}"
    );
    assert!(rows(&doc, "table.summary").contains(&("data".into(), evil.into())));
    let odd = doc
        .select(&sel(".gallery figcaption"))
        .map(text)
        .any(|c| c == odd_png);
    assert!(odd, "the odd file is shown under its own name");
}

#[test]
fn broken_run_directories_are_one_clear_line() {
    let missing = temp("missing");
    let err = fails_in_one_line(&["report", "--run", s(&missing)]);
    assert!(
        err.contains("does not exist") && err.contains(s(&missing)),
        "{err}"
    );

    let good_config = r#"{"run": {"model": "mlp", "data": "ring"}}"#;
    let line = "{\"step\":1,\"loss_d\":1.0}\n";
    let run = fake_run("broken", good_config, line);
    std::fs::remove_file(run.join("config.json")).unwrap();
    let err = fails_in_one_line(&["report", "--run", s(&run)]);
    assert!(err.contains("config.json"), "{err}");

    std::fs::write(run.join("config.json"), "{\"run\": ").unwrap();
    let err = fails_in_one_line(&["report", "--run", s(&run)]);
    assert!(err.contains("config.json is not valid JSON"), "{err}");

    std::fs::write(run.join("config.json"), good_config).unwrap();
    std::fs::remove_file(run.join("metrics.jsonl")).unwrap();
    let err = fails_in_one_line(&["report", "--run", s(&run)]);
    assert!(err.contains("metrics.jsonl"), "{err}");

    std::fs::write(
        run.join("metrics.jsonl"),
        format!("{line}{{\"step\":2,\"loss_d\"\n{line}"),
    )
    .unwrap();
    let err = fails_in_one_line(&["report", "--run", s(&run)]);
    assert!(
        err.contains("metrics.jsonl line 2 is not valid JSON"),
        "{err}"
    );

    std::fs::write(run.join("metrics.jsonl"), line).unwrap();
    std::fs::write(run.join("eval.json"), "{\"fd\": 1.0,").unwrap();
    let err = fails_in_one_line(&["report", "--run", s(&run)]);
    assert!(err.contains("eval.json is not valid JSON"), "{err}");
    assert!(
        !run.join("index.html").exists(),
        "no page from a broken run"
    );

    std::fs::remove_file(run.join("eval.json")).unwrap();
    report(&run);
}
