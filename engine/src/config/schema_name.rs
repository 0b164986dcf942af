//! pg-boss's rules for the `schema` option, and how PostgreSQL resolves the name.

use crate::error::ensure;
use crate::error::{Error, Result};

/// The schema pg-boss uses when none is configured.
pub const DEFAULT_SCHEMA: &str = "pgboss";

/// pg-boss's rules for the `schema` option: 50 bytes at most; bare names are identifiers
/// (letters, digits, underscores, no leading digit); quoted names avoid characters that would
/// break the SQL the name is written into.
pub fn assert_schema_name(name: &str) -> Result<()> {
    let quoted = name.len() > 1 && name.starts_with('"') && name.ends_with('"');
    let resolved = if quoted {
        &name[1..name.len() - 1]
    } else {
        name
    };
    ensure!(!resolved.is_empty(), "Name cannot be empty");
    ensure!(resolved.len() <= 50, "Name cannot exceed 50 bytes");
    if quoted {
        if let Some(problem) = quoted_name_problem(resolved) {
            return Err(Error::invalid(format!("Quoted name {problem}")));
        }
        return Ok(());
    }
    let remedy = match quoted_name_problem(name) {
        None => format!(" Pass it quoted to use it verbatim: schema: '\"{name}\"'"),
        Some(problem) => format!(" Quoting will not help: a quoted name {problem}."),
    };
    let shown = serde_json::to_string(name).unwrap_or_default();
    ensure!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "Schema name {shown} can only contain alphanumeric characters or underscores when unquoted.{remedy}"
    );
    ensure!(
        !name.starts_with(|c: char| c.is_ascii_digit()),
        "Schema name {shown} cannot start with a number when unquoted.{remedy}"
    );
    Ok(())
}

fn quoted_name_problem(resolved: &str) -> Option<&'static str> {
    let checks: [(bool, &'static str); 7] = [
        (resolved.contains('"'), "cannot contain double quotes"),
        (resolved.contains('\''), "cannot contain single quotes"),
        (resolved.contains('%'), "cannot contain percent signs"),
        (resolved.contains('$'), "cannot contain dollar signs"),
        (resolved.contains('.'), "cannot contain periods"),
        (resolved.contains('\\'), "cannot contain backslashes"),
        (
            resolved.chars().any(|c| c.is_control()),
            "cannot contain control characters",
        ),
    ];
    checks
        .into_iter()
        .find(|(bad, _)| *bad)
        .map(|(_, problem)| problem)
}

/// A quoted name is stored verbatim; a bare one is folded to lower case.
pub fn resolve_schema_name(schema: &str) -> String {
    if schema.len() > 1 && schema.starts_with('"') && schema.ends_with('"') {
        schema[1..schema.len() - 1].to_string()
    } else {
        schema.to_lowercase()
    }
}

/// The spelling shared by every instance on one schema, from which lock keys are derived:
/// redundant quotes around a plain lower-case name are dropped, nothing else changes.
pub fn normalize_schema_name(schema: &str) -> String {
    let inner = schema.strip_prefix('"').and_then(|s| s.strip_suffix('"'));
    match inner {
        Some(name)
            if !name.is_empty()
                && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') =>
        {
            name.to_string()
        }
        _ => schema.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_rules_follow_pg_boss() {
        assert!(assert_schema_name("pgboss_1").is_ok());
        assert!(assert_schema_name("\"My-Schema\"").is_ok());
        let err = assert_schema_name("my-schema").unwrap_err();
        assert!(err
            .message
            .contains("can only contain alphanumeric characters or underscores"));
        assert!(err.message.contains("schema: '\"my-schema\"'"));
        let err = assert_schema_name("1abc").unwrap_err();
        assert!(err.message.contains("cannot start with a number"));
        assert!(assert_schema_name(&"a".repeat(51)).is_err());
        assert!(assert_schema_name("\"a.b\"")
            .unwrap_err()
            .message
            .contains("periods"));
    }

    #[test]
    fn schema_names_resolve_and_normalise_like_postgres() {
        assert_eq!(resolve_schema_name("MySchema"), "myschema");
        assert_eq!(resolve_schema_name("\"MySchema\""), "MySchema");
        assert_eq!(normalize_schema_name("\"pgboss\""), "pgboss");
        assert_eq!(normalize_schema_name("\"My\""), "\"My\"");
    }
}
