//! In-memory fakes of every port the [`crate::AgentService`] uses, so its rules can be tested
//! alone, in milliseconds, without PostgreSQL:
//!
//! - [`FakeAgents`]: agents and their tools behind one [`Mutex`], with what uses an agent in
//!   workflows given by the test;
//! - [`FakeSealer`]: "seals" a secret as its binding and its text in hexadecimal, records every
//!   binding it sealed with, can lack a key, and opens (as the [`SecretOpener`] the engine uses)
//!   only with the binding it was sealed with;
//! - [`FakeSchemas`]: a JSON Schema checker that refuses every `"type": "nope"`, wherever it is,
//!   and counts its calls.
//!
//! Why they are faithful enough: [`FakeAgents`] follows the [`AgentRepository`] contract and the
//! PostgreSQL repository (`ipa-store`'s `PgAgents`) with the schema's row level security:
//! - visibility by actor: superusers see every agent; a signed-in user sees their own agents and
//!   every active one; an anonymous actor none. An agent the actor may not see behaves as
//!   missing; one they see but do not own (and are not a superuser) is refused as forbidden;
//! - a group's participants are checked with [`crate::participant_problems`] over every agent
//!   reachable from them, each marked visible or not for the actor, as storage does;
//! - deletion is refused while a workflow (as the test declares) or a group conversation uses
//!   the agent, naming only what the actor may see; it takes the agent's tools with it;
//! - tool names are unique per agent ([`ToolError::DuplicateName`]) and an agent has at most
//!   [`MAX_TOOLS`] tools; tools list by name;
//! - lists are newest first by `(created_at, id)`, continue strictly after the keyset, and are
//!   cut by [`Page::from_overfetched`];
//! - each method takes the lock once for its whole body and never awaits while holding it: the
//!   row locks of a transaction become one critical section, and `change` closures see the
//!   current row exactly as under `SELECT ... FOR UPDATE`.
//!
//! Every write moves the store's clock a millisecond forward, so rows created one after the
//! other have distinct creation times.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ipa_kernel::{Actor, AgentId, AgentToolId, Page, PageRequest, StorageError};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::AgentStatus;
use crate::agent::{
    Agent, AgentFilter, AgentSettings, AgentUsage, ParticipantState, UsingGroup, UsingWorkflow,
    participant_problems,
};
use crate::error::{
    CreateAgentError, DeleteAgentError, InvalidRequest, ToolError, UpdateAgentError,
};
use crate::ports::{
    AgentRepository, DocumentProblem, SchemaChecker, SealError, SecretOpener, SecretSealer,
};
use crate::secret::{PlainSecret, SealedSecret, StoredSecret};
use crate::tool::{AgentTool, ToolSettings};
use crate::values::ToolName;

/// The most tools an agent may have (the store's `MAX_TOOLS`).
pub(crate) const MAX_TOOLS: usize = 128;

#[derive(Debug)]
struct State {
    now: OffsetDateTime,
    agents: Vec<Agent>,
    tools: Vec<AgentTool>,
    workflows: HashMap<AgentId, Vec<UsingWorkflow>>,
}

/// Why the actor may not change an agent.
#[derive(Clone, Copy)]
enum Refusal {
    NotFound,
    Forbidden,
}

/// Whether row level security lets `actor` see `agent` (`agents_select_catalog`).
fn may_see(actor: &Actor, agent: &Agent) -> bool {
    actor.is_superuser()
        || actor.user_id() == Some(agent.owner)
        || (actor.user_id().is_some() && agent.settings.status == AgentStatus::Active)
}

/// Whether row level security lets `actor` change `agent` (`agents_update_own`).
fn may_change(actor: &Actor, agent: &Agent) -> bool {
    actor.is_superuser() || actor.user_id() == Some(agent.owner)
}

impl State {
    fn tick(&mut self) -> OffsetDateTime {
        self.now += Duration::milliseconds(1);
        self.now
    }

    fn agent(&self, id: AgentId) -> Option<&Agent> {
        self.agents.iter().find(|agent| agent.id == id)
    }

    fn visible(&self, actor: &Actor, id: AgentId) -> Option<&Agent> {
        self.agent(id).filter(|agent| may_see(actor, agent))
    }

    /// The agent locked for a change: refused as storage refuses it.
    fn lock_for_change(&self, actor: &Actor, id: AgentId) -> Result<&Agent, Refusal> {
        match self.agent(id) {
            Some(agent) if may_change(actor, agent) => Ok(agent),
            Some(agent) if may_see(actor, agent) => Err(Refusal::Forbidden),
            _ => Err(Refusal::NotFound),
        }
    }

