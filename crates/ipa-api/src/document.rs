//! The OpenAPI document the server publishes: poem-openapi's document, rewritten as OpenAPI 3.1.
//!
//! poem-openapi writes OpenAPI 3.0.0, but the document also holds `webhooks` (the call the
//! platform makes to a `custom` agent's endpoint), which only 3.1 has, so validators refuse it
//! and Swagger UI hides the webhook. Its 3.0 shape also misleads generated clients in two ways
//! this module mends:
//!
//! - A property that is not required is an `Option` in the server, which writes it as `null`
//!   when it has no value and reads `null` as "not given". Such properties are declared to
//!   accept `null` (`"type": ["string", "null"]`, or `anyOf` with `{"type": "null"}` for a
//!   reference), which 3.0 could only say with `nullable`.
//! - A documented property whose schema is a reference comes as
//!   `"allOf": [{"$ref": ...}, {"description": ...}]`, a wrapper that some generators read as a
//!   new anonymous schema (and then drop). 3.1 allows `description` beside `$ref`, so the wrapper
//!   becomes `{"$ref": ..., "description": ...}`.
//!
//! Two omissions are filled in as well: an operation that needs no credentials says so with an
//! empty `security` list (rather than nothing, which readers cannot tell from a forgotten one),
//! and the server list, empty in poem-openapi's document, names the server that serves the
//! document (`/`), which is where every operation is.
//!
//! Request bodies are closed: every object schema a request body reaches (directly or through
//! `$ref`) that lists its properties gets `"additionalProperties": false`, since the server refuses
//! unknown members ([`crate::shape`]). Schemas only responses use stay open, so clients keep
//! reading answers that gain a field.
//!
//! The rewrite works on the JSON value and only on schema objects found where the specification
//! puts them, so a property that happens to be named `allOf` or `nullable` is left alone.

use serde_json::{Map, Value, json};

/// The OpenAPI version the published document declares.
pub const OPENAPI_VERSION: &str = "3.1.0";

/// The SPDX identifier of the platform's licence (3.1's `license.identifier`).
const LICENSE_IDENTIFIER: &str = "Apache-2.0";

/// `document` (poem-openapi's 3.0 document) as OpenAPI 3.1.
pub fn to_openapi_31(mut document: Value) -> Value {
    if let Some(root) = document.as_object_mut() {
        root.insert("openapi".to_owned(), json!(OPENAPI_VERSION));
        if let Some(license) = root
            .get_mut("info")
            .and_then(|info| info.get_mut("license"))
            .and_then(Value::as_object_mut)
            && !license.contains_key("url")
        {
            license.insert("identifier".to_owned(), json!(LICENSE_IDENTIFIER));
        }
        if root
            .get("servers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            root.insert(
                "servers".to_owned(),
                json!([{"url": "/", "description": "The server that serves this document."}]),
            );
        }
        if let Some(schemas) = root
            .get_mut("components")
            .and_then(|components| components.get_mut("schemas"))
            .and_then(Value::as_object_mut)
        {
            for schema in schemas.values_mut() {
                rewrite_schema(schema);
            }
        }
        for section in ["paths", "webhooks"] {
            if let Some(items) = root.get_mut(section).and_then(Value::as_object_mut) {
                for item in items.values_mut() {
                    rewrite_path_item(item);
                }
            }
        }
        close_request_bodies(root);
    }
    document
}

/// Adds `components` to `document`'s component schemas, replacing any of the same name.
pub(crate) fn add_components(document: &mut Value, components: Vec<(&'static str, Value)>) {
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in components {
            schemas.insert(name.to_owned(), schema);
        }
    }
}

/// Points the member `member` of the component schema `schema` at the component `component`
/// (with `null` allowed beside it when `nullable`), keeping its description. Returns the member
/// named for a person when it does not exist.
pub(crate) fn refer_member(
    document: &mut Value,
    schema: &str,
    member: &str,
    component: &str,
    nullable: bool,
) -> Option<String> {
    let pointer = format!("/components/schemas/{schema}/properties/{member}");
    let Some(property) = document
        .pointer_mut(&pointer)
        .and_then(Value::as_object_mut)
    else {
        return Some(format!("{schema}.{member}"));
    };
    let reference = format!("{SCHEMA_REFERENCE}{component}");
    property.remove("type");
    if nullable {
        property.insert(
            "anyOf".to_owned(),
            json!([{"$ref": reference}, {"type": "null"}]),
        );
    } else {
        property.insert("$ref".to_owned(), json!(reference));
    }
    None
}

