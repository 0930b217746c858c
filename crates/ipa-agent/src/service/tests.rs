//! Unit tests of the rules the [`AgentService`] holds, run against the in-memory fakes of its
//! ports ([`crate::fakes`]): configurations parsed with every problem at its pointer in the
//! request, secrets sealed bound to their agent or tool and kept when marked set, schemas checked
//! through the port, the status transitions and the model rule, and the refusals storage reports
//! passed on as the service's errors.

use ipa_kernel::{
    Actor, AgentId, AgentToolId, ClientInfo, Page, PageLimit, PageRequest, UserId, WorkflowId,
};
use serde_json::{Value, json};

use super::{AgentChanges, AgentService, NewAgent, NewTool, ToolChanges};
use crate::agent::{Agent, AgentFilter, UsingGroup, UsingWorkflow};
use crate::config::{AgentConfiguration, HeaderValue, Provider};
use crate::error::{
    AgentQueryError, CreateAgentError, DeleteAgentError, InvalidRequest, ToolError,
    UpdateAgentError,
};
use crate::fakes::{FakeAgents, FakeSchemas, FakeSealer};
use crate::functions::{reveal_agent, reveal_tool};
use crate::secret::StoredSecret;
use crate::tool::{AgentTool, ToolConfiguration, ToolType};
use crate::values::{
    AgentName, Description, MaxTokens, ModelName, SystemPrompt, Temperature, ToolName,
};
use crate::{AgentStatus, AgentType};

type Service = AgentService<FakeAgents, FakeSealer, FakeSchemas>;

struct World {
    service: Service,
    agents: FakeAgents,
    sealer: FakeSealer,
    schemas: FakeSchemas,
    owner: Actor,
    other: Actor,
    admin: Actor,
}

fn world() -> World {
    let agents = FakeAgents::default();
    let sealer = FakeSealer::default();
    let schemas = FakeSchemas::default();
    let user = |superuser| Actor::user(UserId::new_random(), superuser, ClientInfo::default());
    World {
        service: AgentService::new(agents.clone(), sealer.clone(), schemas.clone()),
        agents,
        sealer,
        schemas,
        owner: user(false),
        other: user(false),
        admin: user(true),
    }
}

fn openai(api_key: &Value) -> Value {
    json!({"provider": {"type": "openai", "api_key": api_key}})
}

fn new_agent(agent_type: AgentType, configuration: Value) -> NewAgent {
    NewAgent {
        name: AgentName::parse("Helper").unwrap(),
        description: None,
        agent_type,
        status: AgentStatus::Active,
        configuration,
        system_prompt: None,
        model: Some(ModelName::parse("gpt-4o").unwrap()),
        temperature: Temperature::DEFAULT,
        max_tokens: MaxTokens::DEFAULT,
    }
}

fn pointers(error: &InvalidRequest) -> Vec<&str> {
    error
        .0
        .iter()
        .map(|problem| problem.pointer.as_str())
        .collect()
}

fn invalid_create(result: Result<Agent, CreateAgentError>) -> InvalidRequest {
    match result {
        Err(CreateAgentError::Invalid(invalid)) => invalid,
        other => panic!("not refused as invalid: {other:?}"),
    }
}

fn invalid_update(result: Result<Agent, UpdateAgentError>) -> InvalidRequest {
    match result {
        Err(UpdateAgentError::Invalid(invalid)) => invalid,
        other => panic!("not refused as invalid: {other:?}"),
    }
}

fn invalid_tool(result: Result<AgentTool, ToolError>) -> InvalidRequest {
    match result {
        Err(ToolError::Invalid(invalid)) => invalid,
        other => panic!("not refused as invalid: {other:?}"),
    }
}

/// The stored secret of `configuration` at `pointer`.
fn agent_secret(agent: &Agent, pointer: &str) -> StoredSecret {
    agent
        .settings
        .configuration
        .secrets_by_pointer()
        .remove(pointer)
        .unwrap_or_else(|| panic!("no secret at {pointer}"))
}

fn tool_secret(tool: &AgentTool, pointer: &str) -> StoredSecret {
    tool.settings
        .configuration
        .secrets_by_pointer()
        .remove(pointer)
        .unwrap_or_else(|| panic!("no secret at {pointer}"))
}

fn weather_tool(headers: &Value) -> NewTool {
    NewTool {
        name: ToolName::parse("weather").unwrap(),
        description: None,
        tool_type: ToolType::Api,
        configuration: json!({
            "method": "GET",
            "url": "https://api.example.com/weather/{city}",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "headers": headers,
        }),
        enabled: true,
    }
}

