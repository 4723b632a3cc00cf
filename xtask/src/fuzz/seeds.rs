//! Seed inputs: the repository's own files (experiment manifests and the
//! manifests embedded in the pipeline's and xtask's tests, the dataset
//! manifests, the hash lock), small real files from the mirror (a few UCI
//! folders; the first images of MNIST and Fashion-MNIST with their header
//! counts rewritten), and synthetic files where no real one exists (CIFAR-10
//! batches and archives, cache entries) or no mirror is at hand.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use pathreg_core::ArrangementSet;
use pathreg_pipeline::cache::{Cache, CacheKey};
use pathreg_pipeline::engine::hashing::RowHash;
use pathreg_pipeline::lock::{LockFile, LockedExperiment};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::mutate::{Format, Input, Member};
use super::targets::{CIFAR_RECORDS, SpectrumShaped};

/// Where seeds come from.
pub struct Sources {
    /// The workspace root.
    pub root: PathBuf,
    /// The dataset mirror (`uci/<name>/…`, `mnist/…`), when there is one.
    pub mirror: Option<PathBuf>,
}

/// The small UCI datasets whose folders seed the `uci` and `csv` targets.
const UCI_SEEDS: &[&str] = &[
    "balloons",
    "trains",
    "fertility",
    "acute-inflammation",
    "echocardiogram",
];

