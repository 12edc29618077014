//! Improved precision and recall (Kynkäänniemi et al. 2019): each set's manifold is the union of
//! balls around its samples, each ball's radius the distance to the sample's `k`-th nearest
//! neighbour within its own set (the paper uses `k = 3`). Precision is the fraction of generated
//! samples inside the real manifold (how many fakes look real); recall, the fraction of real
//! samples inside the generated manifold (how much of the real data the generator covers).

use crate::metrics::kid::to_matrix;
use gantry_tensor::Tensor;
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

/// Improved precision and recall, with the `k` and the sample counts they used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRecall {
    /// The fraction of generated samples inside the real manifold.
    pub precision: f64,
    /// The fraction of real samples inside the generated manifold.
    pub recall: f64,
    /// The neighbour that sets each ball's radius.
    pub k: usize,
    /// Real samples used.
    pub real: usize,
    /// Generated samples used.
    pub fake: usize,
}

/// Rows per block of the distance computations: bounds memory at `BLOCK x N` distances.
const BLOCK: usize = 512;

/// Squared distances from each row of `a[rows]` to every row of `b`.
fn squared_distances(
    a: &DMatrix<f64>,
    rows: std::ops::Range<usize>,
    b: &DMatrix<f64>,
) -> DMatrix<f64> {
    let block = a.rows(rows.start, rows.len()).into_owned();
    let na: Vec<f64> = block.row_iter().map(|r| r.norm_squared()).collect();
    let nb: Vec<f64> = b.row_iter().map(|r| r.norm_squared()).collect();
    let mut d = &block * b.transpose();
    for i in 0..d.nrows() {
        for j in 0..d.ncols() {
            d[(i, j)] = (na[i] + nb[j] - 2.0 * d[(i, j)]).max(0.0);
        }
    }
    d
}

/// The squared distance from each row of `x` to its `k`-th nearest other row.
fn knn_radii(x: &DMatrix<f64>, k: usize) -> Vec<f64> {
    let n = x.nrows();
    let mut radii = Vec::with_capacity(n);
    for start in (0..n).step_by(BLOCK) {
        let rows = start..(start + BLOCK).min(n);
        let d = squared_distances(x, rows.clone(), x);
        for (i, row) in rows.zip(d.row_iter()) {
            let mut others: Vec<f64> = row
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &v)| v)
                .collect();
            let kth = k.min(others.len()) - 1;
            others.select_nth_unstable_by(kth, f64::total_cmp);
            radii.push(others[kth]);
        }
    }
    radii
}

/// The fraction of rows of `queries` within the radius of at least one row of `points`.
fn coverage(queries: &DMatrix<f64>, points: &DMatrix<f64>, radii: &[f64]) -> f64 {
    let n = queries.nrows();
    let mut inside = 0usize;
    for start in (0..n).step_by(BLOCK) {
        let d = squared_distances(queries, start..(start + BLOCK).min(n), points);
        inside += d
            .row_iter()
            .filter(|row| row.iter().zip(radii).any(|(&dist, &r)| dist <= r))
            .count();
    }
    inside as f64 / n as f64
}

/// Improved precision and recall of `fake` against `real` features (`[N, D]` each, at least
/// `k + 1` rows, equal widths).
///
/// # Panics
/// If `k` is 0, a set has `k` rows or fewer, or the widths differ.
#[track_caller]
pub fn precision_recall(real: &Tensor, fake: &Tensor, k: usize) -> PrecisionRecall {
    let (r, f) = (to_matrix(real), to_matrix(fake));
    assert!(
        k > 0 && r.nrows() > k && f.nrows() > k && r.ncols() == f.ncols(),
        "precision_recall: {}x{} real and {}x{} fake features with k = {k} (need more than k rows each, equal widths)",
        r.nrows(),
        r.ncols(),
        f.nrows(),
        f.ncols()
    );
    let (real_radii, fake_radii) = (knn_radii(&r, k), knn_radii(&f, k));
    PrecisionRecall {
        precision: coverage(&f, &r, &real_radii),
        recall: coverage(&r, &f, &fake_radii),
        k,
        real: r.nrows(),
        fake: f.nrows(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn gaussian(n: usize, shift: f32, seed: u64) -> Tensor {
        Tensor::randn(&[n, 4], shift, 1.0, &mut ChaCha8Rng::seed_from_u64(seed))
    }

    #[test]
    fn identical_sets_have_precision_and_recall_one() {
        let x = gaussian(300, 0.0, 1);
        let pr = precision_recall(&x, &x, 3);
        assert_eq!((pr.precision, pr.recall), (1.0, 1.0));
        assert_eq!((pr.k, pr.real, pr.fake), (3, 300, 300));
    }

    #[test]
    fn disjoint_sets_have_precision_and_recall_near_zero() {
        let pr = precision_recall(&gaussian(300, 0.0, 1), &gaussian(300, 20.0, 2), 3);
        assert_eq!((pr.precision, pr.recall), (0.0, 0.0));
    }

    #[test]
    fn a_collapsed_generator_is_precise_but_recalls_little() {
        // Fakes all near one real point: they look real, but cover almost none of the data.
        let real = gaussian(400, 0.0, 1);
        let fake = gaussian(400, 0.0, 2).mul_scalar(0.01);
        let pr = precision_recall(&real, &fake, 3);
        assert!(pr.precision > 0.95, "{pr:?}");
        assert!(pr.recall < 0.05, "{pr:?}");
    }

    #[test]
    fn radii_are_the_kth_neighbour_distances() {
        let x = DMatrix::from_row_slice(4, 1, &[0.0, 1.0, 3.0, 7.0]);
        // Squared distances to the 2nd nearest other point: 0 -> 3 (9), 1 -> 3 (4), 3 -> 0 (9), 7 -> 1 (36).
        assert_eq!(knn_radii(&x, 2), vec![9.0, 4.0, 9.0, 36.0]);
    }
}
