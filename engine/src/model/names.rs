//! pg-boss's rules for queue, job and key names.

use serde_json::Value;

use crate::config::js::truthy;
use crate::error::ensure;
use crate::error::{Error, Result};

/// Queue, job and key names: pg-boss allows letters, digits, `_`, `-`, `.` and `/`.
pub fn assert_object_name(value: &str, what: &str) -> Result<()> {
    ensure!(
        !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')),
        "{what} can only contain alphanumeric characters, underscores, hyphens, periods, or forward slashes"
    );
    Ok(())
}

/// A queue name as pg-boss checks it: present, a string, and made of the characters
/// [`assert_object_name`] allows.
pub fn assert_queue_name(name: &Value) -> Result<&str> {
    ensure!(truthy(Some(name)), "Name is required");
    let name = name
        .as_str()
        .ok_or_else(|| Error::invalid("Name must be a string"))?;
    assert_object_name(name, "Name")?;
    Ok(name)
}

/// Whether `text` is something PostgreSQL's uuid type accepts: 32 hex digits with a hyphen allowed
/// after any group of four but the last, optionally inside one pair of braces.
pub fn is_uuid_input(text: &str) -> bool {
    let inner = match text.strip_prefix('{') {
        Some(rest) => match rest.strip_suffix('}') {
            Some(inner) => inner,
            None => return false,
        },
        None => text,
    };
    let mut groups = 0;
    let mut rest = inner;
    while !rest.is_empty() {
        if groups > 0 {
            rest = rest.strip_prefix('-').unwrap_or(rest);
        }
        let (group, tail) = rest.split_at(rest.len().min(4));
        if group.len() != 4 || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        groups += 1;
        rest = tail;
    }
    groups == 8
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uuid_input_takes_what_postgres_takes() {
        assert!(is_uuid_input("0123abcd-0000-4000-8000-000000000000"));
        assert!(is_uuid_input("0123ABCD00004000800000000000000f"));
        assert!(is_uuid_input("{0123-abcd-0000-4000-8000-0000-0000-0000}"));
        assert!(!is_uuid_input("{0123abcd-0000-4000-8000-000000000000"));
        assert!(!is_uuid_input("0123abcd-0000-4000-8000-00000000000"));
        assert!(!is_uuid_input("-0123abcd-0000-4000-8000-000000000000"));
        assert!(!is_uuid_input("0123abcd--0000-4000-8000-000000000000"));
        assert!(!is_uuid_input("0123abcd-0000-4000-8000-000000000000-"));
        assert!(!is_uuid_input("nope"));
        assert!(!is_uuid_input(""));
    }

    #[test]
    fn queue_names_follow_pg_boss_rules() {
        assert!(assert_queue_name(&json!("a/b.c-d_e")).is_ok());
        assert_eq!(assert_queue_name(&json!("a b")).unwrap_err().message,
            "Name can only contain alphanumeric characters, underscores, hyphens, periods, or forward slashes");
        assert_eq!(
            assert_queue_name(&json!(null)).unwrap_err().message,
            "Name is required"
        );
        assert_eq!(
            assert_queue_name(&json!(5)).unwrap_err().message,
            "Name must be a string"
        );
        assert_eq!(
            assert_queue_name(&json!(0)).unwrap_err().message,
            "Name is required"
        );
    }
}
