//! Answers for requests no handler took: `405` with `Allow` when the path exists under
//! other methods, `404` otherwise — both problem documents. The route table is read from
//! the OpenAPI document, which is generated from the same handlers the router serves.

use actix_web::http::Method;
use actix_web::{HttpRequest, web};
use utoipa::openapi::OpenApi;

use crate::error::ApiError;

/// Every documented path template with its methods.
pub struct RouteTable {
    routes: Vec<(Vec<Segment>, Vec<String>)>,
}

enum Segment {
    Literal(String),
    Parameter,
}

impl RouteTable {
    /// The table of a document.
    pub fn from_openapi(doc: &OpenApi) -> Self {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let segments = template
                    .split('/')
                    .map(|s| {
                        if s.starts_with('{') {
                            Segment::Parameter
                        } else {
                            Segment::Literal(s.to_owned())
                        }
                    })
                    .collect();
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter(|(_, present)| *present)
                .map(|(m, _)| m.to_owned())
                .collect();
                (segments, methods)
            })
            .collect();
        Self { routes }
    }

    /// The methods a concrete path allows, if it names a route at all. A literal segment
    /// beats a parameter, so `/customers/batch` is its own route, not a customer id.
    pub fn allowed(&self, path: &str) -> Option<Vec<String>> {
        let parts: Vec<&str> = path.split('/').collect();
        let matching: Vec<&(Vec<Segment>, Vec<String>)> = self
            .routes
            .iter()
            .filter(|(segments, _)| {
                segments.len() == parts.len()
                    && segments.iter().zip(&parts).all(|(seg, part)| match seg {
                        Segment::Literal(lit) => lit == part,
                        Segment::Parameter => !part.is_empty(),
                    })
            })
            .collect();
        let parameters = |segments: &[Segment]| {
            segments
                .iter()
                .filter(|s| matches!(s, Segment::Parameter))
                .count()
        };
        let fewest = matching.iter().map(|(s, _)| parameters(s)).min()?;
        let mut methods: Vec<String> = matching
            .into_iter()
            .filter(|(s, _)| parameters(s) == fewest)
            .flat_map(|(_, m)| m.iter().cloned())
            .collect();
        methods.sort();
        methods.dedup();
        Some(methods)
    }
}

/// The app's default service.
pub async fn unmatched(
    req: HttpRequest,
    routes: web::Data<RouteTable>,
) -> Result<actix_web::HttpResponse, ApiError> {
    Err(method_not_allowed(&req, &routes)
        .unwrap_or_else(|| ApiError::NotFound(format!("no route matches {}", req.path()))))
}

/// `405` when the path is a route that does not take this method.
fn method_not_allowed(req: &HttpRequest, routes: &RouteTable) -> Option<ApiError> {
    let allowed = routes.allowed(req.path())?;
    (!allowed.iter().any(|m| *m == req.method().as_str()) || req.method() == Method::OPTIONS)
        .then_some(ApiError::MethodNotAllowed { allowed })
}

/// `404` for path parameters that cannot name a resource (such as a malformed id), or
/// `405` when the "parameter" is really a route of its own (`PATCH /customers/batch`).
pub fn path_error(error: actix_web::error::PathError, req: &HttpRequest) -> actix_web::Error {
    let routes = req.app_data::<web::Data<RouteTable>>();
    routes
        .and_then(|routes| method_not_allowed(req, routes))
        .unwrap_or_else(|| ApiError::NotFound(format!("no such resource ({error})")))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_concrete_paths() {
        let table = RouteTable {
            routes: vec![
                (
                    vec![
                        Segment::Literal("".into()),
                        Segment::Literal("users".into()),
                        Segment::Parameter,
                    ],
                    vec!["GET".into(), "PATCH".into()],
                ),
                (
                    vec![
                        Segment::Literal("".into()),
                        Segment::Literal("users".into()),
                    ],
                    vec!["GET".into()],
                ),
                (
                    vec![
                        Segment::Literal("".into()),
                        Segment::Literal("users".into()),
                        Segment::Literal("me".into()),
                    ],
                    vec!["POST".into()],
                ),
            ],
        };
        assert_eq!(table.allowed("/users/42").unwrap(), ["GET", "PATCH"]);
        assert_eq!(table.allowed("/users").unwrap(), ["GET"]);
        assert_eq!(
            table.allowed("/users/me").unwrap(),
            ["POST"],
            "a literal beats a parameter"
        );
        assert!(table.allowed("/users/42/x").is_none());
        assert!(table.allowed("/nothing").is_none());
    }
}
