//! Layer walking throughput: `walk_layer` over a ~64 MiB layer stored as a plain tar, as
//! tar+gzip (level 6) and as tar+zstd (level 3), next to raw decompression of the same blobs
//! and a SHA-256 of the tar, so the walker's own overhead can be read off.
//!
//! The layer is generated from a fixed seed in a temporary directory: thousands of small text
//! and binary files under a directory tree, a few large files (one larger than the walker's
//! chunk size), directories, symlinks, a hard link and a whiteout. The callback only sums chunk
//! lengths, so the numbers are the walker's (tar parsing, decompression, digest checks), not
//! the detector's. Every throughput is in uncompressed tar bytes.
//!
//! Run: `cargo bench --bench layer_walk` (or `-- --test` to run each benchmark once).

use std::fs::File;
use std::hint::black_box;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stowaway::layer::walk_layer;
use stowaway::source::{Digest, Layer, LayerBlob, MappedBytes};

const SEED: u64 = 0x1a7e_5eed_0000_0064;
/// Bytes of small files; the large ones add about 26 MiB.
const SMALL_FILES_BYTES: usize = 38 << 20;

const WORDS: &[&str] = &[
    "server",
    "cache",
    "queue",
    "worker",
    "client",
    "session",
    "buffer",
    "request",
    "response",
    "handler",
    "config",
    "module",
    "service",
    "timeout",
    "retry",
    "stream",
    "channel",
    "record",
    "index",
    "table",
    "user",
    "image",
    "layer",
    "volume",
    "network",
    "route",
    "policy",
    "metric",
    "start",
    "stop",
    "load",
    "parse",
    "read",
    "write",
    "open",
    "close",
    "send",
    "build",
    "fetch",
    "update",
    "delete",
    "create",
    "resolve",
    "flush",
    "default",
    "max",
    "local",
    "remote",
    "=",
    "{",
    "}",
    "(",
    ")",
    ";",
    "->",
    "if",
    "return",
    "for",
    "let",
    "fn",
    "def",
    "0",
    "1",
    "true",
    "false",
    "null",
    "\"/usr/lib\"",
    "# note:",
    "password",
    "token",
    "key",
];

fn text(rng: &mut fastrand::Rng, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 128);
    while out.len() < size {
        let indent = rng.usize(..4) * 4;
        out.resize(out.len() + indent, b' ');
        for i in 0..rng.usize(2..12) {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(WORDS[rng.usize(..WORDS.len())].as_bytes());
        }
        out.push(b'\n');
    }
    out.truncate(size);
    out
}

/// Binary that compresses like object code: skewed bytes, zero runs, string tables.
fn binaryish(rng: &mut fastrand::Rng, size: usize) -> Vec<u8> {
    const COMMON: &[u8] = &[
        0x00, 0x00, 0x00, 0x48, 0x89, 0x8b, 0xe8, 0xff, 0xc3, 0x0f, 0x85, 0x74,
    ];
    let mut out = Vec::with_capacity(size + 8192);
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0");
    while out.len() < size {
        match rng.u32(..8) {
            0..=4 => {
                for _ in 0..rng.usize(256..4096) {
                    out.push(if rng.u32(..3) == 0 {
                        rng.u8(..)
                    } else {
                        COMMON[rng.usize(..COMMON.len())]
                    });
                }
            }
            5 => out.resize(out.len() + rng.usize(64..2048), 0),
            _ => {
                for _ in 0..rng.usize(8..48) {
                    out.extend_from_slice(WORDS[rng.usize(..WORDS.len())].as_bytes());
                    out.push(if rng.bool() { b'_' } else { 0 });
                }
            }
        }
    }
    out.truncate(size);
    out
}

