//! An opt-in profile of where a program's time goes: totals of wall time, calls and FLOPs per
//! labelled piece of work, grouped in sections.
//!
//! The crates time their own work when profiling is on: this crate the matrix products that
//! own the thread pool ([`PRODUCTS`], labelled by shape and kernel route), `gantry-autodiff`
//! each op's forward computation and backward rule ([`FORWARD`], [`BACKWARD`]), `gantry-nn`
//! the optimizers' steps ([`OPTIMIZER`]).
//! Anything else can be timed with a [`Timer`] under a section of its own. Off (the default),
//! each timing point costs one relaxed atomic load.
//!
//! ```
//! use gantry_tensor::{profile, Tensor};
//!
//! profile::set_enabled(true);
//! let a = Tensor::ones(&[256, 256]);
//! let _ = a.matmul(&a);
//! profile::set_enabled(false);
//! let rows = profile::take();
//! let product = rows.iter().find(|r| r.section == profile::PRODUCTS).unwrap();
//! assert_eq!(product.calls, 1);
//! assert_eq!(product.flops, 2.0 * 256.0 * 256.0 * 256.0);
//! ```
//!
//! Times are wall times on the calling thread, so nested work is counted in each section that
//! holds it (a product inside the op that made it). Work timed on several threads at once adds
//! up to more than the wall time; the crates only time work that owns the whole pool.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The tape's forward ops (`gantry-autodiff`), labelled by op and output shape.
pub const FORWARD: &str = "forward";

/// The tape's backward rules (`gantry-autodiff`), labelled as their forward ops.
pub const BACKWARD: &str = "backward";

/// The matrix products that own the thread pool (this crate), labelled by shape and route.
pub const PRODUCTS: &str = "products";

/// The optimizers' steps (`gantry-nn`), labelled by optimizer.
pub const OPTIMIZER: &str = "optimizer";

/// The sections the gantry crates time, in the order a report lists them.
pub const SECTIONS: [&str; 4] = [FORWARD, BACKWARD, PRODUCTS, OPTIMIZER];

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Totals per (section, label).
static TOTALS: Mutex<BTreeMap<(&'static str, String), Totals>> = Mutex::new(BTreeMap::new());

#[derive(Clone, Copy, Default)]
struct Totals {
    calls: u64,
    time: Duration,
    flops: f64,
}

/// One labelled piece of work's totals since the last [`take`].
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// What kind of work: [`PRODUCTS`], or a section named by the crate that timed it.
    pub section: &'static str,
    /// Which work within the section (a product's shape, an op's name and output shape).
    pub label: String,
    /// How many times it ran.
    pub calls: u64,
    /// Its total wall time.
    pub time: Duration,
    /// Its total floating-point operations, where the timer knew them (else 0).
    pub flops: f64,
}

/// Turns profiling on or off for the whole process.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether profiling is on.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Adds one call of `time` (and `flops`) to the row `label` of `section`, when profiling is
/// on. `label` is only called then, so building it costs nothing otherwise.
pub fn add(section: &'static str, label: impl FnOnce() -> String, time: Duration, flops: f64) {
    if !enabled() {
        return;
    }
    let mut totals = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
    let t = totals.entry((section, label())).or_default();
    t.calls += 1;
    t.time += time;
    t.flops += flops;
}

/// Every row recorded since the last call, longest first; the totals start again from zero.
pub fn take() -> Vec<Row> {
    let totals = std::mem::take(&mut *TOTALS.lock().unwrap_or_else(|e| e.into_inner()));
    let mut rows: Vec<Row> = totals
        .into_iter()
        .map(|((section, label), t)| Row {
            section,
            label,
            calls: t.calls,
            time: t.time,
            flops: t.flops,
        })
        .collect();
    rows.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.label.cmp(&b.label)));
    rows
}

/// A stopwatch that runs only when profiling was on at its start.
///
/// ```
/// use gantry_tensor::profile::{self, Timer};
///
/// profile::set_enabled(true);
/// let timer = Timer::start();
/// let sum: f64 = (0..1000).map(f64::from).sum();
/// timer.stop("data", || format!("sum of {sum}"), 0.0);
/// profile::set_enabled(false);
/// assert_eq!(profile::take()[0].label, "sum of 499500");
/// ```
#[must_use = "a timer records nothing until it is stopped"]
pub struct Timer(Option<Instant>);

impl Timer {
    /// Starts timing if profiling is on.
    #[inline]
    pub fn start() -> Self {
        Timer(enabled().then(Instant::now))
    }

    /// Adds the time since [`Timer::start`] to `label` of `section` (see [`add`]).
    pub fn stop(self, section: &'static str, label: impl FnOnce() -> String, flops: f64) {
        if let Some(start) = self.0 {
            add(section, label, start.elapsed(), flops);
        }
    }
}

/// The rows as a table per section, [`SECTIONS`] first: calls, milliseconds and share of each
/// of `iterations` iterations that took `elapsed` in all, and GFLOP/s where FLOPs are known.
/// A section lists its `top` longest rows, then the rest in one line, then its total.
///
/// ```
/// use gantry_tensor::profile::{self, Row};
/// use std::time::Duration;
///
/// let row = |label: &str, ms| Row {
///     section: profile::PRODUCTS,
///     label: label.into(),
///     calls: 2,
///     time: Duration::from_millis(ms),
///     flops: 1e9,
/// };
/// let table = profile::table(&[row("64x512x784", 30), row("64x256x512", 10)], 2, Duration::from_millis(100), 1);
/// assert!(table.contains("64x512x784"));
/// assert!(table.contains("1 more"));
/// assert!(table.contains("40.0")); // the section's share of the iterations, %
/// ```
pub fn table(rows: &[Row], iterations: u64, elapsed: Duration, top: usize) -> String {
    use std::fmt::Write;
    let per = iterations.max(1) as f64;
    let whole = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    let mut sections: Vec<&str> = SECTIONS.to_vec();
    for r in rows {
        if !sections.contains(&r.section) {
            sections.push(r.section);
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, label: &str, calls: f64, time: Duration, flops: f64| {
        let s = time.as_secs_f64();
        let rate = if flops > 0.0 && s > 0.0 {
            format!("{:9.1}", flops / s / 1e9)
        } else {
            format!("{:>9}", "")
        };
        let row = format!(
            "  {label:<58} {calls:>8.1} {:>9.3} {:>6.1} {rate}",
            s * 1e3 / per,
            100.0 * s / whole
        );
        let _ = writeln!(out, "{}", row.trim_end());
    };
    for section in sections {
        let in_section: Vec<&Row> = rows.iter().filter(|r| r.section == section).collect();
        if in_section.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "{section:<60} {:>8} {:>9} {:>6} {:>9}",
            "calls/it", "ms/it", "%", "GFLOP/s"
        );
        let sum = |rows: &[&Row]| {
            rows.iter()
                .fold((0u64, Duration::ZERO, 0.0), |(c, t, f), r| {
                    (c + r.calls, t + r.time, f + r.flops)
                })
        };
        for r in in_section.iter().take(top) {
            line(&mut out, &r.label, r.calls as f64 / per, r.time, r.flops);
        }
        if in_section.len() > top {
            let rest = &in_section[top..];
            let (c, t, f) = sum(rest);
            let label = format!("{} more", rest.len());
            line(&mut out, &label, c as f64 / per, t, f);
        }
        let (c, t, f) = sum(&in_section);
        line(&mut out, &format!("all {section}"), c as f64 / per, t, f);
    }
    out
}
