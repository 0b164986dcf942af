//! One field of an expression: what it may hold, how it is read into values, and the checks
//! cron-parser runs on the values.

use crate::config::js::number_to_string as js_number;

use super::aliases::replace_aliases;
use super::field_kind::{FieldKind, Value};
use super::hashes::{expand_hashes, hashed_range_len};
use super::lists::parse_list;
use super::{fail, Parsed};

pub(super) fn parse_field(kind: FieldKind, raw: &str) -> Parsed<Vec<Value>> {
    let mut value = raw.to_string();
    if matches!(kind, FieldKind::Month | FieldKind::DayOfWeek) {
        value = replace_aliases(&value, kind)?;
    }
    if !valid_chars(&value, kind) {
        return fail(format!("Invalid characters, got value: {value}"));
    }
    let value = expand_wildcards(&value, kind)?;
    let value = expand_hashes(&value, kind)?;
    parse_list(kind, &value)
}

/// The characters a field may hold: digits and `?,*/-H`, `H(a-b)`, plus `L` in the day fields and
/// `#` in the day of week.
fn valid_chars(value: &str, kind: FieldKind) -> bool {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'H' && bytes.get(i + 1) == Some(&b'(') {
            if let Some(len) = hashed_range_len(&bytes[i..]) {
                i += len;
                continue;
            }
        }
        let ok = b.is_ascii_digit()
            || matches!(b, b'?' | b',' | b'*' | b'H' | b'/' | b'-')
            || (b == b'L' && kind.allows_last())
            || (b == b'#' && kind == FieldKind::DayOfWeek);
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

/// `*` and `?` standing for a whole list item (optionally stepped) become the field's full range.
fn expand_wildcards(value: &str, kind: FieldKind) -> Parsed<String> {
    let (min, max) = kind.bounds();
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    for (i, ch) in chars.iter().enumerate() {
        let starts_item = i == 0 || chars[i - 1] == ',';
        let ends_item = matches!(chars.get(i + 1), None | Some('/') | Some(','));
        if matches!(ch, '*' | '?') && starts_item && ends_item {
            out.push_str(&format!("{}-{}", js_number(min), js_number(max)));
        } else {
            out.push(*ch);
        }
    }
    if out.contains(['*', '?']) {
        return fail(format!("Invalid wildcard, got value: {value}"));
    }
    Ok(out)
}

/// Sorts as cron-parser does (numbers first, ascending, then tokens) and checks the values.
pub(super) fn checked(kind: FieldKind, mut values: Vec<Value>) -> Parsed<Vec<Value>> {
    if values.is_empty() {
        return fail(format!(
            "{} Validation error, values contains no values",
            kind.class_name()
        ));
    }
    values.sort_by(|a, b| match (a, b) {
        (Value::Num(x), Value::Num(y)) => x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal),
        (Value::Num(_), Value::Token(_)) => std::cmp::Ordering::Less,
        (Value::Token(_), Value::Num(_)) => std::cmp::Ordering::Greater,
        (Value::Token(x), Value::Token(y)) => x.cmp(y),
    });
    let (lo, hi) = kind.bounds();
    for value in &values {
        let ok = match value {
            Value::Num(n) => *n >= lo && *n <= hi,
            Value::Token(t) => match kind {
                FieldKind::DayOfMonth => t == "L",
                FieldKind::DayOfWeek => {
                    let b = t.as_bytes();
                    (b.len() == 1 && b[0] == b'L')
                        || (b.len() == 2 && (b'0'..=b'7').contains(&b[0]) && b[1] == b'L')
                }
                _ => false,
            },
        };
        if !ok {
            let chars = if kind.allows_last() {
                " or chars L"
            } else {
                ""
            };
            return fail(format!(
                "{} Validation error, got value {} expected range {}-{}{chars}",
                kind.class_name(),
                value.show(),
                js_number(lo),
                js_number(hi)
            ));
        }
    }
    for (i, value) in values.iter().enumerate() {
        if values.iter().position(|v| v == value) != Some(i) {
            return fail(format!(
                "{} Validation error, duplicate values found: {}",
                kind.class_name(),
                value.show()
            ));
        }
    }
    Ok(values)
}

pub(super) fn numbers(values: &[Value]) -> Vec<i64> {
    values
        .iter()
        .filter_map(|v| {
            if let Value::Num(n) = v {
                Some(*n as i64)
            } else {
                None
            }
        })
        .collect()
}
