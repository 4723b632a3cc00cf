//! The experiments in the paper's order, each with its key figure, its
//! headline numbers beside the paper's, and the paper's claims checked on
//! the recorded results.

use std::collections::BTreeMap;
use std::path::Path;

use super::records::{Records, run_json};
use crate::PipelineError;
use crate::engine::results_lock::LockFile;

/// A claim's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The recorded results satisfy it.
    Holds,
    /// They do not.
    Fails,
    /// The experiment has no results on disk.
    NotRun,
}

impl Status {
    pub(super) fn label(self) -> &'static str {
        match self {
            Status::Holds => "holds",
            Status::Fails => "fails",
            Status::NotRun => "not run",
        }
    }

    fn of(holds: bool) -> Self {
        if holds { Status::Holds } else { Status::Fails }
    }
}

/// One claim, its status and the numbers behind it.
#[derive(Debug, Clone)]
pub(super) struct Claim {
    pub text: &'static str,
    pub status: Status,
    pub evidence: String,
}

/// Where a section's results came from.
#[derive(Debug, Clone)]
pub(super) struct Provenance {
    pub commit: String,
    pub exact: String,
    pub rounded: String,
    /// Whether the exact and rounded hashes equal the lock's (None: not in the lock).
    pub matches_lock: Option<(bool, bool)>,
    pub wall_s: f64,
    pub cache: (u64, u64),
    pub threads: u64,
    pub machine: Option<String>,
}

/// A small table: header and rows (cells may hold `**bold**`).
pub(super) type Grid = (Vec<String>, Vec<Vec<String>>);

/// One experiment's part of the report.
#[derive(Debug, Clone)]
pub(super) struct Section {
    /// The paper's item: "Figure 1", "Table 2", ….
    pub heading: &'static str,
    /// Its output folder under `outputs/`.
    pub name: &'static str,
    /// The settings line of its table.md.
    pub description: String,
    /// The command that runs it.
    pub command: String,
    /// The key figure's file stem (`<name>/<stem>.svg` and `.png`).
    pub figure: &'static str,
    /// What the paper reports.
    pub paper: &'static str,
    pub headline: Option<Grid>,
    pub claims: Vec<Claim>,
    pub provenance: Option<Provenance>,
}

impl Section {
    /// Whether the experiment has results on disk.
    pub fn ran(&self) -> bool {
        self.provenance.is_some() || self.headline.is_some()
    }
}

/// What a check reads.
struct Inputs {
    records: Records,
    run: Option<serde_json::Value>,
    manifest: Option<toml::Value>,
}

type Check = fn(&Inputs) -> Result<(Vec<(Status, String)>, Grid), PipelineError>;

struct Spec {
    heading: &'static str,
    name: &'static str,
    figure: &'static str,
    paper: &'static str,
    claims: &'static [&'static str],
    check: Check,
}

