//! The catalogue of event types: every type the outbox records, what each announces and the
//! schema of its `data`. Each domain declares its own (`<domain>::event_types()`), and
//! `domains::catalogue()` lists them once. Webhook subscriptions and the change feed accept
//! only catalogued types (an unknown one is `422`, not a subscription that never fires), and
//! the OpenAPI document's `webhooks` section is composed from it, so that client generators
//! type the receiving side too.

use std::collections::BTreeSet;

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Paths, PathsBuilder, Ref, RefOr, Required, ResponseBuilder};

use super::schema_part::SchemaPart;

/// The `data` of a deletion: only the id of what is gone.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub id: Uuid,
}

/// Where a member's app reads what an event of a type changed: the `/me` path of the
/// resource from the event's subject and data, or `None` when this event is not the member's
/// to see (an internal comment). Member feeds carry the path, never the staff's `data`.
pub type MemberLink = fn(subject_id: Uuid, data: &serde_json::Value) -> Option<String>;

/// One event type.
#[derive(Clone)]
pub struct EventType {
    /// `<subject kind>.<what happened>`: `customer.updated`.
    pub name: String,
    /// What makes it, in a sentence.
    pub about: String,
    /// The schema of its `data`, built only when the document is (the server at run time
    /// needs the names alone).
    pub data: fn() -> SchemaPart,
    /// Delivered to webhooks and shown in the change feed. Staff accounts, API keys and
    /// webhook subscriptions record events for the record, which stay inside.
    pub public: bool,
    /// Shown in the member's own feed (`GET /me/changes`), linked to their view of it.
    pub member: Option<MemberLink>,
}

impl EventType {
    /// A type delivered to webhooks and shown in the change feed.
    pub fn new(
        name: impl Into<String>,
        about: impl Into<String>,
        data: fn() -> SchemaPart,
    ) -> Self {
        Self {
            name: name.into(),
            about: about.into(),
            data,
            public: true,
            member: None,
        }
    }

    /// The same type, shown in the member's feed with the path `link` gives.
    pub fn for_members(self, link: MemberLink) -> Self {
        Self {
            member: Some(link),
            ..self
        }
    }

    /// A type recorded for the record only (staff accounts, credentials).
    pub fn internal(
        name: impl Into<String>,
        about: impl Into<String>,
        data: fn() -> SchemaPart,
    ) -> Self {
        Self {
            public: false,
            ..Self::new(name, about, data)
        }
    }

    /// A deletion, whose `data` is `{"id": ...}`.
    pub fn deleted(name: impl Into<String>, about: impl Into<String>) -> Self {
        Self::new(name, about, SchemaPart::of::<Deleted>)
    }

    /// `<kind>.created` and `<kind>.updated` with `T` as data, and `<kind>.deleted`: the
    /// life of a catalogue row (`what`: "standard answer").
    pub fn lifecycle<T: ToSchema>(kind: &str, what: &str) -> Vec<Self> {
        vec![
            Self::new(
                format!("{kind}.created"),
                format!("A {what} was created."),
                SchemaPart::of::<T>,
            ),
            Self::new(
                format!("{kind}.updated"),
                format!("A {what} was changed."),
                SchemaPart::of::<T>,
            ),
            Self::deleted(format!("{kind}.deleted"), format!("A {what} was deleted.")),
        ]
    }

    /// The family of a type: `points` for `points.changed`.
    pub fn family(name: &str) -> &str {
        name.split_once('.').map_or(name, |(family, _)| family)
    }
}

/// The names of every event type and whether each goes out: what the server checks
/// subscriptions, the feed and the outbox against at run time. The schemas stay with the
/// [`EventType`] list, which only the document reads ([`webhooks_document`]).
#[derive(Clone)]
pub struct Catalogue {
    /// `(name, public)`, by name.
    types: Vec<(String, bool)>,
    /// The types in members' feeds and where a member reads each, by name.
    members: Vec<(String, MemberLink)>,
}

/// A pattern that names no public type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownType {
    /// Its position in the list given.
    pub index: usize,
    pub pattern: String,
}

