//! The agent context's repository on PostgreSQL ([`PgAgents`]): agents, their tools, and the
//! checks that need other rows (a group's participants, what uses an agent, how many tools it
//! has), each in the same transaction as the write it guards.
//!
//! Statements are built from the generated entities (`entity::agents`, `entity::agent_tools`), and
//! rows are read into their models and made domain values in one place each
//! (`TryFrom<agents::Model> for Agent`, `TryFrom<agent_tools::Model> for AgentTool`), which is
//! also where the seed's nullable columns read as their defaults; labels map to the schema's enums
//! by `crate::labels`. The schema's lookups (`ipa_agent_graph`, `ipa_agent_usage`) and the group
//! lock stay raw SQL, each a named statement below.
//!
//! Row level security decides what is visible and what may change: every signed-in user reads
//! active agents, their creator and superusers read and change them all, and tools follow their
//! agent. Writes lock the agent first; when the lock finds nothing, whether the agent is visible
//! tells someone else's agent (403) from a missing one (404).

use std::collections::HashMap;

use ipa_agent::{
    Agent, AgentConfiguration, AgentFilter, AgentName, AgentRepository, AgentSettings, AgentStatus,
    AgentTool, AgentType, AgentUsage, CreateAgentError, DeleteAgentError, Description,
    InvalidRequest, MaxTokens, ModelName, ParticipantState, StoredSecret, SystemPrompt,
    Temperature, ToolConfiguration, ToolError, ToolName, ToolSettings, ToolType, UpdateAgentError,
    UsingGroup, UsingWorkflow, participant_problems,
};
use ipa_kernel::{
    Actor, AgentId, AgentToolId, Page, PageRequest, StorageError, UserId, WorkflowId,
};
use sea_orm::prelude::Decimal;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, SqlErr,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::entity::sea_orm_active_enums as enums;
use crate::entity::{agent_tools, agents};
use crate::sql::{
    commit, db_error, explain_statement, from_store, name_contains, newest_first, read_rows_page,
    statement, storage,
};
use crate::store::Store;

/// Serialises writes of group conversations, so two concurrent changes cannot each add one half
/// of a cycle. Raw: an advisory lock is a function call the query builder has no statement for.
const GROUP_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('ipa.agent_groups'))";

/// The participants graph reachable from `$1` (an array of agent ids), read past row level
/// security by the schema's `ipa_agent_graph`, one [`GraphRow`] each. Raw: it selects from a
/// set-returning function of the schema, which no entity describes; the enums are read as text,
/// as an entity's enum columns are.
const AGENT_GRAPH: &str = "SELECT id, type::text AS agent_type, status::text AS status, visible, \
     participants FROM ipa_agent_graph($1::uuid[])";

/// What uses the agent `$1` (workflows' current versions, group conversations), by the schema's
/// `ipa_agent_usage`, one [`UsageRow`] each. Raw for the same reason as [`AGENT_GRAPH`].
const AGENT_USAGE: &str = "SELECT kind, id, name FROM ipa_agent_usage($1)";

/// The most tools an agent may have: the most functions a model is offered in one request.
pub const MAX_TOOLS: usize = 128;

/// When a row was created: the seed's `created_at` is nullable, and a missing one reads as now,
/// as its column default would have made it.
fn created_at(stored: Option<OffsetDateTime>) -> OffsetDateTime {
    stored.unwrap_or_else(OffsetDateTime::now_utc)
}

/// A stored temperature in hundredths. The column is `DECIMAL(3, 2)`, so the product is whole
/// and rounding only drops the scale.
fn temperature_hundredths(stored: Decimal) -> Result<i64, StorageError> {
    i64::try_from((stored * Decimal::ONE_HUNDRED).round())
        .map_err(|error| StorageError::new("reading an agent row", error))
}

impl TryFrom<agents::Model> for Agent {
    type Error = StorageError;

