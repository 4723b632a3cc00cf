//! `kind = "stacking"` manifests (Figure 6): Figure 5's dataset, model and
//! training sections, then `[stacking]` (how many stages, which convex
//! method, which features pass on) and an optional `[baseline]` (the
//! network of the same depth trained end to end).

use serde::Deserialize;
use toml::Spanned;

use crate::PipelineError;
use crate::kinds::images::manifest::{
    ImageData, ImageModel, ImageTraining, Method, MethodName, RawData, RawModel, RawTraining,
};
use crate::manifest::budget::Limits;
use crate::manifest::{Check, ManifestFile, Validator};

/// The most stages a manifest may ask for.
pub const MAX_STAGES: usize = 50;

/// A validated Figure 6 experiment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StackingExperiment {
    /// Output folder name under `outputs/`.
    pub name: String,
    /// Free text shown in table.md.
    pub description: String,
    /// Master seed.
    pub seed: u64,
    /// `[data]`, as Figure 5's.
    pub data: ImageData,
    /// `[model]`: every stage's (11), as Figure 5's.
    pub model: ImageModel,
    /// `[training]`: every stage's, as Figure 5's.
    pub training: ImageTraining,
    /// `[stacking]`.
    pub stacking: Stacking,
    /// `[baseline]`, when given.
    pub baseline: Option<Baseline>,
}

/// `[stacking]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Stacking {
    /// Stages `S`.
    pub stages: usize,
    /// The convex method every stage trains, with its learning rate.
    pub method: Method,
    /// What a stage passes on to the next.
    pub features: Features,
}

/// The representation `H_s` a trained stage passes on (see the kind's
/// documentation for why these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Features {
    /// The convex model's gated block terms `D2 Σ_j D1_j X z_j`, one per
    /// non-zero block (the default).
    Convex,
    /// The second hidden layer of Proposition 1's network, one unit per
    /// non-zero block.
    Network,
}

/// The baseline's optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineOptimizer {
    /// SGD with `[training].momentum`.
    Sgd,
    /// Adam with PyTorch's defaults.
    Adam,
}

/// `[baseline]`, validated: the deep network of `S` parallel blocks trained
/// end to end.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Baseline {
    /// Sub-networks per block.
    pub k: usize,
    /// First hidden width of a sub-network.
    pub m1: usize,
    /// Second hidden width of a sub-network (a block passes `K·m2` features on).
    pub m2: usize,
    /// Weight decay `β` of `(β/2)‖θ‖²`.
    pub beta: f64,
    /// Its optimizer.
    pub optimizer: BaselineOptimizer,
    /// Its learning rate.
    pub lr: f64,
    /// Its epochs.
    pub epochs: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: Spanned<String>,
    #[serde(rename = "kind")]
    _kind: Spanned<String>,
    #[serde(default)]
    description: String,
    seed: u64,
    data: RawData,
    model: RawModel,
    training: RawTraining,
    stacking: RawStacking,
    baseline: Option<RawBaseline>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStacking {
    stages: Spanned<usize>,
    method: Spanned<String>,
    lr: Spanned<toml::Value>,
    features: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    #[serde(rename = "K")]
    k: Spanned<usize>,
    m1: Spanned<usize>,
    m2: Spanned<usize>,
    beta: Spanned<f64>,
    optimizer: Spanned<String>,
    lr: Spanned<f64>,
    epochs: Option<Spanned<usize>>,
}

impl RawStacking {
    fn check(&self, v: &Validator<'_>, dataset: &str) -> Result<Stacking, PipelineError> {
        let stages = v.positive_usize(&self.stages, "stacking.stages")?;
        if stages > MAX_STAGES {
            return Err(v.error(
                self.stages.span(),
                "stacking.stages",
                format!("at most {MAX_STAGES}, got {stages}"),
            ));
        }
        let convex: Vec<(&str, MethodName)> = MethodName::ALL
            .into_iter()
            .filter(|(_, m)| m.is_convex())
            .collect();
        let name = v.one_of(&self.method, "stacking.method", &convex)?;
        let lr = name
            .learning_rate(self.lr.get_ref(), dataset)
            .map_err(|reason| v.error(self.lr.span(), "stacking.lr", reason))?;
        Ok(Stacking {
            stages,
            method: Method { name, lr },
            features: v.choice(
                &self.features,
                "stacking.features",
                &[("convex", Features::Convex), ("network", Features::Network)],
                Features::Convex,
            )?,
        })
    }
}

