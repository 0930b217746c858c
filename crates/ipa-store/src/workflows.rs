//! The workflow context's repository on PostgreSQL ([`PgWorkflows`]): workflows, their numbered
//! versions, and the reference checks a definition needs.
//!
//! Every statement runs in a transaction scoped to its actor, so row level security decides what
//! is visible: another user's workflow is simply absent. Row changes are audited by the schema's
//! triggers, one row per change, with the actor the transaction carries.

use ipa_agent::AgentStatus;
use ipa_kernel::{
    Actor, AgentId, Page, PageRequest, StorageError, UserId, WorkflowId, WorkflowVersionId,
};
use ipa_workflow::{
    AgentAvailability, ChangeSummary, DefinitionProblem, DeleteWorkflowError, Description,
    InvalidDefinition, Metadata, NewVersion, NewWorkflow, PublishError, ReferenceStates, Tags,
    UpdateWorkflowError, VersionError, VersionNumber, VersionRef, VersionSummary, Workflow,
    WorkflowChanges, WorkflowFilter, WorkflowName, WorkflowRepository, WorkflowStatus,
    WorkflowVersion,
};
use sea_orm::sea_query::extension::postgres::PgBinOper;
use sea_orm::sea_query::{Expr, ExprTrait, Func, InsertStatement, LockType, Query};
use sea_orm::{
    ActiveValue, ColumnTrait, ConnectionTrait, DbBackend, DerivePartialModel, EntityTrait,
    FromQueryResult, JoinType, QueryFilter, QueryOrder, QuerySelect, QueryTrait, RelationDef,
    Select, SqlErr, StatementBuilder,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::entity::sea_orm_active_enums::{
    AgentStatus as StoredAgentStatus, WorkflowStatus as StoredStatus,
};
use crate::entity::{workflow_versions, workflows};
use crate::sql::{
    commit, db_error, explain_statement, from_store, name_contains, newest_first, read_rows_page,
    statement, storage,
};
use crate::store::Store;

/// A workflow's row with the number of its current version, read through
/// [`with_current_version`].
#[derive(Debug, FromQueryResult)]
struct WorkflowRow {
    #[sea_orm(nested)]
    workflow: workflows::Model,
    current_version_number: Option<i32>,
}

fn invalid_row(context: &'static str) -> impl Fn(ipa_workflow::WorkflowValueError) -> StorageError {
    move |error| StorageError::new(context, error)
}

/// The one place a workflow's row becomes a [`Workflow`]. The seed's schema leaves `status`,
/// `tags`, `metadata`, `created_at` and `updated_at` nullable (with defaults, so only a
/// hand-written NULL leaves one empty): they read as draft, no tags, `{}`, now, and the creation
/// time.
fn workflow_from(
    row: workflows::Model,
    current_version_number: Option<VersionNumber>,
) -> Result<Workflow, StorageError> {
    const CONTEXT: &str = "reading a workflow row";
    let current_version = match (row.current_version_id, current_version_number) {
        (Some(id), Some(number)) => Some(VersionRef {
            id: WorkflowVersionId::from_uuid(id),
            number,
        }),
        _ => None,
    };
    let created_at = row.created_at.unwrap_or_else(OffsetDateTime::now_utc);
    Ok(Workflow {
        id: WorkflowId::from_uuid(row.id),
        name: WorkflowName::parse(&row.name).map_err(invalid_row(CONTEXT))?,
        // A description the rules no longer accept is shown as none rather than failing the row.
        description: row
            .description
            .and_then(|text| Description::parse(&text).ok().flatten()),
        owner: UserId::from_uuid(row.created_by),
        status: row
            .status
            .map_or(WorkflowStatus::Draft, WorkflowStatus::from),
        current_version,
        tags: Tags::parse(&row.tags.unwrap_or_default()).map_err(invalid_row(CONTEXT))?,
        metadata: Metadata::parse(row.metadata.unwrap_or_else(|| serde_json::json!({})))
            .map_err(invalid_row(CONTEXT))?,
        created_at,
        updated_at: row.updated_at.unwrap_or(created_at),
    })
}

impl TryFrom<WorkflowRow> for Workflow {
    type Error = StorageError;

    fn try_from(row: WorkflowRow) -> Result<Self, StorageError> {
        let number = row.current_version_number.map(version_number).transpose()?;
        workflow_from(row.workflow, number)
    }
}

/// A stored version number, refusing one the schema's checks should have kept out.
pub(crate) fn version_number(stored: i32) -> Result<VersionNumber, StorageError> {
    u32::try_from(stored)
        .ok()
        .and_then(VersionNumber::new)
        .ok_or_else(|| {
            StorageError::new(
                "reading a version number",
                format!("{stored} is not positive"),
            )
        })
}

/// A version's row without its definition, for lists (definitions can be large and a list does
/// not show them).
#[derive(Debug, DerivePartialModel)]
#[sea_orm(entity = "workflow_versions::Entity")]
struct SummaryRow {
    id: Uuid,
    workflow_id: Uuid,
    version_number: i32,
    change_summary: Option<String>,
    created_by: Uuid,
    created_at: Option<OffsetDateTime>,
}

/// The one place a version's row becomes a [`VersionSummary`] (`created_at` is nullable in the
/// seed's schema; a missing one reads as now).
fn summary_from(row: SummaryRow) -> Result<VersionSummary, StorageError> {
    Ok(VersionSummary {
        id: WorkflowVersionId::from_uuid(row.id),
        workflow_id: WorkflowId::from_uuid(row.workflow_id),
        number: version_number(row.version_number)?,
        // Summaries are shown as written; one the rules no longer accept reads as none.
        change_summary: row
            .change_summary
            .and_then(|text| ChangeSummary::parse(&text).ok().flatten()),
        author: UserId::from_uuid(row.created_by),
        created_at: row.created_at.unwrap_or_else(OffsetDateTime::now_utc),
    })
}

/// A version's whole row as a [`WorkflowVersion`].
fn version_from(row: workflow_versions::Model) -> Result<WorkflowVersion, StorageError> {
    Ok(WorkflowVersion {
        summary: summary_from(SummaryRow {
            id: row.id,
            workflow_id: row.workflow_id,
            version_number: row.version_number,
            change_summary: row.change_summary,
            created_by: row.created_by,
            created_at: row.created_at,
        })?,
        definition: row.definition,
    })
}

/// Workflows with the number of their current version: `workflows` left-joined to the version
/// its `current_version_id` names (by that id alone, the primary key).
fn with_current_version() -> Select<workflows::Entity> {
    let current: RelationDef = workflows::Entity::belongs_to(workflow_versions::Entity)
        .from(workflows::Column::CurrentVersionId)
        .to(workflow_versions::Column::Id)
        .into();
    workflows::Entity::find()
        .join(JoinType::LeftJoin, current)
        .column_as(
            workflow_versions::Column::VersionNumber,
            "current_version_number",
        )
}

/// The workflow with `id`, locked for the rest of the transaction when `lock` is set (its row
/// only: the version's side of the outer join cannot be locked, and need not be).
async fn find_workflow(
    conn: &impl ConnectionTrait,
    id: WorkflowId,
    lock: bool,
) -> Result<Option<Workflow>, StorageError> {
    let mut select = with_current_version().filter(workflows::Column::Id.eq(id.as_uuid()));
    if lock {
        QueryTrait::query(&mut select).lock_with_tables(LockType::Update, [workflows::Entity]);
    }
    select
        .into_model::<WorkflowRow>()
        .one(conn)
        .await
        .map_err(storage("reading a workflow"))?
        .map(Workflow::try_from)
        .transpose()
}

/// The version `number` of workflow `id`, telling a missing workflow from a missing version (the
/// second read happens only when the version is missing).
async fn find_version(
    conn: &impl ConnectionTrait,
    id: WorkflowId,
    number: VersionNumber,
) -> Result<WorkflowVersion, VersionError> {
    let found = workflow_versions::Entity::find()
        .filter(workflow_versions::Column::WorkflowId.eq(id.as_uuid()))
        .filter(workflow_versions::Column::VersionNumber.eq(i64::from(number.get())))
        .one(conn)
        .await
        .map_err(storage("reading a workflow version"))?;
    match found {
        Some(version) => Ok(version_from(version)?),
        None if workflow_exists(conn, id).await? => Err(VersionError::VersionNotFound(number)),
        None => Err(VersionError::WorkflowNotFound),
    }
}

/// Whether the actor sees workflow `id`.
async fn workflow_exists(
    conn: &impl ConnectionTrait,
    id: WorkflowId,
) -> Result<bool, StorageError> {
    Ok(workflows::Entity::find_by_id(id.as_uuid())
        .select_only()
        .column(workflows::Column::Id)
        .into_tuple::<Uuid>()
        .one(conn)
        .await
        .map_err(storage("reading a workflow"))?
        .is_some())
}

fn owner(actor: &Actor) -> Result<UserId, StorageError> {
    actor.user_id().ok_or_else(|| {
        StorageError::new(
            "creating a workflow",
            "a workflow is owned by a user; the platform itself cannot own one",
        )
    })
}

/// Which of the agents asked about exist, and their status, past the catalog's visibility. Raw:
/// a call of the schema's set-returning function `ipa_agent_states` (migration 000011).
const AGENT_STATES: &str = "SELECT id, status::text AS status FROM ipa_agent_states($1::uuid[])";

/// Which of the users asked about exist, and whether each is active, past the accounts'
/// visibility. Raw: a call of the schema's set-returning function `ipa_user_states`.
const USER_STATES: &str = "SELECT id, is_active FROM ipa_user_states($1::uuid[])";

#[derive(Debug, FromQueryResult)]
struct AgentState {
    id: Uuid,
    status: StoredAgentStatus,
}

#[derive(Debug, FromQueryResult)]
struct UserState {
    id: Uuid,
    is_active: bool,
}

/// Workflows and their versions on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgWorkflows {
    store: Store,
}

