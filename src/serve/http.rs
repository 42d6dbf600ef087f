//! The HTTP side: routes, handlers, and the accept loop (TLS through tokio-rustls, HTTP/1.1
//! through hyper, routing through axum).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use oci_client::Reference;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::admission::{error_response, parse_review};
use super::events::{self, Sender, is_digest};
use super::metrics::{CONTENT_TYPE, Gauges, inc};
use super::scans::{Enqueued, Job};
use super::{Server, by_digest};

/// Largest request body: AdmissionReviews carry whole objects (Kubernetes caps them near 1.5 MiB).
const BODY_LIMIT: usize = 8 << 20;

/// Time allowed for a TLS handshake and for reading request headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed to receive a request body once its headers are in: the API server sends an
/// AdmissionReview in milliseconds, and a body trickled in slowly holds a connection and its
/// buffers for nothing.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Request body bytes held in memory at once, over all connections (eight bodies of the
/// largest size). A body is charged its announced length before any of it is read (or each
/// chunk as it comes, without a length); a request that does not fit gets a 503 at once.
const BODY_BUDGET: usize = 64 << 20;

/// The routes.
pub fn router(server: Arc<Server>) -> Router {
    let routes = Router::new();
    // A worker takes no requests: its work comes from the shared queue.
    let routes = if server.role == super::Role::Worker {
        routes
    } else {
        routes
            .route("/admission", post(admission))
            .route("/registry/events", post(registry_events))
            .route("/reports/{digest}", get(report))
            .route("/scan", post(scan))
    };
    routes
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(Semaphore::new(BODY_BUDGET)),
            read_body,
        ))
        .with_state(server)
}

/// Reads the request body under the server's bounds before the handler sees it: at most
/// [`BODY_LIMIT`] bytes, within [`BODY_READ_TIMEOUT`], and charged to the shared
/// [`BODY_BUDGET`] until the response is made. A Content-Length over the limit is refused
/// before any of the body is read, so the client gets its 413 while it is still sending
/// instead of a broken pipe.
async fn read_body(
    State(budget): State<Arc<Semaphore>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if announced.is_some_and(|length| length > BODY_LIMIT as u64) {
        return closing(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body over {} MiB", BODY_LIMIT >> 20),
        );
    }
    let mut held = None;
    if let Some(length) = announced.filter(|&length| length > 0) {
        match Arc::clone(&budget).try_acquire_many_owned(length as u32) {
            Ok(permit) => held = Some(permit),
            Err(_) => return busy(),
        }
    }
    let reading = collect_body(body, &budget, &mut held);
    let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, reading).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(refusal)) => return refusal,
        Err(_) => {
            return closing(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "request body not received within {} s",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            );
        }
    };
    let response = next
        .run(axum::extract::Request::from_parts(parts, bytes.into()))
        .await;
    drop(held);
    response
}

/// The body's bytes, each charged to `budget` (in `held`) before it is kept.
async fn collect_body(
    body: axum::body::Body,
    budget: &Arc<Semaphore>,
    held: &mut Option<OwnedSemaphorePermit>,
) -> Result<Bytes, Response> {
    let mut stream = body.into_data_stream();
    let mut collected = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            closing(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
        })?;
        if collected.len() + chunk.len() > BODY_LIMIT {
            return Err(closing(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body over {} MiB", BODY_LIMIT >> 20),
            ));
        }
        let charged = held.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        let needed = collected.len() + chunk.len();
        if needed > charged {
            let more = Arc::clone(budget)
                .try_acquire_many_owned((needed - charged) as u32)
                .map_err(|_| busy())?;
            match held {
                Some(permit) => permit.merge(more),
                None => *held = Some(more),
            }
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}

