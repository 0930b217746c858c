//! The rules the domain holds what clients send to, declared in the published document.
//!
//! Each value object checks its own rules, and the server answers a value that breaks one with
//! `422` (or `400` for a parameter): the domain is the authority. The document states the same
//! rules as JSON Schema keywords (`maxLength`, `pattern`, `minimum`, `maxItems`...), built here
//! from the domain's own constants, so that generated clients and their users know them before
//! sending and the two cannot drift apart. [`declare`] reports any rule whose place it did not
//! find (a renamed field), and a test requires there be none.
//!
//! The domain ignores white space around names and descriptions and counts what is left. A name's
//! pattern says exactly that (padding, then 1 to n characters that begin and end with something
//! else than white space). Free text is bounded by `maxLength`, which counts the whole string: the
//! document is the stricter of the two there, and only for text padded with white space, so a
//! client that keeps to it is never refused for a length.
//!
//! Members the server reads as free JSON (metadata, a run's input) are declared with the type
//! the domain requires (an object); that rule is one of shape, so [`crate::shape`] holds bodies
//! to it (`400 invalid_type`). A definition's schema is [`crate::definition_schema`]'s.

use ipa_agent::{MaxTokens, ModelName, SystemPrompt, ToolName};
use ipa_identity::{Email, Password, Username};
use ipa_kernel::PageLimit;
use ipa_kernel::text::NAME_MAX_CHARS;
use ipa_workflow::{ChangeSummary, Description, Tags, VersionNumber};
use serde_json::{Map, Value, json};

/// White space as the domain trims it (Unicode's `White_Space`, Rust's `char::is_whitespace`),
/// as the inside of a regular expression's character class.
pub(crate) const WHITE_SPACE: &str =
    r"\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Control characters (Unicode's `Cc`, Rust's `char::is_control`), likewise.
pub(crate) const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";

use crate::executions::MAX_COMMENT_CHARS;

/// Where a rule applies.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// A property of a component schema.
    Property(&'static str, &'static str),
    /// The items of an array property of a component schema.
    Items(&'static str, &'static str),
    /// Every operation's parameter of this name.
    Parameter(&'static str),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Property(schema, property) => write!(f, "{schema}.{property}"),
            Self::Items(schema, property) => write!(f, "{schema}.{property}[]"),
            Self::Parameter(name) => write!(f, "parameter {name}"),
        }
    }
}

/// The pattern of a name: 1 to `max_chars` characters without control characters once the white
/// space around it is taken away (the rule of [`ipa_kernel::text::required_text`]), or also
/// nothing but white space when `blank` is allowed. The length is counted by the pattern, between
/// the paddings, since `maxLength` would count them too.
fn name_pattern(max_chars: usize, blank: bool) -> String {
    let edge = format!("[^{CONTROL}{WHITE_SPACE}]");
    let name = format!(
        "{edge}(?:[^{CONTROL}]{{0,{inner}}}{edge})?",
        inner = max_chars.saturating_sub(2)
    );
    let name = if blank { format!("(?:{name})?") } else { name };
    format!("^[{WHITE_SPACE}]*{name}[{WHITE_SPACE}]*$")
}

/// A name of at most `max_chars` characters.
fn name(max_chars: usize) -> Value {
    json!({"pattern": name_pattern(max_chars, false)})
}

/// A name of at most `max_chars` characters that may be left blank (which clears it).
fn clearable_name(max_chars: usize) -> Value {
    json!({"pattern": name_pattern(max_chars, true)})
}

/// Free text of at most `max_chars` characters (descriptions, summaries, comments).
fn text(max_chars: usize) -> Value {
    json!({"maxLength": max_chars})
}

/// A version number.
fn version_number() -> Value {
    json!({"minimum": 1, "maximum": VersionNumber::MAX})
}

