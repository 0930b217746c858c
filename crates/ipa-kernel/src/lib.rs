//! The shared vocabulary of the IPA platform: typed identifiers, the acting user and the request
//! context they act from, and the macro that defines the closed label sets (statuses, types,
//! actions) every context stores as PostgreSQL enums, keyset pagination, the opaque failure of
//! storage every port may report, the rules of bounded client text, and bounded measures of client
//! JSON.
//!
//! Everything here is pure: no I/O, no database, no runtime. Context crates build on it, and other
//! Rust services may import it directly.

pub mod actor;
pub mod ids;
pub mod json;
pub mod labels;
pub mod page;
pub mod storage;
pub mod text;

pub use actor::{Actor, ClientInfo, UserAgent};
pub use ids::*;
pub use labels::UnknownLabel;
pub use page::{Keyset, Page, PageLimit, PageRequest};
pub use storage::{StorageError, StorageErrorKind};
