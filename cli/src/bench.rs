//! `gantry bench`: time training iterations of the reference benchmark's workloads and print
//! one JSON line per configuration, as `../shared/bench/gan_bench.py` prints one CSV line.

use anyhow::{Context, Result, bail};
use clap::Args;
use gantry_gan::workloads::{self, Workload};
use gantry_tensor::profile;
use serde::Serialize;
use std::process::Command;
use std::time::{Duration, Instant};

/// `gantry bench`.
#[derive(Args, Debug, Clone)]
#[command(
    about = "Time training iterations of the reference benchmark's workloads (JSON lines)",
    long_about = "Times one full GAN training iteration (D step + G step with Adam, k = 1) of the \
workloads of the PyTorch reference ../shared/bench/gan_bench.py, built layer for layer as there, \
on random batches generated before timing. Prints one JSON line per (workload, batch, threads) \
configuration: median, min and max seconds per iteration, the reference's FLOP count of an \
iteration (forward FLOPs of convolutions and linear layers, 2 x MACs, 3 F_G + 9 F_D), the \
achieved GFLOP/s, the process's peak resident memory (VmHWM), its minor page faults per timed \
iteration (memory the kernel had to map and zero during a step) and the CPU other processes used \
meanwhile (foreign_cores; 0 on a quiet machine). Several configurations run one after another, \
each in a fresh process, so that thread pools and peak memory are each its own.\n\n\
Workloads (the reference's --models):\n  \
mlp        G 100-256-512-1024-784 (LeakyReLU 0.2, tanh), D 784-512-256-1, batch 64\n  \
dcgan28    TensorFlow DCGAN tutorial, 28x28x1, Adam 1e-4 (0.9, 0.999), batch 64\n  \
dcgan64c3  pytorch/examples DCGAN, nz 100, ngf = ndf = 64, 64x64x3, batch 64\n  \
dcgan64c1  the same with one channel\n  \
p2p64      pix2pix U-Net (6 downsamplings, ngf 64) + 70x70 PatchGAN (ndf 64), batches 1 and 8\n  \
p2p256     pix2pix unet_256 + PatchGAN, batch 1",
    after_help = "Examples:\n  \
    gantry bench --workload mlp --threads 1                 # one JSON line\n  \
    gantry bench --workload all --iters 5 --warmup 1        # every workload at 1 and 2 threads\n  \
    gantry bench --workload dcgan64c3 --image-size 32 --batch-size 1,2,4,8 --threads 2"
)]
pub struct BenchArgs {
    /// Workloads, comma separated, or `all`: mlp, dcgan28, dcgan64c3, dcgan64c1, p2p64, p2p256.
    #[arg(long, value_delimiter = ',', required = true)]
    pub workload: Vec<String>,
    /// Batch sizes, comma separated [default: the reference's: 64; p2p64 1 and 8; p2p256 1].
    #[arg(long, value_delimiter = ',')]
    pub batch_size: Vec<usize>,
    /// Thread counts, comma separated; each sets the one thread pool (rayon's, which the GEMM
    /// and every parallel loop use); the reference's default is 1 and 2.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2])]
    pub threads: Vec<usize>,
    /// Timed iterations (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Image side for dcgan64c3/dcgan64c1 (a power of two, 16..=256) and p2p64/p2p256
    /// (32..=512), for scaling studies [default: the workload's].
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Seed of the weights, the batch and the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// After the timed iterations, run as many again with the profiler on and print to
    /// standard error where their time went: each op's forward computation and backward rule
    /// by input and output shape, the matrix products that have the thread pool to themselves
    /// by shape and kernel route (with GFLOP/s), the optimizers' steps. Lists the ROWS longest
    /// rows of each section [default: 12].
    #[arg(long, value_name = "ROWS", num_args = 0..=1, default_missing_value = "12")]
    pub profile: Option<usize>,
}

