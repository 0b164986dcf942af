//! The split expectations and report against the code they were split from, on catalogs that
//! drift in every way the report knows.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::catalog::Catalog;
use super::expected::{before_split as expected_before, Expected, QueueTable};
use super::report::{before_split as report_before, compare};

fn table(name: &str, parent: Option<&str>) -> Value {
    json!({ "name": name, "parent": parent })
}

fn column(table: &str, name: &str, ty: &str, not_null: bool, default: Option<&str>) -> Value {
    json!({ "table": table, "column": name, "type": ty, "notNull": not_null, "default": default })
}

fn index(name: &str, table: &str, def: &str, valid: bool, constraint_backed: bool) -> Value {
    json!({ "name": name, "table": table, "def": def, "valid": valid, "constraintBacked": constraint_backed })
}

fn function(name: &str, arguments: &str, def: Option<&str>) -> Value {
    json!({ "name": name, "kind": "f", "arguments": arguments, "result": "integer", "def": def })
}

fn scratch() -> Catalog {
    let s = "pgboss_drift_0123";
    serde_json::from_value(json!({
        "tables": [
            table("queue", None), table("job", None), table("job_common", Some("job")),
            table("jtmpl", Some("job")), table("queue_stats", None),
            table("queue_stats_20260101", Some("queue_stats")), table("version", None),
            table("bam", None), table("job_dependency", None),
        ],
        "columns": [
            column("queue", "policy", "text", false, Some("'standard'::text")),
            column("queue", "name", "text", true, None),
            column("queue", "warning_queued", "integer", true, Some("0")),
            column("queue", "state", &format!("{s}.job_state"), false, None),
            column("job", "state", &format!("{s}.job_state"), true, Some(&format!("'created'::{s}.job_state"))),
            column("job", "id", "uuid", true, Some("gen_random_uuid()")),
            column("job", "name", "text", true, None),
            column("bam", "id", "uuid", true, None),
        ],
        "indexes": [
            index("job_common_i2", "job_common", &format!("CREATE INDEX job_common_i2 ON {s}.job_common USING btree (name, id)"), true, false),
            index("job_common_i1", "job_common", &format!("CREATE INDEX job_common_i1 ON {s}.job_common USING btree (name) WHERE (state < 'active'::{s}.job_state)"), true, false),
            index("jtmpl_i1", "jtmpl", &format!("CREATE INDEX jtmpl_i1 ON {s}.jtmpl USING btree (name) INCLUDE (id)"), true, false),
            index("jtmpl_pkey", "jtmpl", &format!("CREATE UNIQUE INDEX jtmpl_pkey ON {s}.jtmpl USING btree (id)"), true, true),
            index("queue_pkey", "queue", &format!("CREATE UNIQUE INDEX queue_pkey ON {s}.queue USING btree (name)"), true, true),
            index("queue_i1", "queue", &format!("CREATE INDEX queue_i1 ON {s}.queue USING btree (policy)"), true, false),
            index("bam_i1", "bam", &format!("CREATE INDEX bam_i1 ON {s}.bam USING btree (id)"), true, false),
        ],
        "constraints": [
            { "table": "queue", "def": "PRIMARY KEY (name)" },
            { "table": "queue", "def": format!("CHECK (policy <> ''::text) -- {s}") },
            { "table": "job_dependency", "def": format!("FOREIGN KEY (name) REFERENCES {s}.queue(name)") },
        ],
        "functions": [
            function("job_now", "", Some(&format!("CREATE FUNCTION {s}.job_now() RETURNS integer AS $$ SELECT 1 $$"))),
            function("create_queue", "queue_name text, options json", Some(&format!("CREATE FUNCTION {s}.create_queue(queue_name text, options json) AS $f$ BEGIN END; $f$"))),
            function("create_queue", &format!("x {s}.job_state"), Some("CREATE FUNCTION x() AS $$ $$")),
            function("count_it", "integer", None),
        ],
        "jobStates": ["created", "retry", "active", "completed", "cancelled", "failed"],
    }))
    .unwrap()
}

