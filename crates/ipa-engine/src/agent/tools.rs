//! The functions an agent's model may call while a step runs, and calling them: the platform's
//! built-ins (`current_time`, `json_query` with JMESPath, `render_template` with the workflow
//! template language), `api` tools (one HTTP call) and `plugin` operations (calls to the
//! plugin's base URL).
//!
//! Arguments are checked against the function's JSON Schema before anything is called; a call
//! that cannot be made or fails comes back as a tool error the model reads, never as a failure of
//! the step: the model may correct itself.

use std::time::Duration;

use async_openai::types::chat::{ChatCompletionTool, ChatCompletionTools, FunctionObject};
use ipa_agent::{
    AgentTool, ApiCall, BODY_ARGUMENT, BuiltinFunction, FunctionTarget, HeaderValue, Headers,
    OfferedFunction, ParameterLocation, PlainSecret, Plugin, ToolConfiguration, ToolType,
    fill_placeholders,
};
use ipa_workflow::definition::HttpMethod;
use reqwest::Url;
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::calls::percent_encode;
use super::record::Recorder;
use crate::outbound::{OutboundClient, OutboundFailure, OutboundRequest};
use ipa_template::{JsonSchemas, Templates};

/// The most characters of a tool's result handed back to the model; the rest is cut, saying so.
const MAX_RESULT_CHARS: usize = 32 * 1024;

/// One function with what it belongs to.
struct Function {
    offered: OfferedFunction,
    tool: usize,
}

/// An enabled tool, its secrets revealed.
struct Tool {
    name: String,
    tool_type: ToolType,
    configuration: ToolConfiguration<PlainSecret>,
}

/// The functions of an agent's enabled tools.
pub(crate) struct ToolBox {
    tools: Vec<Tool>,
    functions: Vec<Function>,
}

/// What calling a function needs from the step.
pub(crate) struct ToolEnv<'a> {
    /// The HTTP client.
    pub client: &'a OutboundClient,
    /// The step's recorder, whose secrets are hidden from answers before they are cut.
    pub recorder: &'a Recorder,
    /// The template language.
    pub templates: &'a Templates,
    /// Argument validation.
    pub schemas: &'a JsonSchemas,
    /// The run's data: `{"input", "steps"}`.
    pub context: &'a Value,
}

/// How one call went.
pub(crate) struct ToolCall {
    /// The tool's name and type, when the function exists.
    pub tool: Option<(String, ToolType)>,
    /// The HTTP status of an `api` or `plugin` call that got an answer.
    pub status_code: Option<u16>,
    /// The result handed to the model, or the error it reads instead.
    pub outcome: Result<Value, String>,
}

impl ToolBox {
    /// The functions of `tools` (already filtered to the enabled ones).
    pub fn new(tools: Vec<(AgentTool, ToolConfiguration<PlainSecret>)>) -> Self {
        let mut functions = Vec::new();
        let mut kept = Vec::with_capacity(tools.len());
        for (position, (tool, configuration)) in tools.into_iter().enumerate() {
            functions.extend(tool.functions().into_iter().map(|offered| Function {
                offered,
                tool: position,
            }));
            kept.push(Tool {
                name: tool.settings.name.as_str().to_owned(),
                tool_type: configuration.tool_type(),
                configuration,
            });
        }
        Self {
            tools: kept,
            functions,
        }
    }

    /// Whether the model is offered no function at all.
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// The functions as the chat-completions API takes them.
    pub fn offered(&self) -> Vec<ChatCompletionTools> {
        self.functions
            .iter()
            .map(|function| {
                ChatCompletionTools::Function(ChatCompletionTool {
                    function: FunctionObject {
                        name: function.offered.name.clone(),
                        description: Some(function.offered.description.clone()),
                        parameters: Some(function.offered.parameters.clone()),
                        strict: None,
                    },
                })
            })
            .collect()
    }

