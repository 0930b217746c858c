//! The agent context's repository on PostgreSQL ([`PgAgents`]): agents, their tools, and the
//! checks that need other rows (a group's participants, what uses an agent, how many tools it
//! has), each in the same transaction as the write it guards.
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
use sea_orm::{ConnectionTrait, QueryResult, SqlErr, Value};
use uuid::Uuid;

use crate::sql::{
    ListQuery, commit, db_error, from_store, like_literal, read_page, statement, storage,
};
use crate::store::Store;

/// The columns of an [`Agent`] from `agents a`; the seed's nullable columns read as their
/// defaults, the temperature in hundredths.
const AGENT_COLUMNS: &str = "a.id, a.name, a.description, a.type::text AS type, \
     coalesce(a.status, 'active')::text AS status, a.configuration, a.system_prompt, a.model_name, \
     round(coalesce(a.temperature, 0.7) * 100)::bigint AS temperature_hundredths, \
     coalesce(a.max_tokens, 1000)::bigint AS max_tokens, a.created_by, \
     coalesce(a.created_at, now()) AS created_at, \
     coalesce(a.updated_at, a.created_at, now()) AS updated_at";

/// The columns of an [`AgentTool`] from `agent_tools t`.
const TOOL_COLUMNS: &str = "t.id, t.agent_id, t.tool_name, t.tool_type, t.description, \
     t.configuration, coalesce(t.is_enabled, true) AS is_enabled, \
     coalesce(t.created_at, now()) AS created_at, \
     coalesce(t.updated_at, t.created_at, now()) AS updated_at";

/// Serialises writes of group conversations, so two concurrent changes cannot each add one half
/// of a cycle.
const GROUP_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('ipa.agent_groups'))";

/// The most tools an agent may have: the most functions a model is offered in one request.
pub const MAX_TOOLS: usize = 128;

fn agent_from_row(row: &QueryResult) -> Result<Agent, StorageError> {
    const CONTEXT: &str = "reading an agent row";
    let get = storage(CONTEXT);
    let agent_type: AgentType = row
        .try_get::<String>("", "type")
        .map_err(&get)?
        .parse()
        .map_err(|error| StorageError::new(CONTEXT, error))?;
    let status: AgentStatus = row
        .try_get::<String>("", "status")
        .map_err(&get)?
        .parse()
        .map_err(|error| StorageError::new(CONTEXT, error))?;
    let configuration = AgentConfiguration::parse(
        agent_type,
        &row.try_get::<serde_json::Value>("", "configuration")
            .map_err(&get)?,
        &mut StoredSecret::from_json,
    )
    .map_err(|problems| {
        StorageError::new(
            CONTEXT,
            format!("a stored configuration no longer reads: {problems:?}"),
        )
    })?;
    let name: String = row.try_get("", "name").map_err(&get)?;
    let description: Option<String> = row.try_get("", "description").map_err(&get)?;
    let prompt: Option<String> = row.try_get("", "system_prompt").map_err(&get)?;
    let model: Option<String> = row.try_get("", "model_name").map_err(&get)?;
    let hundredths: i64 = row.try_get("", "temperature_hundredths").map_err(&get)?;
    let max_tokens: i64 = row.try_get("", "max_tokens").map_err(&get)?;
    Ok(Agent {
        id: AgentId::from_uuid(row.try_get("", "id").map_err(&get)?),
        owner: UserId::from_uuid(row.try_get("", "created_by").map_err(&get)?),
        settings: AgentSettings {
            name: AgentName::parse(&name).map_err(|error| StorageError::new(CONTEXT, error))?,
            // Text the rules no longer accept is shown as none rather than failing the row.
            description: description.and_then(|text| Description::parse(&text).ok().flatten()),
            status,
            configuration,
            system_prompt: prompt.and_then(|text| SystemPrompt::parse(&text).ok().flatten()),
            model: model.and_then(|text| ModelName::parse(&text).ok()),
            temperature: Temperature::from_hundredths(hundredths)
                .ok_or_else(|| StorageError::new(CONTEXT, "temperature out of range"))?,
            max_tokens: MaxTokens::parse(max_tokens)
                .map_err(|error| StorageError::new(CONTEXT, error))?,
        },
        created_at: row.try_get("", "created_at").map_err(&get)?,
        updated_at: row.try_get("", "updated_at").map_err(&get)?,
    })
}

