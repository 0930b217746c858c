//! Which responses each operation declares: those it can give, and no others.
//!
//! Every handler returns the same error type ([`crate::error::ApiError`]), so poem-openapi
//! declares every error status on every operation (a `409` on `GET /me`), and none of the
//! statuses that arise before a handler runs (`415` for a body that is not JSON). This module
//! trims each operation's list to what it can answer, from what the document says of the
//! operation (whether it takes parameters or a body, whether it needs credentials) and from
//! what its handler can refuse (who may call it, which conflicts it detects), and adds `415`
//! where a body is read. The end-to-end tests hold every answer the server gives to its
//! operation's list.
//!
//! It also declares the links from each operation that creates something to the operations that
//! read and change it ([`LINKS`]), so that readers (and stateful testers) know where an id goes.

use serde_json::{Map, Value, json};

/// Operations that refuse some signed-in callers with `403` (the others answer `404` for what a
/// caller may not see).
const FORBIDDING: &[&str] = &[
    "createUser",
    "listUsers",
    "getUser",
    "updateUser",
    "deactivateUser",
    "updateAgent",
    "deleteAgent",
    "createAgentTool",
    "updateAgentTool",
    "enableAgentTool",
    "disableAgentTool",
    "deleteAgentTool",
    "decideApproval",
];

/// Operations that refuse a request that conflicts with the current state with `409`.
const CONFLICTING: &[&str] = &[
    "createUser",
    "updateUser",
    "deactivateUser",
    "updateWorkflow",
    "deleteWorkflow",
    "publishWorkflowVersion",
    "rollbackWorkflow",
    "startExecution",
    "cancelExecution",
    "pauseExecution",
    "resumeExecution",
    "retryExecution",
    "decideApproval",
    "updateAgent",
    "deleteAgent",
    "createAgentTool",
    "updateAgentTool",
    "enableAgentTool",
    "disableAgentTool",
];

/// Operations that throttle with `429`.
const THROTTLED: &[&str] = &["login"];

/// A link: from the responses of `from` with `status`, to the operation `to`, whose parameters
/// take the given runtime expressions.
struct Link {
    from: &'static str,
    status: &'static str,
    to: &'static str,
    parameters: &'static [(&'static str, &'static str)],
}

/// The created resource's id, for an operation whose only path parameter is `id`.
const CREATED_ID: &[(&str, &str)] = &[("id", "$response.body#/id")];

/// Links from creating operations to those that act on what they created. The stream of a run's
/// events is left out: it stays open while the run lasts.
const LINKS: &[Link] = &[
    Link {
        from: "createUser",
        status: "201",
        to: "getUser",
        parameters: CREATED_ID,
    },
    Link {
        from: "createUser",
        status: "201",
        to: "updateUser",
        parameters: CREATED_ID,
    },
    Link {
        from: "createUser",
        status: "201",
        to: "deactivateUser",
        parameters: CREATED_ID,
    },
    Link {
        from: "createWorkflow",
        status: "201",
        to: "getWorkflow",
        parameters: CREATED_ID,
    },
    Link {
        from: "createWorkflow",
        status: "201",
        to: "updateWorkflow",
        parameters: CREATED_ID,
    },
    Link {
        from: "createWorkflow",
        status: "201",
        to: "deleteWorkflow",
        parameters: CREATED_ID,
    },
    Link {
        from: "createWorkflow",
        status: "201",
        to: "publishWorkflowVersion",
        parameters: CREATED_ID,
    },
    Link {
        from: "createWorkflow",
        status: "201",
        to: "listWorkflowVersions",
        parameters: CREATED_ID,
    },
    Link {
        from: "createWorkflow",
        status: "201",
        to: "startExecution",
        parameters: CREATED_ID,
    },
    Link {
        from: "createWorkflow",
        status: "201",
        to: "rollbackWorkflow",
        parameters: CREATED_ID,
    },
    Link {
        from: "publishWorkflowVersion",
        status: "201",
        to: "getWorkflowVersion",
        parameters: &[
            ("id", "$request.path.id"),
            ("number", "$response.body#/version_number"),
        ],
    },
    Link {
        from: "startExecution",
        status: "201",
        to: "getExecution",
        parameters: CREATED_ID,
    },
    Link {
        from: "startExecution",
        status: "201",
        to: "listExecutionLogs",
        parameters: CREATED_ID,
    },
    Link {
        from: "startExecution",
        status: "201",
        to: "cancelExecution",
        parameters: CREATED_ID,
    },
    Link {
        from: "startExecution",
        status: "201",
        to: "pauseExecution",
        parameters: CREATED_ID,
    },
    Link {
        from: "startExecution",
        status: "201",
        to: "resumeExecution",
        parameters: CREATED_ID,
    },
    Link {
        from: "startExecution",
        status: "201",
        to: "retryExecution",
        parameters: CREATED_ID,
    },
    Link {
        from: "createAgent",
        status: "201",
        to: "getAgent",
        parameters: CREATED_ID,
    },
    Link {
        from: "createAgent",
        status: "201",
        to: "updateAgent",
        parameters: CREATED_ID,
    },
    Link {
        from: "createAgent",
        status: "201",
        to: "deleteAgent",
        parameters: CREATED_ID,
    },
    Link {
        from: "createAgent",
        status: "201",
        to: "listAgentTools",
        parameters: CREATED_ID,
    },
    Link {
        from: "createAgent",
        status: "201",
        to: "createAgentTool",
        parameters: CREATED_ID,
    },
    Link {
        from: "createAgentTool",
        status: "201",
        to: "getAgentTool",
        parameters: TOOL,
    },
    Link {
        from: "createAgentTool",
        status: "201",
        to: "updateAgentTool",
        parameters: TOOL,
    },
    Link {
        from: "createAgentTool",
        status: "201",
        to: "enableAgentTool",
        parameters: TOOL,
    },
    Link {
        from: "createAgentTool",
        status: "201",
        to: "disableAgentTool",
        parameters: TOOL,
    },
    Link {
        from: "createAgentTool",
        status: "201",
        to: "deleteAgentTool",
        parameters: TOOL,
    },
];

