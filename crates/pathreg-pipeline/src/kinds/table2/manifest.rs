//! `kind = "convex_vs_nonconvex"` manifests (Table 2): data, model,
//! arrangements and convex settings from the shared sections, the non-convex
//! baselines, the sweep (K and any other key) and published values.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use pathreg_core::arrangement::exact_enumeration_estimate;
use pathreg_core::{ArrangementMode, ArrangementSet, ParallelNetwork, Regularizer};
use pathreg_data::synthetic::{low_rank_teacher_data_bytes, teacher_data_bytes};
use pathreg_solvers::Optimizer;

use crate::PipelineError;
use crate::manifest::budget::{Budget, Limits, network_pass_work};
use crate::manifest::sections::{
    ArrangementSpec, ConvexSpec, DataSpec, ModelSpec, RawArrangements, RawConvex, RawData, RawModel,
};
use crate::manifest::sweep::{Assignment, Coords, Sweep, SweepValue};
use crate::manifest::{Check, ManifestFile, Validator};

/// A validated convex-vs-non-convex experiment: every default resolved,
/// every value checked.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Experiment {
    /// Output folder name under `outputs/` (letters, digits, `-`, `_`).
    pub name: String,
    /// Free text shown in table.md and run.json.
    pub description: String,
    /// Master seed; every random stream derives from it and its cell coordinates.
    pub seed: u64,
    /// Where the training data comes from (before sweep overrides).
    pub data: DataSpec,
    /// Network and objective (before sweep overrides).
    pub model: ModelSpec,
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

/// One point of the sweep: its coordinates and the resolved settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Point {
    /// `(key, value)` for every swept key, in sweep order.
    pub coords: Coords,
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

    fn apply(&mut self, a: &Assignment, v: &Validator<'_>) -> Result<(), PipelineError> {
        let err = |reason: String| a.error(v, reason);
        match a.key.as_str() {
            "K" => self.k = Some(a.value.count(&err)?),
            "data.seed" => self.data_tag = Some(a.value.integer(&err)?),
            "data.n" | "data.d" | "data.noise" => {
                let DataSpec::Teacher(teacher) = &mut self.data else {
                    return Err(err("only applies to source = \"teacher\"".into()));
                };
                teacher.apply_sweep(&a.key, &a.value, &err)?;
            }
            "model.m1" | "model.m2" | "model.beta" => {
                self.model.apply_sweep(&a.key, &a.value, &err)?;
            }
            "arrangements.draws" => self.arrangements.draws = a.value.count(&err)?,
            key => {
                let Some(nc) = &mut self.nonconvex else {
                    return Err(err("needs a [nonconvex] section".into()));
                };
                nc.apply_sweep(key, &a.value, &err)?;
            }
        }
        Ok(())
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
    "nonconvex.optimizer",
    "nonconvex.lr",
    "nonconvex.momentum",
    "nonconvex.epochs",
    "nonconvex.batch_size",
    "nonconvex.runs",
];

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

impl NonconvexSpec {
    /// SGD momentum when the manifest gives none.
    pub const DEFAULT_MOMENTUM: f64 = 0.0;
    /// Recorded points of the objective curve when `record_every` is absent.
    pub const DEFAULT_CURVE_POINTS: usize = 200;

    fn apply_sweep(
        &mut self,
        key: &str,
        value: &SweepValue,
        err: &dyn Fn(String) -> PipelineError,
    ) -> Result<(), PipelineError> {
        match key {
            "nonconvex.epochs" => self.epochs = value.count(err)?,
            "nonconvex.batch_size" => self.batch_size = value.count(err)?,
            "nonconvex.runs" => self.runs = value.count(err)?,
            "nonconvex.optimizer" => {
                let lr = self.optimizer.lr();
                self.optimizer = match (value.text(err)?, self.optimizer) {
                    ("sgd", sgd @ Optimizer::Sgd { .. }) => sgd,
                    ("sgd", _) => Optimizer::Sgd {
                        lr,
                        momentum: Self::DEFAULT_MOMENTUM,
                    },
                    ("adam", _) => Optimizer::adam(lr),
                    (other, _) => {
                        return Err(err(format!(
                            "{other:?} is not an optimizer; expected \"sgd\" or \"adam\" (Adam uses nonconvex.lr)"
                        )));
                    }
                };
            }
            "nonconvex.lr" => {
                let v = value.positive(err)?;
                self.optimizer = self.optimizer.with_lr(v);
            }
            _ => {
                let v = value.as_f64();
                let Optimizer::Sgd { momentum, .. } = &mut self.optimizer else {
                    return Err(err("momentum only applies to optimizer = \"sgd\"".into()));
                };
                if !(0.0..1.0).contains(&v) {
                    return Err(err(format!("every value must be in [0, 1), got {v}")));
                }
                *momentum = v;
            }
        }
        Ok(())
    }
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
    sweep: BTreeMap<String, Spanned<toml::Value>>,
    reference: Option<Reference>,
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
    regularizer: Option<Spanned<String>>,
    record_every: Option<Spanned<usize>>,
}

