//! The `Allow` header of a `405 Method Not Allowed` answer (RFC 9110 §15.5.6 requires it): the
//! methods the published document lists for the request's path.
//!
//! The router knows that a path exists but not, at the point where it refuses a method, which
//! methods it has; the document does. The table is built once from it, so it cannot disagree with
//! the operations the document declares.

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use serde_json::Value;

/// The methods of each documented path, by path template (`/workflows/{id}`).
#[derive(Clone, Debug, Default)]
pub struct AllowedMethods {
    paths: Vec<(PathTemplate, Vec<Method>)>,
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
    Parameter,
}

impl PathTemplate {
    /// The template as the document writes it.
    pub(crate) fn parse(template: &str) -> Self {
        Self(
            segments(template)
                .map(|segment| {
                    if segment.starts_with('{') && segment.ends_with('}') {
                        Segment::Parameter
                    } else {
                        Segment::Literal(segment.to_owned())
                    }
                })
                .collect(),
        )
    }

    /// Whether the request path `path` is one of this template's.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let mut given = segments(path);
        self.0.iter().all(|segment| match (segment, given.next()) {
            (Segment::Literal(text), Some(given)) => text == given,
            (Segment::Parameter, Some(given)) => !given.is_empty(),
            (_, None) => false,
        }) && given.next().is_none()
    }
}

impl AllowedMethods {
    /// The table of `document`'s `paths` (an OpenAPI document as JSON).
    pub fn from_document(document: &Value) -> Self {
        let Some(paths) = document.get("paths").and_then(Value::as_object) else {
            return Self::default();
        };
        let paths = paths
            .iter()
            .map(|(template, operations)| {
                let template = PathTemplate::parse(template);
                let methods = operations
                    .as_object()
                    .map(|operations| {
                        operations
                            .keys()
                            .filter_map(|name| {
                                Method::from_bytes(name.to_uppercase().as_bytes()).ok()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (template, methods)
            })
            .collect();
        Self { paths }
    }

    /// The methods documented for `path`, in a fixed order, without repeats; empty when no
    /// documented path matches.
    pub fn for_path(&self, path: &str) -> Vec<Method> {
        let mut allowed: Vec<Method> = Vec::new();
        for (template, methods) in &self.paths {
            if template.matches(path) {
                for method in methods {
                    if !allowed.contains(method) {
                        allowed.push(method.clone());
                    }
                }
            }
        }
        allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        allowed
    }
}

/// The segments of a path, without the leading slash.
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.trim_start_matches('/').split('/')
}

impl<E: Endpoint> Middleware<E> for AllowedMethods {
    type Output = AllowHeader<E>;

    fn transform(&self, inner: E) -> Self::Output {
        AllowHeader {
            inner,
            allowed: self.clone(),
        }
    }
}

/// [`AllowedMethods`] around an endpoint.
pub struct AllowHeader<E> {
    inner: E,
    allowed: AllowedMethods,
}

impl<E: Endpoint> Endpoint for AllowHeader<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> Result<Self::Output> {
        let path = request.uri().path().to_owned();
        let mut response = self.inner.call(request).await?.into_response();
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && !response.headers().contains_key(header::ALLOW)
        {
            let methods = self.allowed.for_path(&path);
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

    fn table() -> AllowedMethods {
        AllowedMethods::from_document(&json!({"paths": {
            "/healthz": {"get": {}},
            "/workflows/{id}": {"get": {}, "patch": {}, "delete": {}},
            "/workflows/{id}/versions": {"get": {}, "post": {}},
            "/workflows/{id}/versions/{number}": {"get": {}},
        }}))
    }

    fn names(methods: &[Method]) -> Vec<&str> {
        methods.iter().map(Method::as_str).collect()
    }

    #[test]
    fn a_path_gets_the_methods_of_its_template() {
        let table = table();
        assert_eq!(names(&table.for_path("/healthz")), ["GET"]);
        assert_eq!(
            names(&table.for_path("/workflows/0b9f")),
            ["DELETE", "GET", "PATCH"]
        );
        assert_eq!(
            names(&table.for_path("/workflows/0b9f/versions")),
            ["GET", "POST"]
        );
        assert_eq!(
            names(&table.for_path("/workflows/0b9f/versions/3")),
            ["GET"]
        );
    }

    #[test]
    fn unknown_paths_and_empty_parameters_match_nothing() {
        let table = table();
        assert!(table.for_path("/nothing").is_empty());
        assert!(table.for_path("/workflows//versions").is_empty());
        assert!(table.for_path("/workflows/a/b/c/d/e").is_empty());
    }
}
