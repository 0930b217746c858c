//! What an agent's model is offered when it runs: each enabled tool as the functions it stands
//! for (a built-in or an `api` tool is one function named after the tool; a plugin is one
//! function per operation, `<tool>-<operationId>`), with the JSON Schema of their arguments, and
//! how a function the model calls leads back to what must be done.
//!
//! Also the other half of secret handling: [`reveal_agent`] and [`reveal_tool`] turn stored
//! secrets back into plain ones through a [`SecretOpener`], with the same bindings the service
//! sealed them with.

use ipa_kernel::{AgentId, AgentToolId};
use serde_json::{Map, Value, json};

use crate::config::AgentConfiguration;
use crate::ports::{DocumentProblem, SecretOpener};
use crate::secret::PlainSecret;
use crate::tool::{
    AgentTool, BuiltinFunction, ParameterLocation, PluginOperation, ToolConfiguration,
};

/// The binding of an agent's sealed secrets (followed by the secret's pointer).
pub fn agent_binding(id: AgentId) -> String {
    format!("agent/{id}")
}

/// The binding of a tool's sealed secrets (followed by the secret's pointer).
pub fn tool_binding(id: AgentToolId) -> String {
    format!("tool/{id}")
}

/// The agent's configuration with its secrets in plain text, for the call about to be made;
/// every secret that cannot be read is reported at its pointer.
pub fn reveal_agent(
    id: AgentId,
    configuration: &AgentConfiguration<crate::StoredSecret>,
    opener: &dyn SecretOpener,
) -> Result<AgentConfiguration<PlainSecret>, Vec<DocumentProblem>> {
    let binding = agent_binding(id);
    configuration
        .clone()
        .map_secrets(&mut |stored, pointer| opener.reveal(&stored, &format!("{binding}{pointer}")))
}

/// The tool's configuration with its secrets in plain text.
pub fn reveal_tool(
    tool: &AgentTool,
    opener: &dyn SecretOpener,
) -> Result<ToolConfiguration<PlainSecret>, Vec<DocumentProblem>> {
    let binding = tool_binding(tool.id);
    tool.settings
        .configuration
        .clone()
        .map_secrets(&mut |stored, pointer| opener.reveal(&stored, &format!("{binding}{pointer}")))
}

/// What a function stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionTarget {
    /// A built-in function.
    Builtin(BuiltinFunction),
    /// The tool's HTTP call.
    Api,
    /// The plugin's operation at this position.
    Operation(usize),
}

/// A function offered to the model.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferedFunction {
    /// Its name, as the model calls it.
    pub name: String,
    /// What it does, as the model reads it.
    pub description: String,
    /// The JSON Schema of its arguments (always an object schema).
    pub parameters: Value,
    /// What calling it does.
    pub target: FunctionTarget,
}

impl AgentTool {
    /// The functions this tool offers the model (whether it is enabled is the caller's
    /// business).
    pub fn functions(&self) -> Vec<OfferedFunction> {
        let name = self.settings.name.as_str();
        let described = self
            .settings
            .description
            .as_ref()
            .map(|description| description.as_str().to_owned());
        match &self.settings.configuration {
            ToolConfiguration::Function(builtin) => vec![OfferedFunction {
                name: name.to_owned(),
                description: described.unwrap_or_else(|| builtin.description().to_owned()),
                parameters: builtin.parameters(),
                target: FunctionTarget::Builtin(*builtin),
            }],
            ToolConfiguration::Api(call) => vec![OfferedFunction {
                name: name.to_owned(),
                description: described.unwrap_or_else(|| {
                    format!("Calls {} {}", call.method.as_str(), call.url.as_str())
                }),
                parameters: call.parameters.clone(),
                target: FunctionTarget::Api,
            }],
            ToolConfiguration::Plugin(plugin) => plugin
                .operations
                .iter()
                .enumerate()
                .map(|(position, operation)| OfferedFunction {
                    name: format!("{name}-{}", operation.operation_id.as_str()),
                    description: operation
                        .description
                        .clone()
                        .or_else(|| described.clone())
                        .unwrap_or_else(|| {
                            format!("{} {}", operation.method.as_str(), operation.path)
                        }),
                    parameters: operation.arguments_schema(),
                    target: FunctionTarget::Operation(position),
                })
                .collect(),
        }
    }
}

/// The member of an operation's arguments that carries its JSON request body.
pub const BODY_ARGUMENT: &str = "body";

impl PluginOperation {
    /// The JSON Schema of the arguments the model passes: one property per path, query and
    /// header parameter (required ones required), and [`BODY_ARGUMENT`] for the JSON request
    /// body when the operation takes one. A parameter named like an earlier one is left out.
    pub fn arguments_schema(&self) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for parameter in &self.parameters {
            if properties.contains_key(&parameter.name) {
                continue;
            }
            let mut schema = parameter.schema.clone();
            if let (Some(description), Some(object)) =
                (&parameter.description, schema.as_object_mut())
            {
                object
                    .entry("description")
                    .or_insert_with(|| Value::String(description.clone()));
            }
            if parameter.required || parameter.location == ParameterLocation::Path {
                required.push(Value::String(parameter.name.clone()));
            }
            properties.insert(parameter.name.clone(), schema);
        }
        if let Some(body) = &self.body
            && !properties.contains_key(BODY_ARGUMENT)
        {
            properties.insert(BODY_ARGUMENT.to_owned(), body.clone());
        }
        json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{SealedSecret, StoredSecret};
    use crate::tool::{HttpMethod, OperationParameter, Plugin, ToolSettings};
    use crate::values::{Description, HttpUrl, ToolName};
    use crate::{ApiCall, Headers, UrlTemplate};

