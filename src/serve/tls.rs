//! TLS for the server (rustls): the certificate and key are read from PEM files and read again
//! whenever either file changes (polled by modification time and size), so a renewed
//! certificate (cert-manager, a rotated Kubernetes Secret) is used without a restart. A
//! broken replacement is reported and the previous certificate stays in use.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow, bail};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// What identifies a version of a file: modification time and length.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Serves the current certificate; [`ReloadingCert::reload_if_changed`] swaps it.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    stamps: Mutex<(Stamp, Stamp)>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads a certificate chain and its private key.
fn load(cert_path: &Path, key_path: &Path, provider: &CryptoProvider) -> Result<CertifiedKey> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|err| anyhow!("{}: cannot read certificate: {err}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|err| anyhow!("{}: bad certificate PEM: {err}", cert_path.display()))?;
    if certs.is_empty() {
        bail!("{}: no certificate in this file", cert_path.display());
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|err| anyhow!("{}: cannot read private key: {err}", key_path.display()))?;
    CertifiedKey::from_der(certs, key, provider).map_err(|err| {
        anyhow!(
            "{} and {}: unusable certificate and key: {err}",
            cert_path.display(),
            key_path.display()
        )
    })
}

impl ReloadingCert {
    /// Loads the files once; errors when they are not a usable certificate and key.
    pub fn new(cert_path: &Path, key_path: &Path) -> Result<Arc<ReloadingCert>> {
        let provider = provider();
        let stamps = (stamp(cert_path), stamp(key_path));
        let key = load(cert_path, key_path, &provider)?;
        Ok(Arc::new(ReloadingCert {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(key)),
            stamps: Mutex::new(stamps),
        }))
    }

    /// Reads the files again when either changed. `Ok(true)` when a new certificate is in
    /// use; an error (the old certificate stays) when the new files do not load.
    pub fn reload_if_changed(&self) -> Result<bool> {
        let now = (stamp(&self.cert_path), stamp(&self.key_path));
        let mut stamps = self.stamps.lock().unwrap();
        if *stamps == now {
            return Ok(false);
        }
        // Remember the attempt either way: a broken file is reported once, not every poll.
        *stamps = now;
        drop(stamps);
        let key = load(&self.cert_path, &self.key_path, &self.provider)?;
        *self.current.write().unwrap() = Arc::new(key);
        Ok(true)
    }

    /// The certificate chain in use (first: the end-entity certificate); the tests watch it
    /// change on renewal.
    #[cfg(test)]
    fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current.read().unwrap().cert.clone()
    }

    /// A rustls server config that serves the current certificate (HTTP/1.1).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>> {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.read().unwrap()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A self-signed certificate made by the openssl command (installed by .ci/run).
    fn make_cert(dir: &Path, name: &str) -> Option<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", &format!("/CN={name}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some((cert, key))
    }

    #[test]
    fn reloads_changed_files_and_keeps_the_old_certificate_on_errors() {
        let dir = tempfile::tempdir().unwrap();
        let Some((cert, key)) = make_cert(dir.path(), "one") else {
            eprintln!("skipping: openssl is not installed");
            return;
        };
        let (cert2, key2) = make_cert(dir.path(), "two").unwrap();
        let reloading = ReloadingCert::new(&cert, &key).unwrap();
        reloading.server_config().unwrap();
        let first = reloading.chain();
        assert!(!reloading.reload_if_changed().unwrap());

        // A broken certificate: reported, old one kept.
        std::fs::write(&cert, "not a certificate").unwrap();
        assert!(reloading.reload_if_changed().is_err());
        assert_eq!(reloading.chain(), first);

        // A renewed pair: swapped in.
        std::fs::copy(&cert2, &cert).unwrap();
        std::fs::copy(&key2, &key).unwrap();
        assert!(reloading.reload_if_changed().unwrap());
        assert_ne!(reloading.chain(), first);

        // A key that does not match its certificate is refused at start.
        let (cert3, _) = make_cert(dir.path(), "three").unwrap();
        assert!(ReloadingCert::new(&cert3, &key2).is_err());
    }
}
