//! A load generator for the webhook inbox over loopback: clients on their own threads post signed
//! GitHub webhook events over keep-alive HTTP/1.1 connections and time each answer. Used by the
//! intake benchmark and the crash test; it speaks only plain HTTP to the address it is given.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// The server.
    pub addr: SocketAddr,
    /// Connector name (a GitHub connector).
    pub connector: String,
    /// Its webhook secret.
    pub secret: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Events to send in all (the load is bounded).
    pub events: u64,
    /// Stop after this long even if events remain.
    pub max_duration: Duration,
    /// Delivery ids are `PREFIX-N`.
    pub delivery_prefix: String,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Delivery ids answered 202, in no particular order.
    pub acknowledged: Vec<String>,
    /// Requests answered with another status.
    pub refused: u64,
    /// Requests that got no answer (connection refused or reset).
    pub failed: u64,
    /// Time to each 202, in microseconds, sorted.
    pub latencies_us: Vec<u64>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl LoadReport {
    /// Acknowledged events per second.
    pub fn rate(&self) -> f64 {
        self.acknowledged.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q` (0..=1), in milliseconds.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// A GitHub `issues` event for issue `n`: a short design note, different for each n.
pub fn issue_event(n: u64) -> Vec<u8> {
    let body = format!(
        "The billing export service {n} sends customer invoices to the partner SFTP server \
         over the internet. Operators log in with a shared password."
    );
    serde_json::json!({
        "action": "opened",
        "issue": {
            "id": n,
            "number": n,
            "title": format!("Billing export {n}"),
            "body": body,
            "html_url": format!("https://example.invalid/acme/billing/issues/{n}"),
            "repository_url": "https://example.invalid/repos/acme/billing",
            "state": "open",
            "updated_at": "2026-12-01T10:00:00Z"
        },
        "repository": { "full_name": "acme/billing" }
    })
    .to_string()
    .into_bytes()
}

/// `sha256=HEX` of the body, as GitHub signs it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", crate::auth::hex(&mac.finalize().into_bytes()))
}

/// Runs the plan and reports; `stop` ends it early.
pub fn run(plan: &LoadPlan, stop: &AtomicBool) -> LoadReport {
    run_counting(plan, stop, &AtomicU64::new(0))
}

/// Like [`run`], and adds one to `acked` on each 202 as it arrives, so that a caller can act on
/// progress (the crash test kills the server once enough events are acknowledged).
pub fn run_counting(plan: &LoadPlan, stop: &AtomicBool, acked: &AtomicU64) -> LoadReport {
    let next = AtomicU64::new(0);
    let report = Mutex::new(LoadReport::default());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..plan.clients {
            scope.spawn(|| client(plan, stop, &next, acked, &report, started));
        }
    });
    let mut report = report.into_inner().unwrap_or_default();
    report.elapsed = started.elapsed();
    report.latencies_us.sort_unstable();
    report
}

fn client(
    plan: &LoadPlan,
    stop: &AtomicBool,
    next: &AtomicU64,
    acked: &AtomicU64,
    report: &Mutex<LoadReport>,
    started: Instant,
) {
    let mut conn: Option<Connection> = None;
    let mut local = LoadReport::default();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < plan.max_duration {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= plan.events {
            break;
        }
        let delivery = format!("{}-{n}", plan.delivery_prefix);
        let body = issue_event(n);
        let sent = Instant::now();
        let answer = conn
            .take()
            .map_or_else(|| Connection::open(plan.addr), Ok)
            .and_then(|mut c| {
                c.post_hook(plan, &delivery, &body)
                    .map(|status| (c, status))
            });
        match answer {
            Ok((c, 202)) => {
                local.latencies_us.push(sent.elapsed().as_micros() as u64);
                local.acknowledged.push(delivery);
                acked.fetch_add(1, Ordering::Relaxed);
                conn = Some(c);
            }
            Ok((c, _)) => {
                local.refused += 1;
                conn = Some(c);
            }
            Err(_) => {
                local.failed += 1;
                // The server is gone or restarting: back off a little before reconnecting.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    if let Ok(mut r) = report.lock() {
        r.acknowledged.append(&mut local.acknowledged);
        r.latencies_us.append(&mut local.latencies_us);
        r.refused += local.refused;
        r.failed += local.failed;
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Connection {
    fn open(addr: SocketAddr) -> std::io::Result<Connection> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Connection {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    fn post_hook(&mut self, plan: &LoadPlan, delivery: &str, body: &[u8]) -> std::io::Result<u16> {
        let head = format!(
            "POST /hooks/github/{} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
             x-github-event: issues\r\nx-github-delivery: {delivery}\r\n\
             x-hub-signature-256: {}\r\ncontent-length: {}\r\n\r\n",
            plan.connector,
            plan.addr,
            sign(&plan.secret, body),
            body.len()
        );
        self.writer.write_all(head.as_bytes())?;
        self.writer.write_all(body)?;
        self.read_response()
    }

    fn read_response(&mut self) -> std::io::Result<u16> {
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed response");
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        let mut length = 0usize;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(|_| bad())?;
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(status)
    }
}

/// Sends one request and returns status and body (for checks after a load run).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    Ok((status, raw[split + 4..].to_vec()))
}
