//! What one schema holds, read from the PostgreSQL catalogs in one statement: the same read serves
//! the live schema and the scratch install it is compared with, so both are rendered alike.

use serde::Deserialize;
use sqlx::PgConnection;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
pub struct Table {
    pub name: String,
    /// The table this one is a partition of.
    pub parent: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Column {
    pub table: String,
    pub column: String,
    /// `format_type()`'s spelling, schema-qualified for types outside `pg_catalog`.
    pub r#type: String,
    pub not_null: bool,
    pub default: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub name: String,
    pub table: String,
    pub valid: bool,
    pub def: String,
    /// The index belongs to a constraint (a key, or the unique index a foreign key leans on): it is
    /// checked as that constraint, never as an index of its own.
    pub constraint_backed: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Constraint {
    pub table: String,
    pub def: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Function {
    pub name: String,
    /// `pg_proc.prokind`: `f` function, `p` procedure, `a` aggregate, `w` window.
    pub kind: String,
    /// Names, types and defaults, as `pg_get_function_arguments()` prints them.
    pub arguments: String,
    pub result: Option<String>,
    /// `pg_get_functiondef()`; absent for aggregates, which it cannot print.
    pub def: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    pub tables: Vec<Table>,
    /// Per table in attribute order.
    pub columns: Vec<Column>,
    pub indexes: Vec<Index>,
    pub constraints: Vec<Constraint>,
    pub functions: Vec<Function>,
    /// The `job_state` labels in their sort order; empty when the type is missing.
    pub job_states: Vec<String>,
}

impl Catalog {
    pub fn has_table(&self, name: &str) -> bool {
        self.tables.iter().any(|t| t.name == name)
    }
}

/// Ordinary and partitioned tables only, as pg-boss counts them (views and the like are not
/// tables it manages). Indexes and constraints come in creation order (oid): pg-boss reads them
/// unordered, which is the order they were made in until the catalog is rewritten. Type names and expressions are printed under the caller's `search_path`;
/// `detect` pins it to `pg_catalog` so both schemas' objects come out schema-qualified.
pub(super) const READ: &str = r#"
WITH ns AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1)
SELECT json_build_object(
  'tables', COALESCE((
    SELECT json_agg(json_build_object(
             'name', c.relname,
             'parent', CASE WHEN c.relispartition THEN
               (SELECT p.relname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid LIMIT 1)
             END) ORDER BY c.relname)
    FROM pg_class c
    WHERE c.relnamespace = (SELECT oid FROM ns) AND c.relkind IN ('r', 'p')), '[]'),
  'columns', COALESCE((
    SELECT json_agg(json_build_object(
             'table', c.relname, 'column', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
             'notNull', a.attnotnull, 'default', pg_get_expr(d.adbin, d.adrelid)) ORDER BY c.relname, a.attnum)
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relnamespace = (SELECT oid FROM ns) AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped), '[]'),
  'indexes', COALESCE((
    SELECT json_agg(json_build_object(
             'name', ic.relname, 'table', t.relname, 'valid', i.indisvalid, 'def', pg_get_indexdef(i.indexrelid),
             'constraintBacked', EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)) ORDER BY i.indexrelid)
    FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    WHERE ic.relnamespace = (SELECT oid FROM ns)), '[]'),
  'constraints', COALESCE((
    SELECT json_agg(json_build_object('table', c.relname, 'def', pg_get_constraintdef(k.oid)) ORDER BY k.oid)
    FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid
    WHERE c.relnamespace = (SELECT oid FROM ns) AND k.contype <> 'n'), '[]'),
  'functions', COALESCE((
    SELECT json_agg(json_build_object(
             'name', p.proname, 'kind', p.prokind::text, 'arguments', pg_get_function_arguments(p.oid),
             'result', pg_get_function_result(p.oid),
             'def', CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) END) ORDER BY p.proname, p.oid)
    FROM pg_proc p
    WHERE p.pronamespace = (SELECT oid FROM ns)), '[]'),
  'jobStates', COALESCE((
    SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder)
    FROM pg_enum e
    JOIN pg_type ty ON ty.oid = e.enumtypid
    WHERE ty.typnamespace = (SELECT oid FROM ns) AND ty.typname = 'job_state'), '[]')
)::text
"#;

/// Everything `schema` (the name as the catalog stores it) holds.
pub async fn read(conn: &mut PgConnection, schema: &str) -> Result<Catalog> {
    let text: String = sqlx::query_scalar(READ)
        .bind(schema)
        .persistent(false)
        .fetch_one(conn)
        .await?;
    parse(&text)
}

/// A snapshot [`READ`] answered, read.
pub fn parse(text: &str) -> Result<Catalog> {
    serde_json::from_str(text)
        .map_err(|e| Error::internal(format!("unreadable catalog snapshot: {e}")))
}
