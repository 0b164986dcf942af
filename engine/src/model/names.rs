//! pg-boss's rules for queue, job and key names.

use serde_json::Value;

use crate::ensure;
use crate::error::{Error, Result};

/// Queue, job and key names: pg-boss allows letters, digits, `_`, `-`, `.` and `/`.
pub fn assert_object_name(value: &str, what: &str) -> Result<()> {
    ensure!(
        !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')),
        "{what} can only contain alphanumeric characters, underscores, hyphens, periods, or forward slashes"
    );
    Ok(())
}

pub fn assert_queue_name(name: &Value) -> Result<&str> {
    ensure!(
        !matches!(name, Value::Null | Value::Bool(false)) && name.as_str() != Some(""),
        "Name is required"
    );
    let name = name
        .as_str()
        .ok_or_else(|| Error::invalid("Name must be a string"))?;
    assert_object_name(name, "Name")?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    }
}
