//! `kind = "classification"` manifests (Table 3): which datasets, how they are
//! split, the model, the training protocol and each optimizer's learning-rate
//! grid, validated into a [`ClassificationExperiment`] before any work starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pathreg_core::Loss;
use pathreg_data::split::Preprocess;
use serde::Deserialize;
use toml::Spanned;

use crate::PipelineError;
use crate::manifest::budget::{Budget, Limits};
use crate::manifest::sections::{PREPROCESS_CHOICES, RawAdmm};
use crate::manifest::{Check, ManifestFile, Validator};

/// Learning rates are tried in grid order; the table's columns follow
/// [`OptimizerKind`] order (SGD, then Adam).
pub const OPTIMIZER_NAMES: &[&str] = &["sgd", "adam"];

/// A validated classification experiment.
///
/// `csv:<path>` datasets are files with the features, then the label (any
/// values: each distinct value is a class), relative to the manifest.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassificationExperiment {
    /// Output folder name under `outputs/`.
    pub name: String,
    /// Free text shown in table.md.
    pub description: String,
    /// Master seed of arrangements, initializations and mini-batch orders.
    pub seed: u64,
    /// The datasets and how they are split.
    pub data: ClassificationData,
    /// The network and objective.
    pub model: ClassificationModel,
    /// The training protocol.
    pub training: TrainingSpec,
    /// The optimizers and their grids, in [`OptimizerKind`] order.
    pub optimizers: Vec<OptimizerGrid>,
    /// Published test accuracies shown beside ours.
    pub reference: Option<AccuracyReference>,
    /// The constrained program (21) solved over the convex model's
    /// arrangements, when the manifest has a `[constrained]` table.
    pub constrained: Option<ConstrainedSpec>,
}

/// `[constrained]`: the constrained convex program (21) over the same `K`
/// sampled arrangements as the convex model (11), solved by ADMM
/// ([`pathreg_solvers::admm`]) to both tolerances or the iteration cap. It
/// has no learning rate, so it is one cell per split and training seed,
/// shared by every optimizer's comparison.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ConstrainedSpec {
    /// The solver's tolerances and cap.
    pub settings: pathreg_solvers::AdmmSettings,
}

fn serialize_debug<S: serde::Serializer, T: std::fmt::Debug>(
    value: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{value:?}"))
}

/// `[data]`, validated: which datasets, split how.
///
/// `csv:<path>` datasets are files with the features, then the label (any
/// values: each distinct value is a class), relative to the manifest.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassificationData {
    /// Registry names (`uci:<name>`, `csv:<path>`, …), in table order.
    pub datasets: Vec<String>,
    /// The manifest's folder: relative `csv:` paths are read from there.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// One stratified train/test split per seed (`Split::Stratified`).
    pub split_seeds: Vec<u64>,
    /// Independent trainings within each split, one per seed: each draws its
    /// own arrangements, initializations, validation split and batch orders.
    pub training_seeds: Vec<u64>,
    /// Fraction of each class held out for testing.
    pub test_fraction: f64,
    /// Fraction of each class of the training set held out to choose the
    /// learning rate.
    pub validation_fraction: f64,
    /// Feature preprocessing fitted on the training rows.
    #[serde(serialize_with = "serialize_debug")]
    pub preprocess: Preprocess,
}

impl ClassificationData {
    /// Test share of each class when the manifest gives none.
    pub const DEFAULT_TEST_FRACTION: f64 = 0.2;
    /// Validation share of each class's training rows when the manifest gives none.
    pub const DEFAULT_VALIDATION_FRACTION: f64 = 0.2;
    /// One training per split when the manifest gives no `training_seeds`.
    pub const DEFAULT_TRAINING_SEEDS: [u64; 1] = [0];
}

/// `(m1, m2, K, β)` and the loss.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ClassificationModel {
    /// Sub-networks of the non-convex network; sampled triples `P1·P2` of the
    /// convex model.
    pub k: usize,
    /// First-layer width per sub-network.
    pub m1: usize,
    /// Second-layer width per sub-network.
    pub m2: usize,
    /// Regularization strength β.
    pub beta: f64,
    /// Loss on labels ±1.
    pub loss: Loss,
}

