//! Where the files of a local image live: a directory (an OCI layout) or a tarball (a
//! `docker save` output or an oci-archive) indexed once without copying anything out.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use super::bytes::MappedBytes;

/// Read access to the named files of an image on disk.
pub enum LocalStore {
    /// An OCI image layout directory; each file is mapped when asked for.
    Dir(PathBuf),
    /// A tarball mapped once; `entries` maps each normalised member name to its bytes.
    Tar {
        entries: HashMap<String, MappedBytes>,
    },
}

impl LocalStore {
    /// Indexes the members of the tarball at `path`. Only headers are read: members are views of
    /// the mapping. A truncated or corrupt tarball is an error here, before any scanning.
    pub fn open_tar(path: &Path) -> Result<LocalStore> {
        let mapped = MappedBytes::map_file(path)?;
        let entries = index_tar(&mapped)?;
        Ok(LocalStore::Tar { entries })
    }

    /// The file `name` (a path relative to the image root, such as `index.json`).
    pub fn get(&self, name: &str) -> Result<MappedBytes> {
        match self {
            LocalStore::Dir(dir) => {
                let path = dir.join(name);
                if !path.is_file() {
                    bail!("{name} is missing from the image");
                }
                MappedBytes::map_file(&path)
            }
            LocalStore::Tar { entries, .. } => entries
                .get(normalise(name))
                .cloned()
                .ok_or_else(|| anyhow!("{name} is missing from the archive")),
        }
    }

    /// Whether the file `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            LocalStore::Dir(dir) => dir.join(name).is_file(),
            LocalStore::Tar { entries, .. } => entries.contains_key(normalise(name)),
        }
    }
}

fn normalise(name: &str) -> &str {
    name.trim_start_matches("./").trim_start_matches('/')
}

/// Reads the tar headers of `archive` and returns each regular member as a view of the mapping.
fn index_tar(archive: &MappedBytes) -> Result<HashMap<String, MappedBytes>> {
    let mut tar = tar::Archive::new(Cursor::new(&archive[..]));
    let mut entries = HashMap::new();
    let mut members = 0usize;
    for entry in tar.entries_with_seek().context("not a tar archive")? {
        let entry = entry.context("corrupt tar archive")?;
        members += 1;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_contiguous()) {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let start = usize::try_from(entry.raw_file_position()).context("archive too large")?;
        let size = usize::try_from(entry.size()).context("archive too large")?;
        let end = start
            .checked_add(size)
            .ok_or_else(|| anyhow!("corrupt tar archive: member {name} has an impossible size"))?;
        let bytes = archive.slice(start..end).ok_or_else(|| {
            anyhow!("truncated tar archive: member {name} ends past the end of the file")
        })?;
        entries.insert(normalise(&name).to_string(), bytes);
    }
    if members == 0 {
        bail!("not an image archive (empty tar or not a tar at all)");
    }
    Ok(entries)
}