fn pets_plugin(name: &str) -> NewTool {
    NewTool {
        name: ToolName::parse(name).unwrap(),
        description: None,
        tool_type: ToolType::Plugin,
        configuration: json!({
            "base_url": "http://127.0.0.1:9000",
            "headers": {"X-Api-Key": {"value": "pet-key"}},
            "openapi": {
                "openapi": "3.0.3",
                "info": {"title": "Pets", "version": "1"},
                "paths": {"/pets": {"get": {"operationId": "listPets"}}}
            }
        }),
        enabled: true,
    }
}

impl World {
    async fn agent(&self, actor: &Actor, status: AgentStatus) -> Agent {
        let agent = NewAgent {
            status,
            ..new_agent(AgentType::SemanticKernel, openai(&json!({"value": "sk-1"})))
        };
        self.service.create(actor, &agent).await.unwrap()
    }

    async fn custom_agent(&self, headers: Value) -> Agent {
        let agent = NewAgent {
            model: None,
            ..new_agent(
                AgentType::Custom,
                json!({"endpoint": "https://bots.example.com/reply", "headers": headers}),
            )
        };
        self.service.create(&self.owner, &agent).await.unwrap()
    }

    async fn update(&self, id: AgentId, changes: AgentChanges) -> Result<Agent, UpdateAgentError> {
        self.service.update(&self.owner, id, &changes).await
    }

    async fn update_tool(
        &self,
        agent: AgentId,
        tool: AgentToolId,
        changes: ToolChanges,
    ) -> Result<AgentTool, ToolError> {
        self.service
            .update_tool(&self.owner, agent, tool, &changes)
            .await
    }
}

fn status(status: AgentStatus) -> AgentChanges {
    AgentChanges {
        status: Some(status),
        ..AgentChanges::default()
    }
}

// Creating agents.

#[tokio::test]
async fn a_new_agents_secret_values_are_sealed_bound_to_the_agent_and_their_place() {
    let w = world();
    let agent = w.agent(&w.owner, AgentStatus::Active).await;
    assert_eq!(
        w.sealer.bindings(),
        vec![format!("agent/{}/provider/api_key", agent.id)]
    );
    assert!(matches!(
        agent_secret(&agent, "/provider/api_key"),
        StoredSecret::Sealed(_)
    ));
    let stored = agent.settings.configuration.to_json(&StoredSecret::to_json);
    assert!(!stored.to_string().contains("sk-1"), "{stored}");
    // The sealed value opens with this agent's binding, and with no other.
    let revealed = reveal_agent(agent.id, &agent.settings.configuration, &w.sealer).unwrap();
    let AgentConfiguration::SemanticKernel(model) = revealed else {
        panic!("not a model configuration")
    };
    let Provider::OpenAi { api_key, .. } = model.provider else {
        panic!("not OpenAI")
    };
    assert_eq!(api_key.expose(), "sk-1");
    assert!(
        reveal_agent(
            AgentId::new_random(),
            &agent.settings.configuration,
            &w.sealer
        )
        .is_err()
    );
    assert_eq!(w.agents.stored(agent.id).unwrap(), agent);
}

#[tokio::test]
async fn environment_secrets_are_kept_by_name_and_never_sealed() {
    let w = world();
    let agent = w
        .service
        .create(
            &w.owner,
            &new_agent(
                AgentType::SemanticKernel,
                openai(&json!({"env": "OPENAI_API_KEY"})),
            ),
        )
        .await
        .unwrap();
    let StoredSecret::Env(name) = agent_secret(&agent, "/provider/api_key") else {
        panic!("not kept as an environment variable")
    };
    assert_eq!(name.as_str(), "OPENAI_API_KEY");
    assert!(w.sealer.bindings().is_empty());
}

#[tokio::test]
async fn a_new_agent_cannot_keep_a_secret_it_never_had() {
    let w = world();
    let invalid = invalid_create(
        w.service
            .create(
                &w.owner,
                &new_agent(AgentType::SemanticKernel, openai(&json!({"set": true}))),
            )
            .await,
    );
    assert_eq!(pointers(&invalid), vec!["/configuration/provider/api_key"]);
    assert!(invalid.0[0].message.contains("no secret is stored here"));
    assert_eq!(w.agents.count(), 0);
}

#[tokio::test]
async fn without_a_key_a_secret_value_is_a_problem_at_its_place() {
    let w = world();
    w.sealer.lose_key();
    let invalid = invalid_create(
        w.service
            .create(
                &w.owner,
                &new_agent(AgentType::SemanticKernel, openai(&json!({"value": "sk-1"}))),
            )
            .await,
    );
    assert_eq!(pointers(&invalid), vec!["/configuration/provider/api_key"]);
    assert!(invalid.0[0].message.contains("IPA_SECRET_KEY"));
    assert_eq!(w.agents.count(), 0);
}

