//! The objective: what each player minimises, as a sum of named parts.
//!
//! An objective is an adversarial [`loss`] (non-saturating, minimax, hinge, least squares,
//! Wasserstein) plus any number of weighted [`term`]s (penalties on the discriminator,
//! reconstruction or diversity terms on the generator). The trainer asks it for each player's
//! loss as a list of named parts, sums them, and logs every part by its name; it knows no loss
//! by name. Both kinds are found by name in a registry ([`loss::LOSSES`], [`term::TERMS`]), so
//! adding one is one file and one line there (CONTRIBUTING.md walks through it).
//!
//! ```
//! use gantry_gan::objective::{ObjectiveConfig, TermSpec};
//!
//! // WGAN-GP: the Wasserstein loss with a gradient penalty of weight 10.
//! let config = ObjectiveConfig {
//!     loss: "wasserstein".into(),
//!     terms: vec![TermSpec::new("gp", 10.0)],
//!     ..ObjectiveConfig::default()
//! };
//! assert!(config.build().is_ok());
//! ```

pub mod loss;
pub mod term;

use crate::error::{GanError, Result};
use crate::models::{Batch, Gan, ModelConfig};
use gantry_autodiff::{Tape, Var};
use gantry_nn::Mode;
use gantry_tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Which objective to train with, serialisable into checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveConfig {
    /// The adversarial loss, by its registered name (see [`loss::LOSSES`]).
    pub loss: String,
    /// Target for real samples in D's loss: 1, or less for one-sided label smoothing (0.9;
    /// Salimans et al. 2016). Only losses with a target (the cross-entropy ones, least
    /// squares) accept anything but 1.
    #[serde(default = "one")]
    pub real_label: f32,
    /// The extra terms, in the order they are added.
    #[serde(default)]
    pub terms: Vec<TermSpec>,
}

fn one() -> f32 {
    1.0
}

impl Default for ObjectiveConfig {
    /// The non-saturating loss of Goodfellow et al., no terms.
    fn default() -> Self {
        ObjectiveConfig {
            loss: "non-saturating".into(),
            real_label: 1.0,
            terms: Vec::new(),
        }
    }
}

impl ObjectiveConfig {
    /// The objective a model trains with unless told otherwise: the non-saturating loss and
    /// the model's own terms (pix2pix: its L1 term, weighted by `lambda_l1`).
    pub fn default_for(model: &ModelConfig) -> Self {
        ObjectiveConfig {
            terms: model_terms(model),
            ..ObjectiveConfig::default()
        }
    }

    /// Builds the objective, finding the loss and each term in the registries.
    ///
    /// # Errors
    /// [`GanError::Objective`] for an unknown name (listing the known ones), a weight that is
    /// negative or not finite, `every` of 0, a term given twice, or label smoothing with a
    /// loss that has no target.
    pub fn build(&self) -> Result<Objective> {
        let loss = loss::build(&self.loss)?;
        if !(self.real_label.is_finite() && self.real_label > 0.0 && self.real_label <= 1.0) {
            return Err(objective_error(format!(
                "the real label {} must be in (0, 1]",
                self.real_label
            )));
        }
        if self.real_label != 1.0 && !loss.has_target() {
            return Err(objective_error(format!(
                "the {} loss has no target to smooth; one-sided label smoothing (real label {}) needs non-saturating, minimax or lsgan",
                self.loss, self.real_label
            )));
        }
        let mut terms: Vec<(TermSpec, Box<dyn term::Term>)> = Vec::new();
        for spec in &self.terms {
            if !(spec.weight.is_finite() && spec.weight >= 0.0) {
                return Err(objective_error(format!(
                    "the weight {} of {} must be finite and >= 0",
                    spec.weight, spec.name
                )));
            }
            if spec.every == 0 {
                return Err(objective_error(format!(
                    "{} every 0 steps: every must be at least 1",
                    spec.name
                )));
            }
            if terms.iter().any(|(s, _)| s.name == spec.name) {
                return Err(objective_error(format!("{} is given twice", spec.name)));
            }
            terms.push((spec.clone(), term::build(&spec.name)?));
        }
        Ok(Objective {
            loss,
            real_label: self.real_label,
            terms,
        })
    }

    /// The weight of the term `name`, if the objective has it.
    pub fn weight(&self, name: &str) -> Option<f32> {
        self.terms.iter().find(|t| t.name == name).map(|t| t.weight)
    }
}

