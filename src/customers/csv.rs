//! CSV import and export of the customer file, for the command line. Columns are the JSON
//! field names; list fields are separated by `;`; custom attributes are `attr.<name>`
//! columns and consents `consents.email`, `consents.sms`, `consents.phone` (`true`/`false`).
//! Each row goes through the same validation as the API and commits on its own, so a bad
//! row is reported with its line number and never stops the rest.

use std::io::{Read, Write};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Map, Value};

use super::fields::CustomerFields;
use super::queries::{self, CustomerCursor, ListFilters, Sort, UpsertOutcome};
use super::{Customer, CustomerRow};
use crate::error::ApiError;
use crate::http::json::{self, Validated};
use crate::kit::write::Writer;

const LIST_COLUMNS: [&str; 6] = ["phones", "emails", "tags", "hobbies", "likes", "dislikes"];
const TEXT_COLUMNS: [&str; 21] = [
    "kind",
    "display_name",
    "given_name",
    "family_name",
    "company",
    "position",
    "gender",
    "birthday",
    "personality",
    "family_situation",
    "occupation",
    "income_band",
    "notes",
    "level",
    "tier",
    "lifecycle_stage",
    "churn_reason",
    "owner_id",
    "region",
    "source",
    "external_ref",
];
const CONSENT_COLUMNS: [&str; 3] = ["consents.email", "consents.sms", "consents.phone"];

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub created: u64,
    pub updated: u64,
    /// `(line number, reason)` of every row that was not imported.
    pub failed: Vec<(u64, String)>,
}

/// Why an import could not start.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the CSV header: {0}")]
    Header(String),
    #[error(
        "unknown columns {0}; columns are customer field names, attr.<name> and consents.<channel>"
    )]
    UnknownColumns(String),
    #[error("database unavailable: {0}")]
    Database(String),
}

fn known_column(name: &str) -> bool {
    TEXT_COLUMNS.contains(&name)
        || LIST_COLUMNS.contains(&name)
        || CONSENT_COLUMNS.contains(&name)
        || name == "attributes"
        || name.strip_prefix("attr.").is_some_and(|n| !n.is_empty())
}

/// One CSV record as the JSON body the API would receive.
fn record_to_json(
    headers: &csv::StringRecord,
    record: &csv::StringRecord,
) -> Result<Value, String> {
    let mut body = Map::new();
    let mut attributes = Map::new();
    let mut consents = Map::new();
    for (header, cell) in headers.iter().zip(record.iter()) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        if header == "attributes" {
            let object = serde_json::from_str::<Map<String, Value>>(cell)
                .map_err(|_| "attributes: must be a JSON object".to_owned())?;
            attributes.extend(object);
        } else if let Some(name) = header.strip_prefix("attr.") {
            let value = serde_json::from_str::<Value>(cell)
                .ok()
                .filter(|v| v.is_number() || v.is_boolean())
                .unwrap_or_else(|| Value::String(cell.to_owned()));
            attributes.insert(name.to_owned(), value);
        } else if let Some(channel) = header.strip_prefix("consents.") {
            let granted = cell
                .parse::<bool>()
                .map_err(|_| format!("{header}: use true or false"))?;
            consents.insert(channel.to_owned(), Value::Bool(granted));
        } else if LIST_COLUMNS.contains(&header) {
            let items = cell
                .split(';')
                .map(|s| Value::String(s.trim().to_owned()))
                .collect();
            body.insert(header.to_owned(), Value::Array(items));
        } else {
            body.insert(header.to_owned(), Value::String(cell.to_owned()));
        }
    }
    if !attributes.is_empty() {
        body.insert("attributes".into(), Value::Object(attributes));
    }
    if !consents.is_empty() {
        body.insert("consents".into(), Value::Object(consents));
    }
    Ok(Value::Object(body))
}

