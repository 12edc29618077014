//! The adversarial training loop: Algorithm 1 of Goodfellow et al. for every model.
//!
//! Each iteration takes `k` discriminator steps, then one generator step. As in
//! pytorch/examples, the fake batch of the last discriminator step is reused for the generator
//! step (one generator forward per iteration when `k = 1`). Every step runs on fresh tapes:
//! the discriminator sees the fake batch as a constant, and is frozen (its weights enter as
//! constants) while the generator learns, so no gradient leaks either way and none is
//! computed that is not needed.

use crate::error::{GanError, Result};
use crate::models::{Batch, Gan};
use gantry_autodiff::{Reduction, Tape, Var};
use gantry_nn::optim::{AdamConfig, Optimizer, SgdConfig};
use gantry_nn::{Mode, loss, set_requires_grad};
use gantry_tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The generator's objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum GenLoss {
    /// Maximise `log D(G(z))`: strong gradients early in training (the paper's advice).
    #[default]
    NonSaturating,
    /// Minimise `log(1 - D(G(z)))`: the minimax game as written.
    Minimax,
}

/// An optimizer's settings, serialisable into checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimConfig {
    /// Adam.
    Adam {
        /// Learning rate.
        lr: f32,
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
    },
    /// SGD with momentum.
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum.
        momentum: f32,
    },
}

impl OptimConfig {
    /// Adam as Radford et al.: lr 2e-4, betas (0.5, 0.999).
    pub fn adam_gan() -> Self {
        OptimConfig::Adam {
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
        }
    }

    /// The same optimizer with another learning rate.
    pub fn with_lr(&self, lr: f32) -> Self {
        match *self {
            OptimConfig::Adam { beta1, beta2, .. } => OptimConfig::Adam { lr, beta1, beta2 },
            OptimConfig::Sgd { momentum, .. } => OptimConfig::Sgd { lr, momentum },
        }
    }

    /// Builds the optimizer.
    pub fn build(&self) -> Box<dyn Optimizer> {
        match *self {
            OptimConfig::Adam { lr, beta1, beta2 } => Box::new(
                AdamConfig {
                    lr,
                    beta1,
                    beta2,
                    ..Default::default()
                }
                .build(),
            ),
            OptimConfig::Sgd { lr, momentum } => {
                Box::new(SgdConfig::new(lr).momentum(momentum).build())
            }
        }
    }
}

/// Settings of the training loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Discriminator steps per generator step (Algorithm 1's `k`).
    pub k: usize,
    /// The generator's objective.
    pub gen_loss: GenLoss,
    /// Target for real samples in D's loss: 1, or less for one-sided label smoothing (0.9).
    pub real_label: f32,
    /// The generator's optimizer.
    pub optim_g: OptimConfig,
    /// The discriminator's optimizer.
    pub optim_d: OptimConfig,
    /// Seed of the noise and of every tape's random stream.
    pub seed: u64,
    /// Weight of the mode-seeking term of Mao et al. (2019) in the generator's loss; 0 for
    /// none. With a weight `w`, the generator's step draws two noise batches `z1`, `z2` for
    /// the same batch (same labels) and adds `w / (mean|G(z1) - G(z2)| / mean|z1 - z2| + 1e-5)`:
    /// samples must differ as their noise does, which counters a label-conditional generator
    /// that learns to ignore `z`. Needs a model driven by noise (not pix2pix).
    #[serde(default)]
    pub mode_seeking: f32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            k: 1,
            gen_loss: GenLoss::NonSaturating,
            real_label: 1.0,
            optim_g: OptimConfig::adam_gan(),
            optim_d: OptimConfig::adam_gan(),
            seed: 0,
            mode_seeking: 0.0,
        }
    }
}

/// What one iteration measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// The iteration number (1-based).
    pub step: u64,
    /// The discriminator's loss (of its last step).
    pub loss_d: f32,
    /// The generator's loss (GAN term plus L1 term).
    pub loss_g: f32,
    /// Mean `D(x)` on the real batch (probability).
    pub d_real: f32,
    /// Mean `D(G(z))` before the discriminator's update.
    pub d_fake: f32,
    /// Mean `D(G(z))` after it, as the generator's step saw it.
    pub d_fake_g: f32,
    /// The generator's GAN term, where an L1 term is added (pix2pix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_g_gan: Option<f32>,
    /// The generator's weighted L1 term (pix2pix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_g_l1: Option<f32>,
    /// The generator's weighted mode-seeking term, where [`TrainConfig::mode_seeking`] is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_g_ms: Option<f32>,
}

