//! Ruby gems: `<gem home>/specifications/<name>-<version>[-<platform>].gemspec` describes a gem
//! installed in `<gem home>/gems/<same stem>/`. RubyGems records no per-file hashes, so the gem
//! owns that directory. The gemspec is Ruby source; the name and version are read from its
//! `s.name = "…"` and `s.version = "…"` lines, as `gem install` writes them.

use super::package::{Database, Manager, Package};
use super::paths::{file_name, join, parent};

/// Reads the gemspec at `path`.
pub fn read_gemspec(path: &str, bytes: &[u8]) -> Database {
    let mut database = Database::new(Manager::Gem, path);
    let stem = file_name(path).strip_suffix(".gemspec").unwrap_or("");
    let home = parent(parent(path));
    let Some(root) = join(home, &format!("gems/{stem}")).filter(|_| !stem.is_empty()) else {
        database.report.skip("gemspec without a name");
        return database;
    };
    let text = String::from_utf8_lossy(bytes);
    let name = assigned(&text, ".name").unwrap_or_else(|| stem.to_string());
    let version = assigned(&text, ".version").unwrap_or_default();
    database.report.records += 1;
    database
        .packages
        .push(Package::rooted(Manager::Gem, name, version, root));
    database
}

/// The first quoted string on a `<receiver><attribute> = "value"` line.
fn assigned(text: &str, attribute: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (left, right) = line.split_once('=')?;
        if !left.trim_end().ends_with(attribute) {
            return None;
        }
        let quote = right.find(['"', '\''])?;
        let delimiter = right[quote..].chars().next()?;
        let rest = &right[quote + 1..];
        Some(rest[..rest.find(delimiter)?].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_generated_gemspec() {
        let spec = b"# -*- encoding: utf-8 -*-\nGem::Specification.new do |s|\n  s.name = \"net-ssh\".freeze\n  s.version = \"7.2.0\"\n  s.required_rubygems_version = Gem::Requirement.new(\">= 0\")\nend\n";
        let db = read_gemspec(
            "usr/local/bundle/specifications/net-ssh-7.2.0.gemspec",
            spec,
        );
        let package = &db.packages[0];
        assert_eq!(
            (package.name.as_str(), package.version.as_str()),
            ("net-ssh", "7.2.0")
        );
        assert_eq!(
            package.root.as_deref(),
            Some("usr/local/bundle/gems/net-ssh-7.2.0")
        );
    }

    #[test]
    fn unreadable_spec_falls_back_to_the_file_name() {
        let db = read_gemspec("specifications/x-1.gemspec", &[0xff, 0xfe, 0]);
        assert_eq!(db.packages[0].name, "x-1");
        assert_eq!(db.packages[0].root.as_deref(), Some("gems/x-1"));
    }
}
