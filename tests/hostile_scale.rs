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
use support::secrets::{aws_access_key_id, aws_secret_access_key, shannon_entropy};
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

/// An access key id random enough that the rule's entropy floor never rejects it (a few in
/// ten thousand uniformly random ones repeat letters enough to fall under it), and holding
/// no stand-in word the placeholder filter drops (`DUMMY`, `FIXME`: among 200,000 random
/// keys, one now and then does).
fn key_id() -> String {
    const STAND_INS: [&str; 10] = [
        "EXAMPLE",
        "CHANGEME",
        "DUMMY",
        "PLACEHOLDER",
        "REDACTED",
        "SAMPLE",
        "REPLACEME",
        "FIXME",
        "NOTREAL",
        "FAKEKEY",
    ];
    loop {
        let key = aws_access_key_id();
        if shannon_entropy(&key) >= 3.6 && !STAND_INS.iter().any(|word| key.contains(word)) {
            return key;
        }
    }
}

/// A line of text holding `key` where the AWS rules see it.
fn leak(key: &str) -> Vec<u8> {
    format!("aws_access_key_id = {key}\n").into_bytes()
}

/// Scans the layout within the time and memory bounds, JSON with secrets shown.
fn scan(layout: &Path) -> Measured {
    scan_with(layout, &["--format", "json", "--show-secrets"])
}

