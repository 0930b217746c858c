//! The store's error type, and the reading of PostgreSQL's SQLSTATE from a driver error.

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
    /// Wraps a driver error with what we were doing.
    pub fn database(context: &'static str) -> impl Fn(DbErr) -> Self {
        move |source| Self::Database { context, source }
    }
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
