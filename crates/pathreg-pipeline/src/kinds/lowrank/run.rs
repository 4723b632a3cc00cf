//! Figure 4's cells: per sweep point, the certified global optimum p3* of
//! (21) on X, the objective p_r on X of the network trained on the rank-r
//! approximation X̂_r (Proposition 1 map), Theorem 2's bound (10) and the
//! arrangement counts for X and X̂_r.
//!
//! The squared loss is not globally Lipschitz, so the bound is given for two
//! constants: the paper's `R = 1`, and `R = ‖y‖₂`, the Lipschitz constant of
//! `½‖f − y‖²` on its sublevel set `{f : ½‖f − y‖² ≤ ½‖y‖²}` (the predictions
//! no worse than the zero network), where `‖∇L‖ = ‖f − y‖ ≤ ‖y‖`.

use std::time::Instant;

use pathreg_core::arrangement::first_layer_patterns;
use pathreg_core::low_rank::{
    closed_form_regions, kept_rank, rank_r_approximation, theorem2_bound,
};
use pathreg_data::Dataset;
use pathreg_solvers::{CertificationStatus, check_proposition1, solve_certified};
use serde::{Deserialize, Serialize};

use super::manifest::{LowRankExperiment, LowRankPoint};
use crate::PipelineError;
use crate::engine::Cell;
use crate::engine::cache::{Cache, CacheKey};
use crate::manifest::sections::DataSpec;
use crate::stages::arrangements::{ArrangementRequest, arrangements};
use crate::stages::data::{content_hash, data_seed, teacher};

/// The cache stage of one Figure 4 cell.
pub const STAGE: &str = "lowrank";
/// Cache schema version: bump when a cell's code changes what it computes.
const VERSION: u32 = 2;

/// One Figure 4 cell (cached as the `lowrank` stage).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct LowRankCell {
    pub n: usize,
    pub d: usize,
    pub r: usize,
    pub sigma_next: f64,
    pub y_norm: f64,
    pub p3: f64,
    pub p3_relative_gap: f64,
    pub p3_max_dual_ratio: f64,
    pub p3_map_difference: f64,
    pub p_r: f64,
    pub p_r_on_low_rank: f64,
    pub low_rank_relative_gap: f64,
    pub low_rank_map_difference: f64,
    pub bound_r1: f64,
    pub bound_sublevel: f64,
    pub first_layer_full: usize,
    pub first_layer_low: usize,
    pub closed_form_full: u64,
    pub closed_form_low: u64,
    pub triples_full: usize,
    pub triples_low: usize,
    pub enumerate_full_s: f64,
    pub solve_full_s: f64,
    pub enumerate_low_s: f64,
    pub solve_low_s: f64,
    pub status: String,
}

/// One sweep point with its generated data, as a cell of the engine's loop.
pub(super) struct PointCell<'a> {
    pub experiment: &'a LowRankExperiment,
    pub point: &'a LowRankPoint,
    pub data: Dataset,
}

impl Cell for PointCell<'_> {
    type Output = LowRankCell;

    /// Model, solver settings, data parameters and the generated data's hash.
    fn key(&self) -> CacheKey {
        let m = &self.point.model;
        let params = serde_json::json!({
            "model": { "m1": m.m1, "m2": m.m2, "beta": m.beta, "loss": m.loss },
            "convex": self.experiment.convex,
            "data": DataSpec::Teacher(self.point.data.spec()),
        });
        CacheKey::new(STAGE, VERSION, &params, &[&content_hash(&self.data)])
    }

    fn label(&self) -> String {
        label(self.point)
    }

    fn compute(&self, cache: &Cache) -> Result<LowRankCell, PipelineError> {
        compute_cell(self.experiment, self.point, &self.data, cache)
    }
}