#[derive(Clone, Copy)]
enum OptimizerName {
    Sgd,
    Adam,
}

impl Check for RawNonconvex {
    type Valid = NonconvexSpec;

    fn check(&self, v: &Validator<'_>) -> Result<NonconvexSpec, PipelineError> {
        let lr = v.positive_f64(&self.lr, "nonconvex.lr")?;
        let name = v.one_of(
            &self.optimizer,
            "nonconvex.optimizer",
            &[("sgd", OptimizerName::Sgd), ("adam", OptimizerName::Adam)],
        )?;
        let optimizer = match name {
            OptimizerName::Sgd => Optimizer::Sgd {
                lr,
                momentum: v.momentum(
                    &self.momentum,
                    "nonconvex.momentum",
                    NonconvexSpec::DEFAULT_MOMENTUM,
                )?,
            },
            OptimizerName::Adam => {
                if let Some(m) = &self.momentum {
                    return Err(v.error(
                        m.span(),
                        "nonconvex.momentum",
                        "only used with optimizer = \"sgd\"",
                    ));
                }
                Optimizer::adam(lr)
            }
        };
        let regularizer = v.choice(
            &self.regularizer,
            "nonconvex.regularizer",
            &[
                ("path", Regularizer::Path),
                ("weight_decay", Regularizer::WeightDecay),
            ],
            Regularizer::Path,
        )?;
        let epochs = v.positive_usize(&self.epochs, "nonconvex.epochs")?;
        Ok(NonconvexSpec {
            optimizer,
            epochs,
            batch_size: v.positive_usize(&self.batch_size, "nonconvex.batch_size")?,
            runs: v.positive_usize(&self.runs, "nonconvex.runs")?,
            regularizer,
            record_every: match &self.record_every {
                Some(r) => v.positive_usize(r, "nonconvex.record_every")?,
                None => (epochs / NonconvexSpec::DEFAULT_CURVE_POINTS).max(1),
            },
        })
    }
}

