//! What the xtask integration tests share: the binary, the workspace and a
//! command that must succeed.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;

/// The xtask binary under test.
pub fn xtask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The read-only dataset mirror beside the checkout, when there is one.
pub fn mirror() -> Option<PathBuf> {
    let path = workspace().join("../shared/datasets");
    path.is_dir().then_some(path)
}

/// Runs `command`, fails the test with its output unless it succeeds, and
/// returns its stdout.
pub fn ok(command: &mut Command, what: &str) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