/// How every model is trained.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TrainingSpec {
    /// Epoch cap per binary model.
    pub epochs: usize,
    /// Epoch cap of the learning-rate search's runs (at most `epochs`).
    pub search_epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Stop at the first epoch with training accuracy 1 (the paper's protocol).
    pub stop_at_full_accuracy: bool,
    /// Weight λ of the constraint-violation penalty `h_C` in (11).
    pub lambda: f64,
}

/// An optimizer of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerKind {
    /// SGD with momentum.
    Sgd {
        /// Momentum (0.9 in the paper).
        momentum: f64,
    },
    /// Adam with `(β1, β2, ε) = (0.9, 0.999, 1e-8)`.
    Adam,
}

impl TrainingSpec {
    /// The paper's protocol: stop at the first epoch with training accuracy 1.
    pub const DEFAULT_STOP_AT_FULL_ACCURACY: bool = true;
}

impl OptimizerKind {
    /// SGD momentum when the manifest gives none (the paper's 0.9).
    pub const DEFAULT_MOMENTUM: f64 = 0.9;

    /// "sgd" or "adam".
    pub fn name(&self) -> &'static str {
        match self {
            OptimizerKind::Sgd { .. } => "sgd",
            OptimizerKind::Adam => "adam",
        }
    }

    /// The label used in table headers.
    pub fn title(&self) -> &'static str {
        match self {
            OptimizerKind::Sgd { .. } => "SGD",
            OptimizerKind::Adam => "Adam",
        }
    }
}

/// One optimizer and the learning rates tried on the validation split.
///
/// Units (so that one grid fits every dataset):
/// - non-convex SGD: the step is `lr / n` times the gradient of the summed
///   objective (4), i.e. `lr` times the gradient of the per-sample mean (the
///   convention of PyTorch's mean-reduced losses, where the paper's 0.005 lives);
/// - convex SGD: the step is `lr / ‖X̃‖²`, with `‖X̃‖²` (the gradient's
///   Lipschitz constant for the squared loss) from a power iteration on the
///   masked operator of the training rows;
/// - Adam (both models): the raw Adam step, which does not depend on the
///   gradient's scale.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OptimizerGrid {
    /// The optimizer.
    pub kind: OptimizerKind,
    /// Learning rates for the non-convex network.
    pub nonconvex_lr: Vec<f64>,
    /// Learning rates for the convex model (11).
    pub convex_lr: Vec<f64>,
}

/// Published test accuracies: per dataset, for each optimizer in table order,
/// non-convex then convex.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AccuracyReference {
    /// Where they come from.
    pub source: String,
    /// Dataset name → `[opt1 non-convex, opt1 convex, opt2 non-convex, …]`.
    pub test_accuracy: BTreeMap<String, Vec<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: Spanned<String>,
    #[serde(rename = "kind")]
    _kind: Spanned<String>,
    #[serde(default)]
    description: String,
    seed: Spanned<u64>,
    data: Spanned<RawData>,
    model: Spanned<RawModel>,
    training: Spanned<RawTraining>,
    optimizers: Spanned<BTreeMap<String, Spanned<RawOptimizer>>>,
    reference: Option<Spanned<RawReference>>,
    constrained: Option<Spanned<RawConstrained>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConstrained {
    method: Spanned<String>,
    tol_violation: Option<Spanned<f64>>,
    tol_gap: Option<Spanned<f64>>,
    max_iterations: Option<Spanned<usize>>,
    polish_from: Option<Spanned<usize>>,
    precision: Option<Spanned<String>>,
}

