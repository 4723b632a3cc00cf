//! `[sweep]`: every key's list is an axis of a cartesian product (last axis
//! fastest), except keys grouped by `zip = [["a", "b"], …]`, whose lists (of
//! equal length) advance together as one axis. Each kind says which keys it
//! sweeps and applies the values to its own cell type.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::budget::{Limits, MAX_CELLS};
use super::toolkit::Validator;

/// The most points a sweep expands to even with `--override-limits`.
pub const MAX_SWEEP_POINTS: u64 = 10_000_000;
use crate::PipelineError;

/// A swept value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum SweepValue {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A name (such as an optimizer).
    Text(String),
}

impl std::fmt::Display for SweepValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SweepValue::Int(v) => write!(f, "{v}"),
            SweepValue::Float(v) => write!(f, "{v}"),
            SweepValue::Text(v) => write!(f, "{v}"),
        }
    }
}

impl SweepValue {
    /// The value as a float (`NaN` for a name).
    pub fn as_f64(&self) -> f64 {
        match self {
            SweepValue::Int(i) => *i as f64,
            SweepValue::Float(f) => *f,
            SweepValue::Text(_) => f64::NAN,
        }
    }

    /// The value as a name.
    pub fn text(&self, err: &dyn Fn(String) -> PipelineError) -> Result<&str, PipelineError> {
        match self {
            SweepValue::Text(t) => Ok(t),
            other => Err(err(format!("every value must be a string, got {other}"))),
        }
    }

    /// The value as a count ≥ 1.
    pub fn count(&self, err: &dyn Fn(String) -> PipelineError) -> Result<usize, PipelineError> {
        match self {
            SweepValue::Int(i) if *i >= 1 => {
                usize::try_from(*i).map_err(|_| err(format!("{i} is too large")))
            }
            other => Err(err(format!(
                "every value must be an integer ≥ 1, got {other}"
            ))),
        }
    }

    /// The value as a positive finite float.
    pub fn positive(&self, err: &dyn Fn(String) -> PipelineError) -> Result<f64, PipelineError> {
        let v = self.as_f64();
        if v.is_nan() || v <= 0.0 || !v.is_finite() {
            return Err(err(format!(
                "every value must be a positive finite number, got {v}"
            )));
        }
        Ok(v)
    }

    /// The value as an integer (a replicate tag).
    pub fn integer(&self, err: &dyn Fn(String) -> PipelineError) -> Result<i64, PipelineError> {
        match self {
            SweepValue::Int(i) => Ok(*i),
            other => Err(err(format!("every value must be an integer, got {other}"))),
        }
    }
}

/// A cell's `(key, value)` for every swept key, in manifest order of the keys.
pub type Coords = Vec<(String, SweepValue)>;

/// One swept key's value in one cell.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// The key as written under `[sweep]`, e.g. `model.beta`.
    pub key: String,
    /// Its value in this cell.
    pub value: SweepValue,
    span: Range<usize>,
}

impl Assignment {
    /// An error about this assignment, at its list, keyed `sweep.<key>`.
    pub fn error(&self, v: &Validator<'_>, reason: String) -> PipelineError {
        v.error(self.span.clone(), &format!("sweep.{}", self.key), reason)
    }
}

/// The expanded sweep.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The swept keys, in manifest order.
    pub keys: Vec<String>,
    /// Every cell's assignments (one per key), in axis order; cells in
    /// product order (last axis fastest). One empty cell when nothing is swept.
    pub cells: Vec<Vec<Assignment>>,
}

