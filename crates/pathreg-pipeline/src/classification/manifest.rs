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
use crate::manifest::{Validator, toml_error};

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
    /// Registry names (`uci:<name>`, `csv:<path>`, …), in table order.
    pub datasets: Vec<String>,
    /// The manifest's folder: relative `csv:` paths are read from there.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// One stratified train/test split per seed (`Split::Stratified`).
    pub split_seeds: Vec<u64>,
    /// Fraction of each class held out for testing.
    pub test_fraction: f64,
    /// Fraction of each class of the training set held out to choose the
    /// learning rate.
    pub validation_fraction: f64,
    /// Feature preprocessing fitted on the training rows.
    #[serde(serialize_with = "serialize_debug")]
    pub preprocess: Preprocess,
    /// The network and objective.
    pub model: ClassificationModel,
    /// The training protocol.
    pub training: TrainingSpec,
    /// The optimizers and their grids, in [`OptimizerKind`] order.
    pub optimizers: Vec<OptimizerGrid>,
    /// Published test accuracies shown beside ours.
    pub reference: Option<AccuracyReference>,
}

fn serialize_debug<S: serde::Serializer, T: std::fmt::Debug>(
    value: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{value:?}"))
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

impl OptimizerKind {
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
    #[allow(dead_code)]
    kind: Spanned<String>,
    #[serde(default)]
    description: String,
    seed: Spanned<u64>,
    data: Spanned<RawData>,
    model: Spanned<RawModel>,
    training: Spanned<RawTraining>,
    optimizers: Spanned<BTreeMap<String, Spanned<RawOptimizer>>>,
    reference: Option<Spanned<RawReference>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    datasets: Spanned<Vec<String>>,
    split_seeds: Spanned<Vec<u64>>,
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

/// Parses and validates a classification manifest.
pub(crate) fn parse(text: &str, path: &Path) -> Result<ClassificationExperiment, PipelineError> {
    let raw: RawManifest = toml::from_str(text).map_err(|e| toml_error(text, path, &e))?;
    let v = Validator { text, path };
    v.check_name(&raw.name)?;
    let data = raw.data.get_ref();
    let datasets = data.datasets.get_ref();
    if datasets.is_empty() {
        return Err(v.error(
            data.datasets.span(),
            "data.datasets",
            "must list at least one dataset",
        ));
    }
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let known = pathreg_data::registry::names().unwrap_or_default();
    for (i, name) in datasets.iter().enumerate() {
        if let Some(file) = name.strip_prefix("csv:") {
            let file = base_dir.join(file);
            if !file.is_file() {
                return Err(v.error(
                    data.datasets.span(),
                    "data.datasets",
                    format!("{name:?}: no file at {}", file.display()),
                ));
            }
        } else if !known.contains(name) {
            return Err(v.error(
                data.datasets.span(),
                "data.datasets",
                format!(
                    "unknown dataset {name:?}; known: {}, csv:<path>",
                    known.join(", ")
                ),
            ));
        }
        if datasets[..i].contains(name) {
            return Err(v.error(
                data.datasets.span(),
                "data.datasets",
                format!("{name:?} is listed twice"),
            ));
        }
    }
    let split_seeds = data.split_seeds.get_ref().clone();
    if split_seeds.is_empty() {
        return Err(v.error(
            data.split_seeds.span(),
            "data.split_seeds",
            "must list at least one seed",
        ));
    }
    if let Some(dup) = split_seeds
        .iter()
        .enumerate()
        .find(|(i, s)| split_seeds[..*i].contains(s))
    {
        return Err(v.error(
            data.split_seeds.span(),
            "data.split_seeds",
            format!("seed {} is listed twice", dup.1),
        ));
    }
    let fraction = |value: &Option<Spanned<f64>>, key: &str, default: f64| match value {
        None => Ok(default),
        Some(f) if *f.get_ref() > 0.0 && *f.get_ref() < 1.0 => Ok(*f.get_ref()),
        Some(f) => Err(v.error(
            f.span(),
            key,
            format!("must be in (0, 1), got {}", f.get_ref()),
        )),
    };
    let test_fraction = fraction(&data.test_fraction, "data.test_fraction", 0.2)?;
    let validation_fraction = fraction(&data.validation_fraction, "data.validation_fraction", 0.2)?;
    let preprocess = match data.preprocess.as_ref().map(|p| (p.get_ref().as_str(), p)) {
        None | Some(("none", _)) => Preprocess::None,
        Some(("center", _)) => Preprocess::Center,
        Some(("standardize", _)) => Preprocess::Standardize,
        Some((other, p)) => {
            return Err(v.error(
                p.span(),
                "data.preprocess",
                format!("{other:?}: use \"none\", \"center\" or \"standardize\""),
            ));
        }
    };

    let m = raw.model.get_ref();
    let loss = match m.loss.as_ref().map(|l| (l.get_ref().as_str(), l)) {
        None | Some(("squared", _)) => Loss::Squared,
        Some(("hinge", _)) => Loss::Hinge,
        Some(("logistic", _)) => Loss::Logistic,
        Some((other, l)) => {
            return Err(v.error(
                l.span(),
                "model.loss",
                format!("{other:?}: use \"squared\", \"hinge\" or \"logistic\""),
            ));
        }
    };
    let model = ClassificationModel {
        k: v.positive_usize(&m.k, "model.K")?,
        m1: v.positive_usize(&m.m1, "model.m1")?,
        m2: v.positive_usize(&m.m2, "model.m2")?,
        beta: v.positive_f64(&m.beta, "model.beta")?,
        loss,
    };

    let t = raw.training.get_ref();
    let epochs = v.positive_usize(&t.epochs, "training.epochs")?;
    let search_epochs = match &t.search_epochs {
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
    let training = TrainingSpec {
        epochs,
        search_epochs,
        batch_size: v.positive_usize(&t.batch_size, "training.batch_size")?,
        stop_at_full_accuracy: t.stop_at_full_accuracy.unwrap_or(true),
        lambda: v.positive_f64(&t.lambda, "training.lambda")?,
    };

    let raw_optimizers = raw.optimizers.get_ref();
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
        let o = o.get_ref();
        let key = |field: &str| format!("optimizers.{name}.{field}");
        let kind = match *name {
            "sgd" => OptimizerKind::Sgd {
                momentum: match &o.momentum {
                    None => 0.9,
                    Some(m) if (0.0..1.0).contains(m.get_ref()) => *m.get_ref(),
                    Some(m) => {
                        return Err(v.error(
                            m.span(),
                            &key("momentum"),
                            format!("must be in [0, 1), got {}", m.get_ref()),
                        ));
                    }
                },
            },
            _ => {
                if let Some(m) = &o.momentum {
                    return Err(v.error(m.span(), &key("momentum"), "only used by sgd"));
                }
                OptimizerKind::Adam
            }
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
        optimizers.push(OptimizerGrid {
            kind,
            nonconvex_lr: grid(&o.nonconvex_lr, "nonconvex_lr")?,
            convex_lr: grid(&o.convex_lr, "convex_lr")?,
        });
    }
    if optimizers.is_empty() {
        return Err(v.error(
            raw.optimizers.span(),
            "optimizers",
            "must configure sgd, adam or both",
        ));
    }

    let reference = match &raw.reference {
        None => None,
        Some(r) => {
            let columns = 2 * optimizers.len();
            for (name, values) in &r.get_ref().test_accuracy {
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
            Some(AccuracyReference {
                source: r.get_ref().source.clone(),
                test_accuracy: r
                    .get_ref()
                    .test_accuracy
                    .iter()
                    .map(|(k, v)| (k.clone(), v.get_ref().clone()))
                    .collect(),
            })
        }
    };

    Ok(ClassificationExperiment {
        name: raw.name.get_ref().clone(),
        description: raw.description,
        seed: *raw.seed.get_ref(),
        datasets: datasets.clone(),
        base_dir,
        split_seeds,
        test_fraction,
        validation_fraction,
        preprocess,
        model,
        training,
        optimizers,
        reference,
    })
}
