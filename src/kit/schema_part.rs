//! A schema a domain hands to the document from outside its routes (a timeline entry's
//! `data`, an export section), built from the types it serialises.

use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Ref, Schema, Type};

/// A schema a domain contributes from outside its routes: the schema, and every named
/// component it refers to (for the document to hold them).
#[derive(Clone)]
pub struct SchemaPart {
    pub schema: RefOr<Schema>,
    pub components: Vec<(String, RefOr<Schema>)>,
}

impl SchemaPart {
    /// `T`, by reference.
    pub fn of<T: ToSchema>() -> Self {
        let mut components = vec![(T::name().into_owned(), T::schema())];
        T::schemas(&mut components);
        Self {
            schema: Ref::from_schema_name(T::name()).into(),
            components,
        }
    }

    /// A list of `T`.
    pub fn list_of<T: ToSchema>() -> Self {
        let item = Self::of::<T>();
        Self {
            schema: ArrayBuilder::new().items(item.schema).into(),
            components: item.components,
        }
    }

    /// `T`, or `null` when the domain holds nothing.
    pub fn nullable<T: ToSchema>() -> Self {
        let part = Self::of::<T>();
        Self {
            schema: OneOfBuilder::new()
                .item(part.schema)
                .item(ObjectBuilder::new().schema_type(Type::Null))
                .into(),
            components: part.components,
        }
    }
}