/// pgboss with every kind of drift, and a queue `q1` in table `j1`.
fn live() -> Catalog {
    let s = "pgboss";
    serde_json::from_value(json!({
        "tables": [
            table("queue", None), table("job", None), table("job_common", Some("job")),
            table("j1", Some("job")), table("queue_stats", None), table("version", None),
            table("job_dependency", None),
        ],
        "columns": [
            column("queue", "policy", "text", false, Some("'short'::text")),
            column("queue", "Name", "character varying", false, None),
            column("queue", "extra", "text", false, None),
            column("job", "state", &format!("{s}.job_state"), true, Some(&format!("'created'::{s}.job_state"))),
            column("job", "id", "uuid", true, Some("gen_random_uuid()")),
            column("job_common", "id", "uuid", true, None),
            column("job_common", "name", "integer", false, None),
            column("j1", "surprise", "uuid", true, None),
        ],
        "indexes": [
            index("job_common_i1", "job_common", &format!("CREATE INDEX job_common_i1 ON {s}.job_common USING btree (name, id) WHERE (state > 'active'::{s}.job_state)"), true, false),
            index("j1_i1", "j1", &format!("CREATE INDEX j1_i1 ON {s}.j1 USING btree (name) INCLUDE (id)"), false, false),
            index("queue_i1", "queue", &format!("CREATE INDEX queue_i1 ON {s}.queue USING btree (policy)"), true, false),
            index("queue_i9", "queue", &format!("CREATE INDEX queue_i9 ON {s}.queue USING btree (name)"), true, false),
            index("queue_pkey", "queue", &format!("CREATE UNIQUE INDEX queue_pkey ON {s}.queue USING btree (name)"), true, true),
            index("other_i1", "other", &format!("CREATE INDEX other_i1 ON {s}.other USING btree (x)"), true, false),
        ],
        "constraints": [
            { "table": "queue", "def": "PRIMARY KEY (name)" },
            { "table": "queue", "def": "UNIQUE (policy)" },
        ],
        "functions": [
            function("create_queue", "queue_name text", Some(&format!("CREATE FUNCTION {s}.create_queue(queue_name text) AS $f$ BEGIN END; $f$"))),
        ],
        "jobStates": ["created", "active", "retry", "completed", "cancelled", "failed"],
    }))
    .unwrap()
}

fn expectations(scratch: &Catalog, split: bool) -> Expected {
    let templates = HashMap::from([
        ("standard".to_string(), "jtmpl".to_string()),
        ("short".to_string(), "jshort".to_string()),
    ]);
    let queues = [
        QueueTable {
            queue: "q1".into(),
            policy: "standard".into(),
            table: "j1".into(),
        },
        QueueTable {
            queue: "q2".into(),
            policy: "stately".into(),
            table: "j2".into(),
        },
    ];
    let build = if split {
        Expected::new
    } else {
        expected_before::new
    };
    build(scratch, "pgboss_drift_0123", "pgboss", &templates, &queues)
}

#[test]
fn the_split_expectations_are_what_they_were() {
    let scratch = scratch();
    let split = expectations(&scratch, true);
    assert_eq!(
        format!("{split:#?}"),
        format!("{:#?}", expectations(&scratch, false))
    );
    assert!(split.tables.contains(&"j1".to_string()) && !split.constraints.is_empty());
}

#[test]
fn the_split_report_is_what_it_was() {
    let expected = expectations(&scratch(), true);
    for building in [
        HashSet::new(),
        HashSet::from(["job_common_i2".to_string(), "j1_i1".to_string()]),
    ] {
        let report = compare(&expected, &live(), &building);
        assert_eq!(
            report,
            report_before::compare(&expected, &live(), &building)
        );
        assert!(!report.ok && !report.column_drift.is_empty() && !report.mismatched.is_empty());
    }
    // The scratch schema itself, renamed: only the queue without a template drifts.
    let same: Catalog = serde_json::from_value(scratch_as_live()).unwrap();
    let report = compare(&expected, &same, &HashSet::new());
    assert_eq!(
        report,
        report_before::compare(&expected, &same, &HashSet::new())
    );
    assert_eq!(report.missing_tables, ["j2"]);
}

/// The scratch catalog restated as pgboss with `jtmpl` as `j1`.
fn scratch_as_live() -> Value {
    let text = serde_json::to_string(&scratch_json()).unwrap();
    serde_json::from_str(
        &text
            .replace("pgboss_drift_0123", "pgboss")
            .replace("jtmpl", "j1"),
    )
    .unwrap()
}

fn scratch_json() -> Value {
    // Catalog is not Serialize: the fixture's JSON, rebuilt from its parts.
    let c = scratch();
    json!({
        "tables": c.tables.iter().map(|t| table(&t.name, t.parent.as_deref())).collect::<Vec<_>>(),
        "columns": c.columns.iter().map(|x| column(&x.table, &x.column, &x.r#type, x.not_null, x.default.as_deref())).collect::<Vec<_>>(),
        "indexes": c.indexes.iter().map(|i| index(&i.name, &i.table, &i.def, i.valid, i.constraint_backed)).collect::<Vec<_>>(),
        "constraints": c.constraints.iter().map(|k| json!({ "table": k.table, "def": k.def })).collect::<Vec<_>>(),
        "functions": c.functions.iter().map(|f| json!({ "name": f.name, "kind": f.kind, "arguments": f.arguments, "result": f.result, "def": f.def })).collect::<Vec<_>>(),
        "jobStates": c.job_states,
    })
}