    /// The problems of a group's participants, over every agent reachable from them.
    fn participants_problems(
        &self,
        actor: &Actor,
        id: AgentId,
        settings: &AgentSettings,
    ) -> Vec<DocumentProblem> {
        let participants = settings.configuration.participants();
        let mut graph = HashMap::new();
        let mut pending = participants.to_vec();
        while let Some(next) = pending.pop() {
            if graph.contains_key(&next) {
                continue;
            }
            let Some(agent) = self.agent(next) else {
                continue;
            };
            let members = agent.settings.configuration.participants().to_vec();
            pending.extend(&members);
            graph.insert(
                next,
                ParticipantState {
                    agent_type: agent.settings.agent_type(),
                    status: agent.settings.status,
                    visible: may_see(actor, agent),
                    participants: members,
                },
            );
        }
        participant_problems(id, participants, &graph)
    }

    fn usage(&self, actor: &Actor, id: AgentId) -> AgentUsage {
        let groups = self
            .agents
            .iter()
            .filter(|agent| agent.settings.configuration.participants().contains(&id))
            .map(|agent| UsingGroup {
                id: agent.id,
                name: may_see(actor, agent).then(|| agent.settings.name.as_str().to_owned()),
            })
            .collect();
        AgentUsage {
            workflows: self.workflows.get(&id).cloned().unwrap_or_default(),
            groups,
        }
    }

    fn name_taken(&self, agent: AgentId, settings: &ToolSettings, except: AgentToolId) -> bool {
        self.tools.iter().any(|tool| {
            tool.agent_id == agent && tool.id != except && tool.settings.name == settings.name
        })
    }
}

/// Agents and tools in memory; clones share the same state.
#[derive(Clone, Debug)]
pub(crate) struct FakeAgents {
    state: Arc<Mutex<State>>,
}

impl Default for FakeAgents {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                now: OffsetDateTime::UNIX_EPOCH + Duration::days(20_000),
                agents: Vec::new(),
                tools: Vec::new(),
                workflows: HashMap::new(),
            })),
        }
    }
}

impl FakeAgents {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Declares that the current version of a workflow uses `agent`.
    pub(crate) fn use_in_workflow(&self, agent: AgentId, workflow: UsingWorkflow) {
        self.lock()
            .workflows
            .entry(agent)
            .or_default()
            .push(workflow);
    }

    /// The agent as stored, whoever may see it.
    pub(crate) fn stored(&self, id: AgentId) -> Option<Agent> {
        self.lock().agent(id).cloned()
    }

    /// The tool as stored, whoever may see it.
    pub(crate) fn stored_tool(&self, id: AgentToolId) -> Option<AgentTool> {
        self.lock().tools.iter().find(|tool| tool.id == id).cloned()
    }

    /// How many agents are stored.
    pub(crate) fn count(&self) -> usize {
        self.lock().agents.len()
    }
}

