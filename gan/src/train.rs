//! The adversarial training loop: Algorithm 1 of Goodfellow et al. for every model.
//!
//! Each iteration takes `k` discriminator steps, then one generator step. As in
//! pytorch/examples, the fake batch of the last discriminator step is reused for the generator
//! step (one generator forward per iteration when `k = 1`). Every step runs on fresh tapes:
//! the discriminator sees the fake batch as a constant, and is frozen (its weights enter as
//! constants) while the generator learns, so no gradient leaks either way and none is
//! computed that is not needed.
//!
//! What each player minimises is the [`crate::objective`]'s: the loop sums the named parts it
//! returns and logs each by name. Where configured, everything D sees (real and fake) goes
//! through [`crate::diffaug`] on the tape, and the generator's weights are averaged
//! ([`Ema`]) after each of its updates.

use crate::diffaug::{self, DiffAug};
use crate::ema::Ema;
use crate::error::{GanError, Result};
use crate::models::{Batch, Gan, ModelConfig};
use crate::objective::{DContext, GContext, Objective, ObjectiveConfig, score};
use gantry_autodiff::{Tape, Var};
use gantry_nn::optim::{AdamConfig, Optimizer, SgdConfig};
use gantry_nn::{Mode, set_requires_grad};
use gantry_tensor::{Tensor, with_workers_awake};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// What each player minimises: an adversarial loss and extra terms.
    pub objective: ObjectiveConfig,
    /// The generator's optimizer.
    pub optim_g: OptimConfig,
    /// The discriminator's optimizer.
    pub optim_d: OptimConfig,
    /// Seed of the noise and of every tape's random stream.
    pub seed: u64,
    /// Decay of an exponential moving average of the generator's weights (0.999, with a
    /// warm-up; see [`Ema`]), used for samples; `None`: no average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<f32>,
    /// Differentiable augmentation of everything the discriminator sees (DiffAugment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diffaug: Vec<DiffAug>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            k: 1,
            objective: ObjectiveConfig::default(),
            optim_g: OptimConfig::adam_gan(),
            optim_d: OptimConfig::adam_gan(),
            seed: 0,
            ema: None,
            diffaug: Vec::new(),
        }
    }
}

/// What one iteration measured: both players' losses and every named part and figure the
/// objective reported (`loss_d_real`, `loss_d_fake`, `gp`, `d_real`, `w_estimate`, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// The iteration number (1-based).
    pub step: u64,
    /// The discriminator's loss (of its last step).
    pub loss_d: f32,
    /// The generator's loss.
    pub loss_g: f32,
    /// The parts of both losses and the logged figures, by name. The discriminator's are
    /// from its last step of the iteration.
    #[serde(flatten)]
    pub parts: BTreeMap<String, f32>,
}

impl StepMetrics {
    /// The value logged under `name`, if the objective logged it.
    pub fn get(&self, name: &str) -> Option<f32> {
        match name {
            "loss_d" => Some(self.loss_d),
            "loss_g" => Some(self.loss_g),
            _ => self.parts.get(name).copied(),
        }
    }
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
    /// The moving average of the generator's weights, where [`TrainConfig::ema`] is set.
    pub ema: Option<Ema>,
    objective: Objective,
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

fn check(step: u64, what: &'static str, value: f32) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(GanError::NonFinite { step, what, value })
    }
}

