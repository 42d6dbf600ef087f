//! npm packages: every `node_modules/<pkg>/package.json` (or `node_modules/@scope/<pkg>/`)
//! names a package installed into that directory. npm records no per-file hashes, so the
//! package owns its directory, not a list of files.

use serde_json::Value;

use super::package::{Database, Manager, Package};
use super::paths::{file_name, parent};

/// Reads the `package.json` at `path`.
pub fn read_package_json(path: &str, bytes: &[u8]) -> Database {
    let mut database = Database::new(Manager::Npm, path);
    let root = parent(path);
    let manifest: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(err) => {
            database
                .report
                .skip(format!("package.json is not JSON: {err}"));
            return database;
        }
    };
    let text = |key: &str| {
        manifest
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    // A package.json without a name is still the package installed in that directory.
    let name = text("name").unwrap_or_else(|| match parent(root) {
        scope if file_name(scope).starts_with('@') => {
            format!("{}/{}", file_name(scope), file_name(root))
        }
        _ => file_name(root).to_string(),
    });
    database.report.records += 1;
    database.packages.push(Package::rooted(
        Manager::Npm,
        name,
        text("version").unwrap_or_default(),
        root.to_string(),
    ));
    database
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_version_and_root() {
        let db = read_package_json(
            "app/node_modules/@aws-sdk/client-s3/package.json",
            br#"{"name": "@aws-sdk/client-s3", "version": "3.600.0", "main": "x.js"}"#,
        );
        let package = &db.packages[0];
        assert_eq!(package.name, "@aws-sdk/client-s3");
        assert_eq!(package.version, "3.600.0");
        assert_eq!(
            package.root.as_deref(),
            Some("app/node_modules/@aws-sdk/client-s3")
        );
    }

    #[test]
    fn nameless_and_broken_manifests() {
        let db = read_package_json("node_modules/@s/p/package.json", b"{}");
        assert_eq!(db.packages[0].name, "@s/p");
        let db = read_package_json("node_modules/p/package.json", b"{\"name\": ");
        assert!(db.packages.is_empty());
        assert_eq!(db.report.skipped, 1);
    }
}
