//! The jobs of one `insert()`. As in pg-boss, insert() is the raw path: it checks only that ids
//! are not repeated and that groups are well formed; every other option goes to PostgreSQL as
//! given, and is read here as its cast reads it. A job's `data` is never read: it keeps the JSON
//! text it arrived in.

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::job::{JobData, JobOptions, NewJob};
use super::send::{pin_zoneless_date_time, validate_group};
use crate::config::js::Options;
use crate::error::{Error, ErrorCode, Result};

/// Reads `insert()`'s list of jobs from values.
pub fn jobs_from_json(jobs: &[Value]) -> Result<Vec<NewJob>> {
    let objects = jobs
        .iter()
        .map(|job| job.as_object().ok_or_else(not_an_object))
        .collect::<Result<Vec<&Options>>>()?;
    check_jobs(objects.iter().copied())?;
    objects
        .into_iter()
        .map(|job| {
            let data = job.get("data").map_or_else(JobData::null, JobData::from);
            read_job(data, job)
        })
        .collect()
}

/// Reads `insert()`'s list of jobs from its JSON text (an array). Each job's options are read as
/// values; its `data` is only delimited, and kept as the text it was written in.
pub fn jobs_from_json_text(text: &str) -> Result<Vec<NewJob>> {
    let jobs: Vec<TextJob> = serde_json::from_str(text)?;
    let objects = jobs
        .into_iter()
        .map(|job| match job {
            TextJob::Object { data, options } => Ok((data, options)),
            TextJob::Other => Err(not_an_object()),
        })
        .collect::<Result<Vec<_>>>()?;
    check_jobs(objects.iter().map(|(_, options)| options))?;
    objects
        .into_iter()
        .map(|(data, options)| read_job(data, &options))
        .collect()
}

fn not_an_object() -> Error {
    Error::invalid("each job must be an object")
}

/// pg-boss's checks of the whole list, in its order, made before any option is read: no id twice,
/// and every group well formed.
fn check_jobs<'a>(jobs: impl Iterator<Item = &'a Options>) -> Result<()> {
    let mut seen = HashSet::new();
    for job in jobs {
        if let Some(id) = job.get("id").filter(|v| !v.is_null()) {
            let shown = id
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| id.to_string());
            if !seen.insert(shown.clone()) {
                // A plain Error in pg-boss, not an assertion.
                return Err(Error::new(
                    ErrorCode::Conflict,
                    format!("duplicate job id in insert batch: {shown}"),
                ));
            }
        }
        validate_group(job)?;
    }
    Ok(())
}

/// Reads one job's options as PostgreSQL's casts would.
fn read_job(data: JobData, job: &Options) -> Result<NewJob> {
    // A date time string is pinned to UTC as send() pins it; a number is seconds, whatever its
    // sign; anything else is for PostgreSQL to read.
    let start_after = match job.get("startAfter") {
        Some(Value::String(s)) => Some(pin_zoneless_date_time(s)),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => super::unchecked::text(other),
        None => None,
    };
    Ok(NewJob {
        data,
        options: JobOptions::read(job, start_after)?,
    })
}

/// One item of the list as written: an object's `data` as raw text and its other keys as values,
/// or anything else (which the reading refuses).
enum TextJob {
    Object { data: JobData, options: Options },
    Other,
}

impl<'de> Deserialize<'de> for TextJob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(TextJobVisitor)
    }
}

struct TextJobVisitor;

impl<'de> Visitor<'de> for TextJobVisitor {
    type Value = TextJob;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a job")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<TextJob, A::Error> {
        let mut data = None;
        let mut options = Options::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "data" {
                let raw: Box<RawValue> = map.next_value()?;
                data = Some(JobData::from_json_text(Box::<str>::from(raw).into_string()));
            } else {
                options.insert(key, map.next_value()?);
            }
        }
        Ok(TextJob::Object {
            data: data.unwrap_or_else(JobData::null),
            options,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<TextJob, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(TextJob::Other)
    }

    fn visit_unit<E>(self) -> std::result::Result<TextJob, E> {
        Ok(TextJob::Other)
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<TextJob, E> {
        Ok(TextJob::Other)
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<TextJob, E> {
        Ok(TextJob::Other)
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<TextJob, E> {
        Ok(TextJob::Other)
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<TextJob, E> {
        Ok(TextJob::Other)
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<TextJob, E> {
        Ok(TextJob::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(jobs: Value) -> String {
        jobs_from_json(jobs.as_array().unwrap())
            .unwrap_err()
            .message
    }

    #[test]
    fn only_ids_and_groups_are_checked() {
        let id = "11111111-1111-4111-8111-111111111111";
        assert_eq!(
            message(json!([{"id": id}, {"id": id}])),
            format!("duplicate job id in insert batch: {id}")
        );
        assert_eq!(
            message(json!([{"group": {"id": ""}}])),
            "group.id must be a non-empty string"
        );
        assert_eq!(message(json!([1])), "each job must be an object");
        let jobs = jobs_from_json(
            json!([{"retryLimit": -1, "startAfter": -5, "data": {"n": 1}}, {}])
                .as_array()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(jobs[0].options.retry_limit, Some(-1));
        assert_eq!(jobs[0].options.start_after.as_deref(), Some("-5"));
        assert_eq!(jobs[0].data.as_json(), r#"{"n":1}"#);
        assert_eq!(jobs[1].data, JobData::null());
    }

    #[test]
    fn data_keeps_the_text_it_was_written_in() {
        let text = r#"[{"data": {"b": 1.50, "a": [ "\u00e9" ]}, "priority": 2}, {"id": null}]"#;
        let jobs = jobs_from_json_text(text).unwrap();
        assert_eq!(jobs[0].data.as_json(), r#"{"b": 1.50, "a": [ "\u00e9" ]}"#);
        assert_eq!(jobs[0].options.priority, Some(2));
        assert_eq!(jobs[1].data, JobData::null());
        let refused = |text: &str| jobs_from_json_text(text).unwrap_err().message;
        assert_eq!(refused("[[1]]"), "each job must be an object");
        assert_eq!(refused("[3]"), "each job must be an object");
        let id = "11111111-1111-4111-8111-111111111111";
        assert_eq!(
            refused(&format!(
                r#"[{{"id": "{id}", "data": 1}}, {{"data": 2, "id": "{id}"}}]"#
            )),
            format!("duplicate job id in insert batch: {id}")
        );
        // Checked over the whole list before any option is read, as pg-boss checks it before
        // PostgreSQL reads the options.
        assert_eq!(
            refused(&format!(
                r#"[{{"priority": "x"}}, {{"id": "{id}"}}, {{"id": "{id}"}}]"#
            )),
            format!("duplicate job id in insert batch: {id}")
        );
    }
}
