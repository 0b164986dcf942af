//! Recognising the other format pg-boss schedules take: RFC 5545 recurrence rules.

/// Whether `expression` is an RFC 5545 recurrence rule rather than a cron expression, by pg-boss's
/// test: a line opening with an iCalendar property name followed by `;` or `:`, or a `FREQ=` part
/// (in any case) at the start of a line or after whitespace or `;`. No cron field holds `=`, `:`
/// or `;`, so the test cannot mistake one for the other.
pub fn is_rrule(expression: &str) -> bool {
    let chars: Vec<char> = expression.chars().collect();
    let line_start =
        |i: usize| i == 0 || matches!(chars[i - 1], '\n' | '\r' | '\u{2028}' | '\u{2029}');
    for i in 0..chars.len() {
        if line_start(i) {
            let mut j = i;
            while j < chars.len() && matches!(chars[j], ' ' | '\t') {
                j += 1;
            }
            if j < chars.len() && chars[j].is_ascii_alphabetic() {
                j += 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && matches!(chars[j], ';' | ':') {
                    return true;
                }
            }
        }
        let boundary = line_start(i) || chars[i - 1].is_whitespace() || chars[i - 1] == ';';
        if boundary && chars.len() >= i + 5 {
            let word: String = chars[i..i + 5].iter().collect();
            if word.eq_ignore_ascii_case("FREQ=") {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrules_are_told_from_cron() {
        assert!(is_rrule("FREQ=DAILY;BYHOUR=9"));
        assert!(is_rrule("DTSTART:20260101T090000\nRRULE:FREQ=DAILY"));
        assert!(is_rrule("byhour=9;freq=daily"));
        assert!(!is_rrule("0 9 * * *"));
        assert!(!is_rrule("@daily"));
    }
}
