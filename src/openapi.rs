//! The OpenAPI 3.1 document, generated from the handlers registered in [`configure_routes`].
//! Cross-cutting facts (bearer security, the problem responses every route can give) are
//! added here once rather than repeated on each handler.

use actix_web::App;
use utoipa::OpenApi;
use utoipa::openapi::Required;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::server::ServerBuilder;
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder, schema::Type};
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{FieldError, Problem};

/// Name of the security scheme: JWTs and API keys both travel as bearer tokens.
const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rapport API",
        description = "Customer-relationship backend: the customer file and its classification, \
complaints, staff visits and a membership club.\n\nAuthenticate with `Authorization: Bearer <token>`, \
where the token is an access token from `POST /api/v1/auth/login` or an API key. Every `POST` accepts \
`Idempotency-Key`; single objects carry an `ETag` that `If-Match` can require; lists use cursor \
pagination; errors are RFC 9457 problem documents. Every response carries `X-Request-Id` and the \
`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
        contact(name = "Rapport maintainers"),
    ),
    tags(
        (name = "auth", description = "Sign in, token rotation, the current caller"),
        (name = "users", description = "Staff accounts (admins only)"),
        (name = "api-keys", description = "Credentials for integrations (admins only)"),
        (name = "customers", description = "The customer file: cards, personal files, classification, merge, export and erasure"),
        (name = "orders", description = "The transaction file: orders from shops and staff"),
        (name = "complaints", description = "Complaints from every window: workflow, SLA clocks, comments, resolution with compensation, satisfaction"),
        (name = "answers", description = "The library of standard answers to frequent complaints"),
        (name = "business-calendars", description = "Working hours and holidays that SLA clocks count in (managers)"),
        (name = "sla-policies", description = "Which response and resolution targets a complaint gets, and its escalation ladder (managers)"),
        (name = "visits", description = "Staff visits: plan, confirm, geo check-in and check-out (offline captures too), complete with follow-ups, cancel, reschedule; the due list"),
        (name = "visit-plans", description = "Recurring visits (RFC 5545 RRULE) materialised as planned visits"),
        (name = "visit-cadences", description = "How often each value tier (or customer) is visited, and the check-in radius (managers)"),
        (name = "visit-targets", description = "Visits each person should make per day, week or month (managers)"),
        (name = "boards", description = "A person's weekly and monthly visit boards"),
        (name = "club-members", description = "Club members: enrolment, balances and tier progress, the points ledger (earn, redeem, adjust; lots, pending points, expiry, debt from refunds), greetings"),
        (name = "club-tiers", description = "The club's tiers, what qualifies for them and their privileges (managers)"),
        (name = "club-rules", description = "How points are earned: purchases, frequency and bundle bonuses, enrolment, birthdays, referrals; caps (managers)"),
        (name = "club-rewards", description = "The rewards catalogue with stock and per-member limits, and redemptions"),
        (name = "club-events", description = "Club events with capacity, tiers invited, a waitlist that offers freed seats, check-in with attendance points"),
        (name = "club-referrals", description = "Members refer customers; the referrer earns when the referred customer's first order is paid"),
        (name = "club-settings", description = "The club's policies: points expiry, tier window, waitlist offer time, downgrade notice (managers)"),
        (name = "analytics", description = "Reports"),
        (name = "members", description = "A customer's own app: member tokens (`POST /member-tokens`, for an app's backend) and `/me`, the member's own profile"),
        (name = "webhooks", description = "Standard Webhooks deliveries of every change: subscriptions, secret rotation, the delivery log (admins, keys with `webhooks:manage`). The document's `webhooks` lists every event type with its body"),
        (name = "changes", description = "The change feed: every create, update and delete in commit order, with a cursor to resume (managers, admins, keys with `changes:read`)"),
        (name = "operations", description = "Probes and metrics"),
    ),
    // `OrderCustomer` is reshaped by hand (`orders::routes::order_customer_schema`); listing it
    // registers the components its fields name (it is then dropped as unused itself).
    // `Period` is named by a query parameter only, which does not register it.
    components(schemas(Problem, FieldError, crate::orders::routes::OrderCustomer, crate::complaints::analytics::Period, crate::visits::analytics::GroupBy, crate::visits::Status, crate::visits::Purpose, crate::visits::Method, crate::visits::boards::IsoWeek, crate::visits::boards::Month, crate::kit::input::Days, crate::kit::input::TimeZoneName, crate::http::sorting::CreationOrder, crate::http::sorting::ScheduleOrder))
)]
struct ApiDoc;

