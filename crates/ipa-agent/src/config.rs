//! Agent configurations, one shape per agent type, and the parts they share (model providers,
//! HTTP headers). Every shape is generic over how its secrets are held: [`SecretInput`] as a
//! client wrote them, [`StoredSecret`] once sealed, so one parser and one writer serve the
//! request, storage and the response (where secrets show only as set).
//!
//! [`SecretInput`]: crate::SecretInput
//! [`StoredSecret`]: crate::StoredSecret

use std::collections::{HashMap, HashSet};

use ipa_kernel::AgentId;
use serde_json::{Map, Value, json};

use crate::AgentType;
use crate::document::{Object, Problems, child, type_name};
use crate::ports::DocumentProblem;
use crate::values::HttpUrl;

/// Reads a secret in the form the document is in (a client's input, or storage's).
pub type ReadSecret<'r, S> = &'r mut dyn FnMut(&Value) -> Result<S, String>;

/// Turns one secret into another form, given its pointer in the document (sealing a client's
/// value, keeping a stored one): `Err` is the problem's message.
pub type MapSecret<'r, S, T> = &'r mut dyn FnMut(S, &str) -> Result<T, String>;

/// Every secret of a document with its pointer, found by letting `map_secrets` visit them (each
/// mapped to itself, which cannot fail).
pub(crate) fn collect_secrets<S: Clone>(
    map_secrets: impl FnOnce(MapSecret<'_, S, S>),
) -> HashMap<String, S> {
    let mut found = HashMap::new();
    map_secrets(&mut |secret: S, pointer: &str| {
        found.insert(pointer.to_owned(), secret.clone());
        Ok(secret)
    });
    found
}

fn read_secret<S>(
    value: &Value,
    pointer: &str,
    read: ReadSecret<'_, S>,
    problems: &mut Problems,
) -> Option<S> {
    read(value)
        .map_err(|message| problems.add(pointer, message))
        .ok()
}

fn map_secret<S, T>(
    secret: S,
    pointer: &str,
    map: MapSecret<'_, S, T>,
    problems: &mut Problems,
) -> Option<T> {
    map(secret, pointer)
        .map_err(|message| problems.add(pointer, message))
        .ok()
}

/// A header's value: plain text, or a secret (an API key, a bearer token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue<S> {
    /// Shown and stored as is.
    Plain(String),
    /// Write-only.
    Secret(S),
}

/// HTTP headers sent with a call: names are HTTP tokens, values printable; those the client
/// library manages itself are refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headers<S>(Vec<(String, HeaderValue<S>)>);

impl<S> Default for Headers<S> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

/// The longest header name, in bytes.
pub const MAX_HEADER_NAME_BYTES: usize = 128;
/// The longest header value, in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 8192;
/// The longest name part of a provider (an organization, a deployment, an API version), in bytes.
pub const MAX_SHORT_NAME_BYTES: usize = 64;
/// The most seconds a call to an endpoint (a custom agent's, a tool's) may be given.
pub const MAX_CALL_TIMEOUT_SECONDS: u32 = 600;
/// A custom agent's endpoint timeout when none is configured.
pub const DEFAULT_ENDPOINT_TIMEOUT_SECONDS: u32 = 60;
/// The fewest participants of a group conversation.
pub const MIN_PARTICIPANTS: usize = 2;
/// The most rounds of a group conversation.
pub const MAX_ROUNDS: u32 = 100;
/// The rounds of a group conversation when none are configured.
pub const DEFAULT_ROUNDS: u32 = 10;
/// The longest phrase that ends a group conversation.
pub const MAX_TERMINATION_PHRASE_CHARS: usize = 200;

/// Headers the HTTP client sets itself: a configuration may not override them.
const MANAGED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
];