/// A model, its two optimizers, and where training stands.
pub struct Trainer {
    /// The model.
    pub gan: Box<dyn Gan>,
    /// The generator's optimizer.
    pub opt_g: Box<dyn Optimizer>,
    /// The discriminator's optimizer.
    pub opt_d: Box<dyn Optimizer>,
    /// The loop's settings.
    pub config: TrainConfig,
    /// Iterations done.
    pub step: u64,
    /// The stream noise is drawn from.
    pub rng: ChaCha8Rng,
}

/// A seed for the tape of one phase of one step, so that dropout masks depend only on the
/// run seed and where training stands (a resumed run draws the same ones).
fn tape_seed(seed: u64, step: u64, phase: u64) -> u64 {
    let mut z =
        seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ phase.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn mean_prob(logits: &Tensor) -> f32 {
    logits.sigmoid().mean_all()
}

fn check(step: u64, what: &'static str, value: f32) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(GanError::NonFinite { step, what, value })
    }
}

impl Trainer {
    /// A trainer at step 0 with fresh optimizers.
    pub fn new(gan: Box<dyn Gan>, config: TrainConfig) -> Self {
        Trainer {
            opt_g: config.optim_g.build(),
            opt_d: config.optim_d.build(),
            rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x6761_6e74_7279),
            gan,
            config,
            step: 0,
        }
    }

    /// Changes both optimizers' learning rate (e.g. when resuming with another one).
    pub fn set_lr(&mut self, lr: f32) {
        self.opt_g.set_lr(lr);
        self.opt_d.set_lr(lr);
        self.config.optim_g = self.config.optim_g.with_lr(lr);
        self.config.optim_d = self.config.optim_d.with_lr(lr);
    }

    /// One iteration: `k` discriminator steps on batches from `next_batch`, then one generator
    /// step. Nothing is updated by a step whose loss is not finite.
    ///
    /// # Errors
    /// [`GanError::NonFinite`] naming the step and the loss; an optimizer error if a trained
    /// parameter got no gradient.
    pub fn train_step(&mut self, next_batch: &mut dyn FnMut() -> Batch) -> Result<StepMetrics> {
        let Trainer {
            gan,
            opt_g,
            opt_d,
            config,
            step,
            rng,
        } = self;
        let (gan, opt_d) = (gan.as_ref(), opt_d.as_mut());
        let (g, d) = (gan.generator(), gan.discriminator());
        let now = *step + 1;
        let k = config.k.max(1) as u64;
        // Refused before any discriminator step can change the model.
        if config.mode_seeking > 0.0 && gan.noise(1, &mut ChaCha8Rng::seed_from_u64(0)).is_none() {
            return Err(GanError::Batch {
                step: now,
                message: format!(
                    "mode seeking compares samples of two noise batches; {} draws no noise",
                    gan.config().kind()
                ),
            });
        }
        // Algorithm 1's extra discriminator steps, each on its own real and fake batch.
        for j in 0..k - 1 {
            let batch = checked(gan, next_batch(), now)?;
            let tape = Tape::with_seed(tape_seed(config.seed, now, 2 * j));
            let fake = generate(gan, &tape, &batch, rng).value();
            discriminator_step(gan, opt_d, config, &batch, &fake, now, j)?;
        }
        // The last one shares its fake batch with the generator's step.
        let batch = checked(gan, next_batch(), now)?;
        let tape = Tape::with_seed(tape_seed(config.seed, now, 2 * (k - 1)));
        let (fake, mode_seeking) = if config.mode_seeking > 0.0 {
            let (fake, term) = generate_twins(gan, &tape, &batch, rng);
            (fake, Some(term.mul_scalar(config.mode_seeking)))
        } else {
            (generate(gan, &tape, &batch, rng), None)
        };
        let (loss_d, d_real, d_fake) =
            discriminator_step(gan, opt_d, config, &batch, &fake.value(), now, k - 1)?;

        set_requires_grad(d, false);
        let logits = d.forward(gan.discriminator_input(fake, &batch), Mode::Train);
        set_requires_grad(d, true);
        let gan_term = match config.gen_loss {
            GenLoss::NonSaturating => {
                loss::bce_with_logits(logits, &loss::full_like(&logits, 1.0), Reduction::Mean)
            }
            GenLoss::Minimax => {
                loss::bce_with_logits(logits, &loss::full_like(&logits, 0.0), Reduction::Mean).neg()
            }
        };
        let (loss_g, parts) = match gan.l1_weight() {
            w if w > 0.0 => {
                let l1 = loss::l1(fake, &batch.real, Reduction::Mean).mul_scalar(w);
                (
                    gan_term.add(l1),
                    Some((gan_term.value().item(), l1.value().item())),
                )
            }
            _ => (gan_term, None),
        };
        let loss_g = match mode_seeking {
            Some(term) => loss_g.add(term),
            None => loss_g,
        };
        let loss_g_value = loss_g.value().item();
        let loss_g_ms = mode_seeking.map(|t| t.value().item());
        check(now, "loss_g", loss_g_value)?;
        let grads = loss_g.backward();
        let d_fake_g = mean_prob(&logits.value());
        // The tape holds the parameters' values: without it the optimizer updates them in place.
        drop(tape);
        opt_g.step(g, &grads)?;
        *step = now;
        Ok(StepMetrics {
            step: now,
            loss_d,
            loss_g: loss_g_value,
            d_real,
            d_fake,
            d_fake_g,
            loss_g_gan: parts.map(|p| p.0),
            loss_g_l1: parts.map(|p| p.1),
            loss_g_ms,
        })
    }
}

