//! [`Batches`]: a seeded, shuffling iterator of NCHW batches over any [`Dataset`], with epoch
//! counting, an optional endless mode for step-based training, and per-example augmentation.

use crate::dataset::{Dataset, Example};
use crate::transform::Augment;
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// How [`Batches`] walks a data set.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchConfig {
    /// Examples per batch (at least 1).
    pub batch_size: usize,
    /// Visit the examples in a new random order every epoch (otherwise in index order).
    pub shuffle: bool,
    /// Skip the last batch of an epoch when it would be smaller than `batch_size`.
    pub drop_last: bool,
    /// Seed of the shuffling and the augmentation: the same seed gives the same batches, bit for
    /// bit, whatever the number of threads.
    pub seed: u64,
    /// Epochs to run; `None` runs forever (for step-based training).
    pub epochs: Option<usize>,
    /// Augmentation applied to each example (to both sides of a pair alike).
    pub augment: Option<Augment>,
}

impl BatchConfig {
    /// One shuffled epoch of `batch_size`, seed 0, keeping the last partial batch, no
    /// augmentation.
    pub fn new(batch_size: usize) -> BatchConfig {
        BatchConfig {
            batch_size,
            shuffle: true,
            drop_last: false,
            seed: 0,
            epochs: Some(1),
            augment: None,
        }
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets shuffling.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Sets whether a last partial batch is dropped.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Runs `epochs` epochs.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = Some(epochs);
        self
    }

    /// Runs forever, reshuffling at every epoch.
    pub fn forever(mut self) -> Self {
        self.epochs = None;
        self
    }

    /// Sets the augmentation.
    pub fn augment(mut self, augment: Augment) -> Self {
        self.augment = Some(augment);
        self
    }
}

/// A batch: examples stacked along a new first axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `[N, C, H, W]` images in [-1, 1] (the inputs of a paired set; `[N, 2]` for points).
    pub images: Tensor,
    /// `[N, C, H, W]` targets of a paired set.
    pub targets: Option<Tensor>,
    /// The examples' labels, where the data set has labels.
    pub labels: Option<Vec<usize>>,
    /// The data set indices of the examples.
    pub indices: Vec<usize>,
    /// The epoch this batch belongs to (from 0).
    pub epoch: usize,
}

/// SplitMix64's finaliser: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A generator for `(seed, epoch, slot)`: independent of everything drawn before, so results
/// do not depend on thread scheduling and an epoch can be replayed on its own.
fn rng_for(seed: u64, epoch: usize, slot: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(mix(mix(seed) ^ epoch as u64) ^ slot))
}

/// Seeded batches over a data set. See [`BatchConfig`].
///
/// ```
/// use gantry_datasets::{BatchConfig, Batches, Mixture};
/// let points = Mixture::grid25().dataset(1000, 1);
/// let batches: Vec<_> = Batches::new(&points, BatchConfig::new(300).epochs(2)).collect();
/// assert_eq!(batches.len(), 8); // 300, 300, 300, 100 per epoch
/// assert_eq!(batches[3].images.shape(), &[100, 2]);
/// assert_eq!(batches[4].epoch, 1);
/// ```
pub struct Batches<D> {
    data: D,
    config: BatchConfig,
    order: Vec<usize>,
    pos: usize,
    epoch: usize,
}

impl<D: Dataset> Batches<D> {
    /// Batches of `data` (pass `&set`, a `Box<dyn Dataset>` or an `Arc`).
    ///
    /// # Panics
    /// If `config.batch_size` is 0, or augmentation is set for a data set whose examples are
    /// not CHW images.
    #[track_caller]
    pub fn new(data: D, config: BatchConfig) -> Batches<D> {
        assert!(config.batch_size > 0, "Batches::new: batch_size is 0");
        if config.augment.is_some() {
            let shape = data.image_shape();
            assert!(
                shape.len() == 3,
                "Batches::new: augmentation needs CHW images, examples are {shape:?}"
            );
        }
        let mut batches = Batches {
            data,
            config,
            order: Vec::new(),
            pos: 0,
            epoch: 0,
        };
        batches.start_epoch();
        batches
    }

    fn start_epoch(&mut self) {
        self.order = (0..self.data.len()).collect();
        if self.config.shuffle {
            self.order
                .shuffle(&mut rng_for(self.config.seed, self.epoch, u64::MAX));
        }
        self.pos = 0;
    }

    /// The current epoch (from 0): that of the batch last returned, 0 before the first, and
    /// the number of epochs run once a finite iterator has ended.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Batches in one epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.data.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The data set.
    pub fn dataset(&self) -> &D {
        &self.data
    }

    /// The configuration.
    pub fn config(&self) -> &BatchConfig {
        &self.config
    }

    /// Moves past `n` batches without assembling them, so that a resumed run continues with
    /// the batch it would have seen next (orders and augmentation depend only on the seed, the
    /// epoch and the position). Returns how many were skipped: fewer than `n` only when a
    /// finite iterator runs out.
    pub fn skip_batches(&mut self, n: usize) -> usize {
        (0..n).take_while(|_| self.next_indices().is_some()).count()
    }

