//! Where the files of a local image live: a directory (an OCI layout) or a tarball (a
//! `docker save` output or an oci-archive) indexed once without copying anything out.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Cursor};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

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
    /// Indexes the members of a tarball already mapped (or in memory, or spilled to a
    /// temporary file). Only headers are read: members are views of the mapping. A truncated or
    /// corrupt tarball is an error here, before any scanning.
    pub(crate) fn from_tar(archive: &MappedBytes) -> Result<LocalStore> {
        let entries = index_tar(archive)?;
        Ok(LocalStore::Tar { entries })
    }

    /// The file `name` (a path relative to the image root, such as `index.json`). In a
    /// directory, only a regular file reached without following a symlink is read: a blob that
    /// is a link to `/etc/shadow` must not be read as part of the image.
    pub fn get(&self, name: &str) -> Result<MappedBytes> {
        check_name(name)?;
        match self {
            LocalStore::Dir(dir) => map_inside(dir, name),
            LocalStore::Tar { entries, .. } => entries
                .get(normalise(name))
                .cloned()
                .ok_or_else(|| anyhow!("{name} is missing from the archive")),
        }
    }

    /// Whether something named `name` exists (in a directory, even a symlink or a directory,
    /// so that [`LocalStore::get`] refuses it by name instead of calling it missing).
    pub fn contains(&self, name: &str) -> bool {
        match self {
            LocalStore::Dir(dir) => fs::symlink_metadata(dir.join(name)).is_ok(),
            LocalStore::Tar { entries, .. } => entries.contains_key(normalise(name)),
        }
    }
}

/// Refuses a name that could lead outside the image: absolute, or with a `..` component.
/// The name itself is not quoted (it may come from the input).
pub fn check_name(name: &str) -> Result<()> {
    let path = Path::new(name);
    let escapes = path.is_absolute()
        || path
            .components()
            .any(|part| matches!(part, Component::ParentDir | Component::RootDir));
    if escapes {
        bail!("a path in the image leads outside it (absolute or with a `..` component)");
    }
    Ok(())
}

/// Maps `dir/name` when every directory on the way is a real directory and the file is a
/// regular file, none of them a symlink. The file is opened and then compared (device and
/// inode) with what was checked, so swapping in a symlink between the check and the open is
/// noticed too.
fn map_inside(dir: &Path, name: &str) -> Result<MappedBytes> {
    let refuse = || anyhow!("{name} is not a regular file inside the layout");
    let mut path = dir.to_path_buf();
    let parts: Vec<_> = Path::new(name).components().collect();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let metadata = match fs::symlink_metadata(&path) {
            Ok(metadata) => metadata,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                bail!("{name} is missing from the image")
            }
            Err(_) => return Err(refuse()),
        };
        let last = i + 1 == parts.len();
        let kind = metadata.file_type();
        if (last && !kind.is_file()) || (!last && !kind.is_dir()) {
            return Err(refuse());
        }
    }
    let checked = fs::symlink_metadata(&path).map_err(|_| refuse())?;
    let file = File::open(&path).map_err(|_| refuse())?;
    let opened = file.metadata().map_err(|_| refuse())?;
    if !opened.is_file() || (opened.dev(), opened.ino()) != (checked.dev(), checked.ino()) {
        return Err(refuse());
    }
    MappedBytes::map_opened(&file, &path)
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
