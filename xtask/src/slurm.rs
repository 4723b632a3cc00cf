//! `cargo xtask slurm <manifest>… --array N --cache-dir <shared>`: writes the
//! sbatch scripts that run an experiment's cells as a Slurm job array of N
//! shards (`cargo xtask run --shard I/N`, all sharing one cache) and a job
//! that, once every shard succeeded (`--dependency=afterok`), assembles
//! `outputs/` exactly as a single-machine run does; with `--submit`, submits
//! both and prints their job ids.
//!
//! `cargo xtask slurm-local up|down --dir D` starts (and stops) a one-node
//! Slurm cluster on this machine, for tests and trials: munged as the `munge`
//! user, then slurmctld and slurmd as root, everything (key, state, spool,
//! logs, pid files) under `D`. `down` ends exactly the processes `up` wrote
//! down, by pid.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::common::{cache_dir, plan_all};

/// Arguments of `cargo xtask slurm`.
#[derive(clap::Args)]
pub struct SlurmArgs {
    /// Manifest files.
    #[arg(required = true)]
    manifests: Vec<PathBuf>,
    /// Shards in the job array.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    array: u32,
    /// The cache every shard and the assembling job share: a folder on a
    /// file system all nodes mount.
    #[arg(long)]
    cache_dir: PathBuf,
    /// Folder for the results (default: <workspace>/outputs).
    #[arg(long)]
    outputs: Option<PathBuf>,
    /// Where the scripts and the jobs' logs go (default: ./slurm).
    #[arg(long)]
    jobs_dir: Option<PathBuf>,
    /// Slurm partition (default: the cluster's default).
    #[arg(long)]
    partition: Option<String>,
    /// Time limit per job, in Slurm's format (e.g. 2:00:00).
    #[arg(long)]
    time: Option<String>,
    /// CPUs per shard (also its thread count).
    #[arg(long)]
    cpus_per_task: Option<u32>,
    /// The assembling job records the results' hashes in the lock.
    #[arg(long)]
    update_lock: bool,
    /// Submit the jobs (without it, only the scripts are written).
    #[arg(long)]
    submit: bool,
}

/// Arguments of `cargo xtask slurm-local`.
#[derive(clap::Args)]
pub struct SlurmLocalArgs {
    /// `up` or `down`.
    #[arg(value_parser = ["up", "down"])]
    action: String,
    /// The cluster's folder: key, configuration, state, logs and pids.
    #[arg(long)]
    dir: PathBuf,
}

/// A path for a shell script, single-quoted.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}

