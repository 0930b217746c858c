//! Agent steps: an LLM agent of the catalog answering the step's rendered prompt.
//!
//! This module owns the conversations themselves:
//! - `semantic_kernel`: one chat-completions conversation (system prompt, the prompt, model,
//!   temperature, answer limit) offering the agent's enabled tools as functions; the model's
//!   tool calls are made and answered until it answers in words, for at most
//!   [`MAX_TOOL_ROUNDS`] rounds of calls;
//! - `autogen`: a round-robin group conversation, each participant speaking in turn (seeing the
//!   task and everything said so far) until one says the termination phrase or `max_rounds`
//!   turns were taken; the transcript is part of the output;
//! - `custom`: the conversation POSTed to the agent's endpoint (the `customAgentTurn` webhook of
//!   the API description), whose reply is the answer.
//!
//! Agents are read past row level security (the engine acts for the workflow, whose version was
//! checked when it was published) and their secrets are opened only for the step, every one of
//! them hidden from what the step records. Every model, endpoint and tool call is a log line
//! with the model, its latency and token usage; the output carries the answer and the total.

mod answer;
mod calls;
mod record;
mod tools;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, CreateChatCompletionRequest, FunctionCall,
};
use ipa_agent::{
    AgentConfiguration, AgentRepository, AgentStatus, EndpointConfiguration, GroupConfiguration,
    PlainSecret, Provider, SecretOpener, reveal_agent, reveal_tool,
};
use ipa_execution::LogLevel;
use ipa_kernel::{Actor, AgentId, ExecutionId};
use serde_json::{Value, json};

use self::answer::{Turn, embedded_error, json_body, read_completion};
use self::calls::{ChatEndpoint, MODEL_CALL_TIMEOUT, merge, post_with_retries};
pub(crate) use self::record::Recorder;
use self::record::{Tally, Usage};
use self::tools::{ToolBox, ToolEnv, header_pairs, result_text};
use crate::outbound::OutboundClient;
use ipa_template::{JsonSchemas, Templates};

/// The most rounds of tool calls in one answer: a model still calling tools after that many is
/// stopped (it is most likely looping), failing the step.
pub const MAX_TOOL_ROUNDS: u32 = 10;

/// The most characters of a function name a model asked for quoted in a log line (the names
/// offered are far shorter).
const MAX_QUOTED_NAME_CHARS: usize = 100;

/// How deep group conversations may nest (a group among the participants of a group...).
const MAX_GROUP_DEPTH: usize = 4;

/// OpenAI's API root, unless configured otherwise.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// Runs agent steps.
pub struct AgentRunner<A> {
    agents: Arc<A>,
    opener: Arc<dyn SecretOpener>,
    client: OutboundClient,
    templates: Templates,
    openai_base_url: String,
}

impl<A> Clone for AgentRunner<A> {
    fn clone(&self) -> Self {
        Self {
            agents: Arc::clone(&self.agents),
            opener: Arc::clone(&self.opener),
            client: self.client.clone(),
            templates: self.templates.clone(),
            openai_base_url: self.openai_base_url.clone(),
        }
    }
}

/// The step an agent answers for.
pub(crate) struct StepCall<'a> {
    /// The run.
    pub execution_id: ExecutionId,
    /// The step's name.
    pub step_name: &'a str,
    /// The run's data (`{"input", "steps"}`), which built-in functions read.
    pub context: &'a Value,
    /// When the step runs out of time, if it has a limit: retries never wait past it (the engine
    /// itself stops the conversation there).
    pub limit: Option<Instant>,
    /// Where its lines go.
    pub recorder: &'a Recorder,
}

/// An agent ready to speak: settings read, secrets open, enabled tools gathered.
struct Speaker {
    id: AgentId,
    name: String,
    system_prompt: Option<String>,
    model: Option<String>,
    temperature: f64,
    max_tokens: u32,
    configuration: AgentConfiguration<PlainSecret>,
    tools: ToolBox,
}

/// One message of a conversation: the task (no speaker) or what a participant said.
#[derive(Clone)]
struct Said {
    speaker: Option<(AgentId, String)>,
    content: String,
}

