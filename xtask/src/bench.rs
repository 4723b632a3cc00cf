//! `cargo xtask bench`: medians of the Table 2 stages on this machine, then
//! (when the UCI files can be loaded: fetched, or `PATHREG_MIRROR`) one epoch
//! of each Table 3 trainer on musk-1 and the solver comparison for (11); the
//! constrained program (21) by ADMM against Clarabel on parkinsons and on
//! four datasets of growing `d`, and one
//! polished (21) solve on musk-1 at Table 3's size, in float64 and with
//! float32 products; then (when Fashion-MNIST can be loaded) Figure 5's
//! float32 epochs against PyTorch (`--only tables`, `--only constrained` or
//! `--only images` picks parts).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use pathreg_core::unconstrained::{self, SampledArrangements};
use pathreg_core::{Loss, ParallelNetwork, Regularizer};
use pathreg_data::Dataset;
use pathreg_data::registry::{DataConfig, load};
use pathreg_data::split::Split;
use pathreg_pipeline::Limits;
use pathreg_pipeline::kinds::table2;
use pathreg_pipeline::manifest::ManifestFile;
use pathreg_pipeline::manifest::sections::DataSpec;
use pathreg_pipeline::stages;
use pathreg_pipeline::{RunOptions, run_manifest};
use pathreg_report::Figure;
use pathreg_solvers::{
    ConvexMethod, ConvexTrainSettings, Optimizer, TrainSettings, train, train_convex,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

mod images;

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Repetitions per measurement.
    #[arg(long, default_value_t = 7)]
    repeat: usize,
    /// Run only these sections (default: all).
    #[arg(long, value_enum)]
    only: Vec<Section>,
}

/// The benchmark's sections.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Section {
    /// Table 2's stages and manifest, and Table 3's epochs and solvers for (11).
    Tables,
    /// The constrained program (21) by ADMM: against Clarabel on parkinsons
    /// and by size (`d` from 22 to 166), on musk-1 against (11)+SGD's
    /// epochs, float64 against float32 products (about 45 minutes on 2
    /// cores, 20 of them Clarabel on musk-1).
    Constrained,
    /// Figure 5's epochs against PyTorch.
    Images,
}

