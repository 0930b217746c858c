//! What the API answers when a request does not fit a route, with what the published document
//! says of that route:
//!
//! - a method the path does not have: `405 method_not_allowed`, with the `Allow` header RFC 9110
//!   §15.5.6 requires, listing the methods the document has for the path;
//! - a path or query parameter that does not parse: `400 invalid_parameter`, naming the parameter
//!   as the document does (poem-openapi calls path parameters `param0`, `param1`, ... inside),
//!   with its pointer (`/path/<segment index>`, counted from 0 as the door counts them,
//!   `/query/<name>` or `/header/<name>`) and what the document says it must be.
//!
//! Every other error goes to [`crate::error::catch_all`]. The tables are built once from the
//! document, so they cannot disagree with the operations it declares.

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use poem_openapi::error::{ParseParamError, ParsePathError};
use serde_json::Value;

use crate::error::{ErrorBody, catch_all};

/// The documented paths: their methods and parameters.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    paths: Vec<DocumentedPath>,
}

#[derive(Clone, Debug)]
struct DocumentedPath {
    template: PathTemplate,
    methods: Vec<Method>,
    /// Each operation's parameters: method, name, place (`path` or `query`), and what a value
    /// must be, in words.
    parameters: Vec<(Method, String, String, String)>,
}

/// A documented path (`/workflows/{id}/versions`), matched against request paths segment by
/// segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PathTemplate(Vec<Segment>);

/// One segment of a path template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Matches exactly this text.
    Literal(String),
    /// A `{parameter}`: matches any one non-empty segment.
    Parameter(String),
}

impl PathTemplate {
    /// The template as the document writes it.
    pub(crate) fn parse(template: &str) -> Self {
        Self(
            segments(template)
                .map(
                    |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => Segment::Parameter(name.to_owned()),
                        None => Segment::Literal(segment.to_owned()),
                    },
                )
                .collect(),
        )
    }

    /// Whether the request path `path` is one of this template's.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let mut given = segments(path);
        self.0.iter().all(|segment| match (segment, given.next()) {
            (Segment::Literal(text), Some(given)) => text == given,
            (Segment::Parameter(_), Some(given)) => !given.is_empty(),
            (_, None) => false,
        }) && given.next().is_none()
    }

    /// The `index`th parameter (from 0): its name and the index of its segment.
    fn parameter(&self, index: usize) -> Option<(&str, usize)> {
        self.0
            .iter()
            .enumerate()
            .filter_map(|(at, segment)| match segment {
                Segment::Parameter(name) => Some((name.as_str(), at)),
                Segment::Literal(_) => None,
            })
            .nth(index)
    }
}

/// The segments of a path, without the leading slash.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.trim_start_matches('/').split('/')
}

impl Routes {
    /// The tables of `document`'s `paths` (an OpenAPI document as JSON).
    pub fn from_document(document: &Value) -> Self {
        let Some(paths) = document.get("paths").and_then(Value::as_object) else {
            return Self::default();
        };
        let paths = paths
            .iter()
            .map(|(template, operations)| {
                let mut methods = Vec::new();
                let mut parameters = Vec::new();
                for (name, operation) in operations.as_object().into_iter().flatten() {
                    let Ok(method) = Method::from_bytes(name.to_uppercase().as_bytes()) else {
                        continue;
                    };
                    let declared = operation.get("parameters").and_then(Value::as_array);
                    for parameter in declared.into_iter().flatten() {
                        let text = |key: &str| {
                            parameter
                                .get(key)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned()
                        };
                        parameters.push((
                            method.clone(),
                            text("name"),
                            text("in"),
                            expected(parameter.get("schema").unwrap_or(&Value::Null)),
                        ));
                    }
                    methods.push(method);
                }
                DocumentedPath {
                    template: PathTemplate::parse(template),
                    methods,
                    parameters,
                }
            })
            .collect();
        Self { paths }
    }

    /// The methods documented for `path`, in a fixed order, without repeats; empty when no
    /// documented path matches.
    pub fn for_path(&self, path: &str) -> Vec<Method> {
        let mut allowed: Vec<Method> = Vec::new();
        for documented in self.paths.iter().filter(|p| p.template.matches(path)) {
            for method in &documented.methods {
                if !allowed.contains(method) {
                    allowed.push(method.clone());
                }
            }
        }
        allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        allowed
    }

    /// What the document says a value of `method path`'s parameter `name` in `place` must be.
    fn expected(&self, method: &Method, path: &str, name: &str, place: &str) -> Option<&str> {
        self.paths
            .iter()
            .filter(|documented| documented.template.matches(path))
            .flat_map(|documented| &documented.parameters)
            .find(|(m, n, p, _)| m == method && n == name && p == place)
            .map(|(_, _, _, expected)| expected.as_str())
    }

    /// Where `method path`'s parameter `name` is (`query`, `header`, ...) and what a value of it
    /// must be, as the document declares them.
    fn declared(&self, method: &Method, path: &str, name: &str) -> Option<(&str, &str)> {
        self.paths
            .iter()
            .filter(|documented| documented.template.matches(path))
            .flat_map(|documented| &documented.parameters)
            .find(|(m, n, place, _)| m == method && n == name && place != "path")
            .map(|(_, _, place, expected)| (place.as_str(), expected.as_str()))
    }

