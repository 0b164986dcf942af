//! Reading a background-migration command's text: which index a concurrent build makes (to
//! check it in the catalog), and whether a statement is one the server finishes without its
//! client.

/// The index a `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] <name>` command builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltIndex {
    /// As the command spells it (quotes kept), for a `DROP INDEX`.
    pub written: String,
    /// As the catalog stores it (a bare name folded to lower case).
    pub stored: String,
}

/// Finds the concurrent index build in a command. Other commands, and unnamed builds, give `None`:
/// there is nothing in the catalog to check for them.
pub fn concurrent_build(command: &str) -> Option<BuiltIndex> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let is = |i: usize, word: &str| words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(word));
    (0..words.len()).find_map(|start| {
        if !is(start, "CREATE") {
            return None;
        }
        let mut i = start + 1;
        if is(i, "UNIQUE") {
            i += 1;
        }
        if !(is(i, "INDEX") && is(i + 1, "CONCURRENTLY")) {
            return None;
        }
        i += 2;
        if is(i, "IF") && is(i + 1, "NOT") && is(i + 2, "EXISTS") {
            i += 3;
        }
        index_name(words.get(i)?)
    })
}

fn index_name(word: &str) -> Option<BuiltIndex> {
    if let Some(quoted) = word.strip_prefix('"') {
        let inner = &quoted[..quoted.find('"')?];
        return (!inner.is_empty()).then(|| BuiltIndex {
            written: format!("\"{inner}\""),
            stored: inner.to_string(),
        });
    }
    let end = word
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(word.len());
    let bare = &word[..end];
    if bare.is_empty() || bare.eq_ignore_ascii_case("ON") {
        return None;
    }
    Some(BuiltIndex {
        written: bare.to_string(),
        stored: bare.to_lowercase(),
    })
}

/// A statement PostgreSQL finishes even when its client has gone, holding its build lock on the
/// table until it ends — which is what lets a later claim tell it is still running.
pub fn is_concurrent_index_statement(sql: &str) -> bool {
    let words: Vec<&str> = sql.split_whitespace().take(4).collect();
    let is = |i: usize, word: &str| words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(word));
    (is(0, "CREATE")
        && ((is(1, "INDEX") && is(2, "CONCURRENTLY"))
            || (is(1, "UNIQUE") && is(2, "INDEX") && is(3, "CONCURRENTLY"))))
        || (is(0, "DROP") && is(1, "INDEX") && is(2, "CONCURRENTLY"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_index_of_a_concurrent_build() {
        let found = concurrent_build("\n  CREATE INDEX CONCURRENTLY IF NOT EXISTS job_common_i7 ON s.job_common (name, group_id)\n").unwrap();
        assert_eq!(
            found,
            BuiltIndex {
                written: "job_common_i7".into(),
                stored: "job_common_i7".into()
            }
        );
        let found =
            concurrent_build("create unique index concurrently \"My_Idx\" on s.t (a)").unwrap();
        assert_eq!(
            found,
            BuiltIndex {
                written: "\"My_Idx\"".into(),
                stored: "My_Idx".into()
            }
        );
        assert_eq!(
            concurrent_build("CREATE INDEX CONCURRENTLY Upper_I1 ON s.t (a)")
                .unwrap()
                .stored,
            "upper_i1"
        );
        assert_eq!(
            concurrent_build("-- note\nCREATE INDEX CONCURRENTLY i2 ON s.t (a)")
                .unwrap()
                .stored,
            "i2"
        );
    }

    #[test]
    fn other_commands_have_no_index_to_check() {
        assert_eq!(
            concurrent_build("CREATE INDEX job_i7 ON s.job (name)"),
            None
        );
        assert_eq!(
            concurrent_build("DROP INDEX CONCURRENTLY IF EXISTS s.job_i5"),
            None
        );
        assert_eq!(
            concurrent_build("CREATE INDEX CONCURRENTLY ON s.t (a)"),
            None
        );
        assert_eq!(concurrent_build("SELECT 1"), None);
    }

    #[test]
    fn tells_statements_the_server_finishes_without_a_client() {
        assert!(is_concurrent_index_statement(
            "\n CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)"
        ));
        assert!(is_concurrent_index_statement(
            "create unique index concurrently i on t (a)"
        ));
        assert!(is_concurrent_index_statement(
            "DROP INDEX CONCURRENTLY IF EXISTS s.i"
        ));
        assert!(!is_concurrent_index_statement("CREATE INDEX i ON t (a)"));
        assert!(!is_concurrent_index_statement("SELECT pg_sleep(1)"));
    }
}
