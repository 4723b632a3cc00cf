//! The downloader against a scripted HTTP server on 127.0.0.1: every fault of the issue.

mod common;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Member, Reply, Server, bytes, serve_range, tar_gz};
use pathreg_data::DataError;
use pathreg_data::download::{
    Downloader, FetchOptions, Mirror, Obtained, Progress, no_progress, sha256_hex,
};
use pathreg_data::manifest::{FileEntry, Manifest, Pin};

fn entry(url: &str, body: &[u8]) -> FileEntry {
    FileEntry {
        directory: "toy".into(),
        path: "data.bin".into(),
        url: Some(url.to_string()),
        pin: Pin {
            size: body.len() as u64,
            sha256: sha256_hex(body),
        },
        format: "bin".into(),
        provenance: "test".into(),
    }
}

fn options(dir: &Path) -> FetchOptions {
    FetchOptions {
        timeout: Duration::from_secs(3),
        attempts: 3,
        backoff: Duration::from_millis(10),
        ..FetchOptions::new(dir)
    }
}

/// Files under `dir` other than lock files.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if !p.to_string_lossy().ends_with(".lock") {
            out.push(p.display().to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn downloads_verifies_places_and_does_not_download_twice() {
    let body = bytes(300_000, 1);
    let b = body.clone();
    let server = Server::start(move |_| Reply::ok(&b));
    let tmp = tempfile::tempdir().unwrap();
    let dl = Downloader::new(options(tmp.path()));
    let e = entry(&server.url("/data.bin"), &body);
    let last = Mutex::new((0u64, 0u64));
    let progress = |p: Progress<'_>| {
        if let Progress::Bytes { done, total, .. } = p {
            *last.lock().unwrap() = (done, total);
        }
    };
    let got = dl.fetch(&e, &progress).unwrap();
    assert_eq!(got.obtained, Obtained::Downloaded(e.url.clone().unwrap()));
    assert_eq!(std::fs::read(&got.path).unwrap(), body);
    assert_eq!(*last.lock().unwrap(), (300_000, 300_000));
    assert_eq!(files(tmp.path()), [got.path.display().to_string()]);
    let again = dl.fetch(&e, &no_progress).unwrap();
    assert_eq!(again.obtained, Obtained::AlreadyPresent);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_corrupt_present_file_is_replaced() {
    let body = bytes(5000, 2);
    let b = body.clone();
    let server = Server::start(move |_| Reply::ok(&b));
    let tmp = tempfile::tempdir().unwrap();
    let dl = Downloader::new(options(tmp.path()));
    let e = entry(&server.url("/d"), &body);
    let dest = dl.destination(&e);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(&dest, b"not it").unwrap();
    assert!(matches!(
        dl.fetch(&e, &no_progress).unwrap().obtained,
        Obtained::Downloaded(_)
    ));
    assert_eq!(std::fs::read(&dest).unwrap(), body);
}

#[test]
fn wrong_sha256_is_rejected_naming_url_and_both_hashes() {
    let body = bytes(10_000, 3);
    let other = bytes(10_000, 4);
    let o = other.clone();
    let server = Server::start(move |_| Reply::ok(&o));
    let tmp = tempfile::tempdir().unwrap();
    let dl = Downloader::new(options(tmp.path()));
    let e = entry(&server.url("/wrong"), &body);
    let err = dl.fetch(&e, &no_progress).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DataError::HashMismatch { .. }), "{text}");
    assert!(text.contains(&server.url("/wrong")), "{text}");
    assert!(text.contains(&sha256_hex(&body)), "{text}");
    assert!(text.contains(&sha256_hex(&other)), "{text}");
    assert!(files(tmp.path()).is_empty(), "{:?}", files(tmp.path()));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn wrong_size_is_rejected_naming_url_and_both_sizes() {
    let body = bytes(10_000, 5);
    for (served, actual) in [(bytes(4_000, 6), 4000u64), (bytes(12_000, 6), 12000)] {
        let s = served.clone();
        let server = Server::start(move |_| Reply::ok(&s));
        let tmp = tempfile::tempdir().unwrap();
        let dl = Downloader::new(options(tmp.path()));
        let err = dl
            .fetch(&entry(&server.url("/size"), &body), &no_progress)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, DataError::SizeMismatch { expected: 10000, actual: a, .. } if a == actual),
            "{text}"
        );
        assert!(
            text.contains(&server.url("/size")) && text.contains("10000"),
            "{text}"
        );
        assert!(files(tmp.path()).is_empty());
        assert_eq!(server.requests().len(), 1, "a size mismatch is not retried");
    }
}

