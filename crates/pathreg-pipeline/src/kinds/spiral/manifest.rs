//! `kind = "spiral"` manifests (Figure 1): the spiral, the three models'
//! sizes and β, and the plotting grid.

use serde::Deserialize;
use toml::Spanned;

use crate::PipelineError;
use crate::manifest::{ManifestFile, Validator};

/// The most spiral points, arrangement draws and grid points per side a
/// manifest may ask for: Figure 1 is a small problem solved exactly by an
/// interior-point method, and these keep every solve within minutes.
pub const MAX_POINTS: usize = 1000;
/// See [`MAX_POINTS`].
pub const MAX_DRAWS: usize = 5000;
/// See [`MAX_POINTS`].
pub const MAX_GRID: usize = 400;

/// A validated Figure 1 experiment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SpiralExperiment {
    /// Output folder name under `outputs/`.
    pub name: String,
    /// Free text shown in table.md.
    pub description: String,
    /// Master seed: the arrangement draws (and the spiral's noise).
    pub seed: u64,
    /// `[data]`.
    pub data: SpiralData,
    /// `[model]`.
    pub model: SpiralModel,
    /// `[plot]`.
    pub plot: SpiralPlot,
}

/// `[data]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SpiralData {
    /// Points, `n/2` per class.
    pub n: usize,
    /// Turns of each arm.
    pub turns: f64,
    /// Standard deviation of the Gaussian noise on each coordinate.
    pub noise: f64,
}

/// `[model]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SpiralModel {
    /// First hidden width of the three-layer models.
    pub m1: usize,
    /// Second hidden width.
    pub m2: usize,
    /// First-layer gate draws `P1`.
    pub p1: usize,
    /// Second-layer gate draws per first layer `P2`.
    pub p2: usize,
    /// Arrangements `P` of the two-layer model.
    pub two_layer_arrangements: usize,
    /// Regularization strength β of all three.
    pub beta: f64,
}

/// `[plot]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SpiralPlot {
    /// Grid points per side.
    pub grid: usize,
    /// The grid spans `[−extent, extent]²`.
    pub extent: f64,
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
    plot: Option<RawPlot>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    n: Spanned<usize>,
    turns: Spanned<f64>,
    noise: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    m1: Spanned<usize>,
    m2: Spanned<usize>,
    #[serde(rename = "P1")]
    p1: Spanned<usize>,
    #[serde(rename = "P2")]
    p2: Spanned<usize>,
    two_layer_arrangements: Spanned<usize>,
    beta: Spanned<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlot {
    grid: Option<Spanned<usize>>,
    extent: Option<Spanned<f64>>,
}

/// `value` as a count in `1..=max`.
fn bounded(
    v: &Validator<'_>,
    value: &Spanned<usize>,
    key: &str,
    max: usize,
) -> Result<usize, PipelineError> {
    let n = v.positive_usize(value, key)?;
    if n > max {
        return Err(v.error(value.span(), key, format!("at most {max}, got {n}")));
    }
    Ok(n)
}

/// Parses and validates a spiral manifest.
pub fn parse(file: &ManifestFile) -> Result<SpiralExperiment, PipelineError> {
    let raw: RawManifest = file.parse()?;
    let v = Validator::new(file);
    let n = bounded(&v, &raw.data.n, "data.n", MAX_POINTS)?;
    if n < 4 || !n.is_multiple_of(2) {
        return Err(v.error(
            raw.data.n.span(),
            "data.n",
            format!("must be even and at least 4 (two arms of n/2 points), got {n}"),
        ));
    }
    let turns = *raw.data.turns.get_ref();
    if !(turns.is_finite() && turns > 0.0 && turns <= 100.0) {
        return Err(v.error(
            raw.data.turns.span(),
            "data.turns",
            format!("must be in (0, 100], got {turns}"),
        ));
    }
    let noise = match &raw.data.noise {
        Some(s) if !(s.get_ref().is_finite() && *s.get_ref() >= 0.0) => {
            return Err(v.error(
                s.span(),
                "data.noise",
                format!("must be finite and ≥ 0, got {}", s.get_ref()),
            ));
        }
        Some(s) => *s.get_ref(),
        None => 0.0,
    };
    let m = &raw.model;
    let p1 = bounded(&v, &m.p1, "model.P1", MAX_DRAWS)?;
    let p2 = bounded(&v, &m.p2, "model.P2", MAX_DRAWS)?;
    if p1 * p2 > MAX_DRAWS {
        return Err(v.error(
            m.p2.span(),
            "model.P2",
            format!("P1·P2 = {} draws, more than {MAX_DRAWS}", p1 * p2),
        ));
    }
    let model = SpiralModel {
        m1: bounded(&v, &m.m1, "model.m1", 20)?,
        m2: bounded(&v, &m.m2, "model.m2", 1000)?,
        p1,
        p2,
        two_layer_arrangements: bounded(
            &v,
            &m.two_layer_arrangements,
            "model.two_layer_arrangements",
            MAX_DRAWS,
        )?,
        beta: v.positive_f64(&m.beta, "model.beta")?,
    };
    let plot = match &raw.plot {
        Some(p) => SpiralPlot {
            grid: match &p.grid {
                Some(g) => {
                    let grid = bounded(&v, g, "plot.grid", MAX_GRID)?;
                    if grid < 2 {
                        return Err(v.error(g.span(), "plot.grid", "must be at least 2"));
                    }
                    grid
                }
                None => 100,
            },
            extent: match &p.extent {
                Some(e) => v.positive_f64(e, "plot.extent")?,
                None => 1.25,
            },
        },
        None => SpiralPlot {
            grid: 100,
            extent: 1.25,
        },
    };
    Ok(SpiralExperiment {
        name: v.name(&raw.name)?,
        description: raw.description,
        seed: raw.seed,
        data: SpiralData { n, turns, noise },
        model,
        plot,
    })
}
