//! `cargo xtask fuzz [--iterations N] [--seed S] [--target NAME] [--mirror DIR]`:
//! feeds structure-aware mutations of real seed files to every parser of the
//! project, on the stable toolchain.
//!
//! Each target ([`targets`]) reads its input files through the project's
//! public entry points; its seeds ([`seeds`]) are the repository's manifests,
//! tests' manifests and lock, and small real dataset files; [`mutate`] edits
//! them. A seeded, named RNG (`ChaCha8Rng`, one stream per target) makes a
//! run reproducible: target `T`'s `i`-th input depends only on `--seed` and
//! `i`, so `--target T --iterations i+1` replays it.
//!
//! A panic (caught by `catch_unwind`) or a broken promise of a target is a
//! failure; so is an input that runs longer than [`HANG`] or makes the
//! process resident set exceed [`MEMORY`] (a watchdog thread ends the run).
//! Every failure is dumped (its files and a hex dump) into a kept folder,
//! and the command exits 1. An abort (an allocation failure) cannot be
//! caught: it leaves the input being run in `<folder>/<target>/input/` (the
//! run's folder, in `/dev/shm` where there is one, printed at the start).

mod mutate;
mod seeds;
mod targets;

use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use mutate::Input;
use seeds::Sources;
use targets::{Dirs, Outcome, TARGETS, Target};

/// One input running longer than this is a hang.
pub const HANG: Duration = Duration::from_secs(5);
/// A resident set above this (bytes) is unbounded memory.
pub const MEMORY: u64 = 2 << 30;

/// Arguments of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct FuzzArgs {
    /// Inputs in total, shared evenly by the targets (all to `--target`).
    #[arg(long, default_value_t = 20_000)]
    iterations: u64,
    /// Seed of the mutation RNG.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Only this target (see the list printed by a run).
    #[arg(long)]
    target: Option<String>,
    /// Dataset mirror for real seed files (default: $PATHREG_MIRROR, else
    /// <workspace>/../shared/datasets, when it is a folder; without one,
    /// synthetic seeds only).
    #[arg(long)]
    mirror: Option<PathBuf>,
}

/// The input now running, for the watchdog.
struct InFlight {
    target: &'static str,
    iteration: u64,
    input: Arc<Input>,
    started: Instant,
}

/// What the watchdog watches.
struct Monitor {
    current: Mutex<Option<InFlight>>,
    failures: PathBuf,
    stop: AtomicBool,
}

/// The last panic's message and place, recorded by the panic hook.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// One failure, for the summary.
struct Failure {
    target: &'static str,
    iteration: u64,
    reason: String,
    dump: PathBuf,
}

/// Runs `cargo xtask fuzz`.
pub fn run(args: FuzzArgs, root: &Path) -> Result<ExitCode> {
    let selected: Vec<&Target> = match &args.target {
        Some(name) => match TARGETS.iter().find(|t| t.name == name) {
            Some(t) => vec![t],
            None => {
                let known: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
                bail!("unknown target {name:?}; known: {}", known.join(", "));
            }
        },
        None => TARGETS.iter().collect(),
    };
    let mirror = args.mirror.clone().or_else(|| {
        std::env::var_os("PATHREG_MIRROR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| Some(root.join("../shared/datasets")))
            .filter(|p| p.is_dir())
    });
    if let Some(m) = &args.mirror
        && !m.is_dir()
    {
        bail!("--mirror {}: not a folder", m.display());
    }
    let sources = Sources {
        root: root.to_path_buf(),
        mirror,
    };
    // The run's many small files live in memory where a tmpfs is at hand;
    // failing inputs go to the ordinary temporary folder, kept.
    let mut builder = tempfile::Builder::new();
    builder.prefix("pathreg-fuzz-");
    let shm = Path::new("/dev/shm");
    let work = shm
        .is_dir()
        .then(|| builder.tempdir_in(shm).ok())
        .flatten()
        .map_or_else(|| builder.tempdir(), Ok)
        .context("creating the fuzz folder")?;
    let failures_dir = tempfile::Builder::new()
        .prefix("pathreg-fuzz-failures-")
        .tempdir()
        .context("creating the failures folder")?;
    println!(
        "fuzz: seed {}, {} inputs over {} target(s), seeds from {} and {}; folder {}",
        args.seed,
        args.iterations,
        selected.len(),
        root.display(),
        sources.mirror.as_ref().map_or_else(
            || "no mirror (synthetic data seeds)".into(),
            |m| m.display().to_string()
        ),
        work.path().display()
    );
    let monitor = Arc::new(Monitor {
        current: Mutex::new(None),
        failures: failures_dir.path().to_path_buf(),
        stop: AtomicBool::new(false),
    });
    let watchdog = {
        let monitor = Arc::clone(&monitor);
        std::thread::spawn(move || watch(&monitor))
    };
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(info.to_string());
        }
    }));
    let result = fuzz_all(&args, &selected, &sources, work.path(), &monitor);
    let _ = std::panic::take_hook();
    monitor.stop.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    let failures = result?;
    if failures.is_empty() {
        println!("no failures");
        return Ok(ExitCode::SUCCESS);
    }
    let kept = failures_dir.keep();
    println!(
        "{} failure(s); inputs kept under {}:",
        failures.len(),
        kept.display()
    );
    for f in &failures {
        println!(
            "  {} #{}: {}\n    input: {}",
            f.target,
            f.iteration,
            f.reason,
            f.dump.display()
        );
    }
    Ok(ExitCode::FAILURE)
}