/// Every point's data (cheap to generate; the cells are cached).
pub(super) fn cells(experiment: &LowRankExperiment) -> Result<Vec<PointCell<'_>>, PipelineError> {
    experiment
        .points
        .iter()
        .map(|point| {
            Ok(PointCell {
                experiment,
                point,
                data: teacher(
                    &point.data.spec(),
                    data_seed(experiment.seed, point.data_tag),
                )?,
            })
        })
        .collect()
}

/// Exact arrangements of `data`, from the cache when present, and the seconds it took.
fn exact_arrangements(
    cache: &Cache,
    data: &Dataset,
    m1: usize,
) -> Result<(pathreg_core::ArrangementSet, f64), PipelineError> {
    let start = Instant::now();
    let (set, _) = arrangements(
        cache,
        ArrangementRequest::Exact { m1 },
        data.x.view(),
        &content_hash(data),
        &|_, _| {},
    )?;
    Ok((set, start.elapsed().as_secs_f64()))
}

fn compute_cell(
    experiment: &LowRankExperiment,
    point: &LowRankPoint,
    data: &Dataset,
    cache: &Cache,
) -> Result<LowRankCell, PipelineError> {
    let (n, d) = data.x.dim();
    let r = kept_rank(d, point.data.rank_fraction);
    let (low_x, sigma_next) = rank_r_approximation(data.x.view(), r)?;
    let low = Dataset {
        feature_names: data.feature_names.clone(),
        x: low_x,
        y: data.y.clone(),
    };
    let model = &point.model;
    let (beta, m1, m2) = (model.beta, model.m1, model.m2);
    let settings = experiment.convex.working_set_settings();
    let (x, y) = (data.x.view(), data.y.view());

    let (full_set, enumerate_full_s) = exact_arrangements(cache, data, m1)?;
    let full = solve_certified(x, y, &full_set, beta, m2, &settings)?;
    let p3 = full.certificate.primal;
    let full_map = check_proposition1(&full.last.solution, x, y, beta, m2, model.loss, p3)?;

    let (low_set, enumerate_low_s) = exact_arrangements(cache, &low, m1)?;
    let low_solve = solve_certified(low.x.view(), y, &low_set, beta, m2, &settings)?;
    let p_r_on_low_rank = low_solve.certificate.primal;
    let low_map = check_proposition1(
        &low_solve.last.solution,
        low.x.view(),
        y,
        beta,
        m2,
        model.loss,
        p_r_on_low_rank,
    )?;
    let p_r = low_map
        .network
        .objective(x, y, model.loss, beta, pathreg_core::Regularizer::Path)?
        .objective;
    let y_norm = data.y.dot(&data.y).sqrt();
    let bound = |lipschitz: f64| theorem2_bound(p3, m1, m2, lipschitz, sigma_next, beta);
    Ok(LowRankCell {
        n,
        d,
        r,
        sigma_next,
        y_norm,
        p3,
        p3_relative_gap: full.certificate.relative_gap,
        p3_max_dual_ratio: full.certificate.max_ratio,
        p3_map_difference: full_map.relative_difference,
        p_r,
        p_r_on_low_rank,
        low_rank_relative_gap: low_solve.certificate.relative_gap,
        low_rank_map_difference: low_map.relative_difference,
        bound_r1: bound(1.0),
        bound_sublevel: bound(y_norm),
        first_layer_full: first_layer_patterns(x).len(),
        first_layer_low: first_layer_patterns(low.x.view()).len(),
        closed_form_full: closed_form_regions(n, n.min(d)),
        closed_form_low: closed_form_regions(n, r),
        triples_full: full_set.len(),
        triples_low: low_set.len(),
        enumerate_full_s,
        solve_full_s: full.time_s,
        enumerate_low_s,
        solve_low_s: low_solve.time_s,
        status: CertificationStatus::of(&full.certificate, full_set.mode())
            .name()
            .into(),
    })
}

pub(super) fn label(point: &LowRankPoint) -> String {
    let coords: Vec<String> = point
        .coords
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("lowrank {}", coords.join(" "))
        .trim_end()
        .to_string()
}