impl<S> Headers<S> {
    /// Headers from pairs, unchecked (for tests).
    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: Vec<(String, HeaderValue<S>)>) -> Self {
        Self(pairs)
    }

    /// The most headers a configuration may set.
    pub const MAX: usize = 32;

    /// The headers in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &HeaderValue<S>)> {
        self.0.iter().map(|(name, value)| (name.as_str(), value))
    }

    /// Reads `{"Name": "value" | secret, ...}`.
    pub(crate) fn parse(
        value: &Value,
        pointer: &str,
        read: ReadSecret<'_, S>,
        problems: &mut Problems,
    ) -> Option<Self> {
        let Some(members) = value.as_object() else {
            problems.add(
                pointer,
                format!(
                    "`headers` must be an object of header names to values, not {}",
                    type_name(value)
                ),
            );
            return None;
        };
        if members.len() > Self::MAX {
            problems.add(pointer, format!("at most {} headers", Self::MAX));
            return None;
        }
        let before = problems.count();
        let mut headers = Vec::new();
        for (name, value) in members {
            let at = child(pointer, name);
            let token = !name.is_empty()
                && name.len() <= MAX_HEADER_NAME_BYTES
                && name
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte));
            if !token {
                problems.add(&at, format!("`{name}` is not a valid HTTP header name"));
                continue;
            }
            if MANAGED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                problems.add(
                    &at,
                    format!("`{name}` is set by the HTTP client and cannot be configured"),
                );
                continue;
            }
            let header = match value {
                Value::String(text) => {
                    if text.len() > MAX_HEADER_VALUE_BYTES
                        || text.chars().any(|c| c.is_control() && c != '\t')
                    {
                        problems.add(
                            &at,
                            "a header value has at most 8,192 characters and no line breaks",
                        );
                        continue;
                    }
                    HeaderValue::Plain(text.clone())
                }
                Value::Object(_) => match read_secret(value, &at, read, problems) {
                    Some(secret) => HeaderValue::Secret(secret),
                    None => continue,
                },
                other => {
                    problems.add(
                        &at,
                        format!(
                            "a header value is a string or a secret ({{\"env\": \"NAME\"}} or \
                             {{\"value\": \"...\"}}), not {}",
                            type_name(other)
                        ),
                    );
                    continue;
                }
            };
            headers.push((name.clone(), header));
        }
        (problems.count() == before).then_some(Self(headers))
    }

    pub(crate) fn to_json_with(&self, write: &dyn Fn(&S) -> Value) -> Value {
        let members: Map<String, Value> = self
            .0
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    HeaderValue::Plain(text) => Value::String(text.clone()),
                    HeaderValue::Secret(secret) => write(secret),
                };
                (name.clone(), value)
            })
            .collect();
        Value::Object(members)
    }

    pub(crate) fn map_at<T>(
        self,
        pointer: &str,
        map: MapSecret<'_, S, T>,
        problems: &mut Problems,
    ) -> Option<Headers<T>> {
        let mut headers = Vec::with_capacity(self.0.len());
        let mut complete = true;
        for (name, value) in self.0 {
            let value = match value {
                HeaderValue::Plain(text) => HeaderValue::Plain(text),
                HeaderValue::Secret(secret) => {
                    match map_secret(secret, &child(pointer, &name), map, problems) {
                        Some(secret) => HeaderValue::Secret(secret),
                        None => {
                            complete = false;
                            continue;
                        }
                    }
                }
            };
            headers.push((name, value));
        }
        complete.then_some(Headers(headers))
    }
}

ipa_kernel::label_enum!(
    /// Which chat-completions service a model is reached through.
    ProviderKind, "provider" {
        /// api.openai.com.
        OpenAi => "openai",
        /// An Azure OpenAI resource: deployment-style URLs and an `api-key` header.
        AzureOpenAi => "azure_openai",
        /// Any server speaking the OpenAI chat-completions API (vLLM, Ollama, LiteLLM...).
        OpenAiCompatible => "openai_compatible",
    }
);

/// How a model is reached, with its credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provider<S> {
    /// OpenAI itself.
    OpenAi {
        /// The API key.
        api_key: S,
        /// The organization to bill, when the key belongs to several.
        organization: Option<String>,
    },
    /// Azure OpenAI.
    AzureOpenAi {
        /// The resource's endpoint (`https://NAME.openai.azure.com`).
        endpoint: HttpUrl,
        /// The model deployment's name.
        deployment: String,
        /// The API version (`2024-10-21`).
        api_version: String,
        /// The resource's key, sent as `api-key`.
        api_key: S,
    },
    /// An OpenAI-compatible server.
    OpenAiCompatible {
        /// Its base URL, up to and including `/v1` where it has one.
        base_url: HttpUrl,
        /// Its key, when it wants one (a local Ollama does not).
        api_key: Option<S>,
    },
}

/// A short name part: 1 to 64 of letters, digits, `.`, `_`, `-`.
fn short_name(text: &str) -> bool {
    (1..=MAX_SHORT_NAME_BYTES).contains(&text.len())
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte))
}