impl Trainer {
    /// A trainer at step 0 with fresh optimizers.
    ///
    /// # Errors
    /// [`GanError::Objective`] if the objective names an unknown loss or term, has a
    /// nonsensical setting or does not fit the model (mode seeking without noise, a penalty
    /// through a discriminator without second derivatives), or the EMA decay or augmentation
    /// does not fit.
    pub fn new(gan: Box<dyn Gan>, config: TrainConfig) -> Result<Self> {
        let objective = config.objective.build()?;
        objective.check(gan.as_ref())?;
        if let Some(d) = config.ema
            && !(d > 0.0 && d < 1.0)
        {
            return Err(GanError::Objective {
                message: format!("the EMA decay {d} must be in (0, 1), such as 0.999"),
            });
        }
        if !config.diffaug.is_empty() {
            check_diffaug(gan.as_ref())?;
        }
        gan.set_progress(0);
        Ok(Trainer {
            opt_g: config.optim_g.build(),
            opt_d: config.optim_d.build(),
            rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x6761_6e74_7279),
            ema: config.ema.map(|d| Ema::new(d, gan.generator())),
            gan,
            config,
            step: 0,
            objective,
        })
    }

    /// Changes the generator's learning rate (e.g. when resuming with another one).
    pub fn set_lr_g(&mut self, lr: f32) {
        self.opt_g.set_lr(lr);
        self.config.optim_g = self.config.optim_g.with_lr(lr);
    }

    /// Changes the discriminator's learning rate.
    pub fn set_lr_d(&mut self, lr: f32) {
        self.opt_d.set_lr(lr);
        self.config.optim_d = self.config.optim_d.with_lr(lr);
    }

    /// Changes both optimizers' learning rate.
    pub fn set_lr(&mut self, lr: f32) {
        self.set_lr_g(lr);
        self.set_lr_d(lr);
    }

    /// Changes the objective (e.g. another mode-seeking weight on resume).
    ///
    /// # Errors
    /// As [`Trainer::new`]; the trainer is unchanged then.
    pub fn set_objective(&mut self, objective: ObjectiveConfig) -> Result<()> {
        let built = objective.build()?;
        built.check(self.gan.as_ref())?;
        self.objective = built;
        self.config.objective = objective;
        Ok(())
    }

    /// Whether the discriminator's outputs through a sigmoid are probabilities under this
    /// objective (the cross-entropy losses).
    pub fn d_outputs_are_probabilities(&self) -> bool {
        self.objective.probabilities()
    }

    /// Runs `f` with the generator holding its averaged weights where there is an average
    /// (samples are drawn from it), its own otherwise; the trained weights are back after.
    pub fn with_sampling_weights<R>(&mut self, f: impl FnOnce(&Trainer) -> R) -> R {
        let Some(mut ema) = self.ema.take() else {
            return f(self);
        };
        ema.swap(self.gan.generator());
        let out = f(self);
        ema.swap(self.gan.generator());
        self.ema = Some(ema);
        out
    }

    /// Puts the averaged weights into the generator for good, where there is an average: for
    /// sampling from a loaded checkpoint that will not train on.
    pub fn use_sampling_weights(&mut self) {
        if let Some(mut ema) = self.ema.take() {
            ema.swap(self.gan.generator());
        }
    }

    /// One discriminator step alone, exactly as [`Trainer::train_step`] takes the first of
    /// its `k - 1` extra ones: a batch from `next_batch`, a fake batch from the generator
    /// (training mode, noise from [`Trainer::rng`]) seen as a constant, and one update of the
    /// discriminator with the objective's loss and terms (a gradient penalty differentiates
    /// through D twice). The step count, the generator's weights and its optimizer are left
    /// as they were; the noise stream and batch-norm running statistics move on. For timing
    /// or studying the discriminator's update (`gan/benches/wgan_gp.rs`).
    ///
    /// Returns D's loss and its named parts and logged figures.
    ///
    /// # Errors
    /// As [`Trainer::train_step`]: a batch that does not fit, a loss that is not finite (then
    /// nothing is updated), a trained parameter without a gradient.
    pub fn discriminator_step(
        &mut self,
        next_batch: &mut dyn FnMut() -> Batch,
    ) -> Result<(f32, BTreeMap<String, f32>)> {
        with_workers_awake(|| self.lone_discriminator_step(next_batch))
    }

    fn lone_discriminator_step(
        &mut self,
        next_batch: &mut dyn FnMut() -> Batch,
    ) -> Result<(f32, BTreeMap<String, f32>)> {
        let Trainer {
            gan,
            opt_d,
            config,
            step,
            rng,
            objective,
            ..
        } = self;
        let gan = gan.as_ref();
        gan.set_progress(*step);
        let run = Run {
            gan,
            objective,
            config,
            step: *step + 1,
        };
        let (loss, parts) = run.extra_discriminator_step(opt_d.as_mut(), next_batch, rng, 0)?;
        Ok((loss, parts.into_iter().collect()))
    }

    /// One iteration: `k` discriminator steps on batches from `next_batch`, then one generator
    /// step. Nothing is updated by a step whose loss is not finite.
    ///
    /// # Errors
    /// [`GanError::NonFinite`] naming the step and the loss; an optimizer error if a trained
    /// parameter got no gradient.
    ///
    /// The pool's other threads are kept awake through the iteration
    /// ([`with_workers_awake`]): its many short parallel loops then start without waking them.
    pub fn train_step(&mut self, next_batch: &mut dyn FnMut() -> Batch) -> Result<StepMetrics> {
        with_workers_awake(|| self.iteration(next_batch))
    }

    fn iteration(&mut self, next_batch: &mut dyn FnMut() -> Batch) -> Result<StepMetrics> {
        let Trainer {
            gan,
            opt_g,
            opt_d,
            config,
            step,
            rng,
            ema,
            objective,
        } = self;
        let (gan, opt_d) = (gan.as_ref(), opt_d.as_mut());
        let (g, d) = (gan.generator(), gan.discriminator());
        let now = *step + 1;
        // The model's state follows the step count alone (see `Gan::set_progress`).
        gan.set_progress(*step);
        let k = config.k.max(1) as u64;
        let run = Run {
            gan,
            objective,
            config,
            step: now,
        };
        // Algorithm 1's extra discriminator steps, each on its own real and fake batch.
        for j in 0..k - 1 {
            run.extra_discriminator_step(opt_d, next_batch, rng, j)?;
        }
        // The last one shares its fake batch with the generator's step.
        let batch = checked(gan, next_batch(), now)?;
        let tape = Tape::with_seed(tape_seed(config.seed, now, 2 * (k - 1)));
        let (fake, twin) = if objective.needs_twins() {
            let (fake, twin, dz) = generate_twins(gan, &tape, &batch, rng);
            (fake, Some((twin, dz)))
        } else {
            (generate(gan, &tape, &batch, rng), None)
        };
        let (loss_d, mut parts) = run.discriminator_step(opt_d, &batch, &fake.value(), k - 1)?;

        set_requires_grad(d, false);
        let seen = run.augmented(fake, &tape);
        let fake_logits = score(gan, &batch, seen);
        let g_parts = objective.generator(&GContext {
            gan,
            batch: &batch,
            tape: &tape,
            fake,
            fake_logits,
            twin,
            step: now,
        });
        set_requires_grad(d, true);
        let g_parts = g_parts?;
        let loss_g = g_parts.total(1.0);
        let loss_g_value = loss_g.value().item();
        check(now, "loss_g", loss_g_value)?;
        let grads = loss_g.backward();
        parts.extend(g_parts.values(1.0));
        // The tape holds the parameters' values: without it the optimizer updates them in place.
        drop(tape);
        opt_g.step(g, &grads)?;
        if let Some(ema) = ema {
            ema.update(g, now - 1);
        }
        *step = now;
        gan.set_progress(now);
        Ok(StepMetrics {
            step: now,
            loss_d,
            loss_g: loss_g_value,
            parts: parts.into_iter().collect(),
        })
    }
}

