//! `kind = "images"` manifests (Figure 5): a ten-class image dataset, the
//! model, the training budget and the methods with their learning rates.

use serde::Deserialize;
use toml::Spanned;

use crate::PipelineError;
use crate::manifest::budget::Limits;
use crate::manifest::sections::RawAdmm;
use crate::manifest::{Check, ManifestFile, Validator};

/// The datasets this kind trains on (the registry's official splits).
pub const DATASETS: [&str; 3] = ["fashion-mnist", "mnist", "cifar10"];

/// A validated Figure 5 experiment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImagesExperiment {
    /// Output folder name under `outputs/`.
    pub name: String,
    /// Free text shown in table.md.
    pub description: String,
    /// Master seed: arrangements, initializations, subsamples and batch orders.
    pub seed: u64,
    /// `[data]`.
    pub data: ImageData,
    /// `[model]`.
    pub model: ImageModel,
    /// `[training]`.
    pub training: ImageTraining,
    /// `[methods]`, in the order of [`MethodName::ALL`], then the
    /// constrained program's row when `[constrained]` is given.
    pub methods: Vec<Method>,
    /// `[constrained]`: program (21) with vector outputs solved by ADMM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constrained: Option<ImagesConstrained>,
}

/// `[constrained]`, validated: the constrained program (21) with vector
/// outputs (Appendix A.11) over the same `K` sampled arrangements as (11),
/// solved full batch by ADMM ([`pathreg_solvers::solve_admm_outputs`]) to
/// both tolerances or the iteration cap. Its row is `convex_admm`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ImagesConstrained {
    /// The solver's tolerances and cap (no polish: it handles one output).
    pub settings: pathreg_solvers::AdmmSettings,
    /// Group norms over a block's classes or one class.
    pub grouping: pathreg_core::multiclass::Grouping,
}

/// `[data]`, validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImageData {
    /// `fashion-mnist`, `mnist` or `cifar10`.
    pub dataset: String,
    /// Train on a seeded random subset of this many training rows (all when absent).
    pub train_rows: Option<usize>,
    /// Evaluate on the first this many test rows (all when absent).
    pub test_rows: Option<usize>,
    /// How pixels become features.
    pub scaling: Scaling,
}

/// Input scaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// Pixels divided by 255, in `[0, 1]` (torchvision's `ToTensor`).
    Unit,
    /// Then minus the training pixels' mean, over their standard deviation
    /// (one scalar each, as `Normalize` with dataset statistics).
    Standardize,
}

/// `[model]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ImageModel {
    /// Sub-networks of the non-convex network and sampled arrangements `P1·P2` of (11).
    pub k: usize,
    /// First hidden width.
    pub m1: usize,
    /// Second hidden width.
    pub m2: usize,
    /// Regularization strength β (path regularizer, group norms and weight decay alike).
    pub beta: f64,
    /// Violation weight λ of (11).
    pub lambda: f64,
}

/// `[training]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ImageTraining {
    /// Epochs of every method.
    pub epochs: usize,
    /// Rows per step.
    pub batch_size: usize,
    /// SGD's momentum.
    pub momentum: f64,
    /// Test evaluations per epoch.
    pub evaluations_per_epoch: usize,
}

/// The methods of Figure 5 (and the one-vs-rest variant of (11)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodName {
    /// (11), joint groups, SGD.
    ConvexSgd,
    /// (11), joint groups, Adam.
    ConvexAdam,
    /// (11), one group per class (one versus rest), SGD.
    ConvexSgdOneVsRest,
    /// The network, path regularizer, SGD.
    Sgd,
    /// The network, path regularizer, Adam.
    Adam,
    /// The network, path regularizer, Adagrad.
    Adagrad,
    /// The network, path regularizer, Adadelta.
    Adadelta,
    /// The network, weight decay, SGD.
    SgdWeightDecay,
    /// The constrained program (21) by ADMM (`[constrained]`, not a key of
    /// `[methods]`).
    ConvexAdmm,
}

