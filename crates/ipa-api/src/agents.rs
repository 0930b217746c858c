//! Agents and their tools: the shared catalog. Every signed-in user reads active agents; their
//! creator and superusers read all of theirs and change them (others get 403). Secrets inside
//! configurations are write-only: responses show `{"set": true}` in their place, and sending
//! that back keeps the stored secret. Also documents, as a webhook, the call the platform makes
//! to a `custom` agent's endpoint.

use ipa_agent::{
    Agent, AgentChanges, AgentFilter, AgentName, AgentQueryError, AgentStatus, AgentTool,
    AgentType, CreateAgentError, DeleteAgentError, Description, DocumentProblem, MaxTokens,
    ModelName, NameFragment, NewAgent, NewTool, SystemPrompt, Temperature, ToolChanges, ToolError,
    ToolName, ToolType, UpdateAgentError, shown_secret,
};
use ipa_kernel::{AgentId, AgentToolId};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi, Webhook};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ApiTags;
use crate::auth::BearerAuth;
use crate::error::{ApiError, Problem};
use crate::paging::{encode_cursor, keyset_cursor, page_request, page_request_with};
use crate::state::AppState;

mirror_enum!(
    /// The kind of agent, which decides its configuration's shape.
    AgentTypeDto as "AgentType" <=> AgentType {
        /// One model with function calling: `{"provider": {...}}`.
        SemanticKernel,
        /// A group conversation: `{"participants": [ids], "max_rounds", "termination_phrase", "provider": {...}}`.
        Autogen,
        /// An HTTP endpoint of your own: `{"endpoint", "headers", "timeout_seconds"}`.
        Custom,
    }
);

mirror_enum!(
    /// Whether an agent may be used: active <-> inactive, either -> deprecated,
    /// deprecated -> inactive.
    AgentStatusDto as "AgentStatus" <=> AgentStatus {
        /// Usable, and listed in everyone's catalog.
        Active,
        /// Unusable for now; visible to its creator and superusers only.
        Inactive,
        /// Retired: no new workflow version may use it.
        Deprecated,
    }
);

mirror_enum!(
    /// What a tool is.
    ToolTypeDto as "ToolType" <=> ToolType {
        /// A built-in function: `{"function": "current_time" | "json_query" | "render_template"}`.
        Function,
        /// An HTTP call: `{"method", "url" (with {argument} placeholders), "headers", "parameters" (JSON Schema), "timeout_seconds"}`.
        Api,
        /// An OpenAPI 3 document whose operations become functions: `{"base_url", "openapi", "headers", "timeout_seconds"}`.
        Plugin,
    }
);

/// An agent of the catalog.
#[derive(Object)]
#[oai(rename = "Agent")]
struct AgentView {
    /// The agent's id.
    id: Uuid,
    /// Its name.
    name: String,
    /// What it is for.
    description: Option<String>,
    /// Its type.
    #[oai(rename = "type")]
    agent_type: AgentTypeDto,
    /// Whether it may be used.
    status: AgentStatusDto,
    /// Its configuration; every secret shows as `{"set": true}`.
    configuration: Value,
    /// The instructions its model receives first.
    system_prompt: Option<String>,
    /// The model it asks for.
    model_name: Option<String>,
    /// Sampling temperature, 0 to 2.
    temperature: f64,
    /// The longest answer, in tokens.
    max_tokens: u32,
    /// The user who created it.
    owner_id: Uuid,
    /// When it was created.
    created_at: OffsetDateTime,
    /// When it last changed.
    updated_at: OffsetDateTime,
}

impl From<Agent> for AgentView {
    fn from(agent: Agent) -> Self {
        let settings = agent.settings;
        Self {
            id: agent.id.as_uuid(),
            name: settings.name.as_str().to_owned(),
            description: settings.description.map(|text| text.as_str().to_owned()),
            agent_type: settings.configuration.agent_type().into(),
            status: settings.status.into(),
            configuration: settings.configuration.to_json(&|_| shown_secret()),
            system_prompt: settings.system_prompt.map(|text| text.as_str().to_owned()),
            model_name: settings.model.map(|name| name.as_str().to_owned()),
            temperature: settings.temperature.as_f64(),
            max_tokens: settings.max_tokens.get(),
            owner_id: agent.owner.as_uuid(),
            created_at: agent.created_at,
            updated_at: agent.updated_at,
        }
    }
}