#[test]
fn a_body_longer_than_declared_is_cut_off() {
    // No Content-Length check can catch this one: the header lies, the stream is longer.
    let body = bytes(10_000, 7);
    let long = bytes(20_000, 7);
    let server = Server::start(move |_| Reply::Body {
        status: 200,
        headers: vec![],
        body: long.clone(),
        content_length: Some(20_000),
        cut_after: None,
        delay_headers: Duration::ZERO,
        stall: Duration::ZERO,
    });
    let tmp = tempfile::tempdir().unwrap();
    let dl = Downloader::new(options(tmp.path()));
    let err = dl
        .fetch(&entry(&server.url("/l"), &body), &no_progress)
        .unwrap_err();
    assert!(
        matches!(
            err,
            DataError::SizeMismatch {
                expected: 10000,
                ..
            }
        ),
        "{err}"
    );
    assert!(files(tmp.path()).is_empty());
}

#[test]
fn a_truncated_body_is_retried_then_reported_with_sizes() {
    // The server declares the full length but always closes halfway, ignoring Range.
    let body = bytes(50_000, 8);
    let b = body.clone();
    let server = Server::start(move |_| Reply::cut(&b, 20_000));
    let tmp = tempfile::tempdir().unwrap();
    let dl = Downloader::new(options(tmp.path()));
    let e = entry(&server.url("/trunc"), &body);
    let err = dl.fetch(&e, &no_progress).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&server.url("/trunc")), "{text}");
    assert!(text.contains("of 50000 bytes"), "{text}");
    assert!(!dl.destination(&e).exists());
    assert_eq!(server.requests().len(), 3);
    // The partial file is kept (not in place) for a later resume; nothing else.
    let left = files(tmp.path());
    assert!(left.iter().all(|f| f.ends_with(".part")), "{left:?}");
}

#[test]
fn http_404_fails_at_once() {
    let server = Server::start(|_| Reply::Status(404));
    let tmp = tempfile::tempdir().unwrap();
    let dl = Downloader::new(options(tmp.path()));
    let err = dl
        .fetch(&entry(&server.url("/missing"), b"x"), &no_progress)
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, DataError::HttpStatus { status: 404, .. }),
        "{text}"
    );
    assert!(text.contains(&server.url("/missing")), "{text}");
    assert_eq!(server.requests().len(), 1);
    assert!(files(tmp.path()).is_empty());
}

#[test]
fn http_500_is_retried_with_backoff_then_reported() {
    let server = Server::start(|_| Reply::Status(500));
    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    o.backoff = Duration::from_millis(50);
    let dl = Downloader::new(o);
    let start = Instant::now();
    let err = dl
        .fetch(&entry(&server.url("/boom"), b"x"), &no_progress)
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&server.url("/boom")) && text.contains("500"),
        "{text}"
    );
    assert_eq!(server.requests().len(), 3);
    // Backoff 50 ms then 100 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(150),
        "{:?}",
        start.elapsed()
    );
    assert!(files(tmp.path()).is_empty());
}