/// Every rule the document declares, and where.
fn rules() -> Vec<(Place, Value)> {
    use Place::{Items, Parameter, Property};
    let padded = |inner: &str| format!("^[{WHITE_SPACE}]*{inner}[{WHITE_SPACE}]*$");
    let email = json!({
        "maxLength": Email::MAX_CHARS,
        "pattern": padded(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z|]{2,}"),
    });
    let username = json!({
        "pattern": padded(&format!(
            "[A-Za-z0-9._-]{{{},{}}}",
            Username::MIN_CHARS,
            Username::MAX_CHARS
        )),
    });
    let password = json!({"minLength": Password::MIN_CHARS, "maxLength": Password::MAX_CHARS});
    let tool_name = json!({
        "maxLength": ToolName::MAX_CHARS,
        "pattern": format!("^[A-Za-z0-9_-]{{1,{}}}$", ToolName::MAX_CHARS),
    });
    let tags = json!({"maxItems": Tags::MAX_TAGS});
    let tag = name(Tags::MAX_TAG_CHARS);
    let agent_description = text(ipa_agent::Description::MAX_CHARS);
    vec![
        (
            Property("LoginRequest", "identifier"),
            json!({"pattern": format!("[^{WHITE_SPACE}]")}),
        ),
        (Property("CreateUserRequest", "email"), email),
        (Property("CreateUserRequest", "username"), username),
        (Property("CreateUserRequest", "password"), password.clone()),
        (
            Property("CreateUserRequest", "full_name"),
            clearable_name(NAME_MAX_CHARS),
        ),
        (
            Property("UpdateUserRequest", "full_name"),
            clearable_name(NAME_MAX_CHARS),
        ),
        (
            Property("UpdateMeRequest", "full_name"),
            clearable_name(NAME_MAX_CHARS),
        ),
        (Property("UpdateMeRequest", "new_password"), password),
        (
            Property("CreateWorkflowRequest", "name"),
            name(NAME_MAX_CHARS),
        ),
        (
            Property("UpdateWorkflowRequest", "name"),
            name(NAME_MAX_CHARS),
        ),
        (
            Property("CreateWorkflowRequest", "description"),
            text(Description::MAX_CHARS),
        ),
        (
            Property("UpdateWorkflowRequest", "description"),
            text(Description::MAX_CHARS),
        ),
        (Property("CreateWorkflowRequest", "tags"), tags.clone()),
        (Property("UpdateWorkflowRequest", "tags"), tags),
        (Items("CreateWorkflowRequest", "tags"), tag.clone()),
        (Items("UpdateWorkflowRequest", "tags"), tag),
        (
            Property("PublishVersionRequest", "change_summary"),
            text(ChangeSummary::MAX_CHARS),
        ),
        (
            Property("RollbackRequest", "version_number"),
            version_number(),
        ),
        (
            Property("StartExecutionRequest", "version_number"),
            version_number(),
        ),
        (
            Property("ApprovalDecisionRequest", "comment"),
            text(MAX_COMMENT_CHARS),
        ),
        (Property("CreateAgentRequest", "name"), name(NAME_MAX_CHARS)),
        (Property("UpdateAgentRequest", "name"), name(NAME_MAX_CHARS)),
        (
            Property("CreateAgentRequest", "description"),
            agent_description.clone(),
        ),
        (
            Property("UpdateAgentRequest", "description"),
            agent_description.clone(),
        ),
        (
            Property("CreateAgentRequest", "model_name"),
            name(ModelName::MAX_CHARS),
        ),
        (
            Property("UpdateAgentRequest", "model_name"),
            name(ModelName::MAX_CHARS),
        ),
        (
            Property("CreateAgentRequest", "system_prompt"),
            text(SystemPrompt::MAX_CHARS),
        ),
        (
            Property("UpdateAgentRequest", "system_prompt"),
            text(SystemPrompt::MAX_CHARS),
        ),
        (
            Property("CreateAgentRequest", "max_tokens"),
            json!({"minimum": 1, "maximum": MaxTokens::MAX}),
        ),
        (
            Property("UpdateAgentRequest", "max_tokens"),
            json!({"minimum": 1, "maximum": MaxTokens::MAX}),
        ),
        (
            Property("CreateAgentRequest", "temperature"),
            json!({"minimum": 0, "maximum": 2, "multipleOf": 0.01}),
        ),
        (
            Property("UpdateAgentRequest", "temperature"),
            json!({"minimum": 0, "maximum": 2, "multipleOf": 0.01}),
        ),
        (
            Property("CreateToolRequest", "tool_name"),
            tool_name.clone(),
        ),
        (Property("UpdateToolRequest", "tool_name"), tool_name),
        (
            Property("CreateToolRequest", "description"),
            agent_description.clone(),
        ),
        (
            Property("UpdateToolRequest", "description"),
            agent_description,
        ),
        (
            Property("CreateWorkflowRequest", "metadata"),
            json!({"type": ["object", "null"]}),
        ),
        (
            Property("UpdateWorkflowRequest", "metadata"),
            json!({"type": ["object", "null"]}),
        ),
        (
            Property("StartExecutionRequest", "input"),
            json!({"type": ["object", "null"]}),
        ),
        (Parameter("cursor"), json!({"minLength": 1})),
        (
            Parameter("limit"),
            json!({"minimum": 1, "maximum": PageLimit::MAX, "default": PageLimit::DEFAULT}),
        ),
        (Parameter("number"), version_number()),
        (Parameter("from"), version_number()),
        (Parameter("to"), version_number()),
        (Parameter("name"), name(NAME_MAX_CHARS)),
        (
            Parameter("Idempotency-Key"),
            json!({"pattern": "^[!-~]{1,255}$"}),
        ),
    ]
}