/// A validator of `schema` (its references resolved in the published document's components),
/// formats checked: what the document says of a value, for tests.
#[cfg(test)]
pub(crate) fn published_validator(schema: &Value) -> jsonschema::Validator {
    let published: Value = serde_json::from_str(&crate::openapi_json()).unwrap();
    let mut root = schema.clone();
    root.as_object_mut()
        .unwrap()
        .insert("components".to_owned(), published["components"].clone());
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap()
}

/// The operation `operation_id` of `document` (an OpenAPI document as JSON).
pub(crate) fn operation_mut<'d>(
    document: &'d mut Value,
    operation_id: &str,
) -> Option<&'d mut Value> {
    document
        .get_mut("paths")?
        .as_object_mut()?
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .find(|operation| {
            operation.get("operationId").and_then(Value::as_str) == Some(operation_id)
        })
}

/// The prefix of a reference to a component schema.
const SCHEMA_REFERENCE: &str = "#/components/schemas/";

/// Closes every object schema the paths' request bodies reach (see the module's documentation).
fn close_request_bodies(root: &mut Map<String, Value>) {
    let mut reached: Vec<String> = Vec::new();
    if let Some(paths) = root.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            for method in METHODS {
                let Some(content) = item
                    .get_mut(method)
                    .and_then(|operation| operation.get_mut("requestBody"))
                    .and_then(|body| body.get_mut("content"))
                    .and_then(Value::as_object_mut)
                else {
                    continue;
                };
                for media in content.values_mut() {
                    if let Some(schema) = media.get_mut("schema") {
                        close_objects(schema, &mut reached);
                    }
                }
            }
        }
    }
    let Some(schemas) = root
        .get_mut("components")
        .and_then(|components| components.get_mut("schemas"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let mut closed = std::collections::BTreeSet::new();
    while let Some(name) = reached.pop() {
        if !closed.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = schemas.get_mut(&name) {
            close_objects(schema, &mut reached);
        }
    }
}

/// Sets `additionalProperties: false` on `schema` and the inline object schemas inside it that
/// list their properties and say nothing of others; adds the component schemas it refers to to
/// `reached`.
fn close_objects(schema: &mut Value, reached: &mut Vec<String>) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(name) = object
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|target| target.strip_prefix(SCHEMA_REFERENCE))
    {
        reached.push(name.to_owned());
    }
    if object.contains_key("properties") && !object.contains_key("additionalProperties") {
        object.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
    if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
        for property in properties.values_mut() {
            close_objects(property, reached);
        }
    }
    for key in ["items", "not"] {
        if let Some(inner) = object.get_mut(key) {
            close_objects(inner, reached);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(inner) = object.get_mut(key).and_then(Value::as_array_mut) {
            for schema in inner {
                close_objects(schema, reached);
            }
        }
    }
}

/// The HTTP methods a path item may hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The schemas of a path item's operations: parameters, request bodies and responses.
fn rewrite_path_item(item: &mut Value) {
    let Some(item) = item.as_object_mut() else {
        return;
    };
    rewrite_parameters(item);
    for method in METHODS {
        let Some(operation) = item.get_mut(method).and_then(Value::as_object_mut) else {
            continue;
        };
        operation
            .entry("security")
            .or_insert_with(|| Value::Array(Vec::new()));
        rewrite_parameters(operation);
        if let Some(body) = operation.get_mut("requestBody") {
            rewrite_content(body);
        }
        if let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        {
            for response in responses.values_mut() {
                rewrite_content(response);
            }
        }
    }
}

fn rewrite_parameters(holder: &mut Map<String, Value>) {
    if let Some(parameters) = holder.get_mut("parameters").and_then(Value::as_array_mut) {
        for parameter in parameters {
            if let Some(schema) = parameter.get_mut("schema") {
                rewrite_schema(schema);
            }
        }
    }
}

/// The schemas of a request body's or response's `content`.
fn rewrite_content(holder: &mut Value) {
    if let Some(content) = holder.get_mut("content").and_then(Value::as_object_mut) {
        for media in content.values_mut() {
            if let Some(schema) = media.get_mut("schema") {
                rewrite_schema(schema);
            }
        }
    }
}

/// Rewrites `schema` and every schema inside it.
fn rewrite_schema(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    unwrap_described_reference(object);
    let required: Vec<String> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, property) in properties.iter_mut() {
            rewrite_schema(property);
            if !required.contains(name) {
                admit_null(property);
            }
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(inner) = object.get_mut(key) {
            rewrite_schema(inner);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(inner) = object.get_mut(key).and_then(Value::as_array_mut) {
            for schema in inner {
                rewrite_schema(schema);
            }
        }
    }
}