impl<S> Provider<S> {
    /// Which service.
    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::OpenAi { .. } => ProviderKind::OpenAi,
            Self::AzureOpenAi { .. } => ProviderKind::AzureOpenAi,
            Self::OpenAiCompatible { .. } => ProviderKind::OpenAiCompatible,
        }
    }

    pub(crate) fn parse(
        value: &Value,
        pointer: &str,
        read: ReadSecret<'_, S>,
        problems: &mut Problems,
    ) -> Option<Self> {
        let mut object = Object::read(value, pointer, "`provider`", problems)?;
        let before = problems.count();
        let kind = object.required_str("type", problems).and_then(|label| {
            label
                .parse::<ProviderKind>()
                .map_err(|error| problems.add(&object.at("type"), error.to_string()))
                .ok()
        });
        let secret = |object: &mut Object<'_>,
                      key: &'static str,
                      required: bool,
                      read: ReadSecret<'_, S>,
                      problems: &mut Problems| {
            let value = if required {
                object.required(key, problems)
            } else {
                object.get(key)
            }?;
            read_secret(value, &object.at(key), read, problems)
        };
        let url = |object: &mut Object<'_>, key: &'static str, problems: &mut Problems| {
            let text = object.required_str(key, problems)?;
            HttpUrl::parse(text)
                .map_err(|message| problems.add(&object.at(key), message))
                .ok()
        };
        let provider = match kind? {
            ProviderKind::OpenAi => {
                let api_key = secret(&mut object, "api_key", true, read, problems);
                let organization = object.optional_str("organization", problems);
                if organization.is_some_and(|name| !short_name(name)) {
                    problems.add(
                        &object.at("organization"),
                        "`organization` is an OpenAI organization id (letters, digits, `.`, `_`, `-`)",
                    );
                }
                api_key.map(|api_key| Self::OpenAi {
                    api_key,
                    organization: organization.map(str::to_owned),
                })
            }
            ProviderKind::AzureOpenAi => {
                let endpoint = url(&mut object, "endpoint", problems);
                let deployment = object.required_str("deployment", problems);
                if deployment.is_some_and(|name| !short_name(name)) {
                    problems.add(
                        &object.at("deployment"),
                        "`deployment` is the model deployment's name: 1 to 64 letters, digits, `.`, `_`, `-`",
                    );
                }
                let api_version = object.required_str("api_version", problems);
                if api_version.is_some_and(|version| {
                    !short_name(version) || !version.starts_with(|c: char| c.is_ascii_digit())
                }) {
                    problems.add(
                        &object.at("api_version"),
                        "`api_version` is an Azure OpenAI API version such as 2024-10-21",
                    );
                }
                let api_key = secret(&mut object, "api_key", true, read, problems);
                match (endpoint, deployment, api_version, api_key) {
                    (Some(endpoint), Some(deployment), Some(api_version), Some(api_key)) => {
                        Some(Self::AzureOpenAi {
                            endpoint,
                            deployment: deployment.to_owned(),
                            api_version: api_version.to_owned(),
                            api_key,
                        })
                    }
                    _ => None,
                }
            }
            ProviderKind::OpenAiCompatible => {
                let base_url = url(&mut object, "base_url", problems);
                let api_key = secret(&mut object, "api_key", false, read, problems);
                base_url.map(|base_url| Self::OpenAiCompatible { base_url, api_key })
            }
        };
        object.finish(problems);
        provider.filter(|_| problems.count() == before)
    }

    pub(crate) fn to_json(&self, write: &dyn Fn(&S) -> Value) -> Value {
        let mut object = Map::new();
        object.insert("type".into(), self.kind().as_str().into());
        match self {
            Self::OpenAi {
                api_key,
                organization,
            } => {
                object.insert("api_key".into(), write(api_key));
                if let Some(organization) = organization {
                    object.insert("organization".into(), organization.as_str().into());
                }
            }
            Self::AzureOpenAi {
                endpoint,
                deployment,
                api_version,
                api_key,
            } => {
                object.insert("endpoint".into(), endpoint.as_str().into());
                object.insert("deployment".into(), deployment.as_str().into());
                object.insert("api_version".into(), api_version.as_str().into());
                object.insert("api_key".into(), write(api_key));
            }
            Self::OpenAiCompatible { base_url, api_key } => {
                object.insert("base_url".into(), base_url.as_str().into());
                if let Some(api_key) = api_key {
                    object.insert("api_key".into(), write(api_key));
                }
            }
        }
        Value::Object(object)
    }

    pub(crate) fn map<T>(
        self,
        pointer: &str,
        map: MapSecret<'_, S, T>,
        problems: &mut Problems,
    ) -> Option<Provider<T>> {
        let at = child(pointer, "api_key");
        Some(match self {
            Self::OpenAi {
                api_key,
                organization,
            } => Provider::OpenAi {
                api_key: map_secret(api_key, &at, map, problems)?,
                organization,
            },
            Self::AzureOpenAi {
                endpoint,
                deployment,
                api_version,
                api_key,
            } => Provider::AzureOpenAi {
                endpoint,
                deployment,
                api_version,
                api_key: map_secret(api_key, &at, map, problems)?,
            },
            Self::OpenAiCompatible { base_url, api_key } => Provider::OpenAiCompatible {
                base_url,
                api_key: match api_key {
                    Some(api_key) => Some(map_secret(api_key, &at, map, problems)?),
                    None => None,
                },
            },
        })
    }
}

