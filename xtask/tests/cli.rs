//! The `xtask` binary as a user runs it.

use std::process::Command;

fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

#[test]
fn run_writes_outputs_and_reports_bad_manifests_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("tiny.toml");
    let text = r#"
name = "tiny"
kind = "convex_vs_nonconvex"
seed = 1

[data]
source = "teacher"
n = 4
d = 2
teacher_k = 2
teacher_m1 = 2
teacher_m2 = 1

[model]
m1 = 2
beta = 0.05

[arrangements]
mode = "exact"

[sweep]
K = [3]
"#;
    std::fs::write(&manifest, text).unwrap();
    let out = dir.path().join("outputs");
    let status = xtask()
        .args(["run", "--quiet", "--outputs"])
        .arg(&out)
        .arg(&manifest)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(out.join("tiny/table.md").is_file());

    std::fs::write(
        &manifest,
        text.replace("mode = \"exact\"", "mode = \"exact\"\ndraws = 0"),
    )
    .unwrap();
    let output = xtask()
        .args(["run", "--quiet", "--outputs"])
        .arg(&out)
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tiny.toml:20:9: arrangements.draws: must be at least 1"),
        "{stderr}"
    );
}
