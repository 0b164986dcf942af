//! The first reading of an expression, as pg-boss gives it: which iCalendar lines it holds, and
//! the refusals pg-boss makes before any rule is built (unknown properties and parts, repeats,
//! a missing RRULE, COUNT without a DTSTART of its own, RDATE/EXDATE of another value type).
//!
//! Two shapes are accepted: the value of an RRULE on its own (`FREQ=DAILY;BYHOUR=9`) and the
//! DTSTART, RRULE, RDATE and EXDATE lines of a calendar entry. A rule without a DTSTART recurs
//! from midnight of 1970-01-01 in the schedule's zone, so its phase is the same on every instance.

use super::RuleError;

/// The DTSTART of a rule that names none: floating, so the schedule's zone places it.
pub const EPOCH_DTSTART: &str = "19700101T000000";

/// The properties an expression may hold.
const PROPERTIES: [&str; 4] = ["DTSTART", "RRULE", "RDATE", "EXDATE"];

/// The rule parts of RFC 5545 3.3.10 and RFC 7529.
pub const PARTS: [&str; 16] = [
    "FREQ",
    "UNTIL",
    "COUNT",
    "INTERVAL",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
    "RSCALE",
    "SKIP",
];

/// An expression as calendar lines, checked.
#[derive(Debug, Clone)]
pub struct Ics {
    /// The lines, a bare rule written as an RRULE line and the epoch DTSTART added when missing.
    pub text: String,
    /// The RRULE's value.
    pub rule: String,
}

fn refuse<T>(message: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError::assertion(message))
}

/// The name of the iCalendar property a line opens with (`NAME;` or `NAME:`), if any.
fn property(line: &str) -> Option<String> {
    let bytes = line.as_bytes();
    if !bytes.first()?.is_ascii_alphabetic() {
        return None;
    }
    let end = bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-'))?;
    matches!(bytes[end], b';' | b':').then(|| line[..end].to_ascii_uppercase())
}

