//! Figure 5's epochs at Fashion-MNIST shape (n = 60 000, d = 784, K = 40,
//! m1 = 100, C = 10, batch 1000, float32): the non-convex network and the
//! convex program (11) with SGD, the GEMM rate of their products, and the
//! same epochs in PyTorch (`benches/pytorch_epochs.py fig5`) side by side.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ndarray::Array2;
use pathreg_core::multiclass::{
    ConvexModel, Grouping, ImageSet, Model, NetworkModel, NetworkShape,
};
use pathreg_core::unconstrained::SampledArrangements;
use pathreg_core::{Regularizer, gemm};
use pathreg_data::registry::{DataConfig, load};
use pathreg_data::split::Split;
use pathreg_solvers::Optimizer;
use pathreg_solvers::multiclass::{ImageTrainSettings, Prepared, train_images};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const K: usize = 40;
const M1: usize = 100;
const CLASSES: usize = 10;
const BATCH: usize = 1000;

/// Our epochs, then PyTorch's when `python3` has torch, and their ratios.
pub fn measure(root: &Path, repeat: usize) -> Result<()> {
    let (train, test) = fashion_mnist()?;
    let (n, d) = (train.n(), train.d());
    println!(
        "Figure 5 epochs on Fashion-MNIST (n = {n}, d = {d}, K = {K}, m1 = {M1}, C = {CLASSES}, batch {BATCH}, float32, SGD momentum 0.9), training time only:"
    );
    let threads = rayon::current_num_threads();
    let products = gemm_rates(&train, repeat)?;
    let shape = NetworkShape {
        d,
        k: K,
        m1: M1,
        m2: 1,
        classes: CLASSES,
    };
    let network = NetworkModel::new(shape, Regularizer::Path, 1e-3)?;
    let init = network.pytorch_uniform(&mut ChaCha8Rng::seed_from_u64(1));
    let mut nonconvex = Vec::new();
    for t in [1, threads] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(t).build()?;
        let epoch = pool.install(|| {
            median_of(repeat.min(3), || {
                epoch_time(&network, init.clone(), &train, &test, (&(), &()), 1e-3)
            })
        })?;
        println!(
            "  non-convex SGD, {t} thread(s): median {epoch:.2} s per epoch over {}",
            repeat.min(3)
        );
        nonconvex.push((t, epoch));
    }
    let arrangements = SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(2), K, d, M1)?;
    let convex = ConvexModel::new(&arrangements, CLASSES, Grouping::Joint, 1e-3, 1, 1e-5)?;
    let start = Instant::now();
    let masks = (convex.prepare(&train)?, convex.prepare(&test)?);
    println!(
        "  masks of (11) on the training and test rows (once per run): {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let convex_runs = repeat.min(3);
    let convex_epoch = median_of(convex_runs, || {
        let zeros = vec![0.0f32; convex.parameters()];
        epoch_time(&convex, zeros, &train, &test, (&masks.0, &masks.1), 1e-5)
    })?;
    let flops = 2.0 * gemm::flops(BATCH, d, convex.columns()) * n.div_ceil(BATCH) as f64;
    println!(
        "  convex (11) SGD, {threads} thread(s): median {convex_epoch:.1} s per epoch over {convex_runs} ({:.0} GFLOP/s over the whole step)",
        flops / convex_epoch / 1e9
    );
    if let Some(peak) = pathreg_pipeline::engine::provenance::peak_resident_bytes() {
        println!(
            "  peak resident memory of the benchmark so far: {:.2} GiB",
            peak as f64 / (1u64 << 30) as f64
        );
    }
    pytorch(root, threads, &nonconvex, convex_epoch, products)
}

/// The training rows and the first 1 000 test rows, pixels in [0, 1].
fn fashion_mnist() -> Result<(ImageSet, ImageSet)> {
    let mut config = DataConfig::from_env();
    config.split = Some(Split::Official);
    let loaded =
        load("fashion-mnist", &config).context("loading fashion-mnist (set PATHREG_MIRROR)")?;
    let convert = |data: &pathreg_data::Dataset, rows: usize| -> Result<ImageSet> {
        let rows = rows.min(data.n());
        let x = Array2::from_shape_fn((rows, data.d()), |(i, j)| data.x[[i, j]] as f32);
        let labels = (0..rows).map(|i| data.y[i] as usize).collect();
        Ok(ImageSet::new(x, labels, CLASSES)?)
    };
    Ok((
        convert(&loaded.train, usize::MAX)?,
        convert(&loaded.test, 1000)?,
    ))
}