    /// The indices of the next batch and the position of its first example, advancing.
    fn next_indices(&mut self) -> Option<(Vec<usize>, usize)> {
        if self.batches_per_epoch() == 0 || self.config.epochs.is_some_and(|e| self.epoch >= e) {
            return None;
        }
        let remaining = self.order.len() - self.pos;
        if remaining == 0 || (self.config.drop_last && remaining < self.config.batch_size) {
            self.epoch += 1;
            if self.config.epochs.is_some_and(|e| self.epoch >= e) {
                return None;
            }
            self.start_epoch();
        }
        let end = (self.pos + self.config.batch_size).min(self.order.len());
        let first_slot = self.pos;
        self.pos = end;
        Some((self.order[first_slot..end].to_vec(), first_slot))
    }

    fn example(&self, index: usize, slot: usize) -> Example {
        let example = self.data.get(index);
        match &self.config.augment {
            Some(aug) => aug.apply_example(
                example,
                &mut rng_for(self.config.seed, self.epoch, slot as u64),
            ),
            None => example,
        }
    }
}

/// Stacks tensors of one shape along a new first axis.
fn stack(items: &[&Tensor]) -> Tensor {
    let shape = items[0].shape().to_vec();
    let mut data = Vec::with_capacity(items.len() * items[0].len());
    for t in items {
        assert_eq!(
            t.shape(),
            &shape[..],
            "Batches: examples of different shapes"
        );
        data.extend_from_slice(&t.as_slice());
    }
    let mut batch_shape = vec![items.len()];
    batch_shape.extend(shape);
    Tensor::from_vec(&batch_shape, data)
}

impl<D: Dataset> Iterator for Batches<D> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let (indices, first_slot) = self.next_indices()?;
        let examples: Vec<Example> = indices
            .par_iter()
            .enumerate()
            .map(|(k, &i)| self.example(i, first_slot + k))
            .collect();
        let images = stack(&examples.iter().map(|e| &e.image).collect::<Vec<_>>());
        let targets: Option<Vec<&Tensor>> = examples.iter().map(|e| e.target.as_ref()).collect();
        let labels: Option<Vec<usize>> = examples.iter().map(|e| e.label).collect();
        Some(Batch {
            images,
            targets: targets.map(|t| stack(&t)),
            labels,
            indices,
            epoch: self.epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_set::ImageSet;

    fn ramp(n: usize) -> ImageSet {
        ImageSet::from_chw([1, 1, 1], (0..n as u8).collect())
    }

    #[test]
    fn every_example_once_per_epoch() {
        let set = ramp(10);
        let mut seen: Vec<usize> = Batches::new(&set, BatchConfig::new(3))
            .flat_map(|b| b.indices)
            .collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn drop_last_and_epochs() {
        let set = ramp(10);
        let b: Vec<Batch> =
            Batches::new(&set, BatchConfig::new(4).drop_last(true).epochs(3)).collect();
        assert_eq!(b.len(), 6);
        assert_eq!(
            b.iter().map(|b| b.epoch).collect::<Vec<_>>(),
            vec![0, 0, 1, 1, 2, 2]
        );
        assert!(
            Batches::new(&set, BatchConfig::new(11).drop_last(true))
                .next()
                .is_none()
        );
        let forever = Batches::new(&set, BatchConfig::new(4).forever());
        assert_eq!(forever.take(100).last().map(|b| b.epoch), Some(33));
    }

    #[test]
    fn skipping_lands_on_the_same_batch() {
        let set = ramp(10);
        let config = BatchConfig::new(3).seed(5).drop_last(true).forever();
        let straight: Vec<Batch> = Batches::new(&set, config.clone()).take(8).collect();
        let mut resumed = Batches::new(&set, config);
        resumed.skip_batches(7);
        assert_eq!(resumed.next().as_ref(), straight.last());
    }

    #[test]
    fn skipping_resumes_where_a_run_would_be() {
        let set = ramp(10);
        for drop_last in [false, true] {
            let config = BatchConfig::new(4).drop_last(drop_last).seed(3).epochs(4);
            let all: Vec<Batch> = Batches::new(&set, config.clone()).collect();
            for skip in 0..=all.len() + 2 {
                let mut it = Batches::new(&set, config.clone());
                assert_eq!(it.skip_batches(skip), skip.min(all.len()));
                let rest: Vec<Batch> = it.collect();
                assert_eq!(
                    rest,
                    all[skip.min(all.len())..],
                    "skip {skip}, drop_last {drop_last}"
                );
            }
        }
    }

    #[test]
    fn in_order_without_shuffle_and_values_scaled() {
        let set = ramp(3);
        let b = Batches::new(&set, BatchConfig::new(3).shuffle(false))
            .next()
            .unwrap();
        assert_eq!(b.indices, vec![0, 1, 2]);
        assert_eq!(b.images.shape(), &[3, 1, 1, 1]);
        assert_eq!(b.images.to_vec()[0], -1.0);
    }
}
