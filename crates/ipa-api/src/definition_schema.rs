//! The schema of a workflow definition in the published document: its steps, one of three
//! types (`oneOf`, told apart by `type`), with their fields and limits.
//!
//! The server reads a definition as free JSON and the domain ([`ipa_workflow::definition`])
//! checks it whole, reporting every problem at its pointer in one `422`. The document describes
//! the same rules, built from the domain's constants, so that clients get typed steps and Swagger
//! UI shows their fields. The shape check ([`crate::shape`]) leaves a definition to the domain,
//! so that a client still learns of every problem at once. What no
//! schema can say stays the domain's alone: step names unique, templates that compile and refer
//! to earlier steps, agents and approvers that exist, a backoff's ceiling above its start.

use ipa_workflow::definition::{
    MAX_APPROVERS, MAX_ATTEMPTS, MAX_BACKOFF_FACTOR, MAX_HEADERS, MAX_STEPS, MAX_TIMEOUT_MS,
    RetryPolicy, StepName,
};
use serde_json::{Value, json};

use crate::limits::WHITE_SPACE;

/// The component naming a definition.
pub const DEFINITION: &str = "WorkflowDefinition";

/// The members of a definition that carry the schema, by request and response schema.
const DEFINITION_MEMBERS: [(&str, &str); 2] = [
    ("PublishVersionRequest", "definition"),
    ("WorkflowVersion", "definition"),
];

/// A reference to the component `name`.
fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// Text that is not blank (a template or a message).
fn text(description: &str) -> Value {
    json!({"type": "string", "pattern": format!("[^{WHITE_SPACE}]"), "description": description})
}

/// A duration in milliseconds, from 1 to the longest a step may wait.
fn duration(description: &str, nullable: bool) -> Value {
    let kind = if nullable {
        json!(["integer", "null"])
    } else {
        json!("integer")
    };
    json!({"type": kind, "minimum": 1, "maximum": MAX_TIMEOUT_MS, "description": description})
}

/// What every step has, with `kind`'s own members added.
fn step(kind: &str, description: &str, members: &Value, required: &[&str]) -> Value {
    let mut properties = json!({
        "name": {
            "type": "string",
            "pattern": format!("^[a-z0-9_]{{1,{}}}$", StepName::MAX_CHARS),
            "description": "Unique in the definition; templates refer to the step's output as `steps.<name>.output`.",
        },
        "type": {"type": "string", "const": kind, "description": "The step's type."},
        "when": {
            "type": ["string", "null"],
            "pattern": format!("[^{WHITE_SPACE}]"),
            "description": "A condition (`{{ input.amount > 100 }}`); the step is skipped when it is false.",
        },
        "timeout_ms": duration("How long the step may take, in milliseconds (at most 30 days).", true),
    });
    if let (Some(all), Some(own)) = (properties.as_object_mut(), members.as_object()) {
        all.extend(own.clone());
    }
    let mut required_members = vec!["name", "type"];
    required_members.extend_from_slice(required);
    json!({
        "type": "object",
        "description": description,
        "properties": properties,
        "required": required_members,
        "additionalProperties": false,
    })
}

