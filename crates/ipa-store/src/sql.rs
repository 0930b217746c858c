//! Small helpers every repository shares: building raw statements, turning driver failures into
//! the ports' opaque [`StorageError`], committing, and escaping client text for `LIKE`.

use ipa_kernel::StorageError;
use sea_orm::{DbBackend, DbErr, Statement, Value};

use crate::StoreError;
use crate::store::ActorTransaction;

/// Wraps a driver error with what we were doing.
pub(crate) fn storage(context: &'static str) -> impl Fn(DbErr) -> StorageError {
    move |error| StorageError::new(context, error)
}

/// A failure to open a transaction.
pub(crate) fn from_store(error: StoreError) -> StorageError {
    StorageError::new("opening a transaction", error)
}

/// A PostgreSQL statement with positional parameters.
pub(crate) fn statement(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Commits, reporting a failure as storage's.
pub(crate) async fn commit(txn: ActorTransaction) -> Result<(), StorageError> {
    txn.commit()
        .await
        .map_err(|error| StorageError::new("committing", error))
}

/// A PostgreSQL array literal (`{"a","b"}`) of `items`, for a `$n::text[]` or `$n::uuid[]`
/// parameter: the driver is built without array support, and a literal with every element quoted
/// and escaped is exact.
pub(crate) fn array_literal<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let elements: Vec<String> = items
        .into_iter()
        .map(|item| format!("\"{}\"", item.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", elements.join(","))
}

/// Escapes `%`, `_` and `\` so a client's text matches literally in `LIKE ... ESCAPE '\'`.
pub(crate) fn like_literal(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_literal(r"50%_a\b"), r"50\%\_a\\b");
    }
}