#[tokio::test]
async fn a_new_agent_has_every_problem_reported_at_once_and_is_not_stored() {
    let w = world();
    let agent = NewAgent {
        status: AgentStatus::Deprecated,
        model: None,
        ..new_agent(
            AgentType::SemanticKernel,
            json!({"provider": {"type": "anthropic"}}),
        )
    };
    let invalid = invalid_create(w.service.create(&w.owner, &agent).await);
    assert_eq!(
        pointers(&invalid),
        vec!["/status", "/configuration/provider/type", "/model_name"]
    );
    assert_eq!(w.agents.count(), 0);

    // A deprecated status alone is enough to refuse it, and nothing is sealed for a refusal.
    let agent = NewAgent {
        status: AgentStatus::Deprecated,
        ..new_agent(AgentType::SemanticKernel, openai(&json!({"env": "K"})))
    };
    let invalid = invalid_create(w.service.create(&w.owner, &agent).await);
    assert_eq!(pointers(&invalid), vec!["/status"]);
    assert!(w.sealer.bindings().is_empty());
    assert_eq!(w.agents.count(), 0);

    // An inactive agent may be created.
    w.agent(&w.owner, AgentStatus::Inactive).await;
}

#[tokio::test]
async fn agents_that_call_a_model_must_name_it_custom_ones_need_not() {
    let w = world();
    for (agent_type, configuration) in [
        (AgentType::SemanticKernel, openai(&json!({"env": "K"}))),
        (
            AgentType::Autogen,
            json!({
                "participants": [AgentId::new_random().to_string(), AgentId::new_random().to_string()],
                "provider": {"type": "openai", "api_key": {"env": "K"}},
            }),
        ),
    ] {
        let agent = NewAgent {
            model: None,
            ..new_agent(agent_type, configuration)
        };
        let invalid = invalid_create(w.service.create(&w.owner, &agent).await);
        assert_eq!(pointers(&invalid), vec!["/model_name"], "{agent_type}");
        assert!(invalid.0[0].message.contains(agent_type.as_str()));
    }
    let custom = w.custom_agent(json!({})).await;
    assert_eq!(custom.settings.model, None);
    assert_eq!(custom.settings.agent_type(), AgentType::Custom);
}

#[tokio::test]
async fn a_group_conversation_is_created_once_its_participants_pass_storages_checks() {
    let w = world();
    let first = w.agent(&w.owner, AgentStatus::Active).await;
    let second = w.agent(&w.owner, AgentStatus::Active).await;
    let group = |participants: [AgentId; 2]| {
        new_agent(
            AgentType::Autogen,
            json!({
                "participants": participants.map(|id| id.to_string()),
                "provider": {"type": "openai", "api_key": {"value": "sk-group"}},
            }),
        )
    };
    let created = w
        .service
        .create(&w.owner, &group([first.id, second.id]))
        .await
        .unwrap();
    assert_eq!(
        created.settings.configuration.participants(),
        &[first.id, second.id]
    );
    let missing = AgentId::new_random();
    let invalid = invalid_create(
        w.service
            .create(&w.owner, &group([first.id, missing]))
            .await,
    );
    assert_eq!(pointers(&invalid), vec!["/configuration/participants/1"]);
}

// Reading agents.

#[tokio::test]
async fn an_agent_the_actor_may_not_see_is_not_found() {
    let w = world();
    let inactive = w.agent(&w.owner, AgentStatus::Inactive).await;
    let active = w.agent(&w.owner, AgentStatus::Active).await;

    assert!(matches!(
        w.service.get(&w.other, inactive.id).await,
        Err(AgentQueryError::NotFound)
    ));
    assert_eq!(w.service.get(&w.other, active.id).await.unwrap(), active);
    assert_eq!(
        w.service.get(&w.owner, inactive.id).await.unwrap(),
        inactive
    );
    assert_eq!(
        w.service.get(&w.admin, inactive.id).await.unwrap(),
        inactive
    );
    assert!(matches!(
        w.service.get(&w.owner, AgentId::new_random()).await,
        Err(AgentQueryError::NotFound)
    ));

    let page = w
        .service
        .list(&w.other, &AgentFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items, vec![active.clone()]);
    let page = w
        .service
        .list(&w.owner, &AgentFilter::default(), PageRequest::default())
        .await
        .unwrap();
    // Newest first.
    assert_eq!(page.items, vec![active, inactive]);
}

