//! Harness for probity's end-to-end tests: real collector and agent processes on
//! 127.0.0.1, small local targets (HTTP, TCP), and a minimal HTTP client, all with the
//! standard library so the harness itself cannot hide a bug behind a framework.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the workspace").to_path_buf()
}

/// A built binary of the workspace (target/<profile>/NAME).
pub fn bin(name: &str) -> PathBuf {
    // The test binary lives in target/<profile>/deps; the binaries one level up.
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(path.exists(), "{} is not built; run `cargo build --workspace` first", path.display());
    path
}

/// A port that was free a moment ago (for configs that must name their listen address).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `check` until it returns `Some` or `timeout` passes (generous: CI machines are slow).
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

/// An HTTP response as the tests see it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`; `None` when the server is not there.
pub fn http(method: &str, addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let mut body = raw[head_end + 4..].to_vec();
    if headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Some(Reply { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

/// A collector process, killed when dropped.
pub struct Collector {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl Collector {
    /// Starts `probity-collector` with `config` (which must listen on `addr`), in a fresh
    /// temporary directory (its working directory, so `data_dir = "data"` lands there).
    pub fn start(config: &str, addr: SocketAddr) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        Collector::start_in(dir, config, addr)
    }

    pub fn start_in(dir: tempfile::TempDir, config: &str, addr: SocketAddr) -> Collector {
        let config_path = dir.path().join("collector.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("collector.log")).unwrap();
        let child = Command::new(bin("probity-collector"))
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut c = Collector { child, addr, dir, config_path };
        c.wait_ready();
        c
    }

    pub fn wait_ready(&mut self) {
        let addr = self.addr;
        let log = self.dir.path().join("collector.log");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if http("GET", addr, "/readyz", &[], b"").is_some_and(|r| r.status == 200) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("collector exited with {status}: {}", std::fs::read_to_string(&log).unwrap_or_default());
            }
            assert!(
                Instant::now() < deadline,
                "collector not ready: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        http("GET", self.addr, path, &[], b"").unwrap_or_else(|| panic!("GET {path}: no answer"))
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        http("GET", self.addr, path, headers, b"").unwrap_or_else(|| panic!("GET {path}: no answer"))
    }

    pub fn post_json(&self, path: &str, token: &str, body: &serde_json::Value) -> Reply {
        let auth = format!("Bearer {token}");
        let bytes = serde_json::to_vec(body).unwrap();
        http("POST", self.addr, path, &[("Authorization", &auth), ("Content-Type", "application/json")], &bytes)
            .unwrap_or_else(|| panic!("POST {path}: no answer"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("collector.log")).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An agent process, killed when dropped.
pub struct Agent {
    pub child: Child,
    pub dir: tempfile::TempDir,
}

impl Agent {
    pub fn start(id: &str, token: &str, collector: SocketAddr) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "id = \"{id}\"\ncollector = \"http://{collector}\"\ntoken = \"{token}\"\nspool_dir = \"{}\"\n",
            dir.path().join("spool").display()
        );
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
        let child = Command::new(bin("probity-agent"))
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Agent { child, dir }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A local HTTP target whose status can be changed while it runs; counts requests.
pub struct HttpTarget {
    pub addr: SocketAddr,
    pub status: Arc<AtomicU16>,
    pub requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl HttpTarget {
    pub fn start(status: u16) -> HttpTarget {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let status = Arc::new(AtomicU16::new(status));
        let requests = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, r, st) = (status.clone(), requests.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let (s, r) = (s.clone(), r.clone());
                thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut line = String::new();
                    // Read the request head; bodies are not used by these targets.
                    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                        if line == "\r\n" || line == "\n" {
                            break;
                        }
                        line.clear();
                    }
                    r.fetch_add(1, Ordering::SeqCst);
                    let code = s.load(Ordering::SeqCst);
                    let body = if code < 400 { "ok\n" } else { "failing\n" };
                    let _ = write!(
                        conn,
                        "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        HttpTarget { addr, status, requests, stop }
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

impl Drop for HttpTarget {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Writes `bytes` to a file in `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// One HTTPS GET over rustls, trusting only `ca_pem`; `None` when the server is not there
/// or the handshake fails.
pub fn https_get(addr: SocketAddr, server_name: &str, path: &str, ca_pem: &[u8]) -> Option<Reply> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in <rustls::pki_types::CertificateDer as rustls::pki_types::pem::PemObject>::pem_slice_iter(ca_pem) {
        roots.add(cert.ok()?).ok()?;
    }
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).ok()?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    // A peer closing without close_notify still leaves a complete response behind.
    let _ = tls.read_to_end(&mut raw);
    parse_reply(&raw)
}