impl AgentRepository for FakeAgents {
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
        let mut state = self.lock();
        let problems = state.participants_problems(actor, id, settings);
        if !problems.is_empty() {
            return Err(InvalidRequest(problems).into());
        }
        let now = state.tick();
        let agent = Agent {
            id,
            owner,
            settings: settings.clone(),
            created_at: now,
            updated_at: now,
        };
        state.agents.push(agent.clone());
        Ok(agent)
    }

    async fn find(&self, actor: &Actor, id: AgentId) -> Result<Option<Agent>, StorageError> {
        Ok(self.lock().visible(actor, id).cloned())
    }

    async fn list(
        &self,
        actor: &Actor,
        filter: &AgentFilter,
        page: PageRequest,
    ) -> Result<Page<Agent>, StorageError> {
        let state = self.lock();
        let mut rows: Vec<Agent> = state
            .agents
            .iter()
            .filter(|agent| may_see(actor, agent))
            .filter(|agent| {
                filter
                    .agent_type
                    .is_none_or(|wanted| agent.settings.agent_type() == wanted)
            })
            .filter(|agent| {
                filter
                    .status
                    .is_none_or(|wanted| agent.settings.status == wanted)
            })
            .filter(|agent| {
                filter.name.as_ref().is_none_or(|fragment| {
                    agent
                        .settings
                        .name
                        .as_str()
                        .to_lowercase()
                        .contains(&fragment.as_str().to_lowercase())
                })
            })
            .filter(|agent| {
                page.after.is_none_or(|after| {
                    (agent.created_at, agent.id.as_uuid()) < (after.created_at(), after.id())
                })
            })
            .cloned()
            .collect();
        rows.sort_unstable_by(|a, b| {
            (b.created_at, b.id.as_uuid()).cmp(&(a.created_at, a.id.as_uuid()))
        });
        rows.truncate(usize::from(page.limit.get()) + 1);
        Ok(Page::from_overfetched(rows, page.limit, Agent::keyset))
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
        let mut state = self.lock();
        let current = state
            .lock_for_change(actor, id)
            .map_err(|refusal| match refusal {
                Refusal::NotFound => UpdateAgentError::NotFound,
                Refusal::Forbidden => UpdateAgentError::Forbidden,
            })?
            .clone();
        let settings = change(&current)?;
        let problems = state.participants_problems(actor, id, &settings);
        if !problems.is_empty() {
            return Err(InvalidRequest(problems).into());
        }
        let now = state.tick();
        let stored = state
            .agents
            .iter_mut()
            .find(|agent| agent.id == id)
            .ok_or(UpdateAgentError::NotFound)?;
        stored.settings = settings;
        stored.updated_at = now;
        Ok(stored.clone())
    }

    async fn delete(&self, actor: &Actor, id: AgentId) -> Result<(), DeleteAgentError> {
        let mut state = self.lock();
        state
            .lock_for_change(actor, id)
            .map_err(|refusal| match refusal {
                Refusal::NotFound => DeleteAgentError::NotFound,
                Refusal::Forbidden => DeleteAgentError::Forbidden,
            })?;
        let usage = state.usage(actor, id);
        if !usage.is_empty() {
            return Err(DeleteAgentError::InUse(usage));
        }
        state.agents.retain(|agent| agent.id != id);
        state.tools.retain(|tool| tool.agent_id != id);
        Ok(())
    }

    async fn tools(
        &self,
        actor: &Actor,
        agent: AgentId,
    ) -> Result<Option<Vec<AgentTool>>, StorageError> {
        let state = self.lock();
        if state.visible(actor, agent).is_none() {
            return Ok(None);
        }
        let mut tools: Vec<AgentTool> = state
            .tools
            .iter()
            .filter(|tool| tool.agent_id == agent)
            .cloned()
            .collect();
        tools.sort_by(|a, b| a.settings.name.as_str().cmp(b.settings.name.as_str()));
        Ok(Some(tools))
    }

    async fn tools_page(
        &self,
        actor: &Actor,
        agent: AgentId,
        page: PageRequest<ToolName>,
    ) -> Result<Option<Page<AgentTool, ToolName>>, StorageError> {
        let Some(tools) = self.tools(actor, agent).await? else {
            return Ok(None);
        };
        let after = |tool: &AgentTool| {
            page.after
                .as_ref()
                .is_none_or(|after| tool.settings.name.as_str() > after.as_str())
        };
        let rows = tools
            .into_iter()
            .filter(after)
            .take(usize::from(page.limit.get()) + 1)
            .collect();
        Ok(Some(Page::from_overfetched(rows, page.limit, |tool| {
            tool.settings.name.clone()
        })))
    }

    async fn tool(
        &self,
        actor: &Actor,
        agent: AgentId,
        tool: AgentToolId,
    ) -> Result<AgentTool, ToolError> {
        let state = self.lock();
        if state.visible(actor, agent).is_none() {
            return Err(ToolError::AgentNotFound);
        }
        state
            .tools
            .iter()
            .find(|found| found.id == tool && found.agent_id == agent)
            .cloned()
            .ok_or(ToolError::ToolNotFound)
    }

    async fn create_tool(
        &self,
        actor: &Actor,
        agent: AgentId,
        id: AgentToolId,
        settings: &ToolSettings,
    ) -> Result<AgentTool, ToolError> {
        let mut state = self.lock();
        state.lock_for_change(actor, agent).map_err(tool_refusal)?;
        let count = state
            .tools
            .iter()
            .filter(|tool| tool.agent_id == agent)
            .count();
        if count >= MAX_TOOLS {
            return Err(ToolError::TooManyTools(MAX_TOOLS));
        }
        if state.name_taken(agent, settings, id) {
            return Err(ToolError::DuplicateName(settings.name.clone()));
        }
        let now = state.tick();
        let tool = AgentTool {
            id,
            agent_id: agent,
            settings: settings.clone(),
            created_at: now,
            updated_at: now,
        };
        state.tools.push(tool.clone());
        Ok(tool)
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
        let mut state = self.lock();
        state.lock_for_change(actor, agent).map_err(tool_refusal)?;
        let current = state
            .tools
            .iter()
            .find(|found| found.id == tool && found.agent_id == agent)
            .cloned()
            .ok_or(ToolError::ToolNotFound)?;
        let settings = change(&current)?;
        if state.name_taken(agent, &settings, tool) {
            return Err(ToolError::DuplicateName(settings.name));
        }
        let now = state.tick();
        let stored = state
            .tools
            .iter_mut()
            .find(|found| found.id == tool)
            .ok_or(ToolError::ToolNotFound)?;
        stored.settings = settings;
        stored.updated_at = now;
        Ok(stored.clone())
    }

    async fn delete_tool(
        &self,
        actor: &Actor,
        agent: AgentId,
        tool: AgentToolId,
    ) -> Result<(), ToolError> {
        let mut state = self.lock();
        state.lock_for_change(actor, agent).map_err(tool_refusal)?;
        let before = state.tools.len();
        state
            .tools
            .retain(|found| !(found.id == tool && found.agent_id == agent));
        if state.tools.len() == before {
            return Err(ToolError::ToolNotFound);
        }
        Ok(())
    }
}

