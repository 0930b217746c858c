//! The failure of the machinery behind a port (the database, the disk), as the contexts see it:
//! opaque, because a domain must not depend on how it is stored, but carrying the cause for logs.

use std::error::Error;
use std::fmt;

/// Storage failed in a way the caller cannot correct: the database is unreachable, a statement
/// failed unexpectedly. Handlers answer it with a 500 and log its cause.
pub struct StorageError {
    context: &'static str,
    source: Box<dyn Error + Send + Sync>,
}

impl StorageError {
    /// A failure while `context` (for example "reading a user"), caused by `source`.
    pub fn new(context: &'static str, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self {
            context,
            source: source.into(),
        }
    }

    /// What was being done when storage failed.
    pub fn context(&self) -> &'static str {
        self.context
    }
}

impl fmt::Debug for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageError")
            .field("context", &self.context)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage failed while {}: {}", self.context, self.source)
    }
}

impl Error for StorageError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.source.as_ref())
    }
}
