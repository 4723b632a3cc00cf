//! Experiment manifests: TOML files in `experiments/`, parsed into a typed,
//! validated [`Experiment`] before any work starts. Every error names the
//! file, the line and column, the key and the reason.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use pathreg_core::{ArrangementMode, Loss, Regularizer};
use pathreg_data::synthetic::TeacherShape;
use pathreg_solvers::Optimizer;

use crate::PipelineError;

/// A validated experiment: every default resolved, every value checked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Experiment {
    /// What is computed per sweep point.
    pub kind: ExperimentKind,
    /// Output folder name under `outputs/` (letters, digits, `-`, `_`).
    pub name: String,
    /// Free text shown in the README table and run.json.
    pub description: String,
    /// Master seed; every random stream derives from it and its cell coordinates.
    pub seed: u64,
    /// Where the training data comes from (before sweep overrides).
    pub data: DataSpec,
    /// Network and objective (before sweep overrides).
    pub model: ModelSpec,
    /// Hyperplane arrangements for the convex program (before sweep overrides).
    pub arrangements: ArrangementSpec,
    /// Convex solver settings.
    pub convex: ConvexSpec,
    /// Non-convex baselines (absent: convex only; before sweep overrides).
    pub nonconvex: Option<NonconvexSpec>,
    /// The swept keys, in manifest order (axes of the cartesian product).
    pub sweep_keys: Vec<String>,
    /// Every cell coordinate of the sweep, with all overrides applied and validated.
    pub points: Vec<Point>,
    /// Published values shown alongside the results.
    pub reference: Option<Reference>,
}

/// A swept value.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum SweepValue {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl std::fmt::Display for SweepValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SweepValue::Int(v) => write!(f, "{v}"),
            SweepValue::Float(v) => write!(f, "{v}"),
        }
    }
}

/// One point of the sweep: its coordinates and the resolved settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Point {
    /// `(key, value)` for every swept key, in sweep order.
    pub coords: Vec<(String, SweepValue)>,
    /// Sub-networks of the non-convex runs (`sweep.K`).
    pub k: Option<usize>,
    /// Replicate tag mixed into the data seed (`sweep."data.seed"`).
    pub data_tag: Option<i64>,
    /// Data source.
    pub data: DataSpec,
    /// Network and objective.
    pub model: ModelSpec,
    /// Arrangements.
    pub arrangements: ArrangementSpec,
    /// Non-convex baselines.
    pub nonconvex: Option<NonconvexSpec>,
}

impl Point {
    /// The coordinates other than K, as `key=value` labels.
    pub fn group_label(&self) -> String {
        self.coords
            .iter()
            .filter(|(k, _)| k != "K")
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Keys a `[sweep]` may list.
pub const SWEEP_KEYS: &[&str] = &[
    "K",
    "data.seed",
    "data.n",
    "data.d",
    "data.noise",
    "model.m1",
    "model.m2",
    "model.beta",
    "arrangements.draws",
    "nonconvex.lr",
    "nonconvex.momentum",
    "nonconvex.epochs",
    "nonconvex.batch_size",
    "nonconvex.runs",
];

/// The training data.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum DataSpec {
    /// `x_i ~ N(0, I_d)`, labels from a random teacher network (Section 4).
    Teacher {
        /// Samples.
        n: usize,
        /// Features.
        d: usize,
        /// Teacher architecture.
        teacher: TeacherShape,
        /// Label noise standard deviation.
        noise: f64,
        /// `None`: `x_i ~ N(0, I_d)`. `Some(f)`: Figure 4's low-rank data with
        /// `r = max(1, ⌊f·d⌋)` kept singular values and the rest set to 1.
        rank_fraction: Option<f64>,
    },
    /// A local CSV file (feature columns, then the label).
    Csv {
        /// Absolute path (resolved against the manifest's folder).
        path: PathBuf,
    },
    /// A pinned dataset by registry name (`uci:ionosphere`, `mnist`, …): its
    /// training split, fetched and verified on first use (PATHREG_DATA,
    /// PATHREG_MIRROR).
    Dataset {
        /// The registry name.
        name: String,
        /// Which rows train: `default` (the dataset's default: official files for
        /// images, a stratified 80/20 split seeded by the data seed for UCI),
        /// `official`, `conxuntos` (the UCI collection's own partition) or `all`.
        split: String,
        /// Feature preprocessing fitted on the training rows: `none`, `center`, `standardize`.
        preprocess: String,
    },
}

/// Network and objective.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ModelSpec {
    /// First hidden width.
    pub m1: usize,
    /// Second hidden width.
    pub m2: usize,
    /// Regularization strength β > 0.
    pub beta: f64,
    /// Loss (the convex solver supports `squared`).
    pub loss: Loss,
}

/// Hyperplane arrangements.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ArrangementSpec {
    /// Exact enumeration or sampling.
    pub mode: ArrangementMode,
    /// Random networks drawn in sampled mode.
    pub draws: usize,
}

