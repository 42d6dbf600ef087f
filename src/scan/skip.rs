//! The files a user asked not to scan (`--skip-dirs`, `--skip-files`), as Trivy's flags of the
//! same names read them: globs on the whole path in the image, a leading `/` optional, `*`
//! within one name, `**` across directories. Skipped files are walked (a layer is one tar
//! stream, and package databases and whiteouts still count) but never reach the detector.

use anyhow::{Result, anyhow, bail};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Which paths the scan leaves out.
#[derive(Clone, Debug, Default)]
pub struct SkipPaths {
    /// `--skip-dirs`: a file is skipped when one of its parent directories matches.
    dirs: Option<GlobSet>,
    /// `--skip-files`: a file is skipped when its path matches.
    files: Option<GlobSet>,
    /// The patterns as given, part of the cache key: results cached without a skip must not
    /// stand for a scan with one, nor the other way round.
    key: String,
}

impl SkipPaths {
    /// Compiles the globs; a malformed one is an error naming it and its flag.
    pub fn new(dirs: &[String], files: &[String]) -> Result<SkipPaths> {
        let key = if dirs.is_empty() && files.is_empty() {
            String::new()
        } else {
            format!(
                "skip-dirs:{}\0skip-files:{}",
                dirs.join("\0"),
                files.join("\0")
            )
        };
        Ok(SkipPaths {
            dirs: glob_set(dirs, "--skip-dirs")?,
            files: glob_set(files, "--skip-files")?,
            key,
        })
    }

    /// Whether the file at `path` (as a layer's tar names it, without a leading `/`) is
    /// skipped.
    pub fn skips(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        if self.files.as_ref().is_some_and(|set| set.is_match(path)) {
            return true;
        }
        let Some(dirs) = &self.dirs else {
            return false;
        };
        // Every parent directory, from the top: `a`, `a/b` for `a/b/c.txt`.
        path.match_indices('/')
            .any(|(end, _)| dirs.is_match(&path[..end]))
    }

    /// Whether nothing is skipped.
    pub fn is_empty(&self) -> bool {
        self.key.is_empty()
    }

    /// The patterns, for the cache key; empty when nothing is skipped.
    pub fn cache_key(&self) -> &str {
        &self.key
    }
}

fn glob_set(patterns: &[String], flag: &str) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = pattern.trim_start_matches('/').trim_end_matches('/');
        if glob.is_empty() {
            bail!("{flag}: empty glob {pattern:?}");
        }
        set.add(
            GlobBuilder::new(glob)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|err| anyhow!("{flag}: bad glob {pattern:?}: {}", err.kind()))?,
        );
    }
    set.build()
        .map(Some)
        .map_err(|err| anyhow!("{flag}: {}", err.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(dirs: &[&str], files: &[&str]) -> SkipPaths {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        SkipPaths::new(&owned(dirs), &owned(files)).unwrap()
    }

    #[test]
    fn directories_skip_everything_below_them() {
        let paths = skip(&["/usr/share/doc", "**/node_modules", "opt/*/cache"], &[]);
        assert!(paths.skips("usr/share/doc/x/README"));
        assert!(paths.skips("app/node_modules/left-pad/index.js"));
        assert!(paths.skips("node_modules/a.js"));
        assert!(paths.skips("opt/app/cache/k.pem"));
        assert!(!paths.skips("usr/share/docs/README"));
        assert!(
            !paths.skips("usr/share/doc"),
            "a file named like the directory is not under it"
        );
        assert!(
            !paths.skips("opt/app/x/cache/k.pem"),
            "* stays within one name"
        );
    }

    #[test]
    fn files_match_the_whole_path() {
        let paths = skip(&[], &["**/*.md", "/app/fixtures/*.pem"]);
        assert!(paths.skips("README.md") && paths.skips("app/docs/a.md"));
        assert!(paths.skips("app/fixtures/test.pem"));
        assert!(!paths.skips("app/fixtures/sub/test.pem"));
        assert!(!paths.skips("app/key.pem"));
    }

    #[test]
    fn the_cache_key_changes_with_the_patterns() {
        assert!(skip(&[], &[]).is_empty() && skip(&[], &[]).cache_key().is_empty());
        assert_ne!(skip(&["a"], &[]).cache_key(), skip(&[], &["a"]).cache_key());
        assert!(SkipPaths::new(&["a[".into()], &[]).is_err());
        assert!(SkipPaths::new(&[], &["/".into()]).is_err());
    }
}