/// Every selected target in turn; the per-target table on stdout.
fn fuzz_all(
    args: &FuzzArgs,
    selected: &[&Target],
    sources: &Sources,
    work: &Path,
    monitor: &Monitor,
) -> Result<Vec<Failure>> {
    println!(
        "{:<20} {:>6} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9}",
        "target", "seeds", "inputs", "ok", "error", "failed", "seconds", "slowest"
    );
    let count = selected.len() as u64;
    let mut failures = Vec::new();
    let (mut inputs, mut ok, mut err, mut seconds) = (0, 0, 0, 0.0);
    for (i, target) in selected.iter().enumerate() {
        let share = args.iterations / count + u64::from((i as u64) < args.iterations % count);
        let seeds = (target.seeds)(sources)
            .with_context(|| format!("collecting the seeds of {}", target.name))?;
        if seeds.is_empty() {
            bail!("target {} has no seeds", target.name);
        }
        let dirs = Dirs {
            input: work.join(target.name).join("input"),
            scratch: work.join(target.name).join("scratch"),
        };
        std::fs::create_dir_all(&dirs.scratch)
            .with_context(|| format!("creating {}", dirs.scratch.display()))?;
        let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
        rng.set_stream(stream(target.name));
        let start = Instant::now();
        let (mut t_ok, mut t_err, mut t_failed) = (0u64, 0u64, 0u64);
        let mut slowest = Duration::ZERO;
        for iteration in 0..share {
            let input = Arc::new(mutate::mutate(&mut rng, &seeds));
            write_input(&dirs.input, &input)?;
            if let Ok(mut current) = monitor.current.lock() {
                *current = Some(InFlight {
                    target: target.name,
                    iteration,
                    input: Arc::clone(&input),
                    started: Instant::now(),
                });
            }
            let started = Instant::now();
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&dirs)));
            slowest = slowest.max(started.elapsed());
            if let Ok(mut current) = monitor.current.lock() {
                *current = None;
            }
            let reason = match outcome {
                Ok(Outcome::Accepted) => {
                    t_ok += 1;
                    continue;
                }
                Ok(Outcome::Rejected) => {
                    t_err += 1;
                    continue;
                }
                Ok(Outcome::Violation(why)) => why,
                Err(_) => LAST_PANIC
                    .lock()
                    .ok()
                    .and_then(|mut p| p.take())
                    .map_or_else(|| "panicked".into(), |p| p.replace('\n', " ")),
            };
            t_failed += 1;
            let dump = dump(&monitor.failures, target.name, iteration, &input)?;
            println!(
                "FAIL {} #{iteration}: {reason} (input: {})",
                target.name,
                dump.display()
            );
            failures.push(Failure {
                target: target.name,
                iteration,
                reason,
                dump,
            });
        }
        let elapsed = start.elapsed().as_secs_f64();
        println!(
            "{:<20} {:>6} {:>9} {:>9} {:>9} {:>7} {:>9.2} {:>6.1} ms",
            target.name,
            seeds.len(),
            share,
            t_ok,
            t_err,
            t_failed,
            elapsed,
            slowest.as_secs_f64() * 1e3
        );
        (inputs, ok, err, seconds) = (inputs + share, ok + t_ok, err + t_err, seconds + elapsed);
    }
    println!(
        "{:<20} {:>6} {:>9} {:>9} {:>9} {:>7} {:>9.2}",
        "total",
        "",
        inputs,
        ok,
        err,
        failures.len(),
        seconds
    );
    Ok(failures)
}