impl MethodName {
    /// Every method, in table order, with its manifest key.
    pub const ALL: [(&'static str, MethodName); 8] = [
        ("convex_sgd", MethodName::ConvexSgd),
        ("convex_adam", MethodName::ConvexAdam),
        ("convex_sgd_one_vs_rest", MethodName::ConvexSgdOneVsRest),
        ("sgd", MethodName::Sgd),
        ("adam", MethodName::Adam),
        ("adagrad", MethodName::Adagrad),
        ("adadelta", MethodName::Adadelta),
        ("sgd_weight_decay", MethodName::SgdWeightDecay),
    ];

    /// The manifest key (and the `method` column of the results).
    pub fn key(self) -> &'static str {
        if self == MethodName::ConvexAdmm {
            return "convex_admm";
        }
        MethodName::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("", |(k, _)| k)
    }

    /// Whether the method solves a convex program, (11) or (21).
    pub fn is_convex(self) -> bool {
        matches!(
            self,
            MethodName::ConvexSgd
                | MethodName::ConvexAdam
                | MethodName::ConvexSgdOneVsRest
                | MethodName::ConvexAdmm
        )
    }

    /// The label in figures and table.md.
    pub fn label(self) -> &'static str {
        match self {
            MethodName::ConvexSgd => "Convex (11), SGD",
            MethodName::ConvexAdam => "Convex (11), Adam",
            MethodName::ConvexSgdOneVsRest => "Convex (11) one-vs-rest, SGD",
            MethodName::Sgd => "Non-convex SGD",
            MethodName::Adam => "Non-convex Adam",
            MethodName::Adagrad => "Non-convex Adagrad",
            MethodName::Adadelta => "Non-convex Adadelta",
            MethodName::SgdWeightDecay => "Non-convex SGD, weight decay",
            MethodName::ConvexAdmm => "Convex (21), ADMM",
        }
    }

    /// The paper's learning rate (Appendix A.1) on `dataset`, where it gives
    /// one: it gives one convex rate (for SGD) and none for (11) with Adam;
    /// MNIST, absent from Figure 5, takes Fashion-MNIST's.
    pub fn paper_lr(self, dataset: &str) -> Option<f64> {
        let rates = match dataset {
            "cifar10" => [5e-7, 5e-3, 2e-5, 2e-3, 3e-1, 1.0],
            _ => [1e-5, 2e-1, 2e-3, 1e-2, 3.0, 1.0],
        };
        Some(match self {
            MethodName::ConvexSgd | MethodName::ConvexSgdOneVsRest => rates[0],
            MethodName::Sgd => rates[1],
            MethodName::ConvexAdam | MethodName::ConvexAdmm => return None,
            MethodName::Adam => rates[2],
            MethodName::Adagrad => rates[3],
            MethodName::Adadelta => rates[4],
            MethodName::SgdWeightDecay => rates[5],
        })
    }
}

impl MethodName {
    /// A manifest's learning rate for this method: `"paper"` (its rate in
    /// Appendix A.1 on `dataset`, where there is one) or a positive number;
    /// otherwise the reason it is refused.
    pub fn learning_rate(self, value: &toml::Value, dataset: &str) -> Result<f64, String> {
        match value {
            toml::Value::String(s) if s == "paper" => self.paper_lr(dataset),
            toml::Value::Float(f) => Some(*f),
            toml::Value::Integer(i) => Some(*i as f64),
            _ => None,
        }
        .filter(|lr| lr.is_finite() && *lr > 0.0)
        .ok_or_else(|| {
            if self.paper_lr(dataset).is_none() {
                format!(
                    "the paper gives no rate for {} on {dataset}: give a positive learning rate",
                    self.key()
                )
            } else {
                "must be \"paper\" or a positive learning rate".to_string()
            }
        })
    }
}

/// One method to run and its learning rate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Method {
    /// Which.
    pub name: MethodName,
    /// Its learning rate (0 for `convex_admm`, which has none).
    pub lr: f64,
}