/// Registers every documented route: the probes at the root and the API under `/api/v1`.
pub fn configure_routes(cfg: &mut ServiceConfig) {
    cfg.configure(crate::health::configure).service(
        // Routes are matched in registration order, each `{id}` pattern by a regex: the
        // busiest domains come first so their requests are not tried against the others.
        utoipa_actix_web::scope("/api/v1")
            .configure(crate::customers::routes::configure)
            .configure(crate::orders::routes::configure)
            .configure(crate::complaints::routes::configure)
            .configure(crate::complaints::answers::configure)
            .configure(crate::complaints::calendars::configure)
            .configure(crate::complaints::policies::configure)
            .configure(crate::complaints::analytics::configure)
            // `/visits/due` before `/visits/{id}`.
            .configure(crate::visits::cadences::configure)
            .configure(crate::visits::routes::configure)
            .configure(crate::visits::plans::configure)
            .configure(crate::visits::targets::configure)
            .configure(crate::visits::boards::configure)
            .configure(crate::visits::analytics::configure)
            .configure(crate::club::configure)
            .configure(crate::auth::routes::configure)
            .configure(crate::users::routes::configure)
            .configure(crate::api_keys::configure)
            .configure(crate::customers::me::configure)
            .configure(crate::complaints::me::configure)
            .configure(crate::visits::me::configure)
            .configure(crate::webhooks::routes::configure)
            .configure(crate::changes::configure)
            .configure(crate::changes::me::configure),
    );
}

/// The complete document.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(configure_routes)
        .split_for_parts();
    add_shared_parts(&mut doc);
    name_operations(&mut doc);
    link_created_resources(&mut doc);
    describe_responses(&mut doc);
    doc.servers = Some(vec![
        ServerBuilder::new()
            .url("/")
            .description(Some(
                "The server this document is served from (`/openapi.json`)",
            ))
            .build(),
    ]);
    let (webhooks, event_schemas) =
        crate::kit::event_types::webhooks_document(&crate::domains::event_types());
    doc.webhooks = Some(webhooks);
    if let Some(components) = doc.components.as_mut() {
        components.schemas.extend(crate::kit::documents::components(
            &crate::domains::registry(),
        ));
        for (name, schema) in event_schemas {
            components.schemas.entry(name).or_insert(schema);
        }
    }
    drop_unused_schemas(through_json(doc, |value| {
        reference_page_rows(value);
        strip_null_defaults(value);
        untangle_composed_names(value);
    }))
}

/// utoipa inlines a generic argument (juhaku/utoipa#1586), so every `Page_X` would carry a
/// copy of `X` and generated clients a second class per resource. Each page's `data` items
/// become a reference to `X`, which is added to the components where only the page had it.
fn reference_page_rows(doc: &mut serde_json::Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    let pages: Vec<String> = schemas
        .keys()
        .filter(|name| name.starts_with("Page_"))
        .cloned()
        .collect();
    for page in pages {
        let row = page["Page_".len()..].to_owned();
        let Some(items) = schemas
            .get_mut(&page)
            .and_then(|schema| schema.pointer_mut("/properties/data/items"))
        else {
            continue;
        };
        let reference = serde_json::json!({"$ref": format!("#/components/schemas/{row}")});
        let inlined = std::mem::replace(items, reference);
        if inlined.get("$ref").is_none() {
            schemas.entry(row).or_insert(inlined);
        }
    }
}

