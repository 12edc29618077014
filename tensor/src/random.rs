//! Seeded random tensors. The generator is always passed in: there is no global RNG, so the same
//! seed gives the same numbers.

use crate::Tensor;
use crate::parallel::fill_chunks;
use ndarray::{ArrayD, IxDyn};
use ndarray_rand::RandomExt;
use rand::Rng;
use rand_distr::{Normal, Uniform};

impl Tensor {
    /// Samples from `N(mean, std²)`.
    ///
    /// ```
    /// use gantry_tensor::Tensor;
    /// use rand::SeedableRng;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let z = Tensor::randn(&[64, 100, 1, 1], 0.0, 1.0, &mut rng);
    /// assert_eq!(z.shape(), &[64, 100, 1, 1]);
    /// ```
    ///
    /// # Panics
    /// If `std` is negative or not finite.
    #[track_caller]
    pub fn randn<R: Rng + ?Sized>(shape: &[usize], mean: f32, std: f32, rng: &mut R) -> Tensor {
        let dist = Normal::new(mean, std)
            .unwrap_or_else(|e| panic!("randn: N({mean}, {std}²) is not a distribution: {e}"));
        Tensor::from_array(ArrayD::random_using(IxDyn(shape), dist, rng))
    }

    /// Samples uniformly from `[low, high)`.
    ///
    /// # Panics
    /// If `low >= high` or either is not finite.
    #[track_caller]
    pub fn rand_uniform<R: Rng + ?Sized>(
        shape: &[usize],
        low: f32,
        high: f32,
        rng: &mut R,
    ) -> Tensor {
        let dist = Uniform::new(low, high)
            .unwrap_or_else(|e| panic!("rand_uniform: [{low}, {high}) is not a range: {e}"));
        Tensor::from_array(ArrayD::random_using(IxDyn(shape), dist, rng))
    }

    /// 1 with probability `p`, else 0: a Bernoulli mask, as dropout uses.
    ///
    /// # Panics
    /// If `p` is outside `[0, 1]`.
    #[track_caller]
    pub fn bernoulli<R: Rng + ?Sized>(shape: &[usize], p: f32, rng: &mut R) -> Tensor {
        assert!(
            (0.0..=1.0).contains(&p),
            "bernoulli: probability {p} outside [0, 1]"
        );
        let n: usize = shape.iter().product();
        // One bulk draw instead of a generator call per element. `fill_bytes` hands out the
        // words `next_u32` would, and `random::<f32>()` is the top 24 bits of such a word
        // times 2^-24, so this compares exactly the same numbers as `random::<f32>() < p`.
        let mut words = vec![0u8; 4 * n];
        rng.fill_bytes(&mut words);
        let threshold = p * (1u32 << 24) as f32;
        let data = words
            .chunks_exact(4)
            .map(|w| {
                let top24 = u32::from_le_bytes([w[0], w[1], w[2], w[3]]) >> 8;
                f32::from(u8::from((top24 as f32) < threshold))
            })
            .collect();
        Tensor::from_vec(shape, data)
    }