fn tool_from_row(row: &QueryResult) -> Result<AgentTool, StorageError> {
    const CONTEXT: &str = "reading an agent tool row";
    let get = storage(CONTEXT);
    let name = ToolName::parse(&row.try_get::<String>("", "tool_name").map_err(&get)?)
        .map_err(|error| StorageError::new(CONTEXT, error))?;
    let tool_type: ToolType = row
        .try_get::<String>("", "tool_type")
        .map_err(&get)?
        .parse()
        .map_err(|error| StorageError::new(CONTEXT, error))?;
    let document: serde_json::Value = row.try_get("", "configuration").map_err(&get)?;
    // Stored configurations were checked when written; reading them back needs their shape only,
    // not another compilation of their schemas.
    let configuration = ToolConfiguration::parse(
        tool_type,
        &name,
        &document,
        &mut StoredSecret::from_json,
        &AcceptSchemas,
    )
    .map_err(|problems| {
        StorageError::new(
            CONTEXT,
            format!("a stored configuration no longer reads: {problems:?}"),
        )
    })?;
    let description: Option<String> = row.try_get("", "description").map_err(&get)?;
    Ok(AgentTool {
        id: AgentToolId::from_uuid(row.try_get("", "id").map_err(&get)?),
        agent_id: AgentId::from_uuid(row.try_get("", "agent_id").map_err(&get)?),
        settings: ToolSettings {
            name,
            description: description.and_then(|text| Description::parse(&text).ok().flatten()),
            configuration,
            enabled: row.try_get("", "is_enabled").map_err(&get)?,
        },
        created_at: row.try_get("", "created_at").map_err(&get)?,
        updated_at: row.try_get("", "updated_at").map_err(&get)?,
    })
}

/// Schemas were compiled when the tool was written.
struct AcceptSchemas;

impl ipa_agent::SchemaChecker for AcceptSchemas {
    fn schema_problems(&self, _schema: &serde_json::Value) -> Vec<ipa_agent::DocumentProblem> {
        Vec::new()
    }
}

/// The parameters that write an agent's settings, after `$1` (its id).
fn settings_values(settings: &AgentSettings) -> Vec<Value> {
    vec![
        settings.name.as_str().into(),
        settings
            .description
            .as_ref()
            .map(|text| text.as_str().to_owned())
            .into(),
        settings.agent_type().as_str().into(),
        settings.status.as_str().into(),
        settings
            .configuration
            .to_json(&StoredSecret::to_json)
            .into(),
        settings
            .system_prompt
            .as_ref()
            .map(|text| text.as_str().to_owned())
            .into(),
        settings
            .model
            .as_ref()
            .map(|name| name.as_str().to_owned())
            .into(),
        i64::from(settings.temperature.hundredths()).into(),
        i64::from(settings.max_tokens.get()).into(),
    ]
}

/// The parameters that write a tool's settings, after `$1` (its id) and `$2` (its agent).
fn tool_values(settings: &ToolSettings) -> Vec<Value> {
    vec![
        settings.name.as_str().into(),
        settings.configuration.tool_type().as_str().into(),
        settings
            .description
            .as_ref()
            .map(|text| text.as_str().to_owned())
            .into(),
        settings
            .configuration
            .to_json(&StoredSecret::to_json)
            .into(),
        settings.enabled.into(),
    ]
}

/// The agent with `id` as the actor sees it; locked for the rest of the transaction when `lock`
/// (which row level security allows only to those who may change it).
async fn find_agent(
    conn: &impl ConnectionTrait,
    id: AgentId,
    lock: bool,
) -> Result<Option<Agent>, StorageError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    conn.query_one_raw(statement(
        &format!("SELECT {AGENT_COLUMNS} FROM agents a WHERE a.id = $1{lock}"),
        [id.as_uuid().into()],
    ))
    .await
    .map_err(storage("reading an agent"))?
    .map(|row| agent_from_row(&row))
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
    Ok(conn
        .query_one_raw(statement(
            "SELECT 1 AS found FROM agents WHERE id = $1",
            [id.as_uuid().into()],
        ))
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
    let rows = conn
        .query_all_raw(statement(
            "SELECT id, type::text AS type, status::text AS status, visible, \
             to_jsonb(participants) AS participants FROM ipa_agent_graph($1::uuid[])",
            [ids.into()],
        ))
        .await
        .map_err(storage("reading group conversations"))?;
    let mut graph = HashMap::new();
    for row in rows {
        const CONTEXT: &str = "reading a participant";
        let get = storage(CONTEXT);
        let members: Vec<AgentId> =
            serde_json::from_value(row.try_get("", "participants").map_err(&get)?)
                .map_err(|error| StorageError::new(CONTEXT, error))?;
        let visible: bool = row.try_get("", "visible").map_err(&get)?;
        // The lookup keeps an unseen agent's type and status to itself. Such an agent is only
        // ever reported as missing and walked through for cycles, which read neither, so it
        // stands here as an inactive agent of no particular kind.
        let label = |column: &str| -> Result<Option<String>, StorageError> {
            row.try_get::<Option<String>>("", column).map_err(&get)
        };
        let state = ParticipantState {
            agent_type: match label("type")? {
                Some(agent_type) => agent_type
                    .parse()
                    .map_err(|error| StorageError::new(CONTEXT, error))?,
                None if !visible => AgentType::Custom,
                None => return Err(StorageError::new(CONTEXT, "a visible agent without a type")),
            },
            status: match label("status")? {
                Some(status) => status
                    .parse()
                    .map_err(|error| StorageError::new(CONTEXT, error))?,
                None if !visible => AgentStatus::Inactive,
                None => {
                    return Err(StorageError::new(
                        CONTEXT,
                        "a visible agent without a status",
                    ));
                }
            },
            visible,
            participants: members,
        };
        graph.insert(
            AgentId::from_uuid(row.try_get("", "id").map_err(&get)?),
            state,
        );
    }
    Ok(participant_problems(id, participants, &graph))
}

