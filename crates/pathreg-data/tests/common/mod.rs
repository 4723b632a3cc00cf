//! Test helpers: a scriptable HTTP/1.1 server on 127.0.0.1 and tar.gz builders.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Req {
    /// Request number, from 0.
    pub n: usize,
    /// The path (`/x.gz`).
    pub path: String,
    /// The start of a `Range: bytes=<start>-` header.
    pub range: Option<u64>,
}

/// What to answer.
pub enum Reply {
    /// A bodiless status.
    Status(u16),
    /// A response.
    Body {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        /// Declared Content-Length (default: body length).
        content_length: Option<u64>,
        /// Send only this many body bytes, then drop the connection.
        cut_after: Option<usize>,
        /// Sleep before sending the headers.
        delay_headers: Duration,
        /// Sleep after the first body chunk (of `cut_after` or 1 KiB).
        stall: Duration,
    },
}

impl Reply {
    pub fn ok(body: &[u8]) -> Reply {
        Reply::Body {
            status: 200,
            headers: vec![],
            body: body.to_vec(),
            content_length: None,
            cut_after: None,
            delay_headers: Duration::ZERO,
            stall: Duration::ZERO,
        }
    }
    pub fn cut(body: &[u8], after: usize) -> Reply {
        match Reply::ok(body) {
            Reply::Body {
                status,
                headers,
                body,
                content_length,
                delay_headers,
                stall,
                ..
            } => Reply::Body {
                status,
                headers,
                body,
                content_length,
                cut_after: Some(after),
                delay_headers,
                stall,
            },
            r => r,
        }
    }
}

/// Serves `body`, honouring `Range: bytes=<start>-` with 206.
pub fn serve_range(body: &[u8], req: &Req) -> Reply {
    match req.range {
        Some(start) if (start as usize) < body.len() => Reply::Body {
            status: 206,
            headers: vec![(
                "Content-Range".into(),
                format!("bytes {start}-{}/{}", body.len() - 1, body.len()),
            )],
            body: body[start as usize..].to_vec(),
            content_length: None,
            cut_after: None,
            delay_headers: Duration::ZERO,
            stall: Duration::ZERO,
        },
        _ => Reply::ok(body),
    }
}

pub type Handler = dyn Fn(&Req) -> Reply + Send + Sync;

/// A server on 127.0.0.1 with a random port; it lives until the test process ends.
pub struct Server {
    pub base: String,
    log: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    pub fn start(handler: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log2 = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                let log = log2.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &*handler, &log);
                });
            }
        });
        Server { base, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.log.lock().unwrap().clone()
    }
}

fn handle(mut stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Req>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let range = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if !k.trim().eq_ignore_ascii_case("range") {
            return None;
        }
        v.trim()
            .strip_prefix("bytes=")?
            .trim_end_matches('-')
            .parse()
            .ok()
    });
    let req = {
        let mut log = log.lock().unwrap();
        let req = Req {
            n: log.len(),
            path,
            range,
        };
        log.push(req.clone());
        req
    };
    match handler(&req) {
        Reply::Status(code) => {
            write!(
                stream,
                "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
        }
        Reply::Body {
            status,
            headers,
            body,
            content_length,
            cut_after,
            delay_headers,
            stall,
        } => {
            std::thread::sleep(delay_headers);
            let len = content_length.unwrap_or(body.len() as u64);
            let mut h =
                format!("HTTP/1.1 {status} X\r\nContent-Length: {len}\r\nConnection: close\r\n");
            for (k, v) in headers {
                h.push_str(&format!("{k}: {v}\r\n"));
            }
            h.push_str("\r\n");
            stream.write_all(h.as_bytes())?;
            let first = cut_after.unwrap_or(1024).min(body.len());
            stream.write_all(&body[..first])?;
            stream.flush()?;
            std::thread::sleep(stall);
            if cut_after.is_none() {
                stream.write_all(&body[first..])?;
            }
            stream.flush()?;
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A tar member for [`tar_gz`].
pub enum Member<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// Builds a .tar.gz with raw member names (so unsafe names can be written).
pub fn tar_gz(members: &[Member<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for m in members {
        let mut header = tar::Header::new_old();
        let (name, data, kind, link): (&str, &[u8], tar::EntryType, Option<&str>) = match m {
            Member::File(n, d) => (n, d, tar::EntryType::Regular, None),
            Member::Symlink(n, t) => (n, &[], tar::EntryType::Symlink, Some(t)),
            Member::Hardlink(n, t) => (n, &[], tar::EntryType::Link, Some(t)),
        };
        let raw = header.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(t) = link {
            raw.linkname[..t.len()].copy_from_slice(t.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// The mirror folder for real-data tests: `PATHREG_MIRROR` (a folder), else
/// `<workspace>/../shared/datasets`; `None` (with a printed note) when neither exists.
pub fn mirror_dir() -> Option<PathBuf> {
    let candidate = std::env::var_os("PATHREG_MIRROR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets")
        });
    if candidate.is_dir() {
        Some(candidate)
    } else {
        eprintln!(
            "note: skipping a real-data test: no mirror folder at {} (set PATHREG_MIRROR)",
            candidate.display()
        );
        None
    }
}