    /// The answer to `error`, raised for `method path`.
    async fn answer(&self, error: poem::Error, method: &Method, path: &str) -> Response {
        if let Some(parse) = error.downcast_ref::<ParsePathError>() {
            let position = parse
                .name
                .strip_prefix("param")
                .and_then(|index| index.parse::<usize>().ok())
                .and_then(|index| {
                    self.paths
                        .iter()
                        .find(|documented| documented.template.matches(path))
                        .and_then(|documented| documented.template.parameter(index))
                });
            if let Some((name, segment)) = position {
                let must = self
                    .expected(method, path, name, "path")
                    .unwrap_or("a valid value");
                return refusal(
                    format!("The path parameter `{name}` must be {must}."),
                    &format!("/path/{segment}"),
                );
            }
        }
        if let Some(parse) = error.downcast_ref::<ParseParamError>() {
            let name = parse.name;
            let (place, must) = self
                .declared(method, path, name)
                .unwrap_or(("query", "a valid value"));
            let what = match place {
                "header" => format!("The header `{name}`"),
                place => format!("The {place} parameter `{name}`"),
            };
            return refusal(
                format!("{what} must be {must}."),
                &format!("/{place}/{name}"),
            );
        }
        catch_all(error).await
    }
}

fn refusal(message: String, pointer: &str) -> Response {
    ErrorBody::at("invalid_parameter", message, pointer).into_response_with(StatusCode::BAD_REQUEST)
}

/// What a value of `schema` must be, in words.
fn expected(schema: &Value) -> String {
    let text = |key: &str| schema.get(key).and_then(Value::as_str);
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        return format!("one of {}", names.join(", "));
    }
    match (text("type"), text("format")) {
        (_, Some("uuid")) => "a UUID".to_owned(),
        (Some("integer"), Some("uint32")) => "a whole number from 0 to 4294967295".to_owned(),
        (Some("integer"), _) => "a whole number".to_owned(),
        (Some("boolean"), _) => "`true` or `false`".to_owned(),
        (Some("array"), _) => schema.get("items").map_or_else(
            || "a list".to_owned(),
            |items| format!("a list, each {}", expected(items)),
        ),
        _ => "a valid value".to_owned(),
    }
}

impl<E: Endpoint> Middleware<E> for Routes {
    type Output = RouteErrors<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RouteErrors {
            inner,
            routes: self.clone(),
        }
    }
}

/// [`Routes`] around an endpoint.
pub struct RouteErrors<E> {
    inner: E,
    routes: Routes,
}

impl<E: Endpoint> Endpoint for RouteErrors<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> Result<Self::Output> {
        let path = request.uri().path().to_owned();
        let method = request.method().clone();
        let mut response = match self.inner.call(request).await {
            Ok(response) => response.into_response(),
            Err(error) => self.routes.answer(error, &method, &path).await,
        };
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && !response.headers().contains_key(header::ALLOW)
        {
            let methods = self.routes.for_path(&path);
            let names: Vec<&str> = methods.iter().map(Method::as_str).collect();
            if let Ok(value) = HeaderValue::from_str(&names.join(", ")) {
                response.headers_mut().insert(header::ALLOW, value);
            }
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn routes() -> Routes {
        Routes::from_document(&json!({"paths": {
            "/healthz": {"get": {}},
            "/workflows/{id}": {"get": {}, "patch": {}, "delete": {}},
            "/workflows/{id}/versions": {"get": {}, "post": {}},
            "/workflows/{id}/versions/{number}": {"get": {"parameters": [
                {"name": "id", "in": "path", "schema": {"type": "string", "format": "uuid"}},
                {"name": "number", "in": "path", "schema": {"type": "integer", "format": "uint32"}},
                {"name": "mode", "in": "query", "schema": {"type": "string", "enum": ["a", "b"]}},
            ]}},
        }}))
    }

    fn names(methods: &[Method]) -> Vec<&str> {
        methods.iter().map(Method::as_str).collect()
    }

    #[test]
    fn a_path_gets_the_methods_of_its_template() {
        let routes = routes();
        assert_eq!(names(&routes.for_path("/healthz")), ["GET"]);
        assert_eq!(
            names(&routes.for_path("/workflows/0b9f")),
            ["DELETE", "GET", "PATCH"]
        );
        assert_eq!(
            names(&routes.for_path("/workflows/0b9f/versions")),
            ["GET", "POST"]
        );
        assert_eq!(
            names(&routes.for_path("/workflows/0b9f/versions/3")),
            ["GET"]
        );
    }

    #[test]
    fn unknown_paths_and_empty_parameters_match_nothing() {
        let routes = routes();
        assert!(routes.for_path("/nothing").is_empty());
        assert!(routes.for_path("/workflows//versions").is_empty());
        assert!(routes.for_path("/workflows/a/b/c/d/e").is_empty());
    }

    #[test]
    fn parameters_are_named_and_described_as_documented() {
        let routes = routes();
        let template = PathTemplate::parse("/workflows/{id}/versions/{number}");
        assert_eq!(template.parameter(0), Some(("id", 1)));
        assert_eq!(template.parameter(1), Some(("number", 3)));
        assert_eq!(template.parameter(2), None);
        let path = "/workflows/x/versions/y";
        assert_eq!(
            routes.expected(&Method::GET, path, "number", "path"),
            Some("a whole number from 0 to 4294967295")
        );
        assert_eq!(
            routes.expected(&Method::GET, path, "id", "path"),
            Some("a UUID")
        );
        assert_eq!(
            routes.expected(&Method::GET, path, "mode", "query"),
            Some("one of a, b")
        );
        assert_eq!(routes.expected(&Method::POST, path, "mode", "query"), None);
        assert_eq!(
            routes.declared(&Method::GET, path, "mode"),
            Some(("query", "one of a, b"))
        );
        assert_eq!(routes.declared(&Method::GET, path, "id"), None);
    }
}