impl Sweep {
    /// Expands `raw` (the `[sweep]` table) whose keys must be among `sweepable`.
    /// The product of the lists is bounded before anything is expanded.
    pub fn expand(
        raw: &BTreeMap<String, Spanned<toml::Value>>,
        sweepable: &[&str],
        v: &Validator<'_>,
        limits: Limits,
    ) -> Result<Self, PipelineError> {
        // Axes in manifest order (the BTreeMap is sorted by key; spans give the order).
        let mut entries: Vec<(&String, &Spanned<toml::Value>)> =
            raw.iter().filter(|(k, _)| *k != "zip").collect();
        entries.sort_by_key(|(_, value)| value.span().start);
        let mut lists: Vec<(String, Range<usize>, Vec<SweepValue>)> = Vec::new();
        for (key, value) in entries {
            let full_key = format!("sweep.{key}");
            if !sweepable.contains(&key.as_str()) {
                return Err(v.error(
                    value.span(),
                    &full_key,
                    format!("cannot be swept; sweepable keys: {sweepable:?}"),
                ));
            }
            let Some(array) = value.get_ref().as_array() else {
                return Err(v.error(value.span(), &full_key, "must be a list of values"));
            };
            if array.is_empty() {
                return Err(v.error(value.span(), &full_key, "must list at least one value"));
            }
            let values = array
                .iter()
                .map(|item| match item {
                    toml::Value::Integer(i) => Ok(SweepValue::Int(*i)),
                    toml::Value::Float(f) => Ok(SweepValue::Float(*f)),
                    toml::Value::String(t) => Ok(SweepValue::Text(t.clone())),
                    other => Err(v.error(
                        value.span(),
                        &full_key,
                        format!("{other} is not a number or a string"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            lists.push((key.clone(), value.span(), values));
        }
        let mut axes = zip_groups(raw.get("zip"), &lists, v)?;
        axes.sort_by_key(|axis| axis.iter().map(|&i| lists[i].1.start).min().unwrap_or(0));
        let product = axes
            .iter()
            .try_fold(1usize, |acc, axis| acc.checked_mul(lists[axis[0]].2.len()));
        let limit = match limits {
            Limits::Enforced => MAX_CELLS,
            Limits::Overridden => MAX_SWEEP_POINTS,
        };
        if product.is_none_or(|p| p as u64 > limit) {
            let span = lists.first().map_or(0..0, |l| l.1.clone());
            let count = product.map_or_else(|| "more than 2^64".to_string(), |p| p.to_string());
            let advice = match limits {
                Limits::Enforced => "; pass --override-limits to run it anyway",
                Limits::Overridden => "",
            };
            return Err(v.error(
                span,
                "sweep",
                format!("the sweep has {count} points, over the limit of {limit}{advice}"),
            ));
        }
        let mut cells: Vec<Vec<Assignment>> = vec![Vec::new()];
        for axis in &axes {
            let len = lists[axis[0]].2.len();
            let mut next = Vec::with_capacity(cells.len() * len);
            for cell in &cells {
                for step in 0..len {
                    let mut extended = cell.clone();
                    extended.extend(axis.iter().map(|&i| Assignment {
                        key: lists[i].0.clone(),
                        value: lists[i].2[step].clone(),
                        span: lists[i].1.clone(),
                    }));
                    next.push(extended);
                }
            }
            cells = next;
        }
        let mut order: Vec<usize> = (0..lists.len()).collect();
        order.sort_by_key(|&i| lists[i].1.start);
        Ok(Self {
            keys: order.iter().map(|&i| lists[i].0.clone()).collect(),
            cells,
        })
    }

    /// Every cell as a copy of `base` with the cell's values applied by
    /// `apply`, and the cell's coordinates in manifest order of the keys.
    pub fn points<P: Clone>(
        &self,
        base: &P,
        mut apply: impl FnMut(&mut P, &Assignment) -> Result<(), PipelineError>,
    ) -> Result<Vec<(P, Coords)>, PipelineError> {
        self.cells
            .iter()
            .map(|cell| {
                let mut point = base.clone();
                for assignment in cell {
                    apply(&mut point, assignment)?;
                }
                Ok((point, self.coords(cell)))
            })
            .collect()
    }

    /// Whether `key` is swept.
    pub fn has(&self, key: &str) -> bool {
        self.keys.iter().any(|k| k == key)
    }

    /// A cell's `(key, value)` coordinates, in manifest order of the keys.
    fn coords(&self, cell: &[Assignment]) -> Coords {
        let mut coords: Coords = cell
            .iter()
            .map(|a| (a.key.clone(), a.value.clone()))
            .collect();
        coords.sort_by_key(|(k, _)| self.keys.iter().position(|x| x == k));
        coords
    }
}

/// The axes: each zip group is one axis, every other list its own; indices
/// into `lists`.
fn zip_groups(
    zip: Option<&Spanned<toml::Value>>,
    lists: &[(String, Range<usize>, Vec<SweepValue>)],
    v: &Validator<'_>,
) -> Result<Vec<Vec<usize>>, PipelineError> {
    let mut axes: Vec<Vec<usize>> = Vec::new();
    let mut zipped = vec![false; lists.len()];
    if let Some(zip) = zip {
        let bad = || {
            v.error(
                zip.span(),
                "sweep.zip",
                "must be a list of lists of swept keys, e.g. [[\"model.beta\", \"nonconvex.lr\"]]",
            )
        };
        let groups = zip.get_ref().as_array().ok_or_else(bad)?;
        for group in groups {
            let names = group.as_array().ok_or_else(bad)?;
            let mut axis = Vec::new();
            for name in names {
                let name = name.as_str().ok_or_else(bad)?;
                let Some(i) = lists.iter().position(|(k, _, _)| k == name) else {
                    return Err(v.error(
                        zip.span(),
                        "sweep.zip",
                        format!("{name:?} is not a swept key"),
                    ));
                };
                if zipped[i] {
                    return Err(v.error(
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
                    return Err(v.error(
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
    Ok(axes)
}