impl Catalogue {
    /// The catalogue of these types, by name; a name declared twice keeps its first
    /// declaration.
    pub fn new(types: &[EventType]) -> Self {
        let mut seen = BTreeSet::new();
        let mut names: Vec<(String, bool)> = types
            .iter()
            .filter(|t| seen.insert(t.name.clone()))
            .map(|t| (t.name.clone(), t.public))
            .collect();
        names.sort();
        let mut members: Vec<(String, MemberLink)> = types
            .iter()
            .filter(|t| t.public)
            .filter_map(|t| Some((t.name.clone(), t.member?)))
            .collect();
        members.sort_by(|a, b| a.0.cmp(&b.0));
        members.dedup_by(|a, b| a.0 == b.0);
        Self {
            types: names,
            members,
        }
    }

    /// The names of the types in members' feeds.
    pub fn member_types(&self) -> Vec<String> {
        self.members.iter().map(|(name, _)| name.clone()).collect()
    }

    /// Where a member reads what an event of `name` changed (`None`: not theirs to see).
    pub fn member_link(
        &self,
        name: &str,
        subject_id: Uuid,
        data: &serde_json::Value,
    ) -> Option<String> {
        let index = self
            .members
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()?;
        (self.members[index].1)(subject_id, data)
    }

    /// Every type's name, public or not.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.types.iter().map(|(name, _)| name.as_str())
    }

    /// The names of the types delivered and shown in the feed.
    pub fn public(&self) -> impl Iterator<Item = &str> {
        self.types
            .iter()
            .filter(|(_, public)| *public)
            .map(|(name, _)| name.as_str())
    }

    /// Whether `pattern` (`points.*`, `order.created`) names this type.
    pub fn matches(pattern: &str, name: &str) -> bool {
        match pattern.strip_suffix(".*") {
            Some(family) => EventType::family(name) == family,
            None => pattern == name,
        }
    }

    /// Checks that each pattern names at least one public type (`points.*` a family,
    /// `order.created` a type), and returns them in a canonical order, without repeats.
    pub fn patterns(&self, given: &[String]) -> Result<Vec<String>, UnknownType> {
        for (index, pattern) in given.iter().enumerate() {
            if !self.public().any(|t| Self::matches(pattern, t)) {
                return Err(UnknownType {
                    index,
                    pattern: pattern.clone(),
                });
            }
        }
        let unique: BTreeSet<&String> = given.iter().collect();
        Ok(unique.into_iter().cloned().collect())
    }

    /// The public types the patterns name (every public type when there are none).
    pub fn expand(&self, patterns: &[String]) -> Vec<String> {
        self.public()
            .filter(|t| patterns.is_empty() || patterns.iter().any(|p| Self::matches(p, t)))
            .map(str::to_owned)
            .collect()
    }

    /// Whether an event of this type goes to a subscription with these patterns.
    pub fn wanted(&self, patterns: &[String], name: &str) -> bool {
        self.public().any(|t| t == name)
            && (patterns.is_empty() || patterns.iter().any(|p| Self::matches(p, name)))
    }
}

/// The name of an event's envelope schema: `points.changed` → `PointsChangedEvent`.
fn envelope_name(event_type: &str) -> String {
    let mut name = String::new();
    for word in event_type.split(['.', '_']) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name + "Event"
}

