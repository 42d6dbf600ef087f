//! Where a command's output goes: a file, or standard output. When standard output is a pipe
//! whose reader has gone (`stowaway rules list | head -1`), writing stops quietly and the
//! command ends with its usual exit code: the reader took what it wanted, which is no error.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

/// Renders into `path`, or into standard output when `path` is `None`.
pub fn write_output(
    path: Option<&Path>,
    render: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    match path {
        Some(path) => {
            let file = File::create(path)
                .with_context(|| format!("{}: cannot create output file", path.display()))?;
            let mut out = BufWriter::new(file);
            render(&mut out)?;
            out.flush()
                .with_context(|| format!("{}: cannot write output file", path.display()))?;
        }
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let written = render(&mut out).and_then(|()| Ok(out.flush()?));
            match written {
                Err(err) if is_broken_pipe(&err) => {}
                other => other?,
            }
        }
    }
    Ok(())
}

/// Whether `err` is (or was caused by) a write to a closed pipe, however wrapped: an
/// `io::Error`, or serde_json's error around one.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|json| json.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_pipes_are_recognised_under_context() {
        let pipe = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&pipe.context("writing the report")));
        let json = serde_json::to_writer(Closed, &[1, 2, 3]).unwrap_err();
        assert!(is_broken_pipe(&anyhow::Error::from(json)));
        let other = anyhow::Error::from(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!is_broken_pipe(&other));
    }

    /// A writer whose reader has gone.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
