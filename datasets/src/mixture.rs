//! Synthetic 2-D Gaussian mixtures for studying mode collapse: the ring of 8 and the 5x5 grid
//! used by the PacGAN paper (Lin et al., 2018) and the unrolled-GAN paper before it.

use crate::dataset::{Dataset, Example, check_index};
use gantry_tensor::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// An equal-weight mixture of isotropic 2-D Gaussians sharing one standard deviation.
#[derive(Clone, Debug, PartialEq)]
pub struct Mixture {
    centres: Vec<[f32; 2]>,
    std: f32,
}

impl Mixture {
    /// A mixture with the given mode centres and per-axis standard deviation.
    ///
    /// # Panics
    /// If `centres` is empty or `std` is negative or not finite.
    #[track_caller]
    pub fn new(centres: Vec<[f32; 2]>, std: f32) -> Mixture {
        assert!(!centres.is_empty(), "Mixture::new: no centres");
        assert!(
            std.is_finite() && std >= 0.0,
            "Mixture::new: std {std} is not a non-negative number"
        );
        Mixture { centres, std }
    }

    /// `modes` Gaussians evenly spaced on a circle of `radius`, the first at angle 0.
    pub fn ring(modes: usize, radius: f32, std: f32) -> Mixture {
        let centres = (0..modes)
            .map(|k| {
                let t = 2.0 * std::f64::consts::PI * k as f64 / modes as f64;
                [
                    (radius as f64 * t.cos()) as f32,
                    (radius as f64 * t.sin()) as f32,
                ]
            })
            .collect();
        Mixture::new(centres, std)
    }

    /// PacGAN's ring: 8 modes on the unit circle, standard deviation 0.01.
    pub fn ring8() -> Mixture {
        Mixture::ring(8, 1.0, 0.01)
    }

    /// A square grid of Gaussians with means at every pair of `coords`.
    pub fn grid(coords: &[f32], std: f32) -> Mixture {
        let centres = coords
            .iter()
            .flat_map(|&x| coords.iter().map(move |&y| [x, y]))
            .collect();
        Mixture::new(centres, std)
    }

    /// PacGAN's grid: 25 modes at {-4, -2, 0, 2, 4}², standard deviation 0.05.
    pub fn grid25() -> Mixture {
        Mixture::grid(&[-4.0, -2.0, 0.0, 2.0, 4.0], 0.05)
    }

    /// The mode centres.
    pub fn centres(&self) -> &[[f32; 2]] {
        &self.centres
    }

    /// The standard deviation of every mode, per axis.
    pub fn std(&self) -> f32 {
        self.std
    }

    /// The index of the mode nearest to `point` and the distance to its centre.
    pub fn nearest(&self, point: [f32; 2]) -> (usize, f32) {
        let d2 = |c: &[f32; 2]| (c[0] - point[0]).powi(2) + (c[1] - point[1]).powi(2);
        let (k, best) = self
            .centres
            .iter()
            .enumerate()
            .map(|(k, c)| (k, d2(c)))
            .fold((0, f32::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
        (k, best.sqrt())
    }

    /// Draws one point: a mode uniformly at random, then Gaussian noise around it.
    /// Returns the point and its mode.
    pub fn sample_one<R: Rng + ?Sized>(&self, rng: &mut R) -> ([f32; 2], usize) {
        let k = rng.random_range(0..self.centres.len());
        let noise = Normal::new(0.0f32, self.std).expect("std checked in new");
        let c = self.centres[k];
        ([c[0] + noise.sample(rng), c[1] + noise.sample(rng)], k)
    }

    /// Draws `n` points as an `[n, 2]` tensor.
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Tensor {
        let mut data = Vec::with_capacity(2 * n);
        for _ in 0..n {
            data.extend_from_slice(&self.sample_one(rng).0);
        }
        Tensor::from_vec(&[n, 2], data)
    }

    /// A fixed data set of `n` points drawn with a ChaCha8 generator seeded by `seed`; each
    /// example's label is its mode. The same seed gives the same points on every machine.
    pub fn dataset(&self, n: usize, seed: u64) -> PointSet {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (points, modes) = (0..n).map(|_| self.sample_one(&mut rng)).unzip();
        PointSet {
            points,
            modes,
            mixture: self.clone(),
        }
    }
}

/// Points drawn from a [`Mixture`], held as a [`Dataset`] whose examples are `[2]` tensors
/// labelled with their mode.
#[derive(Clone, Debug, PartialEq)]
pub struct PointSet {
    points: Vec<[f32; 2]>,
    modes: Vec<usize>,
    mixture: Mixture,
}

impl PointSet {
    /// The points.
    pub fn points(&self) -> &[[f32; 2]] {
        &self.points
    }

    /// The mixture they were drawn from.
    pub fn mixture(&self) -> &Mixture {
        &self.mixture
    }
}

impl Dataset for PointSet {
    fn len(&self) -> usize {
        self.points.len()
    }

    fn get(&self, index: usize) -> Example {
        check_index("PointSet::get", index, self.points.len());
        Example {
            image: Tensor::from_vec(&[2], self.points[index].to_vec()),
            target: None,
            label: Some(self.modes[index]),
        }
    }

    fn image_shape(&self) -> Vec<usize> {
        vec![2]
    }

    fn num_classes(&self) -> Option<usize> {
        Some(self.mixture.centres.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centres_are_the_papers() {
        let ring = Mixture::ring8();
        assert_eq!(ring.centres().len(), 8);
        assert_eq!(ring.std(), 0.01);
        for c in ring.centres() {
            assert!((c[0].hypot(c[1]) - 1.0).abs() < 1e-6);
        }
        let grid = Mixture::grid25();
        assert_eq!(grid.centres().len(), 25);
        assert_eq!(grid.centres()[0], [-4.0, -4.0]);
        assert_eq!(grid.centres()[24], [4.0, 4.0]);
        let (k, d) = grid.nearest([1.9, -0.1]);
        assert_eq!(grid.centres()[k], [2.0, 0.0]);
        assert!((d - 0.02f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn same_seed_same_points() {
        let a = Mixture::grid25().dataset(50, 3);
        assert_eq!(a, Mixture::grid25().dataset(50, 3));
        assert_ne!(a, Mixture::grid25().dataset(50, 4));
    }
}