fn one(name: &str, format: Format, bytes: impl Into<Vec<u8>>) -> Input {
    Input {
        members: vec![Member::new(name, format, bytes)],
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading seed {}", path.display()))
}

/// The files of `dir` with extension `ext`, sorted.
fn files_with(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    Ok(out)
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The raw string literals (`r#"…"#`) of Rust source that are experiment
/// manifests (have a `kind = …` line).
fn embedded_manifests(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("r#\"") {
        let body = &rest[start + 3..];
        let Some(end) = body.find("\"#") else { break };
        let text = &body[..end];
        if text.lines().any(|l| l.trim_start().starts_with("kind = ")) {
            out.push(text.to_string());
        }
        rest = &body[end + 2..];
    }
    out
}

/// `experiments/*.toml` and the manifests embedded in the pipeline's and
/// xtask's tests.
pub fn experiment_manifests(src: &Sources) -> Result<Vec<Input>> {
    let mut texts: Vec<Vec<u8>> = Vec::new();
    for path in files_with(&src.root.join("experiments"), "toml")? {
        texts.push(read(&path)?);
    }
    let mut sources = Vec::new();
    for dir in [
        "crates/pathreg-pipeline/src",
        "crates/pathreg-pipeline/tests",
        "xtask/tests",
    ] {
        rust_files(&src.root.join(dir), &mut sources)?;
    }
    for path in sources {
        let text = String::from_utf8(read(&path)?)
            .with_context(|| format!("{} is not UTF-8", path.display()))?;
        texts.extend(
            embedded_manifests(&text)
                .into_iter()
                .map(String::into_bytes),
        );
    }
    Ok(texts
        .into_iter()
        .map(|text| {
            let mut members = vec![Member::new("manifest.toml", Format::Toml, text.clone())];
            for file in csv_files_named(&String::from_utf8_lossy(&text)) {
                members.push(Member::new(
                    &file,
                    Format::Fixed,
                    "x1,x2,y\n0.5,1,1\n-1,2,-1\n",
                ));
            }
            Input { members }
        })
        .collect())
}

/// The plain file names of the `"csv:<file>"` datasets a manifest lists
/// (which must exist beside it).
fn csv_files_named(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in text.split("\"csv:").skip(1) {
        let name = piece.split('"').next().unwrap_or_default();
        let plain = !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != "..";
        if plain && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// `manifests/*.toml`.
pub fn dataset_manifests(src: &Sources) -> Result<Vec<Input>> {
    files_with(&src.root.join("manifests"), "toml")?
        .iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(one(&name, Format::Toml, read(path)?))
        })
        .collect()
}

/// A UCI folder's files that the loader reads: `<name>.txt`, its data files,
/// `conxuntos.dat` and `conxuntos_kfold.dat`.
fn uci_folder(dir: &Path, name: &str) -> Result<Input> {
    let info_name = format!("{name}.txt");
    let info_text = String::from_utf8(read(&dir.join(&info_name))?)?;
    let info = pathreg_data::uci::parse_info(&info_text, &info_name)?;
    let mut members = vec![Member::new(&info_name, Format::Text, info_text.clone())];
    for (file, _) in &info.files {
        members.push(Member::new(file, Format::Text, read(&dir.join(file))?));
    }
    for file in ["conxuntos.dat", "conxuntos_kfold.dat"] {
        if dir.join(file).is_file() {
            members.push(Member::new(file, Format::Text, read(&dir.join(file))?));
        }
    }
    Ok(Input { members })
}

/// Synthetic UCI folders: one data file, and train/test files (`n_arquivos= 2`).
fn synthetic_uci() -> Vec<Input> {
    let dat = "\tf1\tf2\tclase\n1\t0.5\t-1\t1\n2\t2\t3\t0\n3\t-0.25\t1e-3\t1\n4\t0\t0\t0\n5\t1.5\t2\t2\n6\t-1\t-2\t1\n";
    let text = |m: &[(&str, &str)]| -> Vec<Member> {
        m.iter()
            .map(|(n, t)| Member::new(n, Format::Text, *t))
            .collect()
    };
    vec![
        Input {
            members: text(&[
                (
                    "toy.txt",
                    "n_entradas= 2\nn_clases= 3\nn_arquivos= 1\nfich1= toy_R.dat\nn_patrons1= 6\n",
                ),
                ("toy_R.dat", dat),
                ("conxuntos.dat", "0 2 4\n1 3 5\n"),
                (
                    "conxuntos_kfold.dat",
                    "0 1 2\n3 4 5\n3 4 5\n0 1 2\n0 2 4\n1 3 5\n1 3 5\n0 2 4\n",
                ),
            ]),
        },
        Input {
            members: text(&[
                (
                    "pair.txt",
                    "n_entradas= 2\nn_clases= 2\nn_arquivos= 2\nfich1= pair_train_R.dat\nn_patrons1= 2\nfich2= pair_test_R.dat\nn_patrons2= 1\n",
                ),
                (
                    "pair_train_R.dat",
                    "\tf1\tf2\tclase\n1\t0.5\t-1\t1\n2\t2\t3\t0\n",
                ),
                ("pair_test_R.dat", "\tf1\tf2\tclase\n1\t0\t1\t0\n"),
            ]),
        },
    ]
}

/// The UCI seed folders of the mirror (none without one).
fn mirror_uci(src: &Sources) -> Result<Vec<Input>> {
    let Some(mirror) = &src.mirror else {
        return Ok(Vec::new());
    };
    UCI_SEEDS
        .iter()
        .filter(|name| mirror.join("uci").join(name).is_dir())
        .map(|name| uci_folder(&mirror.join("uci").join(name), name))
        .collect()
}

/// The synthetic folders, then the mirror's.
pub fn uci(src: &Sources) -> Result<Vec<Input>> {
    let mut out = synthetic_uci();
    out.extend(mirror_uci(src)?);
    Ok(out)
}

/// Small CSV files (with and without a header, real-valued and class
/// labels), a seeded three-class blob set, and each UCI seed folder as CSV.
pub fn csv(src: &Sources) -> Result<Vec<Input>> {
    let mut texts: Vec<String> = vec![
        "a,b,label\n1,2,3\n4,5.5,-6\n".into(),
        "1,2,3\n4,5,6\n".into(),
        "p,q,y\n0.1,-2.5e-17,1\n1e300,7,-1\n3,4,1\n-5,6,-1\n".into(),
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut blobs = String::from("x1,x2,class\n");
    for i in 0..30 {
        let c = i % 3;
        blobs.push_str(&format!(
            "{},{},{c}\n",
            c as f64 + rng.random::<f64>(),
            rng.random::<f64>() - c as f64
        ));
    }
    texts.push(blobs);
    for folder in mirror_uci(src)? {
        let [info, dat, ..] = folder.members.as_slice() else {
            continue;
        };
        let origin = &dat.name;
        let info =
            pathreg_data::uci::parse_info(&String::from_utf8_lossy(&info.bytes), &info.name)?;
        let table = pathreg_data::uci::parse_dat(
            &String::from_utf8_lossy(&dat.bytes),
            origin,
            info.n_inputs,
            info.n_classes,
        )?;
        let (y, _) = pathreg_data::uci::encode_labels(&table.classes, info.n_classes);
        let data = pathreg_data::Dataset {
            feature_names: table.feature_names,
            x: table.x,
            y,
        };
        texts.push(data.to_csv());
    }
    Ok(texts
        .into_iter()
        .map(|t| one("data.csv", Format::Text, t))
        .collect())
}

/// An IDX file of unsigned bytes.
fn idx_file(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// The first `count` items of a real gzip-compressed IDX file, as an IDX file
/// with its count rewritten.
fn idx_prefix(path: &Path, count: u32) -> Result<Vec<u8>> {
    let mut reader = flate2::read::GzDecoder::new(std::fs::File::open(path)?);
    let mut header = [0u8; 4];
    reader.read_exact(&mut header)?;
    let ndim = usize::from(header[3]);
    let mut dims = vec![0u32; ndim];
    for d in &mut dims {
        let mut w = [0u8; 4];
        reader.read_exact(&mut w)?;
        *d = u32::from_be_bytes(w);
    }
    if dims.is_empty() || dims[0] < count {
        bail!("{}: fewer than {count} items", path.display());
    }
    dims[0] = count;
    let len: usize = dims.iter().map(|&d| d as usize).product();
    let mut data = vec![0u8; len];
    reader.read_exact(&mut data)?;
    Ok(idx_file(&dims, &data))
}

/// Image and label pairs: a synthetic one, then MNIST's and Fashion-MNIST's
/// first images (64 and 32 training, 16 test) from the mirror.
fn idx_pairs(src: &Sources) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = vec![(
        idx_file(&[3, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]),
        idx_file(&[3], &[3, 9, 0]),
    )];
    let Some(mirror) = &src.mirror else {
        return Ok(out);
    };
    for (dir, split, count) in [
        ("mnist", "train", 64),
        ("mnist", "t10k", 16),
        ("fashion-mnist", "train", 32),
        ("fashion-mnist", "t10k", 16),
    ] {
        let images = mirror
            .join(dir)
            .join(format!("{split}-images-idx3-ubyte.gz"));
        let labels = mirror
            .join(dir)
            .join(format!("{split}-labels-idx1-ubyte.gz"));
        if images.is_file() && labels.is_file() {
            out.push((idx_prefix(&images, count)?, idx_prefix(&labels, count)?));
        }
    }
    Ok(out)
}

/// IDX image and label pairs, uncompressed.
pub fn idx(src: &Sources) -> Result<Vec<Input>> {
    Ok(idx_pairs(src)?
        .into_iter()
        .map(|(images, labels)| Input {
            members: vec![
                Member::new("images.idx", Format::Idx, images),
                Member::new("labels.idx", Format::Idx, labels),
            ],
        })
        .collect())
}

/// `raw` gzip-compressed as the canonical files are: a file name, a fixed time.
fn gz(raw: &[u8], name: &str) -> Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .filename(name)
        .mtime(848_331_386)
        .write(Vec::new(), flate2::Compression::default());
    encoder.write_all(raw)?;
    Ok(encoder.finish()?)
}

/// IDX image and label pairs, gzip-compressed.
pub fn idx_gz(src: &Sources) -> Result<Vec<Input>> {
    idx_pairs(src)?
        .into_iter()
        .map(|(images, labels)| {
            Ok(Input {
                members: vec![
                    Member::new(
                        "images.idx.gz",
                        Format::IdxGz,
                        gz(&images, "images.idx3-ubyte")?,
                    ),
                    Member::new(
                        "labels.idx.gz",
                        Format::IdxGz,
                        gz(&labels, "labels.idx1-ubyte")?,
                    ),
                ],
            })
        })
        .collect()
}

/// `count` CIFAR-10 records, labels cycling from `first`, seeded pixels.
fn cifar_records(count: usize, first: u8, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count * pathreg_data::cifar::RECORD);
    for i in 0..count {
        out.push((first + i as u8) % 10);
        let mut pixels = vec![0u8; pathreg_data::cifar::PIXELS];
        rng.fill_bytes(&mut pixels);
        out.extend_from_slice(&pixels);
    }
    out
}

/// Synthetic batches of 1, 2 and 3 records (the real CIFAR-10 is not in the mirror).
pub fn cifar(_: &Sources) -> Result<Vec<Input>> {
    Ok((1..=3)
        .map(|n| {
            one(
                "data_batch_1.bin",
                Format::Cifar,
                cifar_records(n, n as u8, n as u64),
            )
        })
        .collect())
}

/// Appends a regular file.
fn append_file(builder: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    builder.append_data(&mut header, path, data)?;
    Ok(())
}

/// Appends a folder, symbolic or hard link entry.
fn append_special(
    builder: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    path: &str,
    target: &str,
) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(0);
    header.set_mode(0o755);
    if kind.is_dir() {
        builder.append_data(&mut header, path, std::io::empty())?;
    } else {
        builder.append_link(&mut header, path, target)?;
    }
    Ok(())
}

