//! The store's error type, the reading of PostgreSQL's SQLSTATE from a driver error, and the
//! one place that decides whether a driver error means the database is unavailable (down,
//! restarting, refusing or dropping connections, no connection free in time) rather than a
//! statement failing.

use sea_orm::{DbErr, RuntimeErr};

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at {target}: {source}")]
    Connect {
        /// Where we tried to connect (without credentials).
        target: String,
        /// The driver's error.
        #[source]
        source: DbErr,
    },
    /// The database could not be reached while doing something: nothing was done, and the
    /// same work may succeed once it is back.
    #[error("database unavailable while {context}: {source}")]
    Unavailable {
        /// What we were doing.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: DbErr,
    },
    /// A statement failed.
    #[error("database error while {context}: {source}")]
    Database {
        /// What we were doing.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: DbErr,
    },
    /// A database URL that cannot be read or rewritten.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database role is not safe to serve requests with.
    #[error("{0}")]
    UnsafeRole(String),
}

impl StoreError {
    /// Wraps a driver error with what we were doing, as [`StoreError::Unavailable`] when it
    /// says the database cannot be reached.
    pub fn database(context: &'static str) -> impl Fn(DbErr) -> Self {
        move |source| {
            if is_unavailable(&source) {
                Self::Unavailable { context, source }
            } else {
                Self::Database { context, source }
            }
        }
    }

    /// Whether the database could not be reached (connecting included).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Connect { source, .. } => is_unavailable(source),
            Self::Database { .. } | Self::InvalidUrl(_) | Self::UnsafeRole(_) => false,
        }
    }
}

/// Whether `err` means the database cannot be reached right now, as opposed to a statement
/// failing: no pooled connection in time (the pool's wait is bounded, and opening a connection
/// is part of it), a connection refused, reset or closed under us, or the server saying it is
/// shutting down, starting up, or out of connections.
pub fn is_unavailable(err: &DbErr) -> bool {
    let runtime = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Exec(runtime) | DbErr::Query(runtime) | DbErr::Conn(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx_err) = runtime else {
        return false;
    };
    use sea_orm::sqlx::Error;
    match sqlx_err.as_ref() {
        Error::Io(_) | Error::Tls(_) | Error::PoolTimedOut | Error::PoolClosed => true,
        Error::WorkerCrashed => true,
        Error::Database(db_err) => db_err
            .code()
            .is_some_and(|code| unavailable_state(code.as_ref())),
        _ => false,
    }
}

/// Whether `err` is a pooled connection found broken when used (reset or closed under us, its
/// backend terminated), as opposed to no connection being available at all: work that failed so
/// before anything was done (a `BEGIN`, a lone statement that changes nothing twice) may be tried
/// again at once on another connection.
pub fn is_broken_connection(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(sqlx_err))
    | DbErr::Query(RuntimeErr::SqlxError(sqlx_err))
    | DbErr::Conn(RuntimeErr::SqlxError(sqlx_err))) = err
    else {
        return false;
    };
    use sea_orm::sqlx::Error;
    match sqlx_err.as_ref() {
        Error::Io(_) | Error::Tls(_) | Error::WorkerCrashed => true,
        Error::Database(db_err) => db_err
            .code()
            .is_some_and(|code| code.starts_with("08") || code.as_ref() == "57P01"),
        _ => false,
    }
}

/// SQLSTATEs that say the server cannot serve now rather than that a statement is wrong:
/// class 08 (connection exceptions), `57P01` admin_shutdown, `57P02` crash_shutdown, `57P03`
/// cannot_connect_now, `53300` too_many_connections.
fn unavailable_state(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// The SQLSTATE code of a PostgreSQL error (for example `23514` for a check violation), if the
/// error came from the server.
pub fn sql_state(err: &DbErr) -> Option<String> {
    let runtime = match err {
        DbErr::Exec(runtime) | DbErr::Query(runtime) | DbErr::Conn(runtime) => runtime,
        _ => return None,
    };
    match runtime {
        RuntimeErr::SqlxError(sqlx_err) => match sqlx_err.as_ref() {
            sea_orm::sqlx::Error::Database(db_err) => db_err.code().map(|code| code.into_owned()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Arc;

    use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};

    use super::*;

    fn sqlx(err: sea_orm::sqlx::Error) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
    }

    #[test]
    fn connection_failures_are_unavailable() {
        assert!(is_unavailable(&DbErr::ConnectionAcquire(
            ConnAcquireErr::Timeout
        )));
        assert!(is_unavailable(&sqlx(sea_orm::sqlx::Error::PoolTimedOut)));
        for kind in [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::UnexpectedEof,
        ] {
            assert!(is_unavailable(&sqlx(sea_orm::sqlx::Error::Io(
                io::Error::from(kind)
            ))));
        }
    }

    #[test]
    fn server_states_of_shutdown_and_startup_are_unavailable() {
        for code in ["57P01", "57P02", "57P03", "53300", "08006", "08001"] {
            assert!(unavailable_state(code), "{code}");
        }
        for code in ["23505", "23514", "42501", "40001", "57014"] {
            assert!(!unavailable_state(code), "{code}");
        }
    }

    #[test]
    fn only_a_connection_broken_in_use_may_be_tried_again() {
        for kind in [io::ErrorKind::ConnectionReset, io::ErrorKind::UnexpectedEof] {
            assert!(is_broken_connection(&sqlx(sea_orm::sqlx::Error::Io(
                io::Error::from(kind)
            ))));
        }
        assert!(is_broken_connection(&sqlx(
            sea_orm::sqlx::Error::WorkerCrashed
        )));
        // No connection to be had: trying again would only wait as long once more.
        assert!(!is_broken_connection(&DbErr::ConnectionAcquire(
            ConnAcquireErr::Timeout
        )));
        assert!(!is_broken_connection(&sqlx(
            sea_orm::sqlx::Error::PoolTimedOut
        )));
        assert!(!is_broken_connection(&sqlx(
            sea_orm::sqlx::Error::RowNotFound
        )));
        assert!(!is_broken_connection(&DbErr::Custom("bad".to_owned())));
    }

    #[test]
    fn statement_failures_are_not_unavailable() {
        assert!(!is_unavailable(&DbErr::Custom("bad".to_owned())));
        assert!(!is_unavailable(&sqlx(sea_orm::sqlx::Error::RowNotFound)));
        let failed = StoreError::database("reading")(DbErr::Type("x".to_owned()));
        assert!(matches!(failed, StoreError::Database { .. }));
        let down =
            StoreError::database("reading")(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
        assert!(down.is_unavailable());
    }
}