/// Applies `edit` to the document's JSON form.
fn through_json(
    doc: utoipa::openapi::OpenApi,
    edit: impl FnOnce(&mut serde_json::Value),
) -> utoipa::openapi::OpenApi {
    let mut value = serde_json::to_value(&doc).unwrap_or_default();
    edit(&mut value);
    serde_json::from_value(value).unwrap_or(doc)
}

/// utoipa names the schema of a generic field type after the wrapper and its argument, so a
/// merge-patch `Field<Text<0, 100>>` becomes `Text_0_100_Text_0_100` and `Field<Items<Phone>>`
/// `Items_Items_Phone`: the same schema as `Text_0_100` / `Items_Phone`. Such a name
/// `P_C` where `C` starts with `P` is renamed `C` (one component where both exist).
fn untangle_composed_names(doc: &mut serde_json::Value) {
    let untangled = |name: &str| {
        name.match_indices('_').find_map(|(i, _)| {
            let (prefix, rest) = (&name[..i], &name[i + 1..]);
            rest.starts_with(prefix).then(|| rest.to_owned())
        })
    };
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    let renames: Vec<(String, String)> = schemas
        .keys()
        .filter_map(|name| Some((name.clone(), untangled(name)?)))
        .collect();
    for (from, to) in &renames {
        if let Some(schema) = schemas.remove(from) {
            schemas.entry(to.clone()).or_insert(schema);
        }
    }
    fn rewrite(value: &mut serde_json::Value, renames: &[(String, String)]) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(target)) = map.get_mut("$ref")
                    && let Some((_, to)) = renames.iter().find(|(from, _)| {
                        target.strip_prefix("#/components/schemas/") == Some(from)
                    })
                {
                    *target = format!("#/components/schemas/{to}");
                }
                map.values_mut().for_each(|v| rewrite(v, renames));
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, renames)),
            _ => {}
        }
    }
    rewrite(doc, &renames);
}

/// Gives every response without a description its status's reason phrase: OpenAPI requires
/// one, and a handler's `(status = 200, body = X)` says all there is to say.
fn describe_responses(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for (_, operation) in operations_mut(item) {
            let Some(operation) = operation else { continue };
            for (status, response) in operation.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                if response.description.is_empty() {
                    response.description = status
                        .parse::<u16>()
                        .ok()
                        .and_then(|code| actix_web::http::StatusCode::from_u16(code).ok())
                        .and_then(|code| code.canonical_reason())
                        .unwrap_or("Response")
                        .to_owned();
                }
            }
        }
    }
}

/// Every `$ref` target named anywhere in `value`.
fn referenced(value: &serde_json::Value, found: &mut std::collections::HashSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner.as_str()) {
                    ("$ref", Some(target)) => {
                        found.insert(target.to_owned());
                    }
                    _ => referenced(inner, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| referenced(v, found)),
        _ => {}
    }
}

/// Removes schema components nothing refers to: generic pages (`Page<T>`) inline their
/// item type, which utoipa registers as well.
fn drop_unused_schemas(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    loop {
        let mut found = std::collections::HashSet::new();
        referenced(&serde_json::to_value(&doc).unwrap_or_default(), &mut found);
        let Some(components) = doc.components.as_mut() else {
            return doc;
        };
        let before = components.schemas.len();
        components
            .schemas
            .retain(|name, _| found.contains(&format!("#/components/schemas/{name}")));
        if components.schemas.len() == before {
            return doc;
        }
    }
}

/// Removes `default: null` from every schema. utoipa states a field's `Default` (a merge
/// patch's absent field) as `default: null`, and generators read a default as "the server
/// always fills it in": openapi-typescript then makes every such request field required.
fn strip_null_defaults(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if map.get("default").is_some_and(serde_json::Value::is_null) {
                map.remove("default");
            }
            map.values_mut().for_each(strip_null_defaults);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_null_defaults),
        _ => {}
    }
}