/// The layout of `cifar-10-binary.tar.gz` with batches of [`CIFAR_RECORDS`] records.
fn cifar_archive(prefix: &str, seed: u64) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    append_special(
        &mut builder,
        tar::EntryType::Directory,
        &format!("{prefix}cifar-10-batches-bin/"),
        "",
    )?;
    append_file(
        &mut builder,
        &format!("{prefix}cifar-10-batches-bin/batches.meta.txt"),
        b"airplane\nautomobile\n",
    )?;
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for (i, name) in names.iter().enumerate() {
        let records = cifar_records(CIFAR_RECORDS, i as u8, seed + i as u64);
        append_file(
            &mut builder,
            &format!("{prefix}cifar-10-batches-bin/{name}"),
            &records,
        )?;
    }
    gz(&builder.into_inner()?, "cifar-10-binary.tar")
}

/// CIFAR-10 archives, with and without a leading `./`.
pub fn cifar_tar(_: &Sources) -> Result<Vec<Input>> {
    Ok(vec![
        one(
            "cifar-10-binary.tar.gz",
            Format::TarGz,
            cifar_archive("", 1)?,
        ),
        one(
            "cifar-10-binary.tar.gz",
            Format::TarGz,
            cifar_archive("./", 2)?,
        ),
    ])
}

