//! Turning catalog text (`pg_get_indexdef`, `pg_get_constraintdef`, `pg_get_expr`,
//! `pg_get_functiondef`) into the readable and the comparable forms a drift report uses.
//!
//! The rules are pg-boss 12.38's, so that its report and ours, read off one database, carry the
//! same strings and call the same things equal: casts are dropped, case, quotes and whitespace do
//! not count, an index's key order counts but its INCLUDE order does not, `= ANY (ARRAY[..])` is the
//! same as `IN (..)`, and one redundant pair of parentheses around a whole expression is noise.

use std::cmp::Ordering;

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_type_start(b: u8) -> bool {
    b.is_ascii_lowercase() || b == b'_'
}

fn is_type_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'$'
}

/// Where a lower-case type name (optionally schema-qualified, optionally an array) that starts at
/// `at` ends, or `None` when no type name starts there.
fn type_name_end(b: &[u8], at: usize) -> Option<usize> {
    let word_end = |from: usize| -> Option<usize> {
        if from < b.len() && is_type_start(b[from]) {
            let mut end = from + 1;
            while end < b.len() && is_type_char(b[end]) {
                end += 1;
            }
            Some(end)
        } else {
            None
        }
    };
    let mut end = word_end(at)?;
    if end < b.len() && b[end] == b'.' {
        if let Some(qualified) = word_end(end + 1) {
            end = qualified;
        }
    }
    if b[end..].starts_with(b"[]") {
        end += 2;
    }
    Some(end)
}

/// Drops `::type` casts. Only unquoted lower-case names are casts here (how PostgreSQL prints the
/// types pg-boss uses); a cast to a multi-word type loses its first word only, as in pg-boss.
pub fn strip_casts(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"::") {
            if let Some(end) = type_name_end(b, i + 2) {
                i = end;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    // Only whole ASCII runs were removed, so the bytes are still UTF-8.
    String::from_utf8(out).expect("cast stripping keeps UTF-8 intact")
}

/// Every run of whitespace becomes one space.
pub fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !in_run {
                out.push(' ');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

fn remove_whitespace(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn remove_quotes(s: &str) -> String {
    s.replace('"', "")
}

/// The index just past the parenthesis that closes the one at `open`.
fn closing_paren(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'(' => depth += 1,
            b')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn wrapped_whole(s: &str) -> bool {
    let b = s.as_bytes();
    b.first() == Some(&b'(') && closing_paren(b, 0) == Some(b.len() - 1)
}

/// Removes parentheses that enclose the whole text (PostgreSQL wraps predicates and some defaults
/// in them); inner grouping stays, so a regrouped expression still differs.
pub fn strip_outer_parens(s: &str) -> String {
    let mut out = s.trim();
    while wrapped_whole(out) {
        out = out[1..out.len() - 1].trim();
    }
    out.to_string()
}

/// The first parenthesised group of an index definition: its key columns, expressions included.
fn key_list(def: &str) -> Option<&str> {
    let open = def.find('(')?;
    let close = closing_paren(def.as_bytes(), open)?;
    Some(&def[open + 1..close])
}

/// The `INCLUDE (...)` list, which PostgreSQL prints right after the key list.
fn include_list(def: &str) -> Option<&str> {
    let open = def.find('(')?;
    let after_keys = closing_paren(def.as_bytes(), open)? + 1;
    let tail = &def[after_keys..];
    let rest = tail.trim_start();
    if !rest
        .as_bytes()
        .get(..7)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"include"))
    {
        return None;
    }
    let after_word = &rest[7..];
    let paren = after_word.trim_start();
    if !paren.starts_with('(') {
        return None;
    }
    let open = def.len() - paren.len();
    let close = closing_paren(def.as_bytes(), open)?;
    Some(&def[open + 1..close])
}

/// Where the first `WHERE` word of `s` starts, in any case.
fn find_where(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(4)).find(|&i| {
        b[i..i + 5].eq_ignore_ascii_case(b"where")
            && (i == 0 || !is_word(b[i - 1]))
            && (i + 5 == b.len() || !is_word(b[i + 5]))
    })
}

/// The predicate of a partial index, untouched; empty for a full index.
fn predicate_text(def: &str) -> &str {
    find_where(def).map_or("", |at| &def[at + 5..])
}