/// Scans the layout with `options`, within the time and memory bounds.
fn scan_with(layout: &Path, options: &[&str]) -> Measured {
    let arg = format!("oci:{}", layout.display());
    let mut args = vec!["scan"];
    args.extend(options);
    args.push(&arg);
    let measured = run_measured(&args, TIME_LIMIT);
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

/// An OCI layout of one gzip layer holding one file, `content` at `path`.
fn one_file_layout(path: &str, content: &[u8]) -> tempfile::TempDir {
    let mut tar = file(path, content);
    tar.extend(end());
    let dir = tempdir();
    let layer = RawLayer::from_tar(&tar, Compression::Gzip);
    write_layout_with_layers(&spec(1), &[layer], dir.path());
    dir
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
    let key = key_id();
    let mut member = leak(&key);
    member.resize(1 << 20, b'x');
    let zip = overlapping_zip(&member, ENTRIES);
    let mut tar = file("app/bundle.zip", &zip);
    tar.extend(end());
    let dir = tempdir();
    let layer = RawLayer::from_tar(&tar, Compression::Gzip);
    write_layout_with_layers(&spec(1), &[layer], dir.path());
    let measured = scan(dir.path());
    assert_eq!(measured.run.code, 1, "{}", measured.run.stderr);
    let report = measured.run.json();
    let found: Vec<Value> = findings(&report)
        .into_iter()
        .filter(|f| f["secret"] == key.as_str())
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["location"]["path"], "/app/bundle.zip");
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

/// 10,000 layers, each adding one file with a key and a history step that repeats it, and
/// every thousandth deleting the previous layer's directory: every finding is reported with
/// its fate, and every history line is redacted. (Before fates, redaction and collapse were
/// made near-linear, 10,000 such layers took 6 s of a release build and 40,000 took 107 s.)
/// `STOWAWAY_HOSTILE_LAYERS` asks for more layers (`benches/hostile-inputs.sh` builds 40,000).
#[test]
fn ten_thousand_layers_with_a_secret_each() {
    let count: usize = std::env::var("STOWAWAY_HOSTILE_LAYERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    assert!(count >= 10_000, "at least 10,000 layers");
    let keys: Vec<String> = (0..count).map(|_| key_id()).collect();
    let mut image = spec(0);
    let mut layers = Vec::with_capacity(count);
    for (index, key) in keys.iter().enumerate() {
        let mut tar = file(&format!("srv/{index}/aws.env"), &leak(key));
        if index % 1000 == 999 {
            tar.extend(file(&format!("srv/.wh.{}", index - 1), b""));
        }
        tar.extend(end());
        layers.push(RawLayer::from_tar(&tar, Compression::Gzip));
        let step = format!("RUN printf 'aws_access_key_id = {key}' > /srv/{index}/aws.env");
        image.layers.push(Layer::new(&step, Vec::new()));
    }
    let dir = tempdir();
    write_layout_with_layers(&image, &layers, dir.path());
    let measured = scan_with(dir.path(), &["--format", "json"]);
    assert_eq!(measured.run.code, 1, "{}", measured.run.stderr);
    let report = measured.run.json();
    let found = findings(&report);
    let in_files: Vec<&Value> = found
        .iter()
        .filter(|f| f["location"]["kind"] == "layer-file")
        .collect();
    // Each key is one finding: its file, with its history step among its other places.
    let in_history = found
        .iter()
        .flat_map(|f| f["also_found_in"].as_array().into_iter().flatten())
        .filter(|place| place["location"]["kind"] == "history")
        .count();
    assert_eq!((in_files.len(), in_history), (count, count));
    let fate = |layer: usize| {
        let finding = in_files
            .iter()
            .find(|f| f["location"]["layer_index"] == layer)
            .unwrap_or_else(|| panic!("no finding in layer {layer}"));
        (
            finding["status"].as_str().unwrap_or_default().to_string(),
            finding["removed_in_layer"].as_u64(),
        )
    };
    assert_eq!(fate(0), ("present".into(), None));
    assert_eq!(fate(998), ("deleted".into(), Some(999)));
    assert_eq!(fate(8_998), ("deleted".into(), Some(8_999)));
    assert_eq!(fate(count - 1), ("present".into(), None));
    assert_eq!(report["stats"]["deleted_but_shipped"], count / 1000);
    // Every history line names its key, redacted; no key shows anywhere.
    let created_by = report["images"][0]["layers"][2_345]["created_by"]
        .as_str()
        .unwrap_or_default();
    assert!(
        created_by.contains("aws_access_key_id = AKIA*"),
        "{created_by}"
    );
    for key in keys.iter().step_by(97) {
        assert!(
            !measured.run.stdout.contains(&key[4..]),
            "{key} not redacted"
        );
    }
}

/// One 8 MB file of 200,000 access key ids and, at its end, one (more severe) secret access
/// key: the most severe findings are listed up to the per-file limit, and the rest counted in
/// the JSON and said in the text.
#[test]
fn a_file_of_two_hundred_thousand_keys_lists_the_most_severe_and_counts_the_rest() {
    const KEYS: usize = 200_000;
    const LIMIT: usize = 100;
    let mut dump = Vec::with_capacity(KEYS * 42);
    for _ in 0..KEYS {
        dump.extend(leak(&key_id()));
    }
    let secret = aws_secret_access_key();
    dump.extend(format!("aws_secret_access_key = {secret}\n").as_bytes());
    assert!(dump.len() > 8_000_000);
    let dir = one_file_layout("srv/keys.txt", &dump);

    let measured = scan(dir.path());
    assert_eq!(measured.run.code, 1, "{}", measured.run.stderr);
    let report = measured.run.json();
    let found = findings(&report);
    assert_eq!(found.len(), LIMIT);
    assert!(
        found
            .iter()
            .all(|f| f["location"]["path"] == "/srv/keys.txt")
    );
    // The critical key, last in the file, is listed; the other places go to high findings.
    let critical: Vec<&Value> = found
        .iter()
        .filter(|f| f["severity"] == "critical")
        .collect();
    assert_eq!(critical.len(), 1, "{critical:#?}");
    assert_eq!(critical[0]["secret"], secret.as_str());
    assert_eq!(critical[0]["location"]["line"], KEYS + 1);
    let not_listed = &report["images"][0]["not_listed"];
    assert_eq!(
        not_listed.as_array().map(Vec::len),
        Some(1),
        "{not_listed:#}"
    );
    assert_eq!(not_listed[0]["location"]["path"], "/srv/keys.txt");
    assert_eq!(not_listed[0]["count"], KEYS + 1 - LIMIT);
    assert_eq!(not_listed[0]["by_severity"]["high"], KEYS + 1 - LIMIT);
    assert_eq!(not_listed[0]["limit"], LIMIT);
    assert_eq!(report["stats"]["findings_not_listed"], KEYS + 1 - LIMIT);

    let text = scan_with(dir.path(), &["--format", "text"]);
    assert_eq!(text.run.code, 1, "{}", text.run.stderr);
    let more = format!("… and {} more in this file", KEYS + 1 - LIMIT);
    assert!(text.run.stdout.contains(&more), "{}", text.run.stdout);
    assert!(
        text.run.stdout.contains("more not listed"),
        "{}",
        text.run.stdout
    );
}

/// 32 MiB of text (four chunks: memory is per chunk) in which every fourth byte starts a
/// keyword of the generic password rules (`pwd pwd …`, the worst ordinary text gets), with a
/// key on the last line: each hit once searched its whole window for a newline, which made
/// such text scan at 3 MB/s; the line around the hits is now found once. The key is still
/// found, within the bounds.
#[test]
fn keyword_dense_text_is_scanned_within_the_bounds() {
    const SIZE: usize = 32 << 20;
    let mut text = b"pwd ".repeat(SIZE / 4);
    let key = key_id();
    text.extend(format!("\n{}", String::from_utf8(leak(&key)).unwrap()).as_bytes());
    let dir = one_file_layout("srv/dense.txt", &text);

    let measured = scan(dir.path());
    assert_eq!(measured.run.code, 1, "{}", measured.run.stderr);
    let report = measured.run.json();
    let found = findings(&report);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["secret"], key.as_str());
    assert_eq!(found[0]["location"]["line"], 2);
    assert_eq!(report["stats"]["content_bytes"], text.len());
}
