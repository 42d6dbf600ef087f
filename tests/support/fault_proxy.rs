//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1, in front of a real registry (Debian's
//! docker-registry, started by the test), for what a registry does not do on demand: rate
//! limits, refusals, schema 1 manifests, connections cut in the middle of a blob. Each test
//! gives it a handler; [`Upstream`] passes a request on to the real registry, so a handler
//! only writes the one odd answer it is about.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::registry::TestRegistry;

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

/// A running proxy; stopped when dropped.
pub struct FaultProxy {
    pub port: u16,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FaultProxy {
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
        FaultProxy { port, log, stop }
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

impl Drop for FaultProxy {
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

/// The real registry behind the proxy.
pub struct Upstream {
    host: String,
    client: reqwest::blocking::Client,
}

/// Response headers a registry client reads; the others stay behind.
const PASSED_HEADERS: &[&str] = &[
    "content-type",
    "docker-content-digest",
    "content-range",
    "www-authenticate",
    "docker-distribution-api-version",
    // Catalog and tag-list pagination.
    "link",
];

impl Upstream {
    pub fn new(registry: &TestRegistry) -> Upstream {
        Upstream {
            host: registry.host(),
            client: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
        }
    }

    /// The real registry's answer to `request` (HEAD is asked as GET: the proxy sends the
    /// headers only, with the body's length).
    pub fn reply(&self, request: &Request) -> Reply {
        let mut forwarded = self
            .client
            .get(format!("http://{}{}", self.host, request.path));
        for name in ["accept", "range", "authorization"] {
            if let Some(value) = request.header(name) {
                forwarded = forwarded.header(name, value);
            }
        }
        let response = forwarded
            .send()
            .expect("the registry behind the proxy answers");
        let mut reply = Reply::new(response.status().as_u16(), Vec::new());
        for (name, value) in response.headers() {
            if PASSED_HEADERS.contains(&name.as_str()) {
                reply = reply.header(name.as_str(), value.to_str().unwrap_or_default());
            }
        }
        reply.body = response.bytes().expect("the registry's body").to_vec();
        reply
    }

    /// The layers of `repository:tag` as the registry holds them: (digest, size).
    pub fn layers(&self, repository: &str, tag: &str) -> Vec<(String, usize)> {
        let manifest: serde_json::Value = self
            .client
            .get(format!(
                "http://{}/v2/{repository}/manifests/{tag}",
                self.host
            ))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .and_then(|response| response.json())
            .expect("the manifest");
        manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|layer| {
                (
                    layer["digest"].as_str().unwrap().to_string(),
                    layer["size"].as_u64().unwrap() as usize,
                )
            })
            .collect()
    }
}