fn readable(s: &str) -> String {
    collapse_whitespace(&strip_casts(s)).trim().to_string()
}

/// The key columns as a reader wants them: casts dropped, whitespace tidied.
pub fn index_keys(def: &str) -> String {
    key_list(def).map(readable).unwrap_or_default()
}

/// The INCLUDE columns as a reader wants them, `''` without an INCLUDE clause.
pub fn index_include(def: &str) -> String {
    include_list(def).map(readable).unwrap_or_default()
}

/// The partial-index predicate as a reader wants it, `''` for a full index.
pub fn index_predicate(def: &str) -> String {
    strip_outer_parens(&readable(predicate_text(def)))
}

/// An index definition for display: without the default `USING btree`, casts or the parentheses
/// around the whole predicate.
pub fn display_index(def: &str) -> String {
    let tidy = readable(&drop_using_btree(def));
    match find_where(&tidy) {
        None => tidy,
        Some(at) => format!(
            "{} {}",
            &tidy[..at + 5],
            strip_outer_parens(&tidy[at + 5..])
        ),
    }
}

/// Replaces the first ` USING btree ` (any spacing and case) with one space.
fn drop_using_btree(def: &str) -> String {
    let b = def.as_bytes();
    let ws_run_end = |from: usize| -> usize {
        let mut i = from;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    for at in 1..b.len() {
        if !b[at..]
            .get(..5)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"using"))
            || !b[at - 1].is_ascii_whitespace()
        {
            continue;
        }
        let gap = ws_run_end(at + 5);
        if gap == at + 5
            || !b[gap..]
                .get(..5)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"btree"))
        {
            continue;
        }
        let end = ws_run_end(gap + 5);
        if end == gap + 5 {
            continue;
        }
        let mut start = at;
        while start > 0 && b[start - 1].is_ascii_whitespace() {
            start -= 1;
        }
        return format!("{} {}", &def[..start], &def[end..]);
    }
    def.to_string()
}

/// The comparable form of a key list: order kept, everything cosmetic gone.
pub fn comparable_keys(keys: &str) -> String {
    strip_casts(&remove_whitespace(&remove_quotes(&keys.to_lowercase())))
}

/// The comparable form of an INCLUDE list: a set, so its order does not count.
pub fn comparable_include(include: &str) -> String {
    let flat = comparable_keys(include);
    let mut columns: Vec<&str> = flat.split(',').filter(|c| !c.is_empty()).collect();
    columns.sort_unstable();
    columns.join(",")
}

/// The comparable form of a predicate.
pub fn comparable_predicate(predicate: &str) -> String {
    let folded = fold_any_array(&strip_casts(&remove_quotes(&predicate.to_lowercase())));
    remove_whitespace(&strip_outer_parens(&folded))
}