/// The operations of a path item with their methods.
fn operations_mut(item: &mut PathItem) -> [(&'static str, &mut Option<Operation>); 5] {
    [
        ("get", &mut item.get),
        ("post", &mut item.post),
        ("put", &mut item.put),
        ("patch", &mut item.patch),
        ("delete", &mut item.delete),
    ]
}

/// Gives every operation a unique id, `<tag>_<handler>`: handlers of different domains share
/// names such as `list`, and code generators and links need ids that do not clash.
fn name_operations(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for (_, operation) in operations_mut(item) {
            let Some(operation) = operation else { continue };
            let tag = operation
                .tags
                .as_ref()
                .and_then(|tags| tags.first())
                .map(|tag| tag.replace('-', "_"));
            if let (Some(tag), Some(handler)) = (tag, operation.operation_id.as_ref()) {
                operation.operation_id = Some(format!("{tag}_{handler}"));
            }
        }
    }
}

/// Links the `201` of every `POST /x` to each operation under `/x/{id}`, passing the new
/// object's `id`: clients (and the contract fuzzer) can follow create → read → change →
/// delete without knowing the URL layout.
fn link_created_resources(doc: &mut utoipa::openapi::OpenApi) {
    let mut targets: Vec<(String, String)> = Vec::new();
    for (path, item) in doc.paths.paths.iter_mut() {
        for (_, operation) in operations_mut(item) {
            if let Some(id) = operation.as_ref().and_then(|o| o.operation_id.clone()) {
                targets.push((path.clone(), id));
            }
        }
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let Some(created) = item
            .post
            .as_mut()
            .and_then(|post| post.responses.responses.get_mut("201"))
        else {
            continue;
        };
        let RefOr::T(created) = created else { continue };
        let item_path = format!("{path}/{{id}}");
        for (target_path, operation_id) in &targets {
            let under_item =
                target_path == &item_path || target_path.starts_with(&format!("{item_path}/"));
            if under_item && target_path.matches('{').count() == 1 {
                created.links.insert(
                    operation_id.clone(),
                    RefOr::T(
                        LinkBuilder::new()
                            .operation_id(operation_id.clone())
                            .parameter("id", "$response.body#/id")
                            .build(),
                    ),
                );
            }
        }
    }
}

/// The document as the committed `openapi/openapi.json` holds it.
pub fn document_json() -> String {
    let mut text = document().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// Problem responses any route may give, by status: (status, component name, description).
const SHARED_RESPONSES: [(&str, &str, &str); 11] = [
    (
        "400",
        "BadRequest",
        "Malformed JSON, query string or header",
    ),
    (
        "401",
        "Unauthorized",
        "Missing, expired, forged or revoked credential",
    ),
    (
        "403",
        "Forbidden",
        "The credential does not grant this operation",
    ),
    ("404", "NotFound", "No such resource"),
    (
        "409",
        "IdempotencyKeyInUse",
        "A request with this Idempotency-Key is still running: retry once it has finished",
    ),
    (
        "412",
        "PreconditionFailed",
        "If-Match does not match the current ETag: read again, then retry",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is larger than the limit",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not application/json",
    ),
    (
        "422",
        "ValidationFailed",
        "The body is well-formed but invalid (`errors` names each field), or the Idempotency-Key was used with another body",
    ),
    (
        "429",
        "TooManyRequests",
        "Rate limit exceeded; see Retry-After",
    ),
    (
        "503",
        "Unavailable",
        "The database is unavailable; retry after Retry-After seconds",
    ),
];

fn add_shared_parts(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT access token or rpk_ API key")
                .build(),
        ),
    );
    for (_, name, description) in SHARED_RESPONSES {
        let mut response = ResponseBuilder::new().description(description).content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        );
        if matches!(name, "TooManyRequests" | "Unavailable") {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer),
                    ))
                    .description(Some("Seconds to wait"))
                    .build(),
            );
        }
        components
            .responses
            .insert(name.to_owned(), RefOr::T(response.build()));
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let has_id = path.contains('{');
        for (method, operation) in operations_mut(item) {
            if let Some(operation) = operation {
                add_shared_responses(operation, method, has_id);
            }
        }
    }
}

