//! The agent service: creating, reading, changing and deleting agents and their tools. It parses
//! configurations (every problem at its pointer), seals secret values through the
//! [`SecretSealer`] port, keeps stored secrets a client marks `{"set": true}`, and applies the
//! status rules; storage checks what needs other rows in the same transaction as the write.

use std::collections::HashMap;

use ipa_kernel::{Actor, AgentId, AgentToolId, Page, PageRequest, StorageError};
use serde_json::Value;

use crate::agent::{Agent, AgentFilter, AgentSettings};
use crate::config::AgentConfiguration;
use crate::error::{
    AgentQueryError, CreateAgentError, DeleteAgentError, InvalidRequest, ToolError,
    UpdateAgentError,
};
use crate::functions::{agent_binding, tool_binding};
use crate::ports::{AgentRepository, DocumentProblem, SchemaChecker, SecretSealer};
use crate::secret::{SecretInput, StoredSecret};
use crate::tool::{AgentTool, ToolConfiguration, ToolSettings, ToolType};
use crate::values::{
    AgentName, Description, MaxTokens, ModelName, SystemPrompt, Temperature, ToolName,
};
use crate::{AgentStatus, AgentType};

/// An agent to create, as the client wrote it: the configuration is parsed by the service.
#[derive(Clone, Debug)]
pub struct NewAgent {
    /// Its name.
    pub name: AgentName,
    /// What it is for.
    pub description: Option<Description>,
    /// Its type.
    pub agent_type: AgentType,
    /// `active` or `inactive`.
    pub status: AgentStatus,
    /// Its configuration document.
    pub configuration: Value,
    /// Its system prompt.
    pub system_prompt: Option<SystemPrompt>,
    /// Its model.
    pub model: Option<ModelName>,
    /// Its temperature.
    pub temperature: Temperature,
    /// Its answer limit.
    pub max_tokens: MaxTokens,
}

/// Changes to an agent; `None` leaves a field as it is, `Some(None)` clears an optional one.
#[derive(Clone, Debug, Default)]
pub struct AgentChanges {
    /// A new name.
    pub name: Option<AgentName>,
    /// A new description.
    pub description: Option<Option<Description>>,
    /// A new status.
    pub status: Option<AgentStatus>,
    /// A new configuration document (secrets given as `{"set": true}` are kept).
    pub configuration: Option<Value>,
    /// A new system prompt.
    pub system_prompt: Option<Option<SystemPrompt>>,
    /// A new model.
    pub model: Option<Option<ModelName>>,
    /// A new temperature.
    pub temperature: Option<Temperature>,
    /// A new answer limit.
    pub max_tokens: Option<MaxTokens>,
}

/// A tool to add, as the client wrote it.
#[derive(Clone, Debug)]
pub struct NewTool {
    /// Its name.
    pub name: ToolName,
    /// What it does.
    pub description: Option<Description>,
    /// Its type.
    pub tool_type: ToolType,
    /// Its configuration document.
    pub configuration: Value,
    /// Whether it is offered to the model.
    pub enabled: bool,
}

/// Changes to a tool; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ToolChanges {
    /// A new name.
    pub name: Option<ToolName>,
    /// A new description (`Some(None)` clears it).
    pub description: Option<Option<Description>>,
    /// A new configuration document of the same type.
    pub configuration: Option<Value>,
    /// Enabled or disabled.
    pub enabled: Option<bool>,
}

/// Agent operations over a repository `R`, a secret sealer `K` and a schema compiler `C`.
#[derive(Debug)]
pub struct AgentService<R, K, C> {
    repository: R,
    sealer: K,
    schemas: C,
}

/// `problems` moved under `prefix` (the configuration's place in the request body).
fn under(prefix: &str, problems: Vec<DocumentProblem>) -> InvalidRequest {
    InvalidRequest(
        problems
            .into_iter()
            .map(|problem| DocumentProblem {
                pointer: format!("{prefix}{}", problem.pointer),
                message: problem.message,
            })
            .collect(),
    )
}

/// Turns a client's secrets into stored ones: values sealed (bound to `binding` and their
/// pointer), environment names kept as such, `{"set": true}` replaced by what `stored` holds at
/// the same pointer.
fn secret_writer<'a>(
    sealer: &'a dyn SecretSealer,
    binding: String,
    stored: HashMap<String, StoredSecret>,
) -> impl FnMut(SecretInput, &str) -> Result<StoredSecret, String> + 'a {
    move |input, pointer| match input {
        SecretInput::Env(name) => Ok(StoredSecret::Env(name)),
        SecretInput::Value(plain) => sealer
            .seal(&plain, &format!("{binding}{pointer}"))
            .map(StoredSecret::Sealed)
            .map_err(|error| error.to_string()),
        SecretInput::Keep => stored.get(pointer).cloned().ok_or_else(|| {
            "no secret is stored here to keep; give {\"env\": \"NAME\"} or {\"value\": \"...\"}"
                .to_owned()
        }),
    }
}