/// The components of a definition, by name.
fn components() -> Vec<(&'static str, Value)> {
    let uuid = json!({"type": "string", "format": "uuid"});
    let defaults = RetryPolicy::default();
    vec![
        (
            DEFINITION,
            json!({
                "type": "object",
                "description": "A workflow definition: the steps a version runs, in order. Published whole; every problem is reported at once, each at its JSON pointer.",
                "properties": {
                    "steps": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_STEPS,
                        "items": reference("WorkflowStep"),
                        "description": format!("1 to {MAX_STEPS} steps, run in order."),
                    },
                    "timeout_ms": duration("How long a run may take in all, in milliseconds (at most 30 days).", true),
                },
                "required": ["steps"],
                "additionalProperties": false,
            }),
        ),
        (
            "WorkflowStep",
            json!({
                "description": "One step: a webhook call, an approval or an agent, told apart by `type`.",
                "oneOf": [reference("WebhookStep"), reference("ApprovalStep"), reference("AgentStep")],
                "discriminator": {
                    "propertyName": "type",
                    "mapping": {
                        "webhook": "#/components/schemas/WebhookStep",
                        "approval": "#/components/schemas/ApprovalStep",
                        "agent": "#/components/schemas/AgentStep",
                    },
                },
            }),
        ),
        (
            "WebhookStep",
            step(
                "webhook",
                "Calls an HTTP endpoint; its output is the answer's status, headers and body.",
                &json!({
                    "request": reference("WebhookRequest"),
                    "retry": {
                        "anyOf": [reference("RetryPolicy"), {"type": "null"}],
                        "description": format!(
                            "How failed calls are retried (default: {} attempt(s) in all).",
                            defaults.max_attempts
                        ),
                    },
                }),
                &["request"],
            ),
        ),
        (
            "WebhookRequest",
            json!({
                "type": "object",
                "description": "The call a webhook step makes. Strings may be templates.",
                "properties": {
                    "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
                    "url": {
                        "type": "string",
                        "pattern": format!("^[{WHITE_SPACE}]*([Hh][Tt][Tt][Pp][Ss]?://|\\{{\\{{)"),
                        "description": "An http:// or https:// URL, or a template giving one.",
                    },
                    "headers": {
                        "type": ["object", "null"],
                        "maxProperties": MAX_HEADERS,
                        "propertyNames": {"pattern": "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"},
                        "additionalProperties": {"type": "string"},
                        "description": format!("At most {MAX_HEADERS} headers; values may be templates."),
                    },
                    "body": {"description": "The JSON body, whose strings may be templates."},
                },
                "required": ["method", "url"],
                "additionalProperties": false,
            }),
        ),
        (
            "RetryPolicy",
            json!({
                "type": "object",
                "description": "How a failed call is retried.",
                "properties": {
                    "max_attempts": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_ATTEMPTS,
                        "description": format!(
                            "Attempts in all, 1 to {MAX_ATTEMPTS} (default {}).",
                            defaults.max_attempts
                        ),
                    },
                    "backoff": {
                        "anyOf": [reference("Backoff"), {"type": "null"}],
                        "description": "The waits between attempts.",
                    },
                },
                "additionalProperties": false,
            }),
        ),
        (
            "Backoff",
            json!({
                "type": "object",
                "description": "Waits that grow by `factor` from `initial_ms` up to `max_ms` (which may not be less than `initial_ms`).",
                "properties": {
                    "initial_ms": duration(&format!("The first wait (default {}).", defaults.backoff.initial_ms), false),
                    "factor": {
                        "type": "number",
                        "minimum": 1,
                        "maximum": MAX_BACKOFF_FACTOR,
                        "description": format!("How much each wait grows (default {}).", defaults.backoff.factor),
                    },
                    "max_ms": duration(&format!("The longest wait (default {}).", defaults.backoff.max_ms), false),
                },
                "additionalProperties": false,
            }),
        ),
        (
            "ApprovalStep",
            step(
                "approval",
                "Waits for a person to approve or reject; its output is the decision.",
                &json!({
                    "message": text("What the approver is asked; may be a template."),
                    "approvers": {
                        "type": ["array", "null"],
                        "maxItems": MAX_APPROVERS,
                        "uniqueItems": true,
                        "items": uuid,
                        "description": "The users who may decide (active accounts); none means the workflow's owner or a superuser.",
                    },
                }),
                &["message"],
            ),
        ),
        (
            "AgentStep",
            step(
                "agent",
                "Asks an agent; its output is the agent's answer.",
                &json!({
                    "agent_id": {"type": "string", "format": "uuid", "description": "An active agent the publisher may use."},
                    "prompt": text("What the agent is asked; may be a template."),
                }),
                &["agent_id", "prompt"],
            ),
        ),
    ]
}