// Changing agents.

#[tokio::test]
async fn the_status_moves_only_along_its_transitions() {
    let w = world();
    let agent = w.agent(&w.owner, AgentStatus::Active).await;

    // Setting the status it has is no transition at all.
    let same = w
        .update(agent.id, status(AgentStatus::Active))
        .await
        .unwrap();
    assert_eq!(same.settings.status, AgentStatus::Active);

    let deprecated = w
        .update(agent.id, status(AgentStatus::Deprecated))
        .await
        .unwrap();
    assert_eq!(deprecated.settings.status, AgentStatus::Deprecated);

    let error = w
        .update(
            agent.id,
            AgentChanges {
                name: Some(AgentName::parse("Renamed").unwrap()),
                ..status(AgentStatus::Active)
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            UpdateAgentError::IllegalTransition {
                from: AgentStatus::Deprecated,
                to: AgentStatus::Active
            }
        ),
        "{error:?}"
    );
    // The refused change changed nothing.
    let stored = w.agents.stored(agent.id).unwrap();
    assert_eq!(stored.settings.name.as_str(), "Helper");
    assert_eq!(stored.settings.status, AgentStatus::Deprecated);

    // A deprecation is undone through inactive.
    let inactive = w
        .update(agent.id, status(AgentStatus::Inactive))
        .await
        .unwrap();
    assert_eq!(inactive.settings.status, AgentStatus::Inactive);
    let active = w
        .update(agent.id, status(AgentStatus::Active))
        .await
        .unwrap();
    assert_eq!(active.settings.status, AgentStatus::Active);
}