fn tool_refusal(refusal: Refusal) -> ToolError {
    match refusal {
        Refusal::NotFound => ToolError::AgentNotFound,
        Refusal::Forbidden => ToolError::Forbidden,
    }
}

/// Seals a secret as `binding|hex(text)` under key `fake-key`: not secret at all, but bound, so
/// a test can see where a value was sealed and that it opens only there. Clones share their
/// record and switch.
#[derive(Clone, Debug, Default)]
pub(crate) struct FakeSealer {
    bindings: Arc<Mutex<Vec<String>>>,
    no_key: Arc<AtomicBool>,
}

impl FakeSealer {
    /// Every binding sealed with, in order.
    pub(crate) fn bindings(&self) -> Vec<String> {
        self.bindings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes the sealer a server without `IPA_SECRET_KEY`.
    pub(crate) fn lose_key(&self) {
        self.no_key.store(true, Ordering::SeqCst);
    }
}

impl SecretSealer for FakeSealer {
    fn seal(&self, secret: &PlainSecret, binding: &str) -> Result<SealedSecret, SealError> {
        if self.no_key.load(Ordering::SeqCst) {
            return Err(SealError::NoKey);
        }
        self.bindings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(binding.to_owned());
        let hex: String = secret
            .expose()
            .bytes()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok(SealedSecret::new(
            "fake-key".to_owned(),
            format!("{binding}|{hex}"),
        ))
    }
}

impl SecretOpener for FakeSealer {
    fn reveal(&self, stored: &StoredSecret, binding: &str) -> Result<PlainSecret, String> {
        let StoredSecret::Sealed(sealed) = stored else {
            return Err("environment variables are not read by the fake".to_owned());
        };
        let (bound, hex) = sealed
            .ciphertext()
            .split_once('|')
            .ok_or_else(|| "not a sealed secret of the fake".to_owned())?;
        if bound != binding {
            return Err("the secret was sealed for another place".to_owned());
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(hex.get(at..at + 2).unwrap_or("zz"), 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|error| error.to_string())?;
        String::from_utf8(bytes)
            .map(PlainSecret::new)
            .map_err(|error| error.to_string())
    }
}

/// Refuses every `"type": "nope"` in a schema, at its pointer; counts its calls. Clones share
/// the count.
#[derive(Clone, Debug, Default)]
pub(crate) struct FakeSchemas {
    calls: Arc<AtomicUsize>,
}

impl FakeSchemas {
    /// How many schemas were checked.
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn nope_pointers(value: &Value, at: &str, found: &mut Vec<DocumentProblem>) {
    match value {
        Value::Object(members) => {
            for (key, member) in members {
                let pointer = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                if key == "type" && member == "nope" {
                    found.push(DocumentProblem {
                        pointer: pointer.clone(),
                        message: "\"nope\" is not a JSON Schema type".to_owned(),
                    });
                }
                nope_pointers(member, &pointer, found);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                nope_pointers(item, &format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

impl SchemaChecker for FakeSchemas {
    fn schema_problems(&self, schema: &Value) -> Vec<DocumentProblem> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut found = Vec::new();
        nope_pointers(schema, "", &mut found);
        found
    }
}
