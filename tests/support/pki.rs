//! A throwaway certificate authority made with the real `openssl` binary: a CA and the
//! certificates it signs (EC P-256, valid two days), for tests that start TLS servers (the
//! admission server, a docker daemon) on 127.0.0.1.

use std::path::Path;
use std::process::Command;

/// `openssl req` arguments for a new EC P-256 key, unencrypted.
const NEW_EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// Runs openssl with `args` in `dir`; it must succeed.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes a self-signed CA for `subject` into `dir`: its key as `key`, its certificate as
/// `cert` (file names relative to `dir`).
pub fn make_ca(dir: &Path, subject: &str, key: &str, cert: &str) {
    let mut args = vec!["req", "-x509", "-days", "2", "-subj", subject];
    args.extend(["-keyout", key, "-out", cert]);
    args.extend(NEW_EC_KEY);
    openssl(dir, &args);
}

/// Writes into `dir` a key (`key`) and a certificate (`cert`) for `subject`, signed by the CA
/// whose files are `ca = (certificate, key)`, with `extensions` (lines of an openssl
/// extension file, such as `subjectAltName=IP:127.0.0.1`).
pub fn issue(
    dir: &Path,
    ca: (&str, &str),
    subject: &str,
    extensions: &str,
    (key, cert): (&str, &str),
) {
    let csr = format!("{cert}.csr");
    let mut args = vec![
        "req", "-new", "-subj", subject, "-keyout", key, "-out", &csr,
    ];
    args.extend(NEW_EC_KEY);
    openssl(dir, &args);
    let ext = format!("{cert}.ext");
    std::fs::write(dir.join(&ext), extensions).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &csr,
            "-CA",
            ca.0,
            "-CAkey",
            ca.1,
            "-CAcreateserial",
            "-extfile",
            &ext,
            "-out",
            cert,
        ],
    );
}
