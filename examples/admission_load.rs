//! The load client of `benches/admission-ha.sh`: AdmissionReviews to two replicas, as a
//! cluster's API server sends them through a Service. A Rust twin of
//! `benches/admission-ha-client.py` (same arguments, same JSON summary) for when the Python
//! client would take too much of a small machine's CPU to measure the servers.
//!
//! Each connection is a thread holding one keep-alive TLS connection per replica (rustls, HTTP/1.1
//! written by hand: one request, one answer with a `Content-Length`). It sends the reviews in
//! turn, to the replicas in turn; a connection error, a timeout or a 5xx is retried once on the
//! other replica. A request is an error when it fails on both or gets a wrong decision (the
//! expected allowed/denied, the review's uid, and no warning on an allowed image). Bounded by
//! `--duration` and `--max-requests`; only 127.0.0.1 URLs are accepted.
//!
//! ```text
//! cargo run --release --example admission_load -- --url https://127.0.0.1:P1 \
//!     --url https://127.0.0.1:P2 --ca tls.crt --review body1.json:deny --review body2.json:allow \
//!     [--duration 30] [--connections 16] [--max-requests 3000000]
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(10);

struct Args {
    urls: Vec<String>,
    ca: String,
    reviews: Vec<(String, bool)>,
    duration: f64,
    connections: usize,
    max_requests: i64,
}

fn parse_args() -> Args {
    let mut args = Args {
        urls: Vec::new(),
        ca: String::new(),
        reviews: Vec::new(),
        duration: 30.0,
        connections: 16,
        max_requests: 3_000_000,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.urls.push(value),
            "--ca" => args.ca = value,
            "--review" => {
                let (path, decision) = value.rsplit_once(':').expect("--review FILE:allow|deny");
                args.reviews.push((path.to_string(), decision == "allow"));
            }
            "--duration" => args.duration = value.parse().expect("--duration seconds"),
            "--connections" => args.connections = value.parse().expect("--connections N"),
            "--max-requests" => args.max_requests = value.parse().expect("--max-requests N"),
            // The Python client's process count; this one is threads only.
            "--processes" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    assert_eq!(args.urls.len(), 2, "give two --url, one per replica");
    args
}

/// `host:port` of an `https://127.0.0.1:PORT` URL.
fn address(url: &str) -> String {
    let address = url.strip_prefix("https://").expect("an https:// URL");
    assert!(
        address.starts_with("127.0.0.1:"),
        "{url}: this client only talks to 127.0.0.1"
    );
    address.trim_end_matches('/').to_string()
}

/// One review: its body, whether it is to be allowed, its uid.
struct Review {
    body: Vec<u8>,
    allowed: bool,
    uid: String,
}

/// One keep-alive TLS connection to one replica, opened again after a failure.
struct Replica {
    address: String,
    config: Arc<rustls::ClientConfig>,
    stream: Option<BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>>,
}

impl Replica {
    fn connect(
        &self,
    ) -> std::io::Result<BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>> {
        let tcp = TcpStream::connect(&self.address)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(TIMEOUT))?;
        tcp.set_write_timeout(Some(TIMEOUT))?;
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let connection = rustls::ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(std::io::Error::other)?;
        Ok(BufReader::new(rustls::StreamOwned::new(connection, tcp)))
    }

    /// Status and body of `POST /admission`; an error on any connection failure.
    fn post(&mut self, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => self.connect()?,
        };
        let head = format!(
            "POST /admission HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.address,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        stream.get_mut().write_all(&request)?;
        stream.get_mut().flush()?;
        let (status, length, close) = read_head(&mut stream)?;
        let mut answer = vec![0; length];
        stream.read_exact(&mut answer)?;
        if !close {
            self.stream = Some(stream);
        }
        Ok((status, answer))
    }
}

/// Status, `Content-Length` and whether the server closes the connection after this answer.
fn read_head(stream: &mut impl BufRead) -> std::io::Result<(u16, usize, bool)> {
    let mut line = String::new();
    if stream.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {line:?}")))?;
    let (mut length, mut close) = (0, false);
    loop {
        line.clear();
        if stream.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            return Ok((status, length, close));
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().map_err(std::io::Error::other)?;
        } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            close = true;
        }
    }
}

/// `None` when the answer is right, else what is wrong with it.
fn judge(status: u16, body: &[u8], review: &Review) -> Option<String> {
    if status != 200 {
        return Some(format!("HTTP {status}"));
    }
    let answer: Value = serde_json::from_slice(body).unwrap_or_default();
    let response = &answer["response"];
    if response["uid"] != review.uid.as_str() {
        return Some("wrong uid or not an AdmissionReview".into());
    }
    if response["allowed"] != review.allowed {
        return Some(format!(
            "allowed={}, expected {}",
            response["allowed"], review.allowed
        ));
    }
    if review.allowed && response.get("warnings").is_some() {
        return Some("allowed with a warning (not decided from the shared result)".into());
    }
    None
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    latencies: Vec<f64>,
    decisions: BTreeMap<&'static str, u64>,
    by_second: BTreeMap<u64, [u64; 2]>,
    errors: u64,
    error_samples: Vec<String>,
    retries: u64,
}