    /// Calls the function `name` with the model's `arguments` (JSON text); `key` identifies the
    /// call (sent as `Idempotency-Key` to HTTP tools).
    pub async fn call(
        &self,
        name: &str,
        arguments: &str,
        key: &str,
        env: &ToolEnv<'_>,
    ) -> ToolCall {
        let Some(function) = self.functions.iter().find(|f| f.offered.name == name) else {
            let known: Vec<&str> = self
                .functions
                .iter()
                .map(|f| f.offered.name.as_str())
                .collect();
            return ToolCall {
                tool: None,
                status_code: None,
                outcome: Err(format!(
                    "there is no function named `{}`; the functions are: {}",
                    crate::clip(name, crate::QUOTE_CHARS),
                    known.join(", ")
                )),
            };
        };
        let tool = &self.tools[function.tool];
        let mut call = ToolCall {
            tool: Some((tool.name.clone(), tool.tool_type)),
            status_code: None,
            outcome: Ok(Value::Null),
        };
        let arguments = match parse_arguments(arguments, &function.offered.parameters, env.schemas)
        {
            Ok(arguments) => arguments,
            Err(error) => {
                call.outcome = Err(error);
                return call;
            }
        };
        let request = match (function.offered.target, &tool.configuration) {
            (FunctionTarget::Builtin(builtin), _) => {
                call.outcome = builtin_call(builtin, &arguments, env);
                return call;
            }
            (FunctionTarget::Api, ToolConfiguration::Api(api)) => {
                api_request(api, &arguments).map(|request| (request, api.timeout_seconds))
            }
            (FunctionTarget::Operation(position), ToolConfiguration::Plugin(plugin)) => {
                plugin_request(plugin, position, &arguments)
                    .map(|request| (request, plugin.timeout_seconds))
            }
            _ => Err("the tool changed while the step ran; call it again".to_owned()),
        };
        let (mut request, timeout_seconds) = match request {
            Ok(found) => found,
            Err(error) => {
                call.outcome = Err(error);
                return call;
            }
        };
        request.idempotency_key = Some(key.to_owned());
        let timeout = Duration::from_secs(u64::from(timeout_seconds));
        match env.client.call(&request, timeout).await {
            Ok(response) => {
                call.status_code = Some(response.status);
                call.outcome = Ok(env.recorder.redact(response.body));
            }
            Err(OutboundFailure::Status(response)) => {
                call.status_code = Some(response.status);
                // Hidden before the cut, so no cut splits a secret.
                let body = match env.recorder.redact(response.body) {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                call.outcome = Err(format!(
                    "the API answered HTTP {}: {}",
                    response.status,
                    cut(&body)
                ));
            }
            Err(failure) => call.outcome = Err(failure.to_string()),
        }
        call
    }
}

/// The model's arguments, parsed and checked against the function's schema.
fn parse_arguments(text: &str, schema: &Value, schemas: &JsonSchemas) -> Result<Value, String> {
    // Some models send nothing at all for a function without parameters.
    let text = if text.trim().is_empty() { "{}" } else { text };
    let arguments: Value = serde_json::from_str(text).map_err(|error| {
        format!("the arguments are not valid JSON ({error}); send a JSON object")
    })?;
    schemas.validate(schema, &arguments).map_err(|problems| {
        let list: Vec<String> = problems
            .iter()
            .map(|problem| {
                let at = if problem.pointer.is_empty() {
                    "/"
                } else {
                    &problem.pointer
                };
                format!("{at}: {}", problem.message)
            })
            .collect();
        format!(
            "the arguments do not match the function's parameters: {}",
            list.join("; ")
        )
    })?;
    Ok(arguments)
}

/// Runs a built-in function.
fn builtin_call(
    builtin: BuiltinFunction,
    arguments: &Value,
    env: &ToolEnv<'_>,
) -> Result<Value, String> {
    let text = |name: &str| {
        arguments
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    match builtin {
        BuiltinFunction::CurrentTime => {
            let mut now = OffsetDateTime::now_utc();
            let offset = text("utc_offset");
            if !offset.is_empty() {
                now = now.to_offset(parse_offset(offset)?);
            }
            let formatted = now
                .format(&Rfc3339)
                .map_err(|error| format!("the time could not be written: {error}"))?;
            Ok(json!({"now": formatted}))
        }
        BuiltinFunction::JsonQuery => {
            let expression = jmespath::compile(text("expression"))
                .map_err(|error| format!("the JMESPath expression is not valid: {error}"))?;
            let data = jmespath::Variable::from_serializable(env.context)
                .map_err(|error| format!("the run's data could not be queried: {error}"))?;
            let found = expression
                .search(data)
                .map_err(|error| format!("the query failed: {error}"))?;
            serde_json::to_value(&*found)
                .map_err(|error| format!("the result could not be written: {error}"))
        }
        BuiltinFunction::RenderTemplate => env
            .templates
            .render(text("template"), env.context)
            .map(Value::String)
            .map_err(|error| format!("the template could not be rendered: {}", error.message())),
    }
}

/// `+HH:MM` or `-HH:MM` (the schema has checked the form).
fn parse_offset(text: &str) -> Result<UtcOffset, String> {
    let invalid = || format!("`{text}` is not a UTC offset such as +02:00");
    let sign: i8 = if text.starts_with('-') { -1 } else { 1 };
    let (hours, minutes) = text
        .get(1..)
        .and_then(|rest| rest.split_once(':'))
        .ok_or_else(invalid)?;
    let hours: i8 = hours.parse().map_err(|_| invalid())?;
    let minutes: i8 = minutes.parse().map_err(|_| invalid())?;
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).map_err(|_| invalid())
}

/// An argument as it goes into a URL or a header: strings as they are, anything else as JSON.
fn argument_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `template` with each `{name}` replaced by its argument, percent-encoded; the names used.
fn fill(template: &str, arguments: &Map<String, Value>) -> Result<(String, Vec<String>), String> {
    fill_placeholders(template, &mut |name| {
        arguments
            .get(name)
            .map(|value| percent_encode(&argument_text(value)))
            .ok_or_else(|| format!("the argument `{name}` is needed for the URL"))
    })
}

/// Headers with their values, secrets revealed.
pub(crate) fn header_pairs(headers: &Headers<PlainSecret>) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = match value {
                HeaderValue::Plain(text) => text.clone(),
                HeaderValue::Secret(secret) => secret.expose().to_owned(),
            };
            (name.to_owned(), value)
        })
        .collect()
}

