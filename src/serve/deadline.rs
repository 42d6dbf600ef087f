//! The deadline of one background scan. A hostile or merely huge image must not hold a worker
//! forever (every other image would wait behind it, and an admission of a new image would be
//! left to `on_unknown`): its layer streams stop yielding bytes once the deadline has passed,
//! which ends the walk with an error, and the scan is failed with a message that says why.
//! Layers walked in full before the deadline keep their cached results; the interrupted one
//! caches nothing.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use crate::source::image::{BlobOpener, Image, LayerBlob};

/// When a scan must be over.
pub struct ScanDeadline {
    at: Instant,
    limit: Duration,
    /// Set when a read was refused because of the deadline.
    hit: Arc<AtomicBool>,
}

impl ScanDeadline {
    /// A deadline `limit` from now.
    pub fn new(limit: Duration) -> ScanDeadline {
        ScanDeadline {
            at: Instant::now() + limit,
            limit,
            hit: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Makes every streamed layer of `image` stop at the deadline.
    pub fn guard(&self, image: &mut Image) {
        for layer in &mut image.layers {
            let blob = std::mem::replace(&mut layer.blob, LayerBlob::Absent(String::new()));
            layer.blob = match blob {
                LayerBlob::Stream(inner) => LayerBlob::Stream(Box::new(DeadlineOpener {
                    inner,
                    at: self.at,
                    hit: Arc::clone(&self.hit),
                })),
                other => other,
            };
        }
    }

    /// Has the deadline passed (or stopped a read)?
    pub fn passed(&self) -> bool {
        self.hit.load(Ordering::SeqCst) || Instant::now() >= self.at
    }

    /// The error a scan that ran out of time fails with.
    pub fn error(&self) -> anyhow::Error {
        anyhow!(
            "the scan did not finish within {} s (scan_timeout_seconds); the image is decided by on_unknown until a later scan succeeds",
            self.limit.as_secs()
        )
    }

    /// `Err` once the deadline has passed.
    pub fn check(&self) -> Result<()> {
        if self.passed() {
            return Err(self.error());
        }
        Ok(())
    }
}

/// A layer blob whose reader stops at the deadline.
struct DeadlineOpener {
    inner: Box<dyn BlobOpener>,
    at: Instant,
    hit: Arc<AtomicBool>,
}

impl BlobOpener for DeadlineOpener {
    fn open(&self) -> Result<Box<dyn Read + Send + '_>> {
        let reader = DeadlineReader {
            inner: self.inner.open()?,
            at: self.at,
            hit: &self.hit,
        };
        Ok(Box::new(reader))
    }
}

struct DeadlineReader<'a> {
    inner: Box<dyn Read + Send + 'a>,
    at: Instant,
    hit: &'a AtomicBool,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if Instant::now() >= self.at {
            self.hit.store(true, Ordering::SeqCst);
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the scan deadline has passed",
            ));
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Endless;

    impl BlobOpener for Endless {
        fn open(&self) -> Result<Box<dyn Read + Send + '_>> {
            Ok(Box::new(io::repeat(7)))
        }
    }

    #[test]
    fn a_stream_stops_at_the_deadline() {
        let deadline = ScanDeadline::new(Duration::from_millis(50));
        let opener = DeadlineOpener {
            inner: Box::new(Endless),
            at: deadline.at,
            hit: Arc::clone(&deadline.hit),
        };
        let mut reader = opener.open().unwrap();
        let mut buf = [0u8; 4096];
        assert_eq!(reader.read(&mut buf).unwrap(), 4096);
        assert!(!deadline.passed());
        std::thread::sleep(Duration::from_millis(60));
        let err = reader.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(deadline.passed());
        let message = deadline.check().unwrap_err().to_string();
        assert!(message.contains("scan_timeout_seconds"), "{message}");
    }
}
