//! Request bodies held to the published document's shapes, before any handler reads them.
//!
//! poem-openapi's own parsing is lenient where the document is strict: it reads `false` or `12`
//! where a string is declared as the string `"false"` or `"12"`, and it ignores members it does
//! not know. This middleware checks each JSON request body against its operation's schema in
//! the published document (JSON Schema 2020-12, which OpenAPI 3.1's schemas are), so what the
//! document declares is what the server accepts. A body that does not fit is refused with
//! `400` and the JSON pointer of the first member that does not fit:
//!
//! - `invalid_type`: a value of another type than declared (`null` is allowed where the document
//!   says so);
//! - `unknown_field`: a member the object does not declare (request objects are closed);
//! - `missing_field`: a required member that is absent;
//! - `invalid_field`: any other rule of the schema (an enum's values, say).
//!
//! Messages never quote the value sent, which may be a secret. A body that is not JSON at all is
//! passed on: the handler's parser answers it as before. Rules on values the domain owns
//! (lengths, patterns, bounds: [`crate::limits`]) stay the domain's, answered with `422`, so
//! they are left out of the shapes checked here.

use ipa_kernel::json::{child_pointer, type_name};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, JsonType, ValidationError, Validator};
use poem::http::{Method, StatusCode};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use serde_json::{Map, Value, json};

use crate::error::ErrorBody;
use crate::routing::PathTemplate;

/// The request body schema of each documented operation that reads JSON.
#[derive(Clone, Default)]
pub struct RequestShapes {
    operations: std::sync::Arc<Vec<Operation>>,
}

struct Operation {
    template: PathTemplate,
    method: Method,
    validator: Validator,
    /// The body's members declared as integers (see [`whole_numbers_as_integers`]).
    integer_members: Vec<String>,
}

impl RequestShapes {
    /// The shapes of `document`'s operations (an OpenAPI 3.1 document as JSON). An operation
    /// whose schema does not compile is left unchecked, with a warning: poem-openapi wrote it,
    /// and its handler still parses the body.
    pub fn from_document(document: &Value) -> Self {
        let empty = Map::new();
        let components = document
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let mut operations = Vec::new();
        let paths = document.get("paths").and_then(Value::as_object);
        for (path, item) in paths.into_iter().flatten() {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, operation) in item {
                let Ok(method) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                    continue;
                };
                let Some(schema) = json_body_schema(operation) else {
                    continue;
                };
                // The schema's references point into the document's components: the root of
                // the schema compiled carries those it reaches (only those, to keep the memory
                // each validator holds small), so they resolve without any lookup.
                let mut root = match schema {
                    Value::Object(object) => object.clone(),
                    _ => continue,
                };
                let integer_members = integer_members(schema, components);
                let reached = reachable(schema, components);
                root.insert("components".to_owned(), json!({"schemas": reached}));
                let mut root = Value::Object(root);
                crate::limits::without_value_rules(&mut root);
                match jsonschema::options()
                    .with_draft(Draft::Draft202012)
                    .offline()
                    .build(&root)
                {
                    Ok(validator) => operations.push(Operation {
                        template: PathTemplate::parse(path),
                        method,
                        validator,
                        integer_members,
                    }),
                    Err(error) => {
                        tracing::warn!(%path, %error, "a request body schema does not compile; its bodies are not checked against it");
                    }
                }
            }
        }
        Self {
            operations: std::sync::Arc::new(operations),
        }
    }

    fn operation(&self, method: &Method, path: &str) -> Option<&Operation> {
        self.operations
            .iter()
            .find(|operation| operation.method == method && operation.template.matches(path))
    }

    /// The first way `body` does not fit `method path`'s schema, as the error to answer; `None`
    /// when it fits or the operation has no JSON body.
    pub fn check(&self, method: &Method, path: &str, body: &Value) -> Option<ErrorBody> {
        let operation = self.operation(method, path)?;
        let error = operation.validator.iter_errors(body).next()?;
        Some(refusal(&error, body))
    }
}

/// The prefix of a reference to a component schema.
const SCHEMA_REFERENCE: &str = "#/components/schemas/";

/// Components whose documents the domain checks whole, reporting every problem at once in one
/// `422`: here they are any object.
const DOMAIN_CHECKED: [&str; 3] = [
    crate::definition_schema::DEFINITION,
    crate::configuration_schema::AGENT_CONFIGURATION,
    crate::configuration_schema::TOOL_CONFIGURATION,
];