impl RawBaseline {
    fn check(
        &self,
        v: &Validator<'_>,
        training: &ImageTraining,
    ) -> Result<Baseline, PipelineError> {
        let beta = *self.beta.get_ref();
        if !(beta.is_finite() && beta >= 0.0) {
            return Err(v.error(
                self.beta.span(),
                "baseline.beta",
                format!("must be finite and ≥ 0, got {beta}"),
            ));
        }
        Ok(Baseline {
            k: v.positive_usize(&self.k, "baseline.K")?,
            m1: v.positive_usize(&self.m1, "baseline.m1")?,
            m2: v.positive_usize(&self.m2, "baseline.m2")?,
            beta,
            optimizer: v.one_of(
                &self.optimizer,
                "baseline.optimizer",
                &[
                    ("sgd", BaselineOptimizer::Sgd),
                    ("adam", BaselineOptimizer::Adam),
                ],
            )?,
            lr: v.positive_f64(&self.lr, "baseline.lr")?,
            epochs: self
                .epochs
                .as_ref()
                .map(|e| v.positive_usize(e, "baseline.epochs"))
                .transpose()?
                .unwrap_or(training.epochs),
        })
    }
}

/// Parses and validates a stacking manifest, bounding its memory and work.
pub fn parse(file: &ManifestFile, limits: Limits) -> Result<StackingExperiment, PipelineError> {
    let raw: RawManifest = file.parse()?;
    let v = Validator::new(file);
    let data = raw.data.check(&v)?;
    let model = raw.model.check(&v)?;
    let training = raw.training.check(&v)?;
    let stacking = raw.stacking.check(&v, &data.dataset)?;
    let baseline = raw
        .baseline
        .as_ref()
        .map(|b| b.check(&v, &training))
        .transpose()?;
    let experiment = StackingExperiment {
        name: v.name(&raw.name)?,
        description: raw.description,
        seed: raw.seed,
        data,
        model,
        training,
        stacking,
        baseline,
    };
    let bytes = experiment.memory_bytes();
    if bytes > pathreg_core::limits::MAX_ALLOCATION_BYTES {
        return Err(v.error(
            raw.model.k.span(),
            "model.K",
            format!(
                "a stage's variables, gradient and optimizer state and the features would take {:.1} GiB, more than the {:.0} GiB limit",
                bytes as f64 / (1u64 << 30) as f64,
                pathreg_core::limits::MAX_ALLOCATION_BYTES as f64 / (1u64 << 30) as f64
            ),
        ));
    }
    if limits == Limits::Enforced {
        let work = experiment.training_work();
        let max = crate::kinds::images::manifest::MAX_WORK;
        if work > max {
            return Err(v.error(
                raw.stacking.stages.span(),
                "stacking.stages",
                format!(
                    "asks for about {work:.1e} multiply-adds of training, more than the limit {max:.0e} (pass --override-limits to run it anyway)"
                ),
            ));
        }
    }
    Ok(experiment)
}

impl StackingExperiment {
    /// Figure 5's experiment with this one's data, model and training and
    /// the stage method alone: the shape of the data and of stage 1.
    pub(crate) fn images(&self) -> crate::kinds::images::ImagesExperiment {
        crate::kinds::images::ImagesExperiment {
            name: self.name.clone(),
            description: String::new(),
            seed: self.seed,
            data: self.data.clone(),
            model: self.model,
            training: self.training,
            methods: vec![self.stacking.method],
            constrained: None,
        }
    }

    /// The dataset's `(training rows, features)`.
    pub fn shape(&self) -> (usize, usize) {
        self.images().shape()
    }

    /// The widest input a stage can see: the data's, or `2KC` features (one
    /// per block of `(Z, Z')`).
    pub fn widest_input(&self) -> usize {
        self.shape().1.max(2 * self.model.k * 10)
    }

    /// Bytes of the largest stage's float32 variables, gradient and two
    /// optimizer slots, plus two stages' features of every row.
    pub fn memory_bytes(&self) -> u64 {
        let (n, _) = self.shape();
        let width = self.widest_input();
        let convex =
            pathreg_core::multiclass::ConvexModel::bytes(width, self.model.k, self.model.m1, 10);
        let features = 4 * 2 * (n as u64 + 10_000) * (2 * self.model.k * 10) as u64;
        convex.saturating_mul(4).saturating_add(features)
    }

    /// Multiply-adds of every stage's epochs (Figure 5's count at the
    /// widest input) and the baseline's.
    pub fn training_work(&self) -> f64 {
        let (rows, _) = self.shape();
        let (k, m1) = (self.model.k as f64, self.model.m1 as f64);
        let per_row = 2.0 * self.widest_input() as f64 * 2.0 * k * 10.0 * m1;
        let stages =
            per_row * rows as f64 * self.training.epochs as f64 * self.stacking.stages as f64;
        let baseline = self.baseline.map_or(0.0, |b| {
            let width = self.shape().1.max(b.k * b.m2) as f64;
            3.0 * width
                * (b.k * b.m1) as f64
                * self.stacking.stages as f64
                * rows as f64
                * b.epochs as f64
        });
        stages + baseline
    }
}