    fn tool(
        name: &str,
        enabled: bool,
        configuration: ToolConfiguration<StoredSecret>,
    ) -> AgentTool {
        AgentTool {
            id: AgentToolId::new_random(),
            agent_id: AgentId::new_random(),
            settings: ToolSettings {
                name: ToolName::parse(name).unwrap(),
                description: None,
                configuration,
                enabled,
            },
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn operation() -> PluginOperation {
        PluginOperation {
            operation_id: ToolName::parse("getPet").unwrap(),
            method: HttpMethod::Get,
            path: "/pets/{petId}".to_owned(),
            description: Some("Finds a pet".to_owned()),
            parameters: vec![
                OperationParameter {
                    name: "petId".to_owned(),
                    location: ParameterLocation::Path,
                    required: true,
                    schema: json!({"type": "integer"}),
                    description: Some("The pet".to_owned()),
                },
                OperationParameter {
                    name: "verbose".to_owned(),
                    location: ParameterLocation::Query,
                    required: false,
                    schema: json!({"type": "boolean"}),
                    description: None,
                },
            ],
            body: Some(json!({"type": "object"})),
        }
    }

    #[test]
    fn each_tool_type_offers_its_functions() {
        let builtin = tool(
            "clock",
            true,
            ToolConfiguration::Function(BuiltinFunction::CurrentTime),
        );
        let offered = builtin.functions();
        assert_eq!(offered.len(), 1);
        assert_eq!(offered[0].name, "clock");
        assert_eq!(
            offered[0].parameters,
            BuiltinFunction::CurrentTime.parameters()
        );
        assert_eq!(
            offered[0].target,
            FunctionTarget::Builtin(BuiltinFunction::CurrentTime)
        );

        let mut api = tool(
            "lookup",
            true,
            ToolConfiguration::Api(ApiCall {
                method: HttpMethod::Get,
                url: UrlTemplate::parse("http://x/items/{id}").unwrap(),
                headers: Headers::default(),
                parameters: json!({"type": "object", "properties": {"id": {"type": "string"}}}),
                timeout_seconds: 5,
            }),
        );
        api.settings.description = Description::parse("Looks an item up").unwrap();
        let offered = api.functions();
        assert_eq!(offered[0].description, "Looks an item up");
        assert_eq!(offered[0].target, FunctionTarget::Api);

        let plugin = tool(
            "pets",
            true,
            ToolConfiguration::Plugin(Plugin {
                base_url: HttpUrl::parse("http://x").unwrap(),
                openapi: json!({}),
                operations: vec![operation()],
                headers: Headers::default(),
                timeout_seconds: 5,
            }),
        );
        let offered = plugin.functions();
        assert_eq!(offered[0].name, "pets-getPet");
        assert_eq!(offered[0].description, "Finds a pet");
        assert_eq!(offered[0].target, FunctionTarget::Operation(0));
    }

    #[test]
    fn operation_arguments_name_every_parameter_and_the_body() {
        assert_eq!(
            operation().arguments_schema(),
            json!({
                "type": "object",
                "properties": {
                    "petId": {"type": "integer", "description": "The pet"},
                    "verbose": {"type": "boolean"},
                    "body": {"type": "object"}
                },
                "required": ["petId"],
                "additionalProperties": false
            })
        );
    }

    struct Opener;

    impl SecretOpener for Opener {
        fn reveal(&self, stored: &StoredSecret, binding: &str) -> Result<PlainSecret, String> {
            match stored {
                StoredSecret::Sealed(sealed) => Ok(PlainSecret::new(format!(
                    "{}@{binding}",
                    sealed.ciphertext()
                ))),
                StoredSecret::Env(name) => Err(format!("{} is not set", name.as_str())),
            }
        }
    }

    #[test]
    fn secrets_are_revealed_with_their_bindings() {
        let id = AgentId::new_random();
        let configuration = AgentConfiguration::Custom(crate::EndpointConfiguration {
            endpoint: HttpUrl::parse("http://x").unwrap(),
            headers: Headers::from_pairs(vec![(
                "Authorization".to_owned(),
                crate::HeaderValue::Secret(StoredSecret::Sealed(SealedSecret::new(
                    "k".to_owned(),
                    "c".to_owned(),
                ))),
            )]),
            timeout_seconds: 5,
        });
        let AgentConfiguration::Custom(revealed) =
            reveal_agent(id, &configuration, &Opener).unwrap()
        else {
            panic!("the type changed");
        };
        let (_, value) = revealed.headers.iter().next().unwrap();
        let crate::HeaderValue::Secret(plain) = value else {
            panic!("not a secret");
        };
        assert_eq!(
            plain.expose(),
            format!("c@agent/{id}/headers/Authorization")
        );
    }
}