/// The rates of the convex step's two products and of a square product
/// (GFLOP/s, medians), printed and returned as (forward, adjoint, square).
fn gemm_rates(train: &ImageSet, repeat: usize) -> Result<(f64, f64, f64)> {
    let rows: Vec<usize> = (0..BATCH).collect();
    let xb = train.gather(&rows);
    let columns = 2 * K * CLASSES * M1;
    let w = Array2::<f32>::from_elem((train.d(), columns), 1e-3);
    let mut u = Array2::<f32>::zeros((BATCH, columns));
    let mut g = Array2::<f32>::zeros((train.d(), columns));
    let flops = gemm::flops(BATCH, train.d(), columns);
    let forward = median_of(repeat, || {
        let start = Instant::now();
        gemm::matmul(xb.view(), w.view(), u.view_mut(), false);
        Ok(start.elapsed().as_secs_f64())
    })?;
    let adjoint = median_of(repeat, || {
        let start = Instant::now();
        gemm::matmul(xb.t(), u.view(), g.view_mut(), false);
        Ok(start.elapsed().as_secs_f64())
    })?;
    let size = 4096;
    let a = Array2::<f32>::from_elem((size, size), 1e-3);
    let mut c = Array2::<f32>::zeros((size, size));
    let square = median_of(repeat.min(5), || {
        let start = Instant::now();
        gemm::matmul(a.view(), a.view(), c.view_mut(), false);
        Ok(start.elapsed().as_secs_f64())
    })?;
    let rates = (
        flops / forward / 1e9,
        flops / adjoint / 1e9,
        gemm::flops(size, size, size) / square / 1e9,
    );
    println!(
        "  products (faer, column blocks, {} threads): U = X_b W {BATCH}×{}×{columns} {:.0} GFLOP/s, Xᵀ B {:.0} GFLOP/s, square {size}³ {:.0} GFLOP/s",
        rayon::current_num_threads(),
        train.d(),
        rates.0,
        rates.1,
        rates.2
    );
    Ok(rates)
}

/// One epoch's training time (evaluations excluded).
fn epoch_time<M: Model>(
    model: &M,
    params: Vec<f32>,
    train: &ImageSet,
    test: &ImageSet,
    prepared: (&M::Prepared, &M::Prepared),
    lr: f64,
) -> Result<f64> {
    let settings = ImageTrainSettings {
        optimizer: Optimizer::Sgd { lr, momentum: 0.9 },
        epochs: 1,
        batch_size: BATCH,
        evaluations_per_epoch: 1,
    };
    let run = train_images(
        model,
        params,
        Prepared {
            set: train,
            prepared: prepared.0,
        },
        Prepared {
            set: test,
            prepared: prepared.1,
        },
        1e-5,
        &settings,
        &mut ChaCha8Rng::seed_from_u64(3),
        &|_| {},
    )?;
    Ok(run.time_s)
}

fn median_of(repeat: usize, mut f: impl FnMut() -> Result<f64>) -> Result<f64> {
    let mut times = (0..repeat.max(1))
        .map(|_| f())
        .collect::<Result<Vec<_>>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// PyTorch's epochs and sgemm peak on this machine, and our ratios to them.
fn pytorch(
    root: &Path,
    threads: usize,
    nonconvex: &[(usize, f64)],
    convex: f64,
    products: (f64, f64, f64),
) -> Result<()> {
    let has_torch = Command::new("python3")
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_torch {
        println!(
            "  (PyTorch side skipped: `python3 -c 'import torch'` fails; `pip install torch` to compare)"
        );
        return Ok(());
    }
    let json = tempfile::NamedTempFile::new()?;
    let status = Command::new("python3")
        .arg(root.join("benches/pytorch_epochs.py"))
        .args([
            "fig5",
            "--repeat",
            "3",
            "--threads",
            &format!("1,{threads}"),
            "--json",
        ])
        .arg(json.path())
        .status()
        .context("running benches/pytorch_epochs.py")?;
    if !status.success() {
        bail!("benches/pytorch_epochs.py fig5 failed ({status})");
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(json.path())?)?;
    let torch = report["torch"].as_str().unwrap_or("?");
    let results = report["results"].as_array().cloned().unwrap_or_default();
    let at = |t: usize, key: &str| {
        results
            .iter()
            .find(|r| r["threads"].as_u64() == Some(t as u64))
            .and_then(|r| r[key].as_f64())
    };
    println!(
        "  side by side with PyTorch {torch} (eager, float32, same CPU; ratio = ours / PyTorch, below 1 is faster):"
    );
    for &(t, ours) in nonconvex {
        if let Some(theirs) = at(t, "nonconvex_sgd_epoch_s") {
            println!(
                "    non-convex SGD epoch, {t} thread(s): {ours:.2} s vs {theirs:.2} s, ratio {:.2}",
                ours / theirs
            );
        }
    }
    if let Some(theirs) = at(threads, "convex_sgd_epoch_s") {
        println!(
            "    convex (11) SGD epoch, {threads} thread(s): {convex:.1} s vs {theirs:.1} s, ratio {:.2}",
            convex / theirs
        );
    }
    if let Some(peak) = at(threads, "sgemm_gflops") {
        println!(
            "    products as a share of PyTorch's sgemm peak ({peak:.0} GFLOP/s at {threads} threads): forward {:.0} %, adjoint {:.0} %, square {:.0} %",
            100.0 * products.0 / peak,
            100.0 * products.1 / peak,
            100.0 * products.2 / peak
        );
    }
    if let Some(rss) = report["max_rss_mib"].as_f64() {
        println!(
            "    PyTorch's peak resident memory: {:.2} GiB",
            rss / 1024.0
        );
    }
    Ok(())
}
