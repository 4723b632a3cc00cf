//! The manifest sections that several kinds share, each a raw type that
//! checks itself into its valid type: `[data]` → [`DataSpec`], `[model]` →
//! [`ModelSpec`], `[arrangements]` → [`ArrangementSpec`], `[convex]` →
//! [`ConvexSpec`]. Defaults are declared once, on the valid types.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use pathreg_core::{ArrangementMode, Loss};
use pathreg_data::split::{Preprocess, Split};
use pathreg_data::synthetic::TeacherShape;

use super::sweep::SweepValue;
use super::toolkit::{Check, Validator};
use crate::PipelineError;

/// The training data.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum DataSpec {
    /// Synthetic data labelled by a random teacher network (Section 4).
    Teacher(TeacherSpec),
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
        /// Which rows train.
        split: SplitChoice,
        /// Feature preprocessing fitted on the training rows.
        #[serde(serialize_with = "serialize_preprocess")]
        preprocess: Preprocess,
    },
}

/// `x_i ~ N(0, I_d)` (or Figure 4's low-rank data), labels from a random
/// teacher network `y = f_teacher(X) + noise·ε`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TeacherSpec {
    /// Samples.
    pub n: usize,
    /// Features.
    pub d: usize,
    /// Teacher architecture.
    pub teacher: TeacherShape,
    /// Label noise standard deviation.
    pub noise: f64,
    /// `None`: `x_i ~ N(0, I_d)`. `Some(f)`: Figure 4's low-rank data with
    /// `r = max(1, ⌊f·d⌋)` kept singular values and the rest set to 1.
    pub rank_fraction: Option<f64>,
}

impl TeacherSpec {
    /// Label noise when the manifest gives none.
    pub const DEFAULT_NOISE: f64 = 0.0;

    /// Applies a swept `data.n`, `data.d` or `data.noise`.
    pub fn apply_sweep(
        &mut self,
        key: &str,
        value: &SweepValue,
        err: &dyn Fn(String) -> PipelineError,
    ) -> Result<(), PipelineError> {
        match key {
            "data.n" => self.n = value.count(err)?,
            "data.d" => self.d = value.count(err)?,
            _ => {
                let v = value.as_f64();
                if !(v.is_finite() && v >= 0.0) {
                    return Err(err(format!("every value must be ≥ 0, got {v}")));
                }
                self.noise = v;
            }
        }
        Ok(())
    }
}

/// Which rows of a pinned dataset train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitChoice {
    /// The dataset's default: the official files for images, a stratified
    /// 80/20 split seeded by the data seed for UCI.
    Default,
    /// The official train/test files.
    Official,
    /// The UCI collection's own partition (`conxuntos*.dat`).
    Conxuntos,
    /// Every row trains.
    All,
}

impl SplitChoice {
    /// The manifest spellings, the first being the default.
    const CHOICES: [(&str, SplitChoice); 4] = [
        ("default", SplitChoice::Default),
        ("official", SplitChoice::Official),
        ("conxuntos", SplitChoice::Conxuntos),
        ("all", SplitChoice::All),
    ];

    /// The data crate's split (`None`: the dataset's default).
    pub fn split(self) -> Option<Split> {
        match self {
            SplitChoice::Default => None,
            SplitChoice::Official => Some(Split::Official),
            SplitChoice::Conxuntos => Some(Split::UciConxuntos),
            SplitChoice::All => Some(Split::None),
        }
    }
}

/// Manifest spellings of the preprocessing choices, the first being the default.
pub const PREPROCESS_CHOICES: [(&str, Preprocess); 3] = [
    ("none", Preprocess::None),
    ("center", Preprocess::Center),
    ("standardize", Preprocess::Standardize),
];

/// Serializes a [`Preprocess`] by its manifest spelling.
pub fn serialize_preprocess<S: serde::Serializer>(p: &Preprocess, s: S) -> Result<S::Ok, S::Error> {
    let name = PREPROCESS_CHOICES
        .iter()
        .find(|(_, v)| v == p)
        .map_or("none", |(n, _)| n);
    s.serialize_str(name)
}

/// `[data]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawData {
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

