//! Loops compiled for the widest SIMD the CPU has, chosen at run time.
//!
//! The crate is built for baseline x86-64 (SSE2), so a plain loop vectorises four lanes wide
//! even on a CPU with AVX-512. [`widest`] runs a closure through a copy of itself compiled with
//! AVX2 and FMA (x86-64-v3) or with AVX-512 (x86-64-v4) enabled, whichever the CPU has, as the
//! `gemm` crate does for its kernels; the compiler then vectorises the closure's loops 8 or 16
//! lanes wide. One binary is fast on every CPU of its architecture.
//!
//! **The bits do not change with the level.** Rust never contracts a multiply and an add into
//! a fused multiply-add, and the compiler does not reorder floating-point sums, so a loop of
//! `+ - * /` and `sqrt` (each correctly rounded) gives the same bits whatever width it runs at;
//! the tests here and the kernels' own tests run every level the machine has and compare bits.
//! What does differ between CPUs is the GEMM's blocking (the `gemm` crate's kernels), not these
//! loops.
//!
//! ```
//! use gantry_tensor::simd;
//! let mut v = vec![1.5f32; 1000];
//! simd::widest(#[inline(always)] || v.iter_mut().for_each(|x| *x = *x * 2.0 + 1.0));
//! assert!(v.iter().all(|&x| x == 4.0));
//! ```
//!
//! The environment variable `GANTRY_SIMD` (`baseline`, `avx2` or `avx512`) caps the level, to
//! run an AVX-512 machine's loops and kernels as an AVX2 machine would; [`set_active`] does
//! the same from code, and [`at_each_level`] runs a whole computation at each level for a test
//! to compare. It caps gantry's own code, not the `gemm` crate, which picks its kernels itself:
//! an AVX-512 machine capped at `avx2` still runs the crate's AVX-512 kernels, so its results
//! are not an AVX2 machine's bit for bit (the determinism example's hash differs).
//!
//! **Mark the closure `#[inline(always)]`**, as above: the compiler then copies its body into
//! each level's function, where it is compiled for that level; without the mark it may keep
//! one baseline copy that every level calls. The same holds for what the closure calls: only
//! code inlined into it (iterator adaptors, `#[inline(always)]` helpers) runs wide. Wrap the
//! innermost loop, over enough elements (hundreds or more) for the dispatch's one branch not to
//! matter.
//!
//! **Widen only loops that compute more than they move, and whose whole body is yours.** Adam's
//! update (a square root and two divisions a weight) runs a third faster at AVX-512; loops that
//! stream memory (elementwise maps, normalisation) ran no faster on the Zen 4 this was measured
//! on. And a closure that is not inlined (a caller's `Fn` passed through a generic map) becomes
//! a call per element from the wide copy: a leaky ReLU over 2 M values took 0.42 ms that way
//! against 0.13 ms at the baseline, which inlines it.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable that caps the level [`widest`] uses, read once: `baseline`,
/// `avx2` or `avx512` (as oneDNN's `ONEDNN_MAX_CPU_ISA`), to run an AVX-512 machine's kernels
/// as an AVX2 machine would (gantry's own; the `gemm` crate's are its own choice).
pub const ENV: &str = "GANTRY_SIMD";

/// `f32` values in a 64-byte cache line: the unit in which kernels rearrange layouts and
/// prefetch.
pub(crate) const LINE: usize = 16;

/// Neither [`Level::detected`] nor [`active`] has been found yet.
const UNKNOWN: u8 = u8::MAX;

/// An instruction-set level [`widest`] can compile a closure for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    /// What the crate is built for: SSE2 on x86-64, or whatever the target has elsewhere.
    Baseline = 0,
    /// x86-64-v3: AVX, AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE.
    Avx2 = 1,
    /// x86-64-v4: v3 plus AVX-512 F, BW, CD, DQ and VL.
    Avx512 = 2,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Baseline => "baseline",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        })
    }
}

impl FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Level, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "baseline" => Ok(Level::Baseline),
            "avx2" => Ok(Level::Avx2),
            "avx512" => Ok(Level::Avx512),
            other => Err(format!(
                "unknown SIMD level '{other}' (expected baseline, avx2 or avx512)"
            )),
        }
    }
}

impl Level {
    fn from_u8(v: u8) -> Option<Level> {
        match v {
            0 => Some(Level::Baseline),
            1 => Some(Level::Avx2),
            2 => Some(Level::Avx512),
            _ => None,
        }
    }

    /// The widest level this CPU runs, found once and cached: after the first call, a load.
    #[inline]
    pub fn detected() -> Level {
        static CACHED: AtomicU8 = AtomicU8::new(UNKNOWN);
        Level::from_u8(CACHED.load(Ordering::Relaxed)).unwrap_or_else(|| {
            let level = Level::probe();
            CACHED.store(level as u8, Ordering::Relaxed);
            level
        })
    }