#[tokio::test]
async fn a_new_configuration_keeps_secrets_marked_set_and_seals_new_values() {
    let w = world();
    let agent = w.agent(&w.owner, AgentStatus::Active).await;
    let sealed = agent_secret(&agent, "/provider/api_key");

    let kept = w
        .update(
            agent.id,
            AgentChanges {
                configuration: Some(json!({"provider": {
                    "type": "openai", "api_key": {"set": true}, "organization": "org-2"
                }})),
                ..AgentChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(agent_secret(&kept, "/provider/api_key"), sealed);
    assert_eq!(w.sealer.bindings().len(), 1);
    let AgentConfiguration::SemanticKernel(model) = &kept.settings.configuration else {
        panic!("not a model configuration")
    };
    assert!(matches!(
        &model.provider,
        Provider::OpenAi { organization: Some(org), .. } if org == "org-2"
    ));

    let replaced = w
        .update(
            agent.id,
            AgentChanges {
                configuration: Some(openai(&json!({"value": "sk-2"}))),
                ..AgentChanges::default()
            },
        )
        .await
        .unwrap();
    assert_ne!(agent_secret(&replaced, "/provider/api_key"), sealed);
    assert_eq!(
        w.sealer.bindings().last().unwrap(),
        &format!("agent/{}/provider/api_key", agent.id)
    );
    let revealed = reveal_agent(agent.id, &replaced.settings.configuration, &w.sealer).unwrap();
    let AgentConfiguration::SemanticKernel(model) = revealed else {
        panic!("not a model configuration")
    };
    assert!(matches!(
        model.provider,
        Provider::OpenAi { api_key, .. } if api_key.expose() == "sk-2"
    ));
}

#[tokio::test]
async fn only_a_secret_stored_at_the_same_place_can_be_kept() {
    let w = world();
    let agent = w
        .custom_agent(json!({"Authorization": {"value": "Bearer a"}}))
        .await;
    let invalid = invalid_update(
        w.update(
            agent.id,
            AgentChanges {
                configuration: Some(json!({
                    "endpoint": "https://bots.example.com/reply",
                    "headers": {"Authorization": {"set": true}, "X-Other": {"set": true}},
                })),
                ..AgentChanges::default()
            },
        )
        .await,
    );
    assert_eq!(pointers(&invalid), vec!["/configuration/headers/X-Other"]);
    assert_eq!(w.agents.stored(agent.id).unwrap(), agent);
}

#[tokio::test]
async fn an_agents_type_cannot_change_through_its_configuration() {
    let w = world();
    let agent = w.agent(&w.owner, AgentStatus::Active).await;
    let invalid = invalid_update(
        w.update(
            agent.id,
            AgentChanges {
                configuration: Some(json!({"endpoint": "https://bots.example.com/reply"})),
                ..AgentChanges::default()
            },
        )
        .await,
    );
    // Read as the semantic_kernel configuration it must stay.
    assert_eq!(
        pointers(&invalid),
        vec!["/configuration/provider", "/configuration/endpoint"]
    );
    assert_eq!(
        w.agents.stored(agent.id).unwrap().settings.agent_type(),
        AgentType::SemanticKernel
    );
}

#[tokio::test]
async fn the_model_rule_holds_across_a_change() {
    let w = world();
    let agent = w.agent(&w.owner, AgentStatus::Active).await;
    let clear_model = AgentChanges {
        model: Some(None),
        ..AgentChanges::default()
    };
    let invalid = invalid_update(w.update(agent.id, clear_model.clone()).await);
    assert_eq!(pointers(&invalid), vec!["/model_name"]);
    assert!(w.agents.stored(agent.id).unwrap().settings.model.is_some());

    let custom = w.custom_agent(json!({})).await;
    let with_model = w
        .update(
            custom.id,
            AgentChanges {
                model: Some(Some(ModelName::parse("gpt-4o").unwrap())),
                ..AgentChanges::default()
            },
        )
        .await
        .unwrap();
    assert!(with_model.settings.model.is_some());
    let cleared = w.update(custom.id, clear_model).await.unwrap();
    assert_eq!(cleared.settings.model, None);
}

#[tokio::test]
async fn given_fields_change_and_the_others_stay() {
    let w = world();
    let created = w
        .service
        .create(
            &w.owner,
            &NewAgent {
                description: Description::parse("Answers").unwrap(),
                system_prompt: SystemPrompt::parse("Be brief.").unwrap(),
                ..new_agent(AgentType::SemanticKernel, openai(&json!({"value": "sk-1"})))
            },
        )
        .await
        .unwrap();
    let changed = w
        .update(
            created.id,
            AgentChanges {
                name: Some(AgentName::parse("Desk").unwrap()),
                description: Some(None),
                temperature: Some(Temperature::parse(0.2).unwrap()),
                max_tokens: Some(MaxTokens::parse(64).unwrap()),
                ..AgentChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.settings.name.as_str(), "Desk");
    assert_eq!(changed.settings.description, None);
    assert_eq!(
        changed.settings.temperature,
        Temperature::parse(0.2).unwrap()
    );
    assert_eq!(changed.settings.max_tokens.get(), 64);
    assert_eq!(
        changed.settings.system_prompt,
        created.settings.system_prompt
    );
    assert_eq!(changed.settings.model, created.settings.model);
    assert_eq!(changed.settings.status, created.settings.status);
    assert_eq!(
        changed.settings.configuration,
        created.settings.configuration
    );
    // Nothing was sealed again: the configuration was not given.
    assert_eq!(w.sealer.bindings().len(), 1);

    let prompt = w
        .update(
            created.id,
            AgentChanges {
                system_prompt: Some(None),
                ..AgentChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(prompt.settings.system_prompt, None);
    assert_eq!(prompt.settings.name.as_str(), "Desk");
}

#[tokio::test]
async fn only_the_owner_or_a_superuser_changes_an_agent() {
    let w = world();
    let active = w.agent(&w.owner, AgentStatus::Active).await;
    let inactive = w.agent(&w.owner, AgentStatus::Inactive).await;
    let rename = AgentChanges {
        name: Some(AgentName::parse("Mine now").unwrap()),
        ..AgentChanges::default()
    };
    assert!(matches!(
        w.service.update(&w.other, active.id, &rename).await,
        Err(UpdateAgentError::Forbidden)
    ));
    assert!(matches!(
        w.service.update(&w.other, inactive.id, &rename).await,
        Err(UpdateAgentError::NotFound)
    ));
    assert_eq!(w.agents.stored(active.id).unwrap(), active);
    let renamed = w
        .service
        .update(&w.admin, active.id, &rename)
        .await
        .unwrap();
    assert_eq!(renamed.settings.name.as_str(), "Mine now");
    assert_eq!(renamed.owner, active.owner);
}

// Deleting agents.

#[tokio::test]
async fn an_agent_in_use_is_not_deleted() {
    let w = world();
    let used = w.agent(&w.owner, AgentStatus::Active).await;
    let workflow = UsingWorkflow {
        id: WorkflowId::new_random(),
        name: Some("Invoices".to_owned()),
    };
    w.agents.use_in_workflow(used.id, workflow.clone());
    let error = w.service.delete(&w.owner, used.id).await.unwrap_err();
    let DeleteAgentError::InUse(usage) = error else {
        panic!("not refused as in use: {error:?}")
    };
    assert_eq!(usage.workflows, vec![workflow]);
    assert!(w.agents.stored(used.id).is_some());

    let first = w.agent(&w.owner, AgentStatus::Active).await;
    let second = w.agent(&w.owner, AgentStatus::Active).await;
    let group = w
        .service
        .create(
            &w.owner,
            &NewAgent {
                name: AgentName::parse("Panel").unwrap(),
                ..new_agent(
                    AgentType::Autogen,
                    json!({
                        "participants": [first.id.to_string(), second.id.to_string()],
                        "provider": {"type": "openai", "api_key": {"env": "K"}},
                    }),
                )
            },
        )
        .await
        .unwrap();
    let error = w.service.delete(&w.owner, first.id).await.unwrap_err();
    let DeleteAgentError::InUse(usage) = error else {
        panic!("not refused as in use: {error:?}")
    };
    assert_eq!(
        usage.groups,
        vec![UsingGroup {
            id: group.id,
            name: Some("Panel".to_owned())
        }]
    );
    assert!(error_text_names(&usage.to_string(), "Panel"));

    // Once the group is gone, so may its participant be, with its tools.
    w.service.delete(&w.owner, group.id).await.unwrap();
    let tool = w
        .service
        .create_tool(&w.owner, first.id, &weather_tool(&json!({})))
        .await
        .unwrap();
    w.service.delete(&w.owner, first.id).await.unwrap();
    assert!(w.agents.stored(first.id).is_none());
    assert!(w.agents.stored_tool(tool.id).is_none());
    assert!(matches!(
        w.service.get(&w.owner, first.id).await,
        Err(AgentQueryError::NotFound)
    ));
}

fn error_text_names(text: &str, name: &str) -> bool {
    text.contains(&format!("\"{name}\""))
}

#[tokio::test]
async fn only_the_owner_or_a_superuser_deletes_an_agent() {
    let w = world();
    let active = w.agent(&w.owner, AgentStatus::Active).await;
    let inactive = w.agent(&w.owner, AgentStatus::Inactive).await;
    assert!(matches!(
        w.service.delete(&w.other, active.id).await,
        Err(DeleteAgentError::Forbidden)
    ));
    assert!(matches!(
        w.service.delete(&w.other, inactive.id).await,
        Err(DeleteAgentError::NotFound)
    ));
    assert!(matches!(
        w.service.delete(&w.owner, AgentId::new_random()).await,
        Err(DeleteAgentError::NotFound)
    ));
    w.service.delete(&w.admin, inactive.id).await.unwrap();
    assert!(w.agents.stored(inactive.id).is_none());
    assert!(w.agents.stored(active.id).is_some());
}

// Tools.

#[tokio::test]
async fn tools_are_read_only_through_a_visible_agent() {
    let w = world();
    let inactive = w.agent(&w.owner, AgentStatus::Inactive).await;
    let zeta = w
        .service
        .create_tool(
            &w.owner,
            inactive.id,
            &NewTool {
                name: ToolName::parse("zeta").unwrap(),
                ..weather_tool(&json!({}))
            },
        )
        .await
        .unwrap();
    let alpha = w
        .service
        .create_tool(
            &w.owner,
            inactive.id,
            &NewTool {
                name: ToolName::parse("alpha").unwrap(),
                ..weather_tool(&json!({}))
            },
        )
        .await
        .unwrap();
    let names = |page: &Page<AgentTool, ToolName>| -> Vec<String> {
        page.items
            .iter()
            .map(|tool| tool.settings.name.to_string())
            .collect()
    };
    let all = w
        .service
        .tools(&w.owner, inactive.id, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(names(&all), vec!["alpha", "zeta"]);
    assert_eq!(all.next, None);
    // One at a time: the first page says where the second starts, which ends the list.
    let one = PageRequest {
        after: None,
        limit: PageLimit::parse(Some(1)).unwrap(),
    };
    let first = w
        .service
        .tools(&w.owner, inactive.id, one.clone())
        .await
        .unwrap();
    assert_eq!(names(&first), vec!["alpha"]);
    let second = w
        .service
        .tools(
            &w.owner,
            inactive.id,
            PageRequest {
                after: first.next.clone(),
                ..one
            },
        )
        .await
        .unwrap();
    assert_eq!(names(&second), vec!["zeta"]);
    assert_eq!(second.next, None);
    assert!(matches!(
        w.service
            .tools(&w.other, inactive.id, PageRequest::default())
            .await,
        Err(ToolError::AgentNotFound)
    ));
    assert!(matches!(
        w.service.tool(&w.other, inactive.id, zeta.id).await,
        Err(ToolError::AgentNotFound)
    ));
    assert_eq!(
        w.service
            .tool(&w.owner, inactive.id, alpha.id)
            .await
            .unwrap(),
        alpha
    );
    assert!(matches!(
        w.service
            .tool(&w.owner, inactive.id, AgentToolId::new_random())
            .await,
        Err(ToolError::ToolNotFound)
    ));
}

#[tokio::test]
async fn tool_parameters_are_checked_through_the_schema_checker() {
    let w = world();
    let agent = w.agent(&w.owner, AgentStatus::Active).await;
    let mut tool = weather_tool(&json!({}));
    tool.configuration["parameters"]["properties"]["city"]["type"] = json!("nope");
    let invalid = invalid_tool(w.service.create_tool(&w.owner, agent.id, &tool).await);
    assert_eq!(
        pointers(&invalid),
        vec!["/configuration/parameters/properties/city/type"]
    );
    assert_eq!(w.schemas.calls(), 1);
    assert!(
        w.service
            .tools(&w.owner, agent.id, PageRequest::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    w.service
        .create_tool(&w.owner, agent.id, &weather_tool(&json!({})))
        .await
        .unwrap();
    assert_eq!(w.schemas.calls(), 2);
}

#[tokio::test]
async fn a_tools_secret_values_are_sealed_bound_to_the_tool_and_their_place() {
    let w = world();
    let agent = w.agent(&w.owner, AgentStatus::Active).await;
    let tool = w
        .service
        .create_tool(
            &w.owner,
            agent.id,
            &weather_tool(&json!({"Authorization": {"value": "Bearer t0k"}, "X-Team": "ops"})),
        )
        .await
        .unwrap();
    assert_eq!(
        w.sealer.bindings().last().unwrap(),
        &format!("tool/{}/headers/Authorization", tool.id)
    );
    assert!(matches!(
        tool_secret(&tool, "/headers/Authorization"),
        StoredSecret::Sealed(_)
    ));
    let ToolConfiguration::Api(call) = reveal_tool(&tool, &w.sealer).unwrap() else {
        panic!("not an API call")
    };
    let secrets: Vec<&str> = call
        .headers
        .iter()
        .filter_map(|(_, value)| match value {
            HeaderValue::Secret(plain) => Some(plain.expose()),
            HeaderValue::Plain(_) => None,
        })
        .collect();
    assert_eq!(secrets, vec!["Bearer t0k"]);

    let invalid = invalid_tool(
        w.service
            .create_tool(
                &w.owner,
                agent.id,
                &NewTool {
                    name: ToolName::parse("other").unwrap(),
                    ..weather_tool(&json!({"Authorization": {"set": true}}))
                },
            )
            .await,
    );
    assert_eq!(
        pointers(&invalid),
        vec!["/configuration/headers/Authorization"]
    );
}

#[tokio::test]
async fn a_renamed_tool_is_checked_again_under_its_new_name_keeping_its_secrets() {
    let w = world();
    let agent = w.agent(&w.owner, AgentStatus::Active).await;
    let tool = w
        .service
        .create_tool(&w.owner, agent.id, &pets_plugin("pets"))
        .await
        .unwrap();
    let sealed = tool_secret(&tool, "/headers/X-Api-Key");
    let seals = w.sealer.bindings().len();

    // `<tool>-listPets` must stay within 64 characters.
    let long = "p".repeat(ToolName::MAX_CHARS - "-listPets".len() + 1);
    let invalid = invalid_tool(
        w.update_tool(
            agent.id,
            tool.id,
            ToolChanges {
                name: Some(ToolName::parse(&long).unwrap()),
                ..ToolChanges::default()
            },
        )
        .await,
    );
    assert_eq!(
        pointers(&invalid),
        vec!["/configuration/openapi/paths/~1pets/get/operationId"]
    );
    assert_eq!(w.agents.stored_tool(tool.id).unwrap(), tool);

    let renamed = w
        .update_tool(
            agent.id,
            tool.id,
            ToolChanges {
                name: Some(ToolName::parse("animals").unwrap()),
                ..ToolChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.settings.name.as_str(), "animals");
    assert_eq!(tool_secret(&renamed, "/headers/X-Api-Key"), sealed);
    assert_eq!(w.sealer.bindings().len(), seals);
    assert!(reveal_tool(&renamed, &w.sealer).is_ok());
}

#[tokio::test]
async fn a_tool_change_without_a_new_name_or_document_is_not_checked_again() {
    let w = world();
    let agent = w.agent(&w.owner, AgentStatus::Active).await;
    let tool = w
        .service
        .create_tool(&w.owner, agent.id, &weather_tool(&json!({})))
        .await
        .unwrap();
    let checks = w.schemas.calls();
    let changed = w
        .update_tool(
            agent.id,
            tool.id,
            ToolChanges {
                name: Some(ToolName::parse("weather").unwrap()),
                description: Some(Description::parse("Today's weather").unwrap()),
                enabled: Some(false),
                configuration: None,
            },
        )
        .await
        .unwrap();
    assert!(!changed.settings.enabled);
    assert_eq!(
        changed
            .settings
            .description
            .as_ref()
            .map(Description::as_str),
        Some("Today's weather")
    );
    assert_eq!(changed.settings.configuration, tool.settings.configuration);
    assert_eq!(w.schemas.calls(), checks);
}

#[tokio::test]
async fn a_new_tool_document_keeps_secrets_marked_set_and_its_type() {
    let w = world();
    let agent = w.agent(&w.owner, AgentStatus::Active).await;
    let tool = w
        .service
        .create_tool(
            &w.owner,
            agent.id,
            &weather_tool(&json!({"Authorization": {"value": "Bearer t0k"}})),
        )
        .await
        .unwrap();
    let sealed = tool_secret(&tool, "/headers/Authorization");
    let checks = w.schemas.calls();

    let mut document = weather_tool(&json!({"Authorization": {"set": true}})).configuration;
    document["method"] = json!("POST");
    let changed = w
        .update_tool(
            agent.id,
            tool.id,
            ToolChanges {
                configuration: Some(document),
                ..ToolChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tool_secret(&changed, "/headers/Authorization"), sealed);
    let ToolConfiguration::Api(call) = &changed.settings.configuration else {
        panic!("not an API call")
    };
    assert_eq!(call.method.as_str(), "POST");
    assert_eq!(w.schemas.calls(), checks + 1);

    // A built-in function's document is not an API call's.
    let invalid = invalid_tool(
        w.update_tool(
            agent.id,
            tool.id,
            ToolChanges {
                configuration: Some(json!({"function": "current_time"})),
                ..ToolChanges::default()
            },
        )
        .await,
    );
    assert!(pointers(&invalid).contains(&"/configuration/function"));
    assert_eq!(
        w.agents
            .stored_tool(tool.id)
            .unwrap()
            .settings
            .configuration
            .tool_type(),
        ToolType::Api
    );
}

#[tokio::test]
async fn tool_names_are_unique_per_agent_and_only_its_owner_changes_its_tools() {
    let w = world();
    let agent = w.agent(&w.owner, AgentStatus::Active).await;
    let weather = w
        .service
        .create_tool(&w.owner, agent.id, &weather_tool(&json!({})))
        .await
        .unwrap();
    assert!(matches!(
        w.service
            .create_tool(&w.owner, agent.id, &weather_tool(&json!({})))
            .await,
        Err(ToolError::DuplicateName(name)) if name.as_str() == "weather"
    ));
    let clock = w
        .service
        .create_tool(
            &w.owner,
            agent.id,
            &NewTool {
                name: ToolName::parse("clock").unwrap(),
                description: None,
                tool_type: ToolType::Function,
                configuration: json!({"function": "current_time"}),
                enabled: true,
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        w.update_tool(
            agent.id,
            clock.id,
            ToolChanges {
                name: Some(ToolName::parse("weather").unwrap()),
                ..ToolChanges::default()
            },
        )
        .await,
        Err(ToolError::DuplicateName(_))
    ));
    // Another agent may have a tool of the same name.
    let other_agent = w.agent(&w.owner, AgentStatus::Active).await;
    w.service
        .create_tool(&w.owner, other_agent.id, &weather_tool(&json!({})))
        .await
        .unwrap();

    assert!(matches!(
        w.service
            .create_tool(&w.other, agent.id, &pets_plugin("pets"))
            .await,
        Err(ToolError::Forbidden)
    ));
    assert!(matches!(
        w.service
            .update_tool(&w.other, agent.id, weather.id, &ToolChanges::default())
            .await,
        Err(ToolError::Forbidden)
    ));
    assert!(matches!(
        w.service.delete_tool(&w.other, agent.id, weather.id).await,
        Err(ToolError::Forbidden)
    ));
    assert!(matches!(
        w.update_tool(agent.id, AgentToolId::new_random(), ToolChanges::default())
            .await,
        Err(ToolError::ToolNotFound)
    ));

    w.service
        .delete_tool(&w.owner, agent.id, weather.id)
        .await
        .unwrap();
    assert!(matches!(
        w.service.delete_tool(&w.owner, agent.id, weather.id).await,
        Err(ToolError::ToolNotFound)
    ));
    assert!(matches!(
        w.service
            .delete_tool(&w.owner, AgentId::new_random(), clock.id)
            .await,
        Err(ToolError::AgentNotFound)
    ));
}
