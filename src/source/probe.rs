//! What a cheap look at a local image store says, for trying stores in turn (docker daemon,
//! containerd, containers-storage, then a registry) before any image is opened.

/// The answer of a store's `probe(NAME)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The store is not there (no socket, no daemon answering, no storage directory), or it
    /// could not be read; the reason, as one line, for the error that lists where was looked.
    Absent(String),
    /// The store is there but has no image of that name.
    NoSuchImage,
    /// The store has an image of that name.
    Has,
}
