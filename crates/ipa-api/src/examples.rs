//! An example of every request body, in the published document.
//!
//! Swagger UI fills "Try it out" with them, generated clients' users read them, and Schemathesis
//! sends them in its examples phase. A test holds each to its operation's schema, value rules
//! and formats included, so an example is never one the server would refuse for its shape.

use serde_json::{Value, json};

use crate::document::operation_mut;

/// The example body of each operation that reads one, by operation id.
fn examples() -> Vec<(&'static str, Value)> {
    let passphrase = "correct horse battery staple";
    vec![
        (
            "login",
            json!({"identifier": "ada@example.com", "password": passphrase}),
        ),
        (
            "updateMe",
            json!({"full_name": "Ada King", "current_password": passphrase,
                   "new_password": "an even longer passphrase"}),
        ),
        (
            "createUser",
            json!({"email": "grace@example.com", "username": "grace", "password": "a long passphrase",
                   "full_name": "Grace Hopper", "is_superuser": false}),
        ),
        (
            "updateUser",
            json!({"full_name": "Grace B. Hopper", "is_active": true}),
        ),
        (
            "createWorkflow",
            json!({"name": "Refund approval", "description": "Refunds need a manager's approval before they are paid.",
                   "tags": ["finance", "refunds"], "metadata": {"team": "billing"}}),
        ),
        (
            "updateWorkflow",
            json!({"description": "Refunds above 100 need a manager's approval.", "tags": ["finance"]}),
        ),
        (
            "publishWorkflowVersion",
            json!({
                "definition": {"steps": [
                    {"name": "approve", "type": "approval",
                     "message": "Refund {{ input.amount }} for order {{ input.order_id }}?"},
                    {"name": "pay", "type": "webhook",
                     "request": {"method": "POST", "url": "https://payments.example.com/refunds",
                                 "headers": {"Idempotency-Key": "{{ input.order_id }}"},
                                 "body": {"order": "{{ input.order_id }}", "amount": "{{ input.amount }}"}},
                     "retry": {"max_attempts": 3}},
                ]},
                "change_summary": "Ask a manager, then pay.",
            }),
        ),
        ("rollbackWorkflow", json!({"version_number": 1})),
        (
            "startExecution",
            json!({"input": {"order_id": "A-1001", "amount": 250}}),
        ),
        (
            "decideApproval",
            json!({"decision": "approve", "comment": "Within policy."}),
        ),
        (
            "createAgent",
            json!({"name": "Refund advisor", "type": "semantic_kernel", "model_name": "gpt-4o",
                   "system_prompt": "You advise on refunds.", "temperature": 0.2, "max_tokens": 800,
                   "configuration": {"provider": {"type": "openai", "api_key": {"env": "OPENAI_API_KEY"}}}}),
        ),
        (
            "updateAgent",
            json!({"temperature": 0.5, "max_tokens": 1200}),
        ),
        (
            "createAgentTool",
            json!({"tool_name": "now", "tool_type": "function", "description": "The current time, in UTC.",
                   "configuration": {"function": "current_time"}}),
        ),
        (
            "updateAgentTool",
            json!({"description": "The current date and time, in UTC."}),
        ),
    ]
}

/// Adds each example to its operation's JSON request body. Returns the operations it did not
/// find, or that read no JSON body.
pub fn declare(document: &mut Value) -> Vec<String> {
    let mut missing = Vec::new();
    for (operation_id, example) in examples() {
        let media = operation_mut(document, operation_id)
            .and_then(|operation| operation.pointer_mut("/requestBody/content"))
            .and_then(Value::as_object_mut)
            .and_then(|content| content.values_mut().next())
            .and_then(Value::as_object_mut);
        match media {
            Some(media) => {
                media.insert("example".to_owned(), example);
            }
            None => missing.push(operation_id.to_owned()),
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_finds_its_operation() {
        let mut document: Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        assert_eq!(declare(&mut document), Vec::<String>::new());
    }

    #[test]
    fn every_body_has_an_example_that_fits_its_schema() {
        let document: Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        let mut checked = 0;
        for item in document["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                let Some(content) = operation.pointer("/requestBody/content") else {
                    continue;
                };
                let media = content.as_object().unwrap().values().next().unwrap();
                let id = &operation["operationId"];
                let example = media
                    .get("example")
                    .unwrap_or_else(|| panic!("{id} has no example"));
                let validator = crate::document::published_validator(&media["schema"]);
                let errors: Vec<String> = validator
                    .iter_errors(example)
                    .map(|error| format!("{} at {}", error, error.instance_path()))
                    .collect();
                assert!(errors.is_empty(), "{id}'s example: {errors:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, examples().len());
    }
}