#[test]
fn a_server_that_fails_then_succeeds_is_retried() {
    let body = bytes(20_000, 9);
    let b = body.clone();
    let server = Server::start(move |r| match r.n {
        0 => Reply::Status(503),
        1 => Reply::Status(500),
        _ => Reply::ok(&b),
    });
    let tmp = tempfile::tempdir().unwrap();
    let dl = Downloader::new(options(tmp.path()));
    let got = dl
        .fetch(&entry(&server.url("/flaky"), &body), &no_progress)
        .unwrap();
    assert_eq!(std::fs::read(got.path).unwrap(), body);
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn a_dropped_connection_is_resumed_with_a_range_request() {
    let body = bytes(200_000, 10);
    let b = body.clone();
    let server = Server::start(move |r| match r.n {
        0 => Reply::cut(&b, 80_000),
        _ => serve_range(&b, r),
    });
    let tmp = tempfile::tempdir().unwrap();
    let dl = Downloader::new(options(tmp.path()));
    let got = dl
        .fetch(&entry(&server.url("/drop"), &body), &no_progress)
        .unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), body);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].range, None);
    assert_eq!(
        reqs[1].range,
        Some(80_000),
        "resumed from the first missing byte"
    );
    assert_eq!(files(tmp.path()), [got.path.display().to_string()]);
}

#[test]
fn a_server_ignoring_range_restarts_from_zero() {
    let body = bytes(100_000, 11);
    let b = body.clone();
    let server = Server::start(move |r| match r.n {
        0 => Reply::cut(&b, 30_000),
        _ => Reply::ok(&b),
    });
    let tmp = tempfile::tempdir().unwrap();
    let dl = Downloader::new(options(tmp.path()));
    let got = dl
        .fetch(&entry(&server.url("/norange"), &body), &no_progress)
        .unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), body);
    assert_eq!(server.requests()[1].range, Some(30_000));
}

#[test]
fn a_partial_file_from_an_interrupted_run_is_resumed() {
    let body = bytes(60_000, 12);
    let b = body.clone();
    let server = Server::start(move |r| serve_range(&b, r));
    let tmp = tempfile::tempdir().unwrap();
    let dl = Downloader::new(options(tmp.path()));
    let e = entry(&server.url("/resume"), &body);
    let dest = dl.destination(&e);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(dest.with_file_name(".data.bin.part"), &body[..25_000]).unwrap();
    dl.fetch(&e, &no_progress).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert_eq!(server.requests()[0].range, Some(25_000));
}

#[test]
fn a_slow_server_times_out() {
    let body = bytes(10_000, 13);
    // One server stalls before the headers, one in the middle of the body.
    let cases: [(Duration, Duration); 2] = [
        (Duration::from_secs(5), Duration::ZERO),
        (Duration::ZERO, Duration::from_secs(5)),
    ];
    for (delay_headers, stall) in cases {
        let b = body.clone();
        let server = Server::start(move |_| Reply::Body {
            status: 200,
            headers: vec![],
            body: b.clone(),
            content_length: None,
            cut_after: None,
            delay_headers,
            stall,
        });
        let tmp = tempfile::tempdir().unwrap();
        let mut o = options(tmp.path());
        o.timeout = Duration::from_millis(300);
        o.attempts = 2;
        let dl = Downloader::new(o);
        let e = entry(&server.url("/slow"), &body);
        let start = Instant::now();
        let err = dl.fetch(&e, &no_progress).unwrap_err();
        let text = err.to_string();
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert!(text.contains(&server.url("/slow")), "{text}");
        assert!(
            text.contains("timed out") || text.contains("connection lost"),
            "{text}"
        );
        assert!(!dl.destination(&e).exists());
    }
}