/// What uses the agent.
async fn usage(conn: &impl ConnectionTrait, id: AgentId) -> Result<AgentUsage, StorageError> {
    let rows = conn
        .query_all_raw(statement(
            "SELECT kind, id, name FROM ipa_agent_usage($1)",
            [id.as_uuid().into()],
        ))
        .await
        .map_err(storage("finding what uses an agent"))?;
    let mut usage = AgentUsage::default();
    for row in rows {
        let get = storage("reading what uses an agent");
        let kind: String = row.try_get("", "kind").map_err(&get)?;
        // The lookup names neither the id nor the name of what the caller may not see; such a
        // user is only counted ("1 workflow of other users"), so the nil id never shows.
        let user: Uuid = row
            .try_get::<Option<Uuid>>("", "id")
            .map_err(&get)?
            .unwrap_or_else(Uuid::nil);
        let name: Option<String> = row.try_get("", "name").map_err(&get)?;
        if kind == "workflow" {
            usage.workflows.push(UsingWorkflow {
                id: WorkflowId::from_uuid(user),
                name,
            });
        } else {
            usage.groups.push(UsingGroup {
                id: AgentId::from_uuid(user),
                name,
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
    /// Agents kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

/// The SQL and parameters of an agent list, with only the conditions given.
fn list_query(filter: &AgentFilter, page: PageRequest) -> (String, Vec<Value>) {
    let mut query = ListQuery::default();
    if let Some(agent_type) = filter.agent_type {
        let agent_type = query.bind(agent_type.as_str());
        query.condition(format!("a.type = ${agent_type}::agent_type"));
    }
    if let Some(status) = filter.status {
        let status = query.bind(status.as_str());
        query.condition(format!("a.status = ${status}::agent_status"));
    }
    if let Some(name) = &filter.name {
        let name = query.bind(format!("%{}%", like_literal(name.as_str())));
        query.condition(format!("a.name ILIKE ${name} ESCAPE '\\'"));
    }
    query.newest_first(AGENT_COLUMNS, "agents a", "a.", page)
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
        let mut values = vec![id.as_uuid().into()];
        values.extend(settings_values(settings));
        values.push(owner.as_uuid().into());
        let row = conn
            .query_one_raw(statement(
                &format!(
                    "WITH a AS (INSERT INTO agents (id, name, description, type, status, \
                     configuration, system_prompt, model_name, temperature, max_tokens, created_by) \
                     VALUES ($1, $2, $3, $4::agent_type, $5::agent_status, $6, $7, $8, \
                     $9::numeric / 100, $10, $11) RETURNING *) SELECT {AGENT_COLUMNS} FROM a"
                ),
                values,
            ))
            .await
            .map_err(storage("creating an agent"))?
            .ok_or_else(|| StorageError::new("creating an agent", "the insert returned no row"))?;
        let agent = agent_from_row(&row)?;
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
        let query = list_query(filter, page);
        read_page(
            &self.store,
            actor,
            query,
            page,
            "listing agents",
            agent_from_row,
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
        let mut values = vec![id.as_uuid().into()];
        values.extend(settings_values(&settings));
        let row = conn
            .query_one_raw(statement(
                &format!(
                    "WITH a AS (UPDATE agents SET name = $2, description = $3, type = $4::agent_type, \
                     status = $5::agent_status, configuration = $6, system_prompt = $7, \
                     model_name = $8, temperature = $9::numeric / 100, max_tokens = $10 \
                     WHERE id = $1 RETURNING *) SELECT {AGENT_COLUMNS} FROM a"
                ),
                values,
            ))
            .await
            .map_err(storage("updating an agent"))?
            .ok_or(UpdateAgentError::NotFound)?;
        let agent = agent_from_row(&row)?;
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
        conn.execute_raw(statement(
            "DELETE FROM agents WHERE id = $1",
            [id.as_uuid().into()],
        ))
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
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        if !agent_visible(conn, agent).await? {
            return Ok(None);
        }
        let rows = conn
            .query_all_raw(statement(
                &format!("SELECT {TOOL_COLUMNS} FROM agent_tools t WHERE t.agent_id = $1 ORDER BY t.tool_name"),
                [agent.as_uuid().into()],
            ))
            .await
            .map_err(storage("listing an agent's tools"))?;
        commit(txn).await?;
        rows.iter()
            .map(tool_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
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
        let count: i64 = conn
            .query_one_raw(statement(
                "SELECT count(*) AS tools FROM agent_tools WHERE agent_id = $1",
                [agent.as_uuid().into()],
            ))
            .await
            .map_err(storage("counting an agent's tools"))?
            .map(|row| row.try_get("", "tools"))
            .transpose()
            .map_err(storage("counting an agent's tools"))?
            .unwrap_or_default();
        if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_TOOLS {
            return Err(ToolError::TooManyTools(MAX_TOOLS));
        }
        let mut values = vec![id.as_uuid().into(), agent.as_uuid().into()];
        values.extend(tool_values(settings));
        let row = conn
            .query_one_raw(statement(
                &format!(
                    "WITH t AS (INSERT INTO agent_tools (id, agent_id, tool_name, tool_type, \
                     description, configuration, is_enabled) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     RETURNING *) SELECT {TOOL_COLUMNS} FROM t"
                ),
                values,
            ))
            .await
            .map_err(tool_write_error(&settings.name, "creating a tool"))?
            .ok_or_else(|| StorageError::new("creating a tool", "the insert returned no row"))?;
        let created = tool_from_row(&row)?;
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
        let mut values = vec![tool.as_uuid().into(), agent.as_uuid().into()];
        values.extend(tool_values(&settings));
        let row = conn
            .query_one_raw(statement(
                &format!(
                    "WITH t AS (UPDATE agent_tools SET tool_name = $3, tool_type = $4, \
                     description = $5, configuration = $6, is_enabled = $7 \
                     WHERE id = $1 AND agent_id = $2 RETURNING *) SELECT {TOOL_COLUMNS} FROM t"
                ),
                values,
            ))
            .await
            .map_err(tool_write_error(&settings.name, "updating a tool"))?
            .ok_or(ToolError::ToolNotFound)?;
        let updated = tool_from_row(&row)?;
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
        let deleted = conn
            .execute_raw(statement(
                "DELETE FROM agent_tools WHERE id = $1 AND agent_id = $2",
                [tool.as_uuid().into(), agent.as_uuid().into()],
            ))
            .await
            .map_err(storage("deleting a tool"))?;
        if deleted.rows_affected() == 0 {
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

/// The tool `tool` of `agent`, locked when `lock`.
async fn find_tool(
    conn: &impl ConnectionTrait,
    agent: AgentId,
    tool: AgentToolId,
    lock: bool,
) -> Result<Option<AgentTool>, StorageError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    conn.query_one_raw(statement(
        &format!(
            "SELECT {TOOL_COLUMNS} FROM agent_tools t WHERE t.id = $1 AND t.agent_id = $2{lock}"
        ),
        [tool.as_uuid().into(), agent.as_uuid().into()],
    ))
    .await
    .map_err(storage("reading a tool"))?
    .map(|row| tool_from_row(&row))
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_filter_only_on_what_is_given() {
        let (sql, values) = list_query(&AgentFilter::default(), PageRequest::default());
        assert!(!sql.contains("WHERE"));
        assert_eq!(values.len(), 1);
        let filter = AgentFilter {
            agent_type: Some(AgentType::Custom),
            status: Some(AgentStatus::Active),
            name: Some(ipa_agent::NameFragment::parse("50%").unwrap()),
        };
        let (sql, values) = list_query(&filter, PageRequest::default());
        assert!(sql.contains(
            "a.type = $1::agent_type AND a.status = $2::agent_status AND a.name ILIKE $3"
        ));
        assert_eq!(values.len(), 4);
    }
}
