//! `cargo xtask bench`: medians of the Table 2 stages on this machine.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use pathreg_pipeline::manifest::{self, DataSpec};
use pathreg_pipeline::seeds::derive_seed;
use pathreg_pipeline::{RunOptions, run_manifest};

pub fn run(root: &Path, repeat: usize) -> Result<()> {
    let manifest_path = root.join("experiments/table2.toml");
    let (experiment, _) = manifest::load(&manifest_path)?;
    let DataSpec::Teacher {
        n,
        d,
        teacher,
        noise,
        rank_fraction: None,
    } = experiment.data
    else {
        anyhow::bail!("the benchmark expects table2.toml to use teacher data");
    };
    let (data, _) = pathreg_data::synthetic::teacher_data(
        n,
        d,
        teacher,
        noise,
        derive_seed(experiment.seed, &["data"]),
    )?;
    let m1 = experiment.model.m1;
    let enumerate = median(repeat, || {
        let set = pathreg_core::ArrangementSet::enumerate_exact(data.x.view(), m1);
        std::hint::black_box(set).map(|_| ())
    })?;
    println!(
        "exact enumeration (n = {n}, d = {d}, m1 = {m1}): median {:.4} s over {repeat}",
        enumerate
    );
    let set = pathreg_core::ArrangementSet::enumerate_exact(data.x.view(), m1)?;
    let settings = pathreg_solvers::WorkingSetSettings::default();
    let solve = median(repeat, || {
        pathreg_solvers::solve_certified(
            data.x.view(),
            data.y.view(),
            &set,
            experiment.model.beta,
            experiment.model.m2,
            &settings,
        )
        .map(|_| ())
    })?;
    println!(
        "certified convex solve over {} triples: median {:.4} s over {repeat}",
        set.len(),
        solve
    );
    let outputs = tempfile::tempdir().context("temporary output folder")?;
    let cache = tempfile::tempdir().context("temporary cache folder")?;
    let options = |cache_root: Option<std::path::PathBuf>| RunOptions {
        outputs_root: outputs.path().to_path_buf(),
        workspace_root: root.to_path_buf(),
        cache_root,
        progress: Box::new(|_| {}),
    };
    let runs = repeat.min(3);
    let cold = median(runs, || {
        run_manifest(&manifest_path, &options(None)).map(|_| ())
    })?;
    println!(
        "whole table2 manifest, cold (no cache): median {cold:.3} s over {runs} ({} threads)",
        rayon::current_num_threads()
    );
    run_manifest(&manifest_path, &options(Some(cache.path().to_path_buf())))?;
    let warm = median(repeat, || {
        run_manifest(&manifest_path, &options(Some(cache.path().to_path_buf()))).map(|_| ())
    })?;
    println!(
        "whole table2 manifest, warm (all cached): median {warm:.3} s over {repeat} ({:.1} % of cold)",
        100.0 * warm / cold
    );
    Ok(())
}

fn median<E: std::error::Error + Send + Sync + 'static>(
    repeat: usize,
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<f64> {
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