/// Who says what to a model, before it becomes the wire format.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// How a group conversation ended.
struct GroupRun {
    transcript: Vec<Said>,
    ended_by_phrase: bool,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl<A: AgentRepository> AgentRunner<A> {
    /// A runner reading agents from `agents`, opening their secrets with `opener`, calling out
    /// with `client`; `openai_base_url` is where `openai` providers are called.
    pub fn new(
        agents: Arc<A>,
        opener: Arc<dyn SecretOpener>,
        client: OutboundClient,
        templates: Templates,
        openai_base_url: String,
    ) -> Self {
        Self {
            agents,
            opener,
            client,
            templates,
            openai_base_url,
        }
    }

    /// Has agent `agent_id` answer `prompt`; the output, or why the step fails. Both are
    /// redacted.
    pub(crate) async fn run(
        &self,
        agent_id: AgentId,
        prompt: String,
        step: &StepCall<'_>,
    ) -> Result<Value, String> {
        let result = self.converse(agent_id, prompt, step).await;
        match result {
            Ok(output) => Ok(step.recorder.redact(output)),
            Err(error) => Err(step.recorder.redact_text(&error)),
        }
    }

    async fn converse(
        &self,
        agent_id: AgentId,
        prompt: String,
        step: &StepCall<'_>,
    ) -> Result<Value, String> {
        let agent = self.load(agent_id, step.recorder).await?;
        let mut tally = Tally::default();
        let task = Said {
            speaker: None,
            content: prompt,
        };
        if let AgentConfiguration::Autogen(group) = &agent.configuration {
            let run = self
                .group(&agent, group, &[task], step, &mut tally, 1)
                .await?;
            let answer = run
                .transcript
                .last()
                .map_or_else(String::new, |said| said.content.clone());
            // The task has no speaker: only what participants said.
            let transcript: Vec<Value> = run
                .transcript
                .iter()
                .filter_map(|said| {
                    said.speaker.as_ref().map(|(id, name)| {
                        json!({"agent_id": id.as_uuid(), "agent": name, "content": said.content})
                    })
                })
                .collect();
            return Ok(json!({
                "answer": answer,
                "transcript": transcript,
                "rounds": transcript.len(),
                "ended_by": if run.ended_by_phrase { "termination_phrase" } else { "max_rounds" },
                "usage": tally.usage,
                "model_calls": tally.model_calls,
                "tool_calls": tally.tool_calls,
            }));
        }
        let answer = self.answer(&agent, &[task], step, &mut tally, 0).await?;
        Ok(json!({
            "answer": answer,
            "model": agent.model,
            "usage": tally.usage,
            "model_calls": tally.model_calls,
            "tool_calls": tally.tool_calls,
        }))
    }

    /// Reads agent `id` for a step: it must exist and not be inactive; its secrets (and its
    /// enabled tools') are opened and hidden from the record.
    async fn load(&self, id: AgentId, recorder: &Recorder) -> Result<Speaker, String> {
        let system = Actor::system();
        let agent = self
            .agents
            .find(&system, id)
            .await
            .map_err(|error| format!("agent {id} could not be read: {error}"))?
            .ok_or_else(|| {
                format!("agent {id} no longer exists; publish a version naming another")
            })?;
        let name = agent.settings.name.as_str().to_owned();
        if agent.settings.status == AgentStatus::Inactive {
            return Err(format!(
                "agent '{name}' is inactive; activate it, or publish a version naming another agent"
            ));
        }
        let secret_problem = |place: String, problems: Vec<ipa_agent::DocumentProblem>| {
            let list: Vec<String> = problems
                .into_iter()
                .map(|problem| format!("{place}{}: {}", problem.pointer, problem.message))
                .collect();
            format!(
                "a secret of agent '{name}' cannot be used: {}",
                list.join("; ")
            )
        };
        let configuration = reveal_agent(id, &agent.settings.configuration, &*self.opener)
            .map_err(|problems| secret_problem("configuration".to_owned(), problems))?;
        for secret in configuration.secrets_by_pointer().values() {
            recorder.hide(secret.expose());
        }
        let tools = self
            .agents
            .tools(&system, id)
            .await
            .map_err(|error| format!("the tools of agent '{name}' could not be read: {error}"))?
            .unwrap_or_default();
        let mut enabled = Vec::new();
        for tool in tools.into_iter().filter(|tool| tool.settings.enabled) {
            let revealed = reveal_tool(&tool, &*self.opener).map_err(|problems| {
                secret_problem(format!("tool '{}' ", tool.settings.name), problems)
            })?;
            for secret in revealed.secrets_by_pointer().values() {
                recorder.hide(secret.expose());
            }
            enabled.push((tool, revealed));
        }
        Ok(Speaker {
            id,
            name,
            system_prompt: agent
                .settings
                .system_prompt
                .as_ref()
                .map(|prompt| prompt.as_str().to_owned()),
            model: agent.settings.model.as_ref().map(|m| m.as_str().to_owned()),
            temperature: agent.settings.temperature.as_f64(),
            max_tokens: agent.settings.max_tokens.get(),
            configuration,
            tools: ToolBox::new(enabled),
        })
    }

    /// What `agent` says next in `conversation` (the task first, then what was said).
    fn answer<'a>(
        &'a self,
        agent: &'a Speaker,
        conversation: &'a [Said],
        step: &'a StepCall<'a>,
        tally: &'a mut Tally,
        depth: usize,
    ) -> Boxed<'a, Result<String, String>> {
        Box::pin(async move {
            match &agent.configuration {
                AgentConfiguration::SemanticKernel(model) => {
                    self.chat(agent, &model.provider, conversation, step, tally)
                        .await
                }
                AgentConfiguration::Custom(endpoint) => {
                    self.custom(agent, endpoint, conversation, step, tally)
                        .await
                }
                AgentConfiguration::Autogen(group) => {
                    let run = self
                        .group(agent, group, conversation, step, tally, depth + 1)
                        .await?;
                    Ok(run
                        .transcript
                        .last()
                        .map_or_else(String::new, |said| said.content.clone()))
                }
            }
        })
    }

    /// A round-robin conversation among `group`'s participants, after `before`.
    async fn group(
        &self,
        agent: &Speaker,
        group: &GroupConfiguration<PlainSecret>,
        before: &[Said],
        step: &StepCall<'_>,
        tally: &mut Tally,
        depth: usize,
    ) -> Result<GroupRun, String> {
        if depth > MAX_GROUP_DEPTH {
            return Err(format!(
                "group conversations nest more than {MAX_GROUP_DEPTH} deep at '{}'",
                agent.name
            ));
        }
        let mut participants = Vec::with_capacity(group.participants.len());
        for id in &group.participants {
            let participant = self
                .load(*id, step.recorder)
                .await
                .map_err(|error| format!("in group '{}': {error}", agent.name))?;
            participants.push(participant);
        }
        if participants.is_empty() {
            return Err(format!("group '{}' has no participants", agent.name));
        }
        let mut transcript = before.to_vec();
        let phrase = group
            .termination_phrase
            .as_deref()
            .filter(|phrase| !phrase.is_empty());
        let rounds = usize::try_from(group.max_rounds).unwrap_or(usize::MAX);
        for round in 0..rounds {
            let speaker = &participants[round % participants.len()];
            let content = self
                .answer(speaker, &transcript, step, tally, depth)
                .await?;
            let ends = phrase.is_some_and(|phrase| content.contains(phrase));
            step.recorder.line(
                LogLevel::Info,
                format!(
                    "Round {} of {rounds} in group '{}': '{}' spoke{}",
                    round + 1,
                    agent.name,
                    speaker.name,
                    if ends {
                        " and ended the conversation"
                    } else {
                        ""
                    }
                ),
                json!({
                    "kind": "group_turn",
                    "group": agent.name,
                    "agent": speaker.name,
                    "agent_id": speaker.id.as_uuid(),
                    "round": round + 1,
                    // The whole of it is in the output's transcript.
                    "content": crate::clip(&content, crate::QUOTE_CHARS),
                }),
            );
            transcript.push(Said {
                speaker: Some((speaker.id, speaker.name.clone())),
                content,
            });
            if ends {
                return Ok(GroupRun {
                    transcript,
                    ended_by_phrase: true,
                });
            }
        }
        Ok(GroupRun {
            transcript,
            ended_by_phrase: false,
        })
    }

    /// A chat-completions conversation with `agent`'s tools until the model answers.
    async fn chat(
        &self,
        agent: &Speaker,
        provider: &Provider<PlainSecret>,
        conversation: &[Said],
        step: &StepCall<'_>,
        tally: &mut Tally,
    ) -> Result<String, String> {
        let endpoint = ChatEndpoint::of(provider, &self.openai_base_url);
        let model = agent.model.clone().unwrap_or_default();
        let mut messages: Vec<ChatCompletionRequestMessage> = said_to(agent, conversation)
            .into_iter()
            .map(|(role, content)| wire_message(role, content))
            .collect();
        // Only for the wire type; the body carries the exact value (below).
        #[allow(clippy::cast_possible_truncation)]
        let temperature = agent.temperature as f32;
        let offered = agent.tools.offered();
        let what = format!("model {model} ({})", endpoint.provider);
        let detail = json!({
            "kind": "model_call",
            "agent": agent.name,
            "agent_id": agent.id.as_uuid(),
            "provider": endpoint.provider,
            "model": model,
        });
        let env = ToolEnv {
            client: &self.client,
            recorder: step.recorder,
            templates: &self.templates,
            schemas: &JsonSchemas,
            context: step.context,
        };
        for round in 0..=MAX_TOOL_ROUNDS {
            let request = CreateChatCompletionRequest {
                messages: messages.clone(),
                model: model.clone(),
                temperature: Some(temperature),
                max_completion_tokens: endpoint.completion_tokens_field.then_some(agent.max_tokens),
                #[allow(deprecated)]
                max_tokens: (!endpoint.completion_tokens_field).then_some(agent.max_tokens),
                tools: (!agent.tools.is_empty()).then(|| offered.clone()),
                ..CreateChatCompletionRequest::default()
            };
            let mut body = serde_json::to_value(&request)
                .map_err(|error| format!("the model request could not be written: {error}"))?;
            // The wire type holds an f32, which a JSON value widens to 0.20000000298023224;
            // providers get the temperature as configured.
            body["temperature"] = json!(agent.temperature);
            let answered = post_with_retries(
                &self.client,
                &endpoint.url,
                &endpoint.headers,
                body,
                MODEL_CALL_TIMEOUT,
                step.limit,
                &what,
                &detail,
                step.recorder,
            )
            .await?;
            // Secrets are hidden before anything is read or clipped, so no cut can split one.
            let mut response = answered.response;
            response.body = step.recorder.redact(std::mem::take(&mut response.body));
            let reply = read_completion(&response);
            let usage = reply.usage.unwrap_or_default();
            tally.usage.add(usage);
            tally.model_calls += 1;
            // The model's words: a name it made up may be of any length.
            let names: Vec<String> = match &reply.turn {
                Ok(Turn::Calls { calls, .. }) => calls
                    .iter()
                    .map(|c| crate::clip(&c.name, MAX_QUOTED_NAME_CHARS))
                    .collect(),
                _ => Vec::new(),
            };
            let mut context = json!({
                "latency_ms": answered.latency_ms,
                "attempt": answered.attempt,
                "status_code": response.status,
                "usage": usage,
                "finish_reason": reply.finish_reason,
                "tool_calls": names,
            });
            merge(&mut context, &detail);
            let (level, message) = match &reply.turn {
                Ok(turn) => {
                    let summary = match turn {
                        Turn::Answer(_) => "answered".to_owned(),
                        Turn::Calls { .. } => {
                            format!(
                                "called {}",
                                crate::clip(&names.join(", "), crate::QUOTE_CHARS)
                            )
                        }
                    };
                    (
                        LogLevel::Info,
                        format!(
                            "Model {model} {summary} in {} ms ({} tokens)",
                            answered.latency_ms, usage.total_tokens
                        ),
                    )
                }
                Err(reason) => {
                    context["error"] = json!(reason);
                    (
                        LogLevel::Error,
                        format!(
                            "Model {model} {reason} ({} ms, {} tokens)",
                            answered.latency_ms, usage.total_tokens
                        ),
                    )
                }
            };
            step.recorder.line(level, message, context);
            let (content, calls) = match reply.turn {
                Ok(Turn::Answer(answer)) => return Ok(answer),
                Ok(Turn::Calls { content, calls }) => (content, calls),
                Err(reason) => return Err(format!("{what} {reason}")),
            };
            if round == MAX_TOOL_ROUNDS {
                break;
            }
            messages.push(ChatCompletionRequestMessage::Assistant(
                ChatCompletionRequestAssistantMessage {
                    content: content.map(ChatCompletionRequestAssistantMessageContent::Text),
                    tool_calls: Some(
                        calls
                            .iter()
                            .map(|call| {
                                ChatCompletionMessageToolCalls::Function(
                                    ChatCompletionMessageToolCall {
                                        id: call.id.clone(),
                                        function: FunctionCall {
                                            name: call.name.clone(),
                                            arguments: call.arguments.clone(),
                                        },
                                    },
                                )
                            })
                            .collect(),
                    ),
                    ..ChatCompletionRequestAssistantMessage::default()
                },
            ));
            for call in calls {
                let key = format!(
                    "{}:{}:{}",
                    step.execution_id.as_uuid(),
                    step.step_name,
                    call.id
                );
                let began = Instant::now();
                let made = agent
                    .tools
                    .call(&call.name, &call.arguments, &key, &env)
                    .await;
                let latency_ms = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
                tally.tool_calls += 1;
                // The model's words: quoted clipped, like any remote text.
                let function = crate::clip(&call.name, MAX_QUOTED_NAME_CHARS);
                let arguments: Value =
                    serde_json::from_str(&call.arguments).unwrap_or_else(|_| json!(call.arguments));
                let mut context = json!({
                    "kind": "tool_call",
                    "function": function,
                    "tool": made.tool.as_ref().map(|(name, _)| name),
                    "tool_type": made.tool.as_ref().map(|(_, tool_type)| tool_type.as_str()),
                    "arguments": crate::clip_value(&arguments),
                    "latency_ms": latency_ms,
                    "status_code": made.status_code,
                    "ok": made.outcome.is_ok(),
                    "usage": Usage::default(),
                    "agent": agent.name,
                    "agent_id": agent.id.as_uuid(),
                    "model": model,
                });
                match &made.outcome {
                    Ok(_) => step.recorder.line(
                        LogLevel::Info,
                        format!("Tool {function} answered in {latency_ms} ms"),
                        context,
                    ),
                    Err(error) => {
                        // The model reads the whole error (up to a tool result's length); the
                        // record keeps its beginning.
                        let error = crate::clip(error, crate::QUOTE_CHARS);
                        context["error"] = json!(error);
                        step.recorder.line(
                            LogLevel::Warning,
                            format!(
                                "Tool {function} failed in {latency_ms} ms: {error}; the model is \
                                 told"
                            ),
                            context,
                        );
                    }
                }
                messages.push(ChatCompletionRequestMessage::Tool(
                    ChatCompletionRequestToolMessage {
                        content: ChatCompletionRequestToolMessageContent::Text(
                            step.recorder.redact_text(&result_text(&made.outcome)),
                        ),
                        tool_call_id: call.id,
                    },
                ));
            }
        }
        Err(format!(
            "{what} was still calling tools after {MAX_TOOL_ROUNDS} rounds of tool calls without \
             answering; check the agent's tools and system prompt"
        ))
    }

    /// A `custom` agent's turn: the conversation POSTed to its endpoint.
    async fn custom(
        &self,
        agent: &Speaker,
        endpoint: &EndpointConfiguration<PlainSecret>,
        conversation: &[Said],
        step: &StepCall<'_>,
        tally: &mut Tally,
    ) -> Result<String, String> {
        let messages: Vec<Value> = said_to(agent, conversation)
            .into_iter()
            .map(|(role, content)| json!({"role": role.as_str(), "content": content}))
            .collect();
        let body = json!({
            "agent_id": agent.id.as_uuid(),
            "execution_id": step.execution_id.as_uuid(),
            "step": step.step_name,
            "messages": messages,
            "model": agent.model,
            "temperature": agent.temperature,
            "max_tokens": agent.max_tokens,
        });
        let headers = header_pairs(&endpoint.headers);
        let what = format!("the endpoint of agent '{}'", agent.name);
        let detail = json!({
            "kind": "custom_call",
            "agent": agent.name,
            "agent_id": agent.id.as_uuid(),
            "model": agent.model,
        });
        let answered = post_with_retries(
            &self.client,
            endpoint.endpoint.as_str(),
            &headers,
            body,
            std::time::Duration::from_secs(u64::from(endpoint.timeout_seconds)),
            step.limit,
            &what,
            &detail,
            step.recorder,
        )
        .await?;
        // Secrets are hidden before anything is read or clipped, so no cut can split one.
        let mut response = answered.response;
        response.body = step.recorder.redact(std::mem::take(&mut response.body));
        let reply = json_body(&response);
        let count = |name: &str| {
            reply
                .as_ref()
                .ok()
                .and_then(|reply| reply.pointer(&format!("/usage/{name}")))
                .and_then(Value::as_u64)
        };
        let usage = Usage::new(
            count("prompt_tokens").unwrap_or(0),
            count("completion_tokens").unwrap_or(0),
            count("total_tokens"),
        );
        tally.usage.add(usage);
        tally.model_calls += 1;
        let content = reply.and_then(|reply| match reply.get("content") {
            Some(Value::String(content)) => Ok(content.clone()),
            _ => Err(embedded_error(response.status, &reply).unwrap_or_else(|| {
                "answered without a `content` string; it must answer \
                     {\"content\": \"...\", \"usage\": {...}}"
                    .to_owned()
            })),
        });
        let mut context = json!({
            "latency_ms": answered.latency_ms,
            "attempt": answered.attempt,
            "status_code": response.status,
            "usage": usage,
        });
        merge(&mut context, &detail);
        let (level, message) = match &content {
            Ok(_) => (
                LogLevel::Info,
                format!(
                    "The endpoint of agent '{}' answered in {} ms ({} tokens)",
                    agent.name, answered.latency_ms, usage.total_tokens
                ),
            ),
            Err(reason) => {
                context["error"] = json!(reason);
                (
                    LogLevel::Error,
                    format!(
                        "The endpoint of agent '{}' {reason} ({} ms, {} tokens)",
                        agent.name, answered.latency_ms, usage.total_tokens
                    ),
                )
            }
        };
        step.recorder.line(level, message, context);
        content.map_err(|reason| format!("{what} {reason}"))
    }
}