impl PgWorkflows {
    /// Workflows kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// PostgreSQL's plan for listing workflows with `filter` as `actor` (`EXPLAIN`, text form,
    /// one line per plan node): for operators checking that a filter is served by its index.
    pub async fn explain_list(
        &self,
        actor: &Actor,
        filter: &WorkflowFilter,
        page: PageRequest,
    ) -> Result<String, StorageError> {
        explain_statement(&self.store, actor, list_query(filter, page)).await
    }
}

/// A column contains (`@>`) a value: for arrays and `jsonb`, the operator their GIN indexes serve
/// (and which the schema marks LEAKPROOF, so row level security lets an index answer it).
fn contains(column: workflows::Column, value: Expr) -> Expr {
    column.into_expr().binary(PgBinOper::Contains, value)
}

/// A workflow list: only the conditions given, so each query is planned for the indexes it can
/// use (GIN for tags and metadata, trigram for names, the `(created_at, id)` index for the order).
fn list_query(filter: &WorkflowFilter, page: PageRequest) -> sea_orm::Statement {
    let mut select = with_current_version();
    if let Some(status) = filter.status {
        select = select.filter(workflows::Column::Status.eq(StoredStatus::from(status)));
    }
    if !filter.tags.is_empty() {
        select = select.filter(contains(
            workflows::Column::Tags,
            Expr::val(filter.tags.as_slice().to_vec()),
        ));
    }
    if let Some(metadata) = &filter.metadata {
        select = select.filter(contains(
            workflows::Column::Metadata,
            Expr::val(metadata.as_value().clone()),
        ));
    }
    if let Some(name) = &filter.name {
        select = select.filter(name_contains(workflows::Column::Name, name.as_str()));
    }
    if let Some(owner) = filter.owner {
        select = select.filter(workflows::Column::CreatedBy.eq(owner.as_uuid()));
    }
    newest_first(
        select,
        workflows::Column::CreatedAt,
        workflows::Column::Id,
        page,
    )
    .build(DbBackend::Postgres)
}