/// One answer, or what went wrong on the last replica tried.
enum Outcome {
    Answered(usize, &'static str),
    Failed(String),
}

/// Sends `review` to `first`, and once to the other replica on a connection error or a 5xx.
fn send(replicas: &mut [Replica], review: &Review, first: usize, tally: &mut Tally) -> Outcome {
    let mut outcome = Outcome::Failed(String::new());
    for attempt in 0..2 {
        let replica = (first + attempt) % 2;
        tally.retries += u64::from(attempt > 0);
        match replicas[replica].post(&review.body) {
            Err(err) => outcome = Outcome::Failed(format!("replica {replica}: {err}")),
            Ok((status, _)) if status >= 500 => {
                outcome = Outcome::Failed(format!("replica {replica}: HTTP {status}"));
            }
            Ok((status, body)) => {
                return match judge(status, &body, review) {
                    None => Outcome::Answered(
                        replica,
                        if review.allowed { "allowed" } else { "denied" },
                    ),
                    Some(wrong) => Outcome::Failed(format!("replica {replica}: {wrong}")),
                };
            }
        }
    }
    outcome
}

fn connection_loop(
    index: usize,
    args: &Args,
    config: &Arc<rustls::ClientConfig>,
    reviews: &[Review],
    start: Instant,
    budget: &AtomicI64,
) -> Tally {
    let mut replicas: Vec<Replica> = args
        .urls
        .iter()
        .map(|url| Replica {
            address: address(url),
            config: Arc::clone(config),
            stream: None,
        })
        .collect();
    let deadline = start + Duration::from_secs_f64(args.duration);
    let mut tally = Tally::default();
    let mut turn = index;
    while Instant::now() < deadline && budget.fetch_sub(1, Ordering::Relaxed) > 0 {
        let review = &reviews[turn % reviews.len()];
        let began = Instant::now();
        match send(&mut replicas, review, turn % 2, &mut tally) {
            Outcome::Answered(replica, decision) => {
                let ended = Instant::now();
                tally.latencies.push((ended - began).as_secs_f64());
                *tally.decisions.entry(decision).or_default() += 1;
                tally
                    .by_second
                    .entry((ended - start).as_secs())
                    .or_default()[replica] += 1;
            }
            Outcome::Failed(error) => {
                tally.errors += 1;
                if tally.error_samples.len() < 5 {
                    tally.error_samples.push(error);
                }
            }
        }
        turn += 1;
    }
    tally
}

/// This process's CPU time (user + system), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&index| fields.get(index)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0 // USER_HZ, 100 on Linux
}

fn summary(tallies: Vec<Tally>, wall: f64) -> Value {
    let mut all = Tally::default();
    for tally in tallies {
        all.latencies.extend(tally.latencies);
        all.errors += tally.errors;
        all.retries += tally.retries;
        all.error_samples.extend(tally.error_samples);
        for (decision, count) in tally.decisions {
            *all.decisions.entry(decision).or_default() += count;
        }
        for (second, counts) in tally.by_second {
            let total = all.by_second.entry(second).or_default();
            total[0] += counts[0];
            total[1] += counts[1];
        }
    }
    all.latencies.sort_by(f64::total_cmp);
    let answered = all.latencies.len();
    let percentile = |fraction: f64| {
        let index = ((fraction * answered as f64) as usize).min(answered.saturating_sub(1));
        all.latencies
            .get(index)
            .map(|seconds| (seconds * 100_000.0).round() / 100.0)
    };
    let cpu = cpu_seconds();
    json!({
        "wall_seconds": (wall * 100.0).round() / 100.0,
        "requests": answered as u64 + all.errors,
        "answered": answered,
        "errors": all.errors,
        "error_samples": all.error_samples.iter().take(5).collect::<Vec<_>>(),
        "retries": all.retries,
        "requests_per_second": (answered as f64 / wall * 10.0).round() / 10.0,
        "latency_ms": {"p50": percentile(0.5), "p90": percentile(0.9), "p99": percentile(0.99), "max": percentile(1.0)},
        "decisions": all.decisions,
        "answers_by_second": all.by_second.iter().map(|(second, [zero, one])| json!([second, zero, one])).collect::<Vec<_>>(),
        "client_cpu_seconds": (cpu * 100.0).round() / 100.0,
        "client_cores_used": (cpu / wall * 100.0).round() / 100.0,
    })
}

fn main() {
    let args = parse_args();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(&args.ca).expect("--ca file") {
        roots.add(cert.expect("CA certificate")).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let reviews: Vec<Review> = args
        .reviews
        .iter()
        .map(|(path, allowed)| {
            let body = std::fs::read(path).unwrap_or_else(|err| panic!("{path}: {err}"));
            let review: Value = serde_json::from_slice(&body).expect("an AdmissionReview");
            let uid = review["request"]["uid"]
                .as_str()
                .expect("request.uid")
                .to_string();
            Review {
                body,
                allowed: *allowed,
                uid,
            }
        })
        .collect();
    let budget = AtomicI64::new(args.max_requests);
    let start = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..args.connections.max(1))
            .map(|index| {
                let (args, config, reviews, budget) = (&args, &config, &reviews, &budget);
                scope.spawn(move || connection_loop(index, args, config, reviews, start, budget))
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect()
    });
    println!("{}", summary(tallies, start.elapsed().as_secs_f64()));
}