impl RawData {
    /// Where `source` is written (for errors about the whole section).
    pub fn source_span(&self) -> std::ops::Range<usize> {
        self.source.span()
    }

    fn teacher(&self, v: &Validator<'_>) -> Result<TeacherSpec, PipelineError> {
        let span = self.source.span();
        let noise = match &self.noise {
            Some(n) if !(n.get_ref().is_finite() && *n.get_ref() >= 0.0) => {
                return Err(v.error(n.span(), "data.noise", "must be a finite number ≥ 0"));
            }
            Some(n) => *n.get_ref(),
            None => TeacherSpec::DEFAULT_NOISE,
        };
        let rank_fraction = match &self.rank_fraction {
            Some(f) if !(f.get_ref().is_finite() && *f.get_ref() > 0.0 && *f.get_ref() <= 1.0) => {
                return Err(v.error(f.span(), "data.rank_fraction", "must be in (0, 1]"));
            }
            Some(f) => Some(*f.get_ref()),
            None => None,
        };
        let count = |value: &Option<Spanned<usize>>, key: &str| {
            v.positive_usize(v.required(value, span.clone(), key)?, key)
        };
        Ok(TeacherSpec {
            rank_fraction,
            n: count(&self.n, "data.n")?,
            d: count(&self.d, "data.d")?,
            teacher: TeacherShape {
                k: count(&self.teacher_k, "data.teacher_k")?,
                m1: count(&self.teacher_m1, "data.teacher_m1")?,
                m2: count(&self.teacher_m2, "data.teacher_m2")?,
            },
            noise,
        })
    }

    fn forbid_teacher_keys(&self, v: &Validator<'_>) -> Result<(), PipelineError> {
        v.forbid(&self.n, "data.n", "teacher")?;
        v.forbid(&self.d, "data.d", "teacher")?;
        v.forbid(&self.teacher_k, "data.teacher_k", "teacher")?;
        v.forbid(&self.teacher_m1, "data.teacher_m1", "teacher")?;
        v.forbid(&self.teacher_m2, "data.teacher_m2", "teacher")?;
        v.forbid(&self.rank_fraction, "data.rank_fraction", "teacher")?;
        v.forbid(&self.noise, "data.noise", "teacher")
    }

    fn forbid_dataset_keys(&self, v: &Validator<'_>) -> Result<(), PipelineError> {
        v.forbid(&self.split, "data.split", "dataset")?;
        v.forbid(&self.preprocess, "data.preprocess", "dataset")?;
        v.forbid(&self.name, "data.name", "dataset")
    }
}

#[derive(Clone, Copy)]
enum Source {
    Teacher,
    Csv,
    Dataset,
}

impl Check for RawData {
    type Valid = DataSpec;

