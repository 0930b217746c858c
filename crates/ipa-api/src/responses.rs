//! Which responses each operation declares: those it can give, and no others.
//!
//! Every handler returns the same error type ([`crate::error::ApiError`]), so poem-openapi
//! declares every error status on every operation (a `409` on `GET /me`), and none of the
//! statuses that arise before a handler runs (`415` for a body that is not JSON). This module
//! trims each operation's list to what it can answer, from what the document says of the
//! operation (whether it takes parameters or a body, whether it needs credentials) and from
//! what its handler can refuse (who may call it, which conflicts it detects), and adds `415`
//! where a body is read. Each error response lists the codes it may carry, in its description
//! and in [`ERROR_CODES`]. The end-to-end tests hold every answer the server gives, status and
//! code, to its operation's lists.
//!
//! It also declares the links from each operation that creates something to the operations that
//! read and change it ([`LINKS`]), so that readers (and stateful testers) know where an id goes.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The extension of a response listing the error codes it may carry.
pub const ERROR_CODES: &str = "x-error-codes";

/// The errors of each operation beyond those its shape implies (see [`error_codes`]): who may
/// not call it, which conflicts it detects, which of its values the domain refuses and how, by
/// operation, status and code. Read from the handlers' error mappings.
const OWN_ERRORS: &[(&str, &str, &[&str])] = &[
    ("login", "401", &["invalid_credentials"]),
    ("login", "429", &["too_many_attempts"]),
    (
        "updateMe",
        "422",
        &[
            "wrong_current_password",
            "current_password_required",
            "new_password_required",
        ],
    ),
    ("createUser", "403", &["forbidden"]),
    (
        "createUser",
        "409",
        &["duplicate_email", "duplicate_username"],
    ),
    ("listUsers", "403", &["forbidden"]),
    ("getUser", "403", &["forbidden"]),
    ("updateUser", "403", &["forbidden"]),
    ("updateUser", "409", &["last_superuser"]),
    ("deactivateUser", "403", &["forbidden"]),
    ("deactivateUser", "409", &["last_superuser"]),
    ("listWorkflows", "400", &["invalid_filter"]),
    (
        "updateWorkflow",
        "409",
        &["invalid_transition", "no_current_version"],
    ),
    ("deleteWorkflow", "409", &["workflow_has_executions"]),
    ("publishWorkflowVersion", "422", &["invalid_definition"]),
    ("getWorkflowVersion", "404", &["version_not_found"]),
    ("diffWorkflowVersions", "404", &["version_not_found"]),
    ("rollbackWorkflow", "422", &["version_not_found"]),
    ("startExecution", "400", &["invalid_idempotency_key"]),
    (
        "startExecution",
        "409",
        &["workflow_not_active", "no_current_version"],
    ),
    (
        "startExecution",
        "422",
        &["version_not_found", "idempotency_key_reused"],
    ),
    ("cancelExecution", "409", &["invalid_transition"]),
    ("pauseExecution", "409", &["invalid_transition"]),
    ("resumeExecution", "409", &["invalid_transition"]),
    ("retryExecution", "409", &["invalid_transition"]),
    ("decideApproval", "403", &["forbidden"]),
    ("decideApproval", "404", &["step_not_found"]),
    (
        "decideApproval",
        "409",
        &["not_an_approval", "invalid_transition"],
    ),
    ("listAgents", "400", &["invalid_filter"]),
    ("createAgent", "422", &["invalid_configuration"]),
    ("updateAgent", "403", &["forbidden"]),
    ("updateAgent", "409", &["invalid_transition"]),
    (
        "updateAgent",
        "422",
        &["invalid_configuration", "immutable_field"],
    ),
    ("deleteAgent", "403", &["forbidden"]),
    ("deleteAgent", "409", &["agent_in_use"]),
    ("createAgentTool", "403", &["forbidden"]),
    (
        "createAgentTool",
        "409",
        &["duplicate_tool_name", "too_many_tools"],
    ),
    ("createAgentTool", "422", &["invalid_configuration"]),
    ("getAgentTool", "404", &["tool_not_found"]),
    ("updateAgentTool", "403", &["forbidden"]),
    ("updateAgentTool", "404", &["tool_not_found"]),
    (
        "updateAgentTool",
        "409",
        &["duplicate_tool_name", "too_many_tools"],
    ),
    (
        "updateAgentTool",
        "422",
        &["invalid_configuration", "immutable_field"],
    ),
    ("enableAgentTool", "403", &["forbidden"]),
    ("enableAgentTool", "404", &["tool_not_found"]),
    ("enableAgentTool", "409", &["too_many_tools"]),
    ("disableAgentTool", "403", &["forbidden"]),
    ("disableAgentTool", "404", &["tool_not_found"]),
    ("deleteAgentTool", "403", &["forbidden"]),
    ("deleteAgentTool", "404", &["tool_not_found"]),
];

/// What an operation's declaration says of it.
struct Facts {
    id: String,
    has_body: bool,
    secured: bool,
    parameters: Vec<(String, String)>,
}