/// The workflow an update returned (`RETURNING`), if it matched, with its current version's
/// number, which the caller knows.
fn written(
    rows: Vec<workflows::Model>,
    current_version_number: Option<VersionNumber>,
) -> Result<Option<Workflow>, StorageError> {
    rows.into_iter()
        .next()
        .map(|row| workflow_from(row, current_version_number))
        .transpose()
}

impl WorkflowRepository for PgWorkflows {
    async fn create(
        &self,
        actor: &Actor,
        workflow: &NewWorkflow,
    ) -> Result<Workflow, StorageError> {
        const CONTEXT: &str = "creating a workflow";
        let owner = owner(actor)?;
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        // Only these columns are written; the others take the schema's defaults.
        let row = workflows::ActiveModel {
            name: ActiveValue::Set(workflow.name.as_str().to_owned()),
            description: ActiveValue::Set(
                workflow
                    .description
                    .as_ref()
                    .map(|text| text.as_str().to_owned()),
            ),
            created_by: ActiveValue::Set(owner.as_uuid()),
            status: ActiveValue::Set(Some(StoredStatus::Draft)),
            tags: ActiveValue::Set(Some(workflow.tags.as_slice().to_vec())),
            metadata: ActiveValue::Set(Some(workflow.metadata.as_value().clone())),
            ..Default::default()
        };
        let created = workflows::Entity::insert(row)
            .exec_with_returning(txn.connection())
            .await
            .map_err(storage(CONTEXT))?;
        // A new workflow has no version yet.
        let created = workflow_from(created, None)?;
        commit(txn).await?;
        Ok(created)
    }