    /// The one reading of an agent row. The seed's nullable columns read as their defaults:
    /// `status` active, `temperature` 0.7, `max_tokens` 1000, the timestamps now (`updated_at`
    /// the creation time first).
    fn try_from(row: agents::Model) -> Result<Self, StorageError> {
        const CONTEXT: &str = "reading an agent row";
        let agent_type = AgentType::from(row.r#type);
        let configuration =
            AgentConfiguration::parse(agent_type, &row.configuration, &mut StoredSecret::from_json)
                .map_err(|problems| {
                    StorageError::new(
                        CONTEXT,
                        format!("a stored configuration no longer reads: {problems:?}"),
                    )
                })?;
        let temperature = match row.temperature {
            Some(stored) => Temperature::from_hundredths(temperature_hundredths(stored)?)
                .ok_or_else(|| StorageError::new(CONTEXT, "temperature out of range"))?,
            None => Temperature::DEFAULT,
        };
        let max_tokens = match row.max_tokens {
            Some(stored) => MaxTokens::parse(i64::from(stored))
                .map_err(|error| StorageError::new(CONTEXT, error))?,
            None => MaxTokens::DEFAULT,
        };
        let created_at = created_at(row.created_at);
        Ok(Agent {
            id: AgentId::from_uuid(row.id),
            owner: UserId::from_uuid(row.created_by),
            settings: AgentSettings {
                name: AgentName::parse(&row.name)
                    .map_err(|error| StorageError::new(CONTEXT, error))?,
                // Text the rules no longer accept is shown as none rather than failing the row.
                description: row
                    .description
                    .and_then(|text| Description::parse(&text).ok().flatten()),
                status: row.status.map_or(AgentStatus::Active, AgentStatus::from),
                configuration,
                system_prompt: row
                    .system_prompt
                    .and_then(|text| SystemPrompt::parse(&text).ok().flatten()),
                model: row.model_name.and_then(|text| ModelName::parse(&text).ok()),
                temperature,
                max_tokens,
            },
            created_at,
            updated_at: row.updated_at.unwrap_or(created_at),
        })
    }
}

impl TryFrom<agent_tools::Model> for AgentTool {
    type Error = StorageError;

