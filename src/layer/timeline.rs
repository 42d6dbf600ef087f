//! What later layers did to a file: whiteouts (`.wh.NAME`), opaque directories
//! (`.wh..wh..opq`) and plain overwrites. This is the one place where layer semantics are
//! applied; every finding's status comes from here.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// What one layer changed, as far as the files of lower layers are concerned.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LayerChanges {
    /// Paths this layer writes, with whether each is a directory.
    pub written: HashMap<String, bool>,
    /// Paths this layer deletes from lower layers.
    pub whiteouts: HashSet<String>,
    /// Directories whose lower-layer contents this layer hides.
    pub opaque_dirs: HashSet<String>,
}

/// The fate of a file in the final image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Still in the final filesystem.
    Present,
    /// Removed by a later layer (whiteout, opaque directory, or a parent replaced by a file);
    /// the bytes still ship in the layer that added it.
    Deleted,
    /// A later layer wrote the same path again.
    Overwritten,
}

impl Status {
    /// The lowercase word reports use (`present`, `deleted`, `overwritten`), as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Present => "present",
            Status::Deleted => "deleted",
            Status::Overwritten => "overwritten",
        }
    }
}

/// The layers of one image, lowest first.
#[derive(Debug, Default)]
pub struct Timeline {
    layers: Vec<LayerChanges>,
}

impl Timeline {
    /// The timeline of an image whose layers changed files as `layers` says, lowest (layer 0)
    /// first.
    pub fn new(layers: Vec<LayerChanges>) -> Timeline {
        Timeline { layers }
    }

    /// The status of `path` as added by layer `layer`, and the layer that removed or replaced it.
    pub fn fate(&self, layer: usize, path: &str) -> (Status, Option<usize>) {
        // A whiteout marker that carries content: runtimes never extract it, yet its bytes
        // ship in its own layer.
        let name = path.rsplit('/').next().unwrap_or(path);
        if name.starts_with(".wh.") {
            return (Status::Deleted, Some(layer));
        }
        for (index, changes) in self.layers.iter().enumerate().skip(layer + 1) {
            // A layer that writes the path again replaces it, even when the same layer also
            // whites it out first (that is how a replaced file is usually encoded).
            if changes.written.contains_key(path) {
                return (Status::Overwritten, Some(index));
            }
            let mut ancestors = ancestors(path);
            if changes.whiteouts.contains(path) {
                return (Status::Deleted, Some(index));
            }
            if ancestors.any(|dir| {
                changes.whiteouts.contains(dir)
                    || changes.opaque_dirs.contains(dir)
                    || changes.written.get(dir) == Some(&false)
            }) {
                return (Status::Deleted, Some(index));
            }
        }
        (Status::Present, None)
    }
}

/// `a/b/c` → `a/b`, `a` (nearest first).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = path;
    std::iter::from_fn(move || {
        let (parent, _) = rest.rsplit_once('/')?;
        rest = parent;
        Some(parent)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(written: &[(&str, bool)], whiteouts: &[&str], opaque: &[&str]) -> LayerChanges {
        LayerChanges {
            written: written.iter().map(|(p, d)| (p.to_string(), *d)).collect(),
            whiteouts: whiteouts.iter().map(|p| p.to_string()).collect(),
            opaque_dirs: opaque.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn whiteouts_opaque_and_overwrites() {
        let timeline = Timeline::new(vec![
            changes(
                &[("root/.aws/credentials", false), ("app/config/.env", false)],
                &[],
                &[],
            ),
            changes(&[], &["root/.aws"], &[]),
            changes(&[("app/config", true)], &[], &["app/config"]),
            changes(&[("etc/passwd", false)], &[], &[]),
            changes(&[("etc/passwd", false)], &["etc/passwd"], &[]),
        ]);
        assert_eq!(
            timeline.fate(0, "root/.aws/credentials"),
            (Status::Deleted, Some(1))
        );
        assert_eq!(
            timeline.fate(0, "app/config/.env"),
            (Status::Deleted, Some(2))
        );
        assert_eq!(
            timeline.fate(3, "etc/passwd"),
            (Status::Overwritten, Some(4))
        );
        assert_eq!(timeline.fate(4, "etc/passwd"), (Status::Present, None));
        // An opaque directory hides lower layers only, not its own layer.
        assert_eq!(timeline.fate(2, "app/config/new"), (Status::Present, None));
    }

    #[test]
    fn parent_replaced_by_a_file_deletes_children() {
        let timeline = Timeline::new(vec![
            changes(&[("opt/app/key.pem", false)], &[], &[]),
            changes(&[("opt/app", false)], &[], &[]),
        ]);
        assert_eq!(
            timeline.fate(0, "opt/app/key.pem"),
            (Status::Deleted, Some(1))
        );
    }

    #[test]
    fn whiteout_markers_are_never_in_the_filesystem() {
        let timeline = Timeline::new(vec![changes(&[], &["etc/key"], &[])]);
        assert_eq!(timeline.fate(0, "etc/.wh.key"), (Status::Deleted, Some(0)));
        assert_eq!(timeline.fate(0, ".wh..wh..opq"), (Status::Deleted, Some(0)));
        assert_eq!(timeline.fate(0, "etc/key.wh.txt"), (Status::Present, None));
    }

    #[test]
    fn ancestors_nearest_first() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), vec!["a/b", "a"]);
        assert_eq!(ancestors("a").count(), 0);
    }
}
