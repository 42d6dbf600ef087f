//! Reading `rpmdb.sqlite` from memory: the scanner never writes layer content to disk, so the
//! bytes are handed to SQLite with `sqlite3_deserialize` into a read-only in-memory database.

use std::io::{Cursor, Read};

use rusqlite::{Connection, MAIN_DB};

use super::package_from_header;
use crate::provenance::package::{Database, Manager};

/// Offsets of the SQLite header's "file format write/read version" bytes: 2 means WAL mode.
const WRITE_VERSION: usize = 18;
const READ_VERSION: usize = 19;

/// Reads every package header in the `Packages` table of the SQLite database `bytes`, found at
/// `path` under root `prefix`. A database SQLite cannot open or query becomes `not_read`; a
/// header that does not parse is skipped and counted.
pub fn read_sqlite(prefix: &str, path: &str, bytes: &[u8]) -> Database {
    let mut database = Database::new(Manager::Rpm, path);
    let blobs = match package_blobs(bytes) {
        Ok(blobs) => blobs,
        Err(err) => {
            database.not_read = Some(format!(
                "rpm database is not a readable SQLite database: {err}"
            ));
            return database;
        }
    };
    for (hnum, blob) in blobs {
        match package_from_header(prefix, &blob, &mut database.report) {
            Ok(package) => {
                database.report.records += 1;
                database.packages.push(package);
            }
            Err(err) => database.report.skip(format!("header {hnum}: {err}")),
        }
    }
    database
}

fn package_blobs(bytes: &[u8]) -> rusqlite::Result<Vec<(i64, Vec<u8>)>> {
    let mut connection = Connection::open_in_memory()?;
    // rpm writes in WAL mode, which an in-memory database cannot open: the header says
    // so in two bytes, set back to rollback-journal mode on the copy SQLite reads (the WAL file
    // itself is checkpointed into the database when rpm closes it).
    let mut head = bytes[..bytes.len().min(100)].to_vec();
    for at in [WRITE_VERSION, READ_VERSION] {
        if let Some(byte) = head.get_mut(at).filter(|b| **b == 2) {
            *byte = 1;
        }
    }
    let reader = Cursor::new(head).chain(&bytes[bytes.len().min(100)..]);
    connection.deserialize_read_exact(MAIN_DB, reader, bytes.len(), true)?;
    let mut statement = connection.prepare("SELECT hnum, blob FROM Packages")?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::super::header::{build_blob, strings};
    use super::*;

    fn database_with(blobs: &[Vec<u8>], wal: bool) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rpmdb.sqlite");
        let connection = Connection::open(&file).unwrap();
        if wal {
            connection
                .pragma_update(None, "journal_mode", "WAL")
                .unwrap();
        }
        connection
            .execute_batch("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
            .unwrap();
        for blob in blobs {
            connection
                .execute("INSERT INTO Packages (blob) VALUES (?1)", [blob])
                .unwrap();
        }
        drop(connection);
        std::fs::read(&file).unwrap()
    }

    #[test]
    fn reads_headers_from_memory_in_wal_mode_and_counts_bad_ones() {
        let good = build_blob(&[
            (1000, 6, 1, strings(&["bash"]).1),
            (1001, 6, 1, strings(&["5.2"]).1),
        ]);
        let bytes = database_with(&[good, b"garbage".to_vec()], true);
        assert_eq!(bytes[18], 2, "the fixture is in WAL mode");
        let db = read_sqlite("", "var/lib/rpm/rpmdb.sqlite", &bytes);
        assert_eq!(db.not_read, None);
        assert_eq!(db.packages.len(), 1);
        assert_eq!(db.packages[0].name, "bash");
        assert_eq!(db.report.skipped, 1);
    }

    #[test]
    fn garbage_and_truncated_databases_are_not_read_not_panics() {
        let db = read_sqlite("", "var/lib/rpm/rpmdb.sqlite", b"not sqlite at all");
        assert!(db.not_read.unwrap().contains("not a readable SQLite"));
        let whole = database_with(&[build_blob(&[(1000, 6, 1, strings(&["x"]).1)])], false);
        for len in [0, 50, 100, 1000, whole.len() / 2] {
            let db = read_sqlite(
                "",
                "var/lib/rpm/rpmdb.sqlite",
                &whole[..len.min(whole.len())],
            );
            assert!(db.packages.len() <= 1);
        }
    }
}