/// Archives laid out like the UCI collection's `data.tar.gz` (real files
/// from the mirror when present), with folders, safe symbolic and hard
/// links, a long (GNU) name and a `./` entry; and a CIFAR-10 archive.
pub fn archive(src: &Sources) -> Result<Vec<Input>> {
    let mut folders = synthetic_uci();
    folders.extend(mirror_uci(src)?.into_iter().take(2));
    let mut out = Vec::new();
    for folder in &folders {
        let mut builder = tar::Builder::new(Vec::new());
        append_special(&mut builder, tar::EntryType::Directory, "./", "")?;
        append_special(&mut builder, tar::EntryType::Directory, "data/", "")?;
        let first = &folder.members[0].name;
        for m in &folder.members {
            append_file(&mut builder, &format!("data/set/{}", m.name), &m.bytes)?;
        }
        append_special(
            &mut builder,
            tar::EntryType::Symlink,
            "data/set/link",
            first,
        )?;
        append_special(
            &mut builder,
            tar::EntryType::Link,
            "data/hard",
            &format!("data/set/{first}"),
        )?;
        append_file(
            &mut builder,
            &format!("data/{}/long.txt", "long-name-".repeat(12)),
            b"long\n",
        )?;
        out.push(one(
            "data.tar.gz",
            Format::TarGz,
            gz(&builder.into_inner()?, "data.tar")?,
        ));
    }
    out.push(one("data.tar.gz", Format::TarGz, cifar_archive("", 3)?));
    Ok(out)
}