/// A `semantic_kernel` agent: one model with function calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelConfiguration<S> {
    /// How the model is reached.
    pub provider: Provider<S>,
}

/// An `autogen` agent: a group conversation between other agents, moderated by a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfiguration<S> {
    /// The agents that take turns, in order; at least two, distinct.
    pub participants: Vec<AgentId>,
    /// The most rounds before the conversation stops.
    pub max_rounds: u32,
    /// A phrase that ends the conversation when a participant says it.
    pub termination_phrase: Option<String>,
    /// The moderator's model.
    pub provider: Provider<S>,
}

/// A `custom` agent: an HTTP endpoint of the user's own that answers the conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointConfiguration<S> {
    /// Where the conversation is POSTed.
    pub endpoint: HttpUrl,
    /// Headers sent with it (credentials as secrets).
    pub headers: Headers<S>,
    /// How long the endpoint may take to answer.
    pub timeout_seconds: u32,
}

/// An agent's configuration; its shape follows the agent's type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentConfiguration<S> {
    /// For `semantic_kernel`.
    SemanticKernel(ModelConfiguration<S>),
    /// For `autogen`.
    Autogen(GroupConfiguration<S>),
    /// For `custom`.
    Custom(EndpointConfiguration<S>),
}

impl<S> AgentConfiguration<S> {
    /// The most participants of a group conversation.
    pub const MAX_PARTICIPANTS: usize = 16;

    /// The agent type this configuration is for.
    pub fn agent_type(&self) -> AgentType {
        match self {
            Self::SemanticKernel(_) => AgentType::SemanticKernel,
            Self::Autogen(_) => AgentType::Autogen,
            Self::Custom(_) => AgentType::Custom,
        }
    }

    /// The agents of a group conversation (none for other types).
    pub fn participants(&self) -> &[AgentId] {
        match self {
            Self::Autogen(group) => &group.participants,
            _ => &[],
        }
    }

    /// Reads the configuration of an agent of type `agent_type`, reporting every problem at its
    /// pointer inside the configuration.
    pub fn parse(
        agent_type: AgentType,
        value: &Value,
        read: ReadSecret<'_, S>,
    ) -> Result<Self, Vec<DocumentProblem>> {
        let mut problems = Problems::default();
        let what = format!("the configuration of a {agent_type} agent");
        let configuration = Object::read(value, "", &what, &mut problems).and_then(|mut object| {
            let configuration = match agent_type {
                AgentType::SemanticKernel => {
                    let provider = object
                        .required("provider", &mut problems)
                        .and_then(|value| {
                            Provider::parse(value, &object.at("provider"), read, &mut problems)
                        });
                    provider.map(|provider| Self::SemanticKernel(ModelConfiguration { provider }))
                }
                AgentType::Autogen => {
                    parse_group(&mut object, read, &mut problems).map(Self::Autogen)
                }
                AgentType::Custom => {
                    let endpoint =
                        object
                            .required_str("endpoint", &mut problems)
                            .and_then(|text| {
                                HttpUrl::parse(text)
                                    .map_err(|message| {
                                        problems.add(&object.at("endpoint"), message)
                                    })
                                    .ok()
                            });
                    let headers = match object.get("headers") {
                        Some(value) => {
                            Headers::parse(value, &object.at("headers"), read, &mut problems)
                        }
                        None => Some(Headers::default()),
                    };
                    let timeout_seconds = object.integer_or(
                        "timeout_seconds",
                        1..=MAX_CALL_TIMEOUT_SECONDS,
                        DEFAULT_ENDPOINT_TIMEOUT_SECONDS,
                        &mut problems,
                    );
                    match (endpoint, headers, timeout_seconds) {
                        (Some(endpoint), Some(headers), Some(timeout_seconds)) => {
                            Some(Self::Custom(EndpointConfiguration {
                                endpoint,
                                headers,
                                timeout_seconds,
                            }))
                        }
                        _ => None,
                    }
                }
            };
            object.finish(&mut problems);
            configuration
        });
        problems.finish(configuration)
    }