/// `batch` if it fits `gan` (a multiple of its packing; labels in range for a
/// label-conditional model), else an error naming the step, before anything is drawn or
/// updated.
fn checked(gan: &dyn Gan, batch: Batch, step: u64) -> Result<Batch> {
    let bad = |message: String| Err(GanError::Batch { step, message });
    let (n, m) = (batch.len(), gan.pack());
    if n == 0 || !n.is_multiple_of(m) {
        return bad(format!(
            "a batch of {n} samples cannot be packed by {m}: the batch size must be a positive multiple of the discriminator's packing"
        ));
    }
    if let Some(k) = gan.num_classes() {
        match &batch.labels {
            None => {
                return bad(format!(
                    "{} is label-conditional but the batch has no labels",
                    gan.config().kind()
                ));
            }
            Some(l) if l.len() != n => {
                return bad(format!("{} labels for a batch of {n} samples", l.len()));
            }
            Some(l) => {
                if let Some(y) = l.iter().find(|&&y| y >= k) {
                    return bad(format!("label {y} is out of range for {k} classes"));
                }
            }
        }
    }
    Ok(batch)
}

/// The generator's output for `batch` on `tape`, in training mode.
fn generate<'t>(gan: &dyn Gan, tape: &'t Tape, batch: &Batch, rng: &mut ChaCha8Rng) -> Var<'t> {
    let input = gan.generator_input(batch, rng);
    gan.generator().forward(tape.constant(input), Mode::Train)
}

/// Mode seeking: the generator's output for `batch` from noise `z1` (the fake batch of the
/// step), and the unweighted term `1 / (mean|G(z1) - G(z2)| / mean|z1 - z2| + 1e-5)` for a
/// second noise batch `z2` with the same labels. Both run as one batch of `2N`, so batch
/// norm sees one set of statistics per step, as without the term.
fn generate_twins<'t>(
    gan: &dyn Gan,
    tape: &'t Tape,
    batch: &Batch,
    rng: &mut ChaCha8Rng,
) -> (Var<'t>, Var<'t>) {
    let n = batch.len();
    let mut noise = || {
        gan.noise(n, rng)
            .expect("train_step refuses mode seeking for a model without noise")
    };
    let (z1, z2) = (noise(), noise());
    let dz = mean_abs_diff(&z1, &z2);
    let labels = batch.labels.as_deref();
    let input = Tensor::concat(
        0,
        &[&gan.latent_input(z1, labels), &gan.latent_input(z2, labels)],
    );
    let both = gan.generator().forward(tape.constant(input), Mode::Train);
    let (fake, twin) = (both.slice_axis(0, 0, n), both.slice_axis(0, n, 2 * n));
    (fake, mode_seeking_term(fake, twin, dz))
}

