//! Agent tools: the functions an agent's model may call. A tool is one of the platform's
//! built-in functions, an HTTP call described by a URL template and a JSON Schema of parameters,
//! or a plugin (an OpenAPI 3 document whose operations each become a function, as Semantic
//! Kernel's OpenAPI plugins do). Like agent configurations, tool configurations are generic over
//! how their secrets are held.
//!
//! Checking a plugin's document is bounded before it is walked: its size, then its number of
//! operations, then each operation's number of parameters are counted first, and the schemas
//! its references expand to share one budget, so a small document cannot expand into a large one.

use std::collections::{HashMap, HashSet};

use ipa_kernel::json::serialized_within;
use ipa_kernel::{AgentId, AgentToolId};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::config::{Headers, MapSecret, ReadSecret, collect_secrets};
use crate::document::{Object, Problems, child, type_name};
use crate::ports::{DocumentProblem, SchemaChecker};
use crate::secret::StoredSecret;
use crate::values::{Description, HttpUrl, ToolName};

ipa_kernel::label_enum!(
    /// What a tool is. Stored in `agent_tools.tool_type`.
    ToolType, "tool type" {
        /// One of the platform's built-in functions.
        Function => "function",
        /// An HTTP call.
        Api => "api",
        /// The operations of an OpenAPI 3 document.
        Plugin => "plugin",
    }
);

ipa_kernel::label_enum!(
    /// The platform's built-in functions a `function` tool may offer.
    BuiltinFunction, "built-in function" {
        /// The current date and time, optionally in a UTC offset.
        CurrentTime => "current_time",
        /// A JMESPath query over the run's data.
        JsonQuery => "json_query",
        /// Renders a template over the run's data.
        RenderTemplate => "render_template",
    }
);

impl BuiltinFunction {
    /// What the function does, as the model reads it.
    pub fn description(self) -> &'static str {
        match self {
            Self::CurrentTime => "Returns the current date and time (RFC 3339).",
            Self::JsonQuery => {
                "Evaluates a JMESPath expression over the run's data (its input and the outputs \
                 of earlier steps) and returns the result."
            }
            Self::RenderTemplate => {
                "Renders a MiniJinja template over the run's data (`input`, `steps`) and returns \
                 the text."
            }
        }
    }

    /// The JSON Schema of its parameters.
    pub fn parameters(self) -> Value {
        match self {
            Self::CurrentTime => json!({
                "type": "object",
                "properties": {
                    "utc_offset": {
                        "type": "string",
                        "pattern": "^[+-](0[0-9]|1[0-4]):[0-5][0-9]$",
                        "description": "A UTC offset such as +02:00; UTC when absent."
                    }
                },
                "additionalProperties": false
            }),
            Self::JsonQuery => json!({
                "type": "object",
                "properties": {
                    "expression": {"type": "string", "minLength": 1, "description": "A JMESPath expression, e.g. input.orders[?total > `100`].id"}
                },
                "required": ["expression"],
                "additionalProperties": false
            }),
            Self::RenderTemplate => json!({
                "type": "object",
                "properties": {
                    "template": {"type": "string", "minLength": 1, "description": "A MiniJinja template, e.g. Hello {{ input.name }}"}
                },
                "required": ["template"],
                "additionalProperties": false
            }),
        }
    }
}

ipa_kernel::label_enum!(
    /// The HTTP methods a tool may call with.
    HttpMethod, "HTTP method" {
        /// GET: arguments not in the URL go in the query string.
        Get => "GET",
        /// POST: arguments not in the URL go in a JSON body.
        Post => "POST",
        /// PUT.
        Put => "PUT",
        /// PATCH.
        Patch => "PATCH",
        /// DELETE: arguments not in the URL go in the query string.
        Delete => "DELETE",
    }
);

/// A URL with `{name}` placeholders (as in OpenAPI paths), each filled with the argument of that
/// name, percent-encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlTemplate {
    text: String,
    placeholders: Vec<String>,
}

impl UrlTemplate {
    /// Parses a template: balanced braces around names of letters, digits and `_`, and an
    /// absolute http(s) URL once filled.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (placeholders, filled) = placeholders(raw)?;
        HttpUrl::parse(&filled)?;
        Ok(Self {
            text: raw.to_owned(),
            placeholders,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The names of its placeholders, in order.
    pub fn placeholders(&self) -> &[String] {
        &self.placeholders
    }
}

/// The `{name}` placeholders of `text`, and `text` with each replaced by `x`.
fn placeholders(text: &str) -> Result<(Vec<String>, String), String> {
    fill_placeholders(text, &mut |_| Ok("x".to_owned())).map(|(filled, names)| (names, filled))
}

/// `text` (a URL template or an OpenAPI path) with each `{name}` placeholder replaced by
/// `value(name)`, and the names in order. Placeholders are balanced braces around letters,
/// digits and `_`; the first problem, or the first refusal of `value`, is the error.
pub fn fill_placeholders(
    text: &str,
    value: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<(String, Vec<String>), String> {
    let mut names = Vec::new();
    let mut filled = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(['{', '}']) {
        filled.push_str(&rest[..open]);
        if rest[open..].starts_with('}') {
            return Err("a `}` has no matching `{`".to_owned());
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| "a `{` has no matching `}`".to_owned())?;
        let name = &after[..close];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "`{{{name}}}` is not a placeholder: write {{name}} with letters, digits and `_`"
            ));
        }
        filled.push_str(&value(name)?);
        names.push(name.to_owned());
        rest = &after[close + 1..];
    }
    filled.push_str(rest);
    Ok((filled, names))
}