/// The members of the object `schema` (or the component it refers to) declared as integers.
fn integer_members(schema: &Value, components: &Map<String, Value>) -> Vec<String> {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(target) => target
            .strip_prefix(SCHEMA_REFERENCE)
            .and_then(|name| components.get(name))
            .unwrap_or(schema),
        None => schema,
    };
    let is_integer = |member: &Value| match member.get("type") {
        Some(Value::String(kind)) => kind == "integer",
        Some(Value::Array(kinds)) => kinds.iter().any(|kind| kind == "integer"),
        _ => false,
    };
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, member)| is_integer(member))
        .map(|(name, _)| name.clone())
        .collect()
}

/// `body` with each of `members` that holds a whole number written with a fraction (`3.0`,
/// `1e2`) holding it as an integer; `None` when there was none. JSON Schema counts such numbers
/// as integers, and so does the shape check, but the handlers' parser reads only integers
/// written as such.
fn whole_numbers_as_integers(body: &Value, members: &[String]) -> Option<Value> {
    let object = body.as_object()?;
    let whole = |value: &Value| {
        let number = value.as_f64().filter(|_| value.is_f64())?;
        // Within ±2^53 every whole f64 is exactly an i64.
        #[allow(clippy::cast_possible_truncation)] // Whole and within ±2^53: exact.
        let integer = number as i64;
        (number.fract() == 0.0 && number.abs() <= 9_007_199_254_740_992.0).then(|| json!(integer))
    };
    let mut rewritten = None::<Map<String, Value>>;
    for member in members {
        if let Some(integer) = object.get(member).and_then(whole) {
            rewritten
                .get_or_insert_with(|| object.clone())
                .insert(member.clone(), integer);
        }
    }
    rewritten.map(Value::Object)
}

/// The component schemas `schema` refers to, directly or through others.
fn reachable(schema: &Value, components: &Map<String, Value>) -> Map<String, Value> {
    let mut reached = Map::new();
    let mut pending = Vec::new();
    references(schema, &mut pending);
    while let Some(name) = pending.pop() {
        if reached.contains_key(&name) {
            continue;
        }
        if DOMAIN_CHECKED.contains(&name.as_str()) {
            // The domain checks such a document whole, every problem at once: here it is any
            // object.
            reached.insert(name, json!({"type": "object"}));
        } else if let Some(component) = components.get(&name) {
            references(component, &mut pending);
            reached.insert(name, component.clone());
        }
    }
    reached
}

/// Adds the names of the component schemas `value` refers to to `found`.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => {
                        if let Some(name) = target.strip_prefix(SCHEMA_REFERENCE) {
                            found.push(name.to_owned());
                        }
                    }
                    _ => references(inner, found),
                }
            }
        }
        Value::Array(items) => {
            for inner in items {
                references(inner, found);
            }
        }
        _ => {}
    }
}

/// The JSON schema of `operation`'s request body, if it reads JSON.
fn json_body_schema(operation: &Value) -> Option<&Value> {
    operation
        .get("requestBody")?
        .get("content")?
        .as_object()?
        .iter()
        .find(|(media, _)| is_json(media))
        .and_then(|(_, media)| media.get("schema"))
}

/// Whether the media type `media` is JSON (`application/json`, with any parameters).
fn is_json(media: &str) -> bool {
    media
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The answer to a body that `error` says does not fit.
fn refusal(error: &ValidationError<'_>, body: &Value) -> ErrorBody {
    if let Some(inner) = within_alternative(error) {
        return refusal(inner, body);
    }
    let at = error.instance_path().as_str().to_owned();
    let (code, pointer, message) = match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let member = unexpected.first().map_or("", String::as_str);
            (
                "unknown_field",
                child_pointer(&at, member),
                format!(
                    "`{member}` is not a member of {}; check its spelling against the API \
                     documentation (/docs).",
                    place(&at)
                ),
            )
        }
        ValidationErrorKind::Required { property } => {
            let member = property.as_str().unwrap_or_default();
            (
                "missing_field",
                child_pointer(&at, member),
                format!("`{member}` is required in {}.", place(&at)),
            )
        }
        ValidationErrorKind::Type { kind } => {
            let sent = body.pointer(&at).map_or("nothing", type_name);
            (
                "invalid_type",
                at.clone(),
                format!("{} must be {}, not {sent}.", field(&at), expected(kind)),
            )
        }
        _ => (
            "invalid_field",
            at.clone(),
            format!(
                "{} does not fit the API's schema: {}.",
                field(&at),
                error.masked()
            ),
        ),
    };
    ErrorBody::at(code, message, &pointer)
}

