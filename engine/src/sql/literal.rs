//! Statements written out whole, for the simple query protocol: every `$n` placeholder replaced by
//! its parameter as a typed literal.
//!
//! A pooler in transaction mode (PgBouncer's `pool_mode = transaction`) may hand each message
//! sequence a client ends with Sync to another server connection. A named prepared statement then
//! meets a server where it is unknown or where another client's statement already holds its name,
//! and even an unnamed one is parsed on one server and bound on another (sqlx parses and describes
//! under one Sync, then binds and executes under a second). A simple query is one message
//! answered by one server, so in [`StatementMode::Unnamed`](super::exec::StatementMode) every
//! statement goes that way, its parameters written into its text here.
//!
//! Each literal carries the type the parameter has when it is bound (`text`, `int8`, `uuid[]`,
//! `jsonb`, ...), so the server reads the statement exactly as it reads the prepared one, and is
//! parenthesised, so it stands wherever a placeholder can (`$1::int`, `$2[1]`, `-$3`). Strings are
//! written as escape strings (`E'...'`, backslashes and quotes doubled), which read the same
//! whatever `standard_conforming_strings` says. Text holding a NUL character cannot be sent, and
//! is refused as PostgreSQL refuses it in a bound parameter.

use chrono::{DateTime, Datelike, Timelike, Utc};
use uuid::Uuid;

use super::param::Param;

/// SQLSTATE `character_not_in_repertoire`, which PostgreSQL raises for a NUL in text.
pub const NUL_SQL_STATE: &str = "22021";

/// Why a statement could not be written out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralError {
    pub message: String,
    pub sql_state: &'static str,
}

impl LiteralError {
    fn nul() -> LiteralError {
        LiteralError {
            message: "invalid byte sequence for encoding \"UTF8\": 0x00".to_string(),
            sql_state: NUL_SQL_STATE,
        }
    }
}

/// `sql` with every placeholder `$n` outside string constants, quoted identifiers, comments and
/// dollar-quoted bodies replaced by `params[n - 1]` as a typed literal. A placeholder beyond the
/// parameters is left as it is (the server then reports it, as it would for the prepared
/// statement); parameters the text does not name are not written.
pub fn render(sql: &str, params: &[Param]) -> Result<String, LiteralError> {
    substitute(sql, params, write_param)
}

/// `sql` with every placeholder `$n` replaced by `values[n - 1]` as an untyped string constant
/// (or `NULL`), which the server types from where it stands, as it types a parameter a driver
/// sends without a type (node-postgres sends its values that way). For statements a caller
/// writes, whose parameters have no type of ours.
pub fn render_untyped(sql: &str, values: &[Option<String>]) -> Result<String, LiteralError> {
    substitute(sql, values, |out, value| match value {
        Some(text) => write_text(out, text),
        None => {
            out.push_str("NULL");
            Ok(())
        }
    })
}

