//! Archives built block by block, each exercising one rule of Go's reading.

use super::*;

/// A header block: `name`, type, size field, in ustar (or GNU) layout, checksum set.
fn header(name: &[u8], typeflag: u8, size: u64, gnu: bool) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    block[..name.len()].copy_from_slice(name);
    block[100..108].copy_from_slice(b"0000644\0");
    block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    block[156] = typeflag;
    let (magic, version): (&[u8], &[u8]) = if gnu {
        (b"ustar ", b" \0")
    } else {
        (b"ustar\0", b"00")
    };
    block[257..263].copy_from_slice(magic);
    block[263..265].copy_from_slice(version);
    seal(&mut block);
    block
}

/// Sets the checksum of a block whose fields were changed.
fn seal(block: &mut [u8; BLOCK]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// A 12-byte numeric field in base-256, for values octal cannot hold.
fn base_256(value: u64) -> [u8; 12] {
    let mut field = [0u8; 12];
    field[0] = 0x80;
    field[4..].copy_from_slice(&value.to_be_bytes());
    field
}

/// Data padded to whole blocks.
fn padded(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

fn entries(archive: &[u8]) -> Result<Vec<(Entry, Vec<u8>)>> {
    let mut reader = TarReader::new(StreamInput(archive));
    let mut out = Vec::new();
    while let Some(entry) = reader.next_entry()? {
        let mut data = Vec::new();
        reader.data().read_to_end(&mut data)?;
        out.push((entry, data));
    }
    Ok(out)
}

fn file(name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = header(name.as_bytes(), b'0', data.len() as u64, false).to_vec();
    out.extend(padded(data));
    out
}

#[test]
fn header_only_types_have_no_data_whatever_their_size() {
    for typeflag in [b'1', b'2', b'3', b'4', b'5', b'6'] {
        let mut archive = header(b"hides/", typeflag, 1024, false).to_vec();
        archive.extend(file("secret.txt", b"AKIA in here"));
        archive.extend([0u8; 2 * BLOCK]);
        let read = entries(&archive).unwrap();
        assert_eq!(read.len(), 2, "type {typeflag}");
        assert_eq!(read[0].0.stored, 0);
        assert_eq!(
            read[0].0.anomalies,
            vec![Anomaly::SizeOnHeaderOnlyEntry(1024)]
        );
        assert_eq!(read[1].0.path, b"secret.txt");
        assert_eq!(read[1].1, b"AKIA in here");
    }
}

#[test]
fn legacy_type_with_a_trailing_slash_is_a_directory() {
    let mut archive = header(b"dir/", 0, 512, false).to_vec();
    archive.extend(file("next", b"x"));
    let read = entries(&archive).unwrap();
    assert_eq!(read[0].0.kind, Kind::Dir);
    assert_eq!(read[1].0.path, b"next", "the end of input ends the archive");
}

#[test]
fn long_names_pax_records_and_global_headers() {
    let long = "d/".repeat(80) + "file";
    let mut archive = header(b"././@LongLink", b'L', long.len() as u64 + 1, true).to_vec();
    archive.extend(padded(format!("{long}\0").as_bytes()));
    archive.extend(file("short", b"1"));
    let records = b"21 path=pax/name.txt\n10 size=3\n";
    archive.extend(header(b"PaxHeaders/x", b'x', records.len() as u64, false));
    archive.extend(padded(records));
    archive.extend(header(b"header-name", b'0', 3, false));
    archive.extend(padded(b"abc"));
    // A global header ends what is pending: the `x` before it does not name the next file.
    archive.extend(header(b"PaxHeaders/x", b'x', records.len() as u64, false));
    archive.extend(padded(records));
    let global = b"17 comment=hello\n";
    archive.extend(header(
        b"pax_global_header",
        b'g',
        global.len() as u64,
        false,
    ));
    archive.extend(padded(global));
    archive.extend(file("plain", b"p"));
    let read = entries(&archive).unwrap();
    let names: Vec<&[u8]> = read.iter().map(|(e, _)| e.path.as_slice()).collect();
    assert_eq!(names, vec![long.as_bytes(), b"pax/name.txt", b"plain"]);
    assert_eq!(read[1].1, b"abc");
}

#[test]
fn oversize_metadata_is_skipped_unread_and_reported() {
    let limits = Limits {
        name: 1024,
        pax: 2048,
        sparse_map: 4096,
    };
    let mut archive = header(b"././@LongLink", b'L', 5000, true).to_vec();
    archive.extend(padded(&[b'n'; 5000]));
    archive.extend(file("named-by-header", b"data"));
    archive.extend(header(b"PaxHeaders/x", b'x', 3000, false));
    archive.extend(padded(&[b'p'; 3000]));
    archive.extend(file("after-pax", b"more"));
    let mut reader = TarReader::with_limits(StreamInput(archive.as_slice()), limits);
    let first = reader.next_entry().unwrap().unwrap();
    assert_eq!(first.path, b"named-by-header");
    assert_eq!(first.anomalies, vec![Anomaly::LongNameOverLimit(5000)]);
    let second = reader.next_entry().unwrap().unwrap();
    assert_eq!(second.path, b"after-pax");
    assert_eq!(second.anomalies, vec![Anomaly::PaxOverLimit(3000)]);
    assert!(reader.next_entry().unwrap().is_none());
}

#[test]
fn old_gnu_sparse_holes_are_described_not_expanded() {
    let mut block = header(b"sparse.img", b'S', 10, true);
    // One segment of 5 bytes at 0, another of 5 bytes 1 PiB further; real size past both.
    block[386..398].copy_from_slice(&base_256(0));
    block[398..410].copy_from_slice(&base_256(5));
    block[410..422].copy_from_slice(&base_256(1 << 50));
    block[422..434].copy_from_slice(&base_256(5));
    block[483..495].copy_from_slice(&base_256((1 << 50) + 5));
    seal(&mut block);
    let mut archive = block.to_vec();
    archive.extend(padded(b"helloworld"));
    archive.extend(file("after", b"a"));
    let read = entries(&archive).unwrap();
    let sparse = read[0].0.sparse.as_ref().unwrap();
    assert_eq!(
        sparse,
        &vec![
            Segment { offset: 0, len: 5 },
            Segment {
                offset: 1 << 50,
                len: 5
            }
        ]
    );
    assert_eq!(
        (read[0].0.stored, read[0].1.as_slice()),
        (10, &b"helloworld"[..])
    );
    assert_eq!(read[1].0.path, b"after");
}

#[test]
fn pax_sparse_1_0_map_is_taken_from_the_data() {
    let records = b"22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n\
                    29 GNU.sparse.name=real/name\n28 GNU.sparse.realsize=9000\n";
    let mut archive = header(b"PaxHeaders/x", b'x', records.len() as u64, false).to_vec();
    archive.extend(padded(records));
    let mut data = padded(b"1\n8192\n4\n");
    data.extend(b"tail");
    archive.extend(header(
        b"GNUSparseFile.0/name",
        b'0',
        data.len() as u64,
        false,
    ));
    archive.extend(padded(&data));
    let read = entries(&archive).unwrap();
    let (entry, stored) = &read[0];
    assert_eq!(entry.path, b"real/name");
    assert_eq!(
        entry.sparse,
        Some(vec![Segment {
            offset: 8192,
            len: 4
        }])
    );
    assert_eq!(stored, b"tail");
    assert!(entry.anomalies.is_empty(), "{:?}", entry.anomalies);
}

#[test]
fn errors_name_offsets_never_input_bytes() {
    // A PAX size shorter than its data: the next "header" is file content.
    let secret = b"AKIAQWERTYUIOPASDFGH";
    let mut archive = header(b"x", b'0', 512, false).to_vec();
    let mut fake = [0u8; BLOCK];
    fake[..secret.len()].copy_from_slice(secret);
    archive.extend(fake);
    archive.extend(fake);
    let err = format!("{:#}", entries(&archive).unwrap_err());
    assert!(
        err.contains("corrupt tar") && err.contains("byte 1024"),
        "{err}"
    );
    assert!(!err.contains("QWERTY"), "{err}");

    let mut cut = file("cut", &[b'z'; 2000]);
    cut.truncate(1000);
    let err = format!("{:#}", entries(&cut).unwrap_err());
    assert!(err.contains("truncated tar"), "{err}");
}

#[test]
fn end_of_archive_as_go_reads_it() {
    let mut archive = file("a", b"1");
    archive.extend([0u8; BLOCK]);
    assert_eq!(
        entries(&archive).unwrap().len(),
        1,
        "one zero block, then the end"
    );
    archive.extend(file("b", b"2"));
    assert!(
        entries(&archive).is_err(),
        "a zero block followed by a header"
    );
    let mut no_padding = header(b"a", b'0', 1, false).to_vec();
    no_padding.push(b'1');
    assert_eq!(entries(&no_padding).unwrap().len(), 1);
}

#[test]
fn a_mapped_archive_gives_data_positions() {
    let mut archive = file("a", b"first");
    archive.extend(file("b", b"second"));
    let mut reader = TarReader::new(SliceInput(&archive));
    let a = reader.next_entry().unwrap().unwrap();
    let b = reader.next_entry().unwrap().unwrap();
    let data = |e: &Entry| &archive[e.data_start as usize..(e.data_start + e.stored) as usize];
    assert_eq!((data(&a), data(&b)), (&b"first"[..], &b"second"[..]));
}

#[test]
fn global_headers_are_checked_as_go_checks_them() {
    let bad = b"12 size=4x2\n";
    let mut archive = header(b"pax_global_header", b'g', bad.len() as u64, false).to_vec();
    archive.extend(padded(bad));
    archive.extend(file("a", b"1"));
    let err = format!("{:#}", entries(&archive).unwrap_err());
    assert!(err.contains("PAX size"), "{err}");
}

#[test]
fn negative_sizes_are_refused_unless_the_type_has_no_data() {
    let mut dir = header(b"dir/", b'5', 0, false);
    dir[124..136].copy_from_slice(&[0xff; 12]); // -1 in base-256
    seal(&mut dir);
    let mut archive = dir.to_vec();
    archive.extend(file("a", b"1"));
    let read = entries(&archive).unwrap();
    assert_eq!(
        read[0].0.anomalies,
        vec![Anomaly::SizeOnHeaderOnlyEntry(-1)]
    );
    let mut regular = dir;
    regular[156] = b'0';
    seal(&mut regular);
    assert!(entries(&regular).is_err());
}

#[test]
fn unknown_types_keep_their_data_and_are_reported() {
    let mut archive = header(b"volume", b'V', 3, false).to_vec();
    archive.extend(padded(b"abc"));
    let read = entries(&archive).unwrap();
    assert_eq!(
        (read[0].0.kind, read[0].1.as_slice()),
        (Kind::Other, &b"abc"[..])
    );
    assert_eq!(read[0].0.anomalies, vec![Anomaly::UnknownType(b'V')]);
    assert!(read[0].0.holds_file_data());
}

#[test]
fn old_gnu_sparse_maps_continue_in_extension_blocks() {
    let mut block = header(b"ext.img", b'S', 3, true);
    block[386..398].copy_from_slice(&base_256(0));
    block[398..410].copy_from_slice(&base_256(1));
    block[482] = 1; // an extension block follows
    block[483..495].copy_from_slice(&base_256(1 << 40));
    seal(&mut block);
    let mut extension = [0u8; BLOCK];
    extension[..12].copy_from_slice(&base_256(1 << 30));
    extension[12..24].copy_from_slice(&base_256(2));
    let mut archive = block.to_vec();
    archive.extend(extension);
    archive.extend(padded(b"xyz"));
    let read = entries(&archive).unwrap();
    let expected = vec![
        Segment { offset: 0, len: 1 },
        Segment {
            offset: 1 << 30,
            len: 2,
        },
    ];
    assert_eq!(read[0].0.sparse, Some(expected));
    assert_eq!(read[0].1, b"xyz", "the extension block is not data");
}

#[test]
fn sparse_maps_over_the_limit_or_off_the_data_are_reported() {
    let records = b"22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n";
    let mut archive = header(b"PaxHeaders/x", b'x', records.len() as u64, false).to_vec();
    archive.extend(padded(records));
    let map = padded(b"3\n0\n1\n");
    let mut data = map.clone();
    data.extend([b'1'; BLOCK]); // the map wants more lines than the limit allows
    archive.extend(header(b"big-map", b'0', data.len() as u64, false));
    archive.extend(padded(&data));
    let limits = Limits {
        sparse_map: BLOCK as u64,
        ..LIMITS
    };
    let mut reader = TarReader::with_limits(StreamInput(archive.as_slice()), limits);
    let entry = reader.next_entry().unwrap().unwrap();
    assert_eq!(
        (entry.sparse, entry.anomalies),
        (None, vec![Anomaly::SparseMapOverLimit])
    );

    // A 0.1 map that accounts for fewer bytes than are stored.
    let records = b"22 GNU.sparse.major=0\n22 GNU.sparse.minor=1\n\
                    26 GNU.sparse.numblocks=1\n22 GNU.sparse.map=0,2\n";
    let mut archive = header(b"PaxHeaders/x", b'x', records.len() as u64, false).to_vec();
    archive.extend(padded(records));
    archive.extend(header(b"short-map", b'0', 5, false));
    archive.extend(padded(b"12345"));
    let read = entries(&archive).unwrap();
    assert_eq!(
        read[0].0.anomalies,
        vec![Anomaly::SparseDataMismatch {
            mapped: 2,
            stored: 5
        }]
    );
    for anomaly in &read[0].0.anomalies {
        assert!(anomaly.to_string().contains("2 bytes but 5"), "{anomaly}");
    }
}