/// For a value that fits none of `anyOf`'s or `oneOf`'s alternatives, the first error of the
/// alternative it was meant for: an optional member is "this schema, or null", so a value that is
/// not null is told what is wrong with it against the schema rather than that it is not null.
fn within_alternative<'e>(error: &'e ValidationError<'_>) -> Option<&'e ValidationError<'static>> {
    let (ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context }) =
        error.kind()
    else {
        return None;
    };
    let only_not_null = |errors: &Vec<ValidationError<'static>>| {
        errors.iter().all(|inner| {
            matches!(
                inner.kind(),
                ValidationErrorKind::Type {
                    kind: TypeKind::Single(JsonType::Null)
                }
            )
        })
    };
    let mut meant = context.iter().filter(|errors| !only_not_null(errors));
    match (meant.next(), meant.next()) {
        // One alternative besides null: its first error says what is wrong.
        (Some(errors), None) => errors.first(),
        _ => None,
    }
}

fn place(pointer: &str) -> String {
    if pointer.is_empty() {
        "the request body".to_owned()
    } else {
        format!("`{pointer}`")
    }
}

fn field(pointer: &str) -> String {
    if pointer.is_empty() {
        "The request body".to_owned()
    } else {
        format!("`{pointer}`")
    }
}

fn expected(kind: &TypeKind) -> String {
    let names: Vec<String> = match kind {
        TypeKind::Single(kind) => vec![a_type(&kind.to_string())],
        TypeKind::Multiple(kinds) => kinds.iter().map(|kind| a_type(&kind.to_string())).collect(),
    };
    names.join(" or ")
}

fn a_type(name: &str) -> String {
    match name {
        "null" => "null".to_owned(),
        "object" | "array" | "integer" => format!("an {name}"),
        other => format!("a {other}"),
    }
}

impl<E: Endpoint> Middleware<E> for RequestShapes {
    type Output = ShapeCheck<E>;

    fn transform(&self, inner: E) -> Self::Output {
        ShapeCheck {
            inner,
            shapes: self.clone(),
        }
    }
}

/// [`RequestShapes`] around an endpoint.
pub struct ShapeCheck<E> {
    inner: E,
    shapes: RequestShapes,
}

impl<E: Endpoint> Endpoint for ShapeCheck<E> {
    type Output = Response;

    async fn call(&self, mut request: Request) -> Result<Self::Output> {
        // The operation is looked up once; a request without a JSON body to check costs only
        // that lookup.
        let operation = if request.content_type().is_some_and(is_json) {
            self.shapes
                .operation(request.method(), request.uri().path())
        } else {
            None
        };
        if let Some(operation) = operation {
            // The door already bounded the body's size.
            let bytes = request.take_body().into_bytes().await?;
            let rewritten = match serde_json::from_slice::<Value>(&bytes) {
                Ok(body) => {
                    if let Some(error) = operation.validator.iter_errors(&body).next() {
                        return Ok(
                            refusal(&error, &body).into_response_with(StatusCode::BAD_REQUEST)
                        );
                    }
                    whole_numbers_as_integers(&body, &operation.integer_members)
                        .and_then(|body| serde_json::to_vec(&body).ok())
                }
                Err(_) => None,
            };
            match rewritten {
                Some(body) => request.set_body(body),
                None => request.set_body(bytes),
            }
        }
        Ok(self.inner.call(request).await?.into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shapes() -> RequestShapes {
        RequestShapes::from_document(&crate::document::to_openapi_31(json!({
            "openapi": "3.0.0",
            "info": {"title": "t", "version": "1"},
            "paths": {"/things/{id}": {"post": {
                "requestBody": {"content": {"application/json; charset=utf-8": {
                    "schema": {"$ref": "#/components/schemas/Thing"}}}},
                "responses": {},
            }}},
            "components": {"schemas": {
                "Thing": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"},
                    "note": {"type": "string"},
                    "part": {"$ref": "#/components/schemas/Part"},
                    "mode": {"type": "string", "enum": ["a", "b"]},
                    "count": {"type": "integer"},
                }},
                "Part": {"type": "object", "required": ["size"], "properties": {
                    "size": {"type": "integer"},
                }},
            }},
        })))
    }