/// Runs `cargo xtask bench`.
pub fn run(args: BenchArgs, root: &Path) -> Result<ExitCode> {
    let repeat = args.repeat.max(1);
    let wanted = |s: Section| args.only.is_empty() || args.only.contains(&s);
    if wanted(Section::Tables) {
        measure(root, repeat)?;
    }
    if wanted(Section::Constrained) {
        match (uci("parkinsons"), uci("musk-1")) {
            (Ok(parkinsons), Ok(musk)) => {
                constrained(root, &parkinsons, repeat)?;
                constrained_by_size(&SIZES)?;
                let arrangements = SampledArrangements::sample(
                    &mut ChaCha8Rng::seed_from_u64(1),
                    K,
                    musk.x.ncols(),
                    M1,
                )?;
                let sgd_epoch =
                    convex_epoch(&musk, &arrangements, ConvexMethod::sgd(1e-7), repeat)?;
                constrained_musk(root, &musk, sgd_epoch)?;
            }
            (Err(e), _) | (_, Err(e)) => println!("skipping the (21) benchmarks: {e}"),
        }
    }
    if wanted(Section::Images) {
        match images::measure(root, repeat) {
            Err(e) if format!("{e:#}").contains("loading fashion-mnist") => {
                println!("skipping the Figure 5 benchmarks: {e:#}");
            }
            other => other?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every measurement, each repeated `repeat` (≥ 1) times or fewer.
fn measure(root: &Path, repeat: usize) -> Result<()> {
    let manifest_path = root.join("experiments/table2.toml");
    let experiment =
        table2::manifest::parse(&ManifestFile::read(&manifest_path)?, Limits::Enforced)?;
    let DataSpec::Teacher(teacher) = &experiment.data else {
        anyhow::bail!("the benchmark expects table2.toml to use teacher data");
    };
    let (n, d) = (teacher.n, teacher.d);
    let data = stages::data::teacher(teacher, stages::data::data_seed(experiment.seed, None))?;
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
    match (uci("musk-1"), uci("ionosphere")) {
        (Ok(musk), Ok(ionosphere)) => {
            epochs(&musk, repeat)?;
            solvers(&ionosphere)
        }
        (Err(e), _) | (_, Err(e)) => {
            println!("skipping the Table 3 benchmarks: {e}");
            Ok(())
        }
    }
}

/// The training rows of `uci:<name>` (Table 3's first split).
fn uci(name: &str) -> Result<Dataset> {
    let mut config = DataConfig::from_env();
    config.split = Some(Split::paper(0));
    Ok(load(&format!("uci:{name}"), &config)?.train)
}

/// Table 3's model: `(K, m1, m2, β) = (40, 100, 1, 0.5)`, squared loss.
const K: usize = 40;
const M1: usize = 100;

/// Epochs (batch 32) of each trainer on musk-1, fixed costs excluded
/// ([`epoch_seconds`]).
fn epochs(data: &Dataset, repeat: usize) -> Result<()> {
    let (x, y) = (data.x.view(), data.y.view());
    println!(
        "Table 3 epochs on musk-1 (n = {}, d = {}, K = {K}, m1 = {M1}, batch 32), fixed costs excluded:",
        x.nrows(),
        x.ncols()
    );
    let arrangements =
        SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(1), K, x.ncols(), M1)?;
    let masks = median(repeat, || arrangements.masks(x).map(|_| ()))?;
    println!("  masks of the training rows (once per run): median {masks:.4} s");
    for method in [ConvexMethod::sgd(1e-7), ConvexMethod::adam(1e-5)] {
        let epoch = convex_epoch(data, &arrangements, method, repeat)?;
        println!(
            "  convex (11), {}: median {epoch:.4} s per epoch",
            method.name()
        );
    }
    for optimizer in [
        Optimizer::Sgd {
            lr: 1e-5,
            momentum: 0.9,
        },
        Optimizer::adam(1e-3),
    ] {
        let epoch = epoch_seconds(repeat, &mut |epochs| {
            let settings = TrainSettings {
                optimizer,
                epochs,
                batch_size: 32,
                loss: Loss::Squared,
                beta: 0.5,
                regularizer: Regularizer::Path,
                record_every: epochs,
                stop_at_full_accuracy: false,
            };
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let network = ParallelNetwork::lecun_normal(&mut rng, K, x.ncols(), M1, 1)?;
            train(x, y, network, &settings, &mut rng)?;
            Ok(())
        })?;
        println!(
            "  non-convex, {}: median {epoch:.4} s per epoch",
            optimizer.name()
        );
    }
    Ok(())
}

/// One epoch (batch 32) of (11) by `method` on `data` over `arrangements`.
fn convex_epoch(
    data: &Dataset,
    arrangements: &SampledArrangements,
    method: ConvexMethod,
    repeat: usize,
) -> Result<f64> {
    let (x, y) = (data.x.view(), data.y.view());
    epoch_seconds(repeat, &mut |epochs| {
        let settings = ConvexTrainSettings::table3(method, epochs);
        train_convex(
            x,
            y,
            arrangements,
            &settings,
            &mut ChaCha8Rng::seed_from_u64(2),
        )?;
        Ok(())
    })
}

/// The seconds of one epoch of `run(epochs)`: the median over `repeat` of a
/// 6-epoch run minus a 1-epoch run, over 5, so the fixed costs (masks,
/// initial and final evaluations) cancel.
fn epoch_seconds(repeat: usize, run: &mut dyn FnMut(usize) -> Result<()>) -> Result<f64> {
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let start = Instant::now();
        run(1)?;
        let one = start.elapsed().as_secs_f64();
        let start = Instant::now();
        run(6)?;
        times.push((start.elapsed().as_secs_f64() - one) / 5.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Objective (11) reached by SGD, Adam and FISTA in 64 epochs (iterations) on
/// ionosphere, with the optimizer time, from the same arrangements.
fn solvers(data: &Dataset) -> Result<()> {
    let (x, y) = (data.x.view(), data.y.view());
    let epochs = 64;
    println!(
        "solvers for (11) on ionosphere (n = {}, d = {}), {epochs} epochs each:",
        x.nrows(),
        x.ncols()
    );
    let arrangements =
        SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(11), K, x.ncols(), M1)?;
    let unit = unconstrained::operator_norm_squared(x, &arrangements.masks(x)?, 10)?;
    let mut methods = Vec::new();
    for c in [0.01, 0.03, 0.1] {
        methods.push((format!("SGD lr {c}/‖X̃‖²"), ConvexMethod::sgd(c / unit)));
    }
    for lr in [1e-5, 3e-5, 1e-4] {
        methods.push((format!("Adam lr {lr:e}"), ConvexMethod::adam(lr)));
    }
    for mu in [1e-3, 1e-2, 1e-1] {
        methods.push((
            format!("FISTA μ = {mu:e}"),
            ConvexMethod::Fista { smoothing: mu },
        ));
    }
    for (label, method) in methods {
        let mut settings = ConvexTrainSettings::table3(method, epochs);
        settings.record_every = 16;
        let run = train_convex(
            x,
            y,
            &arrangements,
            &settings,
            &mut ChaCha8Rng::seed_from_u64(12),
        )?;
        let curve: Vec<String> = run
            .curve
            .iter()
            .map(|p| format!("{:.3}@{:.2}s", p.objective, p.time_s))
            .collect();
        println!(
            "  {label:22} final {:9.3} (h = {:.2e}), train acc {:.3}, {:.2} s; curve {}",
            run.final_objective.objective,
            run.final_objective.violation,
            run.train_accuracy,
            run.time_s,
            curve.join(" ")
        );
    }
    Ok(())
}

/// Program (21) over K = 8 sampled arrangements (m1 = 10, β = 0.5) on
/// parkinsons: ADMM to the default tolerances (violation 1e-6, certified gap
/// 1e-4), with and without the Newton polish, against Clarabel on the same
/// triples, medians side by side, and
/// ADMM's gap and violation against time as a plot under `target/bench/`.
fn constrained(root: &Path, data: &Dataset, repeat: usize) -> Result<()> {
    let (x, y) = (data.x.view(), data.y.view());
    let (k, m1, beta) = (8, 10, 0.5);
    let arrangements =
        SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(4), k, x.ncols(), m1)?;
    let runs = repeat.min(3);
    let settings = pathreg_solvers::AdmmSettings::default();
    // The median time of `runs` solves with `settings`, and the last solve.
    let timed =
        |settings: &pathreg_solvers::AdmmSettings| -> Result<(f64, pathreg_solvers::AdmmSolve)> {
            let mut last = None;
            let seconds = median(runs, || {
                last = Some(pathreg_solvers::solve_admm(
                    x,
                    y,
                    &arrangements,
                    beta,
                    1,
                    settings,
                    None,
                )?);
                Ok::<(), pathreg_solvers::SolverError>(())
            })?;
            Ok((seconds, last.context("no ADMM run")?))
        };
    let (admm, solve) = timed(&settings)?;
    // The same solve with the Newton polish from 100 iterations on.
    let (polished_time, polished) = timed(&pathreg_solvers::AdmmSettings {
        polish_from: 100,
        ..settings
    })?;
    let (clarabel, conic) = clarabel_on(data, &arrangements, beta, runs)?;
    println!(
        "constrained program (21) on parkinsons (n = {}, d = {}, K = {k}, m1 = {m1}, β = {beta}), medians over {runs}:",
        x.nrows(),
        x.ncols()
    );
    println!(
        "  ADMM {admm:.2} s ({} iterations, gap {:.1e}, violation {:.1e}, objective {:.6}); Clarabel {clarabel:.2} s ({}, objective {:.6}); Clarabel/ADMM time {:.2}, objectives differ by {:.1e} (relative)",
        solve.last.iteration,
        solve.last.relative_gap,
        solve.last.violation,
        solve.last.objective,
        conic.status,
        conic.primal_objective,
        clarabel / admm,
        (solve.last.objective - conic.primal_objective).abs() / conic.primal_objective.abs(),
    );
    println!(
        "  ADMM with the Newton polish (polish_from = 100) {polished_time:.2} s ({} iterations, gap {:.1e}, violation {:.1e}, objective {:.8}): Clarabel/polished time {:.2}, ADMM/polished time {:.2}, objectives differ by {:.1e} (relative)",
        polished.last.iteration,
        polished.last.relative_gap,
        polished.last.violation,
        polished.last.objective,
        clarabel / polished_time,
        admm / polished_time,
        (polished.last.objective - conic.primal_objective).abs() / conic.primal_objective.abs(),
    );
    let mut plot = pathreg_report::LinePlot::new(
        "ADMM on (21), parkinsons, K = 8, m1 = 10, with and without the polish",
        "seconds",
        "relative value",
    );
    plot.log_y = true;
    plot.series.extend(gap_and_violation(&solve.history));
    plot.series.push(pathreg_report::Series::new(
        "certified relative duality gap, with the Newton polish",
        polished
            .history
            .iter()
            .map(|p| (p.time_s, p.relative_gap))
            .collect(),
        pathreg_report::SeriesStyle::Line,
    ));
    plot.caption = Some(format!(
        "One ADMM run to gap ≤ {:e} and violation ≤ {:e}, and one with the Newton polish (polish_from = 100); Clarabel on the same triples took {clarabel:.2} s (median). Violations of exactly 0 are not drawn.",
        settings.tol_gap, settings.tol_violation
    ));
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    plot.write_svg(&dir.join("admm_convergence.svg"))?;
    plot.write_png(&dir.join("admm_convergence.png"))?;
    println!(
        "  convergence plot: {}",
        dir.join("admm_convergence.svg").display()
    );
    // Agreement: the same solve to a certified gap of 1e-5.
    let tight = pathreg_solvers::AdmmSettings {
        tol_gap: 1e-5,
        max_iterations: 60_000,
        ..settings
    };
    let started = Instant::now();
    let solve = pathreg_solvers::solve_admm(x, y, &arrangements, beta, 1, &tight, None)?;
    println!(
        "  ADMM to gap 1e-5 (one run): {:.2} s, {} iterations, converged {}; objective {:.8} against Clarabel's {:.8}: {:.1e} relative",
        started.elapsed().as_secs_f64(),
        solve.last.iteration,
        solve.converged,
        solve.last.objective,
        conic.primal_objective,
        (solve.last.objective - conic.primal_objective).abs() / conic.primal_objective.abs(),
    );
    Ok(())
}

/// Clarabel on (21) over `arrangements` of `data`: its median time over
/// `runs` solves and the last solve.
fn clarabel_on(
    data: &Dataset,
    arrangements: &SampledArrangements,
    beta: f64,
    runs: usize,
) -> Result<(f64, pathreg_solvers::ConicSolve)> {
    let (x, y) = (data.x.view(), data.y.view());
    let triples = arrangements.triples(x)?;
    let geometries: Vec<pathreg_core::convex::TripleGeometry> = triples
        .iter()
        .map(|t| pathreg_core::convex::TripleGeometry::new(x, t))
        .collect();
    let refs: Vec<&pathreg_core::convex::TripleGeometry> = geometries.iter().collect();
    let settings = pathreg_solvers::ConicSettings {
        scaling: pathreg_solvers::Scaling::to_unit(x, y),
        ..pathreg_solvers::ConicSettings::default()
    };
    let mut conic = None;
    let seconds = median(runs, || {
        conic = Some(pathreg_solvers::solve_conic(
            x, y, &triples, &refs, beta, 1, &settings,
        )?);
        Ok::<(), pathreg_solvers::SolverError>(())
    })?;
    Ok((seconds, conic.context("no Clarabel run")?))
}

/// The datasets of [`constrained_by_size`], by `d`: 22, 33, 60 and 166.
const SIZES: [&str; 4] = [
    "parkinsons",
    "ionosphere",
    "conn-bench-sonar-mines-rocks",
    "musk-1",
];

/// Polished ADMM (`polish_from = 100`) against Clarabel on (21) with
/// parkinsons' model (K = 8, m1 = 10, β = 0.5, seed-4 arrangements) over
/// datasets of growing `d`, one run each: Clarabel's interior-point cost
/// grows with the `d·m1` variables per block far faster than ADMM's
/// products, so this is where issue #15's "10× Clarabel at the largest
/// size it manages" is decided.
fn constrained_by_size(names: &[&str]) -> Result<()> {
    let (k, m1, beta) = (8, 10, 0.5);
    println!(
        "(21) with K = {k}, m1 = {m1}, β = {beta} by size, one run each: polished ADMM (polish_from = 100, default tolerances, cap 20 000) against Clarabel"
    );
    for name in names {
        let data = uci(name)?;
        let (x, y) = (data.x.view(), data.y.view());
        let arrangements =
            SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(4), k, x.ncols(), m1)?;
        let settings = pathreg_solvers::AdmmSettings {
            polish_from: 100,
            ..pathreg_solvers::AdmmSettings::default()
        };
        let started = Instant::now();
        let admm = pathreg_solvers::solve_admm(x, y, &arrangements, beta, 1, &settings, None)?;
        let admm_seconds = started.elapsed().as_secs_f64();
        let (clarabel, conic) = clarabel_on(&data, &arrangements, beta, 1)?;
        println!(
            "  {name} (n = {}, d = {}): ADMM {admm_seconds:.2} s ({} iterations, converged {}, gap {:.1e}, violation {:.1e}); Clarabel {clarabel:.2} s ({}); Clarabel/ADMM time {:.1}, objectives differ by {:.1e} (relative)",
            x.nrows(),
            x.ncols(),
            admm.last.iteration,
            admm.converged,
            admm.last.relative_gap,
            admm.last.violation,
            conic.status,
            clarabel / admm_seconds,
            (admm.last.objective - conic.primal_objective).abs() / conic.primal_objective.abs(),
        );
    }
    Ok(())
}

/// (21) on musk-1 at Table 3's size (K = 40, m1 = 100: 8 000 columns), as
/// `experiments/table3_constrained.toml` solves it (the Newton polish from
/// 100 iterations, a cap of 3 000), once in float64 and once with float32
/// products: each one's time to the default tolerances against twice
/// (11)+SGD's 100-epoch cap at `sgd_epoch` seconds per epoch (issue #15's
/// budget), their ratio, and gap and violation against time as a plot.
fn constrained_musk(root: &Path, data: &Dataset, sgd_epoch: f64) -> Result<()> {
    use pathreg_solvers::Precision;
    let (x, y) = (data.x.view(), data.y.view());
    let arrangements =
        SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(4), K, x.ncols(), M1)?;
    let budget = 2.0 * 100.0 * sgd_epoch;
    println!(
        "(21) on musk-1 (n = {}, d = {}, K = {K}, m1 = {M1}), polished from 100 iterations, one run each; twice (11)+SGD's 100 epochs: {budget:.1} s",
        x.nrows(),
        x.ncols(),
    );
    let mut plot = pathreg_report::LinePlot::new(
        "ADMM with the Newton polish on (21), musk-1, K = 40, m1 = 100",
        "seconds",
        "relative value",
    );
    plot.log_y = true;
    let mut seconds_by_precision = Vec::new();
    for precision in [Precision::Float64, Precision::Float32] {
        let settings = pathreg_solvers::AdmmSettings {
            max_iterations: 3000,
            polish_from: 100,
            precision,
            ..pathreg_solvers::AdmmSettings::default()
        };
        let started = Instant::now();
        let solve = pathreg_solvers::solve_admm(x, y, &arrangements, 0.5, 1, &settings, None)?;
        let seconds = started.elapsed().as_secs_f64();
        let name = match precision {
            Precision::Float64 => "float64",
            Precision::Float32 => "float32 products",
        };
        println!(
            "  {name}: {seconds:.1} s, {} iterations ({} with float32 products), converged {}, objective {:.7}, gap {:.1e}, violation {:.1e}, {}/{} groups active; time/budget {:.2}",
            solve.last.iteration,
            solve.float32_iterations,
            solve.converged,
            solve.last.objective,
            solve.last.relative_gap,
            solve.last.violation,
            solve.variables.active_groups(),
            2 * K,
            seconds / budget,
        );
        for mut series in gap_and_violation(&solve.history) {
            series.name = format!("{}, {name}", series.name);
            series.dashed = precision == Precision::Float32;
            plot.series.push(series);
        }
        seconds_by_precision.push(seconds);
    }
    println!(
        "  float64/float32 time: {:.2}",
        seconds_by_precision[0] / seconds_by_precision[1]
    );
    plot.caption = Some(format!(
        "One solve each to gap ≤ 1e-4 and violation ≤ 1e-6 (cap 3 000 iterations); twice (11)+SGD's 100 epochs on the same machine: {budget:.1} s. Checks are every 10 iterations; a long straight segment is one polish (at 100, 200, 400, … iterations). Violations of exactly 0 are not drawn."
    ));
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    plot.write_svg(&dir.join("admm_musk.svg"))?;
    plot.write_png(&dir.join("admm_musk.png"))?;
    println!(
        "  convergence plot: {}",
        dir.join("admm_musk.svg").display()
    );
    Ok(())
}

/// An ADMM run's certified gap and violation against time, as plot series.
fn gap_and_violation(history: &[pathreg_solvers::AdmmPoint]) -> Vec<pathreg_report::Series> {
    let series = |name: &str, pick: fn(&pathreg_solvers::AdmmPoint) -> f64| {
        pathreg_report::Series::new(
            name,
            history.iter().map(|p| (p.time_s, pick(p))).collect(),
            pathreg_report::SeriesStyle::Line,
        )
    };
    vec![
        series("certified relative duality gap", |p| p.relative_gap),
        series("relative violation h/Σ‖Z‖ (after restoration)", |p| {
            p.violation
        }),
    ]
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