    /// The one reading of a tool row; the seed's nullable `is_enabled` reads as enabled and its
    /// timestamps as for an agent.
    fn try_from(row: agent_tools::Model) -> Result<Self, StorageError> {
        const CONTEXT: &str = "reading an agent tool row";
        let name =
            ToolName::parse(&row.tool_name).map_err(|error| StorageError::new(CONTEXT, error))?;
        let tool_type: ToolType = row
            .tool_type
            .parse()
            .map_err(|error| StorageError::new(CONTEXT, error))?;
        // Stored configurations were checked when written; reading them back needs their shape
        // only, not another compilation of their schemas.
        let configuration = ToolConfiguration::parse(
            tool_type,
            &name,
            &row.configuration,
            &mut StoredSecret::from_json,
            &AcceptSchemas,
        )
        .map_err(|problems| {
            StorageError::new(
                CONTEXT,
                format!("a stored configuration no longer reads: {problems:?}"),
            )
        })?;
        let created_at = created_at(row.created_at);
        Ok(AgentTool {
            id: AgentToolId::from_uuid(row.id),
            agent_id: AgentId::from_uuid(row.agent_id),
            settings: ToolSettings {
                name,
                description: row
                    .description
                    .and_then(|text| Description::parse(&text).ok().flatten()),
                configuration,
                enabled: row.is_enabled.unwrap_or(true),
            },
            created_at,
            updated_at: row.updated_at.unwrap_or(created_at),
        })
    }
}

/// Schemas were compiled when the tool was written.
struct AcceptSchemas;

impl ipa_agent::SchemaChecker for AcceptSchemas {
    fn schema_problems(&self, _schema: &serde_json::Value) -> Vec<ipa_agent::DocumentProblem> {
        Vec::new()
    }
}

/// The columns an agent's settings write (every column but the id, the owner and the
/// timestamps); an insert adds the id and the owner, an update sets exactly these.
fn settings_model(settings: &AgentSettings) -> Result<agents::ActiveModel, StorageError> {
    let max_tokens = i32::try_from(settings.max_tokens.get())
        .map_err(|error| StorageError::new("writing an agent", error))?;
    Ok(agents::ActiveModel {
        name: Set(settings.name.as_str().to_owned()),
        description: Set(settings
            .description
            .as_ref()
            .map(|text| text.as_str().to_owned())),
        r#type: Set(settings.agent_type().into()),
        status: Set(Some(settings.status.into())),
        configuration: Set(settings.configuration.to_json(&StoredSecret::to_json)),
        system_prompt: Set(settings
            .system_prompt
            .as_ref()
            .map(|text| text.as_str().to_owned())),
        model_name: Set(settings.model.as_ref().map(|name| name.as_str().to_owned())),
        temperature: Set(Some(Decimal::new(
            i64::from(settings.temperature.hundredths()),
            2,
        ))),
        max_tokens: Set(Some(max_tokens)),
        ..Default::default()
    })
}

/// The columns a tool's settings write (every column but the id, the agent and the timestamps).
fn tool_model(settings: &ToolSettings) -> agent_tools::ActiveModel {
    agent_tools::ActiveModel {
        tool_name: Set(settings.name.as_str().to_owned()),
        tool_type: Set(settings.configuration.tool_type().as_str().to_owned()),
        description: Set(settings
            .description
            .as_ref()
            .map(|text| text.as_str().to_owned())),
        configuration: Set(settings.configuration.to_json(&StoredSecret::to_json)),
        is_enabled: Set(Some(settings.enabled)),
        ..Default::default()
    }
}

/// The agent with `id` as the actor sees it; locked (`FOR UPDATE`) for the rest of the
/// transaction when `lock` (which row level security allows only to those who may change it).
async fn find_agent(
    conn: &impl ConnectionTrait,
    id: AgentId,
    lock: bool,
) -> Result<Option<Agent>, StorageError> {
    let select = agents::Entity::find_by_id(id.as_uuid());
    let select = if lock {
        select.lock_exclusive()
    } else {
        select
    };
    select
        .one(conn)
        .await
        .map_err(storage("reading an agent"))?
        .map(Agent::try_from)
        .transpose()
}

/// Why an agent cannot be changed by the actor, if it cannot.
#[derive(Clone, Copy)]
enum Refusal {
    NotFound,
    Forbidden,
}

/// Whether the actor may see the agent.
async fn agent_visible(conn: &impl ConnectionTrait, id: AgentId) -> Result<bool, StorageError> {
    Ok(agents::Entity::find_by_id(id.as_uuid())
        .select_only()
        .column(agents::Column::Id)
        .into_tuple::<Uuid>()
        .one(conn)
        .await
        .map_err(storage("looking for an agent"))?
        .is_some())
}

/// The agent locked for a change by the transaction's actor. Row level security lets only its
/// owner or a superuser lock it; when the lock finds nothing, a visible agent is someone else's
/// (403) and an invisible one is missing (404).
async fn lock_for_change(
    conn: &impl ConnectionTrait,
    id: AgentId,
) -> Result<Result<Agent, Refusal>, StorageError> {
    if let Some(agent) = find_agent(conn, id, true).await? {
        return Ok(Ok(agent));
    }
    Ok(Err(if agent_visible(conn, id).await? {
        Refusal::Forbidden
    } else {
        Refusal::NotFound
    }))
}

/// One agent of a participants graph ([`AGENT_GRAPH`]). The lookup keeps an unseen agent's type
/// and status to itself (both null).
#[derive(FromQueryResult)]
struct GraphRow {
    id: Uuid,
    agent_type: Option<enums::AgentType>,
    status: Option<enums::AgentStatus>,
    visible: bool,
    participants: Vec<Uuid>,
}

impl TryFrom<GraphRow> for ParticipantState {
    type Error = StorageError;

