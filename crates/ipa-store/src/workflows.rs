//! The workflow context's repository on PostgreSQL ([`PgWorkflows`]): workflows, their numbered
//! versions, and the reference checks a definition needs.
//!
//! Every statement runs in a transaction scoped to its actor, so row level security decides what
//! is visible: another user's workflow is simply absent. Row changes are audited by the schema's
//! triggers, one row per change, with the actor the transaction carries.

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
use sea_orm::{ConnectionTrait, QueryResult, SqlErr, Value};
use uuid::Uuid;

use crate::sql::{
    ListQuery, commit, db_error, explain, from_store, like_literal, read_page, statement, storage,
};
use crate::store::Store;

/// The columns of a [`Workflow`] read from `workflows w` joined to its current version `v`. The
/// seed's nullable columns read as their defaults.
const WORKFLOW_COLUMNS: &str = "w.id, w.name, w.description, w.created_by, \
     coalesce(w.status, 'draft')::text AS status, w.current_version_id, \
     v.version_number AS current_version_number, to_jsonb(coalesce(w.tags, '{}')) AS tags, \
     coalesce(w.metadata, '{}') AS metadata, coalesce(w.created_at, now()) AS created_at, \
     coalesce(w.updated_at, w.created_at, now()) AS updated_at";

/// `workflows w` with its current version, for [`WORKFLOW_COLUMNS`].
const WORKFLOW_FROM: &str =
    "workflows w LEFT JOIN workflow_versions v ON v.id = w.current_version_id";

/// The same for a row just written, returned by a CTE named `w`.
const WRITTEN_WORKFLOW_FROM: &str =
    "w LEFT JOIN workflow_versions v ON v.id = w.current_version_id";

/// The columns of a [`VersionSummary`] from `workflow_versions v`.
const SUMMARY_COLUMNS: &str = "v.id, v.workflow_id, v.version_number, v.change_summary, \
     v.created_by, coalesce(v.created_at, now()) AS created_at";

fn invalid_row(context: &'static str) -> impl Fn(ipa_workflow::WorkflowValueError) -> StorageError {
    move |error| StorageError::new(context, error)
}