/// The two scripts' text: the array of shards and the assembling job.
fn scripts(
    args: &SlurmArgs,
    exe: &Path,
    manifests: &[PathBuf],
    outputs: &Path,
    cache: &Path,
    jobs: &Path,
    workdir: &Path,
) -> (String, String) {
    let mut header = String::new();
    if let Some(p) = &args.partition {
        header.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &args.time {
        header.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(c) = args.cpus_per_task {
        header.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
    }
    header.push_str(&format!("#SBATCH --chdir={}\n", workdir.display()));
    let threads = args
        .cpus_per_task
        .map_or(String::new(), |c| format!("export RAYON_NUM_THREADS={c}\n"));
    let listed: Vec<String> = manifests
        .iter()
        .map(|m| quoted(&m.display().to_string()))
        .collect();
    let listed = listed.join(" ");
    let exe = quoted(&exe.display().to_string());
    let cache = quoted(&cache.display().to_string());
    let name = manifests
        .first()
        .and_then(|m| m.file_stem())
        .map_or("pathreg".into(), |s| s.to_string_lossy().into_owned());
    let shards = format!(
        "#!/bin/bash\n\
         # {n} shards of {listed}: each computes its share of the cells into the shared cache.\n\
         # Rerun one failed shard with: sbatch --array=<index> {this}\n\
         #SBATCH --job-name=pathreg-{name}-shards\n\
         #SBATCH --array=0-{last}\n\
         #SBATCH --output={log}\n\
         {header}\
         set -euo pipefail\n\
         {threads}\
         exec {exe} run --cache-dir {cache} --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\" {listed}\n",
        n = args.array,
        last = args.array - 1,
        this = quoted(&jobs.join("shards.sbatch").display().to_string()),
        log = jobs.join("shard-%A_%a.out").display(),
    );
    let lock = if args.update_lock {
        " --update-lock"
    } else {
        ""
    };
    let assemble = format!(
        "#!/bin/bash\n\
         # Assembles outputs/ from the cache once every shard succeeded: the same outputs and\n\
         # hashes as a single-machine run of {listed}.\n\
         #SBATCH --job-name=pathreg-{name}-assemble\n\
         #SBATCH --output={log}\n\
         {header}\
         set -euo pipefail\n\
         {threads}\
         exec {exe} run --cache-dir {cache} --outputs {outputs}{lock} {listed}\n",
        log = jobs.join("assemble-%j.out").display(),
        outputs = quoted(&outputs.display().to_string()),
    );
    (shards, assemble)
}

/// `sbatch --parsable` with `extra` arguments; the job id.
fn sbatch(extra: &[String], script: &Path) -> Result<String> {
    let output = Command::new("sbatch")
        .arg("--parsable")
        .args(extra)
        .arg(script)
        .output()
        .context("running sbatch (is Slurm installed, and SLURM_CONF set?)")?;
    if !output.status.success() {
        bail!(
            "sbatch {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    // `--parsable` prints `id` or `id;cluster`.
    Ok(text
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string())
}

/// Runs `cargo xtask slurm`.
pub fn run(args: SlurmArgs, root: &Path) -> Result<ExitCode> {
    // Every manifest must be valid before anything is written or submitted.
    let common = crate::common::CommonArgs {
        outputs: args.outputs.clone(),
        cache_dir: Some(args.cache_dir.clone()),
        no_cache: false,
        quiet: true,
        lock: None,
        override_limits: false,
    };
    plan_all(&args.manifests, &common, root)?;
    let manifests: Vec<PathBuf> = args
        .manifests
        .iter()
        .map(|m| absolute(m))
        .collect::<Result<_>>()?;
    let outputs = absolute(&common.outputs_root(root))?;
    let cache = absolute(&cache_dir(Some(args.cache_dir.clone()), root))?;
    let jobs = absolute(
        &args
            .jobs_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("slurm")),
    )?;
    std::fs::create_dir_all(&jobs).with_context(|| format!("creating {}", jobs.display()))?;
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .context("locating this xtask binary")?;
    let workdir = std::env::current_dir()?;
    let (shards, assemble) = scripts(&args, &exe, &manifests, &outputs, &cache, &jobs, &workdir);
    let shards_path = jobs.join("shards.sbatch");
    let assemble_path = jobs.join("assemble.sbatch");
    pathreg_report::write_atomic(&shards_path, shards.as_bytes())?;
    pathreg_report::write_atomic(&assemble_path, assemble.as_bytes())?;
    println!(
        "wrote {} and {}",
        shards_path.display(),
        assemble_path.display()
    );
    if !args.submit {
        println!(
            "submit with: a=$(sbatch --parsable {}) && sbatch --dependency=afterok:$a {}",
            shards_path.display(),
            assemble_path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let array = sbatch(&[], &shards_path)?;
    let after = sbatch(&[format!("--dependency=afterok:{array}")], &assemble_path)?;
    println!(
        "array job {array} ({} shards), assembling job {after} (after {array} succeeds)",
        args.array
    );
    Ok(ExitCode::SUCCESS)
}

/// The local cluster's files under `dir`.
struct Local {
    dir: PathBuf,
}

impl Local {
    fn munge(&self) -> PathBuf {
        self.dir.join("munge")
    }
    fn conf(&self) -> PathBuf {
        self.dir.join("slurm.conf")
    }
    /// The pid files of what `up` started, in the order `down` stops them.
    fn pid_files(&self) -> [PathBuf; 3] {
        [
            self.dir.join("slurmd.pid"),
            self.dir.join("slurmctld.pid"),
            self.munge().join("munged.pid"),
        ]
    }
}

fn checked(command: &mut Command, what: &str) -> Result<()> {
    let output = command
        .output()
        .with_context(|| format!("starting {what} (are slurm-wlm and munge installed?)"))?;
    if !output.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(())
}

fn short_hostname() -> Result<String> {
    let name =
        std::fs::read_to_string("/proc/sys/kernel/hostname").context("reading the host name")?;
    Ok(name
        .trim()
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string())
}

fn up(local: &Local) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if local.pid_files().iter().any(|p| p.exists()) {
        bail!(
            "{} already holds a running cluster's pid files; run `cargo xtask slurm-local down --dir {}` first",
            local.dir.display(),
            local.dir.display()
        );
    }
    let dir = &local.dir;
    for sub in ["state", "spool", "log"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    // munged checks that every folder above its socket is searchable by all.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let munge = local.munge();
    std::fs::create_dir_all(&munge)?;
    std::fs::set_permissions(&munge, std::fs::Permissions::from_mode(0o755))?;
    let key = munge.join("munge.key");
    let mut bytes = vec![0u8; 1024];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    std::fs::write(&key, &bytes)?;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400))?;
    checked(
        Command::new("chown")
            .args(["-R", "munge:munge"])
            .arg(&munge),
        "chown munge:munge",
    )?;
    let socket = munge.join("munge.socket");
    let file = |name: &str| munge.join(name).display().to_string();
    checked(
        Command::new("runuser")
            .args(["-u", "munge", "--", "munged"])
            .args([
                format!("--key-file={}", key.display()),
                format!("--socket={}", socket.display()),
                format!("--pid-file={}", file("munged.pid")),
                format!("--log-file={}", file("munged.log")),
                format!("--seed-file={}", file("munged.seed")),
            ]),
        "munged",
    )?;
    let host = short_hostname()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let path = |p: &str| dir.join(p).display().to_string();
    let conf = format!(
        "# A one-node cluster for pathreg's tests (cargo xtask slurm-local).\n\
         ClusterName=pathreg\n\
         SlurmctldHost={host}\n\
         SlurmUser=root\n\
         SlurmdUser=root\n\
         AuthType=auth/munge\n\
         AuthInfo=socket={socket}\n\
         CredType=cred/munge\n\
         StateSaveLocation={state}\n\
         SlurmdSpoolDir={spool}\n\
         SlurmctldPidFile={ctld_pid}\n\
         SlurmdPidFile={d_pid}\n\
         SlurmctldLogFile={ctld_log}\n\
         SlurmdLogFile={d_log}\n\
         ProctrackType=proctrack/linuxproc\n\
         TaskPlugin=task/none\n\
         SelectType=select/cons_tres\n\
         SelectTypeParameters=CR_Core\n\
         JobAcctGatherType=jobacct_gather/none\n\
         AccountingStorageType=accounting_storage/none\n\
         MpiDefault=none\n\
         ReturnToService=2\n\
         # Finished jobs stay visible to scontrol for an hour (there is no accounting).\n\
         MinJobAge=3600\n\
         SchedulerParameters=sched_interval=2\n\
         NodeName={host} CPUs={cpus} State=UNKNOWN\n\
         PartitionName=local Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
        socket = socket.display(),
        state = path("state"),
        spool = path("spool"),
        ctld_pid = path("slurmctld.pid"),
        d_pid = path("slurmd.pid"),
        ctld_log = path("log/slurmctld.log"),
        d_log = path("log/slurmd.log"),
    );
    std::fs::write(local.conf(), conf)?;
    for daemon in ["slurmctld", "slurmd"] {
        checked(
            Command::new(daemon)
                .arg("-f")
                .arg(local.conf())
                .env("SLURM_CONF", local.conf()),
            daemon,
        )?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = Command::new("sinfo")
            .args(["-h", "-o", "%T"])
            .env("SLURM_CONF", local.conf())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        if state.as_deref() == Some("idle") {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the node did not become idle within 60 s (sinfo says {state:?}); logs in {}",
                dir.join("log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    println!(
        "local Slurm cluster up (node {host}, {cpus} CPUs); use it with: export SLURM_CONF={}",
        local.conf().display()
    );
    Ok(())
}

fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

fn down(local: &Local) -> Result<()> {
    for file in local.pid_files() {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let pid: u32 = text
            .trim()
            .parse()
            .with_context(|| format!("{} holds no pid", file.display()))?;
        if pid_alive(pid) {
            checked(Command::new("kill").arg(pid.to_string()), "kill")?;
            let deadline = Instant::now() + Duration::from_secs(20);
            while pid_alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if pid_alive(pid) {
                bail!("process {pid} (from {}) did not stop", file.display());
            }
        }
        let _ = std::fs::remove_file(&file);
    }
    println!("local Slurm cluster in {} is down", local.dir.display());
    Ok(())
}

/// Runs `cargo xtask slurm-local`.
pub fn run_local(args: SlurmLocalArgs) -> Result<ExitCode> {
    let local = Local {
        dir: absolute(&args.dir)?,
    };
    if args.action == "up" {
        // A failed start stops whatever it had started.
        up(&local).or_else(|e| down(&local).and(Err(e)))?;
    } else {
        down(&local)?;
    }
    Ok(ExitCode::SUCCESS)
}