fn describe(error: &ApiError) -> String {
    let problem = error.problem();
    if problem.errors.is_empty() {
        problem.detail
    } else {
        problem
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Imports customers, upserting by `(source, external_ref)` when a row has both and
/// creating otherwise. `progress` is called after each row.
pub async fn import(
    conn: &mut AsyncPgConnection,
    input: impl Read,
    mut progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| ImportError::Header(e.to_string()))?
        .clone();
    let unknown: Vec<&str> = headers.iter().filter(|h| !known_column(h)).collect();
    if !unknown.is_empty() {
        return Err(ImportError::UnknownColumns(unknown.join(", ")));
    }
    let mut report = ImportReport::default();
    for (index, record) in reader.records().enumerate() {
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(index as u64 + 2, |p| p.line());
        let outcome = match record
            .map_err(|e| e.to_string())
            .and_then(|r| record_to_json(&headers, &r))
        {
            Err(reason) => Err(reason),
            Ok(body) => import_row(conn, body).await.map_err(|e| match e {
                ApiError::Unavailable(detail) => detail,
                other => describe(&other),
            }),
        };
        match outcome {
            Ok(UpsertOutcome::Created) => report.created += 1,
            Ok(UpsertOutcome::Updated) => report.updated += 1,
            Err(reason) => report.failed.push((line, reason)),
        }
        progress(index as u64 + 1);
    }
    Ok(report)
}

async fn import_row(conn: &mut AsyncPgConnection, body: Value) -> Result<UpsertOutcome, ApiError> {
    let fields = json::parse::<CustomerFields>(body.to_string().as_bytes())?
        .validated()
        .map_err(ApiError::Validation)?;
    conn.transaction::<_, ApiError, _>(async move |conn| {
        if fields.source.value().is_some() && fields.external_ref.value().is_some() {
            Ok(
                queries::upsert_by_reference(conn, &Writer::system(), fields)
                    .await?
                    .0,
            )
        } else {
            queries::insert_new(conn, &Writer::system(), fields)
                .await
                .map(|_| UpsertOutcome::Created)
        }
    })
    .await
}

/// The CSV header the export writes (and the import reads back).
pub fn export_header() -> Vec<String> {
    let mut header: Vec<String> = TEXT_COLUMNS
        .iter()
        .chain(LIST_COLUMNS.iter())
        .map(|s| s.to_string())
        .collect();
    header.extend(CONSENT_COLUMNS.iter().map(|s| s.to_string()));
    header.push("attributes".into());
    header
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

/// Writes every live customer matching `filters` as CSV, oldest first, page by page.
/// Attributes go into one JSON column. Returns the number of rows written.
pub async fn export(
    conn: &mut AsyncPgConnection,
    filters: &ListFilters,
    output: impl Write,
    mut progress: impl FnMut(u64),
) -> Result<u64, String> {
    const PAGE: i64 = 1000;
    let sort = Sort::parse("created_at").map_err(|e| e.to_string())?;
    let mut writer = csv::Writer::from_writer(output);
    let header = export_header();
    writer.write_record(&header).map_err(|e| e.to_string())?;
    let mut cursor: Option<CustomerCursor> = None;
    let mut written = 0;
    loop {
        let rows: Vec<CustomerRow> = queries::list_statement(filters, sort, cursor.as_ref(), PAGE)
            .map_err(|e| e.to_string())?
            .load(conn)
            .await
            .map_err(|e| e.to_string())?;
        let next = (rows.len() as i64 == PAGE)
            .then(|| rows.last().map(|last| CustomerCursor::after(sort, last)))
            .flatten();
        for row in rows {
            let view = serde_json::to_value(Customer::from(row)).map_err(|e| e.to_string())?;
            let record: Vec<String> = header
                .iter()
                .map(|column| match column.strip_prefix("consents.") {
                    Some(channel) => cell(&view["consents"][channel]["granted"]),
                    None if column == "attributes" => view["attributes"].to_string(),
                    None => cell(&view[column.as_str()]),
                })
                .collect();
            writer.write_record(&record).map_err(|e| e.to_string())?;
            written += 1;
        }
        progress(written);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    writer.flush().map_err(|e| e.to_string())?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_api_bodies() {
        let headers = csv::StringRecord::from(vec![
            "display_name",
            "phones",
            "attr.shoe_size",
            "attr.colour",
            "consents.email",
            "notes",
        ]);
        let record = csv::StringRecord::from(vec![
            "Wang Li",
            "+86 138 0013 8000; +86 139 0000 0000",
            "42",
            "red",
            "true",
            "",
        ]);
        let body = record_to_json(&headers, &record).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"display_name": "Wang Li", "phones": ["+86 138 0013 8000", "+86 139 0000 0000"],
                               "attributes": {"shoe_size": 42, "colour": "red"}, "consents": {"email": true}})
        );
        let bad = csv::StringRecord::from(vec!["x", "", "", "", "maybe", ""]);
        assert!(record_to_json(&headers, &bad).is_err());
        assert!(
            known_column("attr.size") && !known_column("attr.") && !known_column("order_count")
        );
    }
}
