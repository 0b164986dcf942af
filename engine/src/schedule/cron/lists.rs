//! A field's text read as cron-parser reads it: a list of items, each a value, a range or a
//! stepped range, with JavaScript's number conversions.

use crate::config::js::number_to_string as js_number;

use super::field_kind::{check_field_size, FieldKind, Value};
use super::{fail, Parsed};

/// JavaScript's `+text` for the texts a field can hold by now.
pub(super) fn js_plus(text: &str) -> f64 {
    if text.is_empty() {
        0.0
    } else if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

fn digits_only(text: &str) -> f64 {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

enum Item {
    One(Value),
    Many(Vec<f64>),
}

fn parse_range(kind: FieldKind, text: &str, step: f64) -> Parsed<Item> {
    let parts: Vec<&str> = text.split('-').collect();
    if parts.len() <= 1 {
        let n = js_plus(text);
        return Ok(Item::One(if n.is_nan() {
            Value::Token(text.to_string())
        } else {
            Value::Num(n)
        }));
    }
    if parts.len() > 2 {
        return fail(format!("Invalid range: {text}"));
    }
    let (min, max) = (digits_only(parts[0]), digits_only(parts[1]));
    let (lo, hi) = kind.bounds();
    if min.is_nan() || max.is_nan() || min < lo || max > hi {
        return fail(format!(
            "Constraint error, got range {}-{} expected range {}-{}",
            js_number(min),
            js_number(max),
            js_number(lo),
            js_number(hi)
        ));
    }
    if min > max {
        return fail(format!(
            "Invalid range: {0}-{1}, min({0}) > max({1})",
            js_number(min),
            js_number(max)
        ));
    }
    if step.is_nan() || step <= 0.0 {
        return fail(format!(
            "Constraint error, cannot repeat at every {} time.",
            js_number(step)
        ));
    }
    let mut values = Vec::new();
    // A weekday range ending on 7 (Sunday again) whose steps land on it also counts 0.
    if kind == FieldKind::DayOfWeek && max % 7.0 == 0.0 && (max - min) % step == 0.0 {
        values.push(0.0);
    }
    let mut v = min;
    while v <= max {
        if !values.contains(&v) {
            values.push(v);
        }
        v += step;
    }
    Ok(Item::Many(values))
}

fn parse_item(kind: FieldKind, atom: &str) -> Parsed<Item> {
    let parts: Vec<&str> = atom.split('/').collect();
    match parts.len() {
        1 => parse_range(kind, atom, 1.0),
        2 => {
            let start = if parts[0].contains('-') {
                parts[0].to_string()
            } else {
                format!("{}-{}", parts[0], js_number(kind.bounds().1))
            };
            parse_range(kind, &start, js_plus(parts[1]))
        }
        _ => fail(format!("Invalid repeat: {atom}")),
    }
}

pub(super) fn parse_list(kind: FieldKind, value: &str) -> Parsed<Vec<Value>> {
    let (lo, hi) = kind.bounds();
    let mut stack: Vec<Value> = Vec::new();
    for atom in value.split(',') {
        check_field_size(kind, stack.len())?;
        if atom.is_empty() {
            return fail("Invalid list value format");
        }
        match parse_item(kind, atom)? {
            Item::Many(values) => stack.extend(values.into_iter().map(Value::Num)),
            Item::One(value) => {
                let shown = value.show();
                if kind.allows_last() && shown.contains('L') {
                    stack.push(value);
                    continue;
                }
                let n = match &value {
                    Value::Num(n) => *n,
                    Value::Token(t) => parse_int_prefix(t),
                };
                if n.is_nan() || n < lo || n > hi {
                    return fail(format!(
                        "Constraint error, got value {shown} expected range {}-{}",
                        js_number(lo),
                        js_number(hi)
                    ));
                }
                stack.push(if kind == FieldKind::DayOfWeek {
                    Value::Num(n % 7.0)
                } else {
                    value
                });
            }
        }
    }
    Ok(stack)
}

/// `parseInt(text, 10)`: the leading digits, or NaN.
pub(super) fn parse_int_prefix(text: &str) -> f64 {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        f64::NAN
    } else {
        digits.parse().unwrap_or(f64::NAN)
    }
}