/// An `api` tool: one HTTP call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiCall<S> {
    /// The method.
    pub method: HttpMethod,
    /// The URL, with `{argument}` placeholders.
    pub url: UrlTemplate,
    /// Headers sent with the call.
    pub headers: Headers<S>,
    /// The JSON Schema of the arguments (an object schema).
    pub parameters: Value,
    /// How long the call may take.
    pub timeout_seconds: u32,
}

/// Where an operation's parameter goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParameterLocation {
    /// Into the path template.
    Path,
    /// Into the query string.
    Query,
    /// Into a header.
    Header,
}

/// One parameter of a plugin operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationParameter {
    /// Its name.
    pub name: String,
    /// Where it goes.
    pub location: ParameterLocation,
    /// Whether the call needs it.
    pub required: bool,
    /// Its JSON Schema, with local references resolved.
    pub schema: Value,
    /// What it means.
    pub description: Option<String>,
}

/// One operation of a plugin's document: a function the model may call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginOperation {
    /// Its `operationId`, the function's name.
    pub operation_id: ToolName,
    /// Its method.
    pub method: HttpMethod,
    /// Its path template, relative to the plugin's base URL.
    pub path: String,
    /// Its summary or description.
    pub description: Option<String>,
    /// Its parameters.
    pub parameters: Vec<OperationParameter>,
    /// The JSON Schema of its `application/json` request body, references resolved.
    pub body: Option<Value>,
}

/// A `plugin` tool: an OpenAPI 3 document, called at a base URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plugin<S> {
    /// Where the operations' paths are called.
    pub base_url: HttpUrl,
    /// The document as given.
    pub openapi: Value,
    /// Its operations.
    pub operations: Vec<PluginOperation>,
    /// Headers sent with every call.
    pub headers: Headers<S>,
    /// How long each call may take.
    pub timeout_seconds: u32,
}

/// A tool's configuration; its shape follows the tool's type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolConfiguration<S> {
    /// A built-in function.
    Function(BuiltinFunction),
    /// An HTTP call.
    Api(ApiCall<S>),
    /// An OpenAPI plugin.
    Plugin(Plugin<S>),
}

/// The largest OpenAPI document a plugin may carry.
pub const MAX_OPENAPI_BYTES: usize = 1024 * 1024;
/// A tool call's timeout when none is configured.
pub const DEFAULT_TOOL_TIMEOUT_SECONDS: u32 = 30;
/// The most operations a plugin may have (a model is offered at most 128 functions).
pub const MAX_OPERATIONS: usize = 64;
/// The most parameters one plugin operation may have, those of its path included.
pub const MAX_PARAMETERS: usize = 64;
/// The most the schemas of one plugin may add up to once their `$ref`s are expanded, in bytes
/// (of their strings and member names, plus one per value): references may repeat a
/// definition, and a chain of them would otherwise expand a small document without bound.
pub const MAX_EXPANDED_BYTES: usize = 4 * 1024 * 1024;

impl<S> ToolConfiguration<S> {
    /// The tool type this configuration is for.
    pub fn tool_type(&self) -> ToolType {
        match self {
            Self::Function(_) => ToolType::Function,
            Self::Api(_) => ToolType::Api,
            Self::Plugin(_) => ToolType::Plugin,
        }
    }

    /// Reads the configuration of a tool named `name` of type `tool_type`, every problem at its
    /// pointer inside the configuration. JSON Schemas are compiled by `schemas`.
    pub fn parse(
        tool_type: ToolType,
        name: &ToolName,
        value: &Value,
        read: ReadSecret<'_, S>,
        schemas: &dyn SchemaChecker,
    ) -> Result<Self, Vec<DocumentProblem>> {
        let mut problems = Problems::default();
        let what = format!("the configuration of a {tool_type} tool");
        let configuration = Object::read(value, "", &what, &mut problems).and_then(|mut object| {
            let configuration = match tool_type {
                ToolType::Function => {
                    let function =
                        object
                            .required_str("function", &mut problems)
                            .and_then(|label| {
                                label
                                    .parse::<BuiltinFunction>()
                                    .map_err(|error| problems.add("/function", error.to_string()))
                                    .ok()
                            });
                    // Responses show the built-in's parameters; a configuration sent back as read
                    // carries them unchanged, and nothing else is accepted.
                    let parameters = object.get("parameters");
                    if let (Some(function), Some(parameters)) = (function, parameters)
                        && *parameters != function.parameters()
                    {
                        problems.add(
                            "/parameters",
                            "a built-in function's parameters are fixed; omit `parameters`",
                        );
                    }
                    function.map(Self::Function)
                }
                ToolType::Api => {
                    parse_api(&mut object, read, schemas, &mut problems).map(Self::Api)
                }
                ToolType::Plugin => {
                    parse_plugin(&mut object, name, read, schemas, &mut problems).map(Self::Plugin)
                }
            };
            object.finish(&mut problems);
            configuration
        });
        problems.finish(configuration)
    }