    /// A dropout mask: `scale` where the element is kept, with probability `keep`, else 0,
    /// from a stream of random words read through `words(start, dst)`, which writes the
    /// words `start..start + dst.len()` of the stream into `dst`.
    ///
    /// Element `i` is kept when the top 24 bits of word `i`, times 2^-24, are below `keep`:
    /// the same decision as [`Tensor::bernoulli`] (and `random::<f32>() < keep`) on the same
    /// words. `words` is called on disjoint ranges, several at once from the thread pool for a
    /// large mask: a generator that can start anywhere in its stream (a counter-based one, or
    /// ChaCha's `set_word_pos`) gives the same mask at any thread count. The words are drawn a
    /// block at a time into a buffer that stays in the L1 cache, so none are stored.
    ///
    /// ```
    /// use gantry_tensor::Tensor;
    /// // Words 0, 1, 2, ... of a stream that counts in steps of 2^30: the top 24 bits of
    /// // word i are i · 2^22, kept while below 0.5 · 2^24.
    /// let mask = Tensor::keep_mask(&[2, 3], 0.5, 2.0, |start, dst| {
    ///     for (i, w) in dst.iter_mut().enumerate() {
    ///         *w = ((start + i) as u32) << 30;
    ///     }
    /// });
    /// assert_eq!(mask.to_vec(), vec![2., 2., 0., 0., 2., 2.]);
    /// ```
    ///
    /// # Panics
    /// If `keep` is outside `[0, 1]`.
    #[track_caller]
    pub fn keep_mask<F>(shape: &[usize], keep: f32, scale: f32, words: F) -> Tensor
    where
        F: Fn(usize, &mut [u32]) + Sync + Send,
    {
        assert!(
            (0.0..=1.0).contains(&keep),
            "keep_mask: probability {keep} outside [0, 1]"
        );
        /// Words per draw: 16 KiB.
        const BLOCK: usize = 4096;
        let n: usize = shape.iter().product();
        let threshold = keep * (1u32 << 24) as f32;
        let scale = scale.to_bits();
        let data = fill_chunks(n, |start, dst| {
            let mut buffer = [0u32; BLOCK];
            for (b, block) in dst.chunks_mut(BLOCK).enumerate() {
                let drawn = &mut buffer[..block.len()];
                words(start + b * BLOCK, drawn);
                // Without a branch: the decisions are random, so a branch mispredicts half
                // the time (measured: most of the loop), and a select vectorises.
                for (m, &w) in block.iter_mut().zip(drawn.iter()) {
                    let kept = u32::from(((w >> 8) as f32) < threshold);
                    m.write(f32::from_bits(kept.wrapping_neg() & scale));
                }
            }
        });
        Tensor::from_vec(shape, data)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn same_seed_same_numbers() {
        let a = Tensor::randn(&[3, 4], 0.0, 1.0, &mut ChaCha8Rng::seed_from_u64(7));
        let b = Tensor::randn(&[3, 4], 0.0, 1.0, &mut ChaCha8Rng::seed_from_u64(7));
        assert_eq!(a, b);
    }

    #[test]
    fn bernoulli_draws_what_uniform_comparisons_would() {
        use rand::Rng;
        for p in [0.0, 0.3, 0.5, 0.7, 1.0] {
            let mut a = ChaCha8Rng::seed_from_u64(3);
            let mut b = ChaCha8Rng::seed_from_u64(3);
            let mask = Tensor::bernoulli(&[1001], p, &mut a).to_vec();
            let want: Vec<f32> = (0..1001)
                .map(|_| f32::from(u8::from(b.random::<f32>() < p)))
                .collect();
            assert_eq!(mask, want, "p = {p}");
            // The stream continues where per-element draws would have left it.
            assert_eq!(a.random::<u64>(), b.random::<u64>());
        }
    }

    /// `keep_mask` over a seekable stream is `bernoulli` times the scale on the same words,
    /// bit for bit, across its blocks and parallel chunks and at any thread count; words
    /// handed out for the wrong positions fail it.
    #[test]
    fn keep_mask_is_bernoulli_scaled_at_any_thread_count() {
        use rand::Rng;
        let on = |threads: usize, f: &(dyn Fn() -> Vec<f32> + Sync)| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
            pool.expect("a pool").install(f)
        };
        for (n, keep) in [
            (1, 0.5f32),
            (4097, 0.7),
            (8193, 0.3),
            (100_003, 0.9),
            (70_000, 1.0),
            (70_000, 0.0),
        ] {
            let mut stream = ChaCha8Rng::seed_from_u64(n as u64);
            // Start off a block boundary.
            stream.random::<u32>();
            let first = stream.get_word_pos();
            let scale = 1.0 / keep.max(0.5);
            let want = Tensor::bernoulli(&[n], keep, &mut stream.clone()).mul_scalar(scale);
            let mask = |shift: u128| {
                Tensor::keep_mask(&[n], keep, scale, |start, dst| {
                    let mut part = stream.clone();
                    part.set_word_pos(first + start as u128 + shift);
                    part.fill(dst);
                })
                .to_vec()
            };
            for threads in [1, 3] {
                let got = on(threads, &|| mask(0));
                assert!(
                    got.iter()
                        .zip(want.to_vec())
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "n {n}, keep {keep}, {threads} threads"
                );
            }
            if n > 1 && 0.0 < keep && keep < 1.0 {
                assert_ne!(mask(1), want.to_vec(), "a shifted stream passes");
            }
        }
    }

    #[test]
    fn moments_are_close() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let x = Tensor::randn(&[100_000], 2.0, 0.5, &mut rng);
        let mean = x.mean_all();
        let std = x.add_scalar(-mean).powf(2.0).mean_all().sqrt();
        assert!(
            (mean - 2.0).abs() < 0.01 && (std - 0.5).abs() < 0.01,
            "{mean} {std}"
        );
        let u = Tensor::rand_uniform(&[100_000], -1.0, 1.0, &mut rng);
        assert!(u.mean_all().abs() < 0.01);
        assert!(u.to_vec().iter().all(|v| (-1.0..1.0).contains(v)));
    }
}
