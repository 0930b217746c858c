#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`ids`]: the typed identifiers;
//! - [`actor`]: who acts and from where ([`Actor`], [`ClientInfo`], [`UserAgent`]);
//! - [`labels`]: the [`label_enum!`] macro and [`UnknownLabel`];
//! - [`page`]: keyset pagination;
//! - [`storage`]: [`StorageError`], the failure of the machinery behind a port;
//! - [`text`]: the rules of bounded client text;
//! - [`json`]: bounded measures of client JSON.

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
