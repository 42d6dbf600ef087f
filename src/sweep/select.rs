//! Which repositories and tags a sweep takes: globs on names, the most recent tags by their
//! image's `created`, and `--since` on the same time. Pure functions over names and times.

use std::time::{Duration, SystemTime};

use anyhow::{Result, anyhow};
use globset::{Glob, GlobMatcher};

use crate::report::date::Date;

/// A `--repos`/`--tags` glob; `*` also matches `/` (as `exempt_images` in the policy).
pub fn glob(flag: &str, text: &str) -> Result<GlobMatcher> {
    Glob::new(text)
        .map(|glob| glob.compile_matcher())
        .map_err(|err| anyhow!("{flag} {text:?}: not a glob: {}", err.kind()))
}

/// Whether `name` passes an optional glob.
pub fn passes(glob: Option<&GlobMatcher>, name: &str) -> bool {
    glob.is_none_or(|glob| glob.is_match(name))
}

/// A tag with its image's creation time (seconds since the epoch; the latest of its
/// platforms), when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dated {
    pub tag: String,
    pub created: Option<i64>,
}

/// How tags are chosen within a repository, after the `--tags` glob.
#[derive(Clone, Copy, Debug, Default)]
pub struct Choice {
    /// `--tags-per-repo`.
    pub newest: Option<usize>,
    /// `--since`, as the earliest creation time kept.
    pub created_after: Option<i64>,
}

impl Choice {
    /// Whether choosing needs each image's creation time (its config read).
    pub fn needs_created(&self) -> bool {
        self.newest.is_some() || self.created_after.is_some()
    }

    /// The cutoff `--since` sets, from now.
    pub fn since(age: Duration, now: SystemTime) -> i64 {
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        now - age.as_secs() as i64
    }

    /// The tags kept, newest first when recency matters. Without a known time a tag is
    /// left out by `--since` and sorts after every dated tag (then by name, descending, so
    /// `v10` … `v2` come out in a stable order).
    pub fn apply(&self, mut tags: Vec<Dated>) -> Vec<Dated> {
        if let Some(cutoff) = self.created_after {
            tags.retain(|tag| tag.created.is_some_and(|created| created >= cutoff));
        }
        if let Some(newest) = self.newest {
            tags.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.tag.cmp(&a.tag)));
            tags.truncate(newest);
        }
        tags
    }
}

/// An RFC 3339 time (`2024-05-01T10:00:00Z`, `2024-05-01T12:00:00.123+02:00`) as seconds
/// since the epoch; `None` when it is not one.
pub fn rfc3339_seconds(text: &str) -> Option<i64> {
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let date: Date = date.parse().ok()?;
    let field = |s: &str| s.parse::<i64>().ok().filter(|_| s.len() == 2);
    let (hour, minute, second) = (
        field(rest.get(0..2)?)?,
        field(rest.get(3..5)?)?,
        field(rest.get(6..8)?)?,
    );
    if rest.get(2..3)? != ":" || rest.get(5..6)? != ":" || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut zone = &rest[8..];
    if let Some(fraction) = zone.strip_prefix('.') {
        zone = fraction.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.get(0..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            if zone.len() != 6 || zone.get(3..4)? != ":" {
                return None;
            }
            sign * (field(zone.get(1..3)?)? * 3600 + field(zone.get(4..6)?)? * 60)
        }
    };
    Some(date.to_days() * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dated(tag: &str, created: Option<i64>) -> Dated {
        Dated {
            tag: tag.to_string(),
            created,
        }
    }

    #[test]
    fn rfc3339_times_read_as_epoch_seconds() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_seconds("2024-05-01T10:00:00Z"), Some(1_714_557_600));
        assert_eq!(
            rfc3339_seconds("2024-05-01T12:00:00.123456789+02:00"),
            Some(1_714_557_600)
        );
        for bad in [
            "",
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2024-05-01T25:00:00Z",
            "2024-05-01T10:00:00",
            "2024-05-01T10:00:00+0200",
        ] {
            assert_eq!(rfc3339_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn newest_tags_first_and_undated_last() {
        let tags = vec![
            dated("a", Some(10)),
            dated("b", None),
            dated("c", Some(30)),
            dated("d", Some(20)),
        ];
        let choice = Choice {
            newest: Some(3),
            created_after: None,
        };
        let kept: Vec<_> = choice
            .apply(tags.clone())
            .into_iter()
            .map(|t| t.tag)
            .collect();
        assert_eq!(kept, ["c", "d", "a"]);
        let since = Choice {
            newest: None,
            created_after: Some(15),
        };
        let kept: Vec<_> = since.apply(tags).into_iter().map(|t| t.tag).collect();
        assert_eq!(kept, ["c", "d"]);
    }

    #[test]
    fn globs_match_across_slashes_and_bad_ones_name_the_flag() {
        let repos = glob("--repos", "team-*").unwrap();
        assert!(passes(Some(&repos), "team-a/app"));
        assert!(!passes(Some(&repos), "other/app"));
        assert!(passes(None, "anything"));
        let err = glob("--tags", "v[1").unwrap_err().to_string();
        assert!(err.starts_with("--tags \"v[1\": not a glob"), "{err}");
    }
}