/// `{"allOf": [{"$ref": R}, {"description": D}]}` (and the same with only the reference)
/// becomes `{"$ref": R, "description": D}`.
fn unwrap_described_reference(object: &mut Map<String, Value>) {
    let Some(parts) = object.get("allOf").and_then(Value::as_array) else {
        return;
    };
    let mut reference = None;
    let mut annotations = Map::new();
    for part in parts {
        let Some(part) = part.as_object() else {
            return;
        };
        if let Some(target) = part.get("$ref") {
            if reference.is_some() || part.len() != 1 {
                return;
            }
            reference = Some(target.clone());
        } else if part.keys().all(|key| ANNOTATIONS.contains(&key.as_str())) {
            annotations.extend(part.clone());
        } else {
            return;
        }
    }
    let Some(reference) = reference else {
        return;
    };
    object.remove("allOf");
    object.insert("$ref".to_owned(), reference);
    for (key, value) in annotations {
        object.entry(key).or_insert(value);
    }
}

/// Keywords that describe a schema without constraining it, which 3.1 allows beside `$ref`.
const ANNOTATIONS: [&str; 7] = [
    "description",
    "title",
    "default",
    "example",
    "examples",
    "readOnly",
    "writeOnly",
];

/// Lets `property` be `null` as well.
fn admit_null(property: &mut Value) {
    let Some(object) = property.as_object_mut() else {
        return;
    };
    if object.contains_key("$ref") {
        // A reference cannot take a type: an alternative with `null`, the annotations beside.
        let reference = object.remove("$ref").unwrap_or(Value::Null);
        object.insert(
            "anyOf".to_owned(),
            json!([{"$ref": reference}, {"type": "null"}]),
        );
        return;
    }
    match object.get_mut("type") {
        Some(Value::String(kind)) => {
            let kind = std::mem::take(kind);
            object.insert("type".to_owned(), json!([kind, "null"]));
        }
        Some(Value::Array(kinds)) => {
            if !kinds.iter().any(|kind| kind == "null") {
                kinds.push(json!("null"));
            }
        }
        // No type (any value, or a combination): `null` is already one of them, or an
        // alternative says so.
        _ => {
            for key in ["anyOf", "oneOf"] {
                if let Some(alternatives) = object.get_mut(key).and_then(Value::as_array_mut) {
                    if !alternatives.iter().any(is_null_schema) {
                        alternatives.push(json!({"type": "null"}));
                    }
                    return;
                }
            }
            return;
        }
    }
    if let Some(values) = object.get_mut("enum").and_then(Value::as_array_mut)
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::needless_pass_by_value)] // Called with `json!` literals.
    fn document(schemas: Value) -> Value {
        json!({
            "openapi": "3.0.0",
            "info": {"title": "t", "version": "1", "license": {"name": "Apache-2.0"}},
            "paths": {},
            "components": {"schemas": schemas},
        })
    }

    #[test]
    fn the_version_and_licence_are_those_of_31() {
        let rewritten = to_openapi_31(document(json!({})));
        assert_eq!(rewritten["openapi"], "3.1.0");
        assert_eq!(rewritten["info"]["license"]["identifier"], "Apache-2.0");
    }

    #[test]
    fn objects_a_request_reaches_are_closed_and_others_stay_open() {
        let mut source = document(json!({
            "Create": {"type": "object", "properties": {
                "name": {"type": "string"},
                "owner": {"allOf": [{"$ref": "#/components/schemas/Owner"}, {"description": "Who."}]},
                "inline": {"type": "object", "properties": {"a": {"type": "string"}}},
                "free": {},
            }},
            "Owner": {"type": "object", "properties": {"id": {"type": "string"}}},
            "View": {"type": "object", "properties": {"id": {"type": "string"}}},
        }));
        source["paths"] = json!({"/things": {"post": {
            "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Create"}}}},
            "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/View"}}}}},
        }}});
        let rewritten = to_openapi_31(source);
        let schemas = &rewritten["components"]["schemas"];
        assert_eq!(schemas["Create"]["additionalProperties"], false);
        assert_eq!(schemas["Owner"]["additionalProperties"], false);
        assert_eq!(
            schemas["Create"]["properties"]["inline"]["additionalProperties"],
            false
        );
        assert!(
            schemas["Create"]["properties"]["free"]
                .get("additionalProperties")
                .is_none()
        );
        assert!(schemas["View"].get("additionalProperties").is_none());
    }

    #[test]
    fn open_operations_say_so_and_the_server_is_named() {
        let mut source = document(json!({}));
        source["servers"] = json!([]);
        source["paths"] = json!({
            "/open": {"get": {"responses": {}}},
            "/closed": {"get": {"security": [{"BearerAuth": []}], "responses": {}}},
        });
        let rewritten = to_openapi_31(source);
        assert_eq!(rewritten["paths"]["/open"]["get"]["security"], json!([]));
        assert_eq!(
            rewritten["paths"]["/closed"]["get"]["security"],
            json!([{"BearerAuth": []}])
        );
        assert_eq!(rewritten["servers"][0]["url"], "/");
    }

    #[test]
    fn optional_properties_admit_null_and_required_ones_do_not() {
        let rewritten = to_openapi_31(document(json!({
            "User": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "full_name": {"type": "string"},
                    "status": {"type": "string", "enum": ["a", "b"]},
                    "owner": {"allOf": [{"$ref": "#/components/schemas/Owner"}, {"description": "Who."}]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "anything": {},
                }
            }
        })));
        let properties = &rewritten["components"]["schemas"]["User"]["properties"];
        assert_eq!(
            properties["id"],
            json!({"type": "string", "format": "uuid"})
        );
        assert_eq!(properties["full_name"], json!({"type": ["string", "null"]}));
        assert_eq!(
            properties["status"],
            json!({"type": ["string", "null"], "enum": ["a", "b", null]})
        );
        assert_eq!(
            properties["owner"],
            json!({
                "anyOf": [{"$ref": "#/components/schemas/Owner"}, {"type": "null"}],
                "description": "Who.",
            })
        );
        assert_eq!(
            properties["tags"],
            json!({"type": ["array", "null"], "items": {"type": "string"}})
        );
        assert_eq!(properties["anything"], json!({}));
    }

    #[test]
    fn a_described_reference_loses_its_wrapper() {
        let rewritten = to_openapi_31(document(json!({
            "Run": {
                "type": "object",
                "required": ["workflow"],
                "properties": {
                    "workflow": {"allOf": [{"$ref": "#/components/schemas/W"}, {"description": "The workflow."}]},
                    "mixed": {"allOf": [{"$ref": "#/components/schemas/A"}, {"$ref": "#/components/schemas/B"}]},
                }
            }
        })));
        let properties = &rewritten["components"]["schemas"]["Run"]["properties"];
        assert_eq!(
            properties["workflow"],
            json!({"$ref": "#/components/schemas/W", "description": "The workflow."})
        );
        // A real composition stays one.
        assert_eq!(
            properties["mixed"]["allOf"],
            json!([{"$ref": "#/components/schemas/A"}, {"$ref": "#/components/schemas/B"}])
        );
    }

    #[test]
    fn properties_named_like_keywords_are_properties() {
        let rewritten = to_openapi_31(document(json!({
            "Odd": {
                "type": "object",
                "required": ["allOf", "nullable"],
                "properties": {
                    "allOf": {"type": "string"},
                    "nullable": {"type": "boolean"},
                }
            }
        })));
        let properties = &rewritten["components"]["schemas"]["Odd"]["properties"];
        assert_eq!(properties["allOf"], json!({"type": "string"}));
        assert_eq!(properties["nullable"], json!({"type": "boolean"}));
    }

    #[test]
    fn schemas_in_operations_and_webhooks_are_rewritten() {
        let mut source = document(json!({}));
        source["paths"] = json!({
            "/x": {"get": {
                "parameters": [{"name": "q", "in": "query", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}],
                "responses": {"200": {"content": {"application/json": {"schema": {
                    "type": "object", "properties": {"b": {"type": "string"}}
                }}}}}
            }}
        });
        source["webhooks"] = json!({
            "hook": {"post": {"requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "properties": {"c": {"type": "number"}}
            }}}}, "responses": {}}}
        });
        let rewritten = to_openapi_31(source);
        assert_eq!(
            rewritten["paths"]["/x"]["get"]["parameters"][0]["schema"]["properties"]["a"]["type"],
            json!(["integer", "null"])
        );
        assert_eq!(
            rewritten["paths"]["/x"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
                ["properties"]["b"]["type"],
            json!(["string", "null"])
        );
        assert_eq!(
            rewritten["webhooks"]["hook"]["post"]["requestBody"]["content"]["application/json"]["schema"]
                ["properties"]["c"]["type"],
            json!(["number", "null"])
        );
    }
}