fn header(name: &str, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// The document's `webhooks`: one `POST` per public type, whose body is the delivery
/// envelope `{id, type, created_at, data}` with that type's `data`, and the envelope schemas
/// with every component they name.
pub fn webhooks_document(types: &[EventType]) -> (Paths, Vec<(String, RefOr<Schema>)>) {
    let mut paths = PathsBuilder::new();
    let mut components = Vec::new();
    let mut public: Vec<&EventType> = types.iter().filter(|t| t.public).collect();
    public.sort_by(|a, b| a.name.cmp(&b.name));
    public.dedup_by(|a, b| a.name == b.name);
    for event in public {
        let name = envelope_name(&event.name);
        let data = (event.data)();
        let envelope = ObjectBuilder::new()
            .description(Some(format!(
                "A `{}` delivery. {}",
                event.name, event.about
            )))
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .description(Some(
                        "The event's id, also sent as `webhook-id`: the same on every attempt.",
                    )),
            )
            .property(
                "type",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([event.name.as_str()])),
            )
            .property(
                "created_at",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                    .description(Some("When the change happened.")),
            )
            .property("data", data.schema)
            .required("id")
            .required("type")
            .required("created_at")
            .required("data");
        components.push((name.clone(), envelope.into()));
        components.extend(data.components);
        let operation = OperationBuilder::new()
                .operation_id(Some(format!("on_{}", event.name.replace('.', "_"))))
                .summary(Some(event.name.clone()))
                .description(Some(event.about.clone()))
                .tag("webhooks")
                // No credential is sent: the signature authenticates a delivery.
                .security(SecurityRequirement::default())
                .parameter(header("webhook-id", "The event's id: the same on every attempt, so a receiver can drop a repeat."))
                .parameter(header("webhook-timestamp", "When this attempt was signed, in Unix seconds."))
                .parameter(header(
                    "webhook-signature",
                    "`v1,<base64 HMAC-SHA256>` of `<webhook-id>.<webhook-timestamp>.<body>` with the secret's decoded bytes; during a rotation, one per secret, space-separated.",
                ))
                .request_body(Some(
                    RequestBodyBuilder::new()
                        .required(Some(Required::True))
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name(name)))
                                .build(),
                        )
                        .build(),
                ))
                .response(
                    "2XX",
                    ResponseBuilder::new()
                        .description("Received. Any other answer, or none within the timeout, is retried."),
                )
                .response(
                    "410",
                    ResponseBuilder::new().description("The endpoint is gone: the subscription is disabled at once."),
                );
        paths = paths.path(
            event.name.clone(),
            PathItem::new(HttpMethod::Post, operation),
        );
    }
    (paths.build(), components)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(utoipa::ToSchema)]
    #[allow(dead_code)]
    struct Thing {
        id: u32,
    }

    fn types() -> Vec<EventType> {
        vec![
            EventType::new("points.changed", "", SchemaPart::of::<Thing>),
            EventType::new("order.created", "", SchemaPart::of::<Thing>),
            EventType::new("order.updated", "", SchemaPart::of::<Thing>),
            EventType::internal("user.created", "", SchemaPart::of::<Thing>),
        ]
    }

    fn catalogue() -> Catalogue {
        Catalogue::new(&types())
    }

    #[test]
    fn envelopes_are_named_after_their_type() {
        assert_eq!(envelope_name("points.changed"), "PointsChangedEvent");
        assert_eq!(
            envelope_name("complaint.sla_breached"),
            "ComplaintSlaBreachedEvent"
        );
        let (paths, components) = webhooks_document(&types());
        assert_eq!(paths.paths.len(), 3, "public types only");
        assert!(components.iter().any(|(n, _)| n == "OrderCreatedEvent"));
    }

    #[test]
    fn patterns_name_public_types_or_families() {
        let c = catalogue();
        let given = ["points.*".to_owned(), "order.created".to_owned()];
        assert_eq!(
            c.patterns(&given).unwrap(),
            ["order.created", "points.*"],
            "sorted"
        );
        for unknown in [
            "user.created",
            "user.*",
            "orders.*",
            "order.deleted",
            "*",
            "",
        ] {
            let err = c.patterns(&[unknown.to_owned()]).unwrap_err();
            assert_eq!(err.pattern, unknown);
        }
        assert_eq!(
            c.expand(&["order.*".into()]),
            ["order.created", "order.updated"]
        );
        assert_eq!(c.expand(&[]).len(), 3, "every public type");
        assert!(c.wanted(&[], "points.changed"));
        assert!(
            !c.wanted(&[], "user.created"),
            "internal types never go out"
        );
        assert!(!c.wanted(&["order.created".into()], "order.updated"));
    }
}