/// Estimates every point's memory and the run's cells and training work.
fn check_budget(
    raw: &RawManifest,
    points: &[Point],
    budget: &Budget<'_>,
) -> Result<(), PipelineError> {
    let data_span = raw.data.source_span();
    let model_span = raw.model.m1_span();
    let mut cells: u64 = 0;
    let mut work = 0.0;
    for p in points {
        budget.beta(raw.model.beta_span(), "model.beta", p.model.beta)?;
        let runs = p.nonconvex.map_or(0, |nc| nc.runs);
        cells = cells.saturating_add(1 + runs as u64);
        if let Some(nc) = p.nonconvex {
            budget.epochs(raw.kind.span(), "nonconvex.epochs", nc.epochs)?;
        }
        let DataSpec::Teacher(t) = &p.data else {
            continue;
        };
        let (n, d, m1, m2) = (t.n, t.d, p.model.m1, p.model.m2);
        let data_bytes = match t.rank_fraction {
            None => teacher_data_bytes(n, d, t.teacher),
            Some(_) => low_rank_teacher_data_bytes(n, d, t.teacher),
        };
        budget.bytes(
            data_span.clone(),
            "data.n, data.d, data.teacher_k, data.teacher_m1, data.teacher_m2",
            "the teacher data",
            data_bytes,
        )?;
        let estimate = exact_enumeration_estimate(n, d, m1);
        let triples = match p.arrangements.mode {
            ArrangementMode::Exact => estimate.triples,
            ArrangementMode::Sampled => estimate.triples.min(p.arrangements.draws as u128),
        };
        // Proposition 1 maps each triple to at most two sub-networks.
        let subnetworks = usize::try_from(triples.saturating_mul(2)).unwrap_or(usize::MAX);
        budget.bytes(
            model_span.clone(),
            "data.n, data.d, model.m1, model.m2",
            "Proposition 1's network (at most two sub-networks per triple)",
            ParallelNetwork::parameter_bytes(subnetworks, d, m1, m2),
        )?;
        if p.arrangements.mode == ArrangementMode::Sampled {
            let per_draw = n as f64 * (d as f64 * m1 as f64 + m1 as f64);
            budget.sampling(
                raw.arrangements.mode().span(),
                "arrangements.draws, data.n, data.d, model.m1",
                p.arrangements.draws as f64 * per_draw,
            )?;
        }
        match p.arrangements.mode {
            ArrangementMode::Exact => budget.core(
                raw.arrangements.mode().span(),
                "arrangements.mode, data.n, data.d, model.m1",
                estimate.check(),
            )?,
            ArrangementMode::Sampled => budget.bytes(
                raw.arrangements.mode().span(),
                "arrangements.draws, data.n, data.d, model.m1",
                "the sampled arrangements",
                ArrangementSet::sample_bytes(n, d, m1, p.arrangements.draws),
            )?,
        }
        if let (Some(nc), Some(k)) = (p.nonconvex, p.k) {
            // Weights, gradient and two optimizer moments, and a full-data pass.
            let network = pathreg_core::limits::total_bytes(&[
                ParallelNetwork::parameter_bytes(k, d, m1, m2).saturating_mul(4),
                ParallelNetwork::forward_bytes(n, k, m1, m2),
            ]);
            budget.bytes(
                model_span.clone(),
                "sweep.K, model.m1, model.m2",
                "the network",
                network,
            )?;
            work += nc.runs as f64 * nc.epochs as f64 * network_pass_work(n, k, d, m1, m2);
        }
    }
    budget.cells(raw.kind.span(), "nonconvex.runs, sweep", cells)?;
    budget.training(
        raw.kind.span(),
        "nonconvex.epochs, nonconvex.runs, sweep.K",
        work,
    )
}

/// Parses and validates a convex-vs-non-convex manifest, and checks what it
/// asks for against `limits`.
pub fn parse(file: &ManifestFile, limits: Limits) -> Result<Experiment, PipelineError> {
    let raw: RawManifest = file.parse()?;
    let v = Validator::new(file);
    let name = v.name(&raw.name)?;
    let base = Point {
        coords: Vec::new(),
        k: None,
        data_tag: None,
        data: raw.data.check(&v)?,
        model: raw.model.check(&v)?,
        arrangements: raw.arrangements.check(&v)?,
        nonconvex: raw.nonconvex.as_ref().map(|nc| nc.check(&v)).transpose()?,
    };
    let convex = raw.convex.check(&v)?;
    let sweep = Sweep::expand(&raw.sweep, SWEEP_KEYS, &v, limits)?;
    if base.nonconvex.is_some() && !sweep.has("K") {
        return Err(v.error(
            raw.kind.span(),
            "sweep.K",
            "is required when [nonconvex] is present (the sub-network counts to train)",
        ));
    }
    let points: Vec<_> = sweep
        .points(&base, |point, assignment| point.apply(assignment, &v))?
        .into_iter()
        .map(|(point, coords)| Point { coords, ..point })
        .collect();
    check_budget(&raw, &points, &Budget::new(&v, limits))?;
    Ok(Experiment {
        name,
        description: raw.description,
        seed: raw.seed,
        data: base.data,
        model: base.model,
        convex,
        nonconvex: base.nonconvex,
        sweep_keys: sweep.keys,
        points,
        reference: raw.reference,
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use pathreg_core::Loss;

    fn parse(text: &str, path: &Path) -> Result<Experiment, PipelineError> {
        super::parse(
            &ManifestFile {
                path: path.to_path_buf(),
                text: text.to_string(),
            },
            Limits::Enforced,
        )
    }

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
        assert_eq!(e.convex, ConvexSpec::default());
        assert_eq!(e.convex.tolerance, 1e-10);
        assert_eq!(e.convex.working_set_initial, 32);
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
