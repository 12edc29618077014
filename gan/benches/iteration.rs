//! One `Trainer::train_step` (D step + G step with Adam) of each workload of the reference
//! benchmark (`gantry_gan::workloads`), at its default batch sizes, on a random batch made
//! before timing. Throughput is the reference's FLOP count of an iteration, so criterion's
//! "elem/s" reads as FLOP/s.

use criterion::{BenchmarkId, Criterion, Throughput};
use gantry_gan::workloads::Workload;
use std::time::Duration;

/// Benches a training iteration of every workload.
pub fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step");
    // The large iterations take seconds: criterion's minimum of 10 samples, one iteration
    // each, is enough to follow a change.
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for w in Workload::ALL {
        let size = w.default_image_size();
        for &n in w.default_batches() {
            let (mut trainer, data) = w.setup(size, n, 0).expect("a valid workload");
            let flops = w.flops_per_iter(size, n).expect("a valid workload");
            group.throughput(Throughput::Elements(flops));
            group.bench_function(BenchmarkId::new(w.name(), n), |b| {
                b.iter(|| {
                    let mut next = || data.clone();
                    trainer.train_step(&mut next).expect("finite losses")
                })
            });
        }
    }
    group.finish();
}
