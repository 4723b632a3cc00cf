//! The reproduction report as a user makes it: from the outputs of real runs
//! (Figure 1 and Table 2, no download), a claim that fails shows as failing,
//! missing experiments show as not run with their command, the output is
//! byte-identical on a rerun, the LaTeX tables compile with pdflatex, and
//! headless Chromium renders the page with every figure at a non-zero size.

use std::path::Path;
use std::process::Command;

mod common;
use common::{ok, workspace, xtask};

fn report(outputs: &Path) -> String {
    ok(
        xtask().args(["report", "--outputs"]).arg(outputs),
        "xtask report",
    )
}

/// Runs Figure 1 and Table 2 into `outputs` (with their hashes in its lock).
fn real_outputs(outputs: &Path) {
    let experiments = workspace().join("experiments");
    ok(
        xtask()
            .current_dir(workspace())
            .args(["run", "--quiet", "--no-cache", "--update-lock", "--outputs"])
            .arg(outputs)
            .arg("--lock")
            .arg(outputs.join("results.lock"))
            .arg(experiments.join("fig1.toml"))
            .arg(experiments.join("table2.toml")),
        "xtask run",
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The summary row of `claim` in `markdown`.
fn status_of<'m>(markdown: &'m str, claim: &str) -> &'m str {
    markdown
        .lines()
        .find(|l| l.starts_with('|') && l.contains(claim))
        .unwrap_or_else(|| panic!("no summary row for {claim:?}"))
}

#[test]
fn the_report_checks_claims_flags_tampering_and_renders() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("outputs");
    real_outputs(&outputs);
    let said = report(&outputs);
    assert!(said.contains("2 table.tex files"), "{said}");
    let markdown = read(&outputs.join("REPORT.md"));
    for claim in [
        "The convex optimum is certified over all triples",
        "The convex optimum is at or below every SGD run",
        "Proposition 1's network reproduces the convex objective",
        "Our optimum prints as the paper's value",
        "The three-layer path-regularized model fits the spiral",
    ] {
        assert!(status_of(&markdown, claim).contains("**holds**"), "{claim}");
    }
    assert!(markdown.contains("(matches the lock)"));
    // Missing experiments are not run, with the command that runs them.
    assert!(status_of(&markdown, "p3* is certified in every cell").contains("**not run**"));
    assert!(markdown.contains("Run `cargo xtask run experiments/fig4.toml`"));

    // Deterministic: the same inputs give the same bytes.
    let files = [
        "REPORT.md",
        "report.html",
        "table2/table.tex",
        "fig1/table.tex",
    ];
    let first: Vec<String> = files.iter().map(|f| read(&outputs.join(f))).collect();
    report(&outputs);
    for (f, before) in files.iter().zip(&first) {
        assert_eq!(&read(&outputs.join(f)), before, "{f} changed on a rerun");
    }

    // The LaTeX tables compile.
    if Command::new("pdflatex").arg("--version").output().is_ok() {
        let tex = dir.path().join("tables.tex");
        std::fs::write(
            &tex,
            format!(
                "\\documentclass{{article}}\n\\usepackage{{booktabs}}\n\\begin{{document}}\n\\input{{{}}}\n\\input{{{}}}\n\\end{{document}}\n",
                outputs.join("table2/table.tex").display(),
                outputs.join("fig1/table.tex").display()
            ),
        )
        .unwrap();
        ok(
            Command::new("pdflatex")
                .current_dir(dir.path())
                .args(["-interaction=nonstopmode", "-halt-on-error"])
                .arg(&tex),
            "pdflatex",
        );
        assert!(dir.path().join("tables.pdf").is_file());
    } else {
        eprintln!(
            "SKIPPED the pdflatex check: pdflatex is not installed (apt-get install texlive-latex-recommended)"
        );
    }

    // A real browser renders the page: no script error, every figure drawn.
    if Command::new("chromium").arg("--version").output().is_ok() {
        let page = format!("file://{}", outputs.join("report.html").display());
        let browser = |extra: &[&str]| {
            Command::new("chromium")
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                ])
                .args(["--enable-logging=stderr", "--virtual-time-budget=5000"])
                .args(extra)
                .arg(&page)
                .output()
                .unwrap()
        };
        let dom = browser(&["--dump-dom"]);
        let html = String::from_utf8_lossy(&dom.stdout);
        let log = String::from_utf8_lossy(&dom.stderr);
        assert!(dom.status.success(), "{log}");
        assert!(!log.contains("Uncaught"), "{log}");
        assert!(
            html.contains("data-figures=\"2/2\""),
            "figures drawn: {:?}",
            html.split("data-figures=").nth(1).map(|s| &s[..8])
        );
        assert!(!html.contains("<p id=\"figure-warning\""));
        let shot = workspace().join("target/report-screenshot.png");
        let screenshot = format!("--screenshot={}", shot.display());
        assert!(
            browser(&["--window-size=1280,2400", &screenshot])
                .status
                .success()
        );
        assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));
    } else {
        eprintln!(
            "SKIPPED the browser check: chromium is not installed (apt-get install chromium)"
        );
    }

    // Tampering: one SGD run below the convex optimum must show as failing.
    let results = outputs.join("table2/results.csv");
    let text = read(&results);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let objective = header.iter().position(|h| *h == "objective").unwrap();
    let row = lines.iter().position(|l| l.starts_with("sgd,")).unwrap();
    let mut fields: Vec<String> = lines[row].split(',').map(str::to_string).collect();
    fields[objective] = "0.0001".into();
    lines[row] = fields.join(",");
    std::fs::write(&results, lines.join("\n") + "\n").unwrap();
    report(&outputs);
    let markdown = read(&outputs.join("REPORT.md"));
    assert!(
        status_of(&markdown, "The convex optimum is at or below every SGD run")
            .contains("**fails**"),
        "{markdown}"
    );
}

#[test]
fn the_committed_report_is_what_the_committed_outputs_give() {
    // Regenerates outputs/REPORT.md from a copy of the committed outputs and
    // compares: the report is a function of what is on disk.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("outputs");
    ok(
        Command::new("cp")
            .arg("-r")
            .arg(workspace().join("outputs"))
            .arg(&copy),
        "cp -r outputs",
    );
    report(&copy);
    for file in ["REPORT.md", "report.html", "table3/table.tex"] {
        assert_eq!(
            read(&copy.join(file)),
            read(&workspace().join("outputs").join(file)),
            "{file} differs: rerun `cargo xtask report` and commit it"
        );
    }
}