/// A tool of an agent.
#[derive(Object)]
#[oai(rename = "AgentTool")]
struct ToolView {
    /// The tool's id.
    id: Uuid,
    /// The agent it belongs to.
    agent_id: Uuid,
    /// Its name: the function name the model calls.
    tool_name: String,
    /// What it does, as the model reads it.
    description: Option<String>,
    /// What it is.
    tool_type: ToolTypeDto,
    /// Its configuration; every secret shows as `{"set": true}`. A `function` tool shows its
    /// built-in's parameters schema.
    configuration: Value,
    /// Whether the agent's model is offered it.
    enabled: bool,
    /// When it was created.
    created_at: OffsetDateTime,
    /// When it last changed.
    updated_at: OffsetDateTime,
}

impl From<AgentTool> for ToolView {
    fn from(tool: AgentTool) -> Self {
        let settings = tool.settings;
        Self {
            id: tool.id.as_uuid(),
            agent_id: tool.agent_id.as_uuid(),
            tool_name: settings.name.as_str().to_owned(),
            description: settings.description.map(|text| text.as_str().to_owned()),
            tool_type: settings.configuration.tool_type().into(),
            configuration: settings.configuration.to_json(&|_| shown_secret()),
            enabled: settings.enabled,
            created_at: tool.created_at,
            updated_at: tool.updated_at,
        }
    }
}

/// An agent to create. Secrets in `configuration` are written as `{"env": "NAME"}` (read from the
/// server's environment when used) or `{"value": "..."}` (stored encrypted); they are never shown
/// again.
#[derive(Object)]
struct CreateAgentRequest {
    /// 1 to 255 characters after trimming.
    name: String,
    /// Free text, at most 10,000 characters.
    description: Option<String>,
    /// The agent's type; it cannot change later.
    #[oai(rename = "type")]
    agent_type: AgentTypeDto,
    /// `active` (default) or `inactive`.
    status: Option<AgentStatusDto>,
    /// The type's configuration (see `AgentType`); every problem is reported at its pointer.
    configuration: Value,
    /// At most 100,000 characters.
    system_prompt: Option<String>,
    /// The model (required for `semantic_kernel` and `autogen`), e.g. `gpt-4o`.
    model_name: Option<String>,
    /// 0 to 2 with at most two decimals (default 0.7).
    temperature: Option<f64>,
    /// 1 to 1,000,000 (default 1000).
    max_tokens: Option<i64>,
}

/// Changes to an agent: a field left out, or sent as `null`, stays as it is,
/// unless its description says `null` clears it. In a new `configuration`, a secret given
/// as `{"set": true}` keeps the one stored at the same place.
#[derive(Object)]
struct UpdateAgentRequest {
    /// A new name.
    name: Option<String>,
    /// A new description; `null` clears it.
    description: MaybeUndefined<String>,
    /// The type cannot change; when given it must be the agent's.
    #[oai(rename = "type")]
    agent_type: Option<AgentTypeDto>,
    /// A new status (active <-> inactive, either -> deprecated, deprecated -> inactive).
    status: Option<AgentStatusDto>,
    /// A new configuration, replacing the old.
    configuration: Option<Value>,
    /// A new system prompt; `null` clears it.
    system_prompt: MaybeUndefined<String>,
    /// A new model; `null` clears it (allowed for `custom` agents only).
    model_name: MaybeUndefined<String>,
    /// A new temperature.
    temperature: Option<f64>,
    /// A new answer limit.
    max_tokens: Option<i64>,
}

