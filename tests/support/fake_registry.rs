//! A tiny HTTP/1.1 server on 127.0.0.1 for registry behaviour a real registry does not show on
//! demand: rate limits, refusals, schema 1 manifests, connections cut in the middle of a blob.
//! Each test gives it a handler; [`ImageRoutes`] answers the requests of a normal pull from an
//! image built in memory, so a handler only writes the one odd answer it is about.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::image::BuiltImage;

/// One request, as the handler sees it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// One answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Close the connection after this many body bytes, although `Content-Length` announced
    /// them all.
    pub cut_after: Option<usize>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            cut_after: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn cut_after(mut self, bytes: usize) -> Reply {
        self.cut_after = Some(bytes);
        self
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A running server; stopped when dropped.
pub struct FakeRegistry {
    pub port: u16,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl FakeRegistry {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let log = Arc::clone(&log);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let handler = Arc::clone(&handler);
                    let log = Arc::clone(&log);
                    std::thread::spawn(move || serve(stream, &*handler, &log));
                }
            });
        }
        FakeRegistry { port, log, stop }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The requests served so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// How many requests had a path ending in `suffix`.
    pub fn count(&self, suffix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path.ends_with(suffix))
            .count()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves requests on one connection until the client closes it or a reply cuts it.
fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let request = Request {
            method,
            path,
            headers,
        };
        log.lock().unwrap().push(request.clone());
        let reply = handler(&request);
        let mut head = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        for (name, value) in &reply.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let body = match reply.cut_after {
            Some(n) => &reply.body[..n.min(reply.body.len())],
            None => &reply.body[..],
        };
        let sent = writer
            .write_all(head.as_bytes())
            .and_then(|_| {
                if request.method == "HEAD" {
                    Ok(())
                } else {
                    writer.write_all(body)
                }
            })
            .and_then(|_| writer.flush());
        if sent.is_err() || reply.cut_after.is_some() {
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// The answers of a normal anonymous pull of one image: `/v2/`, the manifest by tag or
/// digest, and the blobs (with `Range` support).
pub struct ImageRoutes {
    pub repository: String,
    pub tag: String,
    pub image: BuiltImage,
}

impl ImageRoutes {
    /// The reply to `request`; 404 for anything else.
    pub fn reply(&self, request: &Request) -> Reply {
        let path = request.path.split('?').next().unwrap_or_default();
        if path == "/v2/" {
            return Reply::new(200, "{}").header("Content-Type", "application/json");
        }
        let Some(rest) = path.strip_prefix(&format!("/v2/{}/", self.repository)) else {
            return not_found();
        };
        if let Some(target) = rest.strip_prefix("manifests/") {
            if target == self.tag || target == self.image.manifest_digest {
                return Reply::new(200, self.image.manifest.clone())
                    .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                    .header("Docker-Content-Digest", &self.image.manifest_digest);
            }
            return not_found();
        }
        if let Some(digest) = rest.strip_prefix("blobs/") {
            let blob = if digest == self.image.config_digest {
                Some(&self.image.config)
            } else {
                self.image
                    .layers
                    .iter()
                    .find(|l| l.digest == digest)
                    .map(|l| &l.blob)
            };
            let Some(blob) = blob else {
                return not_found();
            };
            return range_reply(request, blob).header("Docker-Content-Digest", digest);
        }
        not_found()
    }
}

fn not_found() -> Reply {
    Reply::new(
        404,
        r#"{"errors":[{"code":"NOT_FOUND","message":"not here"}]}"#,
    )
    .header("Content-Type", "application/json")
}

/// 206 with the tail of `blob` for `Range: bytes=N-`, else 200 with all of it.
pub fn range_reply(request: &Request, blob: &[u8]) -> Reply {
    let start = request
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    match start {
        Some(start) if start < blob.len() => Reply::new(206, blob[start..].to_vec()).header(
            "Content-Range",
            &format!("bytes {start}-{}/{}", blob.len() - 1, blob.len()),
        ),
        _ => Reply::new(200, blob.to_vec()),
    }
    .header("Content-Type", "application/octet-stream")
}
