//! Options pg-boss hands to PostgreSQL without checking them (every option of `insert()`, and the
//! few `send()` and `update()` leave alone): its statement reads each one as text and casts it to
//! its column's type. They are read here by the same rules, so they can travel typed; a value the
//! cast would refuse is refused here, in PostgreSQL's words and with its SQLSTATE.

use serde_json::Value;

use crate::error::{Error, ErrorCode, Result};

/// The text PostgreSQL reads for a JSON value of a recordset: a string's content, or any other
/// value as its JSON text. Null is no value.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// An `int` column's reading of a value (PostgreSQL's int4 input).
pub fn int(value: &Value) -> Result<Option<i32>> {
    if let Some(n) = value.as_i64() {
        return i32::try_from(n)
            .map(Some)
            .map_err(|_| out_of_range(&n.to_string()));
    }
    text(value).map(|t| parse_int(&t)).transpose()
}

/// A `bool` column's reading of a value (PostgreSQL's boolean input).
pub fn boolean(value: &Value) -> Result<Option<bool>> {
    match value {
        Value::Bool(b) => Ok(Some(*b)),
        other => text(other).map(|t| parse_bool(&t)).transpose(),
    }
}

/// Optional blanks and sign around decimal digits.
fn parse_int(input: &str) -> Result<i32> {
    let trimmed = input.trim_matches(is_blank);
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("integer", input));
    }
    trimmed.parse().map_err(|_| out_of_range(input))
}

/// Any prefix of true, false, yes or no; on, of(f); 1 or 0 — in any case, between blanks.
fn parse_bool(input: &str) -> Result<bool> {
    let word = input.trim_matches(is_blank).to_ascii_lowercase();
    let prefix_of = |full: &str, shortest: usize| word.len() >= shortest && full.starts_with(&word);
    if prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || word == "1" {
        Ok(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || word == "0" {
        Ok(false)
    } else {
        Err(invalid("boolean", input))
    }
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

fn invalid(type_name: &str, input: &str) -> Error {
    Error {
        code: ErrorCode::Database,
        message: format!("invalid input syntax for type {type_name}: \"{input}\""),
        sql_state: Some("22P02".into()),
    }
}

fn out_of_range(input: &str) -> Error {
    Error {
        code: ErrorCode::Database,
        message: format!("value \"{input}\" is out of range for type integer"),
        sql_state: Some("22003".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(result: Result<impl std::fmt::Debug>) -> (String, String) {
        let err = result.unwrap_err();
        (err.message, err.sql_state.unwrap_or_default())
    }

    #[test]
    fn integers_are_read_as_postgres_reads_them() {
        assert_eq!(int(&json!(5)).unwrap(), Some(5));
        assert_eq!(int(&json!(" -7 ")).unwrap(), Some(-7));
        assert_eq!(int(&json!("+3")).unwrap(), Some(3));
        assert_eq!(int(&json!(null)).unwrap(), None);
        assert_eq!(
            refused(int(&json!(1.5))),
            (
                "invalid input syntax for type integer: \"1.5\"".into(),
                "22P02".into()
            )
        );
        assert_eq!(
            refused(int(&json!("x"))).0,
            "invalid input syntax for type integer: \"x\""
        );
        assert_eq!(
            refused(int(&json!(10_000_000_000i64))),
            (
                "value \"10000000000\" is out of range for type integer".into(),
                "22003".into()
            )
        );
        assert_eq!(
            refused(int(&json!({"a": 1}))).0,
            "invalid input syntax for type integer: \"{\"a\":1}\""
        );
    }

    #[test]
    fn booleans_are_read_as_postgres_reads_them() {
        for yes in [
            json!(true),
            json!("t"),
            json!("TRUE"),
            json!(" yes"),
            json!("on"),
            json!(1),
        ] {
            assert_eq!(boolean(&yes).unwrap(), Some(true), "{yes}");
        }
        for no in [
            json!(false),
            json!("f"),
            json!("No"),
            json!("of"),
            json!("0"),
        ] {
            assert_eq!(boolean(&no).unwrap(), Some(false), "{no}");
        }
        assert_eq!(
            refused(boolean(&json!("o"))).0,
            "invalid input syntax for type boolean: \"o\""
        );
        assert!(boolean(&json!(2)).is_err());
        assert_eq!(boolean(&json!(null)).unwrap(), None);
    }

    #[test]
    fn text_is_a_strings_content_or_the_json_of_anything_else() {
        assert_eq!(text(&json!("a")).as_deref(), Some("a"));
        assert_eq!(text(&json!(5)).as_deref(), Some("5"));
        assert_eq!(text(&json!(null)), None);
    }
}