/// A tool to add to an agent.
#[derive(Object)]
struct CreateToolRequest {
    /// Unique per agent; 1 to 64 of letters, digits, `_`, `-` (it is the function's name).
    tool_name: String,
    /// What it does, as the model reads it.
    description: Option<String>,
    /// The tool's type; it cannot change later.
    tool_type: ToolTypeDto,
    /// The type's configuration (see `ToolType`).
    configuration: Value,
    /// Whether the model is offered it (default true).
    #[oai(default = "enabled_by_default")]
    enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Changes to a tool: a field left out, or sent as `null`, stays as it is,
/// unless its description says `null` clears it.
#[derive(Object)]
struct UpdateToolRequest {
    /// A new name.
    tool_name: Option<String>,
    /// A new description; `null` clears it.
    description: MaybeUndefined<String>,
    /// The type cannot change; when given it must be the tool's.
    tool_type: Option<ToolTypeDto>,
    /// A new configuration of the same type (`{"set": true}` keeps a stored secret).
    configuration: Option<Value>,
    /// Enabled or disabled.
    enabled: Option<bool>,
}

/// One page of agents.
#[derive(Object)]
struct AgentPage {
    /// The agents, newest first.
    items: Vec<AgentView>,
    /// Pass as `cursor` to read the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<String>,
}

/// One page of an agent's tools.
#[derive(Object)]
struct ToolPage {
    /// The tools, by name (an agent has at most 128).
    items: Vec<ToolView>,
    /// Pass as `cursor` to read the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    next_cursor: Option<String>,
}

#[derive(ApiResponse)]
enum CreatedAgent {
    /// The agent was created.
    #[oai(status = 201)]
    Created(Json<AgentView>),
}

#[derive(ApiResponse)]
enum OneAgent {
    /// The agent.
    #[oai(status = 200)]
    Found(Json<AgentView>),
}

#[derive(ApiResponse)]
enum AgentList {
    /// A page of agents.
    #[oai(status = 200)]
    Page(Json<AgentPage>),
}

#[derive(ApiResponse)]
enum Deleted {
    /// It is gone.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
enum CreatedTool {
    /// The tool was added.
    #[oai(status = 201)]
    Created(Json<ToolView>),
}

#[derive(ApiResponse)]
enum OneTool {
    /// The tool.
    #[oai(status = 200)]
    Found(Json<ToolView>),
}

#[derive(ApiResponse)]
enum Tools {
    /// A page of the agent's tools.
    #[oai(status = 200)]
    Page(Json<ToolPage>),
}

fn field(pointer: &str) -> impl Fn(ipa_agent::AgentValueError) -> ApiError + '_ {
    move |error| ApiError::unprocessable("invalid_field", error.to_string(), pointer)
}

fn optional_description(raw: Option<&str>) -> Result<Option<Description>, ApiError> {
    raw.map_or(Ok(None), |text| {
        Description::parse(text).map_err(field("/description"))
    })
}

fn optional_prompt(raw: Option<&str>) -> Result<Option<SystemPrompt>, ApiError> {
    raw.map_or(Ok(None), |text| {
        SystemPrompt::parse(text).map_err(field("/system_prompt"))
    })
}

fn optional_model(raw: Option<&str>) -> Result<Option<ModelName>, ApiError> {
    raw.map(|text| ModelName::parse(text).map_err(field("/model_name")))
        .transpose()
}

/// `None` when undefined, `Some(None)` when null, `Some(parsed)` when given.
fn change<T>(
    raw: MaybeUndefined<String>,
    parse: impl Fn(Option<&str>) -> Result<Option<T>, ApiError>,
) -> Result<Option<Option<T>>, ApiError> {
    match raw {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(text) => parse(Some(&text)).map(Some),
    }
}

fn temperature(raw: f64) -> Result<Temperature, ApiError> {
    Temperature::parse(raw).map_err(field("/temperature"))
}

fn max_tokens(raw: i64) -> Result<MaxTokens, ApiError> {
    MaxTokens::parse(raw).map_err(field("/max_tokens"))
}

fn tool_name(raw: &str) -> Result<ToolName, ApiError> {
    ToolName::parse(raw).map_err(field("/tool_name"))
}

fn invalid(problems: Vec<DocumentProblem>) -> ApiError {
    let count = problems.len();
    let problems = problems
        .into_iter()
        .map(|problem| Problem {
            pointer: problem.pointer,
            message: problem.message,
        })
        .collect();
    ApiError::problems(
        "invalid_configuration",
        format!(
            "The request has {count} problem(s); each is listed in `problems` with the JSON \
             pointer of its field."
        ),
        problems,
    )
}

fn immutable(what: &str, pointer: &str) -> ApiError {
    ApiError::unprocessable(
        "immutable_field",
        format!("The {what} cannot change; create a new one instead."),
        pointer,
    )
}

fn agent_not_found() -> ApiError {
    ApiError::not_found("No such agent.")
}

fn tool_error(error: ToolError) -> ApiError {
    match error {
        ToolError::AgentNotFound => agent_not_found(),
        ToolError::ToolNotFound => ApiError::NotFound(Json(crate::ErrorBody::new(
            "tool_not_found",
            "The agent has no such tool; list its tools to see which exist.",
        ))),
        ToolError::Forbidden => ApiError::forbidden(format!("{error}.")),
        ToolError::DuplicateName(_) => ApiError::conflict(
            "duplicate_tool_name",
            format!("{error}."),
            Some("/tool_name"),
        ),
        ToolError::TooManyTools(_) => {
            ApiError::conflict("too_many_tools", format!("{error}."), None)
        }
        ToolError::Invalid(invalid_request) => invalid(invalid_request.0),
        ToolError::Storage(storage) => ApiError::storage(&storage),
    }
}

fn list_filter_error(name: &str) -> impl Fn(ipa_agent::AgentValueError) -> ApiError + '_ {
    move |error| ApiError::bad_request("invalid_filter", format!("`{name}`: {error}"))
}