    /// The JSON form, with each secret written by `write`.
    pub fn to_json(&self, write: &dyn Fn(&S) -> Value) -> Value {
        match self {
            Self::Function(function) => json!({
                "function": function.as_str(),
                "parameters": function.parameters(),
            }),
            Self::Api(call) => json!({
                "method": call.method.as_str(),
                "url": call.url.as_str(),
                "headers": call.headers.to_json_with(write),
                "parameters": call.parameters,
                "timeout_seconds": call.timeout_seconds,
            }),
            Self::Plugin(plugin) => json!({
                "base_url": plugin.base_url.as_str(),
                "openapi": plugin.openapi,
                "headers": plugin.headers.to_json_with(write),
                "timeout_seconds": plugin.timeout_seconds,
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

    /// The same configuration with every secret turned into another form by `map`.
    pub fn map_secrets<T>(
        self,
        map: MapSecret<'_, S, T>,
    ) -> Result<ToolConfiguration<T>, Vec<DocumentProblem>> {
        let mut problems = Problems::default();
        let mapped = match self {
            Self::Function(function) => Some(ToolConfiguration::Function(function)),
            Self::Api(call) => {
                let ApiCall {
                    method,
                    url,
                    headers,
                    parameters,
                    timeout_seconds,
                } = call;
                headers
                    .map_at("/headers", map, &mut problems)
                    .map(|headers| {
                        ToolConfiguration::Api(ApiCall {
                            method,
                            url,
                            headers,
                            parameters,
                            timeout_seconds,
                        })
                    })
            }
            Self::Plugin(plugin) => {
                let Plugin {
                    base_url,
                    openapi,
                    operations,
                    headers,
                    timeout_seconds,
                } = plugin;
                headers
                    .map_at("/headers", map, &mut problems)
                    .map(|headers| {
                        ToolConfiguration::Plugin(Plugin {
                            base_url,
                            openapi,
                            operations,
                            headers,
                            timeout_seconds,
                        })
                    })
            }
        };
        problems.finish(mapped)
    }
}

fn parse_headers<S>(
    object: &mut Object<'_>,
    read: ReadSecret<'_, S>,
    problems: &mut Problems,
) -> Option<Headers<S>> {
    match object.get("headers") {
        Some(value) => Headers::parse(value, &object.at("headers"), read, problems),
        None => Some(Headers::default()),
    }
}

fn parse_api<S>(
    object: &mut Object<'_>,
    read: ReadSecret<'_, S>,
    schemas: &dyn SchemaChecker,
    problems: &mut Problems,
) -> Option<ApiCall<S>> {
    let before = problems.count();
    let method = object.required_str("method", problems).and_then(|label| {
        label
            .to_ascii_uppercase()
            .parse::<HttpMethod>()
            .map_err(|error| problems.add("/method", error.to_string()))
            .ok()
    });
    let url = object.required_str("url", problems).and_then(|text| {
        UrlTemplate::parse(text)
            .map_err(|message| problems.add("/url", message))
            .ok()
    });
    let headers = parse_headers(object, read, problems);
    let parameters = match object.get("parameters") {
        Some(schema) => {
            let found = problems.count();
            problems.extend_at("/parameters", object_schema_problems(schema, schemas));
            (problems.count() == found).then(|| schema.clone())
        }
        None => Some(json!({"type": "object", "properties": {}})),
    };
    if let (Some(url), Some(parameters)) = (&url, &parameters) {
        let properties = parameters.get("properties").and_then(Value::as_object);
        for name in url.placeholders() {
            if !properties.is_some_and(|properties| properties.contains_key(name)) {
                problems.add(
                    "/url",
                    format!("the placeholder {{{name}}} is not a property of `parameters`"),
                );
            }
        }
    }
    let timeout_seconds = object.integer_or(
        "timeout_seconds",
        1..=crate::config::MAX_CALL_TIMEOUT_SECONDS,
        DEFAULT_TOOL_TIMEOUT_SECONDS,
        problems,
    );
    if problems.count() != before {
        return None;
    }
    Some(ApiCall {
        method: method?,
        url: url?,
        headers: headers?,
        parameters: parameters?,
        timeout_seconds: timeout_seconds?,
    })
}

/// The problems of a tool's parameters schema: it must describe an object of named arguments,
/// as function calling passes them.
fn object_schema_problems(schema: &Value, schemas: &dyn SchemaChecker) -> Vec<DocumentProblem> {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return vec![DocumentProblem {
            pointer: String::new(),
            message: "parameters are a JSON Schema of an object of named arguments: \
                      {\"type\": \"object\", \"properties\": {...}}"
                .to_owned(),
        }];
    }
    schemas.schema_problems(schema)
}

fn parse_plugin<S>(
    object: &mut Object<'_>,
    name: &ToolName,
    read: ReadSecret<'_, S>,
    schemas: &dyn SchemaChecker,
    problems: &mut Problems,
) -> Option<Plugin<S>> {
    let before = problems.count();
    let base_url = object.required_str("base_url", problems).and_then(|text| {
        HttpUrl::parse(text)
            .map_err(|message| problems.add("/base_url", message))
            .ok()
    });
    let headers = parse_headers(object, read, problems);
    let timeout_seconds = object.integer_or(
        "timeout_seconds",
        1..=crate::config::MAX_CALL_TIMEOUT_SECONDS,
        DEFAULT_TOOL_TIMEOUT_SECONDS,
        problems,
    );
    let openapi = object.required("openapi", problems);
    let operations = openapi.and_then(|document| {
        if !serialized_within(document, MAX_OPENAPI_BYTES) {
            problems.add("/openapi", "the OpenAPI document may have at most 1 MiB");
            return None;
        }
        operations(document, name, schemas, problems)
    });
    if problems.count() != before {
        return None;
    }
    Some(Plugin {
        base_url: base_url?,
        openapi: openapi?.clone(),
        operations: operations?,
        headers: headers?,
        timeout_seconds: timeout_seconds?,
    })
}

/// The operations of an OpenAPI 3 document, each checked: an `operationId` usable as a function
/// name (prefixed by the tool's name, within 64 characters), parameters in the path, query or
/// headers with compilable schemas, path parameters that match the path's placeholders, and an
/// optional JSON request body.
fn operations(
    document: &Value,
    tool: &ToolName,
    schemas: &dyn SchemaChecker,
    problems: &mut Problems,
) -> Option<Vec<PluginOperation>> {
    const AT: &str = "/openapi";
    let before = problems.count();
    let Some(root) = document.as_object() else {
        problems.add(
            AT,
            format!(
                "`openapi` is an OpenAPI 3 document (a JSON object), not {}",
                type_name(document)
            ),
        );
        return None;
    };
    if !root
        .get("openapi")
        .and_then(Value::as_str)
        .is_some_and(|version| version.starts_with("3."))
    {
        problems.add(&child(AT, "openapi"), "the document must declare `\"openapi\": \"3.x.y\"`; Swagger 2 documents are not supported");
    }
    let Some(paths) = root
        .get("paths")
        .and_then(Value::as_object)
        .filter(|paths| !paths.is_empty())
    else {
        problems.add(
            &child(AT, "paths"),
            "`paths` must be an object with at least one operation",
        );
        return None;
    };
    let methods: Vec<(HttpMethod, String)> = HttpMethod::ALL
        .iter()
        .map(|method| (*method, method.as_str().to_ascii_lowercase()))
        .collect();
    // Counted before any is read: each costs schemas to expand and compile.
    let count: usize = paths
        .values()
        .filter_map(Value::as_object)
        .map(|item| {
            methods
                .iter()
                .filter(|(_, key)| item.contains_key(key))
                .count()
        })
        .sum();
    if count > MAX_OPERATIONS {
        problems.add(
            &child(AT, "paths"),
            format!("a plugin has at most {MAX_OPERATIONS} operations, this document has {count}"),
        );
        return None;
    }
    let mut expander = Expander::new(document);
    let mut operations = Vec::new();
    let mut seen = HashSet::new();
    for (path, item) in paths {
        let path_at = child(&child(AT, "paths"), path);
        let Some(item) = item.as_object() else {
            problems.add(&path_at, "a path item must be an object");
            continue;
        };
        let Ok((placeholders, _)) =
            placeholders(path).map_err(|message| problems.add(&path_at, message))
        else {
            continue;
        };
        if !path.starts_with('/') {
            problems.add(&path_at, "a path starts with `/`");
        }
        let shared = item.get("parameters");
        for (method, key) in &methods {
            let Some(operation) = item.get(key) else {
                continue;
            };
            let at = child(&path_at, key);
            if let Some(parsed) = operation_at(
                &mut expander,
                operation,
                shared,
                &at,
                *method,
                path,
                &placeholders,
                tool,
                schemas,
                problems,
            ) {
                if !seen.insert(parsed.operation_id.clone()) {
                    problems.add(
                        &child(&at, "operationId"),
                        format!("operationId `{}` is used twice", parsed.operation_id),
                    );
                }
                operations.push(parsed);
            }
        }
    }
    if operations.is_empty() && problems.count() == before {
        problems.add(
            &child(AT, "paths"),
            "the document has no operation (get, post, put, patch or delete)",
        );
    }
    (problems.count() == before).then_some(operations)
}

#[allow(clippy::too_many_arguments)]
fn operation_at(
    expander: &mut Expander<'_>,
    operation: &Value,
    shared: Option<&Value>,
    at: &str,
    method: HttpMethod,
    path: &str,
    placeholders: &[String],
    tool: &ToolName,
    schemas: &dyn SchemaChecker,
    problems: &mut Problems,
) -> Option<PluginOperation> {
    let before = problems.count();
    let Some(object) = operation.as_object() else {
        problems.add(at, "an operation must be an object");
        return None;
    };
    let id_at = child(at, "operationId");
    let operation_id = match object.get("operationId").and_then(Value::as_str) {
        None => {
            problems.add(
                &id_at,
                "every operation needs an `operationId`: it becomes the function's name",
            );
            None
        }
        Some(id) => match ToolName::parse(id) {
            Err(error) => {
                problems.add(&id_at, error.to_string());
                None
            }
            Ok(id) if tool.as_str().len() + 1 + id.as_str().len() > ToolName::MAX_CHARS => {
                problems.add(&id_at, format!(
                    "the function `{tool}-{id}` would exceed {} characters; shorten the operationId or the tool's name",
                    ToolName::MAX_CHARS
                ));
                None
            }
            Ok(id) => Some(id),
        },
    };
    let description = ["summary", "description"]
        .iter()
        .find_map(|key| object.get(*key).and_then(Value::as_str))
        .map(str::to_owned);
    let mut parameters: Vec<OperationParameter> = Vec::new();
    // Where each (name, location) is in `parameters`: an operation's own parameter replaces a
    // path-level one of the same name and place.
    let mut positions: HashMap<(String, ParameterLocation), usize> = HashMap::new();
    let lists = [
        (shared, None),
        (object.get("parameters"), Some(child(at, "parameters"))),
    ];
    let declared: usize = lists
        .iter()
        .filter_map(|(list, _)| list.and_then(Value::as_array))
        .map(Vec::len)
        .sum();
    if declared > MAX_PARAMETERS {
        problems.add(
            at,
            format!(
                "an operation has at most {MAX_PARAMETERS} parameters (its path's included), \
                 this one has {declared}"
            ),
        );
        return None;
    }
    for (list, list_at) in lists {
        let Some(list) = list else { continue };
        let list_at = list_at.unwrap_or_else(|| {
            format!(
                "{}/parameters",
                at.rsplit_once('/').map_or(at, |(item, _)| item)
            )
        });
        let Some(items) = list.as_array() else {
            problems.add(&list_at, "`parameters` must be an array");
            continue;
        };
        for (index, item) in items.iter().enumerate() {
            let item_at = format!("{list_at}/{index}");
            if let Some(parameter) = parameter_at(expander, item, &item_at, schemas, problems) {
                let key = (parameter.name.clone(), parameter.location);
                match positions.get(&key) {
                    Some(position) => parameters[*position] = parameter,
                    None => {
                        positions.insert(key, parameters.len());
                        parameters.push(parameter);
                    }
                }
            }
        }
    }
    let in_path: HashSet<&str> = placeholders.iter().map(String::as_str).collect();
    for name in placeholders {
        let declared = positions.contains_key(&(name.clone(), ParameterLocation::Path));
        if !declared {
            problems.add(
                at,
                format!("the path placeholder {{{name}}} has no `in: path` parameter"),
            );
        }
    }
    for parameter in &parameters {
        if parameter.location == ParameterLocation::Path
            && !in_path.contains(parameter.name.as_str())
        {
            problems.add(
                at,
                format!(
                    "path parameter `{}` does not appear in `{path}`",
                    parameter.name
                ),
            );
        }
    }
    let body = match object.get("requestBody") {
        None => None,
        Some(body) => body_schema(expander, body, &child(at, "requestBody"), schemas, problems),
    };
    if problems.count() != before {
        return None;
    }
    Some(PluginOperation {
        operation_id: operation_id?,
        method,
        path: path.to_owned(),
        description,
        parameters,
        body,
    })
}

fn parameter_at(
    expander: &mut Expander<'_>,
    item: &Value,
    at: &str,
    schemas: &dyn SchemaChecker,
    problems: &mut Problems,
) -> Option<OperationParameter> {
    let item = expander
        .resolve(item)
        .map_err(|message| problems.add(at, message))
        .ok()?;
    let object = item.as_object().or_else(|| {
        problems.add(at, "a parameter must be an object");
        None
    })?;
    let name = object
        .get("name")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty());
    if name.is_none() {
        problems.add(&child(at, "name"), "a parameter needs a `name`");
    }
    let location = match object.get("in").and_then(Value::as_str) {
        Some("path") => Some(ParameterLocation::Path),
        Some("query") => Some(ParameterLocation::Query),
        Some("header") => Some(ParameterLocation::Header),
        _ => {
            problems.add(
                &child(at, "in"),
                "`in` must be path, query or header (cookies are not supported)",
            );
            None
        }
    };
    let schema = match object.get("schema") {
        None => Some(json!({"type": "string"})),
        // The item was resolved whole: its schema's references are already expanded.
        Some(schema) => checked_schema(schema, &child(at, "schema"), schemas, problems),
    };
    let required = object
        .get("required")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || location == Some(ParameterLocation::Path);
    Some(OperationParameter {
        name: name?.to_owned(),
        location: location?,
        required,
        schema: schema?,
        description: object
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn body_schema(
    expander: &mut Expander<'_>,
    body: &Value,
    at: &str,
    schemas: &dyn SchemaChecker,
    problems: &mut Problems,
) -> Option<Value> {
    let body = expander
        .resolve(body)
        .map_err(|message| problems.add(at, message))
        .ok()?;
    let content = body.get("content").and_then(Value::as_object);
    let Some(json_body) = content.and_then(|content| content.get("application/json")) else {
        problems.add(
            at,
            "a request body must offer `content` of type application/json",
        );
        return None;
    };
    let schema_at = format!(
        "{}/schema",
        child(&child(at, "content"), "application/json")
    );
    match json_body.get("schema") {
        Some(schema) => checked_schema(schema, &schema_at, schemas, problems),
        None => Some(json!({})),
    }
}

/// `schema` (its references already expanded), when `schemas` compiles it.
fn checked_schema(
    schema: &Value,
    at: &str,
    schemas: &dyn SchemaChecker,
    problems: &mut Problems,
) -> Option<Value> {
    let found = schemas.schema_problems(schema);
    if found.is_empty() {
        Some(schema.clone())
    } else {
        problems.extend_at(at, found);
        None
    }
}

/// How deep references may nest: deeper is almost surely a cycle, which a function's parameters
/// cannot express.
const MAX_REFERENCE_DEPTH: usize = 16;

/// How deep a value with its references expanded may nest: a bound on the expansion's own
/// recursion (the schema checker refuses far less deep schemas anyway).
const MAX_EXPANDED_NESTING: usize = 128;

/// Expands the local references (`{"$ref": "#/..."}`) of values inside one document, all of them
/// together within [`MAX_EXPANDED_BYTES`].
struct Expander<'d> {
    document: &'d Value,
    budget: usize,
}

impl<'d> Expander<'d> {
    fn new(document: &'d Value) -> Self {
        Self {
            document,
            budget: MAX_EXPANDED_BYTES,
        }
    }

    /// `value` with every reference inside it replaced by what it points at in the document.
    fn resolve(&mut self, value: &Value) -> Result<Value, String> {
        self.expand(value, 0, 0)
    }

    fn expand(
        &mut self,
        value: &Value,
        references: usize,
        nesting: usize,
    ) -> Result<Value, String> {
        if references > MAX_REFERENCE_DEPTH {
            return Err("references nest too deeply or form a cycle; a tool's parameters must be a finite schema".to_owned());
        }
        if nesting > MAX_EXPANDED_NESTING {
            return Err(format!(
                "with its references expanded, the schema nests more than {MAX_EXPANDED_NESTING} \
                 levels deep; flatten it"
            ));
        }
        self.spend(1)?;
        match value {
            Value::Object(members) => {
                if let Some(reference) = members.get("$ref") {
                    let target = reference
                        .as_str()
                        .and_then(|reference| reference.strip_prefix('#'))
                        .ok_or_else(|| format!("only references inside the document (#/...) are supported, not {reference}"))?;
                    let found = self.document.pointer(target).ok_or_else(|| {
                        format!("the reference #{target} points at nothing in the document")
                    })?;
                    return self.expand(found, references + 1, nesting);
                }
                let mut resolved = Map::with_capacity(members.len());
                for (key, member) in members {
                    self.spend(key.len())?;
                    resolved.insert(key.clone(), self.expand(member, references, nesting + 1)?);
                }
                Ok(Value::Object(resolved))
            }
            Value::Array(items) => items
                .iter()
                .map(|item| self.expand(item, references, nesting + 1))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::String(text) => {
                self.spend(text.len())?;
                Ok(value.clone())
            }
            other => Ok(other.clone()),
        }
    }

    /// Takes `amount` from the budget, or says it is spent.
    fn spend(&mut self, amount: usize) -> Result<(), String> {
        self.budget = self.budget.checked_sub(amount).ok_or_else(|| {
            format!(
                "with their references expanded, the document's schemas add up to more than {} \
                 MiB; refer to smaller definitions, or fewer times",
                MAX_EXPANDED_BYTES / (1024 * 1024)
            )
        })?;
        Ok(())
    }
}

/// Everything about a tool that its agent's owner sets.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSettings {
    /// Its name, unique per agent: the function name the model calls.
    pub name: ToolName,
    /// What it does, as the model reads it.
    pub description: Option<Description>,
    /// What it is and how it is called, secrets sealed.
    pub configuration: ToolConfiguration<StoredSecret>,
    /// Whether the agent's model is offered it.
    pub enabled: bool,
}

/// A tool of an agent.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentTool {
    /// Its identifier.
    pub id: AgentToolId,
    /// The agent it belongs to.
    pub agent_id: AgentId,
    /// What its agent's owner set.
    pub settings: ToolSettings,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SecretInput, shown_secret};

    /// Refuses every `"type": "nope"`, wherever it is.
    struct FakeSchemas;

    fn nope_pointers(value: &Value, at: &str, found: &mut Vec<DocumentProblem>) {
        match value {
            Value::Object(members) => {
                for (key, member) in members {
                    if key == "type" && member == "nope" {
                        found.push(DocumentProblem {
                            pointer: child(at, key),
                            message: "bad type".into(),
                        });
                    }
                    nope_pointers(member, &child(at, key), found);
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
            let mut found = Vec::new();
            nope_pointers(schema, "", &mut found);
            found
        }
    }

    fn parse(
        tool_type: ToolType,
        value: &Value,
    ) -> Result<ToolConfiguration<SecretInput>, Vec<DocumentProblem>> {
        let name = ToolName::parse("weather").unwrap();
        ToolConfiguration::parse(
            tool_type,
            &name,
            value,
            &mut SecretInput::from_json,
            &FakeSchemas,
        )
    }

    fn pointers(problems: &[DocumentProblem]) -> Vec<&str> {
        problems
            .iter()
            .map(|problem| problem.pointer.as_str())
            .collect()
    }

    #[test]
    fn built_in_functions_show_their_parameters() {
        let configuration = parse(ToolType::Function, &json!({"function": "json_query"})).unwrap();
        let shown = configuration.to_json(&|_| shown_secret());
        assert_eq!(shown["parameters"]["required"], json!(["expression"]));
        assert_eq!(parse(ToolType::Function, &shown).unwrap(), configuration);
        let problems = parse(
            ToolType::Function,
            &json!({"function": "json_query", "parameters": {}}),
        )
        .unwrap_err();
        assert_eq!(pointers(&problems), vec!["/parameters"]);
        let problems = parse(ToolType::Function, &json!({"function": "rm_rf"})).unwrap_err();
        assert_eq!(pointers(&problems), vec!["/function"]);
    }

    #[test]
    fn api_calls_check_their_url_placeholders_against_their_parameters() {
        let good = json!({
            "method": "get",
            "url": "https://api.example.com/cities/{city}/weather",
            "headers": {"X-Api-Key": {"env": "WEATHER_KEY"}},
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        });
        let ToolConfiguration::Api(call) = parse(ToolType::Api, &good).unwrap() else {
            panic!("not api")
        };
        assert_eq!(call.method, HttpMethod::Get);
        assert_eq!(call.url.placeholders(), ["city"]);
        let problems = parse(
            ToolType::Api,
            &json!({"method": "TRACE", "url": "https://x/{city}", "parameters": {"type": "object", "properties": {"city": {"type": "nope"}}}}),
        )
        .unwrap_err();
        assert_eq!(
            pointers(&problems),
            vec!["/method", "/parameters/properties/city/type"]
        );
        let problems = parse(
            ToolType::Api,
            &json!({"method": "GET", "url": "https://x/{town}"}),
        )
        .unwrap_err();
        assert_eq!(pointers(&problems), vec!["/url"]);
        assert!(problems[0].message.contains("{town}"));
        let problems = parse(
            ToolType::Api,
            &json!({"method": "GET", "url": "https://x/{a", "parameters": {"type": "nope"}}),
        )
        .unwrap_err();
        assert_eq!(pointers(&problems), vec!["/url", "/parameters"]);
        let problems = parse(
            ToolType::Api,
            &json!({"method": "GET", "url": "https://x/", "parameters": {"type": "string"}}),
        )
        .unwrap_err();
        assert_eq!(pointers(&problems), vec!["/parameters"]);
    }

    fn petstore() -> Value {
        json!({
            "openapi": "3.0.3",
            "info": {"title": "Pets", "version": "1"},
            "paths": {
                "/pets/{petId}": {
                    "parameters": [{"$ref": "#/components/parameters/PetId"}],
                    "get": {"operationId": "getPet", "summary": "Find a pet"},
                    "delete": {"operationId": "deletePet"}
                },
                "/pets": {
                    "post": {
                        "operationId": "addPet",
                        "parameters": [{"name": "dry_run", "in": "query", "schema": {"type": "boolean"}}],
                        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}
                    }
                }
            },
            "components": {
                "parameters": {"PetId": {"name": "petId", "in": "path", "required": true, "schema": {"type": "integer"}}},
                "schemas": {"Pet": {"type": "object", "properties": {"name": {"type": "string"}, "tag": {"$ref": "#/components/schemas/Tag"}}}, "Tag": {"type": "string"}}
            }
        })
    }

    #[test]
    fn plugin_operations_become_functions_with_resolved_schemas() {
        let configuration = parse(
            ToolType::Plugin,
            &json!({"base_url": "http://127.0.0.1:9000", "openapi": petstore()}),
        )
        .unwrap();
        let ToolConfiguration::Plugin(plugin) = configuration else {
            panic!("not a plugin")
        };
        let ids: Vec<&str> = plugin
            .operations
            .iter()
            .map(|op| op.operation_id.as_str())
            .collect();
        assert_eq!(ids, vec!["addPet", "getPet", "deletePet"]);
        let add = &plugin.operations[0];
        assert_eq!(
            add.body.as_ref().unwrap()["properties"]["tag"],
            json!({"type": "string"})
        );
        assert_eq!(add.parameters[0].location, ParameterLocation::Query);
        let get = &plugin.operations[1];
        assert_eq!(get.parameters[0].name, "petId");
        assert!(get.parameters[0].required);
        assert_eq!(get.description.as_deref(), Some("Find a pet"));
    }

    #[test]
    fn plugin_documents_are_checked_operation_by_operation() {
        let mut document = petstore();
        document["paths"]["/pets"]["post"]["operationId"] = json!("add pet");
        document["paths"]["/pets/{petId}"]["delete"] = json!({});
        document["paths"]["/pets"]["post"]["parameters"][0]["in"] = json!("cookie");
        document["components"]["schemas"]["Tag"] = json!({"type": "nope"});
        document["paths"]["/loop"] = json!({"get": {"operationId": "loop", "requestBody": {"$ref": "#/components/requestBodies/Loop"}}});
        document["components"]["requestBodies"] =
            json!({"Loop": {"$ref": "#/components/requestBodies/Loop"}});
        let problems = parse(
            ToolType::Plugin,
            &json!({"base_url": "http://x", "openapi": document}),
        )
        .unwrap_err();
        assert_eq!(
            pointers(&problems),
            vec![
                "/openapi/paths/~1loop/get/requestBody",
                "/openapi/paths/~1pets/post/operationId",
                "/openapi/paths/~1pets/post/parameters/0/in",
                "/openapi/paths/~1pets/post/requestBody/content/application~1json/schema/properties/tag/type",
                "/openapi/paths/~1pets~1{petId}/delete/operationId",
            ]
        );
        let problems = parse(
            ToolType::Plugin,
            &json!({"base_url": "http://x", "openapi": {"swagger": "2.0", "paths": {}}}),
        )
        .unwrap_err();
        assert_eq!(
            pointers(&problems),
            vec!["/openapi/openapi", "/openapi/paths"]
        );
    }

    #[test]
    fn operations_past_the_limit_are_refused_before_any_is_read() {
        let paths: Map<String, Value> = (0..10_000)
            .map(|index| {
                (
                    format!("/p{index}"),
                    json!({"get": {"operationId": format!("op{index}")}}),
                )
            })
            .collect();
        let problems = parse(
            ToolType::Plugin,
            &json!({"base_url": "http://x", "openapi": {"openapi": "3.1.0", "paths": paths}}),
        )
        .unwrap_err();
        assert_eq!(pointers(&problems), vec!["/openapi/paths"]);
        assert_eq!(
            problems[0].message,
            "a plugin has at most 64 operations, this document has 10000"
        );
    }

    #[test]
    fn parameters_past_the_limit_are_refused_before_any_is_read() {
        let parameter = |index: usize| json!({"name": format!("q{index}"), "in": "query"});
        let shared: Vec<Value> = (0..40).map(parameter).collect();
        let own: Vec<Value> = (40..65).map(parameter).collect();
        let document = json!({"openapi": "3.1.0", "paths": {"/a": {
            "parameters": shared, "get": {"operationId": "a", "parameters": own}}}});
        let problems = parse(
            ToolType::Plugin,
            &json!({"base_url": "http://x", "openapi": document}),
        )
        .unwrap_err();
        assert_eq!(pointers(&problems), vec!["/openapi/paths/~1a/get"]);
        assert!(problems[0].message.contains("at most 64 parameters"));
        // An operation's own parameter replaces its path's of the same name and place.
        let document = json!({"openapi": "3.1.0", "paths": {"/a": {
            "parameters": [{"name": "q", "in": "query", "schema": {"type": "string"}}],
            "get": {"operationId": "a", "parameters": [
                {"name": "q", "in": "query", "schema": {"type": "integer"}},
                {"name": "q", "in": "header"}]}}}});
        let ToolConfiguration::Plugin(plugin) = parse(
            ToolType::Plugin,
            &json!({"base_url": "http://x", "openapi": document}),
        )
        .unwrap() else {
            panic!("not a plugin")
        };
        let parameters = &plugin.operations[0].parameters;
        assert_eq!(parameters.len(), 2);
        assert_eq!(parameters[0].schema, json!({"type": "integer"}));
        assert_eq!(parameters[1].location, ParameterLocation::Header);
    }

    #[test]
    fn references_cannot_expand_a_small_document_without_bound() {
        // Each level refers to the one below ten times: 10^6 copies of a 1 KB string.
        let mut defs = Map::new();
        defs.insert(
            "l0".to_owned(),
            json!({"type": "string", "description": "x".repeat(1000)}),
        );
        for level in 1..=6 {
            let properties: Map<String, Value> = (0..10)
                .map(|index| {
                    (
                        format!("p{index}"),
                        json!({"$ref": format!("#/components/schemas/l{}", level - 1)}),
                    )
                })
                .collect();
            defs.insert(
                format!("l{level}"),
                json!({"type": "object", "properties": properties}),
            );
        }
        let document = json!({"openapi": "3.1.0",
            "paths": {"/a": {"post": {"operationId": "a", "requestBody": {"content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/l6"}}}}}}},
            "components": {"schemas": defs}});
        let started = std::time::Instant::now();
        let problems = parse(
            ToolType::Plugin,
            &json!({"base_url": "http://x", "openapi": document}),
        )
        .unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(
            pointers(&problems),
            vec!["/openapi/paths/~1a/post/requestBody"]
        );
        assert!(
            problems[0].message.contains("add up to more than 4 MiB"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn function_names_stay_within_64_characters() {
        let name = ToolName::parse(&"t".repeat(60)).unwrap();
        let problems = ToolConfiguration::<SecretInput>::parse(
            ToolType::Plugin,
            &name,
            &json!({"base_url": "http://x", "openapi": {"openapi": "3.1.0", "paths": {"/a": {"get": {"operationId": "longer"}}}}}),
            &mut SecretInput::from_json,
            &FakeSchemas,
        )
        .unwrap_err();
        assert!(problems[0].message.contains("exceed 64"));
    }
}
