//! Seeded random tensors. The generator is always passed in: there is no global RNG, so the same
//! seed gives the same numbers.

use crate::Tensor;
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