#[test]
fn two_fetchers_of_one_file_give_one_verified_file() {
    let body = bytes(400_000, 14);
    let b = body.clone();
    let server = Server::start(move |_| Reply::Body {
        status: 200,
        headers: vec![],
        body: b.clone(),
        content_length: None,
        cut_after: None,
        delay_headers: Duration::ZERO,
        stall: Duration::from_millis(300),
    });
    let tmp = tempfile::tempdir().unwrap();
    let e = entry(&server.url("/both"), &body);
    let downloaded = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                // Separate downloaders: separate lock-file handles, as in two processes.
                let dl = Downloader::new(options(tmp.path()));
                let got = dl.fetch(&e, &no_progress).unwrap();
                if matches!(got.obtained, Obtained::Downloaded(_)) {
                    downloaded.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(downloaded.load(Ordering::SeqCst), 1);
    assert_eq!(server.requests().len(), 1);
    let dest = Downloader::new(options(tmp.path())).destination(&e);
    assert_eq!(std::fs::read(dest).unwrap(), body);
}

#[test]
fn two_processes_fetching_one_file_give_one_verified_file() {
    // The same with real processes: this test binary re-runs itself as a child.
    if let Ok(url) = std::env::var("PATHREG_TEST_CHILD_URL") {
        let dir = std::env::var("PATHREG_TEST_CHILD_DIR").unwrap();
        let body = bytes(400_000, 15);
        let dl = Downloader::new(options(Path::new(&dir)));
        dl.fetch(&entry(&url, &body), &no_progress).unwrap();
        return;
    }
    let body = bytes(400_000, 15);
    let b = body.clone();
    let server = Server::start(move |_| Reply::Body {
        status: 200,
        headers: vec![],
        body: b.clone(),
        content_length: None,
        cut_after: None,
        delay_headers: Duration::ZERO,
        stall: Duration::from_millis(300),
    });
    let tmp = tempfile::tempdir().unwrap();
    let url = server.url("/proc");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "two_processes_fetching_one_file_give_one_verified_file",
                ])
                .env("PATHREG_TEST_CHILD_URL", &url)
                .env("PATHREG_TEST_CHILD_DIR", tmp.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(server.requests().len(), 1);
    let dest = tmp.path().join("toy/data.bin");
    assert_eq!(std::fs::read(dest).unwrap(), body);
    assert_eq!(files(tmp.path()).len(), 1);
}

#[test]
fn a_mirror_folder_is_used_first_and_a_bad_mirror_file_falls_back() {
    let body = bytes(8_000, 16);
    let b = body.clone();
    let server = Server::start(move |_| Reply::ok(&b));
    let mirror = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(mirror.path().join("toy")).unwrap();
    std::fs::write(mirror.path().join("toy/data.bin"), &body).unwrap();
    let e = entry(&server.url("/canonical"), &body);

    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    o.mirror = Some(Mirror::Dir(mirror.path().to_path_buf()));
    let got = Downloader::new(o.clone()).fetch(&e, &no_progress).unwrap();
    assert_eq!(
        got.obtained,
        Obtained::Copied(mirror.path().join("toy/data.bin"))
    );
    assert_eq!(server.requests().len(), 0);

    // A corrupt mirror copy: reported, then the canonical URL is used.
    let mut bad = body.clone();
    bad[100] ^= 1;
    std::fs::write(mirror.path().join("toy/data.bin"), &bad).unwrap();
    let tmp2 = tempfile::tempdir().unwrap();
    o.data_dir = tmp2.path().to_path_buf();
    let got = Downloader::new(o.clone()).fetch(&e, &no_progress).unwrap();
    assert!(matches!(got.obtained, Obtained::Downloaded(_)));

    // Mirror only: the mirror's error names the path and both hashes.
    let tmp3 = tempfile::tempdir().unwrap();
    o.data_dir = tmp3.path().to_path_buf();
    o.canonical = false;
    let err = Downloader::new(o).fetch(&e, &no_progress).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DataError::HashMismatch { .. }), "{text}");
    assert!(
        text.contains("toy/data.bin") && text.contains(&sha256_hex(&bad)),
        "{text}"
    );
    assert!(files(tmp3.path()).is_empty());
}