/// The method as the HTTP client takes it.
fn method(method: ipa_agent::HttpMethod) -> HttpMethod {
    match method {
        ipa_agent::HttpMethod::Get => HttpMethod::Get,
        ipa_agent::HttpMethod::Post => HttpMethod::Post,
        ipa_agent::HttpMethod::Put => HttpMethod::Put,
        ipa_agent::HttpMethod::Patch => HttpMethod::Patch,
        ipa_agent::HttpMethod::Delete => HttpMethod::Delete,
    }
}

/// `url` with `pairs` appended to its query.
fn with_query(url: &str, pairs: &[(String, String)]) -> Result<String, String> {
    if pairs.is_empty() {
        return Ok(url.to_owned());
    }
    let mut parsed =
        Url::parse(url).map_err(|error| format!("the URL `{url}` is not valid: {error}"))?;
    parsed.query_pairs_mut().extend_pairs(pairs);
    Ok(parsed.into())
}

/// An `api` tool's request: URL placeholders filled; the other arguments in the query string
/// (GET, DELETE) or as the JSON body (POST, PUT, PATCH).
fn api_request(api: &ApiCall<PlainSecret>, arguments: &Value) -> Result<OutboundRequest, String> {
    let empty = Map::new();
    let members = arguments.as_object().unwrap_or(&empty);
    let (url, used) = fill(api.url.as_str(), members)?;
    let rest: Map<String, Value> = members
        .iter()
        .filter(|(name, _)| !used.contains(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let (url, body) = match api.method {
        ipa_agent::HttpMethod::Get | ipa_agent::HttpMethod::Delete => {
            let pairs: Vec<(String, String)> = rest
                .iter()
                .map(|(name, value)| (name.clone(), argument_text(value)))
                .collect();
            (with_query(&url, &pairs)?, None)
        }
        _ => (url, Some(Value::Object(rest))),
    };
    Ok(OutboundRequest {
        method: method(api.method),
        url,
        headers: header_pairs(&api.headers),
        body,
        idempotency_key: None,
    })
}

/// A plugin operation's request: path, query and header parameters where the document puts
/// them, [`BODY_ARGUMENT`] as the JSON body.
fn plugin_request(
    plugin: &Plugin<PlainSecret>,
    position: usize,
    arguments: &Value,
) -> Result<OutboundRequest, String> {
    let operation = plugin
        .operations
        .get(position)
        .ok_or("the plugin changed while the step ran; call it again")?;
    let empty = Map::new();
    let members = arguments.as_object().unwrap_or(&empty);
    let base = plugin.base_url.as_str().trim_end_matches('/');
    let (path, _) = fill(&operation.path, members)?;
    let mut query = Vec::new();
    let mut headers = header_pairs(&plugin.headers);
    for parameter in &operation.parameters {
        let Some(value) = members.get(&parameter.name) else {
            continue;
        };
        match parameter.location {
            ParameterLocation::Path => {}
            ParameterLocation::Query => query.push((parameter.name.clone(), argument_text(value))),
            ParameterLocation::Header => {
                headers.push((parameter.name.clone(), argument_text(value)))
            }
        }
    }
    let body = operation
        .body
        .as_ref()
        .and_then(|_| members.get(BODY_ARGUMENT).cloned());
    Ok(OutboundRequest {
        method: method(operation.method),
        url: with_query(&format!("{base}{path}"), &query)?,
        headers,
        body,
        idempotency_key: None,
    })
}

/// A result as the model reads it: JSON text, cut at [`MAX_RESULT_CHARS`].
pub(crate) fn result_text(outcome: &Result<Value, String>) -> String {
    match outcome {
        Ok(Value::String(text)) => cut(text),
        Ok(value) => cut(&value.to_string()),
        Err(error) => json!({"error": error}).to_string(),
    }
}

fn cut(text: &str) -> String {
    crate::clip(text, MAX_RESULT_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipa_agent::{HttpUrl, OperationParameter, PluginOperation, ToolName, UrlTemplate};

    fn env<'a>(
        client: &'a OutboundClient,
        recorder: &'a Recorder,
        templates: &'a Templates,
        context: &'a Value,
    ) -> ToolEnv<'a> {
        ToolEnv {
            client,
            recorder,
            templates,
            schemas: &JsonSchemas,
            context,
        }
    }

    #[test]
    fn built_ins_read_the_run_data() {
        let client = OutboundClient::new(1024).unwrap();
        let templates = Templates::new();
        let context = json!({"input": {"orders": [{"id": 1, "total": 50}, {"id": 2, "total": 150}]}, "steps": {}});
        let (sender, _receiver) = tokio::sync::mpsc::unbounded_channel();
        let recorder = Recorder::new(ipa_kernel::ExecutionStepId::new_random(), sender);
        let env = env(&client, &recorder, &templates, &context);
        let query = builtin_call(
            BuiltinFunction::JsonQuery,
            &json!({"expression": "input.orders[?total > `100`].id"}),
            &env,
        );
        assert_eq!(query, Ok(json!([2])));
        let bad = builtin_call(
            BuiltinFunction::JsonQuery,
            &json!({"expression": "input.["}),
            &env,
        );
        assert!(bad.unwrap_err().contains("not valid"));
        let rendered = builtin_call(
            BuiltinFunction::RenderTemplate,
            &json!({"template": "{{ input.orders | length }} orders"}),
            &env,
        );
        assert_eq!(rendered, Ok(json!("2 orders")));
        let now = builtin_call(
            BuiltinFunction::CurrentTime,
            &json!({"utc_offset": "+02:00"}),
            &env,
        )
        .unwrap();
        assert!(now["now"].as_str().unwrap().ends_with("+02:00"), "{now}");
        assert_eq!(parse_offset("-05:30").unwrap().whole_minutes(), -330);
    }

    #[test]
    fn arguments_are_parsed_and_checked() {
        let schema = json!({"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]});
        assert_eq!(
            parse_arguments(r#"{"id": 3}"#, &schema, &JsonSchemas),
            Ok(json!({"id": 3}))
        );
        let error = parse_arguments(r#"{"id": "x"}"#, &schema, &JsonSchemas).unwrap_err();
        assert!(error.starts_with("the arguments do not match"), "{error}");
        assert!(error.contains("/id"), "{error}");
        let error = parse_arguments("{id:", &schema, &JsonSchemas).unwrap_err();
        assert!(error.contains("not valid JSON"), "{error}");
        assert!(parse_arguments("", &json!({"type": "object"}), &JsonSchemas).is_ok());
    }

    #[test]
    fn api_calls_put_arguments_in_the_url_query_or_body() {
        let api = |method| ApiCall {
            method,
            url: UrlTemplate::parse("http://x/items/{id}").unwrap(),
            headers: Headers::default(),
            parameters: json!({"type": "object"}),
            timeout_seconds: 5,
        };
        let get = api_request(
            &api(ipa_agent::HttpMethod::Get),
            &json!({"id": "a b", "q": 2}),
        )
        .unwrap();
        assert_eq!(get.url, "http://x/items/a%20b?q=2");
        assert_eq!(get.body, None);
        let post = api_request(
            &api(ipa_agent::HttpMethod::Post),
            &json!({"id": 7, "q": [1]}),
        )
        .unwrap();
        assert_eq!(post.url, "http://x/items/7");
        assert_eq!(post.body, Some(json!({"q": [1]})));
    }

    #[test]
    fn plugin_operations_place_each_parameter() {
        let plugin = Plugin {
            base_url: HttpUrl::parse("http://x/api/").unwrap(),
            openapi: json!({}),
            operations: vec![PluginOperation {
                operation_id: ToolName::parse("addNote").unwrap(),
                method: ipa_agent::HttpMethod::Post,
                path: "/pets/{petId}/notes".to_owned(),
                description: None,
                parameters: vec![
                    OperationParameter {
                        name: "petId".to_owned(),
                        location: ParameterLocation::Path,
                        required: true,
                        schema: json!({"type": "integer"}),
                        description: None,
                    },
                    OperationParameter {
                        name: "lang".to_owned(),
                        location: ParameterLocation::Query,
                        required: false,
                        schema: json!({"type": "string"}),
                        description: None,
                    },
                    OperationParameter {
                        name: "X-Trace".to_owned(),
                        location: ParameterLocation::Header,
                        required: false,
                        schema: json!({"type": "string"}),
                        description: None,
                    },
                ],
                body: Some(json!({"type": "object"})),
            }],
            headers: Headers::default(),
            timeout_seconds: 5,
        };
        let request = plugin_request(
            &plugin,
            0,
            &json!({"petId": 4, "lang": "en", "X-Trace": "t1", "body": {"text": "hi"}}),
        )
        .unwrap();
        assert_eq!(request.url, "http://x/api/pets/4/notes?lang=en");
        assert_eq!(
            request.headers,
            vec![("X-Trace".to_owned(), "t1".to_owned())]
        );
        assert_eq!(request.body, Some(json!({"text": "hi"})));
    }

    #[test]
    fn results_are_cut_for_the_model() {
        assert_eq!(result_text(&Ok(json!({"a": 1}))), r#"{"a":1}"#);
        assert_eq!(result_text(&Err("no".to_owned())), r#"{"error":"no"}"#);
        let long = result_text(&Ok(Value::String("x".repeat(MAX_RESULT_CHARS + 10))));
        assert!(long.ends_with("… (32778 characters, cut)"), "{long}");
        assert_eq!(long.chars().count(), MAX_RESULT_CHARS);
    }
}