/// `= any (array[a, b])`, PostgreSQL's spelling of a list test, back to `in (a, b)` (lower case in,
/// lower case out).
fn fold_any_array(s: &str) -> String {
    fn skip_ws(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    }
    fn word(b: &[u8], i: usize, w: &[u8]) -> Option<usize> {
        b[i..].starts_with(w).then_some(i + w.len())
    }
    // The list inside `[...]`, and where the whole `= any (array[...])` ends.
    fn list_test(b: &[u8], eq: usize) -> Option<(usize, usize, usize)> {
        let i = word(b, skip_ws(b, eq + 1), b"any")?;
        let i = word(b, skip_ws(b, i), b"(")?;
        let i = word(b, skip_ws(b, i), b"array")?;
        let start = word(b, skip_ws(b, i), b"[")?;
        let close = start + b[start..].iter().position(|&c| c == b']')?;
        let end = word(b, skip_ws(b, close + 1), b")")?;
        Some((start, close, end))
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if let Some((start, close, end)) = list_test(b, i) {
                out.push_str(&s[copied..i]);
                out.push_str("in (");
                out.push_str(&s[start..close]);
                out.push(')');
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    out
}

/// The comparable form of a column default.
pub fn comparable_default(default: &str) -> String {
    strip_outer_parens(collapse_whitespace(&strip_casts(&default.to_lowercase())).trim())
}

/// The comparable form of a constraint definition.
pub fn comparable_constraint(def: &str) -> String {
    collapse_whitespace(&strip_casts(&remove_quotes(&def.to_lowercase())))
        .trim()
        .to_string()
}

/// The body of a function definition: the text inside its first dollar quote, `''` if it has none.
pub fn function_body(def: &str) -> &str {
    let b = def.as_bytes();
    let mut from = 0;
    while let Some(pos) = def[from..].find('$') {
        let open = from + pos;
        let mut end = open + 1;
        while end < b.len() && is_word(b[end]) {
            end += 1;
        }
        if end < b.len() && b[end] == b'$' {
            let tag = &def[open..=end];
            let body_start = end + 1;
            return def[body_start..]
                .find(tag)
                .map_or("", |close| &def[body_start..body_start + close]);
        }
        from = open + 1;
    }
    ""
}

/// A function body with its layout ignored.
pub fn comparable_body(body: &str) -> String {
    collapse_whitespace(body).trim().to_string()
}

/// The name of the index a background-migration command creates, if it is a `CREATE INDEX`.
pub fn created_index_name(command: &str) -> Option<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let is = |i: usize, w: &str| words.get(i).is_some_and(|t| t.eq_ignore_ascii_case(w));
    for start in 0..words.len() {
        if !is(start, "create") {
            continue;
        }
        let mut i = start + 1;
        if is(i, "unique") {
            i += 1;
        }
        if !is(i, "index") {
            continue;
        }
        i += 1;
        if is(i, "concurrently") {
            i += 1;
        }
        if is(i, "if") && is(i + 1, "not") && is(i + 2, "exists") {
            i += 3;
        }
        let token = words.get(i)?.trim_start_matches('"');
        let name: String = token
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '$')
            .collect();
        return (!name.is_empty()).then_some(name);
    }
    None
}

