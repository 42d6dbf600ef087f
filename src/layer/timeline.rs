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

/// The layers of one image, lowest first, indexed by path: for each path, the layers that
/// did something to it, so a file's fate costs a few lookups however many layers there are.
#[derive(Debug, Default)]
pub struct Timeline {
    by_path: HashMap<String, PathHistory>,
}

/// What the layers did to one path, each list in layer order.
#[derive(Debug, Default)]
struct PathHistory {
    /// Layers that write the path (as a file or a directory).
    written: Vec<usize>,
    /// Layers that write the path as something other than a directory, which deletes what
    /// lower layers had under it.
    written_as_file: Vec<usize>,
    /// Layers that white the path out.
    whiteouts: Vec<usize>,
    /// Layers that make the path an opaque directory.
    opaque: Vec<usize>,
}

/// The first layer in `layers` (ascending) above `layer`.
fn first_above(layers: &[usize], layer: usize) -> Option<usize> {
    let at = layers.partition_point(|&l| l <= layer);
    layers.get(at).copied()
}

impl PathHistory {
    /// The first layer above `layer` that deletes this path itself.
    fn deleted_above(&self, layer: usize) -> Option<usize> {
        first_above(&self.whiteouts, layer)
    }

    /// The first layer above `layer` that deletes what lies under this directory.
    fn contents_deleted_above(&self, layer: usize) -> Option<usize> {
        [
            first_above(&self.whiteouts, layer),
            first_above(&self.opaque, layer),
            first_above(&self.written_as_file, layer),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl Timeline {
    /// The timeline of an image whose layers changed files as `layers` says, lowest (layer 0)
    /// first.
    pub fn new(layers: Vec<LayerChanges>) -> Timeline {
        let mut by_path: HashMap<String, PathHistory> = HashMap::new();
        for (index, changes) in layers.into_iter().enumerate() {
            for (path, is_dir) in changes.written {
                let history = by_path.entry(path).or_default();
                history.written.push(index);
                if !is_dir {
                    history.written_as_file.push(index);
                }
            }
            for path in changes.whiteouts {
                by_path.entry(path).or_default().whiteouts.push(index);
            }
            for path in changes.opaque_dirs {
                by_path.entry(path).or_default().opaque.push(index);
            }
        }
        Timeline { by_path }
    }

    /// The status of `path` as added by layer `layer`, and the layer that removed or replaced it.
    pub fn fate(&self, layer: usize, path: &str) -> (Status, Option<usize>) {
        // A whiteout marker that carries content: runtimes never extract it, yet its bytes
        // ship in its own layer.
        let name = path.rsplit('/').next().unwrap_or(path);
        if name.starts_with(".wh.") {
            return (Status::Deleted, Some(layer));
        }
        let own = self.by_path.get(path);
        let overwritten = own.and_then(|h| first_above(&h.written, layer));
        let deleted = own
            .and_then(|h| h.deleted_above(layer))
            .into_iter()
            .chain(
                ancestors(path)
                    .filter_map(|dir| self.by_path.get(dir))
                    .filter_map(|h| h.contents_deleted_above(layer)),
            )
            .min();
        // A layer that writes the path again replaces it, even when the same layer also
        // whites it out first (that is how a replaced file is usually encoded).
        match (overwritten, deleted) {
            (Some(over), Some(del)) if over <= del => (Status::Overwritten, Some(over)),
            (Some(over), None) => (Status::Overwritten, Some(over)),
            (_, Some(del)) => (Status::Deleted, Some(del)),
            (None, None) => (Status::Present, None),
        }
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

    /// `fate` as first written: every layer above the file's, one after the other.
    fn fate_layer_by_layer(
        layers: &[LayerChanges],
        layer: usize,
        path: &str,
    ) -> (Status, Option<usize>) {
        let name = path.rsplit('/').next().unwrap_or(path);
        if name.starts_with(".wh.") {
            return (Status::Deleted, Some(layer));
        }
        for (index, changes) in layers.iter().enumerate().skip(layer + 1) {
            if changes.written.contains_key(path) {
                return (Status::Overwritten, Some(index));
            }
            if changes.whiteouts.contains(path) {
                return (Status::Deleted, Some(index));
            }
            if ancestors(path).any(|dir| {
                changes.whiteouts.contains(dir)
                    || changes.opaque_dirs.contains(dir)
                    || changes.written.get(dir) == Some(&false)
            }) {
                return (Status::Deleted, Some(index));
            }
        }
        (Status::Present, None)
    }

    #[test]
    fn the_indexed_fate_is_the_layer_by_layer_fate() {
        const PATHS: [&str; 7] = ["a", "a/b", "a/b/c", "a/b/d", "a/e", "f", "a/.wh.b"];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut below = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..3_000 {
            let layers: Vec<LayerChanges> = (0..1 + below(6))
                .map(|_| {
                    let mut pick = |chance: u64| -> Vec<&str> {
                        PATHS[..6]
                            .iter()
                            .copied()
                            .filter(|_| below(chance) == 0)
                            .collect()
                    };
                    let (written, whiteouts, opaque) = (pick(3), pick(5), pick(6));
                    // Mostly what the path is elsewhere, sometimes a file where a directory was.
                    let written: Vec<(&str, bool)> = written
                        .into_iter()
                        .enumerate()
                        .map(|(i, p)| (p, (p.len() == 1 || p == "a/b") != (i % 3 == 2)))
                        .collect();
                    changes(&written, &whiteouts, &opaque)
                })
                .collect();
            let timeline = Timeline::new(layers.clone());
            for layer in 0..layers.len() {
                for path in PATHS {
                    assert_eq!(
                        timeline.fate(layer, path),
                        fate_layer_by_layer(&layers, layer, path),
                        "{path} of layer {layer} in {layers:#?}"
                    );
                }
            }
        }
    }
}
