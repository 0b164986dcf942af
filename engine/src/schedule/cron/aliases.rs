//! Names cron-parser reads in place of numbers: month and weekday names, and the `@daily`-style
//! shortcuts for a whole expression.

use super::field_kind::FieldKind;
use super::{fail, Parsed};

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// The alias shortcuts cron-parser knows, expanded to six fields.
pub(super) fn predefined(expression: &str) -> Option<&'static str> {
    Some(match expression {
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        "@monthly" => "0 0 0 1 * *",
        "@weekly" => "0 0 0 * * 0",
        "@daily" => "0 0 0 * * *",
        "@hourly" => "0 0 * * * *",
        "@minutely" => "0 * * * * *",
        "@secondly" => "* * * * * *",
        "@weekdays" => "0 0 0 * * 1-5",
        "@weekends" => "0 0 0 * * 0,6",
        _ => return None,
    })
}

/// Replaces every run of three letters with the number it names.
pub(super) fn replace_aliases(value: &str, kind: FieldKind) -> Parsed<String> {
    let names: &[&str] = if kind == FieldKind::Month {
        &MONTHS
    } else {
        &WEEKDAYS
    };
    let base = if kind == FieldKind::Month { 1 } else { 0 };
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if i + 3 <= chars.len() && chars[i..i + 3].iter().all(|c| c.is_ascii_alphabetic()) {
            let word: String = chars[i..i + 3]
                .iter()
                .collect::<String>()
                .to_ascii_lowercase();
            match names.iter().position(|n| *n == word) {
                Some(index) => out.push_str(&(index + base).to_string()),
                None => return fail(format!("Validation error, cannot resolve alias \"{word}\"")),
            }
            i += 3;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    Ok(out)
}
