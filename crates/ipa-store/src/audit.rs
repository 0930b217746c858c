//! Audit rows the application writes itself, for events that are not row changes (sign-ins,
//! sign-outs; later runs and cancellations). Row changes are audited by the schema's triggers.
//! The actor, client address and user agent come from the transaction's settings, like the
//! triggers', so both kinds of row name the same actor.

use ipa_kernel::StorageError;
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::sql::storage;

/// Appends an audit row for `action` on `resource_type`/`resource_id`, with `changes` as given
/// (never a secret).
pub(crate) async fn record(
    conn: &impl ConnectionTrait,
    action: &str,
    resource_type: &str,
    resource_id: Option<uuid::Uuid>,
    changes: serde_json::Value,
) -> Result<(), StorageError> {
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO audit_logs (user_id, action, resource_type, resource_id, changes, ip_address, user_agent) \
         VALUES (ipa_current_user_id(), $1::audit_action, $2, $3, $4, ipa_client_ip(), ipa_user_agent())",
        [
            action.into(),
            resource_type.into(),
            resource_id.into(),
            changes.into(),
        ],
    ))
    .await
    .map_err(storage("writing an audit row"))?;
    Ok(())
}
