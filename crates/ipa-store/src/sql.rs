//! Small helpers every repository shares: building raw statements, turning driver failures into
//! the ports' opaque [`StorageError`], committing, keyset pages with the query builder
//! ([`newest_first`], [`read_rows_page`]), plans of list queries, and matching client text
//! literally with `ILIKE`.

use ipa_kernel::{Actor, Keyset, Page, PageRequest, StorageError};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, FromQueryResult, QueryFilter, QueryOrder,
    QueryResult, QuerySelect, Statement, Value,
};

use crate::StoreError;
use crate::store::{ActorTransaction, Pooling, Store};

/// Wraps a driver error with what we were doing.
pub(crate) fn storage(context: &'static str) -> impl Fn(DbErr) -> StorageError {
    move |error| db_error(context, error)
}

/// A driver error while `context`, as the ports see it: unavailable when the database could not
/// be reached ([`crate::error::is_unavailable`]), failed otherwise.
pub(crate) fn db_error(context: &'static str, error: DbErr) -> StorageError {
    if crate::error::is_unavailable(&error) {
        StorageError::unavailable(context, error)
    } else {
        StorageError::new(context, error)
    }
}

/// A failure to open a transaction.
pub(crate) fn from_store(error: StoreError) -> StorageError {
    store_error("opening a transaction", error)
}

/// A store error while `context`, as the ports see it, unavailable or failed as the store
/// classified it.
pub(crate) fn store_error(context: &'static str, error: StoreError) -> StorageError {
    if error.is_unavailable() {
        StorageError::unavailable(context, error)
    } else {
        StorageError::new(context, error)
    }
}

/// A PostgreSQL statement with positional parameters.
pub(crate) fn statement(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Commits, reporting a failure as storage's.
pub(crate) async fn commit(txn: ActorTransaction) -> Result<(), StorageError> {
    txn.commit()
        .await
        .map_err(|error| store_error("committing", error))
}

/// PostgreSQL's plan for `sql` with `values` as `actor` (`EXPLAIN`, text form, one line per plan
/// node), under the same row level security as the statement itself: for checking that a list
/// filter is served by its index.
pub(crate) async fn explain(
    store: &Store,
    actor: &Actor,
    sql: &str,
    values: Vec<Value>,
) -> Result<String, StorageError> {
    let txn = store.begin(actor).await.map_err(from_store)?;
    let rows = txn
        .connection()
        .query_all_raw(statement(&format!("EXPLAIN {sql}"), values))
        .await
        .map_err(storage("explaining a list"))?;
    commit(txn).await?;
    let lines = rows
        .iter()
        .map(|row| row.try_get::<String>("", "QUERY PLAN"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(storage("reading a plan"))?;
    Ok(lines.join("\n"))
}

/// `select` continued after `page.after`, newest first by `(created_at, id)` (keyset, never
/// OFFSET), one row over the page so the caller knows whether another follows. The columns are
/// qualified by their table, so a select with joins orders and continues the same way.
pub(crate) fn newest_first<S, C>(select: S, created_at: C, id: C, page: PageRequest) -> S
where
    S: QueryFilter + QueryOrder + QuerySelect,
    C: ColumnTrait,
{
    let select = match page.after {
        Some(after) => select.filter(Expr::tuple([created_at.into_expr(), id.into_expr()]).lt(
            Expr::tuple([Expr::val(after.created_at()), Expr::val(after.id())]),
        )),
        None => select,
    };
    select
        .order_by_desc(created_at)
        .order_by_desc(id)
        .limit(u64::from(page.limit.get()) + 1)
}

/// Reads one page of a list as `actor`: `query` is a [`newest_first`] select built for
/// PostgreSQL (one row over the page), each row read as an `R` and made a `T` by `convert`;
/// `context` names the work in errors.
pub(crate) async fn read_rows_page<R: FromQueryResult, T>(
    store: &Store,
    actor: &Actor,
    query: Statement,
    page: PageRequest,
    context: &'static str,
    convert: impl Fn(R) -> Result<T, StorageError>,
    keyset: impl Fn(&T) -> Keyset,
) -> Result<Page<T>, StorageError> {
    let txn = store.begin(actor).await.map_err(from_store)?;
    let rows = R::find_by_statement(query)
        .all(txn.connection())
        .await
        .map_err(storage(context))?;
    commit(txn).await?;
    let items = rows
        .into_iter()
        .map(convert)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_overfetched(items, page.limit, keyset))
}

/// [`explain`] for a statement the query builder built.
pub(crate) async fn explain_statement(
    store: &Store,
    actor: &Actor,
    query: Statement,
) -> Result<String, StorageError> {
    let values = query.values.map(|values| values.0).unwrap_or_default();
    explain(store, actor, &query.sql, values).await
}

/// Runs `statement`, a single statement that sets the role and context it needs itself (such as
/// `ipa_authenticate`), in a transaction of its own, and returns its one row if any. When the
/// pool's connections are sessions of their own it is sent alone, outside an explicit
/// transaction: one round trip, its settings ending with it, sent again on another connection if
/// the first it met was broken (so it must be safe to repeat). Under transaction pooling it runs in
/// a transaction acting as `actor`, whose first statement clears what other clients left on the
/// server connection (see [`crate::store`]). `context` names the work in errors.
pub(crate) async fn query_one_alone(
    store: &Store,
    actor: &Actor,
    statement: Statement,
    context: &'static str,
) -> Result<Option<QueryResult>, StorageError> {
    match store.pooling() {
        Pooling::Session => store
            .on_a_live_connection(|| {
                store
                    .statement_connection()
                    .query_one_raw(statement.clone())
            })
            .await
            .map_err(storage(context)),
        Pooling::Transaction => {
            let txn = store.begin(actor).await.map_err(from_store)?;
            let row = txn
                .connection()
                .query_one_raw(statement)
                .await
                .map_err(storage(context))?;
            commit(txn).await?;
            Ok(row)
        }
    }
}

/// `column` contains `fragment`, in any case: `column ILIKE '%fragment%'` with the fragment's
/// wildcards escaped by backslash, `LIKE`'s default escape character (so no `ESCAPE` clause: in
/// sea-query 1.0 it renders as `ILIKE ($1 ESCAPE ...)`, which PostgreSQL refuses). `ILIKE`
/// (`texticlike`) is marked LEAKPROOF (ADR 0006), so under row level security a trigram index
/// serves it.
pub(crate) fn name_contains(column: impl ColumnTrait, fragment: &str) -> Expr {
    column.ilike(format!("%{}%", like_literal(fragment)))
}

/// Escapes `%`, `_` and `\` so a client's text matches literally in `LIKE` (whose default escape
/// character is the backslash).
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