/// A created tool: its agent is the request's, its id the response's.
const TOOL: &[(&str, &str)] = &[
    ("id", "$request.path.id"),
    ("tool_id", "$response.body#/id"),
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
    for link in LINKS {
        let response = operations
            .iter()
            .any(|id| id == link.to)
            .then(|| response_mut(document, link.from, link.status))
            .flatten();
        let Some(response) = response.and_then(Value::as_object_mut) else {
            missing.push(format!("{} {} -> {}", link.from, link.status, link.to));
            continue;
        };
        let parameters: Map<String, Value> = link
            .parameters
            .iter()
            .map(|(name, expression)| ((*name).to_owned(), json!(expression)))
            .collect();
        let links = response.entry("links").or_insert_with(|| json!({}));
        if let Some(links) = links.as_object_mut() {
            links.insert(
                link.to.to_owned(),
                json!({"operationId": link.to, "parameters": parameters}),
            );
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
    document
        .get_mut("paths")?
        .as_object_mut()?
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .find(|operation| {
            operation.get("operationId").and_then(Value::as_str) == Some(operation_id)
        })?
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

/// Trims one operation's responses.
fn trim(operation: &mut Map<String, Value>) {
    let id = operation
        .get("operationId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let parameters = operation
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_body = operation.contains_key("requestBody");
    let has_path_parameter = parameters
        .iter()
        .any(|parameter| parameter.get("in").and_then(Value::as_str) == Some("path"));
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|requirements| !requirements.is_empty());
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    // Only operations answering with `ApiError` declare `413`: the others are not trimmed.
    let Some(too_large) = responses.get("413").cloned() else {
        return;
    };
    let gives = |status: &str| match status {
        "400" => has_body || !parameters.is_empty(),
        "401" => secured || THROTTLED.contains(&id.as_str()),
        "403" => FORBIDDING.contains(&id.as_str()),
        "404" => has_path_parameter,
        "409" => CONFLICTING.contains(&id.as_str()),
        "413" | "415" => has_body,
        "429" => THROTTLED.contains(&id.as_str()),
        _ => true,
    };
    responses.retain(|status, _| gives(status));
    if has_body {
        let mut unsupported = too_large;
        if let Some(object) = unsupported.as_object_mut() {
            object.insert("description".to_owned(), json!(UNSUPPORTED_MEDIA_TYPE));
        }
        responses.insert("415".to_owned(), unsupported);
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
            document["paths"]["/workflows"]["post"]["responses"]["415"]["description"],
            UNSUPPORTED_MEDIA_TYPE
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
        for id in FORBIDDING.iter().chain(CONFLICTING).chain(THROTTLED) {
            assert!(ids.contains(id), "{id} is no operation of the document");
        }
    }
}