/// A lock file of `experiments` with at most `rows` rows each.
fn reduced_lock(lock: &LockFile, experiments: usize, rows: usize) -> LockFile {
    LockFile {
        experiments: lock
            .experiments
            .iter()
            .take(experiments)
            .map(|(name, e)| {
                let mut e = e.clone();
                e.rows.truncate(rows);
                (name.clone(), e)
            })
            .collect(),
    }
}

/// The committed `outputs/results.lock` (cut to a few rows per experiment)
/// or, without one, a synthetic lock.
fn locks(src: &Sources) -> Result<Vec<LockFile>> {
    let committed = LockFile::read(&src.root.join("outputs/results.lock"))?;
    let mut out = Vec::new();
    if committed.experiments.is_empty() {
        let row = RowHash {
            label: "convex K=3".into(),
            exact: "ab".repeat(32),
            rounded: "cd".repeat(32),
            objective: "1.23456e-1".into(),
        };
        let mut lock = LockFile::default();
        lock.experiments.insert(
            "tiny".into(),
            LockedExperiment {
                manifest: "experiments/tiny.toml".into(),
                exact: "01".repeat(32),
                rounded: "02".repeat(32),
                rounded_digits: 6,
                rows: vec![row.clone(), row],
            },
        );
        out.push(lock);
    } else {
        out.push(reduced_lock(&committed, usize::MAX, 2));
        out.push(reduced_lock(&committed, 1, 3));
    }
    out.push(LockFile::default());
    Ok(out)
}

/// Lock files as `LockFile::write` writes them.
pub fn lock(src: &Sources) -> Result<Vec<Input>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("results.lock");
    locks(src)?
        .iter()
        .map(|lock| {
            lock.write(&path)?;
            Ok(one("results.lock", Format::Json, read(&path)?))
        })
        .collect()
}

/// Payloads of every decoder: exact and sampled arrangement sets of small
/// data, a spectrum-shaped cell, lock files.
fn payloads(src: &Sources) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let data = pathreg_data::csv_file::parse_csv(
        "0.5,1,1\n-1,0.25,-1\n2,-0.5,1\n0.1,0.9,-1\n-0.7,-0.3,1\n1.5,1.2,-1\n",
        "points.csv",
    )?;
    let mut out = Vec::new();
    for m1 in [1, 2] {
        out.push((
            "arrangements",
            ArrangementSet::enumerate_exact(data.x.view(), m1)?.to_bytes(),
        ));
    }
    let sampled = ArrangementSet::sample(data.x.view(), 3, 8, &mut ChaCha8Rng::seed_from_u64(5))?;
    out.push(("arrangements", sampled.to_bytes()));
    let spectrum: SpectrumShaped = (
        16,
        4,
        vec![3.25, 1.5, 0.5, 1e-3],
        vec![("uci/balloons/balloons_R.dat".into(), "ab".repeat(32))],
        0.01,
        0.002,
    );
    out.push(("spectrum", bincode::serialize(&spectrum)?));
    for lock in locks(src)? {
        out.push(("lock", bincode::serialize(&lock)?));
    }
    Ok(out)
}

/// Every payload twice: as `<decoder>.payload`, and framed by a real cache as
/// `<decoder>.entry` under the key the cache target reads it at (an entry
/// proves its key, so it must be framed for the place it is put).
pub fn cache(src: &Sources) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    for (decoder, payload) in payloads(src)? {
        let dir = tempfile::tempdir()?;
        let cache = Cache::new(Some(dir.path().to_path_buf()));
        let key = CacheKey::new("fuzz", 1, &decoder, &[]);
        cache.get_or_compute(&key, Vec::clone, |_| None, || Ok(payload.clone()))?;
        let entry = cache
            .entry_path(&key)
            .context("the seed cache is enabled")?;
        out.push(one(
            &format!("{decoder}.entry"),
            Format::Binary,
            read(&entry)?,
        ));
        out.push(one(&format!("{decoder}.payload"), Format::Binary, payload));
    }
    Ok(out)
}