/// The conversation as `agent` reads it: its system prompt, the task, then what was said, its
/// own words as the assistant's and everyone else's as user messages headed by the speaker's
/// name.
fn said_to(agent: &Speaker, conversation: &[Said]) -> Vec<(Role, String)> {
    let mut messages = Vec::with_capacity(conversation.len() + 1);
    if let Some(prompt) = &agent.system_prompt {
        messages.push((Role::System, prompt.clone()));
    }
    for said in conversation {
        match &said.speaker {
            None => messages.push((Role::User, said.content.clone())),
            Some((id, _)) if *id == agent.id => {
                messages.push((Role::Assistant, said.content.clone()));
            }
            Some((_, name)) => messages.push((Role::User, format!("{name}: {}", said.content))),
        }
    }
    messages
}

fn wire_message(role: Role, content: String) -> ChatCompletionRequestMessage {
    match role {
        Role::System => ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
            content: ChatCompletionRequestSystemMessageContent::Text(content),
            name: None,
        }),
        Role::User => ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
            content: ChatCompletionRequestUserMessageContent::Text(content),
            name: None,
        }),
        Role::Assistant => {
            ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
                content: Some(ChatCompletionRequestAssistantMessageContent::Text(content)),
                ..ChatCompletionRequestAssistantMessage::default()
            })
        }
    }
}