impl Facts {
    fn of(operation: &Map<String, Value>) -> Self {
        let text =
            |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or_default().to_owned();
        Self {
            id: text(operation.get("operationId")),
            has_body: operation.contains_key("requestBody"),
            secured: operation
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|requirements| !requirements.is_empty()),
            parameters: operation
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|parameter| (text(parameter.get("name")), text(parameter.get("in"))))
                .collect(),
        }
    }

    fn has_parameter(&self, name: &str) -> bool {
        self.parameters.iter().any(|(known, _)| known == name)
    }
}

/// The error codes an operation may answer, by status: those of its shape (parameters, body,
/// credentials, a resource in its path), those every operation may give, and [`OWN_ERRORS`].
fn error_codes(facts: &Facts) -> BTreeMap<&'static str, Vec<&'static str>> {
    let mut codes: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
    let mut add = |status: &'static str, new: &[&'static str]| {
        let list = codes.entry(status).or_default();
        for code in new {
            if !list.contains(code) {
                list.push(code);
            }
        }
    };
    if facts.has_body {
        add(
            "400",
            &[
                "bad_request",
                "invalid_type",
                "unknown_field",
                "missing_field",
                "invalid_field",
                "json_too_deep",
            ],
        );
        add("413", &["payload_too_large"]);
        add("415", &["unsupported_media_type"]);
    }
    if !facts.parameters.is_empty() {
        add("400", &["invalid_parameter"]);
    }
    if facts.has_parameter("limit") {
        add("400", &["invalid_limit"]);
    }
    if facts.has_parameter("cursor") {
        add("400", &["invalid_cursor"]);
    }
    if facts.secured {
        add("401", &["unauthorized", "invalid_token"]);
    }
    if facts.parameters.iter().any(|(_, place)| place == "path") {
        add("404", &["not_found"]);
    }
    // Text that cannot be stored, anywhere in a request (the Door).
    add("422", &["invalid_field"]);
    add("500", &["internal"]);
    add("503", &["database_unavailable"]);
    for (id, status, own) in OWN_ERRORS {
        if *id == facts.id {
            add(status, own);
        }
    }
    codes
}

/// Links from the `201` of a creating operation to the operations that act on what it created,
/// whose parameters take the given runtime expressions.
struct Links {
    from: &'static str,
    parameters: &'static [(&'static str, &'static str)],
    to: &'static [&'static str],
}

/// The status links leave from: a creation's.
const CREATED: &str = "201";

/// The created resource's id, for an operation whose only path parameter is `id`.
const CREATED_ID: &[(&str, &str)] = &[("id", "$response.body#/id")];

/// A created tool: its agent is the request's, its id the response's.
const TOOL: &[(&str, &str)] = &[
    ("id", "$request.path.id"),
    ("tool_id", "$response.body#/id"),
];

/// Links from creating operations to those that act on what they created. The stream of a run's
/// events is left out: it stays open while the run lasts.
const LINKS: &[Links] = &[
    Links {
        from: "createUser",
        parameters: CREATED_ID,
        to: &["getUser", "updateUser", "deactivateUser"],
    },
    Links {
        from: "createWorkflow",
        parameters: CREATED_ID,
        to: &[
            "getWorkflow",
            "updateWorkflow",
            "deleteWorkflow",
            "publishWorkflowVersion",
            "listWorkflowVersions",
            "startExecution",
            "rollbackWorkflow",
        ],
    },
    Links {
        from: "publishWorkflowVersion",
        parameters: &[
            ("id", "$request.path.id"),
            ("number", "$response.body#/version_number"),
        ],
        to: &["getWorkflowVersion"],
    },
    Links {
        from: "startExecution",
        parameters: CREATED_ID,
        to: &[
            "getExecution",
            "listExecutionLogs",
            "cancelExecution",
            "pauseExecution",
            "resumeExecution",
            "retryExecution",
        ],
    },
    Links {
        from: "createAgent",
        parameters: CREATED_ID,
        to: &[
            "getAgent",
            "updateAgent",
            "deleteAgent",
            "listAgentTools",
            "createAgentTool",
        ],
    },
    Links {
        from: "createAgentTool",
        parameters: TOOL,
        to: &[
            "getAgentTool",
            "updateAgentTool",
            "enableAgentTool",
            "disableAgentTool",
            "deleteAgentTool",
        ],
    },
];

/// Declares [`LINKS`] in `document`; returns those whose operations or response it did not find.
pub fn declare_links(document: &mut Value) -> Vec<String> {
    let mut missing = Vec::new();
    let mut operations: Vec<String> = Vec::new();
    if let Some(paths) = document.get("paths").and_then(Value::as_object) {
        for item in paths.values().filter_map(Value::as_object) {
            for operation in item.values() {
                if let Some(id) = operation.get("operationId").and_then(Value::as_str) {
                    operations.push(id.to_owned());
                }
            }
        }
    }
    for links in LINKS {
        let parameters: Map<String, Value> = links
            .parameters
            .iter()
            .map(|(name, expression)| ((*name).to_owned(), json!(expression)))
            .collect();
        for to in links.to {
            let response = operations
                .iter()
                .any(|id| id == to)
                .then(|| response_mut(document, links.from, CREATED))
                .flatten();
            let Some(response) = response.and_then(Value::as_object_mut) else {
                missing.push(format!("{} {CREATED} -> {to}", links.from));
                continue;
            };
            let declared = response.entry("links").or_insert_with(|| json!({}));
            if let Some(declared) = declared.as_object_mut() {
                declared.insert(
                    (*to).to_owned(),
                    json!({"operationId": to, "parameters": parameters}),
                );
            }
        }
    }
    missing
}

