//! The schemas of agent and tool configurations in the published document: each shape (one per
//! agent type, one per tool type), its model providers, headers and secrets, with their limits.
//!
//! Like a definition ([`crate::definition_schema`]), a configuration is read as free JSON and
//! checked whole by the domain ([`ipa_agent::config`], [`ipa_agent::tool`]), which reports every
//! problem at its pointer in one `422 invalid_configuration`; the document describes the same
//! rules from the domain's constants, and the shape check reads a configuration as any object.
//! A configuration's shape follows the agent's (or tool's) `type`, a member beside it: the
//! shapes are `oneOf` alternatives that no object can match twice, and each says which type it
//! is for. What no schema can say stays the domain's: the shape matching the type, headers the
//! HTTP client manages, a `{"set": true}` secret having one stored at its place, a plugin's
//! OpenAPI document, a tool's parameters schema.

use ipa_agent::config::{
    DEFAULT_ENDPOINT_TIMEOUT_SECONDS, DEFAULT_ROUNDS, MAX_CALL_TIMEOUT_SECONDS,
    MAX_HEADER_NAME_BYTES, MAX_HEADER_VALUE_BYTES, MAX_ROUNDS, MAX_SHORT_NAME_BYTES,
    MAX_TERMINATION_PHRASE_CHARS, MIN_PARTICIPANTS,
};
use ipa_agent::tool::DEFAULT_TOOL_TIMEOUT_SECONDS;
use ipa_agent::{
    AgentConfiguration, BuiltinFunction, EnvVarName, HttpMethod, HttpUrl, MAX_SECRET_BYTES,
    ProviderKind, StoredSecret,
};
use serde_json::{Value, json};

use crate::limits::{CONTROL, WHITE_SPACE};

/// The component of an agent's configuration.
pub const AGENT_CONFIGURATION: &str = "AgentConfiguration";
/// The component of a tool's configuration.
pub const TOOL_CONFIGURATION: &str = "ToolConfiguration";

/// The members that carry a configuration, by schema: `(schema, member, component, nullable)`.
const MEMBERS: [(&str, &str, &str, bool); 6] = [
    (
        "CreateAgentRequest",
        "configuration",
        AGENT_CONFIGURATION,
        false,
    ),
    (
        "UpdateAgentRequest",
        "configuration",
        AGENT_CONFIGURATION,
        true,
    ),
    ("Agent", "configuration", AGENT_CONFIGURATION, false),
    (
        "CreateToolRequest",
        "configuration",
        TOOL_CONFIGURATION,
        false,
    ),
    (
        "UpdateToolRequest",
        "configuration",
        TOOL_CONFIGURATION,
        true,
    ),
    ("AgentTool", "configuration", TOOL_CONFIGURATION, false),
];

/// A reference to the component `name`.
fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A closed object of `properties`, `required` among them.
fn object(description: &str, properties: &Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "description": description,
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// An optional member: `null` reads as absent.
fn optional(schema: &Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}

/// An `http://` or `https://` URL with a host, no white space nor control characters (the rule
/// of [`HttpUrl`]).
fn url(description: &str) -> Value {
    let outside = format!("{WHITE_SPACE}{CONTROL}");
    json!({
        "type": "string",
        "maxLength": HttpUrl::MAX_BYTES,
        "pattern": format!("^https?://[^/?#:@{outside}][^/?#@{outside}]*(?:[/?#][^{outside}]*)?$"),
        "description": description,
    })
}

/// A whole number of seconds a call may take.
fn timeout(default: u32) -> Value {
    optional(&json!({
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_CALL_TIMEOUT_SECONDS,
        "description": format!("Seconds a call may take, 1 to {MAX_CALL_TIMEOUT_SECONDS} (default {default})."),
    }))
}

/// A name part of a provider: 1 to 64 letters, digits, `.`, `_`, `-`, the first of the class
/// `first`.
fn short_name(first: &str, description: &str) -> Value {
    json!({
        "type": "string",
        "pattern": format!(
            "^{first}[A-Za-z0-9._-]{{0,{}}}$",
            MAX_SHORT_NAME_BYTES - 1
        ),
        "description": description,
    })
}

/// The pattern of an HTTP method in any case (`post` is read as `POST`).
fn any_case_methods() -> String {
    let methods: Vec<String> = HttpMethod::ALL
        .iter()
        .map(|method| {
            method
                .as_str()
                .chars()
                .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase()))
                .collect()
        })
        .collect();
    format!("^(?:{})$", methods.join("|"))
}

