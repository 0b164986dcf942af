//! The JavaScript value rules, written once. pg-boss reads its options with JavaScript's semantics
//! (truthiness, `Number.isInteger`, comparisons that are false for anything but a number, `String()`
//! of a value), and the engine has to accept and refuse exactly what pg-boss does. Everything that
//! reads a caller's option map goes through these.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// An options object as the caller passed it (JSON from the binding, or built by a Rust caller).
pub type Options = Map<String, Value>;

/// JavaScript truthiness; an absent value is `undefined`, so false.
pub fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// `Number(value)`, JavaScript's ToNumber: null is 0, a boolean 0 or 1, a string its numeric
/// reading (blank is 0, anything that is not a number NaN), an array the number of its `String()`,
/// an object NaN.
pub fn to_number(value: &Value) -> f64 {
    match value {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => string_to_number(s),
        Value::Array(_) => string_to_number(&to_js_string(value)),
        Value::Object(_) => f64::NAN,
    }
}

fn string_to_number(text: &str) -> f64 {
    let t = text.trim();
    if t.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(digits) = t.strip_prefix(prefix) {
            return u64::from_str_radix(digits, radix).map_or(f64::NAN, |n| n as f64);
        }
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "Infinity" {
        return if t.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let decimal = unsigned.bytes().any(|b| b.is_ascii_digit())
        && unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if decimal {
        t.parse().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

/// `Number.isInteger(value)`.
pub fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            n.is_i64()
                || n.is_u64()
                || n.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
        }
        _ => false,
    }
}

/// The value as an integer, when it is one (`2.0` is).
pub fn as_int(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0)
            .map(|f| f as i64)
    })
}

/// `value >= min` as JavaScript compares: false for anything that is not a number here.
pub fn at_least(value: &Value, min: f64) -> bool {
    value.as_f64().is_some_and(|v| v >= min)
}

/// An option that is there and not null (pg-boss treats `null` as left out for most options).
pub fn present<'a>(options: &'a Options, key: &str) -> Option<&'a Value> {
    options.get(key).filter(|v| !v.is_null())
}

/// A switch read as pg-boss reads its `key in config ? config[key] : default` switches: absent, the
/// default; given (`null` included), its truthiness.
pub fn switch_opt(options: &Options, key: &str, default: bool) -> bool {
    match options.get(key) {
        None => default,
        value => truthy(value),
    }
}

pub fn bool_opt(options: &Options, key: &str) -> Result<Option<bool>> {
    match present(options, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::invalid(format!("{key} must be a boolean"))),
    }
}

pub fn int_opt(options: &Options, key: &str) -> Result<Option<i64>> {
    match present(options, key) {
        None => Ok(None),
        Some(v) if is_integer(v) => Ok(as_int(v)),
        Some(_) => Err(Error::invalid(format!("{key} must be an integer"))),
    }
}

pub fn number_opt(options: &Options, key: &str) -> Result<Option<f64>> {
    match present(options, key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(Error::invalid(format!(
            "configuration assert: {key} must be a number"
        ))),
    }
}

pub fn string_opt(options: &Options, key: &str) -> Result<Option<String>> {
    match present(options, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::invalid(format!("{key} must be a string"))),
    }
}

/// A positive number of milliseconds, or `None` (pg-boss's test switches take any truthy number).
pub fn positive_ms(options: &Options, key: &str) -> Option<f64> {
    options
        .get(key)
        .and_then(Value::as_f64)
        .filter(|ms| *ms > 0.0)
}

/// `String(n)` for a number: JavaScript's shortest round-trip form (`1e+21`, `1e-7`, `0.1`).
pub fn number_to_string(n: f64) -> String {
    ryu_js::Buffer::new().format(n).to_string()
}

/// `String(value)`: what JavaScript writes when a value is used as text.
pub fn to_js_string(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n
            .as_f64()
            .map(number_to_string)
            .unwrap_or_else(|| n.to_string()),
        Value::String(s) => s.clone(),
        // Array.prototype.join writes holes and nulls as nothing.
        Value::Array(items) => items
            .iter()
            .map(|v| {
                if v.is_null() {
                    String::new()
                } else {
                    to_js_string(v)
                }
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_read_as_javascript_reads_them() {
        assert_eq!(to_number(&json!(null)), 0.0);
        assert_eq!(to_number(&json!(true)), 1.0);
        assert_eq!(to_number(&json!(" 12 ")), 12.0);
        assert_eq!(to_number(&json!("")), 0.0);
        assert_eq!(to_number(&json!("0x10")), 16.0);
        assert_eq!(to_number(&json!("-Infinity")), f64::NEG_INFINITY);
        assert_eq!(to_number(&json!([5])), 5.0);
        assert!(to_number(&json!("inf")).is_nan());
        assert!(to_number(&json!("2024-01-01")).is_nan());
        assert!(to_number(&json!({})).is_nan());
    }

    #[test]
    fn truthiness_is_javascripts() {
        for falsy in [
            None,
            Some(json!(null)),
            Some(json!(false)),
            Some(json!(0)),
            Some(json!("")),
        ] {
            assert!(!truthy(falsy.as_ref()), "{falsy:?}");
        }
        for truthy_value in [
            json!(true),
            json!(1),
            json!(-0.5),
            json!("0"),
            json!([]),
            json!({}),
        ] {
            assert!(truthy(Some(&truthy_value)), "{truthy_value}");
        }
    }

    #[test]
    fn integers_are_javascripts() {
        assert!(is_integer(&json!(3)));
        assert!(is_integer(&json!(3.0)));
        assert!(!is_integer(&json!(3.5)));
        assert!(!is_integer(&json!("3")));
        assert_eq!(as_int(&json!(4.0)), Some(4));
        assert!(at_least(&json!(2), 1.0));
        assert!(!at_least(&json!("2"), 1.0));
    }

    #[test]
    fn numbers_are_written_as_javascript_writes_them() {
        assert_eq!(number_to_string(5.0), "5");
        assert_eq!(number_to_string(0.1), "0.1");
        assert_eq!(number_to_string(1e21), "1e+21");
        assert_eq!(number_to_string(1e-7), "1e-7");
        assert_eq!(number_to_string(-2.5), "-2.5");
        assert_eq!(number_to_string(1.5), "1.5");
        assert_eq!(to_js_string(&json!([1, null, "a"])), "1,,a");
        assert_eq!(to_js_string(&json!({"a": 1})), "[object Object]");
    }
}