/// One configuration's result: the JSON line.
#[derive(Serialize, Debug)]
struct Report {
    workload: &'static str,
    batch: usize,
    threads: usize,
    image_size: usize,
    iters: usize,
    sec_per_iter_median: f64,
    sec_per_iter_min: f64,
    sec_per_iter_max: f64,
    gflop_per_iter: f64,
    /// The same count without the taps on zero padding (`Workload::flops_on_input_per_iter`):
    /// what a convolution that skips them computes, as oneDNN's do.
    gflop_per_iter_on_input: f64,
    gflops: f64,
    peak_rss_mb: f64,
    /// Minor page faults of the process per timed iteration: memory the kernel had to map
    /// (and zero) during the step, which a step that reuses its buffers does not need.
    minor_faults_per_iter: Option<f64>,
    params_g: usize,
    params_d: usize,
    foreign_cores: Option<f64>,
    /// The SIMD level gantry's own widened loops ran at (`gantry_tensor::simd::active`; the
    /// `gemm` crate picks its kernel alone).
    simd: String,
}

/// A validated configuration.
struct Config {
    workload: Workload,
    size: usize,
    batch: usize,
    threads: usize,
}

pub fn run(args: BenchArgs) -> Result<()> {
    if args.iters == 0 {
        bail!("--iters must be at least 1");
    }
    let mut list = Vec::new();
    for name in &args.workload {
        if name == "all" {
            list.extend(Workload::ALL);
        } else {
            list.push(name.parse::<Workload>()?);
        }
    }
    if args.batch_size.contains(&0) {
        bail!("--batch-size must be at least 1");
    }
    if args.threads.contains(&0) {
        bail!("--threads must be at least 1");
    }
    let mut configs = Vec::new();
    for w in list {
        let size = args.image_size.unwrap_or(w.default_image_size());
        w.layers(size)?;
        let batches = if args.batch_size.is_empty() {
            w.default_batches().to_vec()
        } else {
            args.batch_size.clone()
        };
        for &batch in &batches {
            for &threads in &args.threads {
                configs.push(Config {
                    workload: w,
                    size,
                    batch,
                    threads,
                });
            }
        }
    }
    match configs.as_slice() {
        [one] => {
            let report = crate::on_threads(Some(one.threads), || measure(one, &args))?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        many => many.iter().try_for_each(|c| run_child(c, &args)),
    }
}

/// Runs one configuration in a fresh process (its own thread pool and peak memory).
fn run_child(c: &Config, args: &BenchArgs) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the gantry executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("bench")
        .args(["--workload", c.workload.name()])
        .args(["--batch-size", &c.batch.to_string()])
        .args(["--threads", &c.threads.to_string()])
        .args(["--image-size", &c.size.to_string()])
        .args(["--iters", &args.iters.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--seed", &args.seed.to_string()]);
    if let Some(rows) = args.profile {
        cmd.arg(format!("--profile={rows}"));
    }
    let status = cmd.status().context("cannot start gantry bench")?;
    if !status.success() {
        bail!(
            "{} batch {} threads {} failed ({status})",
            c.workload,
            c.batch,
            c.threads
        );
    }
    Ok(())
}

fn measure(c: &Config, args: &BenchArgs) -> Result<Report> {
    let pool = gantry_tensor::num_threads();
    if pool != c.threads {
        bail!("asked for {} threads, the pool has {pool}", c.threads);
    }
    let (mut trainer, data) = c.workload.setup(c.size, c.batch, args.seed)?;
    let (g, d) = c.workload.layers(c.size)?;
    let flops = c.workload.flops_per_iter(c.size, c.batch)?;
    let flops_on_input = c.workload.flops_on_input_per_iter(c.size, c.batch)?;
    let mut next = || data.clone();
    for _ in 0..args.warmup {
        trainer.train_step(&mut next)?;
    }
    let mut times = Vec::with_capacity(args.iters);
    let before = CpuTicks::now();
    let faults_before = minor_faults();
    for _ in 0..args.iters {
        let t0 = Instant::now();
        trainer.train_step(&mut next)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    let faults = faults_before.and_then(|b| Some((minor_faults()? - b) as f64 / args.iters as f64));
    let foreign = before.and_then(|b| CpuTicks::now().map(|a| a.foreign_cores(&b)));
    if let Some(rows) = args.profile {
        let step = || Ok(trainer.train_step(&mut next)?);
        eprint!("{}", profile_steps(c, args.iters, rows, step)?);
    }
    times.sort_by(f64::total_cmp);
    let median = median(&times);
    let gflop = flops as f64 / 1e9;
    Ok(Report {
        workload: c.workload.name(),
        batch: c.batch,
        threads: c.threads,
        image_size: c.size,
        iters: args.iters,
        sec_per_iter_median: median,
        sec_per_iter_min: times[0],
        sec_per_iter_max: times[times.len() - 1],
        gflop_per_iter: gflop,
        gflop_per_iter_on_input: flops_on_input as f64 / 1e9,
        gflops: gflop / median,
        peak_rss_mb: peak_rss_mb().unwrap_or(f64::NAN),
        minor_faults_per_iter: faults,
        params_g: workloads::params(&g),
        params_d: workloads::params(&d),
        foreign_cores: foreign,
        simd: gantry_tensor::simd::active().to_string(),
    })
}

/// Runs `iters` steps with the profiler on and returns its table, `rows` rows a section, under
/// a heading naming the configuration and the steps' own time.
fn profile_steps<T>(
    c: &Config,
    iters: usize,
    rows: usize,
    mut step: impl FnMut() -> Result<T>,
) -> Result<String> {
    profile::take();
    profile::set_enabled(true);
    let t0 = Instant::now();
    let ran = (0..iters).try_for_each(|_| step().map(drop));
    let elapsed = t0.elapsed();
    profile::set_enabled(false);
    ran?;
    let recorded = profile::take();
    let in_sections: Duration = recorded
        .iter()
        .filter(|r| r.section != profile::PRODUCTS)
        .map(|r| r.time)
        .sum();
    let per = |d: Duration| d.as_secs_f64() * 1e3 / iters as f64;
    Ok(format!(
        "profile of {} at batch {}, {} threads: {iters} steps of {:.3} ms with the profiler on \
         (products are timed inside the ops that make them)\n{}\
         outside ops and optimizers (the trainer, data, losses' bookkeeping): {:.3} ms/it\n",
        c.workload,
        c.batch,
        c.threads,
        per(elapsed),
        profile::table(&recorded, iters as u64, elapsed, rows),
        per(elapsed.saturating_sub(in_sections)),
    ))
}

/// The median of sorted values (the mean of the middle two for an even count, as Python's
/// `statistics.median`).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Peak resident memory of this process in MiB (`VmHWM`), on Linux.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The fields of `/proc/self/stat` after the command name (which may hold spaces), from the
/// state (the 3rd field of the line) on.
fn own_stat_fields() -> Option<Vec<i128>> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    // The state is a letter; every later field is an integer: some,
    // such as tpgid, may be -1, others (rsslim) as large as u64::MAX.
    rest.split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect()
}

/// Minor page faults of this process so far (Linux).
fn minor_faults() -> Option<u64> {
    // minflt is the 10th field of the line, the 7th after the state (index 6).
    u64::try_from(*own_stat_fields()?.get(6)?).ok()
}

/// CPU time counters from `/proc` (Linux), in clock ticks.
struct CpuTicks {
    /// Busy ticks of the whole machine.
    busy: u64,
    /// All ticks of the whole machine (busy and idle).
    total: u64,
    /// CPUs counted.
    cpus: u64,
    /// This process's user + system ticks.
    own: u64,
}

impl CpuTicks {
    fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let first = stat.lines().next()?;
        let v: Vec<u64> = first
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let total: u64 = v.iter().sum();
        let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
        let cpus = stat
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count() as u64;
        // utime and stime are the 14th and 15th fields of the line, the 11th and 12th after
        // the state (indices 10 and 11).
        let f = own_stat_fields()?;
        let own = u64::try_from(f.get(10)? + f.get(11)?).ok()?;
        Some(CpuTicks {
            busy: total - idle,
            total,
            cpus: cpus.max(1),
            own,
        })
    }

    /// Cores other processes kept busy since `before`, on average.
    fn foreign_cores(&self, before: &CpuTicks) -> f64 {
        let wall = (self.total - before.total) as f64 / self.cpus as f64;
        if wall <= 0.0 {
            return 0.0;
        }
        let other = (self.busy - before.busy) as f64 - (self.own - before.own) as f64;
        (other / wall).max(0.0)
    }
}