fn workflow_from_row(row: &QueryResult) -> Result<Workflow, StorageError> {
    const CONTEXT: &str = "reading a workflow row";
    let get = storage(CONTEXT);
    let name: String = row.try_get("", "name").map_err(&get)?;
    let description: Option<String> = row.try_get("", "description").map_err(&get)?;
    let status: String = row.try_get("", "status").map_err(&get)?;
    let tags: Vec<String> = serde_json::from_value(row.try_get("", "tags").map_err(&get)?)
        .map_err(|error| StorageError::new(CONTEXT, error))?;
    let current_id: Option<Uuid> = row.try_get("", "current_version_id").map_err(&get)?;
    let current_number: Option<i32> = row.try_get("", "current_version_number").map_err(&get)?;
    let current_version = match (current_id, current_number) {
        (Some(id), Some(number)) => Some(VersionRef {
            id: WorkflowVersionId::from_uuid(id),
            number: version_number(number)?,
        }),
        _ => None,
    };
    Ok(Workflow {
        id: WorkflowId::from_uuid(row.try_get("", "id").map_err(&get)?),
        name: WorkflowName::parse(&name).map_err(invalid_row(CONTEXT))?,
        // A description the rules no longer accept is shown as none rather than failing the row.
        description: description.and_then(|text| Description::parse(&text).ok().flatten()),
        owner: UserId::from_uuid(row.try_get("", "created_by").map_err(&get)?),
        status: status
            .parse::<WorkflowStatus>()
            .map_err(|error| StorageError::new(CONTEXT, error))?,
        current_version,
        tags: Tags::parse(&tags).map_err(invalid_row(CONTEXT))?,
        metadata: Metadata::parse(row.try_get("", "metadata").map_err(&get)?)
            .map_err(invalid_row(CONTEXT))?,
        created_at: row.try_get("", "created_at").map_err(&get)?,
        updated_at: row.try_get("", "updated_at").map_err(&get)?,
    })
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

fn summary_from_row(row: &QueryResult) -> Result<VersionSummary, StorageError> {
    let get = storage("reading a workflow version row");
    let summary: Option<String> = row.try_get("", "change_summary").map_err(&get)?;
    Ok(VersionSummary {
        id: WorkflowVersionId::from_uuid(row.try_get("", "id").map_err(&get)?),
        workflow_id: WorkflowId::from_uuid(row.try_get("", "workflow_id").map_err(&get)?),
        number: version_number(row.try_get("", "version_number").map_err(&get)?)?,
        // Summaries are shown as written; one the rules no longer accept reads as none.
        change_summary: summary.and_then(|text| ChangeSummary::parse(&text).ok().flatten()),
        author: UserId::from_uuid(row.try_get("", "created_by").map_err(&get)?),
        created_at: row.try_get("", "created_at").map_err(&get)?,
    })
}

fn version_from_row(row: &QueryResult) -> Result<WorkflowVersion, StorageError> {
    Ok(WorkflowVersion {
        summary: summary_from_row(row)?,
        definition: row
            .try_get("", "definition")
            .map_err(storage("reading a workflow definition"))?,
    })
}

/// The workflow with `id`, locked for the rest of the transaction when `lock` is set.
async fn find_workflow(
    conn: &impl ConnectionTrait,
    id: WorkflowId,
    lock: bool,
) -> Result<Option<Workflow>, StorageError> {
    let lock = if lock { " FOR UPDATE OF w" } else { "" };
    conn.query_one_raw(statement(
        &format!("SELECT {WORKFLOW_COLUMNS} FROM {WORKFLOW_FROM} WHERE w.id = $1{lock}"),
        [id.as_uuid().into()],
    ))
    .await
    .map_err(storage("reading a workflow"))?
    .map(|row| workflow_from_row(&row))
    .transpose()
}

/// Runs a statement that writes one workflow row (`RETURNING *` in a CTE named `w`) and reads it
/// back with its current version.
async fn write_workflow(
    conn: &impl ConnectionTrait,
    write_sql: &str,
    values: Vec<Value>,
    context: &'static str,
) -> Result<Option<Workflow>, StorageError> {
    conn.query_one_raw(statement(
        &format!(
            "WITH w AS ({write_sql} RETURNING *) \
             SELECT {WORKFLOW_COLUMNS} FROM {WRITTEN_WORKFLOW_FROM}"
        ),
        values,
    ))
    .await
    .map_err(storage(context))?
    .map(|row| workflow_from_row(&row))
    .transpose()
}

/// The version `number` of workflow `id`, telling a missing workflow from a missing version.
async fn find_version(
    conn: &impl ConnectionTrait,
    id: WorkflowId,
    number: VersionNumber,
) -> Result<WorkflowVersion, VersionError> {
    let row = conn
        .query_one_raw(statement(
            &format!(
                "SELECT w.id AS found_workflow, {SUMMARY_COLUMNS}, v.definition \
                 FROM workflows w LEFT JOIN workflow_versions v \
                 ON v.workflow_id = w.id AND v.version_number = $2 WHERE w.id = $1"
            ),
            [id.as_uuid().into(), i64::from(number.get()).into()],
        ))
        .await
        .map_err(storage("reading a workflow version"))?
        .ok_or(VersionError::WorkflowNotFound)?;
    let version_id: Option<Uuid> = row
        .try_get("", "id")
        .map_err(storage("reading a workflow version"))?;
    if version_id.is_none() {
        return Err(VersionError::VersionNotFound(number));
    }
    Ok(version_from_row(&row)?)
}

fn owner(actor: &Actor) -> Result<UserId, StorageError> {
    actor.user_id().ok_or_else(|| {
        StorageError::new(
            "creating a workflow",
            "a workflow is owned by a user; the platform itself cannot own one",
        )
    })
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
        let (sql, values) = list_query(filter, page);
        explain(&self.store, actor, &sql, values).await
    }
}