    /// The JSON form, with each secret written by `write` (stored form, or shown as set).
    pub fn to_json(&self, write: &dyn Fn(&S) -> Value) -> Value {
        match self {
            Self::SemanticKernel(model) => json!({"provider": model.provider.to_json(write)}),
            Self::Autogen(group) => {
                let mut object = json!({
                    "participants": group.participants.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "max_rounds": group.max_rounds,
                    "provider": group.provider.to_json(write),
                });
                if let (Some(phrase), Some(members)) =
                    (&group.termination_phrase, object.as_object_mut())
                {
                    members.insert("termination_phrase".into(), phrase.as_str().into());
                }
                object
            }
            Self::Custom(endpoint) => json!({
                "endpoint": endpoint.endpoint.as_str(),
                "headers": endpoint.headers.to_json_with(write),
                "timeout_seconds": endpoint.timeout_seconds,
            }),
        }
    }

    /// Every secret with its pointer in the configuration.
    pub fn secrets_by_pointer(&self) -> HashMap<String, S>
    where
        S: Clone,
    {
        collect_secrets(|visit| {
            let _ = self.clone().map_secrets(visit);
        })
    }

    /// The same configuration with every secret turned into another form by `map`, given each
    /// secret's pointer; every refusal is reported.
    pub fn map_secrets<T>(
        self,
        map: MapSecret<'_, S, T>,
    ) -> Result<AgentConfiguration<T>, Vec<DocumentProblem>> {
        let mut problems = Problems::default();
        let mapped =
            match self {
                Self::SemanticKernel(model) => model
                    .provider
                    .map("/provider", map, &mut problems)
                    .map(|provider| {
                        AgentConfiguration::SemanticKernel(ModelConfiguration { provider })
                    }),
                Self::Autogen(group) => {
                    let GroupConfiguration {
                        participants,
                        max_rounds,
                        termination_phrase,
                        provider,
                    } = group;
                    provider
                        .map("/provider", map, &mut problems)
                        .map(|provider| {
                            AgentConfiguration::Autogen(GroupConfiguration {
                                participants,
                                max_rounds,
                                termination_phrase,
                                provider,
                            })
                        })
                }
                Self::Custom(endpoint) => {
                    let EndpointConfiguration {
                        endpoint,
                        headers,
                        timeout_seconds,
                    } = endpoint;
                    headers
                        .map_at("/headers", map, &mut problems)
                        .map(|headers| {
                            AgentConfiguration::Custom(EndpointConfiguration {
                                endpoint,
                                headers,
                                timeout_seconds,
                            })
                        })
                }
            };
        problems.finish(mapped)
    }
}