/// An error answer after which the connection is closed: the rest of the body may still be on
/// it, so it cannot carry another request.
fn closing(status: StatusCode, message: &str) -> Response {
    let mut response = json_response(status, &json!({ "error": message }));
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The answer when the bodies in flight fill [`BODY_BUDGET`].
fn busy() -> Response {
    let mut response = closing(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is receiving too many request bodies at once; retry shortly",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Checks `Authorization: Bearer <token>` when the policy sets an API token; the refusal
/// otherwise.
fn unauthorized(server: &Server, headers: &HeaderMap) -> Option<Response> {
    let expected = server.policy.api_token.as_deref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Compare without an early exit, so timing does not tell how much matched.
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0;
    if same {
        return None;
    }
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({ "error": "this endpoint needs Authorization: Bearer <token> (api_token_file)" }),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"stowaway\""),
    );
    Some(response)
}

/// Why the server may not contact the registry of `image` (a reference), if it may not.
fn refusal(server: &Server, image: &str) -> Option<String> {
    let reference: Reference = image.parse().ok()?;
    server
        .policy
        .network
        .refusal(reference.registry(), reference.resolve_registry())
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

async fn admission(State(server): State<Arc<Server>>, body: Bytes) -> Response {
    let started = Instant::now();
    let response = match parse_review(&body) {
        Ok(request) => {
            let answer = server.decide(&request).await;
            json_response(StatusCode::OK, &answer)
        }
        Err(error) => {
            inc(&server.metrics.admissions_invalid);
            server
                .scans
                .log(&format!("bad admission request: {}", error.message));
            // The API server reads the body of an HTTP 200 only; anything else is a failed
            // call, settled by the webhook's failurePolicy without our message. A request
            // whose uid we know gets its denial as an answer; one without a uid cannot be
            // answered, so it is a plain HTTP error.
            let status = if error.uid.is_some() {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            json_response(status, &error_response(&error))
        }
    };
    server.metrics.admission_seconds.observe(started.elapsed());
    response
}

async fn registry_events(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = unauthorized(&server, &headers) {
        return refused;
    }
    let (sender, parsed) = match events::parse(&body) {
        Ok(parsed) => parsed,
        Err(message) => {
            return json_response(StatusCode::BAD_REQUEST, &json!({ "error": message }));
        }
    };
    let counter = match sender {
        Sender::Distribution => &server.metrics.events_distribution,
        Sender::Harbor => &server.metrics.events_harbor,
    };
    let (mut queued, mut duplicates, mut rejected, mut refused) = (0, 0, 0, 0);
    for image in parsed.images {
        inc(counter);
        // The sender names the registry's address: it is held to the same list as a scan.
        if let Some(refusal) = refusal(&server, &image.reference) {
            server.scans.log(&format!(
                "registry event for {} refused: {refusal}",
                image.reference
            ));
            refused += 1;
            continue;
        }
        let job = Job {
            reference: image.reference,
            digest: Some(image.digest),
        };
        match server.scans.enqueue(job) {
            Enqueued::Queued => queued += 1,
            Enqueued::AlreadyPending => duplicates += 1,
            Enqueued::Full => rejected += 1,
        }
    }
    let body = json!({
        "queued": queued,
        "duplicates": duplicates,
        "rejected": rejected,
        "refused": refused,
        "ignored": parsed.ignored,
    });
    // Refused events are answered as delivered: a registry retries failed deliveries, and
    // retrying cannot make its address allowed.
    if rejected > 0 {
        // The registry retries failed deliveries; queued ones are deduplicated then.
        let mut response = json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        return response;
    }
    json_response(StatusCode::OK, &body)
}

async fn report(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    Path(digest): Path<String>,
) -> Response {
    if let Some(refused) = unauthorized(&server, &headers) {
        return refused;
    }
    if !is_digest(&digest) {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "expected a digest: sha256:<64 hex digits>" }),
        );
    }
    let scans = Arc::clone(&server.scans);
    let lookup = digest.clone();
    let stored = tokio::task::spawn_blocking(move || scans.report_json(&lookup))
        .await
        .map_err(|err| anyhow::anyhow!("report lookup: {err}"))
        .and_then(|stored| stored);
    let stored = match stored {
        Ok(stored) => stored,
        Err(err) => {
            inc(&server.metrics.report_cache_misses);
            return json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "digest": digest, "status": "unavailable", "error": format!("{err:#}") }),
            );
        }
    };
    if let Some(json) = stored {
        inc(&server.metrics.report_cache_hits);
        return (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response();
    }
    inc(&server.metrics.report_cache_misses);
    let (status, detail) = if server.scans.is_pending(&digest) {
        ("pending", None)
    } else if let Some(message) = server.scans.failure(&digest) {
        ("failed", Some(message))
    } else {
        ("unknown", None)
    };
    json_response(
        StatusCode::NOT_FOUND,
        &json!({ "digest": digest, "status": status, "error": detail }),
    )
}