/// The rule across an agent's fields: agents that call a model name it.
fn model_problem(agent_type: AgentType, model: Option<&ModelName>) -> Option<DocumentProblem> {
    (model.is_none() && agent_type != AgentType::Custom).then(|| DocumentProblem {
        pointer: "/model_name".to_owned(),
        message: format!("a {agent_type} agent needs `model_name`, the model it asks for"),
    })
}

impl<R: AgentRepository, K: SecretSealer, C: SchemaChecker> AgentService<R, K, C> {
    /// A service over these ports.
    pub fn new(repository: R, sealer: K, schemas: C) -> Self {
        Self {
            repository,
            sealer,
            schemas,
        }
    }

    /// Parses and seals an agent configuration for agent `id`, keeping `stored` secrets where
    /// the client asks to.
    fn agent_configuration(
        &self,
        id: AgentId,
        agent_type: AgentType,
        document: &Value,
        stored: HashMap<String, StoredSecret>,
    ) -> Result<AgentConfiguration<StoredSecret>, InvalidRequest> {
        let parsed = AgentConfiguration::parse(agent_type, document, &mut SecretInput::from_json)
            .map_err(|problems| under("/configuration", problems))?;
        let mut write = secret_writer(&self.sealer, agent_binding(id), stored);
        parsed
            .map_secrets(&mut write)
            .map_err(|problems| under("/configuration", problems))
    }

    /// Creates an agent owned by the actor.
    pub async fn create(&self, actor: &Actor, agent: &NewAgent) -> Result<Agent, CreateAgentError> {
        let id = AgentId::new_random();
        let mut problems = Vec::new();
        if agent.status == AgentStatus::Deprecated {
            problems.push(DocumentProblem {
                pointer: "/status".to_owned(),
                message: "a new agent is active or inactive".to_owned(),
            });
        }
        let configuration = match self.agent_configuration(
            id,
            agent.agent_type,
            &agent.configuration,
            HashMap::new(),
        ) {
            Ok(configuration) => Some(configuration),
            Err(InvalidRequest(found)) => {
                problems.extend(found);
                None
            }
        };
        problems.extend(model_problem(agent.agent_type, agent.model.as_ref()));
        let (Some(configuration), true) = (configuration, problems.is_empty()) else {
            return Err(InvalidRequest(problems).into());
        };
        let settings = AgentSettings {
            name: agent.name.clone(),
            description: agent.description.clone(),
            status: agent.status,
            configuration,
            system_prompt: agent.system_prompt.clone(),
            model: agent.model.clone(),
            temperature: agent.temperature,
            max_tokens: agent.max_tokens,
        };
        self.repository.create(actor, id, &settings).await
    }

    /// The agent, if the actor may see it.
    pub async fn get(&self, actor: &Actor, id: AgentId) -> Result<Agent, AgentQueryError> {
        self.repository
            .find(actor, id)
            .await?
            .ok_or(AgentQueryError::NotFound)
    }

    /// The agents the actor may see that match `filter`, newest first.
    pub async fn list(
        &self,
        actor: &Actor,
        filter: &AgentFilter,
        page: PageRequest,
    ) -> Result<Page<Agent>, StorageError> {
        self.repository.list(actor, filter, page).await
    }

    /// Changes an agent. Its type cannot change (its configuration's shape depends on it).
    pub async fn update(
        &self,
        actor: &Actor,
        id: AgentId,
        changes: &AgentChanges,
    ) -> Result<Agent, UpdateAgentError> {
        self.repository
            .update(actor, id, |current| {
                let mut next = current.settings.clone();
                if let Some(status) = changes.status
                    && status != current.settings.status
                {
                    if !current.settings.status.can_become(status) {
                        return Err(UpdateAgentError::IllegalTransition {
                            from: current.settings.status,
                            to: status,
                        });
                    }
                    next.status = status;
                }
                if let Some(document) = &changes.configuration {
                    let stored = current.settings.configuration.secrets_by_pointer();
                    next.configuration = self.agent_configuration(
                        id,
                        current.settings.agent_type(),
                        document,
                        stored,
                    )?;
                }
                if let Some(name) = &changes.name {
                    next.name = name.clone();
                }
                if let Some(description) = &changes.description {
                    next.description = description.clone();
                }
                if let Some(prompt) = &changes.system_prompt {
                    next.system_prompt = prompt.clone();
                }
                if let Some(model) = &changes.model {
                    next.model = model.clone();
                }
                if let Some(temperature) = changes.temperature {
                    next.temperature = temperature;
                }
                if let Some(max_tokens) = changes.max_tokens {
                    next.max_tokens = max_tokens;
                }
                match model_problem(next.agent_type(), next.model.as_ref()) {
                    None => Ok(next),
                    Some(problem) => Err(InvalidRequest(vec![problem]).into()),
                }
            })
            .await
    }