/// The terms a model brings to its default objective: pix2pix its L1 term, pix2pixHD its
/// feature matching, CAAE its reconstruction (L1), total variation and code adversary.
pub fn model_terms(model: &ModelConfig) -> Vec<TermSpec> {
    match model {
        ModelConfig::Pix2Pix(c) if c.lambda_l1 > 0.0 => {
            vec![TermSpec::new("loss_g_l1", c.lambda_l1)]
        }
        // Half pix2pixHD's weight: see `Pix2PixHdConfig::lambda_feat`.
        ModelConfig::Pix2PixHd(c) if c.lambda_feat > 0.0 => {
            vec![TermSpec::new("loss_g_feat", c.lambda_feat / 2.0)]
        }
        ModelConfig::Caae(c) => {
            let mut terms = Vec::new();
            for (name, weight) in [("loss_g_l1", c.lambda_rec), ("loss_g_tv", c.lambda_tv)] {
                if weight > 0.0 {
                    terms.push(TermSpec::new(name, weight));
                }
            }
            // Always: it is D_z's only loss, and every trained weight needs a gradient.
            terms.push(TermSpec::new("loss_d_z", 1.0));
            if c.lambda_z > 0.0 {
                terms.push(TermSpec::new("loss_g_z", c.lambda_z));
            }
            terms
        }
        _ => Vec::new(),
    }
}

/// One extra term of an objective: its registered name, its weight, and how often it applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TermSpec {
    /// The registered name (see [`term::TERMS`]); also the key it is logged under.
    pub name: String,
    /// The factor it enters its player's loss with.
    pub weight: f32,
    /// Applied on every `every`-th step only, with its weight multiplied by `every` so that its
    /// average pull stays the same (StyleGAN2's lazy regularisation); 1: every step.
    #[serde(default = "every_step")]
    pub every: u64,
}

fn every_step() -> u64 {
    1
}

impl TermSpec {
    /// A term applied on every step.
    pub fn new(name: &str, weight: f32) -> Self {
        TermSpec {
            name: name.to_string(),
            weight,
            every: 1,
        }
    }
}

pub(crate) fn objective_error(message: String) -> GanError {
    GanError::Objective { message }
}

/// A built objective: the loss and the terms, ready to make each player's loss.
pub struct Objective {
    loss: Box<dyn loss::AdversarialLoss>,
    real_label: f32,
    terms: Vec<(TermSpec, Box<dyn term::Term>)>,
}

impl Objective {
    /// Checks that every term can work with `gan` (mode seeking needs noise, a penalty needs
    /// second derivatives through the discriminator, ...), and that a model with a code
    /// adversary ([`Gan::latent_adversary`]) has the `loss_d_z` term that trains it, before
    /// anything trains.
    ///
    /// # Errors
    /// [`GanError::Objective`] naming the term and what it needs.
    pub fn check(&self, gan: &dyn Gan) -> Result<()> {
        for (spec, t) in &self.terms {
            t.check(gan)
                .map_err(|m| objective_error(format!("{}: {m}", spec.name)))?;
        }
        // A code discriminator learns from this term alone: without it, its weights would
        // get no gradient and D's optimizer would stop at the first step.
        let trains_codes = self
            .terms
            .iter()
            .any(|(s, _)| s.name == "loss_d_z" && s.weight > 0.0);
        if gan.latent_adversary().is_some() && !trains_codes {
            return Err(objective_error(format!(
                "{}'s code discriminator learns only from the loss_d_z term; add it (ObjectiveConfig::default_for gives the model's own terms)",
                gan.config().kind()
            )));
        }
        Ok(())
    }

    /// Whether the discriminator's outputs, through a sigmoid, are probabilities that the
    /// input is real (the cross-entropy losses).
    pub fn probabilities(&self) -> bool {
        self.loss.probabilities()
    }

    /// Whether a term compares two fake batches drawn for the same inputs (mode seeking):
    /// then the generator's step draws both.
    pub fn needs_twins(&self) -> bool {
        self.terms.iter().any(|(_, t)| t.needs_twins())
    }

    /// The terms active at `step`, with their effective weights.
    fn active(&self, step: u64) -> impl Iterator<Item = (&TermSpec, &dyn term::Term, f32)> {
        self.terms
            .iter()
            .filter(move |(spec, _)| step.is_multiple_of(spec.every) && spec.weight > 0.0)
            .map(|(spec, t)| (spec, t.as_ref(), spec.weight * spec.every as f32))
    }

    /// The discriminator's loss parts for one of its steps.
    ///
    /// # Errors
    /// If a term cannot be computed (a penalty through an op without a second derivative).
    pub fn discriminator<'t>(&self, cx: &DContext<'_, 't>) -> Result<Parts<'t>> {
        let mut parts = Parts::default();
        let shape = cx.real.shape();
        let real = cx.gan.d_output_maps(cx.real_logits, shape);
        let fake = cx.gan.d_output_maps(cx.fake_logits, shape);
        let n = real.len() as f32;
        for (r, f) in real.into_iter().zip(fake) {
            let mut map = Parts::default();
            self.loss.discriminator(r, f, self.real_label, &mut map);
            parts.absorb(map, 1.0 / n);
        }
        for (spec, t, weight) in self.active(cx.step) {
            if let Some(v) = t.discriminator(cx)? {
                parts.add(&spec.name, v.mul_scalar(weight));
            }
        }
        Ok(parts)
    }