    fn check(&self, v: &Validator<'_>) -> Result<DataSpec, PipelineError> {
        let source = v.one_of(
            &self.source,
            "data.source",
            &[
                ("teacher", Source::Teacher),
                ("csv", Source::Csv),
                ("dataset", Source::Dataset),
            ],
        )?;
        match source {
            Source::Teacher => {
                self.forbid_dataset_keys(v)?;
                v.forbid(&self.path, "data.path", "csv")?;
                Ok(DataSpec::Teacher(self.teacher(v)?))
            }
            Source::Csv => {
                self.forbid_teacher_keys(v)?;
                self.forbid_dataset_keys(v)?;
                let p = v.required(&self.path, self.source.span(), "data.path")?;
                Ok(DataSpec::Csv {
                    path: v.base_dir().join(p.get_ref()),
                })
            }
            Source::Dataset => {
                self.forbid_teacher_keys(v)?;
                v.forbid(&self.path, "data.path", "csv")?;
                let name = v.required(&self.name, self.source.span(), "data.name")?;
                v.dataset_name(name.get_ref(), name.span(), "data.name")?;
                Ok(DataSpec::Dataset {
                    name: name.get_ref().clone(),
                    split: v.choice(
                        &self.split,
                        "data.split",
                        &SplitChoice::CHOICES,
                        SplitChoice::CHOICES[0].1,
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
    }
}

/// Network and objective of the exact convex program (21).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ModelSpec {
    /// First hidden width.
    pub m1: usize,
    /// Second hidden width.
    pub m2: usize,
    /// Regularization strength β > 0.
    pub beta: f64,
    /// Loss: the convex program (21) is solved for the squared loss.
    pub loss: Loss,
}

impl ModelSpec {
    /// Second hidden width when the manifest gives none.
    pub const DEFAULT_M2: usize = 1;

    /// Applies a swept `model.m1`, `model.m2` or `model.beta`.
    pub fn apply_sweep(
        &mut self,
        key: &str,
        value: &SweepValue,
        err: &dyn Fn(String) -> PipelineError,
    ) -> Result<(), PipelineError> {
        match key {
            "model.m1" => self.m1 = value.count(err)?,
            "model.m2" => self.m2 = value.count(err)?,
            _ => self.beta = value.positive(err)?,
        }
        Ok(())
    }
}

/// `[model]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    m1: Spanned<usize>,
    m2: Option<Spanned<usize>>,
    beta: Spanned<f64>,
    loss: Option<Spanned<String>>,
}

impl RawModel {
    /// Where `m1` is written.
    pub fn m1_span(&self) -> std::ops::Range<usize> {
        self.m1.span()
    }

    /// Where `beta` is written.
    pub fn beta_span(&self) -> std::ops::Range<usize> {
        self.beta.span()
    }
}

impl Check for RawModel {
    type Valid = ModelSpec;

    fn check(&self, v: &Validator<'_>) -> Result<ModelSpec, PipelineError> {
        let loss = match &self.loss {
            Some(l) if l.get_ref() != "squared" => {
                return Err(v.error(
                    l.span(),
                    "model.loss",
                    format!(
                        "{:?}: the convex program (21) is solved for the squared loss; use \"squared\"",
                        l.get_ref()
                    ),
                ));
            }
            _ => Loss::Squared,
        };
        Ok(ModelSpec {
            m1: v.positive_usize(&self.m1, "model.m1")?,
            m2: match &self.m2 {
                Some(m2) => v.positive_usize(m2, "model.m2")?,
                None => ModelSpec::DEFAULT_M2,
            },
            beta: v.positive_f64(&self.beta, "model.beta")?,
            loss,
        })
    }
}

/// Hyperplane arrangements.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ArrangementSpec {
    /// Exact enumeration or sampling.
    pub mode: ArrangementMode,
    /// Random networks drawn in sampled mode.
    pub draws: usize,
}

impl ArrangementSpec {
    /// Random networks drawn in sampled mode when the manifest gives no number.
    pub const DEFAULT_DRAWS: usize = 20_000;
}

/// `[arrangements]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArrangements {
    mode: Spanned<String>,
    draws: Option<Spanned<usize>>,
}

impl RawArrangements {
    /// The mode as written, with its position.
    pub fn mode(&self) -> &Spanned<String> {
        &self.mode
    }
}

impl Check for RawArrangements {
    type Valid = ArrangementSpec;

    fn check(&self, v: &Validator<'_>) -> Result<ArrangementSpec, PipelineError> {
        Ok(ArrangementSpec {
            mode: v.one_of(
                &self.mode,
                "arrangements.mode",
                &[
                    ("exact", ArrangementMode::Exact),
                    ("sampled", ArrangementMode::Sampled),
                ],
            )?,
            draws: match &self.draws {
                Some(d) => v.positive_usize(d, "arrangements.draws")?,
                None => ArrangementSpec::DEFAULT_DRAWS,
            },
        })
    }
}

/// Settings of the certified working-set solve of (21). The defaults are
/// those of [`pathreg_solvers::WorkingSetSettings`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ConvexSpec {
    /// Clarabel's gap and feasibility tolerance.
    pub tolerance: f64,
    /// Initial working-set size.
    pub working_set_initial: usize,
    /// Triples added per working-set round.
    pub working_set_add: usize,
}

impl Default for ConvexSpec {
    fn default() -> Self {
        let defaults = pathreg_solvers::WorkingSetSettings::default();
        Self {
            tolerance: defaults.conic.tol_gap,
            working_set_initial: defaults.initial,
            working_set_add: defaults.add_per_round,
        }
    }
}