    fn try_from(row: GraphRow) -> Result<Self, StorageError> {
        const CONTEXT: &str = "reading a participant";
        // An unseen agent is only ever reported as missing and walked through for cycles, which
        // read neither its type nor its status, so it stands here as an inactive agent of no
        // particular kind.
        Ok(ParticipantState {
            agent_type: match row.agent_type {
                Some(agent_type) => agent_type.into(),
                None if !row.visible => AgentType::Custom,
                None => return Err(StorageError::new(CONTEXT, "a visible agent without a type")),
            },
            status: match row.status {
                Some(status) => status.into(),
                None if !row.visible => AgentStatus::Inactive,
                None => {
                    return Err(StorageError::new(
                        CONTEXT,
                        "a visible agent without a status",
                    ));
                }
            },
            visible: row.visible,
            participants: row
                .participants
                .into_iter()
                .map(AgentId::from_uuid)
                .collect(),
        })
    }
}

/// The problems of a group conversation's participants, read under the group lock.
async fn participants_problems(
    conn: &impl ConnectionTrait,
    id: AgentId,
    settings: &AgentSettings,
) -> Result<Vec<ipa_agent::DocumentProblem>, StorageError> {
    let participants = settings.configuration.participants();
    if participants.is_empty() {
        return Ok(Vec::new());
    }
    conn.execute_raw(statement(GROUP_LOCK, []))
        .await
        .map_err(storage("locking group conversations"))?;
    let ids: Vec<Uuid> = participants.iter().map(|id| id.as_uuid()).collect();
    let rows = GraphRow::find_by_statement(statement(AGENT_GRAPH, [ids.into()]))
        .all(conn)
        .await
        .map_err(storage("reading group conversations"))?;
    let mut graph = HashMap::new();
    for row in rows {
        let id = AgentId::from_uuid(row.id);
        graph.insert(id, ParticipantState::try_from(row)?);
    }
    Ok(participant_problems(id, participants, &graph))
}

/// One user of an agent ([`AGENT_USAGE`]): `kind` is `workflow` or a group conversation; the
/// lookup names neither the id nor the name of what the caller may not see.
#[derive(FromQueryResult)]
struct UsageRow {
    kind: String,
    id: Option<Uuid>,
    name: Option<String>,
}

/// What uses the agent.
async fn usage(conn: &impl ConnectionTrait, id: AgentId) -> Result<AgentUsage, StorageError> {
    let rows = UsageRow::find_by_statement(statement(AGENT_USAGE, [id.as_uuid().into()]))
        .all(conn)
        .await
        .map_err(storage("finding what uses an agent"))?;
    let mut usage = AgentUsage::default();
    for row in rows {
        // A user the caller may not see is only counted ("1 workflow of other users"), so the
        // nil id never shows.
        let user = row.id.unwrap_or_else(Uuid::nil);
        if row.kind == "workflow" {
            usage.workflows.push(UsingWorkflow {
                id: WorkflowId::from_uuid(user),
                name: row.name,
            });
        } else {
            usage.groups.push(UsingGroup {
                id: AgentId::from_uuid(user),
                name: row.name,
            });
        }
    }
    Ok(usage)
}

/// A tool write's failure: a second tool of the same name is a conflict, anything else storage's.
fn tool_write_error<'a>(
    name: &'a ToolName,
    context: &'static str,
) -> impl Fn(sea_orm::DbErr) -> ToolError + 'a {
    move |error| match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => ToolError::DuplicateName(name.clone()),
        _ => ToolError::Storage(db_error(context, error)),
    }
}

/// Agents and their tools on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgAgents {
    store: Store,
}