/// The SQL and parameters of a workflow list: only the conditions given, so each query is planned
/// for the indexes it can use (GIN for tags and metadata, the `(created_at, id)` index for the
/// order).
fn list_query(filter: &WorkflowFilter, page: PageRequest) -> (String, Vec<Value>) {
    let mut query = ListQuery::default();
    if let Some(status) = filter.status {
        let status = query.bind(status.as_str());
        query.condition(format!("w.status = ${status}::workflow_status"));
    }
    if !filter.tags.is_empty() {
        let tags = query.bind(filter.tags.as_slice().to_vec());
        query.condition(format!("w.tags @> ${tags}::text[]"));
    }
    if let Some(metadata) = &filter.metadata {
        let metadata = query.bind(metadata.as_value().clone());
        query.condition(format!("w.metadata @> ${metadata}::jsonb"));
    }
    if let Some(name) = &filter.name {
        let name = query.bind(format!("%{}%", like_literal(name.as_str())));
        query.condition(format!("w.name ILIKE ${name} ESCAPE '\\'"));
    }
    if let Some(owner) = filter.owner {
        let owner = query.bind(owner.as_uuid());
        query.condition(format!("w.created_by = ${owner}"));
    }
    query.newest_first(WORKFLOW_COLUMNS, WORKFLOW_FROM, "w.", page)
}