/// `1 / (mean|a - b| / dz + 1e-5)`: large when two samples of different noise (`dz` apart
/// on average) are alike.
fn mode_seeking_term<'t>(a: Var<'t>, b: Var<'t>, dz: f32) -> Var<'t> {
    a.sub(b)
        .abs()
        .mean()
        .mul_scalar(1.0 / dz)
        .add_scalar(1e-5)
        .powf(-1.0)
}

/// `mean|a - b|` of two tensors of one shape.
fn mean_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let (a, b) = (a.as_slice(), b.as_slice());
    let sum: f64 = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs() as f64)
        .sum();
    (sum / a.len().max(1) as f64) as f32
}

/// The discriminator's logits for sample `x` of `batch`, in training mode.
fn score<'t>(gan: &dyn Gan, batch: &Batch, x: Var<'t>) -> Var<'t> {
    gan.discriminator()
        .forward(gan.discriminator_input(x, batch), Mode::Train)
}

/// One discriminator update on a real batch and a (constant) fake batch: returns the loss,
/// mean `D(x)` and mean `D(G(z))`.
fn discriminator_step(
    gan: &dyn Gan,
    opt_d: &mut dyn Optimizer,
    config: &TrainConfig,
    batch: &Batch,
    fake: &Tensor,
    step: u64,
    j: u64,
) -> Result<(f32, f32, f32)> {
    let tape = Tape::with_seed(tape_seed(config.seed, step, 2 * j + 1));
    let (real_logits, fake_logits) = if gan.fake_first() {
        let f = score(gan, batch, tape.constant(fake.clone()));
        (score(gan, batch, tape.constant(batch.real.clone())), f)
    } else {
        let r = score(gan, batch, tape.constant(batch.real.clone()));
        (r, score(gan, batch, tape.constant(fake.clone())))
    };
    let real_target = loss::full_like(&real_logits, config.real_label);
    let loss_real = loss::bce_with_logits(real_logits, &real_target, Reduction::Mean);
    let loss_fake = loss::bce_with_logits(
        fake_logits,
        &loss::full_like(&fake_logits, 0.0),
        Reduction::Mean,
    );
    let loss_d = loss_real.add(loss_fake).mul_scalar(gan.d_loss_scale());
    let value = loss_d.value().item();
    check(step, "loss_d", value)?;
    let grads = loss_d.backward();
    let (d_real, d_fake) = (
        mean_prob(&real_logits.value()),
        mean_prob(&fake_logits.value()),
    );
    // The tape holds the parameters' values: without it the optimizer updates them in place.
    drop(tape);
    opt_d.step(gan.discriminator(), &grads)?;
    Ok((value, d_real, d_fake))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_seeking_term_is_large_for_alike_samples_and_pushes_them_apart() {
        let tape = Tape::new();
        let same = tape.constant(Tensor::from_vec(&[2], vec![0.5, -0.5]));
        let t = mode_seeking_term(same, same, 1.0).value().item();
        assert!((t - 1e5).abs() < 1.0, "{t}");

        let a = tape.leaf(Tensor::from_vec(&[2], vec![1.0, -3.0]));
        let b = tape.constant(Tensor::zeros(&[2]));
        // mean|a - b| = 2, noise 4 apart: 1 / (0.5 + 1e-5).
        let term = mode_seeking_term(a, b, 4.0);
        assert!((term.value().item() - 1.0 / 0.50001).abs() < 1e-5);
        let g = term.backward().get(a).unwrap().to_vec();
        // Descending the term moves each element of `a` away from `b`.
        assert!(g[0] < 0.0 && g[1] > 0.0, "{g:?}");
        assert!(
            (g[0] + 0.5).abs() < 1e-3,
            "d/da0 = -1/(4 * 0.25 * 2) = -0.5, got {g:?}"
        );
    }

    #[test]
    fn mean_abs_diff_of_known_tensors() {
        let a = Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let b = Tensor::from_vec(&[2, 2], vec![0.0, 4.0, 3.0, 0.0]);
        assert_eq!(mean_abs_diff(&a, &b), 7.0 / 4.0);
    }
}
