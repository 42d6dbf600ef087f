//! The faster paths of a scan find exactly what the plain ones find.
//!
//! - The keyword prefilter files every keyword under one rare three-byte window and compares
//!   in full where a window's bit is set, eight positions at a time where the processor has
//!   AVX2; `STOWAWAY_PREFILTER=scalar` keeps it to one position at a time, and
//!   `STOWAWAY_PREFILTER=reference` swaps in aho-corasick's own overlapping search. Whole
//!   scans of the classic leak and of the README's demo must report the same findings every
//!   way.
//! - An uncompressed layer is scanned where it lies in a mapped file, its digest computed as
//!   the walk passes and its pages dropped behind the walk; a compressed one is streamed. A
//!   layer longer than the distance the walk keeps resident must give the same findings both
//!   ways, and the mapped scan must not hold the whole layer in memory.

mod support;

use std::time::Duration;

use support::run::{finding_keys, run_measured, scan_json, scan_json_env};
use support::*;

#[test]
fn the_window_filter_and_the_reference_search_find_the_same() {
    let dir = tempdir();
    let (spec, _) = classic_leak();
    let leak = write_image_in(
        &spec,
        Format::DockerOci,
        Compression::Gzip,
        &dir.path().join("leak.tar"),
    );
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/demo-leaky.tar");
    for image in [leak.path.clone(), demo] {
        let arg = format!("docker-archive:{}", image.display());
        let (code, by_windows) = scan_json(&arg);
        assert_eq!(code, 1, "{arg}: findings exit 1");
        let keys = finding_keys(&by_windows);
        assert!(keys.len() >= 5, "{arg}: {keys:#?}");
        for search in ["scalar", "reference"] {
            let (code, by_other) = scan_json_env(&arg, &[("STOWAWAY_PREFILTER", search)]);
            assert_eq!(code, 1, "{arg} with the {search} search");
            assert_eq!(
                keys,
                finding_keys(&by_other),
                "{arg} with the {search} search"
            );
        }
    }
}

/// About 200 MiB of ordinary text in one file, with secrets near its start, middle and end,
/// then a thousand small files (some with secrets) after it: far longer than the walk keeps
/// resident, so pages of the big file are dropped while small files are still to come.
fn long_layer_image() -> (ImageSpec, Vec<(String, usize)>) {
    let line = b"2024-05-17T12:00:00Z INFO worker 7 finished job 1234 in 12ms (queue depth 3)\n";
    let mut big = Vec::with_capacity(200 << 20);
    while big.len() < 200 << 20 {
        big.extend_from_slice(line);
    }
    // (path, line) of every planted secret.
    let mut planted = Vec::new();
    for at in [1 << 20, 100 << 20, (200 << 20) - 4096] {
        let token = secrets::github_classic_token();
        let text = format!("\nexport GITHUB_TOKEN={token}\n");
        big[at..at + text.len()].copy_from_slice(text.as_bytes());
        let line = big[..at].iter().filter(|&&b| b == b'\n').count() + 2;
        planted.push(("var/log/worker.log".to_string(), line));
    }
    let mut entries = vec![Entry::dir("var"), Entry::dir("var/log"), Entry::dir("app")];
    entries.push(Entry::file("var/log/worker.log", big));
    for index in 0..1000 {
        let content = if index % 250 == 7 {
            let key = secrets::aws_access_key_id();
            planted.push((format!("app/item-{index}.ini"), 2));
            format!("[default]\naws_access_key_id = {key}\n")
        } else {
            format!("name = item-{index}\nsize = {}\n", index * 3)
        };
        entries.push(Entry::file(&format!("app/item-{index}.ini"), content));
    }
    let spec = ImageSpec {
        layers: vec![Layer::new("COPY . /", entries)],
        ..ImageSpec::default()
    };
    (spec, planted)
}

#[test]
fn a_long_mapped_layer_gives_the_streamed_findings_in_bounded_memory() {
    let (spec, planted) = long_layer_image();
    let dir = tempdir();
    let mapped = write_image_in(
        &spec,
        Format::DockerOci,
        Compression::None,
        &dir.path().join("mapped.tar"),
    );
    let streamed = write_image_in(
        &spec,
        Format::OciLayout,
        Compression::Gzip,
        &dir.path().join("streamed"),
    );
    drop(spec);
    let mapped_arg = format!("docker-archive:{}", mapped.path.display());
    let measured = run_measured(
        &["scan", "--format", "json", "--no-progress", &mapped_arg],
        Duration::from_secs(600),
    );
    assert_eq!(measured.run.code, 1, "{}", measured.run.stderr);
    let by_map = measured.run.json();
    // The layer is 200 MiB; the walk keeps 32 MiB behind it and the budget 32 MiB in flight.
    assert!(
        measured.peak_rss_mib < 175,
        "peak RSS {} MiB scanning a 200 MiB mapped layer",
        measured.peak_rss_mib
    );
    let (code, by_stream) = scan_json_env(
        &format!("oci:{}", streamed.path.display()),
        &[("STOWAWAY_NO_CACHE", "1")],
    );
    assert_eq!(code, 1);
    let keys = finding_keys(&by_map);
    assert_eq!(keys, finding_keys(&by_stream));
    assert_eq!(keys.len(), planted.len(), "{keys:#?}");
    for (path, line) in &planted {
        assert!(
            keys.iter()
                .any(|key| key.contains(path.as_str()) && key.contains(&format!(" line={line} "))),
            "{path} line {line} not in {keys:#?}"
        );
    }
}