const SPECS: &[Spec] = &[
    Spec {
        heading: "Figure 1",
        name: "fig1",
        figure: "fig1_decision_boundaries",
        paper: "Decision regions on a spiral (qualitative): the three-layer path-regularized model fits the spiral where the two-layer one does not.",
        claims: &[
            "Each program is solved to a certified optimum over its sampled arrangements (relative duality gap ≤ 1e-6)",
            "Proposition 1's network reproduces each convex objective to 1e-6 (relative)",
            "The three-layer path-regularized model fits the spiral (training accuracy 1)",
        ],
        check: figure1,
    },
    Spec {
        heading: "Table 2",
        name: "table2",
        figure: "curves_K5",
        paper: "Convex optimum 0.0007 (CVX, 4.9 s); five SGD runs per K, far above it at K = 5 and close to it at K = 40 (the published runs are in the table, from the manifest's [reference]).",
        claims: &[
            "The convex optimum is certified over all triples (relative duality gap ≤ 1e-6)",
            "The convex optimum is at or below every SGD run",
            "Proposition 1's network reproduces the convex objective to 1e-6 (relative)",
            "Our optimum prints as the paper's value at its four decimals",
        ],
        check: table2,
    },
    Spec {
        heading: "Table 2",
        name: "table2_seeds",
        figure: "success_rate_vs_K",
        paper: "The claim behind Table 2: with few sub-networks SGD misses the global optimum, with more it reaches it more often.",
        claims: &[
            "No run ends below its dataset's certified optimum",
            "SGD reaches the optimum (within 1 %) more often at the largest K than at the smallest",
            "Adam reaches the optimum (within 1 %) more often at the largest K than at the smallest",
        ],
        check: table2_seeds,
    },
    Spec {
        heading: "Figure 4",
        name: "fig4",
        figure: "fig4a_objective_ratio",
        paper: "p_r / p3* stays below Theorem 2's bound (1 + √(m1 m2) R σ_{r+1}/β)² on low-rank data.",
        claims: &[
            "p3* ≤ p_r ≤ Theorem 2's bound in every cell (R the Lipschitz constant of the loss on its sublevel set)",
            "p_r ≤ Theorem 2's bound with the paper's R = 1 in every cell",
            "p3* is certified in every cell",
        ],
        check: figure4,
    },
    Spec {
        heading: "Table 3",
        name: "table3",
        figure: "paired_difference",
        paper: "On one 80/20 split of 21 UCI datasets the convex model is at least as accurate as the non-convex network on 20/21 (SGD) and 19/21 (Adam).",
        claims: &[
            "Convex ≥ non-convex (mean test accuracy) on at least as many datasets as the paper reports, with SGD",
            "Convex ≥ non-convex (mean test accuracy) on at least as many datasets as the paper reports, with Adam",
            "Paired by split, convex is significantly more accurate (Wilcoxon signed-rank, Holm-corrected, α = 0.05) on at least as many datasets as the paper's count, with SGD",
            "Paired by split, convex is significantly more accurate (Wilcoxon signed-rank, Holm-corrected, α = 0.05) on at least as many datasets as the paper's count, with Adam",
            "Paired by split, convex is significantly less accurate (Holm-corrected) on no dataset, with either optimizer",
        ],
        check: table3,
    },
    Spec {
        heading: "Section 2.1",
        name: "sparsity_path",
        figure: "active_groups",
        paper: "Path regularization makes the convex program a group lasso: “a parsimonious convex model”, sparser as β grows (our addition: (21) solved by ADMM with a certified gap along β).",
        claims: &[
            "Every β is solved to both tolerances (certified relative duality gap, relative violation)",
            "Proposition 1's network reproduces (21)'s objective to 1e-6 (relative) at every β",
            "The largest β has the fewest active groups, fewer than half of them",
        ],
        check: sparsity_path,
    },
    Spec {
        heading: "Figure 5",
        name: "fig5_fashion_mnist",
        figure: "test_accuracy_vs_time",
        paper: "“Our convex approach achieves both faster convergence and higher final test accuracies”; path regularization ends above weight decay.",
        claims: FIGURE5_CLAIMS,
        check: figure5,
    },
    Spec {
        heading: "Figure 5",
        name: "fig5_mnist",
        figure: "test_accuracy_vs_time",
        paper: "(MNIST is our addition; the paper shows CIFAR-10 and Fashion-MNIST.)",
        claims: FIGURE5_CLAIMS,
        check: figure5,
    },
    Spec {
        heading: "Figure 5",
        name: "fig5_cifar10",
        figure: "test_accuracy_vs_time",
        paper: "CIFAR-10: baselines around 50 %, the convex model above them.",
        claims: FIGURE5_CLAIMS,
        check: figure5,
    },
    Spec {
        heading: "Figure 6",
        name: "fig6_fashion_mnist",
        figure: "test_accuracy_by_stage",
        paper: "“Making the network deeper by stacking convex layers resulted in significant performance improvements”.",
        claims: FIGURE6_CLAIMS,
        check: figure6,
    },
    Spec {
        heading: "Figure 6",
        name: "fig6_mnist",
        figure: "test_accuracy_by_stage",
        paper: "(MNIST is our addition.)",
        claims: FIGURE6_CLAIMS,
        check: figure6,
    },
    Spec {
        heading: "Figure 6",
        name: "fig6_cifar10",
        figure: "test_accuracy_by_stage",
        paper: "CIFAR-10: almost 85 % at the fifth stage, against below 60 % in Figure 5.",
        claims: FIGURE6_CLAIMS,
        check: figure6,
    },
    Spec {
        heading: "Figure 7",
        name: "fig7",
        figure: "fig7_spectra",
        paper: "The singular values of MNIST and CIFAR-10 decay exponentially: an effective low-rank structure.",
        claims: &[
            "90 % of the energy lies in fewer than 10 % of the singular values, on every dataset",
        ],
        check: figure7,
    },
];