    /// The generator's loss parts for its step.
    ///
    /// # Errors
    /// If a term cannot be computed.
    pub fn generator<'t>(&self, cx: &GContext<'_, 't>) -> Result<Parts<'t>> {
        let mut parts = Parts::default();
        let maps = cx
            .gan
            .d_output_maps(cx.fake_logits, cx.fake.shape().as_slice());
        let n = maps.len() as f32;
        for f in maps {
            let mut map = Parts::default();
            self.loss.generator(f, &mut map);
            parts.absorb(map, 1.0 / n);
        }
        for (spec, t, weight) in self.active(cx.step) {
            if let Some(v) = t.generator(cx)? {
                parts.add(&spec.name, v.mul_scalar(weight));
            }
        }
        Ok(parts)
    }
}

/// A player's loss as named parts that sum to it, and figures that are only logged.
#[derive(Default)]
pub struct Parts<'t> {
    losses: Vec<(String, Var<'t>)>,
    logged: Vec<(String, f32)>,
}

impl<'t> Parts<'t> {
    /// Adds a part of the loss (it is summed and logged under `name`).
    pub fn add(&mut self, name: &str, value: Var<'t>) {
        self.losses.push((name.to_string(), value));
    }

    /// Logs a figure that is not part of the loss (mean D outputs, the Wasserstein estimate).
    pub fn log(&mut self, name: &str, value: f32) {
        self.logged.push((name.to_string(), value));
    }

    /// Takes in the parts of `other` (one map of a multi-scale discriminator): a loss part
    /// of a name already here is added to it, a logged figure is added times `log_weight`
    /// (`1 / maps`, so that a figure is the mean over the maps).
    pub fn absorb(&mut self, other: Parts<'t>, log_weight: f32) {
        for (name, v) in other.losses {
            match self.losses.iter_mut().find(|(n, _)| *n == name) {
                Some((_, sum)) => *sum = sum.add(v),
                None => self.losses.push((name, v)),
            }
        }
        for (name, v) in other.logged {
            match self.logged.iter_mut().find(|(n, _)| *n == name) {
                Some((_, sum)) => *sum += v * log_weight,
                None => self.logged.push((name, v * log_weight)),
            }
        }
    }

    /// The loss: the sum of the parts, times `scale`.
    ///
    /// # Panics
    /// If there is no part (every loss adds at least one).
    pub fn total(&self, scale: f32) -> Var<'t> {
        let mut parts = self.losses.iter().map(|(_, v)| *v);
        let first = parts.next().expect("an objective adds at least one part");
        let sum = parts.fold(first, |acc, v| acc.add(v));
        if scale == 1.0 {
            sum
        } else {
            sum.mul_scalar(scale)
        }
    }

    /// Every part's value (times `scale`, as it enters the loss) and every logged figure.
    pub fn values(&self, scale: f32) -> Vec<(String, f32)> {
        let mut out: Vec<(String, f32)> = self
            .losses
            .iter()
            .map(|(n, v)| (n.clone(), v.value().item() * scale))
            .collect();
        out.extend(self.logged.iter().cloned());
        out
    }
}

/// What a discriminator-side term can use: the model, the batch, D's inputs as it judged them
/// (after augmentation) and its logits.
pub struct DContext<'a, 't> {
    /// The model.
    pub gan: &'a dyn Gan,
    /// The batch (real samples, condition, labels).
    pub batch: &'a Batch,
    /// The tape of this discriminator step; its random stream is seeded by the step.
    pub tape: &'t Tape,
    /// The real samples as D saw them (after augmentation).
    pub real: Tensor,
    /// The fake samples as D saw them (after augmentation).
    pub fake: Tensor,
    /// D's logits on them.
    pub real_logits: Var<'t>,
    /// D's logits on the fakes.
    pub fake_logits: Var<'t>,
    /// The iteration (1-based).
    pub step: u64,
}

impl<'t> DContext<'_, 't> {
    /// D's logits for samples `x` of this batch (what the model shows D beside them, such as
    /// pix2pix's input or cdcgan's label planes, is added), in training mode.
    pub fn score(&self, x: Var<'t>) -> Var<'t> {
        score(self.gan, self.batch, x)
    }
}

/// What a generator-side term can use.
pub struct GContext<'a, 't> {
    /// The model.
    pub gan: &'a dyn Gan,
    /// The batch.
    pub batch: &'a Batch,
    /// The tape of the generator's step.
    pub tape: &'t Tape,
    /// The generator's output (before augmentation), differentiable.
    pub fake: Var<'t>,
    /// D's logits on it (through augmentation, where on), D frozen.
    pub fake_logits: Var<'t>,
    /// Where a term needs twins: the generator's output for the same inputs and a second
    /// noise batch, and the mean absolute difference of the two noise batches.
    pub twin: Option<(Var<'t>, f32)>,
    /// The iteration (1-based).
    pub step: u64,
}

/// D's logits for samples `x` of `batch`, in training mode.
pub(crate) fn score<'t>(gan: &dyn Gan, batch: &Batch, x: Var<'t>) -> Var<'t> {
    gan.discriminator()
        .forward(gan.discriminator_input(x, batch), Mode::Train)
}
