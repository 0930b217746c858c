//! Audit rows the application writes itself, for events that are not row changes (sign-ins,
//! sign-outs, starts and cancellations of runs, approval decisions). Row changes are audited by
//! the schema's triggers. The actor, client address and user agent come from the transaction's
//! settings (the schema's `ipa_current_user_id()`, `ipa_client_ip()`, `ipa_user_agent()`), like
//! the triggers', so both kinds of row name the same actor.

use ipa_kernel::StorageError;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, Func, Query};

use crate::entity::audit_logs;
pub(crate) use crate::entity::sea_orm_active_enums::AuditAction;
use crate::sql::storage;

/// Appends an audit row for `action` on `resource_type`/`resource_id`, with `changes` as given
/// (never a secret).
pub(crate) async fn record(
    conn: &impl ConnectionTrait,
    action: AuditAction,
    resource_type: &str,
    resource_id: Option<uuid::Uuid>,
    changes: serde_json::Value,
) -> Result<(), StorageError> {
    const CONTEXT: &str = "writing an audit row";
    let mut insert = Query::insert();
    insert
        .into_table(audit_logs::Entity)
        .columns([
            audit_logs::Column::UserId,
            audit_logs::Column::Action,
            audit_logs::Column::ResourceType,
            audit_logs::Column::ResourceId,
            audit_logs::Column::Changes,
            audit_logs::Column::IpAddress,
            audit_logs::Column::UserAgent,
        ])
        .values([
            Func::cust("ipa_current_user_id").into(),
            Expr::val(action),
            Expr::val(resource_type),
            Expr::val(resource_id),
            Expr::val(changes),
            Func::cust("ipa_client_ip").into(),
            Func::cust("ipa_user_agent").into(),
        ])
        .map_err(|error| StorageError::new(CONTEXT, error))?;
    conn.execute(&insert).await.map_err(storage(CONTEXT))?;
    Ok(())
}
