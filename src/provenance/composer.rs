//! PHP Composer: `vendor/composer/installed.json` lists the installed packages, either as a
//! bare array (Composer 1) or as `{"packages": [...]}` (Composer 2, which adds each package's
//! `install-path`, relative to `vendor/composer/`). Composer records no per-file hashes, so a
//! package owns its install directory (`vendor/<name>` when no path is given).

use serde_json::Value;

use super::package::{Database, Manager, Package};
use super::paths::{join, parent};

/// Reads the `installed.json` at `path`.
pub fn read_installed_json(path: &str, bytes: &[u8]) -> Database {
    let mut database = Database::new(Manager::Composer, path);
    let composer_dir = parent(path);
    let vendor_dir = parent(composer_dir);
    let document: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(err) => {
            database
                .report
                .skip(format!("installed.json is not JSON: {err}"));
            return database;
        }
    };
    let packages = match &document {
        Value::Array(packages) => packages,
        Value::Object(object) => match object.get("packages") {
            Some(Value::Array(packages)) => packages,
            _ => {
                database.report.skip("installed.json has no packages array");
                return database;
            }
        },
        _ => {
            database
                .report
                .skip("installed.json is neither an array nor an object");
            return database;
        }
    };
    for (i, entry) in packages.iter().enumerate() {
        let text = |key: &str| entry.get(key).and_then(Value::as_str);
        let Some(name) = text("name").filter(|n| !n.is_empty()) else {
            database.report.skip(format!("package {i} has no name"));
            continue;
        };
        let root = match text("install-path") {
            Some(install_path) => join(composer_dir, install_path),
            None => join(vendor_dir, name),
        };
        let Some(root) = root.filter(|r| !r.is_empty()) else {
            database
                .report
                .skip(format!("{name}: install path outside the image"));
            continue;
        };
        database.report.records += 1;
        let version = text("version").unwrap_or("").to_string();
        database.packages.push(Package::rooted(
            Manager::Composer,
            name.to_string(),
            version,
            root,
        ));
    }
    database
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_composer_2_with_install_paths() {
        let json = br#"{"packages": [{"name": "monolog/monolog", "version": "3.5.0",
            "install-path": "../monolog/monolog"}, {"version": "1"}], "dev": true}"#;
        let db = read_installed_json("srv/app/vendor/composer/installed.json", json);
        assert_eq!(db.packages.len(), 1);
        assert_eq!(db.packages[0].name, "monolog/monolog");
        assert_eq!(
            db.packages[0].root.as_deref(),
            Some("srv/app/vendor/monolog/monolog")
        );
        assert_eq!(db.report.skipped, 1);
    }

    #[test]
    fn reads_composer_1_array() {
        let json = br#"[{"name": "psr/log", "version": "1.1.4"}]"#;
        let db = read_installed_json("vendor/composer/installed.json", json);
        assert_eq!(db.packages[0].version, "1.1.4");
        assert_eq!(db.packages[0].root.as_deref(), Some("vendor/psr/log"));
    }

    #[test]
    fn wrong_shapes_are_counted() {
        for bytes in [&b"42"[..], b"{\"packages\": 1}", b"[", b""] {
            let db = read_installed_json("vendor/composer/installed.json", bytes);
            assert!(db.packages.is_empty());
            assert_eq!(db.report.skipped, 1);
        }
    }
}
