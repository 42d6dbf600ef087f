//! Package provenance: which package manager installed a file, and whether the file is still
//! what the package shipped (issue 11). A finding in a file a package installed unmodified is
//! vendor content, not a leak by the image's owner.
//!
//! The pieces, in the order the scan uses them:
//! - [`database_kind`] tells, from a path alone and cheaply, whether a layer file belongs to a
//!   package database, so the walker can keep its bytes;
//! - [`DatabaseFiles`] holds those bytes for one filesystem state (layers applied in order,
//!   whiteouts included) and reads them into [`Database`]s: dpkg (`status`, `info/*.list`,
//!   `info/*.md5sums`, `diversions`, distroless `status.d/`), apk (`lib/apk/db/installed`), rpm
//!   (`rpmdb.sqlite`; Berkeley DB and NDB recognised and reported as not read), pip
//!   (`*.dist-info/RECORD`), and the directory-only ecosystems npm, gem, composer and maven;
//! - [`ProvenanceIndex`] maps paths to an [`Owner`] (manager, package, version, recorded hash),
//!   and [`Owner::verify`] says whether content is [`Verdict::Unmodified`], `Modified` or
//!   `Unverifiable`; [`ProvenanceIndex::follow_directory_symlink`] makes recorded paths known
//!   where a directory symlink (merged `/usr`) puts the files;
//! - [`is_test_or_example_path`] (and [`Owner::is_test_or_example`]) for ecosystems without
//!   hashes, where only a package's tests, fixtures and examples count as vendor content.
//!
//! Every reader takes bytes as found in a layer and never fails as a whole on bad input:
//! records it cannot read are skipped and counted in the [`ParseReport`].
//!
//! A recorded hash that matches says "installed by a package manager and not changed since",
//! which is not "public": pip writes RECORD from whatever wheel it installed, the
//! application's own included.

pub mod apk;
pub mod composer;
pub mod control;
pub mod dpkg;
pub mod files;
pub mod fixture;
pub mod gem;
pub mod hash;
pub mod index;
pub mod kind;
pub mod maven;
pub mod npm;
pub mod package;
pub mod paths;
pub mod pyc;
pub mod python;
pub mod rpm;

pub use files::DatabaseFiles;
pub use fixture::{is_documentation_path, is_test_or_example_path};
pub use hash::{ContentHasher, HashAlgorithm, RecordedHash};
pub use index::{InstalledPackage, Owner, ProvenanceIndex, Verdict, verify};
pub use kind::{DatabaseKind, database_kind};
pub use package::{Database, Manager, OwnedFile, Package, ParseReport};