/// Adds every rule to `document` (the published document, as JSON). Returns the places where
/// no rule could go, named for a person: a renamed schema, property or parameter.
pub fn declare(document: &mut Value) -> Vec<String> {
    let mut missing = Vec::new();
    for (place, keywords) in rules() {
        let found = match place {
            Place::Property(schema, property) | Place::Items(schema, property) => {
                let pointer = format!("/components/schemas/{schema}/properties/{property}");
                let target = document
                    .pointer_mut(&pointer)
                    .and_then(|target| match place {
                        Place::Items(..) => target.get_mut("items"),
                        _ => Some(target),
                    });
                target.is_some_and(|target| extend(target, &keywords))
            }
            Place::Parameter(name) => declare_parameter(document, name, &keywords),
        };
        if !found {
            missing.push(place.to_string());
        }
    }
    missing
}

/// Adds `keywords` to the schema of every operation's parameter named `name`; whether any was.
fn declare_parameter(document: &mut Value, name: &str, keywords: &Value) -> bool {
    let mut found = false;
    let paths = document.get_mut("paths").and_then(Value::as_object_mut);
    for item in paths.into_iter().flat_map(|paths| paths.values_mut()) {
        let operations = item
            .as_object_mut()
            .into_iter()
            .flat_map(|item| item.values_mut());
        for operation in operations {
            let parameters = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut);
            for parameter in parameters.into_iter().flatten() {
                if parameter.get("name").and_then(Value::as_str) == Some(name)
                    && let Some(schema) = parameter.get_mut("schema")
                {
                    found |= extend(schema, keywords);
                }
            }
        }
    }
    found
}

/// Copies `keywords`' members into the schema object `target`; whether it is one.
fn extend(target: &mut Value, keywords: &Value) -> bool {
    match (target.as_object_mut(), keywords.as_object()) {
        (Some(target), Some(keywords)) => {
            for (keyword, value) in keywords {
                target.insert(keyword.clone(), value.clone());
            }
            true
        }
        _ => false,
    }
}

/// The keywords of the rules on values, which the domain answers (see the module's
/// documentation): [`crate::shape`] leaves them out of the shapes it checks.
pub const VALUE_KEYWORDS: [&str; 10] = [
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
];

