//! Figure 7's outputs: results.csv and .parquet (every singular value, its
//! ratio to σ_1 and the cumulative energy), table.md and the spectra figure.

use std::path::Path;

use pathreg_core::linalg::{cumulative_energy, energy_rank};
use pathreg_report::{
    Column, Figure, LinePlot, Series, SeriesStyle, Table, markdown_table, write_atomic, write_csv,
    write_parquet,
};

use super::manifest::SpectrumExperiment;
use super::run::Spectrum;
use crate::PipelineError;
use crate::engine::hashing::HashInput;

/// `σ_i/σ_1` below this is not resolved by the Gram-matrix method (≈ √ε).
const RESOLVED: f64 = 1e-8;

/// What each dataset's spectrum contributes to the result hashes.
pub(super) fn hash_inputs(spectra: &[(String, Spectrum, bool)]) -> Vec<HashInput> {
    spectra
        .iter()
        .map(|(name, s, _)| HashInput {
            label: format!("spectrum {name}"),
            texts: vec![
                format!("{} {}", s.n, s.d),
                format!(
                    "{} {}",
                    energy_rank(&s.singular_values, 0.9),
                    energy_rank(&s.singular_values, 0.99)
                ),
            ],
            values: s.singular_values.clone(),
            headline: s.singular_values.first().copied().unwrap_or(0.0),
        })
        .collect()
}

/// run.json's details: per dataset its size, files, energy ranks and timings.
pub(super) fn details(spectra: &[(String, Spectrum, bool)]) -> serde_json::Value {
    let per_dataset: Vec<serde_json::Value> = spectra
        .iter()
        .map(|(name, s, cached)| {
            serde_json::json!({
                "dataset": name, "n": s.n, "d": s.d, "files": s.files, "cached": cached,
                "rank_90": energy_rank(&s.singular_values, 0.9),
                "rank_99": energy_rank(&s.singular_values, 0.99),
                "load_s": s.load_s, "spectrum_s": s.spectrum_s,
            })
        })
        .collect();
    serde_json::json!({ "datasets": per_dataset })
}

/// Writes every table and the figure into `dir`.
pub(super) fn write_outputs(
    dir: &Path,
    experiment: &SpectrumExperiment,
    spectra: &[(String, Spectrum, bool)],
) -> Result<(), PipelineError> {
    let mut names = Vec::new();
    let mut index = Vec::new();
    let mut sigma = Vec::new();
    let mut normalized = Vec::new();
    let mut energy = Vec::new();
    for (name, s, _) in spectra {
        let first = s.leading();
        let shares = cumulative_energy(&s.singular_values);
        for (i, (v, share)) in s.singular_values.iter().zip(shares).enumerate() {
            names.push(name.clone());
            index.push(i as i64 + 1);
            sigma.push(*v);
            normalized.push(v / first);
            energy.push(share);
        }
    }
    let mut table = Table::new();
    table.push_column("dataset", Column::Str(names))?;
    table.push_column("i", Column::I64(index))?;
    table.push_column("sigma", Column::F64(sigma))?;
    table.push_column("sigma_over_sigma1", Column::F64(normalized))?;
    table.push_column("cumulative_energy", Column::F64(energy))?;
    write_csv(&table, &dir.join("results.csv"))?;
    write_parquet(&table, &dir.join("results.parquet"))?;

    let mut md = format!("# {}\n\n", experiment.name);
    if !experiment.description.is_empty() {
        md.push_str(&format!("{}\n\n", experiment.description));
    }
    md.push_str(&format!(
        "Singular values of the training data matrix ({}), from the eigenvalues of the d × d Gram matrix XᵀX. \
         Energy is Σ σ_i²; rank_p is the smallest k with Σ_(i≤k) σ_i² ≥ p · Σ σ_i²; the numerical rank counts σ_i ≥ 1e-8 σ_1.\n\n",
        if experiment.spectrum.center { "columns centered" } else { "raw values, not centered" }
    ));
    let header = [
        "dataset",
        "n",
        "d",
        "σ_1",
        "σ_10 / σ_1",
        "σ_100 / σ_1",
        "rank_90",
        "rank_99",
        "numerical rank",
        "load (s)",
        "spectrum (s)",
    ];
    let ratio = |s: &Spectrum, i: usize| {
        s.singular_values.get(i - 1).map_or(String::from("—"), |v| {
            format!("{:.3e}", v / s.singular_values[0])
        })
    };
    let rows: Vec<Vec<String>> = spectra
        .iter()
        .map(|(name, s, _)| {
            vec![
                name.clone(),
                s.n.to_string(),
                s.d.to_string(),
                format!("{:.2}", s.singular_values.first().copied().unwrap_or(0.0)),
                ratio(s, 10),
                ratio(s, 100),
                energy_rank(&s.singular_values, 0.9).to_string(),
                energy_rank(&s.singular_values, 0.99).to_string(),
                s.singular_values
                    .iter()
                    .filter(|v| **v >= RESOLVED * s.singular_values[0])
                    .count()
                    .to_string(),
                format!("{:.2}", s.load_s),
                format!("{:.2}", s.spectrum_s),
            ]
        })
        .collect();
    md.push_str(&markdown_table(&header, &rows));
    md.push_str("\nTimes are from the run that computed each spectrum (cached runs reuse them).\n");
    write_atomic(&dir.join("table.md"), md.as_bytes())?;

    let mut plot = LinePlot::new(
        "Figure 7: normalized singular values of the training data",
        "index i",
        "σ_i / σ_1",
    );
    plot.log_y = true;
    for (name, s, _) in spectra {
        let first = s.leading();
        plot.series.push(Series::new(
            name.clone(),
            s.singular_values
                .iter()
                .enumerate()
                .map(|(i, v)| ((i + 1) as f64, v / first))
                .filter(|(_, r)| *r >= RESOLVED)
                .collect(),
            SeriesStyle::Line,
        ));
    }
    plot.caption = Some(
        "Exponentially decaying spectra: the data matrices are effectively low-rank (Appendix A.9), so Theorem 2's \
         approximation with small σ_(r+1) is cheap. Values below 1e-8 σ_1 are numerically zero for the Gram-matrix \
         method (e.g. MNIST's always-blank border pixels) and are not drawn."
            .into(),
    );
    plot.write_svg(&dir.join("fig7_spectra.svg"))?;
    plot.write_png(&dir.join("fig7_spectra.png"))?;
    Ok(())
}