async fn scan(State(server): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = unauthorized(&server, &headers) {
        return refused;
    }
    let image = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("image").and_then(Value::as_str).map(str::to_string));
    let Some(image) = image else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "expected {\"image\": \"registry/repository:tag\"}" }),
        );
    };
    let text = image.strip_prefix("docker://").unwrap_or(&image);
    let reference: Reference = match text.parse() {
        Ok(reference) => reference,
        Err(err) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({ "error": format!("not a registry image reference: {err}") }),
            );
        }
    };
    if let Some(refusal) = refusal(&server, text) {
        server
            .scans
            .log(&format!("POST /scan {image} refused: {refusal}"));
        return json_response(StatusCode::FORBIDDEN, &json!({ "error": refusal }));
    }
    let lookup = tokio::time::timeout(
        server.policy.time_budget,
        server.resolver.digest(&reference),
    );
    let digest = match lookup.await {
        Ok(Ok(digest)) => Some(digest),
        Ok(Err(err)) => {
            server.scans.log(&format!("POST /scan {image}: {err:#}"));
            None
        }
        Err(_) => None,
    };
    if let Some(digest) = &digest
        && matches!(server.scans.report_json(digest), Ok(Some(_)))
    {
        return json_response(
            StatusCode::OK,
            &json!({ "digest": digest, "status": "done", "report": format!("/reports/{digest}") }),
        );
    }
    let job = Job {
        reference: match &digest {
            Some(digest) => by_digest(&reference, digest),
            None => reference.whole(),
        },
        digest: digest.clone(),
    };
    let outcome = server.scans.enqueue(job);
    let status = match outcome {
        Enqueued::Queued => "queued",
        Enqueued::AlreadyPending => "pending",
        Enqueued::Full => {
            let mut response = json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "error": "the scan queue is full; retry later" }),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
            return response;
        }
    };
    json_response(
        StatusCode::ACCEPTED,
        &json!({
            "digest": digest,
            "status": status,
            "report": digest.as_ref().map(|d| format!("/reports/{d}")),
        }),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(server): State<Arc<Server>>) -> Response {
    // The rules are compiled and the workers run before the listener opens; what can still
    // go wrong is the store (a full or vanished disk, a shared store that is down), from which
    // every admission is decided: it is asked now, off the async threads (a shared store
    // answers within its timeout). Report the queue too, so a saturated server is visible.
    let (queued, running, capacity) = server.scans.queue_state();
    let scans = Arc::clone(&server.scans);
    let cache = tokio::task::spawn_blocking(move || scans.cache.counts())
        .await
        .map_err(|err| anyhow::anyhow!("store check: {err}"))
        .and_then(|counts| counts);
    let (status, state) = match &cache {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(err) if crate::store::is_unavailable(err) => {
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable")
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "cache unreadable"),
    };
    let mut body = json!({
        "status": state,
        "store": server.scans.cache.describe(),
        "queued": queued,
        "running": running,
        "capacity": capacity,
        "uptime_seconds": server.started.elapsed().as_secs(),
    });
    match cache {
        Ok(Some(counts)) => {
            body["cached_layers"] = json!(counts.layers);
            body["cached_reports"] = json!(counts.reports);
        }
        Ok(None) => {}
        Err(err) => body["error"] = json!(format!("{err:#}").replace('\n', " ")),
    }
    json_response(status, &body)
}