fn random(rng: &mut fastrand::Rng, size: usize) -> Vec<u8> {
    let mut out = vec![0u8; size];
    rng.fill(&mut out);
    out
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Writes the layer tar; returns its size.
fn write_tar(path: &Path) -> io::Result<u64> {
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut builder = tar::Builder::new(BufWriter::new(File::create(path)?));
    let add_file = |builder: &mut tar::Builder<BufWriter<File>>, name: &str, data: &[u8]| {
        let mut h = header(tar::EntryType::Regular, data.len() as u64, 0o644);
        builder.append_data(&mut h, name, data)
    };
    let mut small = 0;
    let mut dir_index = 0;
    let mut first_file = None;
    while small < SMALL_FILES_BYTES {
        let dir = format!("usr/share/pkg{dir_index:03}/{}", WORDS[rng.usize(..28)]);
        let mut h = header(tar::EntryType::Directory, 0, 0o755);
        builder.append_data(&mut h, format!("{dir}/"), io::empty())?;
        for i in 0..rng.usize(10..60) {
            let size = match rng.u32(..10) {
                0..=5 => rng.usize(100..4 << 10),
                6..=8 => rng.usize(4 << 10..32 << 10),
                _ => rng.usize(32 << 10..256 << 10),
            };
            let data = if rng.u32(..5) == 0 {
                binaryish(&mut rng, size)
            } else {
                text(&mut rng, size)
            };
            let name = format!(
                "{dir}/file{i:03}.{}",
                ["txt", "py", "rs", "so", "conf"][rng.usize(..5)]
            );
            add_file(&mut builder, &name, &data)?;
            first_file.get_or_insert(name);
            small += size;
        }
        let mut h = header(tar::EntryType::Symlink, 0, 0o777);
        builder.append_link(&mut h, format!("{dir}/latest"), "file000.txt")?;
        dir_index += 1;
    }
    let mut h = header(tar::EntryType::Link, 0, 0o644);
    builder.append_link(&mut h, "usr/share/hardlink", first_file.unwrap())?;
    add_file(&mut builder, "usr/share/pkg000/.wh.removed.conf", b"")?;
    let mut h = header(tar::EntryType::Directory, 0, 0o755);
    builder.append_data(&mut h, "opt/big/", io::empty())?;
    add_file(&mut builder, "opt/big/app.log", &text(&mut rng, 12 << 20))?;
    add_file(
        &mut builder,
        "opt/big/libbig.so",
        &binaryish(&mut rng, 8 << 20),
    )?;
    add_file(&mut builder, "opt/big/blob.bin", &random(&mut rng, 6 << 20))?;
    let mut out = builder.into_inner()?;
    out.flush()?;
    drop(out);
    Ok(std::fs::metadata(path)?.len())
}

fn compress(src: &Path, gz: &Path, zst: &Path) -> io::Result<()> {
    let tar = std::fs::read(src)?;
    let mut encoder = flate2::write::GzEncoder::new(
        BufWriter::new(File::create(gz)?),
        flate2::Compression::new(6),
    );
    encoder.write_all(&tar)?;
    encoder.finish()?.flush()?;
    let mut encoder = zstd::stream::write::Encoder::new(BufWriter::new(File::create(zst)?), 3)?;
    encoder.write_all(&tar)?;
    encoder.finish()?.flush()?;
    Ok(())
}

fn layer(path: &Path, diff_id: &Digest, media_type: &str) -> Layer {
    let bytes = MappedBytes::map_file(path).expect("map layer");
    Layer {
        digest: Some(Digest::of(&bytes)),
        diff_id: Some(diff_id.clone()),
        media_type: Some(media_type.to_string()),
        size: bytes.len() as u64,
        blob: LayerBlob::Mapped(bytes),
    }
}

fn walk(layer: &Layer) -> u64 {
    let mut total = 0u64;
    let walked = walk_layer(layer, &mut |chunk| {
        total += chunk.content.len() as u64;
        Ok(())
    })
    .expect("walk layer");
    black_box(walked.files);
    total
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    let tar_size = write_tar(&path("layer.tar")).expect("write layer tar");
    compress(
        &path("layer.tar"),
        &path("layer.tar.gz"),
        &path("layer.tar.zst"),
    )
    .expect("compress layer");
    let tar_bytes = MappedBytes::map_file(&path("layer.tar")).expect("map tar");
    let diff_id = Digest::of(&tar_bytes);
    let plain = layer(
        &path("layer.tar"),
        &diff_id,
        "application/vnd.oci.image.layer.v1.tar",
    );
    let gz = layer(
        &path("layer.tar.gz"),
        &diff_id,
        "application/vnd.oci.image.layer.v1.tar+gzip",
    );
    let zst = layer(
        &path("layer.tar.zst"),
        &diff_id,
        "application/vnd.oci.image.layer.v1.tar+zstd",
    );
    let probe = walk_layer(&plain, &mut |_| Ok(())).expect("walk layer");
    eprintln!(
        "layer: {:.1} MiB tar ({} files, {:.1} MiB content), gzip {:.1} MiB, zstd {:.1} MiB",
        tar_size as f64 / 1048576.0,
        probe.files,
        probe.content_bytes as f64 / 1048576.0,
        gz.size as f64 / 1048576.0,
        zst.size as f64 / 1048576.0,
    );

    let mut group = c.benchmark_group("layer_walk");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Bytes(tar_size));
    group.bench_function("walk/tar", |b| b.iter(|| walk(&plain)));
    group.bench_function("walk/tar_gz", |b| b.iter(|| walk(&gz)));
    group.bench_function("walk/tar_zst", |b| b.iter(|| walk(&zst)));
    let LayerBlob::Mapped(gz_bytes) = &gz.blob else {
        unreachable!()
    };
    let LayerBlob::Mapped(zst_bytes) = &zst.blob else {
        unreachable!()
    };
    group.bench_function("decompress/gzip", |b| {
        b.iter(|| {
            let mut decoder = flate2::read::MultiGzDecoder::new(&gz_bytes[..]);
            io::copy(&mut decoder, &mut io::sink()).unwrap()
        })
    });
    group.bench_function("decompress/zstd", |b| {
        b.iter(|| {
            let mut decoder = zstd::stream::read::Decoder::new(&zst_bytes[..]).unwrap();
            io::copy(&mut decoder, &mut io::sink()).unwrap()
        })
    });
    group.bench_function("sha256/tar", |b| {
        b.iter(|| Digest::of(black_box(&tar_bytes)))
    });
    group.finish();
    drop((plain, gz, zst, tar_bytes));
}

criterion_group!(layer_walk, benches);
criterion_main!(layer_walk);