impl PgAgents {
    /// The agent's tools by name, after the tool named `after`, at most `limit` of them; `None`
    /// when the agent is not visible.
    async fn read_tools(
        &self,
        actor: &Actor,
        agent: AgentId,
        after: Option<&ToolName>,
        limit: Option<u64>,
    ) -> Result<Option<Vec<AgentTool>>, StorageError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        if !agent_visible(conn, agent).await? {
            return Ok(None);
        }
        let mut query = agent_tools::Entity::find()
            .filter(agent_tools::Column::AgentId.eq(agent.as_uuid()))
            .order_by_asc(agent_tools::Column::ToolName)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(agent_tools::Column::ToolName.gt(after.as_str()));
        }
        let rows = query
            .all(conn)
            .await
            .map_err(storage("listing an agent's tools"))?;
        commit(txn).await?;
        rows.into_iter()
            .map(AgentTool::try_from)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
    /// Agents kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// PostgreSQL's plan for the list [`AgentRepository::list`] runs with `filter` and `page` as
    /// `actor` (see [`crate::sql::explain`]).
    pub async fn explain_list(
        &self,
        actor: &Actor,
        filter: &AgentFilter,
        page: PageRequest,
    ) -> Result<String, StorageError> {
        explain_statement(
            &self.store,
            actor,
            list_select(filter, page).build(DbBackend::Postgres),
        )
        .await
    }
}

/// An agent list with only the conditions given, so each is planned for the index it can use.
/// Row level security lets PostgreSQL put a condition into an index scan only when its operator
/// is `LEAKPROOF`, so each keeps the operator the indexes are built for: `=` on the enums (cast to
/// `agent_type` and `agent_status`), and `ILIKE ... ESCAPE '\'` on the name for the trigram index.
fn list_select(filter: &AgentFilter, page: PageRequest) -> Select<agents::Entity> {
    let mut select = agents::Entity::find();
    if let Some(agent_type) = filter.agent_type {
        select = select.filter(agents::Column::Type.eq(enums::AgentType::from(agent_type)));
    }
    if let Some(status) = filter.status {
        select = select.filter(agents::Column::Status.eq(enums::AgentStatus::from(status)));
    }
    if let Some(name) = &filter.name {
        select = select.filter(name_contains(agents::Column::Name, name.as_str()));
    }
    newest_first(select, agents::Column::CreatedAt, agents::Column::Id, page)
}

impl AgentRepository for PgAgents {
    async fn create(
        &self,
        actor: &Actor,
        id: AgentId,
        settings: &AgentSettings,
    ) -> Result<Agent, CreateAgentError> {
        let owner = actor.user_id().ok_or_else(|| {
            StorageError::new(
                "creating an agent",
                "an agent is owned by a user; the platform itself cannot own one",
            )
        })?;
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        let problems = participants_problems(conn, id, settings).await?;
        if !problems.is_empty() {
            return Err(InvalidRequest(problems).into());
        }
        let row = agents::Entity::insert(agents::ActiveModel {
            id: Set(id.as_uuid()),
            created_by: Set(owner.as_uuid()),
            ..settings_model(settings)?
        })
        .exec_with_returning(conn)
        .await
        .map_err(storage("creating an agent"))?;
        let agent = Agent::try_from(row)?;
        commit(txn).await?;
        Ok(agent)
    }