/// The agent catalog and agents' tools.
pub struct AgentsApi;

#[OpenApi(tag = "ApiTags::Agents")]
impl AgentsApi {
    /// Creates an agent owned by the caller. Its configuration is checked whole against its
    /// type, and the problems are listed in one 422 with their pointers (at most 100, then one
    /// counting the rest).
    #[oai(path = "/agents", method = "post", operation_id = "createAgent")]
    async fn create(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        body: Json<CreateAgentRequest>,
    ) -> Result<CreatedAgent, ApiError> {
        let body = body.0;
        let agent = NewAgent {
            name: AgentName::parse(&body.name).map_err(field("/name"))?,
            description: optional_description(body.description.as_deref())?,
            agent_type: body.agent_type.into(),
            status: body.status.map_or(AgentStatus::Active, AgentStatus::from),
            configuration: body.configuration,
            system_prompt: optional_prompt(body.system_prompt.as_deref())?,
            model: optional_model(body.model_name.as_deref())?,
            temperature: body
                .temperature
                .map_or(Ok(Temperature::DEFAULT), temperature)?,
            max_tokens: body.max_tokens.map_or(Ok(MaxTokens::DEFAULT), max_tokens)?,
        };
        let created = state
            .agents
            .create(&auth.0.actor(), &agent)
            .await
            .map_err(|error| match error {
                CreateAgentError::Invalid(invalid_request) => invalid(invalid_request.0),
                CreateAgentError::Storage(storage) => ApiError::storage(&storage),
            })?;
        Ok(CreatedAgent::Created(Json(created.into())))
    }

    /// Lists the agents the caller may see (every active agent, and the caller's own in any
    /// status; a superuser sees all), newest first.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/agents", method = "get", operation_id = "listAgents")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Only this type.
        #[oai(name = "type")]
        agent_type: Query<Option<AgentTypeDto>>,
        /// Only this status.
        status: Query<Option<AgentStatusDto>>,
        /// Only agents whose name contains this text, in any case.
        name: Query<Option<String>>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<AgentList, ApiError> {
        let page = page_request(limit.0, cursor.0)?;
        let filter = AgentFilter {
            agent_type: agent_type.0.map(AgentType::from),
            status: status.0.map(AgentStatus::from),
            name: name
                .0
                .map(|text| NameFragment::parse(&text).map_err(list_filter_error("name")))
                .transpose()?,
        };
        let agents = state
            .agents
            .list(&auth.0.actor(), &filter, page)
            .await
            .map_err(|error| ApiError::storage(&error))?;
        let next_cursor = agents.next.map(keyset_cursor);
        Ok(AgentList::Page(Json(AgentPage {
            items: agents.items.into_iter().map(AgentView::from).collect(),
            next_cursor,
        })))
    }