const FIGURE5_CLAIMS: &[&str] = &[
    "The convex model (11) trained by SGD ends above the non-convex network trained by SGD",
    "The convex model (11) trained by Adam ends above the non-convex network trained by Adam",
    "Path regularization ends above weight decay (both trained by SGD)",
];

const FIGURE6_CLAIMS: &[&str] = &[
    "Stacking convex stages raises test accuracy (the last stage above stage 1)",
    "The convex stack ends above end-to-end training of the same deep network",
];

/// Every section, in the paper's order.
pub(super) fn sections(
    outputs: &Path,
    workspace: &Path,
    lock: Option<&LockFile>,
) -> Result<Vec<Section>, PipelineError> {
    SPECS
        .iter()
        .map(|spec| section(spec, outputs, workspace, lock))
        .collect()
}

fn section(
    spec: &Spec,
    outputs: &Path,
    workspace: &Path,
    lock: Option<&LockFile>,
) -> Result<Section, PipelineError> {
    let dir = outputs.join(spec.name);
    let results = dir.join("results.csv");
    let command = format!("cargo xtask run experiments/{}.toml", spec.name);
    let mut section = Section {
        heading: spec.heading,
        name: spec.name,
        description: String::new(),
        command,
        figure: spec.figure,
        paper: spec.paper,
        headline: None,
        claims: Vec::new(),
        provenance: None,
    };
    if !results.is_file() {
        section.claims = spec
            .claims
            .iter()
            .map(|text| Claim {
                text,
                status: Status::NotRun,
                evidence: format!(
                    "no outputs/{}/results.csv; run `{}`",
                    spec.name, section.command
                ),
            })
            .collect();
        return Ok(section);
    }
    let run = run_json(&dir);
    let manifest = run
        .as_ref()
        .and_then(|r| r["manifest_path"].as_str())
        .map(|p| workspace.join(p))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
        .map(toml::Value::Table);
    let inputs = Inputs {
        records: Records::read(&results)?,
        run,
        manifest,
    };
    let (statuses, headline) = (spec.check)(&inputs)?;
    section.claims = spec
        .claims
        .iter()
        .zip(statuses)
        .map(|(text, (status, evidence))| Claim {
            text,
            status,
            evidence,
        })
        .collect();
    section.headline = Some(headline);
    section.description = std::fs::read_to_string(dir.join("table.md"))
        .ok()
        .and_then(|t| t.lines().nth(2).map(str::to_string))
        .unwrap_or_default();
    section.provenance = inputs
        .run
        .as_ref()
        .map(|run| provenance(run, lock.and_then(|l| l.experiments.get(spec.name))));
    Ok(section)
}

