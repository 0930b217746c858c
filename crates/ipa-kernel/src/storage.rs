//! The failure of the machinery behind a port (the database, the disk), as the contexts see it:
//! opaque, because a domain must not depend on how it is stored, but carrying the cause for logs
//! and whether waiting could help (the storage was unavailable) or not.

use std::error::Error;
use std::fmt;

/// What kind of storage failure happened: the one distinction callers act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// The storage could not be reached (down, restarting, refusing connections, no free
    /// connection in time). Nothing was done; the same request may succeed later.
    Unavailable,
    /// Anything else: a statement failed unexpectedly, a stored value did not read back.
    Failed,
}

/// Storage failed in a way the caller cannot correct. Handlers answer an unavailable storage with
/// a 503 the client may retry, any other failure with a 500, and log the cause.
pub struct StorageError {
    context: &'static str,
    kind: StorageErrorKind,
    source: Box<dyn Error + Send + Sync>,
}

impl StorageError {
    /// A failure while `context` (for example "reading a user"), caused by `source`.
    pub fn new(context: &'static str, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self {
            context,
            kind: StorageErrorKind::Failed,
            source: source.into(),
        }
    }

    /// The storage could not be reached while `context`, because of `source`.
    pub fn unavailable(
        context: &'static str,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind: StorageErrorKind::Unavailable,
            ..Self::new(context, source)
        }
    }

    /// What was being done when storage failed.
    pub fn context(&self) -> &'static str {
        self.context
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StorageErrorKind {
        self.kind
    }

    /// Whether the storage could not be reached (retrying later may succeed).
    pub fn is_unavailable(&self) -> bool {
        self.kind == StorageErrorKind::Unavailable
    }
}

impl fmt::Debug for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageError")
            .field("context", &self.context)
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            StorageErrorKind::Unavailable => write!(
                f,
                "storage unavailable while {}: {}",
                self.context, self.source
            ),
            StorageErrorKind::Failed => {
                write!(f, "storage failed while {}: {}", self.context, self.source)
            }
        }
    }
}

impl Error for StorageError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.source.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_is_kept_and_told() {
        let down = StorageError::unavailable("reading a user", "connection refused");
        assert!(down.is_unavailable());
        assert_eq!(down.kind(), StorageErrorKind::Unavailable);
        assert_eq!(
            down.to_string(),
            "storage unavailable while reading a user: connection refused"
        );
        let failed = StorageError::new("reading a user", "bad row");
        assert!(!failed.is_unavailable());
        assert_eq!(failed.context(), "reading a user");
    }
}