/// `schema` without the rules on values, in every schema it holds (properties, items,
/// alternatives, component schemas); the names of properties are never mistaken for keywords.
pub fn without_value_rules(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    for keyword in VALUE_KEYWORDS {
        object.remove(keyword);
    }
    for (keyword, inner) in object.iter_mut() {
        match keyword.as_str() {
            "properties" | "patternProperties" | "$defs" | "definitions" | "schemas" => {
                for member in inner.as_object_mut().into_iter().flat_map(Map::values_mut) {
                    without_value_rules(member);
                }
            }
            "components" => without_value_rules(inner),
            "items" | "additionalProperties" | "not" | "contains" | "propertyNames" => {
                without_value_rules(inner);
            }
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                for member in inner.as_array_mut().into_iter().flatten() {
                    without_value_rules(member);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published() -> Value {
        serde_json::from_str(&crate::openapi_json()).unwrap()
    }

    #[test]
    fn every_rule_finds_its_place() {
        let mut document = published();
        assert_eq!(declare(&mut document), Vec::<String>::new());
    }

    #[test]
    fn the_document_states_the_domains_own_numbers() {
        let document = published();
        let at = |pointer: &str| {
            document
                .pointer(pointer)
                .cloned()
                .unwrap_or_else(|| panic!("nothing at {pointer}"))
        };
        let property = |schema: &str, property: &str, keyword: &str| {
            at(&format!(
                "/components/schemas/{schema}/properties/{property}/{keyword}"
            ))
        };
        assert_eq!(
            property("CreateUserRequest", "password", "minLength"),
            json!(8)
        );
        assert_eq!(
            property("CreateUserRequest", "password", "maxLength"),
            json!(128)
        );
        assert_eq!(
            property("CreateUserRequest", "email", "maxLength"),
            json!(255)
        );
        assert!(
            property("CreateUserRequest", "username", "pattern")
                .as_str()
                .unwrap()
                .contains("{3,100}")
        );
        assert!(
            property("CreateWorkflowRequest", "name", "pattern")
                .as_str()
                .unwrap()
                .contains("{0,253}")
        );
        assert_eq!(
            property("CreateWorkflowRequest", "description", "maxLength"),
            json!(10_000)
        );
        assert_eq!(
            property("CreateWorkflowRequest", "tags", "maxItems"),
            json!(32)
        );
        assert!(
            at("/components/schemas/UpdateWorkflowRequest/properties/tags/items/pattern")
                .as_str()
                .unwrap()
                .contains("{0,62}")
        );
        assert_eq!(
            property("PublishVersionRequest", "change_summary", "maxLength"),
            json!(2_000)
        );
        assert_eq!(
            property("RollbackRequest", "version_number", "maximum"),
            json!(2_147_483_647)
        );
        assert_eq!(
            property("CreateAgentRequest", "max_tokens", "maximum"),
            json!(1_000_000)
        );
        assert_eq!(
            property("CreateAgentRequest", "system_prompt", "maxLength"),
            json!(100_000)
        );
        assert_eq!(
            property("CreateToolRequest", "tool_name", "maxLength"),
            json!(64)
        );
        assert_eq!(
            property("ApprovalDecisionRequest", "comment", "maxLength"),
            json!(10_000)
        );
        let limit = at("/paths/~1workflows/get/parameters")
            .as_array()
            .unwrap()
            .iter()
            .find(|parameter| parameter["name"] == "limit")
            .unwrap()["schema"]
            .clone();
        assert_eq!(
            (limit["minimum"].clone(), limit["maximum"].clone()),
            (json!(1), json!(200))
        );
    }

    #[test]
    fn patterns_say_which_names_the_domain_accepts() {
        let document = published();
        let pattern = |schema: &str, property: &str| {
            let source = document
                .pointer(&format!(
                    "/components/schemas/{schema}/properties/{property}/pattern"
                ))
                .and_then(Value::as_str)
                .unwrap()
                .to_owned();
            jsonschema::validator_for(&json!({"pattern": source})).unwrap()
        };
        let username = pattern("CreateUserRequest", "username");
        for (candidate, accepted) in [
            ("alice", true),
            ("  al.ice_-9 ", true),
            ("al", false),
            ("al ice", false),
            ("ålice", false),
        ] {
            assert_eq!(
                username.is_valid(&json!(candidate)),
                accepted,
                "{candidate:?}"
            );
            assert_eq!(
                Username::parse(candidate).is_ok(),
                accepted,
                "{candidate:?}"
            );
        }
        let email = pattern("CreateUserRequest", "email");
        for (candidate, accepted) in [
            ("a@b.io", true),
            (" A.B+c@x-y.example.COM\n", true),
            ("a@b.c", false),
            ("a@b", false),
            ("a b@c.io", false),
            ("@c.io", false),
        ] {
            assert_eq!(email.is_valid(&json!(candidate)), accepted, "{candidate:?}");
            assert_eq!(Email::parse(candidate).is_ok(), accepted, "{candidate:?}");
        }
        let workflow_name = pattern("CreateWorkflowRequest", "name");
        let longest = "x".repeat(255);
        let padded_longest = format!("\u{85} {longest}\t\u{2028}");
        let too_long = "x".repeat(256);
        for (candidate, accepted) in [
            ("Invoices", true),
            ("I", true),
            ("\t Invoices, monthly \u{3000}", true),
            (longest.as_str(), true),
            (padded_longest.as_str(), true),
            (too_long.as_str(), false),
            ("   ", false),
            ("", false),
            ("In\u{7}voices", false),
            ("In\nvoices", false),
            ("\u{85}", false),
        ] {
            assert_eq!(
                workflow_name.is_valid(&json!(candidate)),
                accepted,
                "{candidate:?}"
            );
            assert_eq!(
                ipa_workflow::WorkflowName::parse(candidate).is_ok(),
                accepted,
                "{candidate:?}"
            );
        }
        let full_name = pattern("UpdateUserRequest", "full_name");
        for (candidate, accepted) in [
            ("Ada Lovelace", true),
            ("  ", true),
            ("", true),
            ("A\u{0}", false),
        ] {
            assert_eq!(
                full_name.is_valid(&json!(candidate)),
                accepted,
                "{candidate:?}"
            );
        }
    }

    #[test]
    fn value_rules_are_removed_but_properties_named_like_them_are_kept() {
        let mut schema = json!({
            "type": "object",
            "maxProperties": 3,
            "properties": {
                "pattern": {"type": "string", "pattern": "^a$"},
                "n": {"type": ["integer", "null"], "minimum": 1, "maximum": 9},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string", "maxLength": 4}}
            },
            "components": {"schemas": {"X": {"anyOf": [{"type": "string", "minLength": 2}]}}}
        });
        without_value_rules(&mut schema);
        assert_eq!(
            schema,
            json!({
                "type": "object",
                "maxProperties": 3,
                "properties": {
                    "pattern": {"type": "string"},
                    "n": {"type": ["integer", "null"]},
                    "tags": {"type": "array", "items": {"type": "string"}}
                },
                "components": {"schemas": {"X": {"anyOf": [{"type": "string"}]}}}
            })
        );
    }
}