/// Each provider's component, by its `type`.
fn provider_mapping() -> serde_json::Map<String, Value> {
    [
        (ProviderKind::OpenAi, "OpenAiProvider"),
        (ProviderKind::AzureOpenAi, "AzureOpenAiProvider"),
        (ProviderKind::OpenAiCompatible, "OpenAiCompatibleProvider"),
    ]
    .into_iter()
    .map(|(kind, name)| {
        (
            kind.as_str().to_owned(),
            json!(format!("#/components/schemas/{name}")),
        )
    })
    .collect()
}

/// The components of configurations, by name.
fn components() -> Vec<(&'static str, Value)> {
    let provider_labels: Vec<&str> = ProviderKind::ALL.iter().map(|kind| kind.as_str()).collect();
    let kind =
        |label: &str| json!({"type": "string", "const": label, "description": "The provider."});
    let secret = reference("Secret");
    vec![
        (
            AGENT_CONFIGURATION,
            json!({
                "description": "An agent's configuration, whose shape follows the agent's type: `ModelConfiguration` for `semantic_kernel`, `GroupConfiguration` for `autogen`, `EndpointConfiguration` for `custom`. Every secret in it shows as `{\"set\": true}` when read.",
                "oneOf": [reference("ModelConfiguration"), reference("GroupConfiguration"), reference("EndpointConfiguration")],
            }),
        ),
        (
            "ModelConfiguration",
            object(
                "For a `semantic_kernel` agent: the model provider it calls.",
                &json!({"provider": reference("ModelProvider")}),
                &["provider"],
            ),
        ),
        (
            "GroupConfiguration",
            object(
                "For an `autogen` agent: a conversation among other agents, moderated through a model provider.",
                &json!({
                    "participants": {
                        "type": "array",
                        "minItems": MIN_PARTICIPANTS,
                        "maxItems": AgentConfiguration::<StoredSecret>::MAX_PARTICIPANTS,
                        "uniqueItems": true,
                        "items": {"type": "string", "format": "uuid"},
                        "description": format!(
                            "{MIN_PARTICIPANTS} to {} distinct agents (ids) that take turns.",
                            AgentConfiguration::<StoredSecret>::MAX_PARTICIPANTS
                        ),
                    },
                    "max_rounds": optional(&json!({
                        "type": "integer", "minimum": 1, "maximum": MAX_ROUNDS,
                        "description": format!("Rounds at most, 1 to {MAX_ROUNDS} (default {DEFAULT_ROUNDS})."),
                    })),
                    "termination_phrase": optional(&json!({
                        "type": "string",
                        "pattern": format!(
                            "^[{WHITE_SPACE}]*[^{WHITE_SPACE}](?:[\\s\\S]{{0,{inner}}}[^{WHITE_SPACE}])?[{WHITE_SPACE}]*$",
                            inner = MAX_TERMINATION_PHRASE_CHARS - 2
                        ),
                        "description": format!("A phrase that ends the conversation when a participant says it: 1 to {MAX_TERMINATION_PHRASE_CHARS} characters."),
                    })),
                    "provider": reference("ModelProvider"),
                }),
                &["participants", "provider"],
            ),
        ),
        (
            "EndpointConfiguration",
            object(
                "For a `custom` agent: the endpoint the platform calls with each turn (the `customAgentTurn` webhook).",
                &json!({
                    "endpoint": url("The endpoint's URL."),
                    "headers": optional(&reference("Headers")),
                    "timeout_seconds": timeout(DEFAULT_ENDPOINT_TIMEOUT_SECONDS),
                }),
                &["endpoint"],
            ),
        ),
        (
            "ModelProvider",
            json!({
                "description": format!("How a model is reached: {}.", provider_labels.join(", ")),
                "oneOf": [reference("OpenAiProvider"), reference("AzureOpenAiProvider"), reference("OpenAiCompatibleProvider")],
                "discriminator": {"propertyName": "type", "mapping": provider_mapping()},
            }),
        ),
        (
            "OpenAiProvider",
            object(
                "OpenAI itself.",
                &json!({
                    "type": kind(ProviderKind::OpenAi.as_str()),
                    "api_key": secret,
                    "organization": optional(&short_name("[A-Za-z0-9._-]", "The organization to bill, when the key belongs to several.")),
                }),
                &["type", "api_key"],
            ),
        ),
        (
            "AzureOpenAiProvider",
            object(
                "An Azure OpenAI resource.",
                &json!({
                    "type": kind(ProviderKind::AzureOpenAi.as_str()),
                    "endpoint": url("The resource's endpoint, such as https://NAME.openai.azure.com."),
                    "deployment": short_name("[A-Za-z0-9._-]", "The model deployment's name."),
                    "api_version": short_name("[0-9]", "The API version, such as 2024-10-21."),
                    "api_key": secret,
                }),
                &["type", "endpoint", "deployment", "api_version", "api_key"],
            ),
        ),
        (
            "OpenAiCompatibleProvider",
            object(
                "A server speaking OpenAI's chat-completions API (vLLM, Ollama, LiteLLM...).",
                &json!({
                    "type": kind(ProviderKind::OpenAiCompatible.as_str()),
                    "base_url": url("Its base URL, up to and including `/v1` where it has one."),
                    "api_key": optional(&secret),
                }),
                &["type", "base_url"],
            ),
        ),
        (
            "Headers",
            json!({
                "type": "object",
                "description": format!("HTTP headers sent with each call, at most {}; the HTTP client's own (Host, Content-Length, Connection...) cannot be set.", ipa_agent::Headers::<StoredSecret>::MAX),
                "maxProperties": ipa_agent::Headers::<StoredSecret>::MAX,
                "propertyNames": {"pattern": format!("^[A-Za-z0-9!#$%&'*+.^_`|~-]{{1,{MAX_HEADER_NAME_BYTES}}}$")},
                "additionalProperties": {
                    "oneOf": [
                        {
                            "type": "string",
                            "maxLength": MAX_HEADER_VALUE_BYTES,
                            "pattern": "^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f-\\u009f]*$",
                            "description": "A plain value (no line breaks).",
                        },
                        secret,
                    ],
                },
            }),
        ),
        (
            "Secret",
            json!({
                "description": "A write-only secret: `{\"env\": \"NAME\"}` (read from the server's environment when used) or `{\"value\": \"...\"}` (stored encrypted); in a change, `{\"set\": true}` keeps the secret stored at the same place. Read back, every secret shows as `{\"set\": true}`.",
                "oneOf": [reference("EnvSecret"), reference("ValueSecret"), reference("KeptSecret")],
            }),
        ),
        (
            "EnvSecret",
            object(
                "A secret read from a variable of the server's environment when used.",
                &json!({"env": {
                    "type": "string",
                    "pattern": format!("^[A-Za-z_][A-Za-z0-9_]{{0,{}}}$", EnvVarName::MAX_CHARS - 1),
                }}),
                &["env"],
            ),
        ),
        (
            "ValueSecret",
            object(
                "A secret value, stored encrypted.",
                &json!({"value": {
                    "type": "string", "minLength": 1, "maxLength": MAX_SECRET_BYTES, "writeOnly": true,
                }}),
                &["value"],
            ),
        ),
        (
            "KeptSecret",
            object(
                "The secret already stored at this place (and how every stored secret reads).",
                &json!({"set": {
                    "type": "boolean", "const": true,
                }}),
                &["set"],
            ),
        ),
        (
            TOOL_CONFIGURATION,
            json!({
                "description": "A tool's configuration, whose shape follows the tool's type: `FunctionToolConfiguration` for `function`, `ApiToolConfiguration` for `api`, `PluginToolConfiguration` for `plugin`.",
                "oneOf": [reference("FunctionToolConfiguration"), reference("ApiToolConfiguration"), reference("PluginToolConfiguration")],
            }),
        ),
        (
            "FunctionToolConfiguration",
            object(
                "For a `function` tool: one of the platform's built-in functions.",
                &json!({
                    "function": {"type": "string", "enum": BuiltinFunction::labels()},
                    "parameters": optional(&json!({
                        "type": "object",
                        "description": "The built-in's parameters schema, as read back; it cannot be changed, so leave it out.",
                    })),
                }),
                &["function"],
            ),
        ),
        (
            "ApiToolConfiguration",
            object(
                "For an `api` tool: one HTTP call, its arguments described by a JSON Schema.",
                &json!({
                    "method": {"type": "string", "pattern": any_case_methods(), "description": "GET, POST, PUT, PATCH or DELETE (any case)."},
                    "url": {
                        "type": "string",
                        "pattern": "^https?://",
                        "description": "An http:// or https:// URL; `{name}` placeholders are filled with the arguments of that name, which `parameters` must declare.",
                    },
                    "headers": optional(&reference("Headers")),
                    "parameters": optional(&json!({
                        "type": "object",
                        "description": "A JSON Schema of an object of named arguments: {\"type\": \"object\", \"properties\": {...}} (default: no arguments).",
                    })),
                    "timeout_seconds": timeout(DEFAULT_TOOL_TIMEOUT_SECONDS),
                }),
                &["method", "url"],
            ),
        ),
        (
            "PluginToolConfiguration",
            object(
                "For a `plugin` tool: the operations of an OpenAPI 3 document, each offered as a function.",
                &json!({
                    "base_url": url("The API's base URL."),
                    "openapi": {"type": "object", "description": "An OpenAPI 3.x document of at most 1 MiB (at most 64 operations)."},
                    "headers": optional(&reference("Headers")),
                    "timeout_seconds": timeout(DEFAULT_TOOL_TIMEOUT_SECONDS),
                }),
                &["base_url", "openapi"],
            ),
        ),
    ]
}

