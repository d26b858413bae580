//! Contact import from CSV or JSONL (by extension). Each row is validated on its own:
//! bad rows are reported with their line and field and stored not at all; good rows are
//! upserted by `id`.

mod event;

use crate::store::Contacts;
pub use event::{EventReport, parse_event, read_events, record_event};

use std::{
    io::{BufRead, BufReader, IsTerminal},
    path::Path,
};

use serde_json::{Map, Value};

use crate::{
    config::Config,
    domain::{
        Birthday, Contact, ContactId, EmailAddress, PhoneNumber,
        contact::{parse_date, parse_locale, parse_timezone},
    },
    store::{ContactUpsert, StoreError},
};

/// One problem in one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: field `{}`: {}",
            self.line, self.field, self.message
        )
    }
}

#[derive(Debug, Default)]
pub struct ImportReport {
    pub imported: usize,
    pub rejected_rows: usize,
    pub errors: Vec<RowError>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The contacts-file fields; anything else is a free attribute.
pub const KNOWN: [&str; 12] = [
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "timezone",
    "locale",
    "birthday",
    "customer_since",
    "tier",
    "email_consent",
    "sms_consent",
];

type FieldErrors = Vec<(String, String)>;

/// The trimmed text of field `k`, `None` when absent or empty; a non-text value is an error.
fn text(row: &Map<String, Value>, k: &str, errors: &mut FieldErrors) -> Option<String> {
    match row.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            errors.push((k.to_owned(), "must be a string".into()));
            None
        }
    }
}