fn parse_group<S>(
    object: &mut Object<'_>,
    read: ReadSecret<'_, S>,
    problems: &mut Problems,
) -> Option<GroupConfiguration<S>> {
    let before = problems.count();
    let participants = object.required("participants", problems).and_then(|value| {
        let at = object.at("participants");
        let Some(items) = value.as_array() else {
            problems.add(&at, "`participants` must be an array of agent ids");
            return None;
        };
        if !(MIN_PARTICIPANTS..=AgentConfiguration::<S>::MAX_PARTICIPANTS).contains(&items.len()) {
            problems.add(
                &at,
                format!(
                    "a group conversation needs 2 to {} participants, this one has {}",
                    AgentConfiguration::<S>::MAX_PARTICIPANTS,
                    items.len()
                ),
            );
            // Refused on the count alone: the ids past the limit are not worth reading.
            if items.len() > AgentConfiguration::<S>::MAX_PARTICIPANTS {
                return None;
            }
        }
        let mut ids: Vec<AgentId> = Vec::with_capacity(items.len());
        let mut seen = HashSet::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let item_at = format!("{at}/{index}");
            match item.as_str().and_then(|text| text.parse::<AgentId>().ok()) {
                Some(id) if !seen.insert(id) => {
                    problems.add(&item_at, format!("agent {id} is listed twice"));
                }
                Some(id) => ids.push(id),
                None => problems.add(&item_at, "a participant is an agent id (a UUID)"),
            }
        }
        Some(ids)
    });
    let max_rounds = object.integer_or("max_rounds", 1..=MAX_ROUNDS, DEFAULT_ROUNDS, problems);
    let termination_phrase = object
        .optional_str("termination_phrase", problems)
        .and_then(|phrase| {
            let phrase = phrase.trim();
            if (1..=MAX_TERMINATION_PHRASE_CHARS).contains(&phrase.chars().count()) {
                Some(phrase.to_owned())
            } else {
                problems.add(
                    &object.at("termination_phrase"),
                    "`termination_phrase` has 1 to 200 characters",
                );
                None
            }
        });
    let provider = object
        .required("provider", problems)
        .and_then(|value| Provider::parse(value, &object.at("provider"), read, problems));
    if problems.count() != before {
        return None;
    }
    Some(GroupConfiguration {
        participants: participants?,
        max_rounds: max_rounds?,
        termination_phrase,
        provider: provider?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SecretInput, StoredSecret, shown_secret};

    fn parse(
        agent_type: AgentType,
        value: &Value,
    ) -> Result<AgentConfiguration<SecretInput>, Vec<DocumentProblem>> {
        AgentConfiguration::parse(agent_type, value, &mut SecretInput::from_json)
    }

    fn pointers(problems: &[DocumentProblem]) -> Vec<&str> {
        problems
            .iter()
            .map(|problem| problem.pointer.as_str())
            .collect()
    }

    #[test]
    fn each_provider_reads_and_writes_back() {
        for provider in [
            json!({"type": "openai", "api_key": {"env": "OPENAI_API_KEY"}}),
            json!({"type": "azure_openai", "endpoint": "https://r.openai.azure.com", "deployment": "gpt-4o", "api_version": "2024-10-21", "api_key": {"value": "k"}}),
            json!({"type": "openai_compatible", "base_url": "http://localhost:11434/v1"}),
        ] {
            let document = json!({"provider": provider});
            let configuration = parse(AgentType::SemanticKernel, &document).unwrap();
            let shown = configuration.to_json(&|_| shown_secret());
            assert_eq!(shown["provider"]["type"], provider["type"]);
            if provider.get("api_key").is_some() {
                assert_eq!(shown["provider"]["api_key"], json!({"set": true}));
            }
        }
    }

    #[test]
    fn every_problem_of_a_configuration_is_pointed_at() {
        let problems = parse(
            AgentType::SemanticKernel,
            &json!({"provider": {"type": "azure_openai", "endpoint": "ftp://x", "deployment": "has space", "api_key": "plain", "extra": 1}, "model": "x"}),
        )
        .unwrap_err();
        assert_eq!(
            pointers(&problems),
            vec![
                "/provider/endpoint",
                "/provider/deployment",
                "/provider/api_version",
                "/provider/api_key",
                "/provider/extra",
                "/model"
            ]
        );
        let problems = parse(
            AgentType::SemanticKernel,
            &json!({"provider": {"type": "anthropic"}}),
        )
        .unwrap_err();
        assert_eq!(pointers(&problems), vec!["/provider/type"]);
        assert!(
            problems[0]
                .message
                .contains("openai, azure_openai, openai_compatible")
        );
        let problems = parse(AgentType::SemanticKernel, &json!([])).unwrap_err();
        assert_eq!(pointers(&problems), vec![""]);
    }

    #[test]
    fn group_conversations_need_two_distinct_participants_and_bounds() {
        let a = AgentId::new_random().to_string();
        let provider = json!({"type": "openai", "api_key": {"env": "K"}});
        let ok = parse(
            AgentType::Autogen,
            &json!({"participants": [a, AgentId::new_random().to_string()], "provider": provider, "termination_phrase": " DONE "}),
        )
        .unwrap();
        let AgentConfiguration::Autogen(group) = &ok else {
            panic!("not a group")
        };
        assert_eq!(group.max_rounds, 10);
        assert_eq!(group.termination_phrase.as_deref(), Some("DONE"));
        let problems = parse(
            AgentType::Autogen,
            &json!({"participants": [a, a, "nope"], "max_rounds": 0, "provider": provider}),
        )
        .unwrap_err();
        assert_eq!(
            pointers(&problems),
            vec!["/participants/1", "/participants/2", "/max_rounds"]
        );
        let problems = parse(
            AgentType::Autogen,
            &json!({"participants": [a], "provider": provider}),
        )
        .unwrap_err();
        assert_eq!(pointers(&problems), vec!["/participants"]);
    }

    #[test]
    fn too_many_participants_are_refused_at_once_with_one_problem() {
        let ids: Vec<String> = (0..100_000)
            .map(|index| format!("00000000-0000-4000-8000-{index:012x}"))
            .collect();
        let provider = json!({"type": "openai", "api_key": {"env": "K"}});
        let problems = parse(
            AgentType::Autogen,
            &json!({"participants": ids, "provider": provider}),
        )
        .unwrap_err();
        assert_eq!(pointers(&problems), vec!["/participants"]);
        assert_eq!(
            problems[0].message,
            "a group conversation needs 2 to 16 participants, this one has 100000"
        );
        let sixteen = &ids[..16];
        assert!(
            parse(
                AgentType::Autogen,
                &json!({"participants": sixteen, "provider": provider}),
            )
            .is_ok()
        );
    }

    #[test]
    fn custom_endpoints_take_headers_with_secrets() {
        let configuration = parse(
            AgentType::Custom,
            &json!({"endpoint": "https://bots.example.com/reply", "headers": {"X-Team": "ops", "Authorization": {"value": "Bearer s3cr3t"}}}),
        )
        .unwrap();
        let shown = configuration.to_json(&|_| shown_secret());
        assert_eq!(shown["headers"]["X-Team"], "ops");
        assert_eq!(shown["headers"]["Authorization"], json!({"set": true}));
        assert_eq!(shown["timeout_seconds"], 60);
        assert!(!shown.to_string().contains("s3cr3t"));
        let problems = parse(
            AgentType::Custom,
            &json!({"endpoint": "https://x", "headers": {"Host": "a", "bad name": "b", "X-Line": "a\nb", "X-N": 5}, "timeout_seconds": 0}),
        )
        .unwrap_err();
        assert_eq!(
            pointers(&problems),
            vec![
                "/headers/Host",
                "/headers/X-Line",
                "/headers/X-N",
                "/headers/bad name",
                "/timeout_seconds"
            ]
        );
    }

    #[test]
    fn secrets_map_to_their_stored_form_at_their_pointers() {
        let configuration = parse(
            AgentType::Custom,
            &json!({"endpoint": "https://x", "headers": {"A": {"env": "TOKEN_A"}, "B": {"set": true}}}),
        )
        .unwrap();
        let mut seen = Vec::new();
        let problems = configuration
            .map_secrets::<StoredSecret>(&mut |secret, pointer| {
                seen.push(pointer.to_owned());
                match secret {
                    SecretInput::Env(name) => Ok(StoredSecret::Env(name)),
                    _ => Err("nothing is stored here yet".to_owned()),
                }
            })
            .unwrap_err();
        assert_eq!(seen, vec!["/headers/A", "/headers/B"]);
        assert_eq!(pointers(&problems), vec!["/headers/B"]);
    }

    #[test]
    fn stored_configurations_read_back_identically() {
        let configuration = parse(
            AgentType::SemanticKernel,
            &json!({"provider": {"type": "openai", "api_key": {"env": "K"}, "organization": "org-1"}}),
        )
        .unwrap()
        .map_secrets::<StoredSecret>(&mut |secret, _| match secret {
            SecretInput::Env(name) => Ok(StoredSecret::Env(name)),
            _ => Err("unexpected".into()),
        })
        .unwrap();
        let stored = configuration.to_json(&StoredSecret::to_json);
        assert_eq!(stored["provider"]["api_key"]["$secret"], "env");
        let read = AgentConfiguration::parse(
            AgentType::SemanticKernel,
            &stored,
            &mut StoredSecret::from_json,
        )
        .unwrap();
        assert_eq!(read, configuration);
    }
}