    /// One agent.
    #[oai(path = "/agents/:id", method = "get", operation_id = "getAgent")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The agent's id.
        id: Path<Uuid>,
    ) -> Result<OneAgent, ApiError> {
        let agent = state
            .agents
            .get(&auth.0.actor(), AgentId::from_uuid(id.0))
            .await
            .map_err(|error| match error {
                AgentQueryError::NotFound => agent_not_found(),
                AgentQueryError::Storage(storage) => ApiError::storage(&storage),
            })?;
        Ok(OneAgent::Found(Json(agent.into())))
    }

    /// Changes an agent (its creator or a superuser only). An illegal status move is a 409
    /// naming both ends; configuration problems are one 422 listing them all.
    #[oai(path = "/agents/:id", method = "patch", operation_id = "updateAgent")]
    async fn update(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The agent's id.
        id: Path<Uuid>,
        body: Json<UpdateAgentRequest>,
    ) -> Result<OneAgent, ApiError> {
        let body = body.0;
        let actor = auth.0.actor();
        let id = AgentId::from_uuid(id.0);
        if let Some(agent_type) = body.agent_type {
            let current = state
                .agents
                .get(&actor, id)
                .await
                .map_err(|error| match error {
                    AgentQueryError::NotFound => agent_not_found(),
                    AgentQueryError::Storage(storage) => ApiError::storage(&storage),
                })?;
            if AgentType::from(agent_type) != current.settings.agent_type() {
                return Err(immutable("type of an agent", "/type"));
            }
        }
        let changes = AgentChanges {
            name: body
                .name
                .as_deref()
                .map(AgentName::parse)
                .transpose()
                .map_err(field("/name"))?,
            description: change(body.description, optional_description)?,
            status: body.status.map(AgentStatus::from),
            configuration: body.configuration,
            system_prompt: change(body.system_prompt, optional_prompt)?,
            model: change(body.model_name, optional_model)?,
            temperature: body.temperature.map(temperature).transpose()?,
            max_tokens: body.max_tokens.map(max_tokens).transpose()?,
        };
        let agent =
            state
                .agents
                .update(&actor, id, &changes)
                .await
                .map_err(|error| match error {
                    UpdateAgentError::NotFound => agent_not_found(),
                    UpdateAgentError::Forbidden => ApiError::forbidden(format!("{error}.")),
                    UpdateAgentError::IllegalTransition { .. } => ApiError::conflict(
                        "invalid_transition",
                        format!(
                            "{error}. Legal moves: active <-> inactive, active or inactive -> \
                         deprecated, deprecated -> inactive."
                        ),
                        Some("/status"),
                    ),
                    UpdateAgentError::Invalid(invalid_request) => invalid(invalid_request.0),
                    UpdateAgentError::Storage(storage) => ApiError::storage(&storage),
                })?;
        Ok(OneAgent::Found(Json(agent.into())))
    }

    /// Deletes an agent and its tools (its creator or a superuser only). An agent that a
    /// workflow's current version or a group conversation uses is kept (409 naming them);
    /// deprecate it instead.
    #[oai(path = "/agents/:id", method = "delete", operation_id = "deleteAgent")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The agent's id.
        id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        state
            .agents
            .delete(&auth.0.actor(), AgentId::from_uuid(id.0))
            .await
            .map_err(|error| match error {
                DeleteAgentError::NotFound => agent_not_found(),
                DeleteAgentError::Forbidden => ApiError::forbidden(format!("{error}.")),
                DeleteAgentError::InUse(_) => {
                    ApiError::conflict("agent_in_use", format!("{error}."), None)
                }
                DeleteAgentError::Storage(storage) => ApiError::storage(&storage),
            })?;
        Ok(Deleted::Deleted)
    }

    /// Adds a tool to an agent (its creator or a superuser only). Tool names are unique per
    /// agent (409 otherwise).
    #[oai(
        path = "/agents/:id/tools",
        method = "post",
        operation_id = "createAgentTool"
    )]
    async fn create_tool(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The agent's id.
        id: Path<Uuid>,
        body: Json<CreateToolRequest>,
    ) -> Result<CreatedTool, ApiError> {
        let body = body.0;
        let tool = NewTool {
            name: tool_name(&body.tool_name)?,
            description: optional_description(body.description.as_deref())?,
            tool_type: body.tool_type.into(),
            configuration: body.configuration,
            enabled: body.enabled,
        };
        let created = state
            .agents
            .create_tool(&auth.0.actor(), AgentId::from_uuid(id.0), &tool)
            .await
            .map_err(tool_error)?;
        Ok(CreatedTool::Created(Json(created.into())))
    }

    /// An agent's tools, by name, one page at a time.
    #[oai(
        path = "/agents/:id/tools",
        method = "get",
        operation_id = "listAgentTools"
    )]
    async fn tools(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The agent's id.
        id: Path<Uuid>,
        /// Page size, 1 to 200 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Tools, ApiError> {
        let page = page_request_with(limit.0, cursor.0, |name| ToolName::parse(name).ok())?;
        let tools = state
            .agents
            .tools(&auth.0.actor(), AgentId::from_uuid(id.0), page)
            .await
            .map_err(tool_error)?;
        let next_cursor = tools.next.map(|name| encode_cursor(name.as_str()));
        Ok(Tools::Page(Json(ToolPage {
            items: tools.items.into_iter().map(ToolView::from).collect(),
            next_cursor,
        })))
    }

    /// One tool of an agent.
    #[oai(
        path = "/agents/:id/tools/:tool_id",
        method = "get",
        operation_id = "getAgentTool"
    )]
    async fn tool(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The agent's id.
        id: Path<Uuid>,
        /// The tool's id.
        tool_id: Path<Uuid>,
    ) -> Result<OneTool, ApiError> {
        let tool = state
            .agents
            .tool(
                &auth.0.actor(),
                AgentId::from_uuid(id.0),
                AgentToolId::from_uuid(tool_id.0),
            )
            .await
            .map_err(tool_error)?;
        Ok(OneTool::Found(Json(tool.into())))
    }

    /// Changes a tool (its agent's creator or a superuser only).
    #[oai(
        path = "/agents/:id/tools/:tool_id",
        method = "patch",
        operation_id = "updateAgentTool"
    )]
    async fn update_tool(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The agent's id.
        id: Path<Uuid>,
        /// The tool's id.
        tool_id: Path<Uuid>,
        body: Json<UpdateToolRequest>,
    ) -> Result<OneTool, ApiError> {
        let body = body.0;
        let actor = auth.0.actor();
        let (agent, tool) = (AgentId::from_uuid(id.0), AgentToolId::from_uuid(tool_id.0));
        if let Some(tool_type) = body.tool_type {
            let current = state
                .agents
                .tool(&actor, agent, tool)
                .await
                .map_err(tool_error)?;
            if ToolType::from(tool_type) != current.settings.configuration.tool_type() {
                return Err(immutable("type of a tool", "/tool_type"));
            }
        }
        let changes = ToolChanges {
            name: body.tool_name.as_deref().map(tool_name).transpose()?,
            description: change(body.description, optional_description)?,
            configuration: body.configuration,
            enabled: body.enabled,
        };
        let updated = state
            .agents
            .update_tool(&actor, agent, tool, &changes)
            .await
            .map_err(tool_error)?;
        Ok(OneTool::Found(Json(updated.into())))
    }

    /// Offers the tool to the agent's model again.
    #[oai(
        path = "/agents/:id/tools/:tool_id/enable",
        method = "post",
        operation_id = "enableAgentTool"
    )]
    async fn enable_tool(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The agent's id.
        id: Path<Uuid>,
        /// The tool's id.
        tool_id: Path<Uuid>,
    ) -> Result<OneTool, ApiError> {
        set_enabled(&state, &auth, id.0, tool_id.0, true).await
    }

    /// Stops offering the tool to the agent's model, keeping its configuration.
    #[oai(
        path = "/agents/:id/tools/:tool_id/disable",
        method = "post",
        operation_id = "disableAgentTool"
    )]
    async fn disable_tool(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The agent's id.
        id: Path<Uuid>,
        /// The tool's id.
        tool_id: Path<Uuid>,
    ) -> Result<OneTool, ApiError> {
        set_enabled(&state, &auth, id.0, tool_id.0, false).await
    }

    /// Removes a tool from an agent (its creator or a superuser only).
    #[oai(
        path = "/agents/:id/tools/:tool_id",
        method = "delete",
        operation_id = "deleteAgentTool"
    )]
    async fn delete_tool(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The agent's id.
        id: Path<Uuid>,
        /// The tool's id.
        tool_id: Path<Uuid>,
    ) -> Result<Deleted, ApiError> {
        state
            .agents
            .delete_tool(
                &auth.0.actor(),
                AgentId::from_uuid(id.0),
                AgentToolId::from_uuid(tool_id.0),
            )
            .await
            .map_err(tool_error)?;
        Ok(Deleted::Deleted)
    }
}

