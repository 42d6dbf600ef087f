//! HTTP/1.1 requests to the Docker Engine API (hyper's client connection over a unix socket,
//! TCP, or TCP with TLS), each step under a timeout: a socket that accepts and never answers
//! cannot hang a scan.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use super::Failure;
use super::host::{DockerHost, Endpoint, TlsFiles};

/// The longest a connection (and a TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest the daemon may take to answer a small request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest the daemon may take to start an export: Docker's classic store writes the
/// whole image to its own temporary directory before the first byte is sent.
pub const EXPORT_START_TIMEOUT: Duration = Duration::from_secs(600);
/// The longest a stream may pause between two chunks.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest error or inspect body read.
const MAX_SMALL_BODY: usize = 4 << 20;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Sends `GET path` to the daemon and returns the answer's head; the body is read by the
/// caller. `answer_timeout` bounds the wait for the head.
pub async fn get(
    host: &DockerHost,
    path: &str,
    answer_timeout: Duration,
) -> Result<Response<Incoming>, Failure> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect(&host.endpoint))
        .await
        .map_err(|_| {
            anyhow!(
                "{host}: no connection within {}s",
                CONNECT_TIMEOUT.as_secs()
            )
        })??;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| anyhow!("{host}: {err}"))?;
    tokio::spawn(connection);
    let request = Request::get(path)
        .header(hyper::header::HOST, "docker")
        .header(
            hyper::header::USER_AGENT,
            concat!("stowaway/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .context("request")?;
    let response = tokio::time::timeout(answer_timeout, sender.send_request(request))
        .await
        .map_err(|_| {
            anyhow!(
                "{host}: the daemon did not answer within {}s",
                answer_timeout.as_secs()
            )
        })?
        .map_err(|err| anyhow!("{host}: {err}"))?;
    Ok(response)
}

/// `GET path` answered with a small body (inspect, errors): status and bytes.
pub async fn get_small(host: &DockerHost, path: &str) -> Result<(StatusCode, Bytes), Failure> {
    let response = get(host, path, ANSWER_TIMEOUT).await?;
    let status = response.status();
    let body = read_small(response.into_body()).await?;
    Ok((status, body))
}

/// Reads a body of at most [`MAX_SMALL_BODY`] bytes, each chunk within [`IDLE_TIMEOUT`].
pub async fn read_small(mut body: Incoming) -> Result<Bytes> {
    let mut collected = Vec::new();
    while let Some(frame) = next_chunk(&mut body).await? {
        collected.extend_from_slice(&frame);
        if collected.len() > MAX_SMALL_BODY {
            bail!("the daemon's answer is larger than {MAX_SMALL_BODY} bytes");
        }
    }
    Ok(Bytes::from(collected))
}

/// The next data chunk of `body`, `None` at its end; a pause over [`IDLE_TIMEOUT`] is an error.
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>> {
    loop {
        let frame = tokio::time::timeout(IDLE_TIMEOUT, body.frame())
            .await
            .map_err(|_| {
                anyhow!(
                    "the daemon sent nothing for {}s in the middle of its answer",
                    IDLE_TIMEOUT.as_secs()
                )
            })?;
        match frame {
            None => return Ok(None),
            Some(Err(err)) => bail!("the daemon's answer was cut short: {err}"),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// The daemon's message in an error answer (`{"message": "..."}`), else the status.
pub fn error_message(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    match serde_json::from_slice::<Message>(body) {
        Ok(message) => format!("{} ({status})", message.message.trim()),
        Err(_) => format!("the daemon answered {status}"),
    }
}

async fn connect(endpoint: &Endpoint) -> Result<Box<dyn Io>, Failure> {
    match endpoint {
        Endpoint::Unix(path) => {
            let shown = path.display();
            match std::fs::symlink_metadata(path) {
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    return Err(Failure::Absent(format!("no socket at {shown}")));
                }
                Ok(metadata) if !is_socket(&metadata) => {
                    return Err(Failure::Other(anyhow!("{shown} is not a socket")));
                }
                _ => {}
            }
            match UnixStream::connect(path).await {
                Ok(stream) => Ok(Box::new(stream)),
                Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => Err(Failure::Absent(
                    format!("nothing listens on {shown} (connection refused)"),
                )),
                Err(err) => Err(Failure::Other(anyhow!("cannot connect to {shown}: {err}"))),
            }
        }
        Endpoint::Tcp { host, port, tls } => {
            let stream = match TcpStream::connect((host.as_str(), *port)).await {
                Ok(stream) => stream,
                Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
                    return Err(Failure::Absent(format!(
                        "nothing listens on {host}:{port} (connection refused)"
                    )));
                }
                Err(err) => {
                    return Err(Failure::Other(anyhow!(
                        "cannot connect to {host}:{port}: {err}"
                    )));
                }
            };
            match tls {
                None => Ok(Box::new(stream)),
                Some(files) => Ok(Box::new(handshake(stream, host, files).await?)),
            }
        }
    }
}

fn is_socket(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    metadata.file_type().is_socket()
}

/// TLS to the daemon: its certificate checked against `ca.pem`, the client's certificate and
/// key (when present) offered.
async fn handshake(
    stream: TcpStream,
    host: &str,
    files: &TlsFiles,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let config = tls_config(files)?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| anyhow!("{host}: not a name a TLS certificate can hold"))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|err| anyhow!("TLS with {host}: {err}"))
}

fn tls_config(files: &TlsFiles) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(&files.ca)
        .with_context(|| format!("cannot read {}", files.ca.display()))?;
    for ca in cas {
        let ca = ca.with_context(|| format!("{}: not a PEM certificate", files.ca.display()))?;
        roots
            .add(ca)
            .with_context(|| format!("{}: not a usable CA certificate", files.ca.display()))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS")?
        .with_root_certificates(roots);
    Ok(match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("cannot read {}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{}: not a PEM certificate", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("{}: not a PEM private key", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("the client certificate and key do not make a pair")?
        }
        _ => builder.with_no_client_auth(),
    })
}