/// The RNG stream of a target: FNV-1a of its name, so a target's inputs do
/// not depend on which other targets run.
fn stream(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Replaces the contents of `dir` (files only) with the input's files.
fn write_input(dir: &Path, input: &Input) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let listing = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in listing {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        let stale = !input
            .members
            .iter()
            .any(|m| path.file_name() == Some(m.name.as_ref()));
        if stale {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    for m in &input.members {
        let path = dir.join(&m.name);
        std::fs::write(&path, &m.bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Writes a failing input under `failures/<target>-<iteration>/`: each file,
/// and a hex dump of it beside it (`<name>.hex`).
fn dump(failures: &Path, target: &str, iteration: u64, input: &Input) -> Result<PathBuf> {
    let dir = failures.join(format!("{target}-{iteration}"));
    write_input(&dir, input)?;
    for m in &input.members {
        let path = dir.join(format!("{}.hex", m.name));
        std::fs::write(&path, hex_dump(&m.bytes))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

/// `offset  16 hex bytes  |ascii|` lines.
fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:08x} ", i * 16);
        for b in chunk {
            let _ = write!(out, " {b:02x}");
        }
        out.push_str(&"   ".repeat(16 - chunk.len()));
        out.push_str("  |");
        out.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push_str("|\n");
    }
    out
}

/// The process's resident set in bytes (Linux; `None` elsewhere).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Ends the process (exit 1) when the input in flight hangs or the resident
/// set grows past [`MEMORY`], after dumping the input.
fn watch(monitor: &Monitor) {
    while !monitor.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let Ok(current) = monitor.current.lock() else {
            return;
        };
        let Some(flight) = current.as_ref() else {
            continue;
        };
        let reason = if flight.started.elapsed() > HANG {
            format!("hang: still running after {} s", HANG.as_secs())
        } else if let Some(rss) = resident_bytes().filter(|&r| r > MEMORY) {
            format!(
                "unbounded memory: {} MiB resident (limit {} MiB)",
                rss >> 20,
                MEMORY >> 20
            )
        } else {
            continue;
        };
        let dumped = dump(
            &monitor.failures,
            flight.target,
            flight.iteration,
            &flight.input,
        )
        .map_or_else(
            |e| format!("(dump failed: {e:#})"),
            |p| p.display().to_string(),
        );
        println!(
            "FAIL {} #{}: {reason} (input: {dumped})",
            flight.target, flight.iteration
        );
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_is_accepted_unmutated() {
        let root = crate::common::workspace_root();
        let mirror = Some(root.join("../shared/datasets")).filter(|p| p.is_dir());
        let sources = Sources { root, mirror };
        let work = tempfile::tempdir().unwrap();
        for target in TARGETS {
            let dirs = Dirs {
                input: work.path().join(target.name).join("input"),
                scratch: work.path().join(target.name).join("scratch"),
            };
            std::fs::create_dir_all(&dirs.scratch).unwrap();
            for (i, seed) in (target.seeds)(&sources).unwrap().iter().enumerate() {
                write_input(&dirs.input, seed).unwrap();
                let outcome = (target.run)(&dirs);
                assert!(
                    matches!(outcome, Outcome::Accepted),
                    "{} seed {i} ({}): {outcome:?}",
                    target.name,
                    seed.members[0].name
                );
            }
        }
    }

    #[test]
    fn streams_differ_by_target_and_hex_dumps_show_text() {
        assert_ne!(stream("csv"), stream("uci"));
        assert_eq!(
            hex_dump(b"ab\n"),
            "00000000  61 62 0a                                         |ab.|\n"
        );
    }
}