impl ConvexSpec {
    /// Tolerances at or above this are refused: they cannot certify anything.
    const TOLERANCE_LIMIT: f64 = 1e-2;

    /// The working-set and interior-point settings these values select.
    pub fn working_set_settings(&self) -> pathreg_solvers::WorkingSetSettings {
        let defaults = pathreg_solvers::WorkingSetSettings::default();
        pathreg_solvers::WorkingSetSettings {
            initial: self.working_set_initial,
            add_per_round: self.working_set_add,
            conic: pathreg_solvers::ConicSettings {
                tol_gap: self.tolerance,
                tol_feas: self.tolerance,
                ..defaults.conic
            },
            ..defaults
        }
    }
}

/// `[convex]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConvex {
    tolerance: Option<Spanned<f64>>,
    working_set_initial: Option<Spanned<usize>>,
    working_set_add: Option<Spanned<usize>>,
}

impl Check for RawConvex {
    type Valid = ConvexSpec;

    fn check(&self, v: &Validator<'_>) -> Result<ConvexSpec, PipelineError> {
        let defaults = ConvexSpec::default();
        Ok(ConvexSpec {
            tolerance: match &self.tolerance {
                Some(t) => {
                    let value = v.positive_f64(t, "convex.tolerance")?;
                    if value >= ConvexSpec::TOLERANCE_LIMIT {
                        return Err(v.error(t.span(), "convex.tolerance", "must be below 1e-2"));
                    }
                    value
                }
                None => defaults.tolerance,
            },
            working_set_initial: match &self.working_set_initial {
                Some(n) => v.positive_usize(n, "convex.working_set_initial")?,
                None => defaults.working_set_initial,
            },
            working_set_add: match &self.working_set_add {
                Some(n) => v.positive_usize(n, "convex.working_set_add")?,
                None => defaults.working_set_add,
            },
        })
    }
}

/// ADMM's tolerances and cap for (21) as a manifest table writes them
/// (`[constrained]` of classification manifests, `[admm]` of sparsity paths).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAdmm {
    /// Relative constraint violation to reach.
    pub tol_violation: Option<Spanned<f64>>,
    /// Certified relative duality gap to reach.
    pub tol_gap: Option<Spanned<f64>>,
    /// Iteration cap.
    pub max_iterations: Option<Spanned<usize>>,
    /// Iterations before the first Newton polish (0 for none).
    pub polish_from: Option<Spanned<usize>>,
    /// `"float64"` (the default) or `"float32"` products.
    pub precision: Option<Spanned<String>>,
}

impl RawAdmm {
    /// The settings, the defaults where a key is absent; errors name
    /// `<table>.<key>`.
    pub fn check(
        &self,
        table: &str,
        v: &Validator<'_>,
    ) -> Result<pathreg_solvers::AdmmSettings, PipelineError> {
        let mut settings = pathreg_solvers::AdmmSettings::default();
        if let Some(t) = &self.tol_violation {
            settings.tol_violation = v.positive_f64(t, &format!("{table}.tol_violation"))?;
        }
        if let Some(t) = &self.tol_gap {
            settings.tol_gap = v.positive_f64(t, &format!("{table}.tol_gap"))?;
        }
        if let Some(m) = &self.max_iterations {
            settings.max_iterations = v.positive_usize(m, &format!("{table}.max_iterations"))?;
        }
        if let Some(p) = &self.polish_from {
            let every = settings.check_every;
            if !p.get_ref().is_multiple_of(every) {
                return Err(v.error(
                    p.span(),
                    &format!("{table}.polish_from"),
                    format!(
                        "must be 0 or a multiple of {every} (ADMM checks every {every} iterations), got {}",
                        p.get_ref()
                    ),
                ));
            }
            settings.polish_from = *p.get_ref();
        }
        settings.precision = v.choice(
            &self.precision,
            &format!("{table}.precision"),
            &[
                ("float64", pathreg_solvers::Precision::Float64),
                ("float32", pathreg_solvers::Precision::Float32),
            ],
            pathreg_solvers::Precision::Float64,
        )?;
        Ok(settings)
    }
}
