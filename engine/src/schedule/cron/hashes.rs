//! `H`: values cron-parser picks at random on every parse, inside a field's range or a given one.

use crate::config::js::number_to_string as js_number;

use super::field_kind::{check_field_size, FieldKind};
use super::{fail, Parsed};

/// The length of `H(digits-digits)` at the start of `bytes`.
pub(super) fn hashed_range_len(bytes: &[u8]) -> Option<usize> {
    let mut i = 2;
    let start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == start || bytes.get(i) != Some(&b'-') {
        return None;
    }
    i += 1;
    let start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    (i > start && bytes.get(i) == Some(&b')')).then_some(i + 1)
}

/// A random number in [0, 1): cron-parser seeds `H` randomly on every parse, so hashed values
/// differ between parses here as they do in pg-boss.
fn random_unit() -> f64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut n = 0u64;
    for b in &bytes[..7] {
        n = (n << 8) | u64::from(*b);
    }
    (n >> 3) as f64 / (1u64 << 53) as f64
}

fn hashed_value(random: f64, min: f64, max: f64) -> f64 {
    (random * (max - min + 1.0)).floor() + min
}

fn hashed_range(min: f64, max: f64, kind: FieldKind) -> Parsed<(f64, f64)> {
    if min > max {
        return fail(format!(
            "Invalid range: {}-{}, min > max",
            js_number(min),
            js_number(max)
        ));
    }
    let (lo, hi) = kind.bounds();
    let range = (min.max(lo), max.min(hi));
    if range.0 > range.1 {
        return fail(format!(
            "Invalid range: {}-{}, no usable value in the {} field",
            js_number(min),
            js_number(max),
            kind.field_name()
        ));
    }
    Ok(range)
}

fn hashed_step(random: f64, min: f64, max: f64, step: f64) -> String {
    let offset = (random * step).floor();
    let mut values = Vec::new();
    let mut i = (min / step).floor() * step + offset;
    while i <= max {
        if i >= min {
            values.push(js_number(i));
        }
        i += step;
    }
    if values.is_empty() {
        return js_number(hashed_value(random, min, max));
    }
    values.join(",")
}

/// Replaces `H`, `H(a-b)`, `H/n` and `H(a-b)/n` with the values they hash to.
pub(super) fn expand_hashes(value: &str, kind: FieldKind) -> Parsed<String> {
    let random = random_unit();
    let bytes = value.as_bytes();
    let mut out = String::new();
    let mut count = 0usize;
    let mut i = 0;
    let digits = |from: usize| {
        let mut end = from;
        while bytes.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        (end > from).then(|| (value[from..end].parse::<f64>().unwrap_or(f64::NAN), end))
    };
    while i < bytes.len() {
        if bytes[i] != b'H' {
            out.push(bytes[i] as char);
            i += 1;
            continue;
        }
        let mut j = i + 1;
        let mut range = None;
        if bytes.get(j) == Some(&b'(') {
            if let Some(len) = hashed_range_len(&bytes[i..]) {
                let (min, after_min) = digits(j + 1).expect("checked by hashed_range_len");
                let (max, _) = digits(after_min + 1).expect("checked by hashed_range_len");
                range = Some((min, max));
                j = i + len;
            }
        }
        let mut step = None;
        if bytes.get(j) == Some(&b'/') {
            if let Some((n, end)) = digits(j + 1) {
                step = Some(n);
                j = end;
            }
        }
        let replaced = hashed_item(random, kind, range, step, &mut count)?;
        out.push_str(&replaced);
        i = j;
    }
    Ok(out)
}

/// What one `H` item stands for: `range` and `step` as written after it, if at all. `count` adds
/// up the values a field's stepped items produce, which cron-parser caps.
fn hashed_item(
    random: f64,
    kind: FieldKind,
    range: Option<(f64, f64)>,
    step: Option<f64>,
    count: &mut usize,
) -> Parsed<String> {
    let (lo, hi) = kind.bounds();
    Ok(match (range, step) {
        (Some((min, max)), Some(step)) => {
            positive_step(step)?;
            let (min, max) = hashed_range(min, max, kind)?;
            *count += ((max - min + 1.0) / step).ceil() as usize;
            check_field_size(kind, *count)?;
            hashed_step(random, min, max, step)
        }
        (Some((min, max)), None) => {
            let (min, max) = hashed_range(min, max, kind)?;
            js_number(hashed_value(random, min, max))
        }
        (None, Some(step)) => {
            positive_step(step)?;
            *count += ((hi - lo + 1.0) / step).ceil() as usize;
            check_field_size(kind, *count)?;
            hashed_step(random, lo, hi, step)
        }
        (None, None) => js_number(hashed_value(random, lo, hi)),
    })
}

fn positive_step(step: f64) -> Parsed<()> {
    if step <= 0.0 {
        return fail(format!(
            "Invalid step: {}, must be positive",
            js_number(step)
        ));
    }
    Ok(())
}
