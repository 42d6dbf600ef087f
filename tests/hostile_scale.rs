//! Hostile inputs that cost little to build and much to scan when the scan is careless: a zip
//! whose central directory names one large member thousands of times, and images or files
//! with so many secrets that any per-finding walk over all earlier findings turns quadratic.
//! Every input is built at test time; every scan must finish within a minute and 300 MiB.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::craft::{end, file};
use support::run::{Measured, run_measured};
use support::secrets::aws_access_key_id;
use support::*;

const TIME_LIMIT: Duration = Duration::from_secs(60);
const MEMORY_LIMIT_MIB: u64 = 300;

/// An image spec with `layers` history steps (the layers themselves are made by hand).
fn spec(layers: usize) -> ImageSpec {
    ImageSpec {
        layers: (0..layers)
            .map(|i| Layer::new(&format!("RUN step {i}"), Vec::new()))
            .collect(),
        repo_tag: "stowaway.test/hostile-scale:1".into(),
        ..ImageSpec::default()
    }
}

/// A line of text holding `key` where the AWS rules see it.
fn leak(key: &str) -> Vec<u8> {
    format!("aws_access_key_id = {key}\n").into_bytes()
}

/// Scans the layout within the time and memory bounds, JSON with secrets shown.
fn scan(layout: &Path) -> Measured {
    let arg = format!("oci:{}", layout.display());
    let measured = run_measured(
        &["scan", "--format", "json", "--show-secrets", &arg],
        TIME_LIMIT,
    );
    eprintln!(
        "{}: exit {}, peak RSS {} MiB, {:?}",
        layout.display(),
        measured.run.code,
        measured.peak_rss_mib,
        measured.elapsed
    );
    assert!(
        measured.peak_rss_mib <= MEMORY_LIMIT_MIB,
        "peak RSS {} MiB",
        measured.peak_rss_mib
    );
    measured
}

/// The image's skipped items as `(what, reason)`.
fn skipped(report: &Value) -> Vec<(String, String)> {
    let items = report["images"][0]["skipped"].as_array().cloned();
    items
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let text = |key: &str| s[key].as_str().unwrap_or_default().to_string();
            (text("what"), text("reason"))
        })
        .collect()
}

fn findings(report: &Value) -> Vec<Value> {
    report["images"][0]["findings"]
        .as_array()
        .expect("findings")
        .clone()
}

fn le16(value: usize) -> [u8; 2] {
    u16::try_from(value).expect("fits 16 bits").to_le_bytes()
}

fn le32(value: usize) -> [u8; 4] {
    u32::try_from(value).expect("fits 32 bits").to_le_bytes()
}

/// A zip of one stored member (`data`) whose central directory lists it `entries` times under
/// different names: every entry points at the same local header, so the file stays the size
/// of the member plus the directory.
fn overlapping_zip(data: &[u8], entries: usize) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    let crc = crc.sum().to_le_bytes();
    let name = b"m0.txt";
    let mut zip = Vec::new();
    zip.extend(0x0403_4b50u32.to_le_bytes());
    zip.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, stored, time, date
    zip.extend(crc);
    zip.extend(le32(data.len()));
    zip.extend(le32(data.len()));
    zip.extend(le16(name.len()));
    zip.extend(le16(0));
    zip.extend(name);
    zip.extend(data);
    let directory_start = zip.len();
    for index in 0..entries {
        let name = format!("m{index}.txt");
        zip.extend(0x0201_4b50u32.to_le_bytes());
        zip.extend([20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // made by, needed, flags, stored, time, date
        zip.extend(crc);
        zip.extend(le32(data.len()));
        zip.extend(le32(data.len()));
        zip.extend(le16(name.len()));
        zip.extend([0; 12]); // extra, comment, disk, attributes
        zip.extend(le32(0)); // every entry's local header is the first one
        zip.extend(name.as_bytes());
    }
    let directory_len = zip.len() - directory_start;
    zip.extend(0x0605_4b50u32.to_le_bytes());
    zip.extend([0; 4]); // this disk, directory disk
    zip.extend(le16(entries));
    zip.extend(le16(entries));
    zip.extend(le32(directory_len));
    zip.extend(le32(directory_start));
    zip.extend(le16(0));
    zip
}

/// 10,000 central-directory entries naming one 1 MiB stored member: the member is scanned
/// once, its secret found once, and the other entries are one counted skip.
#[test]
fn overlapping_zip_entries_are_scanned_once() {
    const ENTRIES: usize = 10_000;
    let key = aws_access_key_id();
    let mut member = leak(&key);
    member.resize(1 << 20, b'x');
    let zip = overlapping_zip(&member, ENTRIES);
    let mut tar = file("app/bundle.zip", &zip);
    tar.extend(end());
    let dir = tempdir();
    let layer = RawLayer::from_tar(&tar, Compression::Gzip);
    write_layout_with_layers(&spec(1), &[layer], dir.path());
    let measured = scan(dir.path());
    assert!(
        measured.elapsed < Duration::from_secs(20),
        "{:?}",
        measured.elapsed
    );
    assert_eq!(measured.run.code, 1, "{}", measured.run.stderr);
    let report = measured.run.json();
    let found: Vec<Value> = findings(&report)
        .into_iter()
        .filter(|f| f["secret"] == key.as_str())
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["location"]["path"], "app/bundle.zip");
    assert_eq!(found[0]["location"]["archive_path"][0], "m0.txt");
    let items = skipped(&report);
    let expected = format!("app/bundle.zip: {} entry(ies) not scanned", ENTRIES - 1);
    assert!(
        items
            .iter()
            .any(|(what, reason)| *what == expected && reason.starts_with("overlapping zip entry")),
        "{items:?}"
    );
}