/// Field `k` parsed with `parse`; a parse failure is recorded against the field.
fn parsed<T, E: ToString>(
    row: &Map<String, Value>,
    k: &str,
    errors: &mut FieldErrors,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Option<T> {
    let v = text(row, k, errors)?;
    parse(&v)
        .map_err(|e| errors.push((k.to_owned(), e.to_string())))
        .ok()
}

/// Turns one row (field name -> value) into a contact, or every problem with it.
pub fn parse_row(row: &Map<String, Value>, cfg: &Config) -> Result<ContactUpsert, FieldErrors> {
    let mut errors = Vec::new();
    let id = parsed(row, "id", &mut errors, ContactId::parse);
    if id.is_none() && !errors.iter().any(|(f, _)| f == "id") {
        errors.push(("id".into(), "missing".into()));
    }
    let email = parsed(row, "email", &mut errors, EmailAddress::parse);
    let phone = parsed(row, "phone", &mut errors, PhoneNumber::parse);
    let timezone = parsed(row, "timezone", &mut errors, parse_timezone);
    let locale = parsed(row, "locale", &mut errors, parse_locale);
    let birthday = parsed(row, "birthday", &mut errors, Birthday::parse);
    let customer_since = parsed(row, "customer_since", &mut errors, parse_date);
    let tier = parsed(row, "tier", &mut errors, |s| {
        match cfg.rules.tiers.iter().find(|t| t.name == s) {
            Some(t) => Ok(t.name.clone()),
            None => {
                let known: Vec<&str> = cfg.rules.tiers.iter().map(|t| t.name.as_str()).collect();
                Err(format!("unknown tier {s:?} (known: {})", known.join(", ")))
            }
        }
    });
    let consent = parsed(row, "email_consent", &mut errors, parse_bool);
    let sms_consent = parsed(row, "sms_consent", &mut errors, parse_bool);
    let first_name = text(row, "first_name", &mut errors);
    let last_name = text(row, "last_name", &mut errors);
    let mut attributes = Map::new();
    for (k, v) in row {
        if !KNOWN.contains(&k.as_str())
            && !matches!(v, Value::Null)
            && v.as_str().is_none_or(|s| !s.is_empty())
        {
            attributes.insert(k.clone(), v.clone());
        }
    }
    let tier_left_out = tier.is_none();
    match id {
        Some(id) if errors.is_empty() => Ok(ContactUpsert {
            contact: Contact {
                id,
                first_name,
                last_name,
                email,
                phone,
                timezone,
                locale,
                birthday,
                customer_since,
                tier: tier.unwrap_or_else(|| cfg.rules.defaults.tier.clone()),
                attributes,
                email_consent: consent.unwrap_or(true),
                sms_consent: sms_consent.unwrap_or(true),
            },
            email_consent: consent,
            sms_consent,
            keep_tier: tier_left_out,
        }),
        _ => Err(errors),
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "y" => Ok(true),
        "no" | "false" | "0" | "n" => Ok(false),
        _ => Err(format!("{s:?} is not yes/no")),
    }
}

/// A row as read, keyed by field name, or why it could not be read.
type Row = Result<Map<String, Value>, String>;

/// Reads rows from a CSV or JSONL file: `(line, row)` or a row-level error.
fn read_rows(path: &Path, each: impl FnMut(u64, u64, Row)) -> Result<(), IngestError> {
    let name = path.display().to_string();
    let file_err = |message: String| IngestError::File {
        path: name.clone(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| file_err(format!("cannot open: {e}")))?;
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => read_csv(file, file_err, each),
        Some("jsonl" | "ndjson") => read_jsonl(file, file_err, each),
        _ => Err(file_err(
            "unknown file type (expected .csv or .jsonl)".into(),
        )),
    }
}

/// CSV with a header row naming the fields (`id` among them). A row of the wrong
/// length or not UTF-8 is reported and skipped; any other error ends the file.
fn read_csv(
    file: std::fs::File,
    file_err: impl Fn(String) -> IngestError,
    mut each: impl FnMut(u64, u64, Row),
) -> Result<(), IngestError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers = rdr
        .headers()
        .map_err(|e| file_err(format!("cannot read the header row: {e}")))?
        .clone();
    if !headers.iter().any(|h| h == "id") {
        return Err(file_err("the header row has no `id` column".into()));
    }
    let mut record = csv::StringRecord::new();
    loop {
        let pos = rdr.position().clone();
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(pos.line(), |p| p.line());
                let row = headers
                    .iter()
                    .zip(record.iter())
                    .map(|(h, v)| (h.to_owned(), Value::String(v.to_owned())))
                    .collect();
                each(line, rdr.position().byte(), Ok(row));
            }
            Err(e) => {
                let line = e.position().map_or(pos.line(), |p| p.line());
                each(
                    line,
                    rdr.position().byte(),
                    Err(format!("unreadable CSV row: {e}")),
                );
                if !matches!(
                    e.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                ) {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// One JSON object per line; blank lines are skipped.
fn read_jsonl(
    file: std::fs::File,
    file_err: impl Fn(String) -> IngestError,
    mut each: impl FnMut(u64, u64, Row),
) -> Result<(), IngestError> {
    let (mut bytes, mut line_no) = (0u64, 0u64);
    for line in BufReader::new(file).lines() {
        line_no += 1;
        let line = line.map_err(|e| file_err(format!("line {line_no}: cannot read: {e}")))?;
        bytes += line.len() as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let row = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err("not a JSON object".to_owned()),
            Err(e) => Err(format!("not valid JSON: {e}")),
        };
        each(line_no, bytes, row);
    }
    Ok(())
}

/// Reads `path` (CSV or JSONL) into contacts without storing them (`rapport simulate`):
/// the good rows in file order, and every problem with the bad ones.
pub fn read_contacts(
    cfg: &Config,
    path: &Path,
) -> Result<(Vec<Contact>, Vec<RowError>), IngestError> {
    let mut good: Vec<Contact> = Vec::new();
    let mut errors = Vec::new();
    read_rows(path, |line, _, row| {
        let result = row
            .map_err(|e| vec![("(row)".to_owned(), e)])
            .and_then(|r| parse_row(&r, cfg));
        match result {
            Ok(c) => good.push(c.contact),
            Err(errs) => errors.extend(errs.into_iter().map(|(field, message)| RowError {
                line,
                field,
                message,
            })),
        }
    })?;
    Ok((good, errors))
}

/// Imports `path` into `store`, showing a progress bar when stderr is a terminal.
pub async fn import_file<S: Contacts>(
    store: &S,
    cfg: &Config,
    path: &Path,
) -> Result<ImportReport, IngestError> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(size);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
        {
            b.set_style(style);
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut report = ImportReport::default();
    let mut good: Vec<ContactUpsert> = Vec::new();
    read_rows(path, |line, pos, row| {
        bar.set_position(pos);
        let result = row
            .map_err(|e| vec![("(row)".to_owned(), e)])
            .and_then(|r| parse_row(&r, cfg));
        match result {
            Ok(c) => good.push(c),
            Err(errs) => {
                report.rejected_rows += 1;
                report
                    .errors
                    .extend(errs.into_iter().map(|(field, message)| RowError {
                        line,
                        field,
                        message,
                    }));
            }
        }
    })?;
    for chunk in good.chunks(1000) {
        store.upsert_contacts(chunk).await?;
        report.imported += chunk.len();
        bar.set_message(format!("{} imported", report.imported));
    }
    bar.finish_and_clear();
    Ok(report)
}