impl RawConstrained {
    /// Validates `[constrained]`; (21) is solved for the squared loss only.
    fn check(
        &self,
        span: std::ops::Range<usize>,
        loss: Loss,
        v: &Validator<'_>,
    ) -> Result<ConstrainedSpec, PipelineError> {
        v.one_of(&self.method, "constrained.method", &[("admm", ())])?;
        if loss != Loss::Squared {
            return Err(v.error(
                span,
                "constrained",
                "the ADMM solver of (21) handles the squared loss only; set model.loss = \"squared\"",
            ));
        }
        let settings = RawAdmm {
            tol_violation: self.tol_violation.clone(),
            tol_gap: self.tol_gap.clone(),
            max_iterations: self.max_iterations.clone(),
            polish_from: self.polish_from.clone(),
            precision: self.precision.clone(),
        }
        .check("constrained", v)?;
        Ok(ConstrainedSpec { settings })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    datasets: Spanned<Vec<String>>,
    split_seeds: Spanned<Vec<u64>>,
    training_seeds: Option<Spanned<Vec<u64>>>,
    test_fraction: Option<Spanned<f64>>,
    validation_fraction: Option<Spanned<f64>>,
    preprocess: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    #[serde(rename = "K")]
    k: Spanned<usize>,
    m1: Spanned<usize>,
    m2: Spanned<usize>,
    beta: Spanned<f64>,
    loss: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTraining {
    epochs: Spanned<usize>,
    search_epochs: Option<Spanned<usize>>,
    batch_size: Spanned<usize>,
    stop_at_full_accuracy: Option<bool>,
    lambda: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptimizer {
    momentum: Option<Spanned<f64>>,
    nonconvex_lr: Spanned<Vec<f64>>,
    convex_lr: Spanned<Vec<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReference {
    source: String,
    test_accuracy: BTreeMap<String, Spanned<Vec<f64>>>,
}

impl Check for RawData {
    type Valid = ClassificationData;

    fn check(&self, v: &Validator<'_>) -> Result<ClassificationData, PipelineError> {
        let datasets = self.datasets.get_ref();
        let key = "data.datasets";
        if datasets.is_empty() {
            return Err(v.error(self.datasets.span(), key, "must list at least one dataset"));
        }
        let base_dir = v.base_dir().to_path_buf();
        let known = pathreg_data::registry::names().unwrap_or_default();
        for (i, name) in datasets.iter().enumerate() {
            if let Some(relative) = name.strip_prefix("csv:") {
                let file = base_dir.join(relative);
                if !file.is_file() {
                    let at = if Path::new(relative).is_absolute() {
                        String::new()
                    } else {
                        format!(" at {}", file.display())
                    };
                    return Err(v.error(
                        self.datasets.span(),
                        key,
                        if file.exists() {
                            format!("{name:?}: not a regular file{at}")
                        } else {
                            format!("{name:?}: no file{at}")
                        },
                    ));
                }
            } else if !known.contains(name) {
                return Err(v.error(
                    self.datasets.span(),
                    key,
                    format!(
                        "unknown dataset {name:?}; known: {}, csv:<path>",
                        known.join(", ")
                    ),
                ));
            }
            if datasets[..i].contains(name) {
                return Err(v.error(
                    self.datasets.span(),
                    key,
                    format!("{name:?} is listed twice"),
                ));
            }
        }
        let split_seeds = distinct_seeds(&self.split_seeds, "data.split_seeds", v)?;
        let training_seeds = match &self.training_seeds {
            Some(seeds) => distinct_seeds(seeds, "data.training_seeds", v)?,
            None => ClassificationData::DEFAULT_TRAINING_SEEDS.to_vec(),
        };
        Ok(ClassificationData {
            datasets: datasets.clone(),
            base_dir,
            split_seeds,
            training_seeds,
            test_fraction: v.fraction(
                &self.test_fraction,
                "data.test_fraction",
                ClassificationData::DEFAULT_TEST_FRACTION,
            )?,
            validation_fraction: v.fraction(
                &self.validation_fraction,
                "data.validation_fraction",
                ClassificationData::DEFAULT_VALIDATION_FRACTION,
            )?,
            preprocess: v.choice(
                &self.preprocess,
                "data.preprocess",
                &PREPROCESS_CHOICES,
                PREPROCESS_CHOICES[0].1,
            )?,
        })
    }
}

/// A non-empty list of seeds without repeats.
fn distinct_seeds(
    seeds: &Spanned<Vec<u64>>,
    key: &str,
    v: &Validator<'_>,
) -> Result<Vec<u64>, PipelineError> {
    let values = seeds.get_ref().clone();
    if values.is_empty() {
        return Err(v.error(seeds.span(), key, "must list at least one seed"));
    }
    if let Some(dup) = values
        .iter()
        .enumerate()
        .find(|(i, s)| values[..*i].contains(s))
    {
        return Err(v.error(seeds.span(), key, format!("seed {} is listed twice", dup.1)));
    }
    Ok(values)
}

impl Check for RawModel {
    type Valid = ClassificationModel;

    fn check(&self, v: &Validator<'_>) -> Result<ClassificationModel, PipelineError> {
        Ok(ClassificationModel {
            k: v.positive_usize(&self.k, "model.K")?,
            m1: v.positive_usize(&self.m1, "model.m1")?,
            m2: v.positive_usize(&self.m2, "model.m2")?,
            beta: v.positive_f64(&self.beta, "model.beta")?,
            loss: v.choice(
                &self.loss,
                "model.loss",
                &[
                    ("squared", Loss::Squared),
                    ("hinge", Loss::Hinge),
                    ("logistic", Loss::Logistic),
                ],
                Loss::Squared,
            )?,
        })
    }
}

impl Check for RawTraining {
    type Valid = TrainingSpec;

    fn check(&self, v: &Validator<'_>) -> Result<TrainingSpec, PipelineError> {
        let epochs = v.positive_usize(&self.epochs, "training.epochs")?;
        let search_epochs = match &self.search_epochs {
            None => epochs,
            Some(s) => {
                let value = v.positive_usize(s, "training.search_epochs")?;
                if value > epochs {
                    return Err(v.error(
                        s.span(),
                        "training.search_epochs",
                        format!("must not exceed training.epochs = {epochs}"),
                    ));
                }
                value
            }
        };
        Ok(TrainingSpec {
            epochs,
            search_epochs,
            batch_size: v.positive_usize(&self.batch_size, "training.batch_size")?,
            stop_at_full_accuracy: self
                .stop_at_full_accuracy
                .unwrap_or(TrainingSpec::DEFAULT_STOP_AT_FULL_ACCURACY),
            lambda: v.positive_f64(&self.lambda, "training.lambda")?,
        })
    }
}

/// `[optimizers]`: the tables `sgd` and `adam`, each with its grids.
struct RawOptimizers<'a>(&'a Spanned<BTreeMap<String, Spanned<RawOptimizer>>>);

impl Check for RawOptimizers<'_> {
    type Valid = Vec<OptimizerGrid>;

    fn check(&self, v: &Validator<'_>) -> Result<Vec<OptimizerGrid>, PipelineError> {
        let raw_optimizers = self.0.get_ref();
        if let Some((name, o)) = raw_optimizers
            .iter()
            .find(|(name, _)| !OPTIMIZER_NAMES.contains(&name.as_str()))
        {
            return Err(v.error(
                o.span(),
                &format!("optimizers.{name}"),
                format!("unknown optimizer; use {}", OPTIMIZER_NAMES.join(" or ")),
            ));
        }
        let mut optimizers = Vec::new();
        for name in OPTIMIZER_NAMES {
            let Some(o) = raw_optimizers.get(*name) else {
                continue;
            };
            optimizers.push(o.get_ref().check(name, v)?);
        }
        if optimizers.is_empty() {
            return Err(v.error(
                self.0.span(),
                "optimizers",
                "must configure sgd, adam or both",
            ));
        }
        Ok(optimizers)
    }
}

impl RawOptimizer {
    /// Validates the table of optimizer `name` (`sgd` or `adam`).
    fn check(&self, name: &str, v: &Validator<'_>) -> Result<OptimizerGrid, PipelineError> {
        let key = |field: &str| format!("optimizers.{name}.{field}");
        let kind = if name == "sgd" {
            OptimizerKind::Sgd {
                momentum: v.momentum(
                    &self.momentum,
                    &key("momentum"),
                    OptimizerKind::DEFAULT_MOMENTUM,
                )?,
            }
        } else {
            if let Some(m) = &self.momentum {
                return Err(v.error(m.span(), &key("momentum"), "only used by sgd"));
            }
            OptimizerKind::Adam
        };
        let grid = |g: &Spanned<Vec<f64>>, field: &str| {
            let values = g.get_ref();
            if values.is_empty() {
                return Err(v.error(g.span(), &key(field), "must list at least one rate"));
            }
            if let Some(bad) = values.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
                return Err(v.error(
                    g.span(),
                    &key(field),
                    format!("learning rates must be positive and finite, got {bad}"),
                ));
            }
            Ok(values.clone())
        };
        Ok(OptimizerGrid {
            kind,
            nonconvex_lr: grid(&self.nonconvex_lr, "nonconvex_lr")?,
            convex_lr: grid(&self.convex_lr, "convex_lr")?,
        })
    }
}

impl RawReference {
    /// Validates the published accuracies against the datasets and optimizers.
    fn check(
        &self,
        datasets: &[String],
        optimizers: &[OptimizerGrid],
        v: &Validator<'_>,
    ) -> Result<AccuracyReference, PipelineError> {
        let columns = 2 * optimizers.len();
        for (name, values) in &self.test_accuracy {
            let key = format!("reference.test_accuracy.{name}");
            if !datasets.contains(name) {
                return Err(v.error(values.span(), &key, "is not one of data.datasets"));
            }
            if values.get_ref().len() != columns {
                return Err(v.error(
                    values.span(),
                    &key,
                    format!(
                        "needs {columns} values (non-convex, convex for each of {})",
                        optimizers
                            .iter()
                            .map(|o| o.kind.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if let Some(bad) = values.get_ref().iter().find(|a| !(0.0..=1.0).contains(*a)) {
                return Err(v.error(
                    values.span(),
                    &key,
                    format!("accuracies are in [0, 1], got {bad}"),
                ));
            }
        }
        Ok(AccuracyReference {
            source: self.source.clone(),
            test_accuracy: self
                .test_accuracy
                .iter()
                .map(|(k, values)| (k.clone(), values.get_ref().clone()))
                .collect(),
        })
    }
}

/// Parses and validates a classification manifest.
pub(crate) fn parse(
    file: &ManifestFile,
    limits: Limits,
) -> Result<ClassificationExperiment, PipelineError> {
    let raw: RawManifest = file.parse()?;
    let v = Validator::new(file);
    let name = v.name(&raw.name)?;
    let data = raw.data.get_ref().check(&v)?;
    let model = raw.model.get_ref().check(&v)?;
    let training = raw.training.get_ref().check(&v)?;
    let optimizers = RawOptimizers(&raw.optimizers).check(&v)?;
    let reference = raw
        .reference
        .as_ref()
        .map(|r| r.get_ref().check(&data.datasets, &optimizers, &v))
        .transpose()?;
    let constrained = raw
        .constrained
        .as_ref()
        .map(|c| c.get_ref().check(c.span(), model.loss, &v))
        .transpose()?;
    let budget = Budget::new(&v, limits);
    budget.beta(raw.model.get_ref().beta.span(), "model.beta", model.beta)?;
    budget.epochs(
        raw.training.get_ref().epochs.span(),
        "training.epochs",
        training.epochs,
    )?;
    let models_per_replicate = optimizers.len() * 2 + usize::from(constrained.is_some());
    let cells = (data.datasets.len()
        * data.split_seeds.len()
        * data.training_seeds.len()
        * models_per_replicate) as u64;
    budget.cells(
        raw.data.span(),
        "data.datasets, data.split_seeds, data.training_seeds",
        cells,
    )?;
    budget.bytes(
        raw.model.span(),
        "model.K, model.m1, model.m2",
        "the network (for one feature)",
        pathreg_core::ParallelNetwork::parameter_bytes(model.k, 1, model.m1, model.m2),
    )?;
    Ok(ClassificationExperiment {
        name,
        description: raw.description,
        seed: *raw.seed.get_ref(),
        data,
        model,
        training,
        optimizers,
        reference,
        constrained,
    })
}