    /// Deletes an agent and its tools, unless something still uses it.
    pub async fn delete(&self, actor: &Actor, id: AgentId) -> Result<(), DeleteAgentError> {
        self.repository.delete(actor, id).await
    }

    /// One page of the agent's tools, by name.
    pub async fn tools(
        &self,
        actor: &Actor,
        agent: AgentId,
        page: PageRequest<ToolName>,
    ) -> Result<Page<AgentTool, ToolName>, ToolError> {
        self.repository
            .tools_page(actor, agent, page)
            .await?
            .ok_or(ToolError::AgentNotFound)
    }

    /// One tool of the agent.
    pub async fn tool(
        &self,
        actor: &Actor,
        agent: AgentId,
        tool: AgentToolId,
    ) -> Result<AgentTool, ToolError> {
        self.repository.tool(actor, agent, tool).await
    }

    /// Parses and seals a tool configuration for tool `id` named `name`.
    fn tool_configuration(
        &self,
        id: AgentToolId,
        name: &ToolName,
        tool_type: ToolType,
        document: &Value,
        stored: HashMap<String, StoredSecret>,
    ) -> Result<ToolConfiguration<StoredSecret>, InvalidRequest> {
        let parsed = ToolConfiguration::parse(
            tool_type,
            name,
            document,
            &mut SecretInput::from_json,
            &self.schemas,
        )
        .map_err(|problems| under("/configuration", problems))?;
        let mut write = secret_writer(&self.sealer, tool_binding(id), stored);
        parsed
            .map_secrets(&mut write)
            .map_err(|problems| under("/configuration", problems))
    }

    /// Adds a tool to an agent.
    pub async fn create_tool(
        &self,
        actor: &Actor,
        agent: AgentId,
        tool: &NewTool,
    ) -> Result<AgentTool, ToolError> {
        let id = AgentToolId::new_random();
        let configuration = self.tool_configuration(
            id,
            &tool.name,
            tool.tool_type,
            &tool.configuration,
            HashMap::new(),
        )?;
        let settings = ToolSettings {
            name: tool.name.clone(),
            description: tool.description.clone(),
            configuration,
            enabled: tool.enabled,
        };
        self.repository
            .create_tool(actor, agent, id, &settings)
            .await
    }

    /// Changes a tool. Its type cannot change; a new name is checked against its configuration
    /// (a plugin's function names include it).
    pub async fn update_tool(
        &self,
        actor: &Actor,
        agent: AgentId,
        tool: AgentToolId,
        changes: &ToolChanges,
    ) -> Result<AgentTool, ToolError> {
        self.repository
            .update_tool(actor, agent, tool, |current| {
                let mut next = current.settings.clone();
                if let Some(name) = &changes.name {
                    next.name = name.clone();
                }
                if let Some(description) = &changes.description {
                    next.description = description.clone();
                }
                if let Some(enabled) = changes.enabled {
                    next.enabled = enabled;
                }
                let renamed = next.name != current.settings.name;
                if changes.configuration.is_some() || renamed {
                    let stored = current.settings.configuration.secrets_by_pointer();
                    // Without a new document, the current one is checked again under the new
                    // name, its secrets kept as they are.
                    let document = match &changes.configuration {
                        Some(document) => document.clone(),
                        None => current
                            .settings
                            .configuration
                            .to_json(&|_| crate::secret::shown_secret()),
                    };
                    next.configuration = self.tool_configuration(
                        current.id,
                        &next.name,
                        current.settings.configuration.tool_type(),
                        &document,
                        stored,
                    )?;
                }
                Ok(next)
            })
            .await
    }

    /// Removes a tool from an agent.
    pub async fn delete_tool(
        &self,
        actor: &Actor,
        agent: AgentId,
        tool: AgentToolId,
    ) -> Result<(), ToolError> {
        self.repository.delete_tool(actor, agent, tool).await
    }
}

#[cfg(test)]
mod tests;