/// Refuses augmentation for a model whose discriminator does not judge plain images.
fn check_diffaug(gan: &dyn Gan) -> Result<()> {
    let refuse = |why: String| {
        Err(GanError::Objective {
            message: format!("diffaug: {why}"),
        })
    };
    match gan.config() {
        c if c.condition_shape().is_some() => refuse(format!(
            "{}'s discriminator judges an input beside its output; augmenting the output alone would break the pair",
            c.kind()
        )),
        ModelConfig::Mlp(c) if c.sample_shape.len() != 3 => refuse(format!(
            "the samples are points of shape {:?}, not images; colour, translation and cutout need [C, H, W] images",
            c.sample_shape
        )),
        _ => Ok(()),
    }
}

/// What every discriminator step of one iteration shares.
struct Run<'a> {
    gan: &'a dyn Gan,
    objective: &'a Objective,
    config: &'a TrainConfig,
    step: u64,
}

impl Run<'_> {
    /// `x` as the discriminator sees it: augmented where DiffAugment is on, with a draw from
    /// the tape's stream.
    fn augmented<'t>(&self, x: Var<'t>, tape: &'t Tape) -> Var<'t> {
        if self.config.diffaug.is_empty() {
            return x;
        }
        let mut rng = tape.rng();
        diffaug::augment(x, &self.config.diffaug, &mut *rng)
    }

    /// Extra discriminator step `j` of Algorithm 1: its own batch, and a fake batch the
    /// generator makes on a tape of its own.
    fn extra_discriminator_step(
        &self,
        opt_d: &mut dyn Optimizer,
        next_batch: &mut dyn FnMut() -> Batch,
        rng: &mut ChaCha8Rng,
        j: u64,
    ) -> Result<(f32, Vec<(String, f32)>)> {
        let batch = checked(self.gan, next_batch(), self.step)?;
        let tape = Tape::with_seed(tape_seed(self.config.seed, self.step, 2 * j));
        let fake = generate(self.gan, &tape, &batch, rng).value();
        self.discriminator_step(opt_d, &batch, &fake, j)
    }

    /// One discriminator update on a real batch and a (constant) fake batch: returns the loss
    /// and its named parts.
    fn discriminator_step(
        &self,
        opt_d: &mut dyn Optimizer,
        batch: &Batch,
        fake: &Tensor,
        j: u64,
    ) -> Result<(f32, Vec<(String, f32)>)> {
        let gan = self.gan;
        let tape = Tape::with_seed(tape_seed(self.config.seed, self.step, 2 * j + 1));
        let real = self.augmented(tape.constant(batch.real.clone()), &tape);
        let fake = self.augmented(tape.constant(fake.clone()), &tape);
        let (real_logits, fake_logits) = if gan.fake_first() {
            let f = score(gan, batch, fake);
            (score(gan, batch, real), f)
        } else {
            let r = score(gan, batch, real);
            (r, score(gan, batch, fake))
        };
        let parts = self.objective.discriminator(&DContext {
            gan,
            batch,
            tape: &tape,
            real: real.value(),
            fake: fake.value(),
            real_logits,
            fake_logits,
            step: self.step,
        })?;
        let scale = gan.d_loss_scale();
        let loss_d = parts.total(scale);
        let value = loss_d.value().item();
        check(self.step, "loss_d", value)?;
        let grads = loss_d.backward();
        let values = parts.values(scale);
        // The tape holds the parameters' values: without it the optimizer updates them in place.
        drop(tape);
        opt_d.step(gan.discriminator(), &grads)?;
        Ok((value, values))
    }
}

