//! Table 2 over many datasets as a user runs it, shrunk to 3 datasets, 2 K
//! values and 3 runs per optimizer: every summary number in table.md is
//! recomputed here from results.csv, independently of the kind's report.

use std::collections::BTreeMap;
use std::process::Command;

mod common;
use common::workspace;

fn shrunk_manifest() -> String {
    let text = std::fs::read_to_string(workspace().join("experiments/table2_seeds.toml")).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let line = if line.starts_with("\"data.seed\"") {
            "\"data.seed\" = [0, 1, 2]".to_string()
        } else if line.starts_with("K = ") {
            "K = [2, 5]".to_string()
        } else if line.starts_with("runs = ") {
            "runs = 3".to_string()
        } else if line.starts_with("epochs = ") {
            "epochs = 3000".to_string()
        } else {
            line.to_string()
        };
        out.push_str(&line);
        out.push('\n');
    }
    assert!(out.contains("runs = 3") && out.contains("K = [2, 5]"));
    out
}

/// The 95 % Wilson score interval, written out again.
fn wilson(successes: f64, n: f64) -> (f64, f64) {
    let z = 1.959_963_984_540_054_f64;
    let p = successes / n;
    let denominator = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denominator;
    let half = z / denominator * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

#[test]
fn the_success_rates_in_table_md_follow_from_results_csv() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("table2_seeds.toml");
    std::fs::write(&manifest, shrunk_manifest()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(dir.path())
        .args(["run", "--quiet", "--no-cache", "--outputs"])
        .arg(dir.path().join("out"))
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = dir.path().join("out/table2_seeds");
    for file in [
        "success_rate_vs_K.svg",
        "success_rate_vs_K.png",
        "gap_distribution.svg",
        "gap_distribution.png",
        "results.parquet",
        "run.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    // 3 datasets × 2 optimizers = 6 groups: more than the curve figures are drawn for.
    assert!(!out.join("curves_1_K2.svg").exists());

    // results.csv: method,K,run,data.seed,nonconvex.optimizer,seed,objective,...
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (method, k, data_seed, objective) =
        (col("method"), col("K"), col("data.seed"), col("objective"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let mut optimum: BTreeMap<(String, String), f64> = BTreeMap::new();
    for r in rows.iter().filter(|r| r[method] == "convex") {
        let value: f64 = r[objective].parse().unwrap();
        let previous = optimum.insert((r[data_seed].clone(), r[k].clone()), value);
        assert!(previous.is_none_or(|p| p == value));
    }
    // Per (optimizer, K): the relative gaps and which dataset each belongs to.
    let mut gaps: BTreeMap<(String, usize), Vec<(String, f64)>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r[method] != "convex") {
        let best = optimum[&(r[data_seed].clone(), r[k].clone())];
        let value: f64 = r[objective].parse().unwrap();
        let gap = (value - best) / best;
        // No run beats the certified optimum.
        assert!(gap.is_nan() || gap > -1e-6, "{r:?}");
        gaps.entry((r[method].clone(), r[k].parse().unwrap()))
            .or_default()
            .push((r[data_seed].clone(), gap));
    }
    assert_eq!(gaps.len(), 4, "{:?}", gaps.keys());
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("## Success rate over 3 datasets"), "{table}");
    for ((optimizer, k), runs) in &gaps {
        assert_eq!(runs.len(), 9);
        let mut values: Vec<f64> = runs.iter().map(|r| r.1).filter(|g| g.is_finite()).collect();
        values.sort_by(f64::total_cmp);
        let diverged = 9 - values.len();
        let successes = values.iter().filter(|g| **g <= 0.01).count();
        let (low, high) = wilson(successes as f64, 9.0);
        let all_within = ["0", "1", "2"]
            .iter()
            .filter(|d| runs.iter().filter(|r| r.0 == **d).all(|r| r.1 <= 0.01))
            .count();
        let median = match values.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => values[n / 2],
            n => 0.5 * (values[n / 2 - 1] + values[n / 2]),
        };
        let worst = values.last().copied().unwrap_or(f64::NAN);
        let expected = format!(
            "| {} | {k} | 9 | {successes} | {diverged} | {:.2} ({low:.2}–{high:.2}) | {median:.2e} | {worst:.2e} | {all_within} / 3 |",
            optimizer.to_uppercase(),
            successes as f64 / 9.0,
        );
        assert!(table.contains(&expected), "{expected}\nnot in\n{table}");
    }
}