    #[allow(clippy::needless_pass_by_value)] // Called with `json!` literals.
    fn check(body: Value) -> Option<(String, String, String)> {
        shapes()
            .check(&Method::POST, "/things/7", &body)
            .map(|error| {
                let error = serde_json::to_value(&error).unwrap_or_default();
                (
                    error["code"].as_str().unwrap_or_default().to_owned(),
                    error["pointer"].as_str().unwrap_or_default().to_owned(),
                    error["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
    }

    #[test]
    fn a_body_that_fits_passes_and_null_is_allowed_where_declared() {
        assert_eq!(check(json!({"name": "x"})), None);
        assert_eq!(
            check(json!({"name": "x", "note": null, "part": {"size": 2}, "mode": "a"})),
            None
        );
        assert_eq!(
            check(json!({"name": "x", "part": null, "mode": null})),
            None
        );
    }

    #[test]
    fn types_are_strict_and_the_value_is_never_quoted() {
        let (code, pointer, message) = check(json!({"name": false})).unwrap_or_default();
        assert_eq!((code.as_str(), pointer.as_str()), ("invalid_type", "/name"));
        assert_eq!(message, "`/name` must be a string, not a boolean.");
        let (code, pointer, message) =
            check(json!({"name": 31_415_926_535_u64})).unwrap_or_default();
        assert_eq!((code.as_str(), pointer.as_str()), ("invalid_type", "/name"));
        assert!(!message.contains("31415926535"), "{message}");
        let (code, pointer, _) =
            check(json!({"name": "x", "part": {"size": "2"}})).unwrap_or_default();
        assert_eq!(
            (code.as_str(), pointer.as_str()),
            ("invalid_type", "/part/size")
        );
    }

    #[test]
    fn unknown_and_missing_members_are_named_by_pointer() {
        let (code, pointer, message) = check(json!({"name": "x", "nmae": "y"})).unwrap_or_default();
        assert_eq!(
            (code.as_str(), pointer.as_str()),
            ("unknown_field", "/nmae")
        );
        assert!(message.contains("`nmae`"), "{message}");
        let (code, pointer, _) =
            check(json!({"name": "x", "part": {"size": 1, "a/b": 2}})).unwrap_or_default();
        assert_eq!(
            (code.as_str(), pointer.as_str()),
            ("unknown_field", "/part/a~1b")
        );
        let (code, pointer, _) = check(json!({"note": "y"})).unwrap_or_default();
        assert_eq!(
            (code.as_str(), pointer.as_str()),
            ("missing_field", "/name")
        );
        let (code, pointer, message) =
            check(json!({"name": "x", "mode": "secret-value"})).unwrap_or_default();
        assert_eq!(
            (code.as_str(), pointer.as_str()),
            ("invalid_field", "/mode")
        );
        assert!(!message.contains("secret-value"), "{message}");
    }

    #[test]
    fn whole_numbers_become_integers_only_where_integers_are_declared() {
        let members = vec!["version_number".to_owned()];
        assert_eq!(
            whole_numbers_as_integers(&json!({"version_number": 3.0, "x": 1.0}), &members),
            Some(json!({"version_number": 3, "x": 1.0}))
        );
        assert_eq!(
            whole_numbers_as_integers(&json!({"version_number": 3}), &members),
            None
        );
        assert_eq!(
            whole_numbers_as_integers(&json!({"version_number": 3.5}), &members),
            None
        );
        assert_eq!(
            whole_numbers_as_integers(&json!({"version_number": 1e300}), &members),
            None
        );
        // Members are found through the body's reference, and only at its top level.
        let shapes = shapes();
        let operation = shapes.operation(&Method::POST, "/things/1").unwrap();
        assert_eq!(operation.integer_members, ["count"]);
    }

    #[test]
    fn only_json_media_types_are_json() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("application/json-patch+json"));
        assert!(!is_json("text/plain"));
    }

    #[test]
    fn a_validator_holds_only_the_components_its_schema_reaches() {
        let components = json!({
            "A": {"properties": {"b": {"$ref": "#/components/schemas/B"}}},
            "B": {"items": {"$ref": "#/components/schemas/C"}},
            "C": {"type": "string"},
            "D": {"type": "string"},
        });
        let reached = reachable(
            &json!({"$ref": "#/components/schemas/A"}),
            components.as_object().unwrap_or(&Map::new()),
        );
        let names: Vec<&str> = reached.keys().map(String::as_str).collect();
        assert_eq!(names, ["A", "B", "C"]);
    }

    #[test]
    fn other_operations_and_paths_are_not_checked() {
        let shapes = shapes();
        assert!(shapes.check(&Method::GET, "/things/7", &json!(1)).is_none());
        assert!(shapes.check(&Method::POST, "/other", &json!(1)).is_none());
    }
}
