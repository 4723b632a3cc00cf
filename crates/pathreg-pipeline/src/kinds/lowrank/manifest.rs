//! `kind = "lowrank"` manifests (Figure 4): Figure 4's low-rank teacher
//! data, the model and the convex settings, over a sweep of data and model
//! keys. Arrangements are always exact (the cells compare global optima),
//! and there are no non-convex runs.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use pathreg_core::ParallelNetwork;
use pathreg_core::arrangement::exact_enumeration_estimate;
use pathreg_data::synthetic::low_rank_teacher_data_bytes;

use crate::PipelineError;
use crate::manifest::budget::{Budget, Limits};
use crate::manifest::sections::{
    ConvexSpec, DataSpec, ModelSpec, RawArrangements, RawConvex, RawData, RawModel, TeacherSpec,
};
use crate::manifest::sweep::{Assignment, Coords, Sweep};
use crate::manifest::{Check, ManifestFile, Validator};

/// A validated low-rank experiment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LowRankExperiment {
    /// Output folder name under `outputs/`.
    pub name: String,
    /// Free text shown in run.json.
    pub description: String,
    /// Master seed of the data.
    pub seed: u64,
    /// Network and objective (before sweep overrides).
    pub model: ModelSpec,
    /// Convex solver settings.
    pub convex: ConvexSpec,
    /// Every cell of the sweep, with all overrides applied and validated.
    pub points: Vec<LowRankPoint>,
}

/// One cell: its coordinates, data and model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LowRankPoint {
    /// `(key, value)` for every swept key, in manifest order.
    pub coords: Coords,
    /// Replicate tag mixed into the data seed (`sweep."data.seed"`).
    pub data_tag: Option<i64>,
    /// The low-rank teacher data.
    pub data: LowRankData,
    /// Network and objective.
    pub model: ModelSpec,
}

/// Figure 4's data: a teacher's samples whose trailing singular values are
/// set to 1, keeping `r = max(1, ⌊rank_fraction·d⌋)`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LowRankData {
    /// Samples, features, teacher and noise.
    pub teacher: TeacherSpec,
    /// The kept fraction of the rank.
    pub rank_fraction: f64,
}

impl LowRankData {
    /// The data source as the data stage reads it.
    pub fn spec(&self) -> TeacherSpec {
        TeacherSpec {
            rank_fraction: Some(self.rank_fraction),
            ..self.teacher
        }
    }
}

/// Keys a low-rank `[sweep]` may list.
pub const SWEEP_KEYS: &[&str] = &[
    "data.seed",
    "data.n",
    "data.d",
    "data.noise",
    "model.m1",
    "model.m2",
    "model.beta",
];

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
    arrangements: RawArrangements,
    #[serde(default)]
    convex: RawConvex,
    #[serde(default)]
    sweep: BTreeMap<String, Spanned<toml::Value>>,
}

impl LowRankPoint {
    fn apply(&mut self, a: &Assignment, v: &Validator<'_>) -> Result<(), PipelineError> {
        let err = |reason: String| a.error(v, reason);
        match a.key.as_str() {
            "data.seed" => self.data_tag = Some(a.value.integer(&err)?),
            "data.n" | "data.d" | "data.noise" => {
                self.data.teacher.apply_sweep(&a.key, &a.value, &err)?;
            }
            _ => self.model.apply_sweep(&a.key, &a.value, &err)?,
        }
        Ok(())
    }
}

/// Parses and validates a low-rank manifest, and checks what it asks for
/// against `limits`.
pub fn parse(file: &ManifestFile, limits: Limits) -> Result<LowRankExperiment, PipelineError> {
    let raw: RawManifest = file.parse()?;
    let v = Validator::new(file);
    let name = v.name(&raw.name)?;
    let not_low_rank = || {
        v.error(
            raw.data.source_span(),
            "data.rank_fraction",
            "kind = \"lowrank\" needs source = \"teacher\" with rank_fraction (Figure 4's low-rank data)",
        )
    };
    let DataSpec::Teacher(teacher) = raw.data.check(&v)? else {
        return Err(not_low_rank());
    };
    let rank_fraction = teacher.rank_fraction.ok_or_else(not_low_rank)?;
    let data = LowRankData {
        teacher: TeacherSpec {
            rank_fraction: None,
            ..teacher
        },
        rank_fraction,
    };
    if raw.arrangements.mode().get_ref() != "exact" {
        return Err(v.error(
            raw.arrangements.mode().span(),
            "arrangements.mode",
            "kind = \"lowrank\" compares global optima: use \"exact\"",
        ));
    }
    raw.arrangements.check(&v)?;
    let model = raw.model.check(&v)?;
    let convex = raw.convex.check(&v)?;
    let sweep = Sweep::expand(&raw.sweep, SWEEP_KEYS, &v, limits)?;
    let base = LowRankPoint {
        coords: Vec::new(),
        data_tag: None,
        data,
        model,
    };
    let points: Vec<_> = sweep
        .points(&base, |point, assignment| point.apply(assignment, &v))?
        .into_iter()
        .map(|(point, coords)| LowRankPoint { coords, ..point })
        .collect();
    let budget = Budget::new(&v, limits);
    for p in &points {
        let t = &p.data.teacher;
        budget.beta(raw.model.beta_span(), "model.beta", p.model.beta)?;
        budget.bytes(
            raw.data.source_span(),
            "data.n, data.d, data.teacher_k, data.teacher_m1, data.teacher_m2",
            "the teacher data",
            low_rank_teacher_data_bytes(t.n, t.d, t.teacher),
        )?;
        budget.bytes(
            raw.model.m1_span(),
            "model.m1, model.m2",
            "one sub-network of Proposition 1's network",
            ParallelNetwork::parameter_bytes(1, t.d, p.model.m1, p.model.m2),
        )?;
        budget.core(
            raw.arrangements.mode().span(),
            "arrangements.mode, data.n, data.d, model.m1",
            exact_enumeration_estimate(t.n, t.d, p.model.m1).check(),
        )?;
    }
    Ok(LowRankExperiment {
        name,
        description: raw.description,
        seed: raw.seed,
        model,
        convex,
        points,
    })
}