/// JavaScript's `String.prototype.trim()`.
fn js_trim(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

/// Reads `expression` into calendar lines, refusing what pg-boss refuses.
pub fn read(expression: &str) -> Result<Ics, RuleError> {
    let unfolded = unfold(expression);
    let mut lines: Vec<String> = Vec::new();
    let mut dates: Vec<(String, String)> = Vec::new();
    let mut dtstart: Option<String> = None;
    let mut rule: Option<String> = None;
    for line in split_lines(&unfolded) {
        let text = js_trim(line);
        if text.is_empty() {
            continue;
        }
        let named = property(text);
        let name = named.clone().unwrap_or_else(|| "RRULE".to_string());
        let value = if named.is_some() {
            text.find(':').map_or(text, |i| &text[i + 1..])
        } else {
            text
        };
        if name == "BEGIN" || name == "END" {
            return refuse("rrule expression should be the DTSTART, RRULE, RDATE and EXDATE lines of a calendar entry, without the BEGIN and END lines around them");
        }
        if !PROPERTIES.contains(&name.as_str()) {
            return refuse(format!(
                "Unsupported property \"{name}\" in rrule expression. Supported properties: {}",
                PROPERTIES.join(", ")
            ));
        }
        match name.as_str() {
            "DTSTART" => {
                if dtstart.is_some() {
                    return refuse("rrule expression has more than one DTSTART");
                }
                dtstart = Some(value.to_string());
            }
            "RRULE" => {
                if rule.is_some() {
                    return refuse("rrule expression has more than one RRULE");
                }
                check_parts(value)?;
                rule = Some(value.to_string());
            }
            _ => dates.push((name.clone(), value.to_string())),
        }
        lines.push(if named.is_some() {
            text.to_string()
        } else {
            format!("RRULE:{text}")
        });
    }
    let Some(rule) = rule else {
        return refuse("rrule expression has no RRULE to recur on");
    };
    if dtstart.is_none() {
        if has_count(&rule) {
            return refuse("rrule expression uses COUNT, which counts occurrences from DTSTART, so it needs a DTSTART of its own");
        }
        lines.insert(0, format!("DTSTART:{EPOCH_DTSTART}"));
    }
    check_dates(&dates, dtstart.as_deref().unwrap_or(EPOCH_DTSTART))?;
    Ok(Ics {
        text: lines.join("\n"),
        rule,
    })
}

/// Folded lines (a line break followed by a space or tab) joined back.
pub fn unfold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let crlf = chars[i] == '\r' && chars.get(i + 1) == Some(&'\n');
        let lf_at = if crlf { i + 1 } else { i };
        if chars[lf_at] == '\n' && matches!(chars.get(lf_at + 1), Some(' ' | '\t')) {
            i = lf_at + 2;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Lines split at `\n` or `\r\n`.
fn split_lines(text: &str) -> Vec<&str> {
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// Whether a rule names a COUNT part (at its start or after a `;`), in any case.
fn has_count(rule: &str) -> bool {
    rule.split(';')
        .any(|part| part.len() >= 6 && part[..6].eq_ignore_ascii_case("COUNT="))
}

/// Every part is NAME=VALUE, known (or an X- extension), and named once.
fn check_parts(rule: &str) -> Result<(), RuleError> {
    let mut named: Vec<String> = Vec::new();
    for part in rule.split(';') {
        if part.is_empty() {
            continue;
        }
        let upper = part.to_uppercase();
        let mut pieces = upper.split('=');
        let name = pieces.next().unwrap_or_default().to_string();
        let value = pieces.next().unwrap_or_default();
        if value.is_empty() {
            return refuse(format!("rrule part \"{part}\" has no value"));
        }
        if !PARTS.contains(&name.as_str()) && !name.starts_with("X-") {
            return refuse(format!("Unsupported part \"{part}\" in rrule expression"));
        }
        if named.contains(&name) {
            return refuse(format!("rrule expression has more than one {name} part"));
        }
        named.push(name);
    }
    Ok(())
}

/// RDATE and EXDATE values must have DTSTART's value type (a date, or a date-time).
fn check_dates(dates: &[(String, String)], dtstart: &str) -> Result<(), RuleError> {
    let dtstart_is_date = !dtstart.contains('T');
    for (name, value) in dates {
        for date in value.split(',') {
            if date.contains('T') == dtstart_is_date {
                let expected = if dtstart_is_date {
                    format!(
                        "a date such as {}",
                        date.chars().take(8).collect::<String>()
                    )
                } else {
                    format!("a date time such as {date}T090000")
                };
                return refuse(format!(
                    "rrule {name} \"{date}\" must have the same value type as DTSTART: {expected}"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(expression: &str) -> String {
        read(expression).unwrap_err().message
    }

    #[test]
    fn a_bare_rule_gets_the_epoch_dtstart() {
        let ics = read("FREQ=DAILY;BYHOUR=9").unwrap();
        assert_eq!(
            ics.text,
            "DTSTART:19700101T000000\nRRULE:FREQ=DAILY;BYHOUR=9"
        );
        assert_eq!(ics.rule, "FREQ=DAILY;BYHOUR=9");
        let ics = read("DTSTART:20260101T090000\r\nRRULE:FREQ=DAILY;\r\n COUNT=3").unwrap();
        assert_eq!(
            ics.text,
            "DTSTART:20260101T090000\nRRULE:FREQ=DAILY;COUNT=3"
        );
    }

    #[test]
    fn refusals_in_pg_boss_words() {
        assert_eq!(refused("BEGIN:VEVENT\nFREQ=DAILY"), "rrule expression should be the DTSTART, RRULE, RDATE and EXDATE lines of a calendar entry, without the BEGIN and END lines around them");
        assert_eq!(refused("SUMMARY:x\nFREQ=DAILY"), "Unsupported property \"SUMMARY\" in rrule expression. Supported properties: DTSTART, RRULE, RDATE, EXDATE");
        assert_eq!(
            refused("FREQ=DAILY;BYHOURS=9"),
            "Unsupported part \"BYHOURS=9\" in rrule expression"
        );
        assert_eq!(
            refused("FREQ=DAILY;BYHOUR="),
            "rrule part \"BYHOUR=\" has no value"
        );
        assert_eq!(
            refused("FREQ=DAILY;BYHOUR=9;byhour=10"),
            "rrule expression has more than one BYHOUR part"
        );
        assert_eq!(
            refused("RDATE:20260101T090000"),
            "rrule expression has no RRULE to recur on"
        );
        assert_eq!(refused("FREQ=DAILY;COUNT=3"), "rrule expression uses COUNT, which counts occurrences from DTSTART, so it needs a DTSTART of its own");
        assert_eq!(refused("FREQ=DAILY\nEXDATE:20260101"), "rrule EXDATE \"20260101\" must have the same value type as DTSTART: a date time such as 20260101T090000");
        assert_eq!(
            refused("DTSTART:20260101T0900\nDTSTART:20260102T0900\nFREQ=DAILY"),
            "rrule expression has more than one DTSTART"
        );
        assert!(read("FREQ=DAILY;X-NAME=anything").is_ok());
    }
}
