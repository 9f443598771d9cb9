//! The schemas of the two customer documents every domain adds to — the timeline and the
//! data export — composed from the registered domains, so that the OpenAPI document types
//! a timeline entry's `data` by its `kind` and names every export section, and a new domain
//! extends both by registering its hooks (no schema is written by hand).

use std::collections::BTreeMap;

use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    Discriminator, KnownFormat, ObjectBuilder, OneOfBuilder, Ref, Schema, SchemaFormat, Type,
};

use super::registry::Registry;

/// The body of `GET /customers/{id}/export`, named for handlers; its schema is composed by
/// [`components`] from the registered domains.
pub struct CustomerExport;

impl utoipa::PartialSchema for CustomerExport {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().into()
    }
}

impl ToSchema for CustomerExport {}

/// The name of the timeline entry schema of `kind`: `order` → `OrderTimelineEntry`.
fn entry_schema_name(kind: &str) -> String {
    let mut chars = kind.chars();
    let head = chars.next().map(|c| c.to_ascii_uppercase());
    format!(
        "{}{}TimelineEntry",
        head.into_iter().collect::<String>(),
        chars.as_str()
    )
}

fn date_time() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
}

/// One kind of timeline entry: the common fields, `kind` fixed, `data` as the domain shapes it.
fn timeline_entry(kind: &str, data: RefOr<Schema>) -> Schema {
    ObjectBuilder::new()
        .description(Some(format!(
            "An entry of kind `{kind}` on a customer's timeline."
        )))
        .property("at", date_time().description(Some("When it happened.")))
        .property(
            "kind",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([kind])),
        )
        .property(
            "id",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                .description(Some("The id of the record the entry is about.")),
        )
        .property(
            "summary",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("One line for people.")),
        )
        .property("data", data)
        .required("at")
        .required("kind")
        .required("id")
        .required("summary")
        .required("data")
        .into()
}

/// The components the customer documents need, from the registered domains:
/// `TimelineEntry` (one of the kinds, told apart by `kind`), each `<Kind>TimelineEntry`,
/// `CustomerExport` (the customer and every domain's section), and what those name.
pub fn components(registry: &Registry) -> Vec<(String, RefOr<Schema>)> {
    let mut out = Vec::new();
    let mut kinds = OneOfBuilder::new().description(Some(
        "One entry of a customer's timeline; `kind` tells which.",
    ));
    let mut mapping = BTreeMap::new();
    for timeline in registry.timelines() {
        let data = (timeline.data)();
        out.extend(data.components);
        let name = entry_schema_name(timeline.kind);
        out.push((
            name.clone(),
            timeline_entry(timeline.kind, data.schema).into(),
        ));
        kinds = kinds.item(Ref::from_schema_name(&name));
        mapping.insert(
            timeline.kind.to_owned(),
            format!("#/components/schemas/{name}"),
        );
    }
    let mut discriminator = Discriminator::new("kind");
    discriminator.mapping = mapping.into_iter().collect();
    out.push((
        "TimelineEntry".into(),
        kinds.discriminator(Some(discriminator)).into(),
    ));

    let mut export = ObjectBuilder::new()
        .description(Some(
            "Everything held on a customer (a data-subject access request): the customer, \
             each domain's section, and when it was exported.",
        ))
        .property("customer", Ref::from_schema_name("Customer"))
        .required("customer");
    for section in registry.export_sections() {
        let part = (section.schema)();
        out.extend(part.components);
        export = export
            .property(section.section, part.schema)
            .required(section.section);
    }
    export = export
        .property("exported_at", date_time())
        .required("exported_at");
    out.push((
        "CustomerExport".into(),
        Schema::Object(export.build()).into(),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_schemas_are_named_after_their_kind() {
        assert_eq!(entry_schema_name("order"), "OrderTimelineEntry");
        assert_eq!(entry_schema_name("points"), "PointsTimelineEntry");
    }
}