    async fn find(&self, actor: &Actor, id: AgentId) -> Result<Option<Agent>, StorageError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let agent = find_agent(txn.connection(), id, false).await?;
        commit(txn).await?;
        Ok(agent)
    }

    async fn list(
        &self,
        actor: &Actor,
        filter: &AgentFilter,
        page: PageRequest,
    ) -> Result<Page<Agent>, StorageError> {
        read_rows_page::<agents::Model, Agent>(
            &self.store,
            actor,
            list_select(filter, page).build(DbBackend::Postgres),
            page,
            "listing agents",
            Agent::try_from,
            Agent::keyset,
        )
        .await
    }

    async fn update<F>(
        &self,
        actor: &Actor,
        id: AgentId,
        change: F,
    ) -> Result<Agent, UpdateAgentError>
    where
        F: FnOnce(&Agent) -> Result<AgentSettings, UpdateAgentError> + Send,
    {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        let current = lock_for_change(conn, id)
            .await?
            .map_err(|refusal| match refusal {
                Refusal::NotFound => UpdateAgentError::NotFound,
                Refusal::Forbidden => UpdateAgentError::Forbidden,
            })?;
        let settings = change(&current)?;
        let problems = participants_problems(conn, id, &settings).await?;
        if !problems.is_empty() {
            return Err(InvalidRequest(problems).into());
        }
        let row = agents::Entity::update_many()
            .set(settings_model(&settings)?)
            .filter(agents::Column::Id.eq(id.as_uuid()))
            .exec_with_returning(conn)
            .await
            .map_err(storage("updating an agent"))?
            .into_iter()
            .next()
            .ok_or(UpdateAgentError::NotFound)?;
        let agent = Agent::try_from(row)?;
        commit(txn).await?;
        Ok(agent)
    }

    async fn delete(&self, actor: &Actor, id: AgentId) -> Result<(), DeleteAgentError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        // The lock waits for any version being published with this agent (it holds a key-share
        // lock on it), so the usage read below sees that version.
        lock_for_change(conn, id)
            .await?
            .map_err(|refusal| match refusal {
                Refusal::NotFound => DeleteAgentError::NotFound,
                Refusal::Forbidden => DeleteAgentError::Forbidden,
            })?;
        let usage = usage(conn, id).await?;
        if !usage.is_empty() {
            return Err(DeleteAgentError::InUse(usage));
        }
        agents::Entity::delete_by_id(id.as_uuid())
            .exec(conn)
            .await
            .map_err(storage("deleting an agent"))?;
        commit(txn).await?;
        Ok(())
    }

    async fn tools(
        &self,
        actor: &Actor,
        agent: AgentId,
    ) -> Result<Option<Vec<AgentTool>>, StorageError> {
        self.read_tools(actor, agent, None, None).await
    }

    async fn tools_page(
        &self,
        actor: &Actor,
        agent: AgentId,
        page: PageRequest<ToolName>,
    ) -> Result<Option<Page<AgentTool, ToolName>>, StorageError> {
        let overfetched = u64::from(page.limit.get()) + 1;
        let tools = self
            .read_tools(actor, agent, page.after.as_ref(), Some(overfetched))
            .await?;
        Ok(tools.map(|tools| {
            Page::from_overfetched(tools, page.limit, |tool| tool.settings.name.clone())
        }))
    }

    async fn tool(
        &self,
        actor: &Actor,
        agent: AgentId,
        tool: AgentToolId,
    ) -> Result<AgentTool, ToolError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        if !agent_visible(conn, agent).await? {
            return Err(ToolError::AgentNotFound);
        }
        let found = find_tool(conn, agent, tool, false).await?;
        commit(txn).await?;
        found.ok_or(ToolError::ToolNotFound)
    }

    async fn create_tool(
        &self,
        actor: &Actor,
        agent: AgentId,
        id: AgentToolId,
        settings: &ToolSettings,
    ) -> Result<AgentTool, ToolError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        // The agent's lock serialises its tool writes, so the count below is exact.
        lock_for_change(conn, agent).await?.map_err(tool_refusal)?;
        let count = agent_tools::Entity::find()
            .filter(agent_tools::Column::AgentId.eq(agent.as_uuid()))
            .count(conn)
            .await
            .map_err(storage("counting an agent's tools"))?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_TOOLS {
            return Err(ToolError::TooManyTools(MAX_TOOLS));
        }
        let row = agent_tools::Entity::insert(agent_tools::ActiveModel {
            id: Set(id.as_uuid()),
            agent_id: Set(agent.as_uuid()),
            ..tool_model(settings)
        })
        .exec_with_returning(conn)
        .await
        .map_err(tool_write_error(&settings.name, "creating a tool"))?;
        let created = AgentTool::try_from(row)?;
        commit(txn).await?;
        Ok(created)
    }

    async fn update_tool<F>(
        &self,
        actor: &Actor,
        agent: AgentId,
        tool: AgentToolId,
        change: F,
    ) -> Result<AgentTool, ToolError>
    where
        F: FnOnce(&AgentTool) -> Result<ToolSettings, ToolError> + Send,
    {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        lock_for_change(conn, agent).await?.map_err(tool_refusal)?;
        let current = find_tool(conn, agent, tool, true)
            .await?
            .ok_or(ToolError::ToolNotFound)?;
        let settings = change(&current)?;
        let row = agent_tools::Entity::update_many()
            .set(tool_model(&settings))
            .filter(agent_tools::Column::Id.eq(tool.as_uuid()))
            .filter(agent_tools::Column::AgentId.eq(agent.as_uuid()))
            .exec_with_returning(conn)
            .await
            .map_err(tool_write_error(&settings.name, "updating a tool"))?
            .into_iter()
            .next()
            .ok_or(ToolError::ToolNotFound)?;
        let updated = AgentTool::try_from(row)?;
        commit(txn).await?;
        Ok(updated)
    }

    async fn delete_tool(
        &self,
        actor: &Actor,
        agent: AgentId,
        tool: AgentToolId,
    ) -> Result<(), ToolError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        lock_for_change(conn, agent).await?.map_err(tool_refusal)?;
        let deleted = agent_tools::Entity::delete_many()
            .filter(agent_tools::Column::Id.eq(tool.as_uuid()))
            .filter(agent_tools::Column::AgentId.eq(agent.as_uuid()))
            .exec(conn)
            .await
            .map_err(storage("deleting a tool"))?;
        if deleted.rows_affected == 0 {
            return Err(ToolError::ToolNotFound);
        }
        commit(txn).await?;
        Ok(())
    }
}

