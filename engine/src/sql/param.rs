//! A statement's parameters, typed: each has one PostgreSQL type when bound on our connections
//! (and when written out as a literal), and one JSON form for a caller's driver.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

/// A statement parameter. Each has one PostgreSQL type on the pool and one JSON form for a caller.
#[derive(Debug, Clone)]
pub enum Param {
    /// An int[] (added for the supervision pass's per-queue tallies).
    Int4s(Vec<i32>),
    Text(Option<String>),
    Int8(i64),
    Int4(i32),
    Bool(bool),
    Uuid(Option<Uuid>),
    Uuids(Vec<Uuid>),
    Texts(Option<Vec<String>>),
    Float8(f64),
    Timestamptz(Option<DateTime<Utc>>),
    /// A uuid[] that may be null (a filter left out).
    UuidsOrNull(Option<Vec<Uuid>>),
    /// Added for the instance registry and the background migrations.
    MaybeInt4(Option<i32>),
    /// A jsonb value; a caller's driver gets its text.
    Json(Option<Value>),
    /// An int[] (the job path's per-job attempts and counts).
    Int4Array(Vec<i32>),
    /// A text[] whose items may be null (the job path's per-job outputs).
    NullableTexts(Vec<Option<String>>),
    /// An int[] whose items may be null (the job path's per-job attempts, null for any attempt).
    NullableInt4s(Vec<Option<i32>>),
}

impl Param {
    pub fn text(s: impl Into<String>) -> Param {
        Param::Text(Some(s.into()))
    }

    pub(super) fn to_json(&self) -> Value {
        match self {
            Param::Int4s(list) => json!(list),
            Param::Text(s) => json!(s),
            Param::Int8(n) => json!(n),
            Param::Int4(n) => json!(n),
            Param::Bool(b) => json!(b),
            Param::Uuid(id) => json!(id),
            Param::Uuids(ids) => json!(ids),
            Param::Texts(list) => json!(list),
            Param::Float8(n) => json!(n),
            Param::Timestamptz(at) => json!(at.map(|at| at.to_rfc3339())),
            Param::UuidsOrNull(ids) => json!(ids),
            Param::MaybeInt4(n) => json!(n),
            Param::Json(value) => value
                .as_ref()
                .map_or(Value::Null, |v| Value::String(v.to_string())),
            Param::Int4Array(list) => json!(list),
            Param::NullableTexts(list) => json!(list),
            Param::NullableInt4s(list) => json!(list),
        }
    }
}