/// The response object `status` of the operation `operation_id`.
fn response_mut<'d>(
    document: &'d mut Value,
    operation_id: &str,
    status: &str,
) -> Option<&'d mut Value> {
    crate::document::operation_mut(document, operation_id)?
        .get_mut("responses")?
        .get_mut(status)
}

/// The description of `415`.
const UNSUPPORTED_MEDIA_TYPE: &str = "The request body is not JSON (`unsupported_media_type`): \
     send it with `Content-Type: application/json`.";

/// Trims every operation of `document` (the published document, as JSON) to the responses it
/// can give (see the module's documentation). Operations whose responses poem-openapi did not
/// take from [`crate::error::ApiError`] (the health checks) are left as they are.
pub fn declare(document: &mut Value) {
    let paths = document.get_mut("paths").and_then(Value::as_object_mut);
    for item in paths.into_iter().flat_map(|paths| paths.values_mut()) {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            trim(operation);
        }
    }
}

/// Trims one operation's responses to those it can give, and lists each one's error codes.
fn trim(operation: &mut Map<String, Value>) {
    let facts = Facts::of(operation);
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    // Only operations answering with `ApiError` declare `413`: the others are not trimmed.
    let Some(template) = responses.get("413").cloned() else {
        return;
    };
    let codes = error_codes(&facts);
    responses.retain(|status, _| status.starts_with('2') || codes.contains_key(status.as_str()));
    for (status, codes) in codes {
        let response = responses.entry(status).or_insert_with(|| {
            let mut response = template.clone();
            if let Some(object) = response.as_object_mut() {
                object.insert("description".to_owned(), json!(UNSUPPORTED_MEDIA_TYPE));
            }
            response
        });
        if let Some(response) = response.as_object_mut() {
            let listed: Vec<String> = codes.iter().map(|code| format!("`{code}`")).collect();
            let description = response
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            response.insert(
                "description".to_owned(),
                json!(format!("{description} Codes: {}.", listed.join(", "))),
            );
            response.insert(ERROR_CODES.to_owned(), json!(codes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses(document: &Value, path: &str, method: &str) -> Vec<String> {
        let mut statuses: Vec<String> = document["paths"][path][method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        statuses.sort();
        statuses
    }

    #[test]
    fn each_operation_declares_what_it_can_answer() {
        let document: Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        assert_eq!(
            statuses(&document, "/me", "get"),
            ["200", "401", "422", "500", "503"]
        );
        assert_eq!(
            statuses(&document, "/auth/login", "post"),
            [
                "200", "400", "401", "413", "415", "422", "429", "500", "503"
            ]
        );
        assert_eq!(
            statuses(&document, "/workflows/{id}", "delete"),
            ["204", "400", "401", "404", "409", "422", "500", "503"]
        );
        assert_eq!(
            statuses(&document, "/users", "post"),
            [
                "201", "400", "401", "403", "409", "413", "415", "422", "500", "503"
            ]
        );
        assert_eq!(statuses(&document, "/healthz", "get"), ["200"]);
        assert_eq!(
            document["paths"]["/workflows"]["post"]["responses"]["415"][ERROR_CODES],
            json!(["unsupported_media_type"])
        );
        let start = &document["paths"]["/workflows/{id}/executions"]["post"]["responses"];
        assert_eq!(
            start["409"][ERROR_CODES],
            json!(["workflow_not_active", "no_current_version"])
        );
        assert_eq!(
            start["400"][ERROR_CODES],
            json!([
                "bad_request",
                "invalid_type",
                "unknown_field",
                "missing_field",
                "invalid_field",
                "json_too_deep",
                "invalid_parameter",
                "invalid_idempotency_key"
            ])
        );
        assert!(
            start["409"]["description"]
                .as_str()
                .unwrap()
                .ends_with("Codes: `workflow_not_active`, `no_current_version`.")
        );
    }

    #[test]
    fn creating_operations_link_to_those_that_read_what_they_created() {
        let mut document: Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        assert_eq!(declare_links(&mut document), Vec::<String>::new());
        assert_eq!(
            document["paths"]["/workflows/{id}/versions"]["post"]["responses"]["201"]["links"]["getWorkflowVersion"],
            json!({"operationId": "getWorkflowVersion", "parameters": {
                "id": "$request.path.id", "number": "$response.body#/version_number"}})
        );
    }

    #[test]
    fn the_lists_name_only_operations_that_exist() {
        let document: Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        let ids: Vec<&str> = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|operation| operation["operationId"].as_str())
            .collect();
        for (id, _, _) in OWN_ERRORS {
            assert!(ids.contains(id), "{id} is no operation of the document");
        }
    }
}
