//! `cargo xtask`: the pathreg orchestrator. One module per command, each with
//! its arguments and a `run` function:
//!
//! - `cargo xtask run <manifest>…` runs experiment manifests and writes `outputs/<name>/` ([`run`]).
//! - `cargo xtask verify [manifest…]` regenerates and compares with `outputs/results.lock` ([`verify`]).
//! - `cargo xtask list` / `clean` inspect and remove the cache ([`list`], [`clean`]).
//! - `cargo xtask bench` times the Table 2 pipeline stages and reports medians ([`bench`]).
//! - `cargo xtask fetch` downloads and verifies the pinned dataset files ([`fetch`]).
//! - `cargo xtask report` writes the reproduction report from the outputs ([`report`]).
//! - `cargo xtask slurm` / `slurm-local` run shards on a Slurm cluster and start a local one ([`slurm`]).
//! - `cargo xtask fuzz` feeds mutated seed files to every parser ([`fuzz`]).
//!
//! [`common`] holds what they share: the `run`/`verify` flags, the default
//! folders and running one manifest with a progress bar.

mod bench;
mod clean;
mod common;
mod fetch;
mod fuzz;
mod list;
mod report;
mod run;
mod slurm;
mod verify;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Reproduce Ergen & Pilanci's path-regularization experiments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run experiment manifests (TOML) and write outputs/<name>/.
    Run(run::RunArgs),
    /// Regenerate experiments and compare with outputs/results.lock; exits
    /// non-zero with the cells that moved.
    Verify(verify::VerifyArgs),
    /// List the experiments in experiments/, their cells and which are cached.
    List(list::ListArgs),
    /// Remove the cache, or one stage of it.
    Clean(clean::CleanArgs),
    /// Time exact enumeration, the certified convex solve and the Table 2
    /// manifest cold and warm; print medians.
    Bench(bench::BenchArgs),
    /// Download, copy from a mirror or import the pinned dataset files, verified.
    Fetch(fetch::FetchArgs),
    /// Write outputs/REPORT.md, outputs/report.html and every experiment's
    /// table.tex from the results on disk (nothing is recomputed).
    Report(report::ReportArgs),
    /// Write (and with --submit, submit) the Slurm job array of shards and
    /// the job that assembles outputs/ once every shard succeeded.
    Slurm(slurm::SlurmArgs),
    /// Start or stop a one-node Slurm cluster on this machine (for tests).
    SlurmLocal(slurm::SlurmLocalArgs),
    /// Feed structure-aware mutations of real seed files to every parser;
    /// exits non-zero on a panic, hang or broken promise, with the input dumped.
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", without_repeats(&e));
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    let root = common::workspace_root();
    match cli.command {
        Command::Run(args) => run::run(args, &root),
        Command::Verify(args) => verify::run(args, &root),
        Command::List(args) => list::run(args, &root),
        Command::Clean(args) => clean::run(args, &root),
        Command::Bench(args) => bench::run(args, &root),
        Command::Fetch(args) => fetch::run(args),
        Command::Fuzz(args) => fuzz::run(args, &root),
        Command::Report(args) => report::run(args, &root),
        Command::Slurm(args) => slurm::run(args, &root),
        Command::SlurmLocal(args) => slurm::run_local(args),
    }
}

/// The error and its causes, each cause added only where the message does not
/// already say it (the library errors name their causes themselves).
fn without_repeats(e: &anyhow::Error) -> String {
    let mut message = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}