/// Adds what the shared layer gives every operation: bearer security unless public, the
/// problem responses it can produce, and `If-Match` on writes to a single object.
fn add_shared_responses(operation: &mut Operation, method: &str, has_id: bool) {
    let conditional = matches!(method, "put" | "patch" | "delete");
    // `security(())` on a handler marks it public, and a public operation declares no
    // security at all (`security: []`, not the anonymous `[{}]`, which client generators
    // read as "authenticated, optionally"); everything else needs a bearer token.
    let public = operation
        .security
        .as_ref()
        .is_some_and(|reqs| reqs.iter().all(is_empty_requirement));
    if public {
        operation.security = Some(Vec::new());
    } else {
        operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
    }
    let has_body = operation.request_body.is_some();
    if method == "post" {
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::T(idempotency_key_parameter()));
    }
    if conditional && has_id {
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::T(if_match_parameter()));
    }
    for (status, name, _) in SHARED_RESPONSES {
        let applies = match status {
            "401" | "403" => !public,
            "404" => has_id,
            "409" => method == "post",
            "412" => conditional && has_id,
            "413" | "415" => has_body,
            "422" => has_body || method == "post",
            _ => true,
        };
        if applies && !operation.responses.responses.contains_key(status) {
            operation.responses.responses.insert(
                status.to_owned(),
                RefOr::Ref(Ref::new(format!("#/components/responses/{name}"))),
            );
        }
    }
}

/// The `Idempotency-Key` header parameter every `POST` accepts.
fn idempotency_key_parameter() -> Parameter {
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some("A key of your choosing (1 to 255 printable ASCII characters): a retry with the same key and body within 24 hours replays the first response (`Idempotent-Replayed: true`) instead of running again"))
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[!-~]{1,255}$")),
        ))
        .build()
}

