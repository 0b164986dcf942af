//! The drift report: the live catalog held against the expectations, in pg-boss's
//! `SchemaDriftReport` shape (field names, field order, list order), so callers can read either
//! implementation's report the same way.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::catalog::{Catalog, Column, Function, Index};
use super::expected::{Expected, ExpectedColumns, ExpectedIndex};
use super::text;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManagedIndex {
    pub name: String,
    pub table: String,
    pub keys: String,
    pub include: String,
    pub predicate: String,
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvalidIndex {
    #[serde(flatten)]
    pub index: ManagedIndex,
    /// A background migration that has not completed names this index: it may heal itself.
    pub building: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MismatchedIndex {
    #[serde(flatten)]
    pub index: ManagedIndex,
    pub expected_keys: String,
    pub actual_keys: String,
    pub expected_include: String,
    pub actual_include: String,
    pub expected_predicate: String,
    pub actual_predicate: String,
    pub actual_definition: String,
    /// Any of `keys`, `include`, `predicate`, in that order.
    pub differs: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtraIndex {
    pub name: String,
    pub table: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedFunction {
    pub name: String,
    /// Our body, layout ignored. Bodies are not compared (see `functions_drift`), so this is for
    /// reading and for recreating the function from `definition`.
    pub expected_body: String,
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MismatchedFunction {
    #[serde(flatten)]
    pub function: ManagedFunction,
    pub actual_body: String,
    pub actual_definition: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch<T> {
    pub column: String,
    pub expected: T,
    pub actual: T,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableColumnDrift {
    pub table: String,
    pub missing_columns: Vec<String>,
    pub unexpected_columns: Vec<String>,
    pub default_mismatches: Vec<Mismatch<String>>,
    pub type_mismatches: Vec<Mismatch<String>>,
    pub nullability_mismatches: Vec<Mismatch<bool>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintDrift {
    pub table: String,
    pub missing_constraints: Vec<String>,
    pub unexpected_constraints: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnumDrift {
    pub name: String,
    pub expected_values: Vec<String>,
    pub actual_values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaDriftReport {
    /// Nothing missing, invalid or different; `building` and `extra_indexes` do not count.
    pub ok: bool,
    pub missing_tables: Vec<String>,
    pub missing: Vec<ManagedIndex>,
    pub building: Vec<ManagedIndex>,
    pub invalid: Vec<InvalidIndex>,
    pub extra_indexes: Vec<ExtraIndex>,
    pub mismatched: Vec<MismatchedIndex>,
    pub missing_functions: Vec<ManagedFunction>,
    pub mismatched_functions: Vec<MismatchedFunction>,
    pub column_drift: Vec<TableColumnDrift>,
    pub constraint_drift: Vec<ConstraintDrift>,
    pub enum_drift: Option<EnumDrift>,
}

fn managed_index(expected: &ExpectedIndex) -> ManagedIndex {
    ManagedIndex {
        name: expected.name.clone(),
        table: expected.table.clone(),
        keys: text::index_keys(&expected.def),
        include: text::index_include(&expected.def),
        predicate: text::index_predicate(&expected.def),
        definition: text::display_index(&expected.def),
    }
}

/// How a present, valid index differs from what is expected, if it does. An index whose key list
/// cannot be read is left alone rather than reported.
fn index_mismatch(expected: ManagedIndex, live: &Index) -> Option<MismatchedIndex> {
    let actual_keys = text::index_keys(&live.def);
    if expected.keys.is_empty() || text::comparable_keys(&actual_keys).is_empty() {
        return None;
    }
    let actual_include = text::index_include(&live.def);
    let actual_predicate = text::index_predicate(&live.def);
    let mut differs = Vec::new();
    if text::comparable_keys(&expected.keys) != text::comparable_keys(&actual_keys) {
        differs.push("keys");
    }
    if text::comparable_include(&expected.include) != text::comparable_include(&actual_include) {
        differs.push("include");
    }
    if text::comparable_predicate(&expected.predicate)
        != text::comparable_predicate(&actual_predicate)
    {
        differs.push("predicate");
    }
    if differs.is_empty() {
        return None;
    }
    Some(MismatchedIndex {
        expected_keys: expected.keys.clone(),
        expected_include: expected.include.clone(),
        expected_predicate: expected.predicate.clone(),
        index: expected,
        actual_keys,
        actual_include,
        actual_predicate,
        actual_definition: text::display_index(&live.def),
        differs,
    })
}

fn managed_function(function: &Function) -> ManagedFunction {
    let def = function.def.as_deref().unwrap_or_default();
    ManagedFunction {
        name: function.name.clone(),
        expected_body: text::comparable_body(text::function_body(def)),
        definition: text::collapse_whitespace(def).trim().to_string(),
    }
}

/// What callers of a function depend on: its kind, arguments (names, types, defaults) and result.
fn same_signature(a: &Function, b: &Function) -> bool {
    a.kind == b.kind && a.arguments == b.arguments && a.result == b.result
}

/// Functions are held to their signatures, not their bodies: pg-boss's bodies and ours differ by
/// design, and either install must come out clean. A function that is gone is missing; one whose
/// name is there but with no overload of the expected signature is mismatched, shown against the
/// first such overload.
fn functions_drift(
    expected: &[Function],
    live: &[Function],
) -> (Vec<ManagedFunction>, Vec<MismatchedFunction>) {
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    for function in expected {
        let candidates: Vec<&Function> = live
            .iter()
            .filter(|f| f.name == function.name && f.def.is_some())
            .collect();
        let Some(first) = candidates.first() else {
            missing.push(managed_function(function));
            continue;
        };
        if !candidates.iter().any(|f| same_signature(function, f)) {
            let actual = managed_function(first);
            mismatched.push(MismatchedFunction {
                function: managed_function(function),
                actual_body: actual.expected_body,
                actual_definition: actual.definition,
            });
        }
    }
    (missing, mismatched)
}

fn columns_drift(expected: &Expected, live: &Catalog) -> Vec<TableColumnDrift> {
    expected
        .columns
        .iter()
        .filter(|table| live.has_table(&table.table)) // else reported as a missing table
        .filter_map(|table| table_columns_drift(table, live))
        .collect()
}

/// How the live columns of a table that exists differ from `table`'s, if they do.
fn table_columns_drift(table: &ExpectedColumns, live: &Catalog) -> Option<TableColumnDrift> {
    let live_columns: Vec<(String, &Column)> = live
        .columns
        .iter()
        .filter(|c| c.table == table.table)
        .map(|c| (c.column.to_lowercase(), c))
        .collect();
    let live_by_name: HashMap<&str, &Column> =
        live_columns.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    let expected_names: HashSet<&str> = table.columns.iter().map(|c| c.column.as_str()).collect();

    let mut entry = TableColumnDrift {
        table: table.table.clone(),
        missing_columns: Vec::new(),
        unexpected_columns: live_columns
            .iter()
            .filter(|(n, _)| !expected_names.contains(n.as_str()))
            .map(|(n, _)| n.clone())
            .collect(),
        default_mismatches: Vec::new(),
        type_mismatches: Vec::new(),
        nullability_mismatches: Vec::new(),
    };
    for column in &table.columns {
        match live_by_name.get(column.column.as_str()) {
            None => entry.missing_columns.push(column.column.clone()),
            Some(actual) if table.detailed => entry.note_mismatches(column, actual),
            Some(_) => {}
        }
    }
    entry.differs().then_some(entry)
}

impl TableColumnDrift {
    /// Records where a present column's default, type or nullability is not the expected one.
    fn note_mismatches(&mut self, expected: &Column, actual: &Column) {
        // A column expected without a default is not checked for one, as in pg-boss.
        if let Some(default) = &expected.default {
            let actual_default = actual.default.clone().unwrap_or_default();
            if text::comparable_default(default) != text::comparable_default(&actual_default) {
                self.default_mismatches.push(Mismatch {
                    column: expected.column.clone(),
                    expected: default.clone(),
                    actual: actual_default,
                });
            }
        }
        if expected.r#type != actual.r#type {
            self.type_mismatches.push(Mismatch {
                column: expected.column.clone(),
                expected: expected.r#type.clone(),
                actual: actual.r#type.clone(),
            });
        }
        if expected.not_null != actual.not_null {
            self.nullability_mismatches.push(Mismatch {
                column: expected.column.clone(),
                expected: expected.not_null,
                actual: actual.not_null,
            });
        }
    }

    fn differs(&self) -> bool {
        !(self.missing_columns.is_empty()
            && self.unexpected_columns.is_empty()
            && self.default_mismatches.is_empty()
            && self.type_mismatches.is_empty()
            && self.nullability_mismatches.is_empty())
    }
}

/// Constraints compare as sets of normalised definitions. Unlike pg-boss, a table that exists but
/// has lost every constraint (a dropped primary key on a one-constraint table) is reported too;
/// pg-boss passes over a table with no constraints at all.
fn constraints_drift(expected: &Expected, live: &Catalog) -> Vec<ConstraintDrift> {
    let mut drift = Vec::new();
    for table in &expected.constraints {
        if !live.has_table(&table.table) {
            continue;
        }
        let live_defs: Vec<&str> = live
            .constraints
            .iter()
            .filter(|c| c.table == table.table)
            .map(|c| c.def.as_str())
            .collect();
        let live_set: HashSet<String> = live_defs
            .iter()
            .map(|d| text::comparable_constraint(d))
            .collect();
        let expected_set: HashSet<String> = table
            .defs
            .iter()
            .map(|d| text::comparable_constraint(d))
            .collect();
        let missing: Vec<String> = table
            .defs
            .iter()
            .filter(|d| !live_set.contains(&text::comparable_constraint(d)))
            .cloned()
            .collect();
        let unexpected: Vec<String> = live_defs
            .iter()
            .filter(|d| !expected_set.contains(&text::comparable_constraint(d)))
            .map(|d| d.to_string())
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            drift.push(ConstraintDrift {
                table: table.table.clone(),
                missing_constraints: missing,
                unexpected_constraints: unexpected,
            });
        }
    }
    drift
}

/// The label order is part of the type: job states are compared with `<` and `>`.
fn enum_drift(expected: &[String], live: &[String]) -> Option<EnumDrift> {
    if live.is_empty() || expected == live {
        return None;
    }
    Some(EnumDrift {
        name: "job_state".into(),
        expected_values: expected.to_vec(),
        actual_values: live.to_vec(),
    })
}

/// The report for `live` against `expected`; `building` names the indexes an unfinished background
/// migration is (re)building.
pub fn compare(
    expected: &Expected,
    live: &Catalog,
    building: &HashSet<String>,
) -> SchemaDriftReport {
    let indexes = IndexDrift::of(expected, live, building);
    let (missing_functions, mismatched_functions) =
        functions_drift(&expected.functions, &live.functions);
    let mut report = SchemaDriftReport {
        ok: false,
        missing_tables: missing_tables(expected, live),
        missing: indexes.missing,
        building: indexes.building,
        invalid: indexes.invalid,
        extra_indexes: extra_indexes(expected, live),
        mismatched: indexes.mismatched,
        missing_functions,
        mismatched_functions,
        column_drift: columns_drift(expected, live),
        constraint_drift: constraints_drift(expected, live),
        enum_drift: enum_drift(&expected.job_states, &live.job_states),
    };
    report.ok = report.nothing_wrong();
    report
}

impl SchemaDriftReport {
    /// What `ok` says: `building` and `extra_indexes` do not count.
    fn nothing_wrong(&self) -> bool {
        self.missing_tables.is_empty()
            && self.missing.is_empty()
            && self.invalid.is_empty()
            && self.mismatched.is_empty()
            && self.missing_functions.is_empty()
            && self.mismatched_functions.is_empty()
            && self.column_drift.is_empty()
            && self.constraint_drift.is_empty()
            && self.enum_drift.is_none()
    }
}

fn missing_tables(expected: &Expected, live: &Catalog) -> Vec<String> {
    expected
        .tables
        .iter()
        .filter(|t| !live.has_table(t))
        .cloned()
        .collect()
}

/// What became of each expected index.
struct IndexDrift {
    missing: Vec<ManagedIndex>,
    /// Missing, but an unfinished background migration is building it.
    building: Vec<ManagedIndex>,
    invalid: Vec<InvalidIndex>,
    mismatched: Vec<MismatchedIndex>,
}

impl IndexDrift {
    fn of(expected: &Expected, live: &Catalog, building: &HashSet<String>) -> IndexDrift {
        let live_indexes: HashMap<&str, &Index> =
            live.indexes.iter().map(|i| (i.name.as_str(), i)).collect();
        let mut drift = IndexDrift {
            missing: Vec::new(),
            building: Vec::new(),
            invalid: Vec::new(),
            mismatched: Vec::new(),
        };
        for index in &expected.indexes {
            let managed = managed_index(index);
            match live_indexes.get(index.name.as_str()) {
                None if building.contains(&index.name) => drift.building.push(managed),
                None => drift.missing.push(managed),
                Some(found) if !found.valid => drift.invalid.push(InvalidIndex {
                    index: managed,
                    building: building.contains(&index.name),
                }),
                Some(found) => drift.mismatched.extend(index_mismatch(managed, found)),
            }
        }
        drift
    }
}

/// The live indexes on managed tables that nothing expects (and no constraint owns).
fn extra_indexes(expected: &Expected, live: &Catalog) -> Vec<ExtraIndex> {
    let managed_tables: HashSet<&str> = expected.tables.iter().map(String::as_str).collect();
    let expected_names: HashSet<&str> = expected.indexes.iter().map(|i| i.name.as_str()).collect();
    live.indexes
        .iter()
        .filter(|i| {
            managed_tables.contains(i.table.as_str())
                && !expected_names.contains(i.name.as_str())
                && !i.constraint_backed
        })
        .map(|i| ExtraIndex {
            name: i.name.clone(),
            table: i.table.clone(),
        })
        .collect()
}