/// Adds the definition's components to `document` and points the definition members at them.
/// Returns the members it did not find.
pub fn declare(document: &mut Value) -> Vec<String> {
    crate::document::add_components(document, components());
    DEFINITION_MEMBERS
        .iter()
        .filter_map(|(schema, member)| {
            crate::document::refer_member(document, schema, member, DEFINITION, false)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipa_workflow::WorkflowDefinition;

    /// A validator of definitions by the published document.
    fn validator() -> jsonschema::Validator {
        crate::document::published_validator(&reference(DEFINITION))
    }

    #[test]
    fn every_member_gets_the_schema() {
        let mut document: Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        assert_eq!(declare(&mut document), Vec::<String>::new());
    }

    #[test]
    fn the_document_and_the_domain_agree_on_definitions() {
        let validator = validator();
        let agent = "3f0e2c49-9c1b-4a57-8a8c-0d7c6e2b1a10";
        let user = "9b2f4c1e-2d3a-4e5f-8a9b-0c1d2e3f4a5b";
        for (definition, valid) in [
            (
                json!({"steps": [{"name": "pay", "type": "webhook", "request": {"method": "POST", "url": "https://pay.example/x"}}]}),
                true,
            ),
            (
                json!({"steps": [{"name": "pay", "type": "webhook", "request": {"method": "GET", "url": "{{ input.url }}",
                "headers": {"X-Key": "{{ input.key }}"}, "body": {"a": 1}},
                "retry": {"max_attempts": 5, "backoff": {"initial_ms": 100, "factor": 1.5, "max_ms": 1000}},
                "when": "{{ input.go }}", "timeout_ms": 5000}], "timeout_ms": 60000}),
                true,
            ),
            (
                json!({"steps": [{"name": "ok", "type": "approval", "message": "Go?", "approvers": [user]}]}),
                true,
            ),
            (
                json!({"steps": [{"name": "ask", "type": "agent", "agent_id": agent, "prompt": "Hi"}]}),
                true,
            ),
            (json!({"steps": []}), false),
            (
                json!({"steps": [{"name": "Pay", "type": "webhook", "request": {"method": "POST", "url": "https://x.io"}}]}),
                false,
            ),
            (
                json!({"steps": [{"name": "pay", "type": "webhook", "request": {"method": "POST", "url": "ftp://x.io"}}]}),
                false,
            ),
            (
                json!({"steps": [{"name": "pay", "type": "webhook", "request": {"method": "TRACE", "url": "https://x.io"}}]}),
                false,
            ),
            (
                json!({"steps": [{"name": "pay", "type": "webhook", "request": {"method": "POST", "url": "https://x.io"},
                "retry": {"max_attempts": 11}}]}),
                false,
            ),
            (
                json!({"steps": [{"name": "pay", "type": "webhook", "request": {"method": "POST", "url": "https://x.io", "extra": 1}}]}),
                false,
            ),
            (
                json!({"steps": [{"name": "ok", "type": "approval", "message": "  "}]}),
                false,
            ),
            (
                json!({"steps": [{"name": "ok", "type": "approval", "message": "Go?", "approvers": ["not-a-uuid"]}]}),
                false,
            ),
            (
                json!({"steps": [{"name": "ask", "type": "agent", "prompt": "Hi"}]}),
                false,
            ),
            (json!({"steps": [{"name": "x", "type": "script"}]}), false),
            (
                json!({"steps": [{"name": "ok", "type": "approval", "message": "Go?"}], "extra": true}),
                false,
            ),
            (
                json!({"steps": [{"name": "ok", "type": "approval", "message": "Go?", "timeout_ms": 0}]}),
                false,
            ),
        ] {
            let by_document = validator.is_valid(&definition);
            let by_domain = WorkflowDefinition::parse(&definition).is_ok();
            assert_eq!(by_document, valid, "the document on {definition}");
            assert_eq!(by_domain, valid, "the domain on {definition}");
        }
    }
}