fn tool_refusal(refusal: Refusal) -> ToolError {
    match refusal {
        Refusal::NotFound => ToolError::AgentNotFound,
        Refusal::Forbidden => ToolError::Forbidden,
    }
}

/// The tool `tool` of `agent`, locked (`FOR UPDATE`) when `lock`.
async fn find_tool(
    conn: &impl ConnectionTrait,
    agent: AgentId,
    tool: AgentToolId,
    lock: bool,
) -> Result<Option<AgentTool>, StorageError> {
    let select = agent_tools::Entity::find_by_id(tool.as_uuid())
        .filter(agent_tools::Column::AgentId.eq(agent.as_uuid()));
    let select = if lock {
        select.lock_exclusive()
    } else {
        select
    };
    select
        .one(conn)
        .await
        .map_err(storage("reading a tool"))?
        .map(AgentTool::try_from)
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list's SQL keeps the operators the indexes serve under row level security (see
    /// [`list_select`]), and names only the conditions given.
    #[test]
    fn lists_filter_only_on_what_is_given() {
        let all =
            list_select(&AgentFilter::default(), PageRequest::default()).build(DbBackend::Postgres);
        assert!(!all.sql.as_str().contains("WHERE"), "{}", all.sql);
        assert!(
            all.sql
                .as_str()
                .ends_with(r#"ORDER BY "agents"."created_at" DESC, "agents"."id" DESC LIMIT $1"#),
            "{}",
            all.sql
        );
        let filter = AgentFilter {
            agent_type: Some(AgentType::Custom),
            status: Some(AgentStatus::Active),
            name: Some(ipa_agent::NameFragment::parse("50%").unwrap()),
        };
        let filtered = list_select(&filter, PageRequest::default()).build(DbBackend::Postgres);
        assert!(
            filtered.sql.as_str().contains(
                r#"WHERE "agents"."type" = $1::"agent_type" AND "agents"."status" = $2::"agent_status" AND ("agents"."name" ILIKE $3) ORDER BY"#
            ),
            "{}",
            filtered.sql
        );
        let values = filtered.values.map(|values| values.0).unwrap_or_default();
        assert_eq!(values.len(), 4);
        assert_eq!(values[2], sea_orm::Value::from(r"%50\%%"));
    }
}