    /// Asks the CPU which level it runs.
    fn probe() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let v3 = has!("avx2")
                && has!("fma")
                && has!("bmi1")
                && has!("bmi2")
                && has!("f16c")
                && has!("lzcnt")
                && has!("movbe");
            let v4 = v3
                && has!("avx512f")
                && has!("avx512bw")
                && has!("avx512cd")
                && has!("avx512dq")
                && has!("avx512vl");
            if v4 {
                return Level::Avx512;
            }
            if v3 {
                return Level::Avx2;
            }
        }
        Level::Baseline
    }

    /// Every level this CPU runs, baseline first: what a test compares.
    pub fn available() -> Vec<Level> {
        let top = Level::detected();
        [Level::Baseline, Level::Avx2, Level::Avx512]
            .into_iter()
            .filter(|&l| l <= top)
            .collect()
    }
}

/// The level [`widest`] runs at, process-wide (see [`active`]).
static ACTIVE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// The level [`widest`] runs at now: [`Level::detected`], capped by the environment variable
/// [`ENV`] if set (an unknown value is reported on stderr once and ignored) or by
/// [`set_active`]. After the first call, a load.
#[inline]
pub fn active() -> Level {
    Level::from_u8(ACTIVE.load(Ordering::Relaxed)).unwrap_or_else(|| {
        let mut level = Level::detected();
        if let Ok(value) = std::env::var(ENV) {
            match value.parse::<Level>() {
                Ok(cap) => level = level.min(cap),
                Err(e) => eprintln!("gantry: {ENV}: {e}; using {level}"),
            }
        }
        ACTIVE.store(level as u8, Ordering::Relaxed);
        level
    })
}

/// Makes [`widest`] run at `level` from now on, process-wide, and returns the level it ran at.
/// Every level gives the same numbers, so this changes speed only: tests and benchmarks use it
/// to run whole kernels at each level.
///
/// # Panics
/// If this CPU does not run `level` (see [`Level::available`]).
pub fn set_active(level: Level) -> Level {
    assert!(
        level <= Level::detected(),
        "simd::set_active: this CPU does not run {level} (its widest is {})",
        Level::detected()
    );
    let before = active();
    ACTIVE.store(level as u8, Ordering::Relaxed);
    before
}

/// Runs `f` compiled for the [`active`] level (the CPU's widest unless capped); mark `f`
/// `#[inline(always)]` (see the [module](self) documentation).
#[inline(always)]
pub fn widest<R>(f: impl FnOnce() -> R) -> R {
    at(active(), f)
}

/// Runs `f` compiled for `level`, for tests and benchmarks that compare levels.
///
/// # Panics
/// If this CPU does not run `level` (see [`Level::available`]).
#[inline(always)]
pub fn at<R>(level: Level, f: impl FnOnce() -> R) -> R {
    match level {
        Level::Baseline => f(),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 if level <= Level::detected() => {
            // SAFETY: the CPU has every feature of x86-64-v3 (checked just above).
            unsafe { x86::v3(f) }
        }
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 if level <= Level::detected() => {
            // SAFETY: the CPU has every feature of x86-64-v4 (checked just above).
            unsafe { x86::v4(f) }
        }
        _ => panic!(
            "simd::at: this CPU does not run {level} (its widest is {})",
            Level::detected()
        ),
    }
}

/// Held by [`at_each_level`] while it changes the level process-wide.
static TURN: Mutex<()> = Mutex::new(());