async fn set_enabled(
    state: &AppState,
    auth: &BearerAuth,
    agent: Uuid,
    tool: Uuid,
    enabled: bool,
) -> Result<OneTool, ApiError> {
    let changes = ToolChanges {
        enabled: Some(enabled),
        ..ToolChanges::default()
    };
    let updated = state
        .agents
        .update_tool(
            &auth.0.actor(),
            AgentId::from_uuid(agent),
            AgentToolId::from_uuid(tool),
            &changes,
        )
        .await
        .map_err(tool_error)?;
    Ok(OneTool::Found(Json(updated.into())))
}

/// One message of the conversation sent to a custom agent.
#[derive(Object)]
pub struct CustomAgentMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// What the platform POSTs to a `custom` agent's endpoint.
#[derive(Object)]
pub struct CustomAgentRequest {
    /// The agent answering.
    pub agent_id: Uuid,
    /// The run the call belongs to, when it comes from a workflow step.
    pub execution_id: Option<Uuid>,
    /// The step's name.
    pub step: Option<String>,
    /// The conversation so far: the agent's system prompt, then the step's rendered prompt.
    pub messages: Vec<CustomAgentMessage>,
    /// The agent's model name, if it has one.
    pub model: Option<String>,
    /// The agent's temperature.
    pub temperature: f64,
    /// The agent's answer limit, in tokens.
    pub max_tokens: u32,
}

/// Token counts, when the endpoint reports them.
#[derive(Object)]
pub struct CustomAgentUsage {
    /// Tokens read.
    pub prompt_tokens: u64,
    /// Tokens written.
    pub completion_tokens: u64,
}

/// What a `custom` agent's endpoint answers.
#[derive(Object)]
pub struct CustomAgentReply {
    /// The agent's answer.
    pub content: String,
    /// Token usage, if known.
    pub usage: Option<CustomAgentUsage>,
}

/// The endpoint's answer.
#[derive(ApiResponse)]
pub enum CustomAgentAnswer {
    /// The reply; any other status fails the step with the endpoint's message.
    #[oai(status = 200)]
    Reply(Json<CustomAgentReply>),
}

/// Calls the platform makes to endpoints of your own.
#[Webhook]
pub trait AgentWebhooks {
    /// A `custom` agent's turn
    ///
    /// The platform POSTs the conversation to the agent's configured `endpoint`, with its
    /// configured headers, and waits up to `timeout_seconds` for the reply.
    #[oai(
        method = "post",
        name = "customAgentTurn",
        operation_id = "customAgentTurn"
    )]
    fn custom_agent_turn(&self, request: Json<CustomAgentRequest>) -> CustomAgentAnswer;
}