/// The `If-Match` header parameter of a conditional write.
fn if_match_parameter() -> Parameter {
    ParameterBuilder::new()
        .name("If-Match")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some("An ETag from a previous read; the write is refused with 412 if the object changed since"))
        .schema(Some(utoipa::openapi::ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

fn is_empty_requirement(requirement: &SecurityRequirement) -> bool {
    serde_json::to_value(requirement)
        .map(|v| v.as_object().is_none_or(|o| o.is_empty()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    /// The values an enumeration's schema lists are exactly the ones the API sends and accepts.
    fn assert_schema_lists<T: Serialize>(name: &str, all: &[T]) {
        let doc = serde_json::to_value(super::document()).unwrap();
        let listed = &doc["components"]["schemas"][name]["enum"];
        assert_eq!(listed, &serde_json::to_value(all).unwrap(), "{name}");
    }

    #[test]
    fn operation_ids_are_unique_and_links_name_real_operations() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let mut ids = Vec::new();
        let mut linked = Vec::new();
        for (_, item) in doc["paths"].as_object().unwrap() {
            for (_, operation) in item.as_object().unwrap() {
                ids.push(operation["operationId"].as_str().unwrap().to_owned());
                if let Some(links) = operation["responses"]["201"]["links"].as_object() {
                    linked.extend(links.values().map(|l| l["operationId"].clone()));
                }
            }
        }
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "duplicate operation ids in {ids:?}"
        );
        for id in [
            "customers_get_one",
            "customers_update",
            "customers_remove",
            "orders_get_one",
        ] {
            assert!(linked.contains(&serde_json::json!(id)), "no link to {id}");
        }
        for link in &linked {
            assert!(
                ids.iter().any(|id| link == id),
                "link to unknown operation {link}"
            );
        }
    }

    /// Generators read a default as "always filled in" (openapi-typescript then makes the
    /// field required), so no schema may state `default: null`.
    #[test]
    fn every_reference_resolves() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let mut found = std::collections::HashSet::new();
        super::referenced(&doc, &mut found);
        assert!(found.len() > 100);
        for reference in found {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            assert!(doc.pointer(pointer).is_some(), "{reference} names nothing");
        }
    }

    /// A create's `Location` names a resource a client can read: a `201` with a `Location`
    /// has a `GET` beneath its path (`/things` → `/things/{id}`), or, for the one action that
    /// creates a sibling (`/visit-plans/{id}/split`) and a member's registration (shown on
    /// `/me/events/{id}`), at its resource's path. (The tests' client also reads every
    /// `Location` a `201` sends.)
    #[test]
    fn every_created_location_can_be_read() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let readable = |path: &str| {
            paths
                .get(path)
                .is_some_and(|item| item.get("get").is_some())
        };
        let item_of = |path: &str| {
            paths
                .keys()
                .find(|p| {
                    p.strip_prefix(path)
                        .and_then(|rest| rest.strip_prefix("/{"))
                        .is_some_and(|rest| rest.ends_with('}') && !rest.contains('/'))
                })
                .cloned()
        };
        let mut checked = 0;
        for (path, item) in paths {
            let locates = item["post"]["responses"]["201"]["headers"]
                .as_object()
                .is_some_and(|headers| headers.keys().any(|h| h.eq_ignore_ascii_case("location")));
            if !locates {
                continue;
            }
            checked += 1;
            // The actions that create a sibling of the resource they act on, and a member's
            // registration, which shows on the member's view of its event.
            let sibling = [
                "/api/v1/visit-plans/{id}/split",
                "/api/v1/me/events/{id}/registrations",
            ]
            .contains(&path.as_str())
            .then(|| {
                path.rsplit_once('/')
                    .map(|(resource, _)| resource.to_owned())
            })
            .flatten();
            let found = item_of(path)
                .or(sibling)
                .is_some_and(|target| readable(&target));
            assert!(
                found,
                "POST {path} answers 201 with a Location nothing reads"
            );
        }
        assert!(checked > 15, "{checked}");
    }

    #[test]
    fn pages_reference_their_row_schema() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let pages: Vec<_> = schemas.keys().filter(|n| n.starts_with("Page_")).collect();
        assert!(pages.len() > 20, "{pages:?}");
        for page in pages {
            let row = &page["Page_".len()..];
            assert_eq!(
                schemas[page]["properties"]["data"]["items"],
                serde_json::json!({"$ref": format!("#/components/schemas/{row}")}),
                "{page}"
            );
            assert!(schemas.contains_key(row), "{page}: no schema {row}");
        }
    }

    #[test]
    fn no_schema_states_a_null_default() {
        let doc = super::document_json();
        assert!(!doc.contains("\"default\": null"), "a null default is left");
        assert!(doc.contains("\"Idempotency-Key\""));
    }

    #[test]
    fn enumerations_are_documented_as_they_are_sent() {
        use crate::customers::{ChurnReason, Gender, IncomeBand, Kind, Level, Stage, Tier};
        assert_schema_lists("Kind", Kind::ALL);
        assert_schema_lists("Level", Level::ALL);
        assert_schema_lists("Tier", Tier::ALL);
        assert_schema_lists("Stage", Stage::ALL);
        assert_schema_lists("ChurnReason", ChurnReason::ALL);
        assert_schema_lists("Gender", Gender::ALL);
        assert_schema_lists("TierWindow", crate::club::settings::TierWindow::ALL);
        assert_schema_lists("ExpiryPolicy", crate::club::settings::ExpiryPolicy::ALL);
        assert_schema_lists("IncomeBand", IncomeBand::ALL);
        assert_schema_lists("OrderStatus", crate::orders::OrderStatus::ALL);
        assert_schema_lists("Role", crate::auth::Role::ALL);
    }
}