impl Method {
    /// The update rule: SGD (with `momentum`), Adam, Adagrad or Adadelta at
    /// the method's rate; `None` for `convex_admm`, which is not trained
    /// by one.
    pub fn optimizer(&self, momentum: f64) -> Option<pathreg_solvers::Optimizer> {
        use pathreg_solvers::Optimizer;
        let lr = self.lr;
        Some(match self.name {
            MethodName::ConvexAdam | MethodName::Adam => Optimizer::adam(lr),
            MethodName::Adagrad => Optimizer::adagrad(lr),
            MethodName::Adadelta => Optimizer::adadelta(lr),
            MethodName::ConvexSgd
            | MethodName::ConvexSgdOneVsRest
            | MethodName::Sgd
            | MethodName::SgdWeightDecay => Optimizer::Sgd { lr, momentum },
            MethodName::ConvexAdmm => return None,
        })
    }
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
    methods: Spanned<toml::Table>,
    constrained: Option<Spanned<RawConstrained>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConstrained {
    method: Spanned<String>,
    grouping: Option<Spanned<String>>,
    tol_violation: Option<Spanned<f64>>,
    tol_gap: Option<Spanned<f64>>,
    max_iterations: Option<Spanned<usize>>,
    polish_from: Option<Spanned<usize>>,
    precision: Option<Spanned<String>>,
}

impl RawConstrained {
    /// Validates `[constrained]`: the iterate is ADMM's (the Newton polish
    /// handles one output only).
    fn check(&self, v: &Validator<'_>) -> Result<ImagesConstrained, PipelineError> {
        use pathreg_core::multiclass::Grouping;
        v.one_of(&self.method, "constrained.method", &[("admm", ())])?;
        if let Some(p) = &self.polish_from
            && *p.get_ref() != 0
        {
            return Err(v.error(
                p.span(),
                "constrained.polish_from",
                "the Newton polish handles one output, and Figure 5 has ten; set 0 or leave it out",
            ));
        }
        let admm = RawAdmm {
            tol_violation: self.tol_violation.clone(),
            tol_gap: self.tol_gap.clone(),
            max_iterations: self.max_iterations.clone(),
            polish_from: None,
            precision: self.precision.clone(),
        };
        Ok(ImagesConstrained {
            settings: admm.check("constrained", v)?,
            grouping: v.choice(
                &self.grouping,
                "constrained.grouping",
                &[
                    ("joint", Grouping::Joint),
                    ("one_vs_rest", Grouping::OneVsRest),
                ],
                Grouping::Joint,
            )?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawData {
    dataset: Spanned<String>,
    train_rows: Option<Spanned<usize>>,
    test_rows: Option<Spanned<usize>>,
    scaling: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModel {
    #[serde(rename = "K")]
    pub(crate) k: Spanned<usize>,
    m1: Spanned<usize>,
    m2: Spanned<usize>,
    beta: Spanned<f64>,
    lambda: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTraining {
    epochs: Spanned<usize>,
    batch_size: Spanned<usize>,
    momentum: Option<Spanned<f64>>,
    evaluations_per_epoch: Option<Spanned<usize>>,
}

impl Check for RawData {
    type Valid = ImageData;

    fn check(&self, v: &Validator<'_>) -> Result<ImageData, PipelineError> {
        let dataset = self.dataset.get_ref();
        if !DATASETS.contains(&dataset.as_str()) {
            return Err(v.error(
                self.dataset.span(),
                "data.dataset",
                format!(
                    "{dataset:?}: use one of {DATASETS:?} (ten-class images with official splits)"
                ),
            ));
        }
        let rows = |value: &Option<Spanned<usize>>, key: &str| {
            value.as_ref().map(|r| v.positive_usize(r, key)).transpose()
        };
        Ok(ImageData {
            dataset: dataset.clone(),
            train_rows: rows(&self.train_rows, "data.train_rows")?,
            test_rows: rows(&self.test_rows, "data.test_rows")?,
            scaling: v.choice(
                &self.scaling,
                "data.scaling",
                &[
                    ("unit", Scaling::Unit),
                    ("standardize", Scaling::Standardize),
                ],
                Scaling::Unit,
            )?,
        })
    }
}

impl Check for RawModel {
    type Valid = ImageModel;

    fn check(&self, v: &Validator<'_>) -> Result<ImageModel, PipelineError> {
        let non_negative = |value: &Spanned<f64>, key: &str| {
            let x = *value.get_ref();
            if x.is_finite() && x >= 0.0 {
                Ok(x)
            } else {
                Err(v.error(
                    value.span(),
                    key,
                    format!("must be finite and ≥ 0, got {x}"),
                ))
            }
        };
        Ok(ImageModel {
            k: v.positive_usize(&self.k, "model.K")?,
            m1: v.positive_usize(&self.m1, "model.m1")?,
            m2: v.positive_usize(&self.m2, "model.m2")?,
            beta: non_negative(&self.beta, "model.beta")?,
            lambda: non_negative(&self.lambda, "model.lambda")?,
        })
    }
}

impl Check for RawTraining {
    type Valid = ImageTraining;

    fn check(&self, v: &Validator<'_>) -> Result<ImageTraining, PipelineError> {
        Ok(ImageTraining {
            epochs: v.positive_usize(&self.epochs, "training.epochs")?,
            batch_size: v.positive_usize(&self.batch_size, "training.batch_size")?,
            momentum: v.momentum(&self.momentum, "training.momentum", 0.9)?,
            evaluations_per_epoch: self
                .evaluations_per_epoch
                .as_ref()
                .map(|e| v.positive_usize(e, "training.evaluations_per_epoch"))
                .transpose()?
                .unwrap_or(1),
        })
    }
}

/// `[methods]`: each key a method, its value `"paper"` (the paper's rate)
/// or a positive learning rate.
fn methods(
    table: &Spanned<toml::Table>,
    dataset: &str,
    v: &Validator<'_>,
) -> Result<Vec<Method>, PipelineError> {
    for key in table.get_ref().keys() {
        if !MethodName::ALL.iter().any(|(k, _)| k == key) {
            let known: Vec<&str> = MethodName::ALL.iter().map(|(k, _)| *k).collect();
            return Err(v.error(
                table.span(),
                &format!("methods.{key}"),
                format!("unknown method; known: {known:?}"),
            ));
        }
    }
    let mut out = Vec::new();
    for (key, name) in MethodName::ALL {
        let Some(value) = table.get_ref().get(key) else {
            continue;
        };
        let at = format!("methods.{key}");
        let lr = name
            .learning_rate(value, dataset)
            .map_err(|reason| v.error(table.span(), &at, reason))?;
        out.push(Method { name, lr });
    }
    if out.is_empty() {
        return Err(v.error(table.span(), "methods", "must list at least one method"));
    }
    Ok(out)
}

/// Parses and validates an images manifest, bounding its memory and work.
pub fn parse(file: &ManifestFile, limits: Limits) -> Result<ImagesExperiment, PipelineError> {
    let raw: RawManifest = file.parse()?;
    let v = Validator::new(file);
    let data = raw.data.check(&v)?;
    let model = raw.model.check(&v)?;
    let training = raw.training.check(&v)?;
    let mut methods = methods(&raw.methods, &data.dataset, &v)?;
    let constrained = raw
        .constrained
        .as_ref()
        .map(|c| c.get_ref().check(&v))
        .transpose()?;
    if constrained.is_some() {
        methods.push(Method {
            name: MethodName::ConvexAdmm,
            lr: 0.0,
        });
    }
    let experiment = ImagesExperiment {
        name: v.name(&raw.name)?,
        description: raw.description,
        seed: raw.seed,
        data,
        model,
        training,
        methods,
        constrained,
    };
    if let (Some(raw), Some(constrained)) = (&raw.constrained, &experiment.constrained) {
        let (n, d) = experiment.shape();
        let columns = 2 * model.k * model.m1 * 10;
        let bytes =
            pathreg_solvers::admm::memory_bytes(n, d, columns, constrained.settings.precision);
        if bytes > pathreg_core::limits::MAX_ALLOCATION_BYTES {
            return Err(v.error(
                raw.span(),
                "constrained",
                format!(
                    "ADMM on {n} training rows and {columns} columns keeps an n × n factor and n × {columns} iterates, {:.1} GiB, more than the {:.0} GiB limit; lower data.train_rows",
                    bytes as f64 / (1u64 << 30) as f64,
                    pathreg_core::limits::MAX_ALLOCATION_BYTES as f64 / (1u64 << 30) as f64
                ),
            ));
        }
    }
    if limits == Limits::Enforced {
        let work = experiment.training_work();
        if work > MAX_WORK {
            return Err(v.error(
                raw.training.epochs.span(),
                "training.epochs",
                format!(
                    "asks for about {work:.1e} multiply-adds of training, more than the limit {MAX_WORK:.0e} (pass --override-limits to run it anyway)"
                ),
            ));
        }
    }
    let bytes = experiment.memory_bytes();
    if bytes > pathreg_core::limits::MAX_ALLOCATION_BYTES {
        return Err(v.error(
            raw.model.k.span(),
            "model",
            format!(
                "the convex program's variables, gradient and optimizer state would take {:.1} GiB, more than the {:.0} GiB limit",
                bytes as f64 / (1u64 << 30) as f64,
                pathreg_core::limits::MAX_ALLOCATION_BYTES as f64 / (1u64 << 30) as f64
            ),
        ));
    }
    Ok(experiment)
}

/// The most multiply-adds of training a manifest may ask for without
/// `--override-limits` (about a day of this kind's products on 2 cores).
pub const MAX_WORK: f64 = 1e16;

impl ImagesExperiment {
    /// The dataset's `(training rows, features)`.
    pub fn shape(&self) -> (usize, usize) {
        let (n, d) = match self.data.dataset.as_str() {
            "cifar10" => (50_000, 3072),
            _ => (60_000, 784),
        };
        (self.data.train_rows.map_or(n, |r| r.min(n)), d)
    }

    /// Bytes of the largest model's float32 variables, gradient and two
    /// optimizer slots (the convex program's when one is listed).
    pub fn memory_bytes(&self) -> u64 {
        let (_, d) = self.shape();
        let ImageModel { k, m1, m2, .. } = self.model;
        let convex = pathreg_core::multiclass::ConvexModel::bytes(d, k, m1, 10);
        let network = 4 * (d * k * m1 + k * m1 * m2 + k * m2 * 10) as u64;
        let largest = if self.methods.iter().any(|m| m.name.is_convex()) {
            convex.max(network)
        } else {
            network
        };
        largest.saturating_mul(4)
    }

    /// Multiply-adds of all methods: per row and epoch, the convex model's
    /// two products cost `2·d·2KCm1`, the network's `2·d·Km1`; ADMM's
    /// iterations (at their cap) four products of `n × d` by `d × 2KCm1`.
    pub fn training_work(&self) -> f64 {
        let (rows, d) = self.shape();
        let (rows, d) = (rows as f64, d as f64);
        let (k, m1) = (self.model.k as f64, self.model.m1 as f64);
        let epochs = self.training.epochs as f64;
        self.methods
            .iter()
            .map(|m| match m.name {
                MethodName::ConvexAdmm => {
                    let iterations = self
                        .constrained
                        .map_or(0.0, |c| c.settings.max_iterations as f64);
                    iterations * 4.0 * rows * d * 2.0 * k * 10.0 * m1
                }
                name if name.is_convex() => 2.0 * d * 2.0 * k * 10.0 * m1 * rows * epochs,
                _ => 2.0 * d * k * m1 * rows * epochs,
            })
            .sum()
    }
}