/// Keeps the level as it is while the guard lives: [`at_each_level`] holds it, and so does a
/// test that reads [`active`] more than once (a route chosen by level), which an
/// `at_each_level` running alongside would otherwise change between the reads.
pub(crate) fn level_steady() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `f` once at each level this CPU has ([`Level::available`], baseline first), with
/// [`widest`] set to that level process-wide, and returns the results; the level before is
/// restored, also when `f` panics. Calls from several threads take turns. For tests: every
/// result should be the baseline's, bit for bit.
pub fn at_each_level<R>(f: impl Fn() -> R) -> Vec<(Level, R)> {
    struct Restore(Level);
    impl Drop for Restore {
        fn drop(&mut self) {
            ACTIVE.store(self.0 as u8, Ordering::Relaxed);
        }
    }
    let _turn = level_steady();
    let _restore = Restore(active());
    Level::available()
        .into_iter()
        .map(|level| {
            set_active(level);
            (level, f())
        })
        .collect()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// `f` inlined into a function compiled for x86-64-v3.
    ///
    /// # Safety
    /// The CPU must have every feature enabled here.
    #[target_feature(enable = "avx,avx2,fma,bmi1,bmi2,f16c,lzcnt,movbe")]
    #[inline]
    pub(super) unsafe fn v3<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    /// `f` inlined into a function compiled for x86-64-v4.
    ///
    /// # Safety
    /// The CPU must have every feature enabled here.
    #[target_feature(
        enable = "avx,avx2,fma,bmi1,bmi2,f16c,lzcnt,movbe,avx512f,avx512bw,avx512cd,avx512dq,avx512vl"
    )]
    #[inline]
    pub(super) unsafe fn v4<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Values with the awkward cases a vector lowering might treat differently: signed zeros,
    /// subnormals, infinities, NaN, large and tiny magnitudes.
    fn awkward() -> impl Strategy<Value = f32> {
        prop_oneof![
            4 => -10.0f32..10.0,
            1 => prop::sample::select(vec![
                0.0,
                -0.0,
                f32::MIN_POSITIVE / 8.0,
                -f32::MIN_POSITIVE / 3.0,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                1e30,
                -1e-30,
            ]),
        ]
    }

    /// A loop of the operations the crate's kernels use (arithmetic, `sqrt`, `max`, `min`,
    /// `abs`, comparisons and selects), at `level`.
    fn kernel(level: Level, a: &[f32], b: &[f32]) -> Vec<u32> {
        let mut out = vec![0; a.len()];
        at(
            level,
            #[inline(always)]
            || {
                for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                    let s = x * y + x / (y.abs() + 1.0) - (x - y).sqrt();
                    let t = if x > 0.0 { x } else { 0.2 * x };
                    *o = (s + t.max(y) * t.min(y)).to_bits();
                }
            },
        );
        out
    }

    proptest! {
        #[test]
        fn every_level_gives_the_baseline_bits(
            ab in prop::collection::vec((awkward(), awkward()), 0..200)
        ) {
            let (a, b): (Vec<f32>, Vec<f32>) = ab.into_iter().unzip();
            let base = kernel(Level::Baseline, &a, &b);
            for level in Level::available() {
                prop_assert_eq!(&kernel(level, &a, &b), &base, "{}", level);
            }
        }
    }

    /// The hazard the comparison above guards against, shown to be visible: a fused
    /// multiply-add rounds once where `x * y - 1.0` rounds twice, and gives other bits. No
    /// level may fuse them, even with FMA enabled.
    #[test]
    fn no_level_fuses_a_multiply_and_an_add() {
        let (a, b) = (vec![1.0 + f32::EPSILON; 64], vec![1.0 - f32::EPSILON; 64]);
        let fused: Vec<u32> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| x.mul_add(y, -1.0).to_bits())
            .collect();
        for level in Level::available() {
            let mut got = vec![0; a.len()];
            at(
                level,
                #[inline(always)]
                || {
                    for ((o, &x), &y) in got.iter_mut().zip(&a).zip(&b) {
                        *o = (x * y - 1.0).to_bits();
                    }
                },
            );
            assert_eq!(got, vec![0.0f32.to_bits(); 64], "{level}");
            assert_ne!(got, fused, "{level}");
        }
    }

    #[test]
    fn levels_are_ordered_and_the_detected_one_runs() {
        let all = Level::available();
        assert_eq!(all[0], Level::Baseline);
        assert_eq!(*all.last().unwrap(), Level::detected());
        assert_eq!(at(Level::detected(), || 7), 7);
        assert_eq!(widest(|| 3), 3);
    }

    /// A whole computation at each level, through `widest` inside it: the active level is
    /// the one asked for while it runs, and restored afterwards.
    #[test]
    fn at_each_level_sets_and_restores_the_active_level() {
        let before = active();
        let runs = at_each_level(|| {
            let mut v: Vec<f32> = (0..1000).map(|i| i as f32 * 0.37).collect();
            widest(
                #[inline(always)]
                || v.iter_mut().for_each(|x| *x = (*x * 3.0).sqrt() / 7.0),
            );
            (active(), v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        });
        assert_eq!(active(), before);
        let levels: Vec<Level> = runs.iter().map(|(l, _)| *l).collect();
        assert_eq!(levels, Level::available());
        for (level, (ran_at, bits)) in &runs {
            assert_eq!(ran_at, level);
            assert_eq!(bits, &runs[0].1.1, "{level}");
        }
    }

    #[test]
    fn levels_parse_and_name_themselves() {
        for level in [Level::Baseline, Level::Avx2, Level::Avx512] {
            assert_eq!(level.to_string().parse::<Level>(), Ok(level));
        }
        assert_eq!(" AVX2 ".parse::<Level>(), Ok(Level::Avx2));
        let err = "sse9".parse::<Level>().unwrap_err();
        assert!(err.contains("'sse9'") && err.contains("avx512"), "{err}");
    }

    #[test]
    fn a_level_the_cpu_lacks_panics_with_its_name() {
        if Level::detected() == Level::Avx512 {
            return; // nothing above it to ask for
        }
        let err = std::panic::catch_unwind(|| at(Level::Avx512, || 0)).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("avx512"), "{msg}");
    }
}