impl WorkflowRepository for PgWorkflows {
    async fn create(
        &self,
        actor: &Actor,
        workflow: &NewWorkflow,
    ) -> Result<Workflow, StorageError> {
        let owner = owner(actor)?;
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let created = write_workflow(
            txn.connection(),
            "INSERT INTO workflows (name, description, created_by, status, tags, metadata) \
             VALUES ($1, $2, $3, 'draft', $4::text[], $5)",
            vec![
                workflow.name.as_str().into(),
                workflow
                    .description
                    .as_ref()
                    .map(|text| text.as_str().to_owned())
                    .into(),
                owner.as_uuid().into(),
                workflow.tags.as_slice().to_vec().into(),
                workflow.metadata.as_value().clone().into(),
            ],
            "creating a workflow",
        )
        .await?
        .ok_or_else(|| StorageError::new("creating a workflow", "the insert returned no row"))?;
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
        let query = list_query(filter, page);
        read_page(
            &self.store,
            actor,
            query,
            page,
            "listing workflows",
            workflow_from_row,
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
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        let current = find_workflow(conn, id, true)
            .await?
            .ok_or(UpdateWorkflowError::NotFound)?;
        let next = current.apply(changes)?;
        let updated = write_workflow(
            conn,
            "UPDATE workflows SET name = $2, description = $3, status = $4::workflow_status, \
             tags = $5::text[], metadata = $6 WHERE id = $1",
            vec![
                id.as_uuid().into(),
                next.name.as_str().into(),
                next.description
                    .as_ref()
                    .map(|text| text.as_str().to_owned())
                    .into(),
                next.status.as_str().into(),
                next.tags.as_slice().to_vec().into(),
                next.metadata.as_value().clone().into(),
            ],
            "updating a workflow",
        )
        .await?
        .ok_or(UpdateWorkflowError::NotFound)?;
        commit(txn).await?;
        Ok(updated)
    }

    async fn delete(&self, actor: &Actor, id: WorkflowId) -> Result<(), DeleteWorkflowError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let result = txn
            .connection()
            .execute_raw(statement(
                "DELETE FROM workflows WHERE id = $1",
                [id.as_uuid().into()],
            ))
            .await
            .map_err(|error| match error.sql_err() {
                // Executions refer to the workflow and its versions with ON DELETE RESTRICT.
                Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                    DeleteWorkflowError::HasExecutions
                }
                _ => DeleteWorkflowError::Storage(db_error("deleting a workflow", error)),
            })?;
        if result.rows_affected() == 0 {
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
            let rows = conn
                .query_all_raw(statement(
                    "SELECT id, status::text AS status FROM ipa_agent_states($1::uuid[])",
                    [agents
                        .iter()
                        .map(|id| id.as_uuid())
                        .collect::<Vec<_>>()
                        .into()],
                ))
                .await
                .map_err(storage("checking agents"))?;
            for row in rows {
                let get = storage("reading an agent's state");
                let id: Uuid = row.try_get("", "id").map_err(&get)?;
                let status: String = row.try_get("", "status").map_err(&get)?;
                let availability = if status == "deprecated" {
                    AgentAvailability::Deprecated
                } else {
                    AgentAvailability::Usable
                };
                states.agents.insert(AgentId::from_uuid(id), availability);
            }
        }
        if !users.is_empty() {
            let rows = conn
                .query_all_raw(statement(
                    "SELECT id, is_active FROM ipa_user_states($1::uuid[])",
                    [users
                        .iter()
                        .map(|id| id.as_uuid())
                        .collect::<Vec<_>>()
                        .into()],
                ))
                .await
                .map_err(storage("checking users"))?;
            for row in rows {
                let get = storage("reading a user's state");
                let id: Uuid = row.try_get("", "id").map_err(&get)?;
                states.users.insert(
                    UserId::from_uuid(id),
                    row.try_get::<bool>("", "is_active").map_err(&get)?,
                );
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
        conn.query_one_raw(statement(
            "SELECT id FROM workflows WHERE id = $1 FOR UPDATE",
            [id.as_uuid().into()],
        ))
        .await
        .map_err(storage("locking a workflow"))?
        .ok_or(PublishError::NotFound)?;
        let row = conn
            .query_one_raw(statement(
                &format!(
                    "INSERT INTO workflow_versions AS v \
                     (workflow_id, version_number, definition, change_summary, created_by) \
                     SELECT $1, coalesce(max(version_number), 0) + 1, $2, $3, $4 \
                     FROM workflow_versions WHERE workflow_id = $1 \
                     RETURNING {SUMMARY_COLUMNS}, v.definition"
                ),
                [
                    id.as_uuid().into(),
                    version.definition.document().clone().into(),
                    version
                        .change_summary
                        .as_ref()
                        .map(|summary| summary.as_str().to_owned())
                        .into(),
                    author.as_uuid().into(),
                ],
            ))
            .await
            .map_err(|error| match error.sql_err() {
                // The schema locks the agents a version names; one was deleted meanwhile.
                Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                    PublishError::Invalid(InvalidDefinition(vec![DefinitionProblem {
                        pointer: "/steps".to_owned(),
                        message: "an agent this definition names was deleted while it was being                                   published; check its agent steps and publish again"
                            .to_owned(),
                    }]))
                }
                _ => db_error("writing a workflow version", error).into(),
            })?
            .ok_or_else(|| {
                StorageError::new("writing a workflow version", "the insert returned no row")
            })?;
        let published = version_from_row(&row)?;
        if version.make_current {
            conn.execute_raw(statement(
                "UPDATE workflows SET current_version_id = $2 WHERE id = $1",
                [id.as_uuid().into(), published.summary.id.as_uuid().into()],
            ))
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
        if find_workflow(conn, id, false).await?.is_none() {
            return Ok(None);
        }
        let before = page
            .after
            .map_or(i64::from(VersionNumber::MAX) + 1, |number| {
                i64::from(number.get())
            });
        let rows = conn
            .query_all_raw(statement(
                &format!(
                    "SELECT {SUMMARY_COLUMNS} FROM workflow_versions v \
                     WHERE v.workflow_id = $1 AND v.version_number < $2 \
                     ORDER BY v.version_number DESC LIMIT $3"
                ),
                [
                    id.as_uuid().into(),
                    before.into(),
                    i64::from(page.limit.get() + 1).into(),
                ],
            ))
            .await
            .map_err(storage("listing workflow versions"))?;
        commit(txn).await?;
        let summaries = rows
            .iter()
            .map(summary_from_row)
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
        let workflow = write_workflow(
            conn,
            "UPDATE workflows SET current_version_id = $2 WHERE id = $1",
            vec![id.as_uuid().into(), target.summary.id.as_uuid().into()],
            "rolling back a workflow",
        )
        .await?
        .ok_or(VersionError::WorkflowNotFound)?;
        commit(txn).await?;
        Ok(workflow)
    }
}