/// The order pg-boss lists catalog names in: byte order, except that `_` sorts before everything,
/// and, with `grouped`, a name sorts after every longer name it is the start of followed by `_`
/// (how pg-boss orders its per-table lists: `queue_stats` before `queue`, `job_common` before `job`).
pub fn catalog_order(a: &str, b: &str, grouped: bool) -> Ordering {
    let key = |s: &str| -> Vec<u8> {
        let mut k: Vec<u8> = s.bytes().map(|c| if c == b'_' { 1 } else { c }).collect();
        if grouped {
            k.push(2);
        }
        k
    };
    key(a).cmp(&key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const I10: &str = "CREATE INDEX job_common_i10 ON pgboss.job_common USING btree (name, singleton_key, state DESC, created_on, id) INCLUDE (start_after) WHERE ((state < 'active'::pgboss.job_state) AND (NOT blocked) AND (policy = 'key_strict_fifo'::text))";

    #[test]
    fn index_parts_read_as_pg_boss_shows_them() {
        assert_eq!(
            index_keys(I10),
            "name, singleton_key, state DESC, created_on, id"
        );
        assert_eq!(index_include(I10), "start_after");
        assert_eq!(
            index_predicate(I10),
            "(state < 'active') AND (NOT blocked) AND (policy = 'key_strict_fifo')"
        );
        assert_eq!(
            display_index(I10),
            "CREATE INDEX job_common_i10 ON pgboss.job_common (name, singleton_key, state DESC, created_on, id) INCLUDE (start_after) WHERE (state < 'active') AND (NOT blocked) AND (policy = 'key_strict_fifo')"
        );
        let full = "CREATE UNIQUE INDEX q_i1 ON s.queue USING btree (name, COALESCE(singleton_key, ''::text))";
        assert_eq!(index_keys(full), "name, COALESCE(singleton_key, '')");
        assert_eq!(index_include(full), "");
        assert_eq!(index_predicate(full), "");
        assert_eq!(
            display_index(full),
            "CREATE UNIQUE INDEX q_i1 ON s.queue (name, COALESCE(singleton_key, ''))"
        );
    }

    #[test]
    fn casts_go_schema_qualified_and_arrays_included() {
        assert_eq!(
            strip_casts("'{}'::integer[] = x::pgboss.job_state"),
            "'{}' = x"
        );
        assert_eq!(
            strip_casts("now() + '336:00:00'::interval"),
            "now() + '336:00:00'"
        );
        // Quoted or upper-case type names are not casts by these rules, and `::` alone stays.
        assert_eq!(
            strip_casts("a::\"My\".t b::TEXT c::"),
            "a::\"My\".t b::TEXT c::"
        );
    }

    #[test]
    fn key_order_counts_but_layout_and_casts_do_not() {
        assert_eq!(
            comparable_keys("Name, \"state\"  DESC"),
            comparable_keys("name,state DESC")
        );
        assert_ne!(
            comparable_keys("name, state"),
            comparable_keys("state, name")
        );
        assert_eq!(
            comparable_keys("COALESCE(k, ''::text)"),
            comparable_keys("COALESCE(k, '')")
        );
    }

    #[test]
    fn include_order_does_not_count() {
        assert_eq!(comparable_include("b, a"), comparable_include("a,b"));
        assert_ne!(comparable_include("a, b"), comparable_include("a"));
        assert_eq!(comparable_include(""), "");
    }

    #[test]
    fn predicates_fold_list_tests_and_outer_parens_only() {
        assert_eq!(
            comparable_predicate(
                "((state = ANY (ARRAY['created'::s.job_state, 'retry'::s.job_state])))"
            ),
            comparable_predicate("state IN ('created', 'retry')")
        );
        assert_eq!(comparable_predicate("(a) AND (b)"), "(a)and(b)");
        assert_ne!(
            comparable_predicate("(a OR b) AND c"),
            comparable_predicate("a OR (b AND c)")
        );
        assert_ne!(
            comparable_predicate("state < 'active'"),
            comparable_predicate("state <= 'active'")
        );
    }

    #[test]
    fn defaults_and_constraints_compare_without_casts() {
        assert_eq!(comparable_default("'{}'::integer[]"), "'{}'");
        assert_eq!(
            comparable_default("(now() + '14 days'::interval)"),
            "now() + '14 days'"
        );
        assert_eq!(
            comparable_constraint("CHECK ((kind = ANY (ARRAY['cron'::text])))"),
            "check ((kind = any (array['cron'])))"
        );
    }

    #[test]
    fn function_bodies_come_from_the_first_dollar_quote() {
        let def = "CREATE OR REPLACE FUNCTION s.f(a text DEFAULT '$1')\n RETURNS void\nAS $function$\nBEGIN EXECUTE $cmd$x$cmd$; END;\n$function$\n";
        assert_eq!(function_body(def), "\nBEGIN EXECUTE $cmd$x$cmd$; END;\n");
        assert_eq!(
            comparable_body(function_body(def)),
            "BEGIN EXECUTE $cmd$x$cmd$; END;"
        );
        assert_eq!(function_body("no body"), "");
        assert_eq!(function_body("AS $x$ unterminated"), "");
    }

    #[test]
    fn bam_commands_name_their_index() {
        assert_eq!(
            created_index_name(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS job_common_i17 ON s.job_common (name)"
            )
            .as_deref(),
            Some("job_common_i17")
        );
        assert_eq!(
            created_index_name("create unique index \"j1_i4\" on s.j1 (x)").as_deref(),
            Some("j1_i4")
        );
        assert_eq!(
            created_index_name("ALTER TABLE s.job ADD COLUMN x int"),
            None
        );
    }

    #[test]
    fn catalog_order_is_pg_boss_manifest_order() {
        let mut tables = vec![
            "queue",
            "job",
            "queue_stats",
            "job_dependency",
            "job_common",
            "bam",
        ];
        tables.sort_by(|a, b| catalog_order(a, b, true));
        assert_eq!(
            tables,
            [
                "bam",
                "job_common",
                "job_dependency",
                "job",
                "queue_stats",
                "queue"
            ]
        );
        tables.sort_by(|a, b| catalog_order(a, b, false));
        assert_eq!(
            tables,
            [
                "bam",
                "job",
                "job_common",
                "job_dependency",
                "queue",
                "queue_stats"
            ]
        );
        let mut indexes = vec![
            "job_common_i2",
            "job_common_i10",
            "job_common_i1",
            "job_dep_parent_idx",
        ];
        indexes.sort_by(|a, b| catalog_order(a, b, false));
        assert_eq!(
            indexes,
            [
                "job_common_i1",
                "job_common_i10",
                "job_common_i2",
                "job_dep_parent_idx"
            ]
        );
    }
}