fn provenance(
    run: &serde_json::Value,
    locked: Option<&crate::engine::results_lock::LockedExperiment>,
) -> Provenance {
    let text = |key: &str| run[key].as_str().unwrap_or("unknown").to_string();
    let exact = text("result_hash");
    let rounded = text("rounded_result_hash");
    Provenance {
        commit: text("git_commit"),
        matches_lock: locked.map(|l| (l.exact == exact, l.rounded == rounded)),
        exact,
        rounded,
        wall_s: run["wall_s"].as_f64().unwrap_or(f64::NAN),
        cache: (
            run["cache"]["hits"].as_u64().unwrap_or(0),
            run["cache"]["misses"].as_u64().unwrap_or(0),
        ),
        threads: run["threads"].as_u64().unwrap_or(0),
        machine: run["machine"].as_str().map(str::to_string),
    }
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

fn grid(header: &[&str], rows: Vec<Vec<String>>) -> Grid {
    (header.iter().map(|h| h.to_string()).collect(), rows)
}

fn figure1(i: &Inputs) -> Result<(Vec<(Status, String)>, Grid), PipelineError> {
    let r = &i.records;
    let (models, objective, gap) = (
        r.texts("model")?,
        r.numbers("objective")?,
        r.numbers("relative_gap")?,
    );
    let (network, accuracy, agreement) = (
        r.numbers("network_objective")?,
        r.numbers("train_accuracy")?,
        r.numbers("grid_agreement")?,
    );
    let worst_gap = gap.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let worst_map = objective
        .iter()
        .zip(&network)
        .map(|(o, n)| relative(*n, *o))
        .fold(f64::NEG_INFINITY, f64::max);
    let path = models.iter().position(|m| *m == "three_layer_path");
    let path_accuracy = path.map_or(f64::NAN, |p| accuracy[p]);
    let claims = vec![
        (
            Status::of(worst_gap <= 1e-6),
            format!("largest relative gap {worst_gap:.1e}"),
        ),
        (
            Status::of(worst_map <= 1e-6),
            format!("largest relative difference {worst_map:.1e}"),
        ),
        (
            Status::of(path_accuracy == 1.0),
            format!("training accuracy {path_accuracy:.3}"),
        ),
    ];
    let rows = (0..models.len())
        .map(|k| {
            vec![
                models[k].replace('_', " "),
                format!("{:.4e}", objective[k]),
                format!("{:.3}", accuracy[k]),
                format!("{:.1e}", gap[k]),
                format!("{:.2}", agreement[k]),
            ]
        })
        .collect();
    Ok((
        claims,
        grid(
            &[
                "model",
                "objective",
                "train accuracy",
                "relative gap",
                "network agrees on the grid",
            ],
            rows,
        ),
    ))
}

fn table2(i: &Inputs) -> Result<(Vec<(Status, String)>, Grid), PipelineError> {
    let r = &i.records;
    let (method, k, objective, status) = (
        r.texts("method")?,
        r.numbers("K")?,
        r.numbers("objective")?,
        r.texts("status")?,
    );
    let convex: Vec<usize> = (0..method.len())
        .filter(|&j| method[j] == "convex")
        .collect();
    let optimum = convex.first().map_or(f64::NAN, |&j| objective[j]);
    let certified = convex
        .iter()
        .all(|&j| status[j] == "certified_global_optimum");
    let details = i
        .run
        .as_ref()
        .and_then(|r| r["convex"].as_array().cloned())
        .unwrap_or_default();
    let largest = |key: &str| {
        details
            .iter()
            .filter_map(|d| d[key].as_f64())
            .fold(f64::NAN, f64::max)
    };
    let (gap, mapped) = (
        largest("relative_gap"),
        largest("mapped_relative_difference"),
    );
    let runs: Vec<usize> = (0..method.len())
        .filter(|&j| method[j] != "convex")
        .collect();
    let best_run = runs
        .iter()
        .map(|&j| objective[j])
        .fold(f64::INFINITY, f64::min);
    let reference = i.manifest.as_ref().map(|m| &m["reference"]);
    let paper_optimum = reference
        .and_then(|r| r["convex_objective"].as_float())
        .unwrap_or(f64::NAN);
    let recorded = |value: f64, holds: bool, evidence: String| {
        if value.is_nan() {
            (
                Status::NotRun,
                "no run.json with the solve's details: rerun the experiment".to_string(),
            )
        } else {
            (Status::of(holds), evidence)
        }
    };
    let claims = vec![
        recorded(
            gap,
            certified && gap <= 1e-6,
            format!("status certified_global_optimum, relative gap {gap:.1e}"),
        ),
        (
            Status::of(runs.iter().all(|&j| objective[j] >= optimum)),
            format!("optimum {optimum:.7}, best SGD run {best_run:.7}"),
        ),
        recorded(
            mapped,
            mapped <= 1e-6,
            format!("relative difference {mapped:.1e}"),
        ),
        recorded(
            paper_optimum,
            format!("{optimum:.4}") == format!("{paper_optimum:.4}"),
            format!("ours {optimum:.4}, paper {paper_optimum:.4}"),
        ),
    ];
    let mut ks: Vec<f64> = runs.iter().map(|&j| k[j]).collect();
    ks.dedup();
    let rows = ks
        .iter()
        .map(|&kk| {
            let ours: Vec<f64> = runs
                .iter()
                .filter(|&&j| k[j] == kk)
                .map(|&j| objective[j])
                .collect();
            let paper: Vec<f64> = reference
                .and_then(|r| r["rows"].as_array())
                .and_then(|rows| {
                    rows.iter()
                        .find(|row| row["K"].as_integer() == Some(kk as i64))
                })
                .and_then(|row| row["objective"].as_array())
                .map(|v| v.iter().filter_map(toml::Value::as_float).collect())
                .unwrap_or_default();
            let range = |v: &[f64]| {
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if v.is_empty() {
                    "—".to_string()
                } else {
                    format!("{lo:.4}–{hi:.4}")
                }
            };
            vec![
                format!("{kk}"),
                range(&ours),
                format!("**{optimum:.4}**"),
                range(&paper),
                format!("{paper_optimum:.4}"),
            ]
        })
        .collect();
    Ok((
        claims,
        grid(
            &[
                "K",
                "SGD runs (ours)",
                "convex (ours)",
                "SGD runs (paper)",
                "convex (paper)",
            ],
            rows,
        ),
    ))
}

fn table2_seeds(i: &Inputs) -> Result<(Vec<(Status, String)>, Grid), PipelineError> {
    let r = &i.records;
    let (method, k, seed, objective) = (
        r.texts("method")?,
        r.numbers("K")?,
        r.texts("data.seed")?,
        r.numbers("objective")?,
    );
    let mut optimum: BTreeMap<(&str, u64), f64> = BTreeMap::new();
    for j in (0..method.len()).filter(|&j| method[j] == "convex") {
        optimum.insert((seed[j], k[j].to_bits()), objective[j]);
    }
    let mut below = 0;
    // (optimizer, K) → (runs, within 1 %).
    let mut rates: BTreeMap<(&str, u64), (usize, usize)> = BTreeMap::new();
    for j in (0..method.len()).filter(|&j| method[j] != "convex") {
        let Some(&best) = optimum.get(&(seed[j], k[j].to_bits())) else {
            continue;
        };
        let gap = (objective[j] - best) / best;
        if gap < -1e-9 {
            below += 1;
        }
        let entry = rates.entry((method[j], k[j] as u64)).or_default();
        entry.0 += 1;
        entry.1 += usize::from(gap <= 0.01);
    }
    let rises = |optimizer: &str| {
        let of: Vec<(u64, f64)> = rates
            .iter()
            .filter(|((o, _), _)| *o == optimizer)
            .map(|((_, kk), (n, s))| (*kk, *s as f64 / (*n).max(1) as f64))
            .collect();
        match (of.first(), of.last()) {
            (Some(first), Some(last)) if of.len() > 1 => (
                Status::of(last.1 > first.1),
                format!(
                    "{:.2} at K = {} against {:.2} at K = {}",
                    last.1, last.0, first.1, first.0
                ),
            ),
            _ => (
                Status::NotRun,
                format!("no {optimizer} runs over several K"),
            ),
        }
    };
    let claims = vec![
        (Status::of(below == 0), format!("{below} runs below")),
        rises("sgd"),
        rises("adam"),
    ];
    let rows = rates
        .iter()
        .map(|((o, kk), (n, s))| {
            vec![
                o.to_uppercase(),
                kk.to_string(),
                format!("{s} / {n}"),
                format!("{:.2}", *s as f64 / (*n).max(1) as f64),
            ]
        })
        .collect();
    Ok((
        claims,
        grid(&["optimizer", "K", "runs within 1 %", "success rate"], rows),
    ))
}

fn figure4(i: &Inputs) -> Result<(Vec<(Status, String)>, Grid), PipelineError> {
    let r = &i.records;
    let (d, p3, pr) = (r.numbers("d")?, r.numbers("p3_star")?, r.numbers("p_r")?);
    let (bound_one, bound) = (r.numbers("bound_R1")?, r.numbers("bound_R_sublevel")?);
    let status = r.texts("status")?;
    let cells = d.len();
    let inside = (0..cells)
        .filter(|&j| p3[j] <= pr[j] * (1.0 + 1e-9) && pr[j] <= bound[j])
        .count();
    let inside_one = (0..cells).filter(|&j| pr[j] <= bound_one[j]).count();
    let certified = status
        .iter()
        .filter(|s| **s == "certified_global_optimum")
        .count();
    let claims = vec![
        (
            Status::of(inside == cells),
            format!("{inside} of {cells} cells"),
        ),
        (
            Status::of(inside_one == cells),
            format!("{inside_one} of {cells} cells"),
        ),
        (
            Status::of(certified == cells),
            format!("{certified} of {cells} cells"),
        ),
    ];
    let mut ds: Vec<f64> = d.clone();
    ds.dedup();
    let rows = ds
        .iter()
        .map(|&dd| {
            let values = |f: &dyn Fn(usize) -> f64| -> Vec<f64> {
                (0..cells).filter(|&j| d[j] == dd).map(f).collect()
            };
            let largest = |v: Vec<f64>| v.into_iter().fold(f64::NEG_INFINITY, f64::max);
            let smallest = |v: Vec<f64>| v.into_iter().fold(f64::INFINITY, f64::min);
            vec![
                format!("{dd}"),
                format!("{:.3}", largest(values(&|j| pr[j] / p3[j]))),
                format!("{:.1}", smallest(values(&|j| bound_one[j] / p3[j]))),
                format!("{:.1}", smallest(values(&|j| bound[j] / p3[j]))),
            ]
        })
        .collect();
    Ok((
        claims,
        grid(
            &[
                "d",
                "largest p_r / p3*",
                "smallest bound / p3* (R = 1)",
                "smallest bound / p3* (R on the sublevel set)",
            ],
            rows,
        ),
    ))
}

fn table3(i: &Inputs) -> Result<(Vec<(Status, String)>, Grid), PipelineError> {
    let r = &i.records;
    let (dataset, optimizer, model, accuracy) = (
        r.texts("dataset")?,
        r.texts("optimizer")?,
        r.texts("model")?,
        r.numbers("test_accuracy")?,
    );
    // (dataset, optimizer, model) → accuracies over the splits.
    let mut cells: BTreeMap<(&str, &str, &str), Vec<f64>> = BTreeMap::new();
    for j in 0..dataset.len() {
        cells
            .entry((dataset[j], optimizer[j], model[j]))
            .or_default()
            .push(accuracy[j]);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let mut datasets: Vec<&str> = dataset.clone();
    datasets.sort_unstable();
    datasets.dedup();
    let reference = i
        .manifest
        .as_ref()
        .and_then(|m| m["reference"]["test_accuracy"].as_table().cloned());
    let (split, training) = (r.numbers("split_seed")?, r.numbers("training_seed")?);
    // (dataset, optimizer, split) → convex minus non-convex test accuracy,
    // averaged over the split's training seeds.
    let mut pairs: BTreeMap<(&str, &str, u64), (f64, f64)> = BTreeMap::new();
    let mut by_cell: BTreeMap<(&str, &str, u64, u64, &str), f64> = BTreeMap::new();
    for j in 0..dataset.len() {
        by_cell.insert(
            (
                dataset[j],
                optimizer[j],
                split[j].to_bits(),
                training[j].to_bits(),
                model[j],
            ),
            accuracy[j],
        );
    }
    for (&(d, o, s, t, m), &a) in &by_cell {
        if m != "convex" {
            continue;
        }
        if let Some(n) = by_cell.get(&(d, o, s, t, "nonconvex")) {
            let entry = pairs.entry((d, o, s)).or_default();
            entry.0 += a - n;
            entry.1 += 1.0;
        }
    }
    let mut claims = Vec::new();
    let mut rows = Vec::new();
    let mut significant_rows = Vec::new();
    let mut worse_anywhere = Vec::new();
    for (column, opt) in [(0usize, "sgd"), (2, "adam")] {
        let (mut ours, mut total, mut nonconvex, mut convex) = (0, 0, 0.0, 0.0);
        for d in &datasets {
            let (Some(n), Some(c)) = (
                cells.get(&(*d, opt, "nonconvex")),
                cells.get(&(*d, opt, "convex")),
            ) else {
                continue;
            };
            total += 1;
            ours += usize::from(mean(c) >= mean(n));
            nonconvex += mean(n);
            convex += mean(c);
        }
        let paper = reference.as_ref().map(|table| {
            table
                .values()
                .filter_map(|v| v.as_array())
                .filter(|v| {
                    let at = |k: usize| v.get(k).and_then(toml::Value::as_float);
                    matches!((at(column), at(column + 1)), (Some(n), Some(c)) if c >= n)
                })
                .count()
        });
        let paper_count = paper.unwrap_or(0);
        claims.push((
            if paper.is_some() {
                Status::of(ours >= paper_count)
            } else {
                Status::NotRun
            },
            if paper.is_some() {
                format!("ours {ours}/{total}, paper {paper_count}/{total}")
            } else {
                "the manifest's published values are not readable (no run.json naming it)".into()
            },
        ));
        let tests: Vec<pathreg_report::stats::Paired> = datasets
            .iter()
            .map(|d| {
                let differences: Vec<f64> = pairs
                    .iter()
                    .filter(|((pd, po, _), _)| pd == d && *po == opt)
                    .map(|(_, (sum, count))| sum / count)
                    .collect();
                pathreg_report::stats::paired(&differences)
            })
            .filter(|p| p.n > 0)
            .collect();
        let adjusted =
            pathreg_report::stats::holm(&tests.iter().map(|p| p.p_value).collect::<Vec<_>>());
        let significant = |better: bool| {
            tests
                .iter()
                .zip(&adjusted)
                .filter(|(p, a)| **a < 0.05 && p.mean != 0.0 && (p.mean > 0.0) == better)
                .count()
        };
        let (better, worse) = (significant(true), significant(false));
        significant_rows.push((
            if paper.is_some() {
                Status::of(better >= paper_count)
            } else {
                Status::NotRun
            },
            format!(
                "significantly better on {better}/{}, worse on {worse} (Holm); paper (one split, higher or equal) {paper_count}",
                tests.len()
            ),
        ));
        worse_anywhere.push(format!("{}: {worse}", opt.to_uppercase()));
        rows.push(vec![
            opt.to_uppercase(),
            format!("{ours}/{total}"),
            format!("{paper_count}/{total}"),
            format!("{better} / {} / {worse}", tests.len() - better - worse),
            format!("{:.3}", nonconvex / total.max(1) as f64),
            format!("{:.3}", convex / total.max(1) as f64),
        ]);
    }
    let none_worse = rows.iter().all(|row| row[3].ends_with("/ 0"));
    claims.extend(significant_rows);
    claims.push((
        Status::of(none_worse),
        format!("significantly worse on {}", worse_anywhere.join(", ")),
    ));
    Ok((
        claims,
        grid(
            &[
                "optimizer",
                "convex ≥ non-convex (ours)",
                "(paper)",
                "convex better / no difference / worse (paired, Holm)",
                "mean test accuracy, non-convex",
                "convex",
            ],
            rows,
        ),
    ))
}

fn accuracy_of(methods: &[&str], accuracy: &[f64], name: &str) -> Option<f64> {
    methods.iter().position(|m| *m == name).map(|j| accuracy[j])
}

fn above(methods: &[&str], accuracy: &[f64], first: &str, second: &str) -> (Status, String) {
    match (
        accuracy_of(methods, accuracy, first),
        accuracy_of(methods, accuracy, second),
    ) {
        (Some(a), Some(b)) => (
            Status::of(a > b),
            format!("{first} {:.2} %, {second} {:.2} %", 100.0 * a, 100.0 * b),
        ),
        _ => (
            Status::NotRun,
            format!("{first} or {second} not in the results"),
        ),
    }
}

fn figure5(i: &Inputs) -> Result<(Vec<(Status, String)>, Grid), PipelineError> {
    let r = &i.records;
    let (method, accuracy) = (r.texts("method")?, r.numbers("test_accuracy")?);
    let claims = vec![
        above(&method, &accuracy, "convex_sgd", "sgd"),
        above(&method, &accuracy, "convex_adam", "adam"),
        above(&method, &accuracy, "sgd", "sgd_weight_decay"),
    ];
    let best = accuracy.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let rows = method
        .iter()
        .zip(&accuracy)
        .map(|(m, a)| {
            let cell = format!("{:.2} %", 100.0 * a);
            vec![
                m.replace('_', " "),
                if *a == best {
                    format!("**{cell}**")
                } else {
                    cell
                },
            ]
        })
        .collect();
    Ok((claims, grid(&["method", "final test accuracy"], rows)))
}

fn figure6(i: &Inputs) -> Result<(Vec<(Status, String)>, Grid), PipelineError> {
    let r = &i.records;
    let (model, accuracy) = (r.texts("model")?, r.numbers("test_accuracy")?);
    let network = r.numbers("network_test_accuracy")?;
    let stages: Vec<usize> = (0..model.len())
        .filter(|&j| model[j].starts_with("stage"))
        .collect();
    let raises = match (stages.first(), stages.last()) {
        (Some(&first), Some(&last)) if stages.len() > 1 => (
            Status::of(accuracy[last] > accuracy[first]),
            format!(
                "{} {:.2} %, {} {:.2} %",
                model[last],
                100.0 * accuracy[last],
                model[first],
                100.0 * accuracy[first]
            ),
        ),
        _ => (Status::NotRun, "fewer than two stages".into()),
    };
    let last = stages.last().map(|&j| model[j]).unwrap_or("stage 1");
    let claims = vec![raises, above(&model, &accuracy, last, "baseline")];
    let rows = (0..model.len())
        .map(|j| {
            vec![
                model[j].to_string(),
                format!("{:.2} %", 100.0 * accuracy[j]),
                if network[j].is_nan() {
                    "—".into()
                } else {
                    format!("{:.2} %", 100.0 * network[j])
                },
            ]
        })
        .collect();
    Ok((
        claims,
        grid(&["model", "test accuracy", "Proposition 1 network"], rows),
    ))
}

fn figure7(i: &Inputs) -> Result<(Vec<(Status, String)>, Grid), PipelineError> {
    let r = &i.records;
    let (dataset, index, energy) = (
        r.texts("dataset")?,
        r.numbers("i")?,
        r.numbers("cumulative_energy")?,
    );
    let ratio = r.numbers("sigma_over_sigma1")?;
    let mut names: Vec<&str> = dataset.clone();
    names.dedup();
    let mut all = true;
    let mut evidence = Vec::new();
    let mut rows = Vec::new();
    for name in names {
        let of: Vec<usize> = (0..dataset.len()).filter(|&j| dataset[j] == name).collect();
        let d = of.iter().map(|&j| index[j]).fold(0.0, f64::max);
        let rank = |p: f64| {
            of.iter()
                .find(|&&j| energy[j] >= p)
                .map_or(f64::NAN, |&j| index[j])
        };
        let tenth = of
            .iter()
            .find(|&&j| index[j] == 10.0)
            .map_or(f64::NAN, |&j| ratio[j]);
        let rank_90 = rank(0.9);
        all &= rank_90 < 0.1 * d;
        evidence.push(format!("{name}: {rank_90} of {d}"));
        rows.push(vec![
            name.to_string(),
            format!("{d}"),
            format!("{rank_90}"),
            format!("{}", rank(0.99)),
            format!("{tenth:.3}"),
        ]);
    }
    Ok((
        vec![(Status::of(all), evidence.join("; "))],
        grid(
            &[
                "dataset",
                "d",
                "rank for 90 % energy",
                "for 99 %",
                "σ_10 / σ_1",
            ],
            rows,
        ),
    ))
}

fn sparsity_path(i: &Inputs) -> Result<(Vec<(Status, String)>, Grid), PipelineError> {
    let r = &i.records;
    let (beta, objective, network, gap, violation) = (
        r.numbers("beta")?,
        r.numbers("objective")?,
        r.numbers("network_objective")?,
        r.numbers("relative_gap")?,
        r.numbers("violation_relative")?,
    );
    let (converged, active, total, test) = (
        r.texts("converged")?,
        r.numbers("active_groups")?,
        r.numbers("total_groups")?,
        r.numbers("test_accuracy")?,
    );
    let solved = converged.iter().filter(|c| **c == "true").count();
    let worst_gap = gap.iter().copied().fold(0.0, f64::max);
    let worst_violation = violation.iter().copied().fold(0.0, f64::max);
    let worst_map = objective
        .iter()
        .zip(&network)
        .map(|(o, n)| (o - n).abs() / o.abs().max(f64::MIN_POSITIVE))
        .fold(0.0, f64::max);
    let largest = (0..beta.len()).max_by(|&a, &b| beta[a].total_cmp(&beta[b]));
    let sparsest = largest
        .is_some_and(|j| active.iter().all(|a| active[j] <= *a) && 2.0 * active[j] < total[j]);
    let rows = (0..beta.len())
        .map(|j| {
            vec![
                format!("{}", beta[j]),
                format!("{}/{}", active[j], total[j]),
                format!("{:.4}", objective[j]),
                format!("{:.1e}", gap[j]),
                format!("{:.3}", test[j]),
            ]
        })
        .collect();
    Ok((
        vec![
            (
                Status::of(solved == beta.len() && !beta.is_empty()),
                format!(
                    "{solved}/{} converged; largest gap {worst_gap:.1e}, largest violation {worst_violation:.1e}",
                    beta.len()
                ),
            ),
            (
                Status::of(worst_map <= 1e-6),
                format!("largest relative difference {worst_map:.1e}"),
            ),
            (
                Status::of(sparsest),
                largest.map_or("no β".into(), |j| {
                    format!("β = {}: {}/{} active", beta[j], active[j], total[j])
                }),
            ),
        ],
        grid(
            &[
                "β",
                "active groups",
                "objective (21)",
                "gap",
                "test accuracy",
            ],
            rows,
        ),
    ))
}