async fn metrics(State(server): State<Arc<Server>>) -> Response {
    let (queue_depth, scans_in_progress, queue_capacity) = server.scans.queue_state();
    let scans = Arc::clone(&server.scans);
    let shared_queue = tokio::task::spawn_blocking(move || {
        scans.shared_queue().and_then(|queue| queue.depth().ok())
    })
    .await
    .ok()
    .flatten();
    let text = server.metrics.render(&Gauges {
        queue_depth,
        scans_in_progress,
        queue_capacity,
        shared_queue,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        text,
    )
        .into_response()
}

/// Time given to requests in flight when the server is told to stop: a rollout's SIGTERM
/// finishes what the API server already sent (well inside Kubernetes' 30 s grace period).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` completes, then drains: the listening socket is closed
/// (new connections are refused, so a client goes to another replica), each connection
/// finishes the request it is serving and closes (idle keep-alive connections at once), and
/// this returns when all have closed or after [`DRAIN_TIMEOUT`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    server: Arc<Server>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let app = router(Arc::clone(&server));
    // `stop` tells connections to finish; each holds a clone of `open`, so `closed` ends
    // once every connection has.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let (open, mut closed) = tokio::sync::mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    server.scans.log(&format!("accept failed: {err}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            service: TowerToHyperService::new(app.clone()),
            server: Arc::clone(&server),
            peer,
            stopping: stopping.clone(),
            _open: open.clone(),
        };
        tokio::spawn(connection.serve(stream, tls.clone()));
    }
    drop(listener);
    let _ = stop.send(true);
    drop(open);
    if tokio::time::timeout(DRAIN_TIMEOUT, closed.recv())
        .await
        .is_err()
    {
        server
            .scans
            .log("requests still in flight after the drain timeout are cut off");
    }
    Ok(())
}

/// One accepted connection.
struct Connection {
    service: TowerToHyperService<Router>,
    server: Arc<Server>,
    peer: std::net::SocketAddr,
    /// Becomes true when the server stops.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// Dropped when the connection is done (see [`serve`]).
    _open: tokio::sync::mpsc::Sender<()>,
}

impl Connection {
    /// The TLS handshake (when `tls`), then HTTP/1.1 with keep-alive until the client hangs up,
    /// the connection idles out, or the server stops (the request in flight is finished first).
    async fn serve(self, stream: tokio::net::TcpStream, tls: Option<tokio_rustls::TlsAcceptor>) {
        let Some(acceptor) = tls else {
            return self.http(TokioIo::new(stream)).await;
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => self.http(TokioIo::new(stream)).await,
            Ok(Err(err)) => self
                .server
                .scans
                .log(&format!("TLS handshake with {} failed: {err}", self.peer)),
            Err(_) => {}
        }
    }

    async fn http<I>(self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HANDSHAKE_TIMEOUT)
            .keep_alive(true);
        let connection = http.serve_connection(io, self.service.clone());
        tokio::pin!(connection);
        let mut stopping = self.stopping.clone();
        let stopped = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        let served = tokio::select! {
            served = &mut connection => served,
            () = stopped => {
                // No new request on this connection; the one in flight is answered (with
                // `Connection: close`), an idle connection closes now.
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        // Clients that hang up, and idle keep-alive connections timing out, are normal.
        if let Err(err) = served
            && !err.is_incomplete_message()
            && !err.is_closed()
            && !err.is_shutdown()
            && !err.is_timeout()
        {
            self.server
                .scans
                .log(&format!("connection from {}: {err}", self.peer));
        }
    }
}
