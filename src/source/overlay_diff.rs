//! An overlay layer's directory (`overlay/<id>/diff`) read as a layer tar, for the
//! containers-storage layers that have no tar-split to rebuild the original tar from.
//!
//! Overlay keeps deletions in the forms the kernel reads: a deleted file is a character device
//! 0/0 of its name, a directory whose lower contents are hidden carries the xattr
//! `trusted.overlay.opaque` (or `user.overlay.opaque`, rootless) = `y`. Here they become the
//! entries an image layer uses for the same thing, `.wh.<name>` and `<dir>/.wh..wh..opq`, so
//! the walk's timeline marks the files below them deleted exactly as for a `docker save`.
//! The tar is made, not the original: its digest cannot be checked against the diff_id, which
//! the caller says by giving the layer none. Entries come in name order, parents first; files
//! are mapped one at a time; hard links come out as separate files.

use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::bytes::MappedBytes;
use super::image::BlobOpener;

/// The xattrs that mark an opaque directory (root's and rootless overlay's).
const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// A layer directory, opened as a tar when the walk reaches it.
pub struct OverlayDiff {
    pub dir: PathBuf,
}

impl BlobOpener for OverlayDiff {
    fn open(&self) -> Result<Box<dyn Read + Send + '_>> {
        if !fs::symlink_metadata(&self.dir).is_ok_and(|m| m.is_dir()) {
            bail!("{} is not a directory", self.dir.display());
        }
        Ok(Box::new(DiffReader {
            root: self.dir.clone(),
            pending: vec![children(&self.dir, Path::new(""))?],
            out: MappedBytes::from_vec(Vec::new()),
            at: 0,
            queue: Vec::new(),
            finished: false,
        }))
    }
}

/// The entries of `dir` (at `relative` in the layer), in reverse name order so that popping
/// gives them in order.
fn children(dir: &Path, relative: &Path) -> Result<Vec<PathBuf>> {
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|entry| entry.map(|entry| relative.join(entry.file_name())))
        .collect::<io::Result<_>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    names.sort();
    names.reverse();
    Ok(names)
}

/// Whether `path` carries an opaque-directory xattr set to `y`.
fn is_opaque(path: &Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    OPAQUE_XATTRS.iter().any(|name| {
        let name = std::ffi::CString::new(*name).expect("no NUL");
        let mut value = [0u8; 4];
        // SAFETY: both strings are NUL-terminated and `value` is writable for its length.
        let len = unsafe {
            libc::lgetxattr(
                c_path.as_ptr(),
                name.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        len == 1 && value[0] == b'y'
    })
}

struct DiffReader {
    root: PathBuf,
    /// A stack of directories being listed: each holds the names still to visit.
    pending: Vec<Vec<PathBuf>>,
    /// The bytes being handed out, and how far.
    out: MappedBytes,
    at: usize,
    /// What follows the current header: a file's bytes and padding.
    queue: Vec<MappedBytes>,
    finished: bool,
}

/// One tar entry's header bytes (with a GNU long-name entry first when the name needs one).
fn header(
    path: &Path,
    kind: tar::EntryType,
    size: u64,
    mode: u32,
    link: Option<&Path>,
) -> Result<Vec<u8>> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode & 0o7777);
    header.set_mtime(0);
    let mut builder = tar::Builder::new(Vec::new());
    match link {
        Some(target) => builder.append_link(&mut header, path, target),
        None => builder.append_data(&mut header, path, io::empty()),
    }
    .with_context(|| format!("cannot describe {} as a tar entry", path.display()))?;
    let bytes = builder.get_ref().clone();
    Ok(bytes)
}

impl DiffReader {
    /// The next entry's bytes: header, then (queued) content and padding.
    fn next_entry(&mut self) -> Result<Option<MappedBytes>> {
        loop {
            let Some(names) = self.pending.last_mut() else {
                return Ok(None);
            };
            let Some(relative) = names.pop() else {
                self.pending.pop();
                continue;
            };
            let path = self.root.join(&relative);
            let metadata = fs::symlink_metadata(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let kind = metadata.file_type();
            let mode = metadata.mode();
            if kind.is_dir() {
                let mut bytes = header(&relative, tar::EntryType::Directory, 0, mode, None)?;
                if is_opaque(&path) {
                    let marker = relative.join(".wh..wh..opq");
                    bytes.extend(header(&marker, tar::EntryType::Regular, 0, 0o644, None)?);
                }
                self.pending.push(children(&path, &relative)?);
                return Ok(Some(MappedBytes::from_vec(bytes)));
            }
            if kind.is_file() {
                let content = MappedBytes::map_file(&path)?;
                let size = content.len() as u64;
                let bytes = header(&relative, tar::EntryType::Regular, size, mode, None)?;
                let padding = (512 - size % 512) % 512;
                self.queue = vec![MappedBytes::from_vec(vec![0; padding as usize]), content];
                return Ok(Some(MappedBytes::from_vec(bytes)));
            }
            if kind.is_symlink() {
                let target = fs::read_link(&path)?;
                let bytes = header(&relative, tar::EntryType::Symlink, 0, mode, Some(&target))?;
                return Ok(Some(MappedBytes::from_vec(bytes)));
            }
            if kind.is_char_device() && metadata.rdev() == 0 {
                let name = relative.file_name().unwrap_or_default();
                let mut whiteout = std::ffi::OsString::from(".wh.");
                whiteout.push(name);
                let marker = relative.with_file_name(whiteout);
                let bytes = header(&marker, tar::EntryType::Regular, 0, 0o644, None)?;
                return Ok(Some(MappedBytes::from_vec(bytes)));
            }
            // Sockets, FIFOs and other devices carry no bytes to scan.
        }
    }

    fn refill(&mut self) -> Result<bool> {
        if let Some(next) = self.queue.pop() {
            self.out = next;
            self.at = 0;
            return Ok(true);
        }
        match self.next_entry()? {
            Some(bytes) => {
                self.out = bytes;
                self.at = 0;
                Ok(true)
            }
            None if !self.finished => {
                self.finished = true;
                self.out = MappedBytes::from_vec(vec![0; 1024]);
                self.at = 0;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl Read for DiffReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.out.len() {
            match self.refill() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(err) => return Err(io::Error::other(format!("{err:#}"))),
            }
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