/// `batch` if it fits `gan` (a multiple of its packing; labels in range for a
/// label-conditional model), with its real samples as the model wants them now
/// ([`Gan::real_samples`]), else an error naming the step, before anything is drawn or
/// updated.
fn checked(gan: &dyn Gan, batch: Batch, step: u64) -> Result<Batch> {
    let batch = valid(gan, batch, step)?;
    Ok(Batch {
        real: gan.real_samples(batch.real),
        ..batch
    })
}

/// `batch` if it fits `gan`, else an error naming the step.
fn valid(gan: &dyn Gan, batch: Batch, step: u64) -> Result<Batch> {
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

/// For mode seeking: the generator's output for `batch` from noise `z1` (the fake batch of
/// the step), its output for a second noise batch `z2` with the same labels, and `mean|z1 -
/// z2|`. Both run as one batch of `2N`, so batch norm sees one set of statistics per step,
/// as without the term.
fn generate_twins<'t>(
    gan: &dyn Gan,
    tape: &'t Tape,
    batch: &Batch,
    rng: &mut ChaCha8Rng,
) -> (Var<'t>, Var<'t>, f32) {
    let n = batch.len();
    let mut noise = || {
        gan.noise(n, rng)
            .expect("the objective refuses mode seeking for a model without noise")
    };
    let (z1, z2) = (noise(), noise());
    let dz = mean_abs_diff(&z1, &z2);
    let labels = batch.labels.as_deref();
    let input = Tensor::concat(
        0,
        &[&gan.latent_input(z1, labels), &gan.latent_input(z2, labels)],
    );
    let both = gan.generator().forward(tape.constant(input), Mode::Train);
    (both.slice_axis(0, 0, n), both.slice_axis(0, n, 2 * n), dz)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every parameter and buffer of both players, by name.
    fn weights(t: &Trainer) -> Vec<(String, Vec<f32>)> {
        let (g, d) = (t.gan.generator(), t.gan.discriminator());
        let all = [("g", g), ("d", d)].map(|(who, m)| {
            gantry_nn::named_params(m)
                .into_iter()
                .map(move |(n, p)| (format!("{who}.{n}"), p.value().to_vec()))
        });
        all.into_iter().flatten().collect()
    }

    /// `discriminator_step` then a `k = 1` iteration is bit for bit a `k = 2` iteration (the
    /// vanilla GAN draws nothing from its tapes), and the step alone moves D only.
    #[test]
    fn a_discriminator_step_is_the_iterations_extra_one() {
        use crate::models::{MlpConfig, ModelConfig};
        let trainer = |k| {
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let gan = ModelConfig::Mlp(MlpConfig::points())
                .build(&mut rng)
                .unwrap();
            Trainer::new(
                gan,
                TrainConfig {
                    k,
                    ..TrainConfig::default()
                },
            )
            .unwrap()
        };
        let batches = || {
            let mut rng = ChaCha8Rng::seed_from_u64(4);
            move || Batch::new(Tensor::randn(&[8, 2], 0.0, 1.0, &mut rng))
        };
        let (mut one, mut two) = (trainer(1), trainer(2));
        let (mut data_one, mut data_two) = (batches(), batches());
        let before = weights(&one);
        let (loss, parts) = one.discriminator_step(&mut data_one).unwrap();
        assert!(
            loss.is_finite() && parts.contains_key("loss_d_real"),
            "{parts:?}"
        );
        assert_eq!(one.step, 0);
        let after = weights(&one);
        for ((name, a), (_, b)) in before.iter().zip(&after) {
            assert_eq!(a == b, name.starts_with("g."), "{name}");
        }
        let m1 = one.train_step(&mut data_one).unwrap();
        let m2 = two.train_step(&mut data_two).unwrap();
        assert_eq!((m1.step, m1.loss_d, m1.loss_g), (1, m2.loss_d, m2.loss_g));
        assert_eq!(weights(&one), weights(&two));
    }

    #[test]
    fn mean_abs_diff_of_known_tensors() {
        let a = Tensor::from_vec(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let b = Tensor::from_vec(&[2, 2], vec![0.0, 4.0, 3.0, 0.0]);
        assert_eq!(mean_abs_diff(&a, &b), 7.0 / 4.0);
    }
}
