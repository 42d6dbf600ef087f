//! Path arithmetic on image paths as the layer walker spells them: relative to the image root,
//! `/`-separated, no leading `/`. Recorded paths come absolute (dpkg, rpm), relative to a
//! database's directory (pip's `../../bin/x`), or relative to a root the database sits under.

/// `path` in canonical form: no leading `/` or `./`, no empty or `.` components, `..` applied.
/// `None` when `..` climbs above the root (a record that points outside the image).
pub fn normalise(path: &str) -> Option<String> {
    // Nearly every recorded path is already canonical once its leading `/` is gone: copy it
    // (package databases hold ~100k paths, read again at every layer that changes them).
    let trimmed = path.trim_start_matches('/');
    if trimmed
        .split('/')
        .all(|part| !matches!(part, "" | "." | ".."))
    {
        return Some(trimmed.to_string());
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// `relative` taken from directory `base` (both image paths; an absolute `relative` still
/// starts at `base`, which is how a database under a chroot prefix records its files).
pub fn join(base: &str, relative: &str) -> Option<String> {
    if base.is_empty() {
        normalise(relative)
    } else {
        normalise(&format!("{base}/{relative}"))
    }
}

/// The directory holding `path` (`""` for a top-level name).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The last component of `path`.
pub fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// When `path` is `suffix` or ends with `/suffix`, the part before it (the root the database
/// sits under, `""` for the image root); otherwise `None`.
pub fn prefix_before<'a>(path: &'a str, suffix: &str) -> Option<&'a str> {
    let head = path.strip_suffix(suffix)?;
    if head.is_empty() {
        Some("")
    } else {
        head.strip_suffix('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_refuses_escapes() {
        assert_eq!(normalise("/usr/./bin//ls").as_deref(), Some("usr/bin/ls"));
        assert_eq!(normalise("a/b/../../c").as_deref(), Some("c"));
        assert_eq!(normalise("a/../../c"), None);
        assert_eq!(normalise("/").as_deref(), Some(""));
        assert_eq!(normalise("a/b/").as_deref(), Some("a/b"));
        assert_eq!(
            normalise("/usr/share/doc").as_deref(),
            Some("usr/share/doc")
        );
        assert_eq!(
            join("usr/lib/site", "../../bin/x").as_deref(),
            Some("usr/bin/x")
        );
        assert_eq!(join("", "/etc/passwd").as_deref(), Some("etc/passwd"));
        assert_eq!(
            join("rootfs", "/etc/passwd").as_deref(),
            Some("rootfs/etc/passwd")
        );
    }

    #[test]
    fn prefixes_end_on_component_boundaries() {
        assert_eq!(
            prefix_before("var/lib/dpkg/status", "var/lib/dpkg/status"),
            Some("")
        );
        assert_eq!(
            prefix_before("x/var/lib/dpkg/status", "var/lib/dpkg/status"),
            Some("x")
        );
        assert_eq!(
            prefix_before("xvar/lib/dpkg/status", "var/lib/dpkg/status"),
            None
        );
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(parent("c"), "");
        assert_eq!(file_name("a/b/c"), "c");
    }
}