/// Adds the configurations' components to `document` and points the configuration members at
/// them. Returns the members it did not find.
pub fn declare(document: &mut Value) -> Vec<String> {
    crate::document::add_components(document, components());
    MEMBERS
        .iter()
        .filter_map(|(schema, member, component, nullable)| {
            crate::document::refer_member(document, schema, member, component, *nullable)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipa_agent::{AgentType, SecretInput, ToolName, ToolType};
    use ipa_template::JsonSchemas;

    fn validator(component: &str) -> jsonschema::Validator {
        crate::document::published_validator(&reference(component))
    }

    #[test]
    fn every_member_gets_its_schema() {
        let mut document: Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        assert_eq!(declare(&mut document), Vec::<String>::new());
    }

    #[test]
    fn the_document_and_the_domain_agree_on_agent_configurations() {
        let validator = validator(AGENT_CONFIGURATION);
        let a = "3f0e2c49-9c1b-4a57-8a8c-0d7c6e2b1a10";
        let b = "9b2f4c1e-2d3a-4e5f-8a9b-0c1d2e3f4a5b";
        let openai = json!({"type": "openai", "api_key": {"env": "OPENAI_API_KEY"}});
        for (agent_type, configuration, valid) in [
            (AgentType::SemanticKernel, json!({"provider": openai}), true),
            (
                AgentType::SemanticKernel,
                json!({"provider": {"type": "openai", "api_key": {"value": "sk-1"}, "organization": "org-1"}}),
                true,
            ),
            (
                AgentType::SemanticKernel,
                json!({"provider": {"type": "azure_openai", "endpoint": "https://x.openai.azure.com",
                "deployment": "gpt4o", "api_version": "2024-10-21", "api_key": {"env": "AZURE_KEY"}}}),
                true,
            ),
            (
                AgentType::SemanticKernel,
                json!({"provider": {"type": "openai_compatible", "base_url": "http://127.0.0.1:11434/v1"}}),
                true,
            ),
            (
                AgentType::SemanticKernel,
                json!({"provider": {"type": "openai", "api_key": {"env": "1BAD"}}}),
                false,
            ),
            (
                AgentType::SemanticKernel,
                json!({"provider": {"type": "openai", "api_key": {"value": ""}}}),
                false,
            ),
            (
                AgentType::SemanticKernel,
                json!({"provider": {"type": "openai"}}),
                false,
            ),
            (
                AgentType::SemanticKernel,
                json!({"provider": {"type": "azure_openai", "endpoint": "https://x.io",
                "deployment": "d", "api_version": "v1", "api_key": {"env": "K"}}}),
                false,
            ),
            (
                AgentType::SemanticKernel,
                json!({"provider": {"type": "openai_compatible", "base_url": "ftp://x.io"}}),
                false,
            ),
            (
                AgentType::SemanticKernel,
                json!({"provider": {"type": "openai_compatible", "base_url": "http://user@x.io"}}),
                false,
            ),
            (
                AgentType::SemanticKernel,
                json!({"provider": {"type": "other"}}),
                false,
            ),
            (
                AgentType::SemanticKernel,
                json!({"provider": openai, "extra": 1}),
                false,
            ),
            (
                AgentType::Autogen,
                json!({"participants": [a, b], "provider": openai, "max_rounds": 5, "termination_phrase": " DONE "}),
                true,
            ),
            (
                AgentType::Autogen,
                json!({"participants": [a], "provider": openai}),
                false,
            ),
            (
                AgentType::Autogen,
                json!({"participants": [a, a], "provider": openai}),
                false,
            ),
            (
                AgentType::Autogen,
                json!({"participants": [a, b], "provider": openai, "max_rounds": 101}),
                false,
            ),
            (
                AgentType::Autogen,
                json!({"participants": [a, b], "provider": openai, "termination_phrase": "  "}),
                false,
            ),
            (
                AgentType::Custom,
                json!({"endpoint": "https://agent.example/turn", "headers": {"Authorization": {"value": "Bearer x"}, "X-Team": "billing"}, "timeout_seconds": 30}),
                true,
            ),
            (
                AgentType::Custom,
                json!({"endpoint": "https://agent.example/turn", "headers": null, "timeout_seconds": null}),
                true,
            ),
            (
                AgentType::Custom,
                json!({"endpoint": "https://agent.example/turn", "timeout_seconds": 601}),
                false,
            ),
            (
                AgentType::Custom,
                json!({"endpoint": "https://agent.example/turn", "headers": {"X-Bad": "a\nb"}}),
                false,
            ),
            (
                AgentType::Custom,
                json!({"endpoint": "https://agent.example/turn", "headers": {"Bad Name": "x"}}),
                false,
            ),
            (
                AgentType::Custom,
                json!({"endpoint": "https://agent example/turn"}),
                false,
            ),
        ] {
            let by_document = validator.is_valid(&configuration);
            let by_domain = AgentConfiguration::<SecretInput>::parse(
                agent_type,
                &configuration,
                &mut |value| SecretInput::from_json(value),
            )
            .is_ok();
            assert_eq!(by_document, valid, "the document on {configuration}");
            assert_eq!(by_domain, valid, "the domain on {configuration}");
        }
    }

    #[test]
    fn the_document_and_the_domain_agree_on_tool_configurations() {
        let validator = validator(TOOL_CONFIGURATION);
        let name = ToolName::parse("lookup").unwrap();
        let openapi = json!({"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {
            "/orders/{id}": {"get": {"operationId": "getOrder", "parameters": [
                {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]}}}});
        for (tool_type, configuration, valid) in [
            (
                ToolType::Function,
                json!({"function": "current_time"}),
                true,
            ),
            (ToolType::Function, json!({"function": "shell"}), false),
            (
                ToolType::Api,
                json!({"method": "get", "url": "https://shop.example/orders/{id}",
                "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}, "timeout_seconds": 10}),
                true,
            ),
            (
                ToolType::Api,
                json!({"method": "TRACE", "url": "https://shop.example/orders"}),
                false,
            ),
            (
                ToolType::Api,
                json!({"method": "GET", "url": "mailto:x@y.io"}),
                false,
            ),
            (
                ToolType::Api,
                json!({"method": "GET", "url": "https://shop.example", "timeout_seconds": 0}),
                false,
            ),
            (
                ToolType::Plugin,
                json!({"base_url": "https://shop.example/api", "openapi": openapi}),
                true,
            ),
            (
                ToolType::Plugin,
                json!({"base_url": "https://shop.example/api"}),
                false,
            ),
            (
                ToolType::Plugin,
                json!({"base_url": "https://shop.example/api", "openapi": openapi, "more": true}),
                false,
            ),
        ] {
            let by_document = validator.is_valid(&configuration);
            let by_domain = ipa_agent::ToolConfiguration::<SecretInput>::parse(
                tool_type,
                &name,
                &configuration,
                &mut |value| SecretInput::from_json(value),
                &JsonSchemas::new(),
            )
            .is_ok();
            assert_eq!(by_document, valid, "the document on {configuration}");
            assert_eq!(by_domain, valid, "the domain on {configuration}");
        }
    }
}