#[test]
fn a_mirror_url_uses_the_mirror_layout() {
    let body = bytes(8_000, 17);
    let b = body.clone();
    let server = Server::start(move |r| {
        if r.path == "/m/toy/data.bin" {
            Reply::ok(&b)
        } else {
            Reply::Status(404)
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    o.mirror = Some(Mirror::parse(&server.url("/m/")));
    let e = entry("http://127.0.0.1:9/never", &body);
    let got = Downloader::new(o).fetch(&e, &no_progress).unwrap();
    assert_eq!(
        got.obtained,
        Obtained::Downloaded(server.url("/m/toy/data.bin"))
    );
}

/// A local port nobody listens on: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn a_mirror_url_that_refuses_connections_falls_through_at_once() {
    let body = bytes(8_000, 18);
    let b = body.clone();
    let server = Server::start(move |_| Reply::ok(&b));
    let e = entry(&server.url("/canonical"), &body);
    let tmp = tempfile::tempdir().unwrap();
    // Real retry settings: five attempts with 1 s, 2 s, 4 s, 8 s of backoff between them.
    let mut o = FetchOptions {
        timeout: Duration::from_secs(3),
        mirror: Some(Mirror::parse(&format!(
            "http://127.0.0.1:{}/m",
            closed_port()
        ))),
        ..FetchOptions::new(tmp.path())
    };
    let start = Instant::now();
    let got = Downloader::new(o.clone()).fetch(&e, &no_progress).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(got.obtained, Obtained::Downloaded(server.url("/canonical")));
    assert_eq!(server.requests().len(), 1);

    // The mirror alone: one attempt, reported as a connection failure.
    let tmp2 = tempfile::tempdir().unwrap();
    o.data_dir = tmp2.path().to_path_buf();
    o.canonical = false;
    let start = Instant::now();
    let err = Downloader::new(o).fetch(&e, &no_progress).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    let text = err.to_string();
    assert!(
        text.contains("gave up after 1 attempt ") && text.contains("cannot connect"),
        "{text}"
    );
    assert!(files(tmp2.path()).is_empty());
}

#[test]
fn a_mirror_url_that_drops_the_connection_is_still_retried() {
    let body = bytes(50_000, 19);
    let b = body.clone();
    let mirror = Server::start(move |r| match r.n {
        0 => Reply::cut(&b, 20_000),
        _ => serve_range(&b, r),
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut o = options(tmp.path());
    o.mirror = Some(Mirror::parse(&mirror.url("/m")));
    o.canonical = false;
    let e = entry("http://127.0.0.1:9/never", &body);
    let got = Downloader::new(o).fetch(&e, &no_progress).unwrap();
    assert_eq!(
        got.obtained,
        Obtained::Downloaded(mirror.url("/m/toy/data.bin"))
    );
    assert_eq!(mirror.requests().len(), 2);
}

#[test]
fn import_adopts_verified_files_and_rejects_bad_ones() {
    let body = bytes(3_000, 18);
    let e = entry("http://127.0.0.1:9/never", &body);
    let user = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dl = Downloader::new(options(tmp.path()));
    assert_eq!(dl.import(user.path(), &e, &no_progress).unwrap(), None);
    std::fs::write(user.path().join("data.bin"), b"wrong").unwrap();
    let err = dl.import(user.path(), &e, &no_progress).unwrap_err();
    assert!(matches!(err, DataError::SizeMismatch { .. }), "{err}");
    assert!(files(tmp.path()).is_empty());
    std::fs::write(user.path().join("data.bin"), &body).unwrap();
    let got = dl.import(user.path(), &e, &no_progress).unwrap().unwrap();
    assert_eq!(
        got.obtained,
        Obtained::Imported(user.path().join("data.bin"))
    );
    assert_eq!(std::fs::read(got.path).unwrap(), body);
}

fn archive_manifest(url: &str, info: &[u8], dat: &[u8]) -> Manifest {
    let text = format!(
        "[dataset]\nname = \"uci\"\ndirectory = \"uci\"\n\
         [archive]\nurl = \"{url}\"\nformat = \"tar.gz\"\npinned = false\n\
         [[file]]\npath = \"toy/toy.txt\"\nsize = {}\nsha256 = \"{}\"\nformat = \"uci-info\"\nprovenance = \"t\"\n\
         [[file]]\npath = \"toy/toy_R.dat\"\nsize = {}\nsha256 = \"{}\"\nformat = \"uci-data\"\nprovenance = \"t\"\n",
        info.len(),
        sha256_hex(info),
        dat.len(),
        sha256_hex(dat)
    );
    Manifest::parse(&text, "test.toml").unwrap()
}

#[test]
fn archive_members_are_extracted_and_verified_against_their_pins() {
    let info = b"n_entradas= 1\nn_clases= 2\nn_arquivos= 1\nfich1= toy_R.dat\n".to_vec();
    let dat = b"\tf1\tclase\n1\t0.5\t0\n2\t-0.5\t1\n".to_vec();
    let good = tar_gz(&[
        Member::File("data/toy/toy.txt", &info),
        Member::File("data/other/x.dat", b"ignored"),
        Member::File("data/toy/toy_R.dat", &dat),
    ]);
    let g = good.clone();
    let server = Server::start(move |_| Reply::ok(&g));
    let m = archive_manifest(&server.url("/data.tar.gz"), &info, &dat);
    let tmp = tempfile::tempdir().unwrap();
    let dl = Downloader::new(options(tmp.path()));
    let refs: Vec<&FileEntry> = m.files.iter().collect();
    let results = dl.fetch_all(&m, &refs, &no_progress);
    for r in &results {
        assert!(
            matches!(r.as_ref().unwrap().obtained, Obtained::Extracted(_)),
            "{r:?}"
        );
    }
    assert_eq!(
        std::fs::read(tmp.path().join("uci/toy/toy_R.dat")).unwrap(),
        dat
    );
    assert_eq!(files(tmp.path()).len(), 2, "the archive is not kept");
    // Present now: no second download.
    assert!(
        dl.fetch_all(&m, &refs, &no_progress)
            .iter()
            .all(|r| r.is_ok())
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn archive_members_that_do_not_match_or_are_missing_are_errors() {
    let info = b"n_entradas= 1\n".to_vec();
    let dat = b"\tf1\tclase\n1\t0.5\t0\n".to_vec();
    let mut bad_dat = dat.clone();
    bad_dat[5] = b'9';
    let archive = tar_gz(&[Member::File("data/toy/toy_R.dat", &bad_dat)]);
    let a = archive.clone();
    let server = Server::start(move |_| Reply::ok(&a));
    let m = archive_manifest(&server.url("/data.tar.gz"), &info, &dat);
    let tmp = tempfile::tempdir().unwrap();
    let dl = Downloader::new(options(tmp.path()));
    let refs: Vec<&FileEntry> = m.files.iter().collect();
    let results = dl.fetch_all(&m, &refs, &no_progress);
    let missing = results[0].as_ref().unwrap_err().to_string();
    assert!(
        missing.contains("no member ending in toy/toy.txt"),
        "{missing}"
    );
    let bad = results[1].as_ref().unwrap_err().to_string();
    assert!(
        bad.contains("SHA-256 mismatch") && bad.contains("data/toy/toy_R.dat"),
        "{bad}"
    );
    assert!(
        bad.contains(&sha256_hex(&dat)) && bad.contains(&sha256_hex(&bad_dat)),
        "{bad}"
    );
    assert!(files(tmp.path()).is_empty(), "{:?}", files(tmp.path()));
}

#[test]
fn an_archive_with_an_escaping_member_is_refused() {
    let info = b"n".to_vec();
    let dat = b"d".to_vec();
    for evil in [
        vec![Member::File("../evil.txt", b"x")],
        vec![Member::File("/tmp/evil.txt", b"x")],
        vec![Member::Symlink("data/toy/link", "../../../etc/passwd")],
        vec![Member::Hardlink("data/toy/link", "../etc/passwd")],
    ] {
        let mut members = evil;
        members.push(Member::File("data/toy/toy.txt", &info));
        let archive = tar_gz(&members);
        let server = Server::start(move |_| Reply::ok(&archive));
        let m = archive_manifest(&server.url("/data.tar.gz"), &info, &dat);
        let tmp = tempfile::tempdir().unwrap();
        let dl = Downloader::new(options(tmp.path()));
        let refs: Vec<&FileEntry> = m.files.iter().collect();
        let results = dl.fetch_all(&m, &refs, &no_progress);
        let text = results[0].as_ref().unwrap_err().to_string();
        assert!(text.contains("refusing member"), "{text}");
        assert!(files(tmp.path()).is_empty(), "{:?}", files(tmp.path()));
        assert!(!tmp.path().join("../evil.txt").exists());
    }
}
