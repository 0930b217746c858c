//! Small helpers every repository shares: building raw statements, turning driver failures into
//! the ports' opaque [`StorageError`], committing, and escaping client text for `LIKE`.

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

/// A list query built from only the filters a client gave, so each is planned for the indexes it
/// can use, and paged newest first by `(created_at, id)` (keyset, never OFFSET).
#[derive(Debug, Default)]
pub(crate) struct ListQuery {
    conditions: Vec<String>,
    values: Vec<Value>,
}

impl ListQuery {
    /// Binds `value` as the next parameter and returns its number (for `$n`).
    pub(crate) fn bind(&mut self, value: impl Into<Value>) -> usize {
        self.values.push(value.into());
        self.values.len()
    }

    /// Adds a condition every row must meet.
    pub(crate) fn condition(&mut self, sql: String) {
        self.conditions.push(sql);
    }

    /// The statement `SELECT {columns} FROM {from}` with the conditions, continued after
    /// `page.after`, newest first, one row over the page (so the caller knows whether another
    /// follows). `alias` prefixes the ordering columns (`"w."`, or `""`).
    pub(crate) fn newest_first(
        mut self,
        columns: &str,
        from: &str,
        alias: &str,
        page: PageRequest,
    ) -> (String, Vec<Value>) {
        if let Some(after) = page.after {
            let created_at = self.bind(after.created_at());
            let id = self.bind(after.id());
            self.condition(format!(
                "({alias}created_at, {alias}id) < (${created_at}, ${id})"
            ));
        }
        let limit = self.bind(i64::from(page.limit.get() + 1));
        let filter = if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {columns} FROM {from} {filter} \
             ORDER BY {alias}created_at DESC, {alias}id DESC LIMIT ${limit}"
        );
        (sql, self.values)
    }
}

/// Reads one page of a list as `actor`: `query` is [`ListQuery::newest_first`]'s statement
/// (one row over the page), each row read by `from_row`; `context` names the work in errors.
pub(crate) async fn read_page<T>(
    store: &Store,
    actor: &Actor,
    query: (String, Vec<Value>),
    page: PageRequest,
    context: &'static str,
    from_row: impl Fn(&QueryResult) -> Result<T, StorageError>,
    keyset: impl Fn(&T) -> Keyset,
) -> Result<Page<T>, StorageError> {
    let (sql, values) = query;
    let txn = store.begin(actor).await.map_err(from_store)?;
    let rows = txn
        .connection()
        .query_all_raw(statement(&sql, values))
        .await
        .map_err(storage(context))?;
    commit(txn).await?;
    let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_overfetched(items, page.limit, keyset))
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