/// Convex solver settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ConvexSpec {
    /// Clarabel's gap and feasibility tolerance.
    pub tolerance: f64,
    /// Initial working-set size.
    pub working_set_initial: usize,
    /// Triples added per working-set round.
    pub working_set_add: usize,
}

impl ConvexSpec {
    /// The working-set and interior-point settings these values select.
    pub fn working_set_settings(&self) -> pathreg_solvers::WorkingSetSettings {
        pathreg_solvers::WorkingSetSettings {
            initial: self.working_set_initial,
            add_per_round: self.working_set_add,
            conic: pathreg_solvers::ConicSettings {
                tol_gap: self.tolerance,
                tol_feas: self.tolerance,
                ..pathreg_solvers::ConicSettings::default()
            },
            ..pathreg_solvers::WorkingSetSettings::default()
        }
    }
}

/// Non-convex baselines.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct NonconvexSpec {
    /// Optimizer and its parameters.
    pub optimizer: Optimizer,
    /// Epochs per run.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Independent initializations per K.
    pub runs: usize,
    /// Path regularizer (objective (4)) or weight decay.
    pub regularizer: Regularizer,
    /// Objective recorded every this many epochs.
    pub record_every: usize,
}

/// Published values to print beside ours.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// Where they come from.
    pub source: String,
    /// Convex objective.
    pub convex_objective: f64,
    /// Convex time, seconds.
    pub convex_time_s: f64,
    /// Non-convex runs per K.
    pub rows: Vec<ReferenceRow>,
}