fn substitute<P>(
    sql: &str,
    params: &[P],
    write_param: impl Fn(&mut String, &P) -> Result<(), LiteralError>,
) -> Result<String, LiteralError> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16 * params.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => {
                let escapes = i > 0
                    && (bytes[i - 1] == b'E' || bytes[i - 1] == b'e')
                    && (i < 2 || !is_ident_byte(bytes[i - 2]));
                i = skip_string(bytes, i + 1, escapes);
            }
            b'"' => i = skip_past(bytes, i + 1, b"\""),
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = skip_past(bytes, i + 2, b"\n"),
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i + 2),
            b'$' if i > 0 && is_ident_byte(bytes[i - 1]) => i += 1,
            b'$' => {
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if digits > 0 {
                    let n: Option<usize> = sql[i + 1..i + 1 + digits].parse().ok();
                    if let Some(param) =
                        n.and_then(|n| n.checked_sub(1)).and_then(|n| params.get(n))
                    {
                        out.push_str(&sql[copied..i]);
                        out.push('(');
                        write_param(&mut out, param)?;
                        out.push(')');
                        copied = i + 1 + digits;
                    }
                    i += 1 + digits;
                } else {
                    i = skip_dollar_quoted(bytes, i);
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    Ok(out)
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Past the end of a string constant whose text starts at `i`.
fn skip_string(bytes: &[u8], mut i: usize, escapes: bool) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if escapes => i += 2,
            b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Past the first `end` at or after `i`.
fn skip_past(bytes: &[u8], i: usize, end: &[u8]) -> usize {
    bytes[i.min(bytes.len())..]
        .windows(end.len())
        .position(|w| w == end)
        .map_or(bytes.len(), |at| i + at + end.len())
}

/// Past the end of a (possibly nested) block comment whose text starts at `i`.
fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// At a `$` that starts no placeholder: past a dollar-quoted body (`$$...$$`, `$tag$...$tag$`),
/// or just past the `$` when it opens none.
fn skip_dollar_quoted(bytes: &[u8], i: usize) -> usize {
    let tag_len = bytes[i + 1..]
        .iter()
        .take_while(|b| is_ident_byte(**b))
        .count();
    let close = i + 1 + tag_len;
    if bytes.get(close) != Some(&b'$') {
        return i + 1;
    }
    let tag = &bytes[i..=close];
    skip_past(bytes, close + 1, tag)
}

fn write_param(out: &mut String, param: &Param) -> Result<(), LiteralError> {
    match param {
        Param::Text(s) => write_nullable(out, s.as_deref(), "text", write_text)?,
        Param::Int8(n) => write_scalar(out, n, "int8"),
        Param::Int4(n) => write_scalar(out, n, "int4"),
        Param::MaybeInt4(n) => match n {
            Some(n) => write_scalar(out, n, "int4"),
            None => out.push_str("NULL::int4"),
        },
        Param::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Param::Float8(n) => write_float(out, *n),
        Param::Uuid(id) => match id {
            Some(id) => write_uuid(out, id),
            None => out.push_str("NULL::uuid"),
        },
        Param::Uuids(ids) => write_uuids(out, ids),
        Param::UuidsOrNull(ids) => match ids {
            Some(ids) => write_uuids(out, ids),
            None => out.push_str("NULL::uuid[]"),
        },
        Param::Int4s(list) | Param::Int4Array(list) => write_ints(out, list),
        Param::NullableInt4s(list) => write_nullable_ints(out, list),
        Param::Texts(list) => match list {
            Some(list) => write_texts(out, list.iter().map(|s| Some(s.as_str())))?,
            None => out.push_str("NULL::text[]"),
        },
        Param::NullableTexts(list) => write_texts(out, list.iter().map(Option::as_deref))?,
        Param::Timestamptz(at) => match at {
            Some(at) => write_timestamp(out, at),
            None => out.push_str("NULL::timestamptz"),
        },
        Param::Json(value) => match value {
            Some(value) => {
                write_text(out, &value.to_string())?;
                out.push_str("::jsonb");
            }
            None => out.push_str("NULL::jsonb"),
        },
    }
    Ok(())
}

fn write_nullable(
    out: &mut String,
    value: Option<&str>,
    ty: &str,
    write: fn(&mut String, &str) -> Result<(), LiteralError>,
) -> Result<(), LiteralError> {
    match value {
        Some(value) => write(out, value)?,
        None => out.push_str("NULL"),
    }
    out.push_str("::");
    out.push_str(ty);
    Ok(())
}

/// An escape string constant: `E'...'` with backslashes and quotes doubled.
fn write_text(out: &mut String, text: &str) -> Result<(), LiteralError> {
    if text.contains('\0') {
        return Err(LiteralError::nul());
    }
    out.reserve(text.len() + 3);
    out.push_str("E'");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("''"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(())
}

/// A number, quoted so that a sign never meets an operator (`'-5'::int8`).
fn write_scalar(out: &mut String, n: &impl std::fmt::Display, ty: &str) {
    out.push_str(&format!("'{n}'::{ty}"));
}

fn write_float(out: &mut String, n: f64) {
    let text = if n.is_nan() {
        "NaN".to_string()
    } else if n.is_infinite() {
        if n > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        // Rust's shortest text that reads back as the same double, as float8 input reads it.
        format!("{n:?}")
    };
    out.push_str(&format!("'{text}'::float8"));
}

fn write_uuid(out: &mut String, id: &Uuid) {
    out.push_str(&format!("'{id}'::uuid"));
}

fn write_uuids(out: &mut String, ids: &[Uuid]) {
    let items: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    out.push_str(&format!("'{{{}}}'::uuid[]", items.join(",")));
}

fn write_ints(out: &mut String, list: &[i32]) {
    let items: Vec<String> = list.iter().map(i32::to_string).collect();
    out.push_str(&format!("'{{{}}}'::int4[]", items.join(",")));
}

fn write_nullable_ints(out: &mut String, list: &[Option<i32>]) {
    let items: Vec<String> = list
        .iter()
        .map(|n| n.map_or_else(|| "NULL".to_string(), |n| n.to_string()))
        .collect();
    out.push_str(&format!("'{{{}}}'::int4[]", items.join(",")));
}

/// A text[] built with `ARRAY[...]`, each item a string constant or NULL, so no array-literal
/// quoting is involved.
fn write_texts<'a>(
    out: &mut String,
    items: impl ExactSizeIterator<Item = Option<&'a str>>,
) -> Result<(), LiteralError> {
    if items.len() == 0 {
        out.push_str("'{}'::text[]");
        return Ok(());
    }
    out.push_str("ARRAY[");
    for (n, item) in items.enumerate() {
        if n > 0 {
            out.push(',');
        }
        match item {
            Some(text) => write_text(out, text)?,
            None => out.push_str("NULL"),
        }
    }
    out.push_str("]::text[]");
    Ok(())
}

/// ISO 8601 in UTC to the microsecond (a bound timestamptz carries microseconds; finer digits are
/// dropped as binding drops them); years before 1 are written with `BC`.
fn write_timestamp(out: &mut String, at: &DateTime<Utc>) {
    let year = at.year();
    let (shown, era) = if year >= 1 {
        (year, "")
    } else {
        (1 - year, " BC")
    };
    let micros = (at.nanosecond() / 1000).min(999_999);
    out.push_str(&format!(
        "'{shown:04}-{:02}-{:02} {:02}:{:02}:{:02}.{micros:06}+00{era}'::timestamptz",
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untyped_values_are_string_constants_or_null() {
        let text = render_untyped(
            "SELECT $1, '$2', $2::int -- $1\n, x$1",
            &[Some("it's \\ here".into()), None],
        )
        .unwrap();
        assert_eq!(
            text,
            "SELECT (E'it''s \\\\ here'), '$2', (NULL)::int -- $1\n, x$1"
        );
        assert!(render_untyped("SELECT $1", &[Some("a\0b".into())]).is_err());
    }
    use serde_json::json;

    fn one(param: Param) -> String {
        render("SELECT $1", &[param]).unwrap()
    }

    #[test]
    fn text_is_an_escape_string_with_quotes_and_backslashes_doubled() {
        assert_eq!(one(Param::text("it's")), "SELECT (E'it''s'::text)");
        assert_eq!(one(Param::text(r"a\b\'")), r"SELECT (E'a\\b\\'''::text)");
        assert_eq!(one(Param::text("ünï ☃ 😀")), "SELECT (E'ünï ☃ 😀'::text)");
        assert_eq!(one(Param::Text(None)), "SELECT (NULL::text)");
    }

    #[test]
    fn nul_is_refused_as_postgres_refuses_it() {
        let err = render("SELECT $1", &[Param::text("a\0b")]).unwrap_err();
        assert_eq!(err.sql_state, "22021");
        assert!(render("SELECT $1", &[Param::Texts(Some(vec!["\0".into()]))]).is_err());
        // A parameter the text does not name is not written, so it cannot fail.
        assert!(render("SELECT $2", &[Param::text("\0"), Param::Int4(1)]).is_ok());
    }

    #[test]
    fn numbers_are_quoted_so_signs_stay_theirs() {
        assert_eq!(
            one(Param::Int8(i64::MIN)),
            "SELECT ('-9223372036854775808'::int8)"
        );
        assert_eq!(one(Param::Int4(7)), "SELECT ('7'::int4)");
        assert_eq!(one(Param::MaybeInt4(None)), "SELECT (NULL::int4)");
        assert_eq!(one(Param::Float8(0.1)), "SELECT ('0.1'::float8)");
        assert_eq!(one(Param::Float8(1e300)), "SELECT ('1e300'::float8)");
        assert_eq!(
            one(Param::Float8(f64::NEG_INFINITY)),
            "SELECT ('-Infinity'::float8)"
        );
        assert_eq!(one(Param::Bool(false)), "SELECT (false)");
    }

    #[test]
    fn arrays_of_text_uuid_and_int() {
        let a = Uuid::parse_str("6f0b1a52-3f55-4f3c-9c44-3a4de37d3f10").unwrap();
        assert_eq!(
            one(Param::Uuids(vec![a, a])),
            format!("SELECT ('{{{a},{a}}}'::uuid[])")
        );
        assert_eq!(one(Param::Uuids(vec![])), "SELECT ('{}'::uuid[])");
        assert_eq!(one(Param::UuidsOrNull(None)), "SELECT (NULL::uuid[])");
        assert_eq!(one(Param::Int4s(vec![1, -2])), "SELECT ('{1,-2}'::int4[])");
        assert_eq!(
            one(Param::NullableInt4s(vec![Some(3), None])),
            "SELECT ('{3,NULL}'::int4[])"
        );
        assert_eq!(
            one(Param::Texts(Some(vec!["a,b".into(), "{\"x\"}".into()]))),
            "SELECT (ARRAY[E'a,b',E'{\"x\"}']::text[])"
        );
        assert_eq!(one(Param::Texts(Some(vec![]))), "SELECT ('{}'::text[])");
        assert_eq!(one(Param::Texts(None)), "SELECT (NULL::text[])");
        assert_eq!(
            one(Param::NullableTexts(vec![None, Some("o'k".into())])),
            "SELECT (ARRAY[NULL,E'o''k']::text[])"
        );
    }

    #[test]
    fn json_and_timestamps() {
        assert_eq!(
            one(Param::Json(Some(json!({"a": "it's \\ \u{1}"})))),
            r#"SELECT (E'{"a":"it''s \\\\ \\u0001"}'::jsonb)"#
        );
        assert_eq!(one(Param::Json(None)), "SELECT (NULL::jsonb)");
        let at = DateTime::parse_from_rfc3339("2026-03-04T05:06:07.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            one(Param::Timestamptz(Some(at))),
            "SELECT ('2026-03-04 05:06:07.123456+00'::timestamptz)"
        );
        let far = chrono::NaiveDate::from_ymd_opt(10000, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        assert_eq!(
            one(Param::Timestamptz(Some(far))),
            "SELECT ('10000-01-01 00:00:00.000000+00'::timestamptz)"
        );
        let bc = chrono::NaiveDate::from_ymd_opt(0, 12, 31)
            .unwrap()
            .and_hms_opt(23, 59, 59)
            .unwrap()
            .and_utc();
        assert_eq!(
            one(Param::Timestamptz(Some(bc))),
            "SELECT ('0001-12-31 23:59:59.000000+00 BC'::timestamptz)"
        );
        assert_eq!(one(Param::Timestamptz(None)), "SELECT (NULL::timestamptz)");
    }

    #[test]
    fn placeholders_only_outside_strings_identifiers_comments_and_bodies() {
        let params = [Param::Int4(1), Param::Int4(2)];
        let sql = concat!(
            "SELECT $1, '$1', E'\\'$1', 'a''$1', \"$1\", x$1, $2[1] -- $1\n",
            "/* $1 /* $2 */ $1 */ $$ $1 $$, $f$ $2 $f$, $3"
        );
        assert_eq!(
            render(sql, &params).unwrap(),
            concat!(
                "SELECT ('1'::int4), '$1', E'\\'$1', 'a''$1', \"$1\", x$1, ('2'::int4)[1] -- $1\n",
                "/* $1 /* $2 */ $1 */ $$ $1 $$, $f$ $2 $f$, $3"
            )
        );
        assert_eq!(render("SELECT $10", &params).unwrap(), "SELECT $10");
        assert_eq!(
            render("SELECT $1::int, $1", &params).unwrap(),
            "SELECT ('1'::int4)::int, ('1'::int4)"
        );
    }
}