    async fn find(&self, actor: &Actor, id: WorkflowId) -> Result<Option<Workflow>, StorageError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let workflow = find_workflow(txn.connection(), id, false).await?;
        commit(txn).await?;
        Ok(workflow)
    }

    async fn list(
        &self,
        actor: &Actor,
        filter: &WorkflowFilter,
        page: PageRequest,
    ) -> Result<Page<Workflow>, StorageError> {
        read_rows_page::<WorkflowRow, _>(
            &self.store,
            actor,
            list_query(filter, page),
            page,
            "listing workflows",
            Workflow::try_from,
            Workflow::keyset,
        )
        .await
    }

    async fn update(
        &self,
        actor: &Actor,
        id: WorkflowId,
        changes: &WorkflowChanges,
    ) -> Result<Workflow, UpdateWorkflowError> {
        const CONTEXT: &str = "updating a workflow";
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        let current = find_workflow(conn, id, true)
            .await?
            .ok_or(UpdateWorkflowError::NotFound)?;
        let next = current.apply(changes)?;
        let changed = workflows::Entity::update_many()
            .col_expr(workflows::Column::Name, Expr::val(next.name.as_str()))
            .col_expr(
                workflows::Column::Description,
                Expr::val(
                    next.description
                        .as_ref()
                        .map(|text| text.as_str().to_owned()),
                ),
            )
            .col_expr(
                workflows::Column::Status,
                Expr::val(StoredStatus::from(next.status)),
            )
            .col_expr(
                workflows::Column::Tags,
                Expr::val(next.tags.as_slice().to_vec()),
            )
            .col_expr(
                workflows::Column::Metadata,
                Expr::val(next.metadata.as_value().clone()),
            )
            .filter(workflows::Column::Id.eq(id.as_uuid()))
            .exec_with_returning(conn)
            .await
            .map_err(storage(CONTEXT))?;
        // The row is locked, so its current version is the one read above.
        let number = current.current_version.map(|current| current.number);
        let updated = written(changed, number)?.ok_or(UpdateWorkflowError::NotFound)?;
        commit(txn).await?;
        Ok(updated)
    }

    async fn delete(&self, actor: &Actor, id: WorkflowId) -> Result<(), DeleteWorkflowError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let result = workflows::Entity::delete_by_id(id.as_uuid())
            .exec(txn.connection())
            .await
            .map_err(|error| match error.sql_err() {
                // Executions refer to the workflow and its versions with ON DELETE RESTRICT.
                Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                    DeleteWorkflowError::HasExecutions
                }
                _ => DeleteWorkflowError::Storage(db_error("deleting a workflow", error)),
            })?;
        if result.rows_affected == 0 {
            return Err(DeleteWorkflowError::NotFound);
        }
        commit(txn).await?;
        Ok(())
    }

    async fn references(
        &self,
        actor: &Actor,
        agents: &[AgentId],
        users: &[UserId],
    ) -> Result<ReferenceStates, StorageError> {
        let mut states = ReferenceStates::default();
        if agents.is_empty() && users.is_empty() {
            return Ok(states);
        }
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        if !agents.is_empty() {
            let ids: Vec<Uuid> = agents.iter().map(|id| id.as_uuid()).collect();
            let found = AgentState::find_by_statement(statement(AGENT_STATES, [ids.into()]))
                .all(conn)
                .await
                .map_err(storage("checking agents"))?;
            for agent in found {
                let availability = match AgentStatus::from(agent.status) {
                    AgentStatus::Deprecated => AgentAvailability::Deprecated,
                    AgentStatus::Active | AgentStatus::Inactive => AgentAvailability::Usable,
                };
                states
                    .agents
                    .insert(AgentId::from_uuid(agent.id), availability);
            }
        }
        if !users.is_empty() {
            let ids: Vec<Uuid> = users.iter().map(|id| id.as_uuid()).collect();
            let found = UserState::find_by_statement(statement(USER_STATES, [ids.into()]))
                .all(conn)
                .await
                .map_err(storage("checking users"))?;
            for user in found {
                states
                    .users
                    .insert(UserId::from_uuid(user.id), user.is_active);
            }
        }
        commit(txn).await?;
        Ok(states)
    }

    async fn publish(
        &self,
        actor: &Actor,
        id: WorkflowId,
        version: &NewVersion,
    ) -> Result<WorkflowVersion, PublishError> {
        let author = owner(actor)?;
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        // Publishers of one workflow queue on its row, so each reads the highest number after the
        // previous one committed: numbers are distinct and gapless, and nobody sees a unique
        // violation.
        workflows::Entity::find_by_id(id.as_uuid())
            .select_only()
            .column(workflows::Column::Id)
            .lock_exclusive()
            .into_tuple::<Uuid>()
            .one(conn)
            .await
            .map_err(storage("locking a workflow"))?
            .ok_or(PublishError::NotFound)?;
        let published = workflow_versions::Model::find_by_statement(StatementBuilder::build(
            &next_version(id, version, author)?,
            &DbBackend::Postgres,
        ))
        .one(conn)
        .await
        .map_err(|error| match error.sql_err() {
            // The schema locks the agents a version names; one was deleted meanwhile.
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                PublishError::Invalid(InvalidDefinition(vec![DefinitionProblem {
                    pointer: "/steps".to_owned(),
                    message: "an agent this definition names was deleted while it was being \
                              published; check its agent steps and publish again"
                        .to_owned(),
                }]))
            }
            _ => db_error("writing a workflow version", error).into(),
        })?
        .ok_or_else(|| {
            StorageError::new("writing a workflow version", "the insert returned no row")
        })?;
        let published = version_from(published)?;
        if version.make_current {
            workflows::Entity::update_many()
                .col_expr(
                    workflows::Column::CurrentVersionId,
                    Expr::val(published.summary.id.as_uuid()),
                )
                .filter(workflows::Column::Id.eq(id.as_uuid()))
                .exec(conn)
                .await
                .map_err(storage("making a version current"))?;
        }
        commit(txn).await?;
        Ok(published)
    }

    async fn versions(
        &self,
        actor: &Actor,
        id: WorkflowId,
        page: PageRequest<VersionNumber>,
    ) -> Result<Option<Page<VersionSummary, VersionNumber>>, StorageError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        if !workflow_exists(conn, id).await? {
            return Ok(None);
        }
        let before = page
            .after
            .map_or(i64::from(VersionNumber::MAX) + 1, |number| {
                i64::from(number.get())
            });
        let rows = workflow_versions::Entity::find()
            .filter(workflow_versions::Column::WorkflowId.eq(id.as_uuid()))
            .filter(workflow_versions::Column::VersionNumber.lt(before))
            .order_by_desc(workflow_versions::Column::VersionNumber)
            .limit(u64::from(page.limit.get()) + 1)
            .into_partial_model::<SummaryRow>()
            .all(conn)
            .await
            .map_err(storage("listing workflow versions"))?;
        commit(txn).await?;
        let summaries = rows
            .into_iter()
            .map(summary_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Page::from_overfetched(
            summaries,
            page.limit,
            |summary| summary.number,
        )))
    }

    async fn version(
        &self,
        actor: &Actor,
        id: WorkflowId,
        number: VersionNumber,
    ) -> Result<WorkflowVersion, VersionError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let version = find_version(txn.connection(), id, number).await?;
        commit(txn).await?;
        Ok(version)
    }

    async fn rollback(
        &self,
        actor: &Actor,
        id: WorkflowId,
        number: VersionNumber,
    ) -> Result<Workflow, VersionError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        find_workflow(conn, id, true)
            .await?
            .ok_or(VersionError::WorkflowNotFound)?;
        let target = find_version(conn, id, number).await?;
        let changed = workflows::Entity::update_many()
            .col_expr(
                workflows::Column::CurrentVersionId,
                Expr::val(target.summary.id.as_uuid()),
            )
            .filter(workflows::Column::Id.eq(id.as_uuid()))
            .exec_with_returning(conn)
            .await
            .map_err(storage("rolling back a workflow"))?;
        let workflow = written(changed, Some(number))?.ok_or(VersionError::WorkflowNotFound)?;
        commit(txn).await?;
        Ok(workflow)
    }
}