/// One published row.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceRow {
    /// Sub-networks.
    #[serde(rename = "K")]
    pub k: usize,
    /// Final objective per run.
    pub objective: Vec<f64>,
    /// Time per run, seconds.
    pub time_s: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: Spanned<String>,
    kind: Spanned<String>,
    #[serde(default)]
    description: String,
    seed: u64,
    data: RawData,
    model: RawModel,
    arrangements: RawArrangements,
    #[serde(default)]
    convex: RawConvex,
    nonconvex: Option<RawNonconvex>,
    #[serde(default)]
    sweep: std::collections::BTreeMap<String, Spanned<toml::Value>>,
    reference: Option<Reference>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    source: Spanned<String>,
    n: Option<Spanned<usize>>,
    d: Option<Spanned<usize>>,
    teacher_k: Option<Spanned<usize>>,
    teacher_m1: Option<Spanned<usize>>,
    teacher_m2: Option<Spanned<usize>>,
    noise: Option<Spanned<f64>>,
    rank_fraction: Option<Spanned<f64>>,
    path: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    split: Option<Spanned<String>>,
    preprocess: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    m1: Spanned<usize>,
    #[serde(default = "one")]
    m2: Spanned<usize>,
    beta: Spanned<f64>,
    #[serde(default = "squared")]
    loss: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArrangements {
    mode: Spanned<String>,
    draws: Option<Spanned<usize>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConvex {
    tolerance: Option<Spanned<f64>>,
    working_set_initial: Option<Spanned<usize>>,
    working_set_add: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNonconvex {
    optimizer: Spanned<String>,
    lr: Spanned<f64>,
    momentum: Option<Spanned<f64>>,
    epochs: Spanned<usize>,
    batch_size: Spanned<usize>,
    runs: Spanned<usize>,
    #[serde(default = "path_regularizer")]
    regularizer: Spanned<String>,
    record_every: Option<Spanned<usize>>,
}

fn one() -> Spanned<usize> {
    Spanned::new(0..0, 1)
}
fn squared() -> Spanned<String> {
    Spanned::new(0..0, "squared".into())
}
fn path_regularizer() -> Spanned<String> {
    Spanned::new(0..0, "path".into())
}

/// The experiment kinds this version runs.
pub const KINDS: &[&str] = &[
    "convex_vs_nonconvex",
    "lowrank",
    "spectrum",
    "classification",
];

/// A `kind = "spectrum"` manifest (Figure 7): singular-value spectra of named datasets.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SpectrumExperiment {
    /// Output folder name under `outputs/`.
    pub name: String,
    /// Free text shown in table.md.
    pub description: String,
    /// Registry names, e.g. `mnist`, `fashion-mnist`, `cifar10`, `uci:ionosphere`.
    pub datasets: Vec<String>,
    /// Subtract the column means before computing the spectrum.
    pub center: bool,
}

/// Any manifest this version runs.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyExperiment {
    /// Convex and non-convex fits over a sweep (Table 2, Figure 4).
    Fits(Box<Experiment>),
    /// Singular-value spectra (Figure 7).
    Spectrum(SpectrumExperiment),
    /// Test accuracy of convex against non-convex training (Table 3).
    Classification(Box<crate::classification::ClassificationExperiment>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpectrumManifest {
    name: Spanned<String>,
    #[allow(dead_code)]
    kind: Spanned<String>,
    #[serde(default)]
    description: String,
    spectrum: RawSpectrum,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpectrum {
    datasets: Spanned<Vec<String>>,
    #[serde(default)]
    center: bool,
}

/// Reads and validates a manifest of any kind.
pub fn load_any(path: &Path) -> Result<(AnyExperiment, String), PipelineError> {
    let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let kind = toml::from_str::<toml::Table>(&text)
        .ok()
        .and_then(|t| t.get("kind").and_then(|k| k.as_str().map(str::to_string)));
    match kind.as_deref() {
        Some("spectrum") => {}
        Some("classification") => {
            let experiment = crate::classification::manifest::parse(&text, path)?;
            return Ok((AnyExperiment::Classification(Box::new(experiment)), text));
        }
        _ => return Ok((AnyExperiment::Fits(Box::new(parse(&text, path)?)), text)),
    }
    let raw: RawSpectrumManifest =
        toml::from_str(&text).map_err(|e| toml_error(&text, path, &e))?;
    let v = Validator { text: &text, path };
    v.check_name(&raw.name)?;
    let datasets = raw.spectrum.datasets.get_ref();
    if datasets.is_empty() {
        return Err(v.error(
            raw.spectrum.datasets.span(),
            "spectrum.datasets",
            "must list at least one dataset",
        ));
    }
    let known = pathreg_data::registry::names().unwrap_or_default();
    for name in datasets {
        if !name.starts_with("csv:") && !known.contains(name) {
            return Err(v.error(
                raw.spectrum.datasets.span(),
                "spectrum.datasets",
                format!("unknown dataset {name:?}; known: {}", known.join(", ")),
            ));
        }
    }
    let experiment = SpectrumExperiment {
        name: raw.name.get_ref().clone(),
        description: raw.description,
        datasets: datasets.clone(),
        center: raw.spectrum.center,
    };
    Ok((AnyExperiment::Spectrum(experiment), text))
}

pub(crate) fn toml_error(text: &str, path: &Path, e: &toml::de::Error) -> PipelineError {
    let (line, column) = e.span().map_or((0, 0), |s| line_column(text, s.start));
    PipelineError::Manifest {
        path: path.to_path_buf(),
        line,
        column,
        key: String::new(),
        reason: e.message().to_string(),
    }
}

/// What an experiment computes per sweep point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentKind {
    /// Table 2: the certified convex optimum and non-convex runs per K.
    ConvexVsNonconvex,
    /// Figure 4: the convex optimum on X and on its rank-r approximation,
    /// with Theorem 2's bound and the arrangement counts.
    LowRank,
    /// Figure 7: singular-value spectra of datasets.
    Spectrum,
    /// Table 3: test accuracy, convex (11) against non-convex training.
    Classification,
}

/// Default Clarabel tolerance.
pub const DEFAULT_TOLERANCE: f64 = 1e-10;
/// Default number of arrangement draws in sampled mode.
pub const DEFAULT_DRAWS: usize = 20_000;

/// Reads and validates a manifest file.
pub fn load(path: &Path) -> Result<(Experiment, String), PipelineError> {
    let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let experiment = parse(&text, path)?;
    Ok((experiment, text))
}

/// Parses and validates manifest text; `path` is used for messages and to
/// resolve relative data paths.
pub fn parse(text: &str, path: &Path) -> Result<Experiment, PipelineError> {
    let raw: RawManifest = toml::from_str(text).map_err(|e| toml_error(text, path, &e))?;
    Validator { text, path }.experiment(raw)
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
    (line, column)
}

pub(crate) struct Validator<'a> {
    pub(crate) text: &'a str,
    pub(crate) path: &'a Path,
}

impl Validator<'_> {
    pub(crate) fn error(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        reason: impl Into<String>,
    ) -> PipelineError {
        let (line, column) = if span.is_empty() && span.start == 0 {
            (0, 0)
        } else {
            line_column(self.text, span.start)
        };
        PipelineError::Manifest {
            path: self.path.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    /// Rejects a key that only the data source `source` uses.
    fn forbid<T>(
        &self,
        value: &Option<Spanned<T>>,
        key: &str,
        source: &str,
    ) -> Result<(), PipelineError> {
        match value {
            Some(v) => Err(self.error(
                v.span(),
                key,
                format!("only used with source = \"{source}\""),
            )),
            None => Ok(()),
        }
    }

    pub(crate) fn positive_usize(
        &self,
        value: &Spanned<usize>,
        key: &str,
    ) -> Result<usize, PipelineError> {
        if *value.get_ref() == 0 {
            return Err(self.error(value.span(), key, "must be at least 1"));
        }
        Ok(*value.get_ref())
    }

    pub(crate) fn positive_f64(
        &self,
        value: &Spanned<f64>,
        key: &str,
    ) -> Result<f64, PipelineError> {
        let v = *value.get_ref();
        if v.is_nan() || v <= 0.0 || !v.is_finite() {
            return Err(self.error(
                value.span(),
                key,
                format!("must be a positive finite number, got {v}"),
            ));
        }
        Ok(v)
    }

    fn required<'v, T>(
        &self,
        value: &'v Option<Spanned<T>>,
        table_span: std::ops::Range<usize>,
        key: &str,
    ) -> Result<&'v Spanned<T>, PipelineError> {
        value
            .as_ref()
            .ok_or_else(|| self.error(table_span, key, "is required for this data source"))
    }

    pub(crate) fn check_name(&self, name: &Spanned<String>) -> Result<(), PipelineError> {
        let text = name.get_ref();
        if text.is_empty()
            || !text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(self.error(
                name.span(),
                "name",
                "must be non-empty and use only letters, digits, '-' and '_' (it names the folder under outputs/)",
            ));
        }
        Ok(())
    }

    fn experiment(&self, raw: RawManifest) -> Result<Experiment, PipelineError> {
        self.check_name(&raw.name)?;
        let name = raw.name.get_ref();
        if !KINDS.contains(&raw.kind.get_ref().as_str()) {
            return Err(self.error(
                raw.kind.span(),
                "kind",
                format!(
                    "unknown experiment kind {:?}; known: {KINDS:?}",
                    raw.kind.get_ref()
                ),
            ));
        }
        let kind = match raw.kind.get_ref().as_str() {
            "lowrank" => ExperimentKind::LowRank,
            _ => ExperimentKind::ConvexVsNonconvex,
        };
        let data = self.data(&raw.data)?;
        if kind == ExperimentKind::LowRank {
            if !matches!(
                data,
                DataSpec::Teacher {
                    rank_fraction: Some(_),
                    ..
                }
            ) {
                return Err(self.error(
                    raw.data.source.span(),
                    "data",
                    "kind = \"lowrank\" needs source = \"teacher\" with rank_fraction (Figure 4's low-rank data)",
                ));
            }
            if raw.nonconvex.is_some() {
                return Err(self.error(
                    raw.kind.span(),
                    "nonconvex",
                    "is not used by kind = \"lowrank\"",
                ));
            }
            if raw.arrangements.mode.get_ref() != "exact" {
                return Err(self.error(
                    raw.arrangements.mode.span(),
                    "arrangements.mode",
                    "kind = \"lowrank\" compares global optima: use \"exact\"",
                ));
            }
        }
        let model = ModelSpec {
            m1: self.positive_usize(&raw.model.m1, "model.m1")?,
            m2: self.positive_usize(&raw.model.m2, "model.m2")?,
            beta: self.positive_f64(&raw.model.beta, "model.beta")?,
            loss: match raw.model.loss.get_ref().as_str() {
                "squared" => Loss::Squared,
                other => {
                    return Err(self.error(
                        raw.model.loss.span(),
                        "model.loss",
                        format!("{other:?}: the convex program (21) is solved for the squared loss; use \"squared\""),
                    ));
                }
            },
        };
        let mode = match raw.arrangements.mode.get_ref().as_str() {
            "exact" => ArrangementMode::Exact,
            "sampled" => ArrangementMode::Sampled,
            other => {
                return Err(self.error(
                    raw.arrangements.mode.span(),
                    "arrangements.mode",
                    format!("{other:?}: use \"exact\" or \"sampled\""),
                ));
            }
        };
        let draws = match &raw.arrangements.draws {
            Some(d) => self.positive_usize(d, "arrangements.draws")?,
            None => DEFAULT_DRAWS,
        };
        let convex = ConvexSpec {
            tolerance: match &raw.convex.tolerance {
                Some(t) => {
                    let v = self.positive_f64(t, "convex.tolerance")?;
                    if v >= 1e-2 {
                        return Err(self.error(t.span(), "convex.tolerance", "must be below 1e-2"));
                    }
                    v
                }
                None => DEFAULT_TOLERANCE,
            },
            working_set_initial: match &raw.convex.working_set_initial {
                Some(v) => self.positive_usize(v, "convex.working_set_initial")?,
                None => 32,
            },
            working_set_add: match &raw.convex.working_set_add {
                Some(v) => self.positive_usize(v, "convex.working_set_add")?,
                None => 32,
            },
        };
        let nonconvex = raw
            .nonconvex
            .as_ref()
            .map(|nc| self.nonconvex(nc))
            .transpose()?;
        let base = Point {
            coords: Vec::new(),
            k: None,
            data_tag: None,
            data,
            model,
            arrangements: ArrangementSpec { mode, draws },
            nonconvex,
        };
        let (sweep_keys, points) = self.sweep(&raw.sweep, base.clone(), raw.kind.span())?;
        Ok(Experiment {
            kind,
            name: name.clone(),
            description: raw.description,
            seed: raw.seed,
            data: base.data,
            model: base.model,
            arrangements: base.arrangements,
            convex,
            nonconvex: base.nonconvex,
            sweep_keys,
            points,
            reference: raw.reference,
        })
    }

    /// Expands `[sweep]`: every key's list is an axis of a cartesian product,
    /// except keys grouped by `zip = [["a", "b"], …]`, whose lists (of equal
    /// length) advance together as one axis.
    fn sweep(
        &self,
        raw: &std::collections::BTreeMap<String, Spanned<toml::Value>>,
        base: Point,
        kind_span: std::ops::Range<usize>,
    ) -> Result<(Vec<String>, Vec<Point>), PipelineError> {
        // Axes in manifest order (the BTreeMap is sorted by key; spans give the order).
        let mut entries: Vec<(&String, &Spanned<toml::Value>)> =
            raw.iter().filter(|(k, _)| *k != "zip").collect();
        entries.sort_by_key(|(_, v)| v.span().start);
        let mut lists: Vec<(String, std::ops::Range<usize>, Vec<SweepValue>)> = Vec::new();
        for (key, value) in entries {
            let full_key = format!("sweep.{key}");
            if !SWEEP_KEYS.contains(&key.as_str()) {
                return Err(self.error(
                    value.span(),
                    &full_key,
                    format!("cannot be swept; sweepable keys: {SWEEP_KEYS:?}"),
                ));
            }
            let Some(array) = value.get_ref().as_array() else {
                return Err(self.error(value.span(), &full_key, "must be a list of values"));
            };
            if array.is_empty() {
                return Err(self.error(value.span(), &full_key, "must list at least one value"));
            }
            let values = array
                .iter()
                .map(|v| match v {
                    toml::Value::Integer(i) => Ok(SweepValue::Int(*i)),
                    toml::Value::Float(f) => Ok(SweepValue::Float(*f)),
                    other => {
                        Err(self.error(value.span(), &full_key, format!("{other} is not a number")))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            lists.push((key.clone(), value.span(), values));
        }
        // Zip groups.
        let mut axes: Vec<Vec<usize>> = Vec::new(); // indices into `lists`
        let mut zipped = vec![false; lists.len()];
        if let Some(zip) = raw.get("zip") {
            let bad = || {
                self.error(zip.span(), "sweep.zip", "must be a list of lists of swept keys, e.g. [[\"model.beta\", \"nonconvex.lr\"]]")
            };
            let groups = zip.get_ref().as_array().ok_or_else(bad)?;
            for group in groups {
                let names = group.as_array().ok_or_else(bad)?;
                let mut axis = Vec::new();
                for name in names {
                    let name = name.as_str().ok_or_else(bad)?;
                    let Some(i) = lists.iter().position(|(k, _, _)| k == name) else {
                        return Err(self.error(
                            zip.span(),
                            "sweep.zip",
                            format!("{name:?} is not a swept key"),
                        ));
                    };
                    if zipped[i] {
                        return Err(self.error(
                            zip.span(),
                            "sweep.zip",
                            format!("{name:?} appears in two zip groups"),
                        ));
                    }
                    zipped[i] = true;
                    axis.push(i);
                }
                if let Some(&first) = axis.first() {
                    let len = lists[first].2.len();
                    if axis.iter().any(|&i| lists[i].2.len() != len) {
                        return Err(self.error(
                            zip.span(),
                            "sweep.zip",
                            "zipped lists must have the same length",
                        ));
                    }
                    axes.push(axis);
                }
            }
        }
        axes.extend(
            zipped
                .iter()
                .enumerate()
                .filter(|(_, z)| !**z)
                .map(|(i, _)| vec![i]),
        );
        axes.sort_by_key(|axis| axis.iter().map(|&i| lists[i].1.start).min().unwrap_or(0));
        if base.nonconvex.is_some() && !lists.iter().any(|(k, _, _)| k == "K") {
            return Err(self.error(
                kind_span,
                "sweep.K",
                "is required when [nonconvex] is present (the sub-network counts to train)",
            ));
        }
        // Cartesian product over axes (last axis fastest).
        let mut points = vec![base];
        for axis in &axes {
            let len = lists[axis[0]].2.len();
            let mut next = Vec::with_capacity(points.len() * len);
            for point in &points {
                for step in 0..len {
                    let mut p = point.clone();
                    for &i in axis {
                        let (key, span, values) = &lists[i];
                        self.apply(&mut p, key, values[step], span.clone())?;
                    }
                    next.push(p);
                }
            }
            points = next;
        }
        // Coordinates in manifest order of the keys.
        let mut order: Vec<usize> = (0..lists.len()).collect();
        order.sort_by_key(|&i| lists[i].1.start);
        let keys: Vec<String> = order.iter().map(|&i| lists[i].0.clone()).collect();
        for p in &mut points {
            p.coords
                .sort_by_key(|(k, _)| keys.iter().position(|x| x == k));
        }
        Ok((keys, points))
    }

    fn apply(
        &self,
        p: &mut Point,
        key: &str,
        value: SweepValue,
        span: std::ops::Range<usize>,
    ) -> Result<(), PipelineError> {
        let full_key = format!("sweep.{key}");
        let err = |reason: String| self.error(span.clone(), &full_key, reason);
        let as_count = || match value {
            SweepValue::Int(i) if i >= 1 => {
                usize::try_from(i).map_err(|_| err(format!("{i} is too large")))
            }
            other => Err(err(format!(
                "every value must be an integer ≥ 1, got {other}"
            ))),
        };
        let as_float = || match value {
            SweepValue::Int(i) => i as f64,
            SweepValue::Float(f) => f,
        };
        p.coords.push((key.to_string(), value));
        match key {
            "K" => p.k = Some(as_count()?),
            "data.seed" => match value {
                SweepValue::Int(i) => p.data_tag = Some(i),
                other => return Err(err(format!("every value must be an integer, got {other}"))),
            },
            "data.n" | "data.d" | "data.noise" => {
                let DataSpec::Teacher { n, d, noise, .. } = &mut p.data else {
                    return Err(err("only applies to source = \"teacher\"".into()));
                };
                match key {
                    "data.n" => *n = as_count()?,
                    "data.d" => *d = as_count()?,
                    _ => {
                        let v = as_float();
                        if !(v.is_finite() && v >= 0.0) {
                            return Err(err(format!("every value must be ≥ 0, got {v}")));
                        }
                        *noise = v;
                    }
                }
            }
            "model.m1" => p.model.m1 = as_count()?,
            "model.m2" => p.model.m2 = as_count()?,
            "model.beta" => {
                let v = as_float();
                if v.is_nan() || v <= 0.0 || !v.is_finite() {
                    return Err(err(format!(
                        "every value must be a positive finite number, got {v}"
                    )));
                }
                p.model.beta = v;
            }
            "arrangements.draws" => p.arrangements.draws = as_count()?,
            _ => {
                let Some(nc) = &mut p.nonconvex else {
                    return Err(err("needs a [nonconvex] section".into()));
                };
                match key {
                    "nonconvex.epochs" => nc.epochs = as_count()?,
                    "nonconvex.batch_size" => nc.batch_size = as_count()?,
                    "nonconvex.runs" => nc.runs = as_count()?,
                    "nonconvex.lr" => {
                        let v = as_float();
                        if v.is_nan() || v <= 0.0 || !v.is_finite() {
                            return Err(err(format!(
                                "every value must be a positive finite number, got {v}"
                            )));
                        }
                        match &mut nc.optimizer {
                            Optimizer::Sgd { lr, .. } | Optimizer::Adam { lr, .. } => *lr = v,
                        }
                    }
                    _ => {
                        let v = as_float();
                        let Optimizer::Sgd { momentum, .. } = &mut nc.optimizer else {
                            return Err(err("momentum only applies to optimizer = \"sgd\"".into()));
                        };
                        if !(0.0..1.0).contains(&v) {
                            return Err(err(format!("every value must be in [0, 1), got {v}")));
                        }
                        *momentum = v;
                    }
                }
            }
        }
        Ok(())
    }

    fn data(&self, raw: &RawData) -> Result<DataSpec, PipelineError> {
        let span = raw.source.span();
        match raw.source.get_ref().as_str() {
            "teacher" => {
                self.forbid(&raw.split, "data.split", "dataset")?;
                self.forbid(&raw.preprocess, "data.preprocess", "dataset")?;
                self.forbid(&raw.name, "data.name", "dataset")?;
                self.forbid(&raw.path, "data.path", "csv")?;
                let noise = match &raw.noise {
                    Some(v) if !(v.get_ref().is_finite() && *v.get_ref() >= 0.0) => {
                        return Err(self.error(
                            v.span(),
                            "data.noise",
                            "must be a finite number ≥ 0",
                        ));
                    }
                    Some(v) => *v.get_ref(),
                    None => 0.0,
                };
                let rank_fraction = match &raw.rank_fraction {
                    Some(v)
                        if !(v.get_ref().is_finite()
                            && *v.get_ref() > 0.0
                            && *v.get_ref() <= 1.0) =>
                    {
                        return Err(self.error(
                            v.span(),
                            "data.rank_fraction",
                            "must be in (0, 1]",
                        ));
                    }
                    Some(v) => Some(*v.get_ref()),
                    None => None,
                };
                Ok(DataSpec::Teacher {
                    rank_fraction,
                    n: self
                        .positive_usize(self.required(&raw.n, span.clone(), "data.n")?, "data.n")?,
                    d: self
                        .positive_usize(self.required(&raw.d, span.clone(), "data.d")?, "data.d")?,
                    teacher: TeacherShape {
                        k: self.positive_usize(
                            self.required(&raw.teacher_k, span.clone(), "data.teacher_k")?,
                            "data.teacher_k",
                        )?,
                        m1: self.positive_usize(
                            self.required(&raw.teacher_m1, span.clone(), "data.teacher_m1")?,
                            "data.teacher_m1",
                        )?,
                        m2: self.positive_usize(
                            self.required(&raw.teacher_m2, span.clone(), "data.teacher_m2")?,
                            "data.teacher_m2",
                        )?,
                    },
                    noise,
                })
            }
            "csv" | "dataset" => {
                let source = raw.source.get_ref().as_str();
                self.forbid(&raw.n, "data.n", "teacher")?;
                self.forbid(&raw.d, "data.d", "teacher")?;
                self.forbid(&raw.teacher_k, "data.teacher_k", "teacher")?;
                self.forbid(&raw.teacher_m1, "data.teacher_m1", "teacher")?;
                self.forbid(&raw.teacher_m2, "data.teacher_m2", "teacher")?;
                self.forbid(&raw.rank_fraction, "data.rank_fraction", "teacher")?;
                self.forbid(&raw.noise, "data.noise", "teacher")?;
                if source == "csv" {
                    self.forbid(&raw.split, "data.split", "dataset")?;
                    self.forbid(&raw.preprocess, "data.preprocess", "dataset")?;
                    self.forbid(&raw.name, "data.name", "dataset")?;
                    let p = self.required(&raw.path, span, "data.path")?;
                    let relative = PathBuf::from(p.get_ref());
                    let base = self.path.parent().unwrap_or(Path::new("."));
                    return Ok(DataSpec::Csv {
                        path: base.join(relative),
                    });
                }
                self.forbid(&raw.path, "data.path", "csv")?;
                let name = self.required(&raw.name, span, "data.name")?;
                let known = pathreg_data::registry::names().unwrap_or_default();
                if !name.get_ref().starts_with("csv:") && !known.contains(name.get_ref()) {
                    return Err(self.error(
                        name.span(),
                        "data.name",
                        format!(
                            "unknown dataset {:?}; known: {}",
                            name.get_ref(),
                            known.join(", ")
                        ),
                    ));
                }
                let choice = |value: &Option<Spanned<String>>,
                              key: &str,
                              allowed: &[&str]|
                 -> Result<String, PipelineError> {
                    match value {
                        None => Ok(allowed[0].to_string()),
                        Some(v) if allowed.contains(&v.get_ref().as_str()) => {
                            Ok(v.get_ref().clone())
                        }
                        Some(v) => Err(self.error(
                            v.span(),
                            key,
                            format!("{:?}: use one of {allowed:?}", v.get_ref()),
                        )),
                    }
                };
                Ok(DataSpec::Dataset {
                    name: name.get_ref().clone(),
                    split: choice(
                        &raw.split,
                        "data.split",
                        &["default", "official", "conxuntos", "all"],
                    )?,
                    preprocess: choice(
                        &raw.preprocess,
                        "data.preprocess",
                        &["none", "center", "standardize"],
                    )?,
                })
            }
            other => Err(self.error(
                span,
                "data.source",
                format!("{other:?}: use \"teacher\", \"csv\" or \"dataset\""),
            )),
        }
    }

    fn nonconvex(&self, raw: &RawNonconvex) -> Result<NonconvexSpec, PipelineError> {
        let lr = self.positive_f64(&raw.lr, "nonconvex.lr")?;
        let optimizer = match raw.optimizer.get_ref().as_str() {
            "sgd" => {
                let momentum = match &raw.momentum {
                    Some(m) => {
                        let v = *m.get_ref();
                        if !(0.0..1.0).contains(&v) {
                            return Err(self.error(
                                m.span(),
                                "nonconvex.momentum",
                                format!("must be in [0, 1), got {v}"),
                            ));
                        }
                        v
                    }
                    None => 0.0,
                };
                Optimizer::Sgd { lr, momentum }
            }
            "adam" => {
                if let Some(m) = &raw.momentum {
                    return Err(self.error(
                        m.span(),
                        "nonconvex.momentum",
                        "only used with optimizer = \"sgd\"",
                    ));
                }
                Optimizer::Adam {
                    lr,
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                }
            }
            other => {
                return Err(self.error(
                    raw.optimizer.span(),
                    "nonconvex.optimizer",
                    format!("{other:?}: use \"sgd\" or \"adam\""),
                ));
            }
        };
        let regularizer = match raw.regularizer.get_ref().as_str() {
            "path" => Regularizer::Path,
            "weight_decay" => Regularizer::WeightDecay,
            other => {
                return Err(self.error(
                    raw.regularizer.span(),
                    "nonconvex.regularizer",
                    format!("{other:?}: use \"path\" or \"weight_decay\""),
                ));
            }
        };
        let epochs = self.positive_usize(&raw.epochs, "nonconvex.epochs")?;
        Ok(NonconvexSpec {
            optimizer,
            epochs,
            batch_size: self.positive_usize(&raw.batch_size, "nonconvex.batch_size")?,
            runs: self.positive_usize(&raw.runs, "nonconvex.runs")?,
            regularizer,
            record_every: match &raw.record_every {
                Some(v) => self.positive_usize(v, "nonconvex.record_every")?,
                None => (epochs / 200).max(1),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "toy"
kind = "convex_vs_nonconvex"
seed = 7

[data]
source = "teacher"
n = 5
d = 2
teacher_k = 5
teacher_m1 = 3
teacher_m2 = 1

[model]
m1 = 3
beta = 0.002

[arrangements]
mode = "exact"

[nonconvex]
optimizer = "sgd"
lr = 0.01
momentum = 0.9
epochs = 100
batch_size = 5
runs = 2

[sweep]
K = [5, 20]
"#;

    fn err(text: &str) -> String {
        parse(text, Path::new("experiments/x.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_good_manifest_resolves_defaults() {
        let e = parse(GOOD, Path::new("experiments/x.toml")).unwrap();
        assert_eq!(e.model.m2, 1);
        assert_eq!(e.model.loss, Loss::Squared);
        assert_eq!(e.convex.tolerance, DEFAULT_TOLERANCE);
        assert_eq!(e.points.len(), 2);
        assert_eq!(e.points[1].k, Some(20));
        assert_eq!(e.nonconvex.unwrap().record_every, 1);
    }

    #[test]
    fn invalid_values_name_file_line_column_and_key() {
        let e = err(&GOOD.replace("beta = 0.002", "beta = -1.0"));
        assert!(e.starts_with("experiments/x.toml:16:8: model.beta:"), "{e}");
        let e = err(&GOOD.replace("m1 = 3\nbeta", "m1 = 0\nbeta"));
        assert!(e.contains("model.m1") && e.contains("at least 1"), "{e}");
        let e = err(&GOOD.replace("K = [5, 20]", "K = []"));
        assert!(e.contains("sweep.K") && e.contains("at least one"), "{e}");
        let e = err(&GOOD.replace("K = [5, 20]", "K = [5, 0]"));
        assert!(e.contains("sweep.K") && e.contains("integer ≥ 1"), "{e}");
        let e = err(&GOOD.replace("K = [5, 20]", "K = [5]\n\"model.beta\" = [0.1, -2.0]"));
        assert!(
            e.contains("sweep.model.beta") && e.contains("positive"),
            "{e}"
        );
        let e = err(&GOOD.replace("K = [5, 20]", "K = [5]\n\"model.gamma\" = [1]"));
        assert!(e.contains("cannot be swept"), "{e}");
        let e = err(&GOOD.replace("K = [5, 20]", "\"model.beta\" = [0.1]"));
        assert!(e.contains("sweep.K") && e.contains("required"), "{e}");
        let e = err(&GOOD.replace("mode = \"exact\"", "mode = \"approximate\""));
        assert!(e.contains("arrangements.mode"), "{e}");
        let e = err(&GOOD.replace("name = \"toy\"", "name = \"../etc\""));
        assert!(e.contains("name") && e.contains("outputs/"), "{e}");
    }

    #[test]
    fn sweeps_expand_to_the_cartesian_product_or_zip() {
        let text = GOOD.replace(
            "K = [5, 20]",
            "K = [5, 20]\n\"model.beta\" = [0.1, 0.2, 0.3]\n\"nonconvex.lr\" = [1.0, 2.0, 3.0]",
        );
        let e = parse(&text, Path::new("x.toml")).unwrap();
        assert_eq!(e.points.len(), 2 * 3 * 3);
        assert_eq!(e.sweep_keys, ["K", "model.beta", "nonconvex.lr"]);
        let zipped = parse(
            &format!("{text}zip = [[\"model.beta\", \"nonconvex.lr\"]]\n"),
            Path::new("x.toml"),
        )
        .unwrap();
        assert_eq!(zipped.points.len(), 2 * 3);
        let last = zipped.points.last().unwrap();
        assert_eq!(last.model.beta, 0.3);
        assert!(
            matches!(last.nonconvex.unwrap().optimizer, Optimizer::Sgd { lr, .. } if lr == 3.0)
        );
        let bad = format!("{}zip = [[\"model.beta\", \"K\"]]\n", text);
        assert!(
            parse(&bad, Path::new("x.toml"))
                .unwrap_err()
                .to_string()
                .contains("same length")
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_rejected_with_position() {
        let e = err(&GOOD.replace("beta = 0.002", "beta = 0.002\nbetta = 1"));
        assert!(e.contains("x.toml:17:1:") && e.contains("betta"), "{e}");
        let e = err(&GOOD.replace("epochs = 100", "epochs = \"many\""));
        assert!(e.contains("x.toml:25:"), "{e}");
    }

    #[test]
    fn csv_paths_resolve_against_the_manifest_folder() {
        let text = GOOD.replace(
            "source = \"teacher\"\nn = 5\nd = 2\nteacher_k = 5\nteacher_m1 = 3\nteacher_m2 = 1",
            "source = \"csv\"\npath = \"data/mine.csv\"",
        );
        let e = parse(&text, Path::new("/home/u/exp/x.toml")).unwrap();
        assert_eq!(
            e.data,
            DataSpec::Csv {
                path: PathBuf::from("/home/u/exp/data/mine.csv")
            }
        );
        let named = text.replace(
            "source = \"csv\"\npath = \"data/mine.csv\"",
            "source = \"dataset\"\nname = \"uci:ionosphere\"\nsplit = \"thirds\"",
        );
        let e = err(&named);
        assert!(e.contains("data.split") && e.contains("thirds"), "{e}");
        let e = err(&named.replace("uci:ionosphere", "uci:nope"));
        assert!(
            e.contains("data.name") && e.contains("unknown dataset"),
            "{e}"
        );
        let e = err(&text.replace("path = \"data/mine.csv\"", ""));
        assert!(e.contains("data.path") && e.contains("required"), "{e}");
    }
}