/// Inserts version `version` of workflow `id` by `author`, numbered one past the highest so far
/// (`INSERT ... SELECT coalesce(max(version_number), 0) + 1`), returning the row: one statement,
/// under the workflow's row lock taken before it.
fn next_version(
    id: WorkflowId,
    version: &NewVersion,
    author: UserId,
) -> Result<InsertStatement, StorageError> {
    let highest = Func::coalesce([
        Expr::col(workflow_versions::Column::VersionNumber).max(),
        Expr::val(0),
    ]);
    let numbered = Query::select()
        .expr(Expr::val(id.as_uuid()))
        .expr(Expr::expr(highest).add(1))
        .expr(Expr::val(version.definition.document().clone()))
        .expr(Expr::val(
            version
                .change_summary
                .as_ref()
                .map(|summary| summary.as_str().to_owned()),
        ))
        .expr(Expr::val(author.as_uuid()))
        .from(workflow_versions::Entity)
        .and_where(workflow_versions::Column::WorkflowId.eq(id.as_uuid()))
        .to_owned();
    let mut insert = Query::insert();
    insert
        .into_table(workflow_versions::Entity)
        .columns([
            workflow_versions::Column::WorkflowId,
            workflow_versions::Column::VersionNumber,
            workflow_versions::Column::Definition,
            workflow_versions::Column::ChangeSummary,
            workflow_versions::Column::CreatedBy,
        ])
        .select_from(numbered)
        .map_err(|error| StorageError::new("writing a workflow version", error))?
        .returning_all();
    Ok(insert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipa_workflow::NameFragment;

    /// Row level security lets an index answer only LEAKPROOF operators (ADR 0006): the filters
    /// must reach PostgreSQL as `@>` and `ILIKE`, with the client's text bound, never spliced.
    #[test]
    fn list_filters_are_the_operators_the_indexes_serve() {
        let filter = WorkflowFilter {
            tags: Tags::parse(&["billing".to_owned()]).unwrap(),
            metadata: Some(Metadata::parse(serde_json::json!({"team": "a"})).unwrap()),
            name: Some(NameFragment::parse("50%_off").unwrap()),
            ..WorkflowFilter::default()
        };
        let query = list_query(&filter, PageRequest::default());
        for expected in [
            r#""workflows"."tags" @> $1"#,
            r#""workflows"."metadata" @> $2"#,
            r#""workflows"."name" ILIKE $3"#,
            r#"ORDER BY "workflows"."created_at" DESC, "workflows"."id" DESC LIMIT $4"#,
        ] {
            assert!(query.sql.contains(expected), "{expected} in {}", query.sql);
        }
        assert!(!query.sql.contains("50"), "{}", query.sql);
    }
}
