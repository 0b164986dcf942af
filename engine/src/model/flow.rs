//! What `flow()`, `getDependencies()` and `getDependents()` are asked, checked with pg-boss's rules,
//! in pg-boss's order and with its messages: the graph of a flow (refs, names, `dependsOn`, cycles,
//! each job's send options) and the page of edges a read wants.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::names::{assert_object_name, assert_queue_name, is_uuid_input};
use super::send::normalize_send_options;
use crate::config::js::{is_integer, truthy, Options};
use crate::error::ensure;
use crate::error::{Error, Result};

/// One job of a checked flow.
#[derive(Debug, Clone)]
pub struct FlowJob {
    /// `ref`: the name `dependsOn` knows the job by within the flow.
    pub reference: String,
    /// `name`: the job's queue.
    pub name: String,
    /// `data`.
    pub data: Value,
    /// The id the caller chose (`options.id`), as the text the insert casts to a uuid.
    pub id: Option<String>,
    /// The fields of the insert's recordset that the job's send options fill, validated and
    /// normalised as `send()`'s are.
    pub fields: Map<String, Value>,
    /// Its parents' refs, without repeats, in the order first named.
    pub depends_on: Vec<String>,
}

fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// What JavaScript's `x && x.length > 0` says of a `dependsOn` value.
fn lists_something(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Array(items)) => !items.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        _ => false,
    }
}

/// A job's id as the text the statements take: a string as it is, anything else as its JSON text
/// (which is what PostgreSQL would have read from the JSON); null is no id.
pub fn id_text(id: &Value) -> Option<String> {
    match id {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Checks a flow the way pg-boss does, in pg-boss's order (so the first problem reported is the
/// same): the list, each job's ref and name, at least one dependency, each `dependsOn`, cycles,
/// and then each job's send options.
pub fn check_flow(jobs: &Value) -> Result<Vec<FlowJob>> {
    let list = jobs
        .as_array()
        .ok_or_else(|| Error::invalid("flow requires an array of jobs"))?;
    ensure!(list.len() >= 2, "flow requires at least 2 jobs");
    let position = check_refs_and_names(list)?;
    ensure!(
        list.iter().any(|j| lists_something(j.get("dependsOn"))),
        "flow requires at least one job with dependsOn"
    );
    let Dependencies { children, parents } = read_dependencies(list, &position)?;
    if let Some(cycle) = find_cycle(&children) {
        let refs: Vec<&str> = cycle.iter().map(|&i| reference_of(&list[i])).collect();
        return Err(Error::invalid(format!(
            "flow contains a dependency cycle: {}",
            refs.join(" -> ")
        )));
    }
    list.iter()
        .zip(parents)
        .map(|(job, depends_on)| checked_job(job, depends_on))
        .collect()
}

fn reference_of(job: &Value) -> &str {
    job["ref"].as_str().unwrap_or_default()
}

/// Each job's ref (present, unique) and name; answers where each ref sits in the list.
fn check_refs_and_names(list: &[Value]) -> Result<HashMap<&str, usize>> {
    let mut position: HashMap<&str, usize> = HashMap::new();
    for (index, job) in list.iter().enumerate() {
        let reference = non_empty_str(job.get("ref"))
            .ok_or_else(|| Error::invalid("each flow job must have a non-empty ref"))?;
        ensure!(
            !position.contains_key(reference),
            "duplicate ref: \"{reference}\""
        );
        position.insert(reference, index);
        let name = non_empty_str(job.get("name"))
            .ok_or_else(|| Error::invalid("each flow job must have a non-empty name"))?;
        assert_object_name(name, "Name")?;
    }
    Ok(position)
}

/// Every job's `dependsOn`, read both ways, by position in the list.
struct Dependencies {
    /// The jobs that name each job as a parent: repeats kept, in input order (the cycle walk
    /// follows them).
    children: Vec<Vec<usize>>,
    /// Each job's parents' refs: repeats dropped (a parent counts once).
    parents: Vec<Vec<String>>,
}

fn read_dependencies(list: &[Value], position: &HashMap<&str, usize>) -> Result<Dependencies> {
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); list.len()];
    let mut parents: Vec<Vec<String>> = vec![Vec::new(); list.len()];
    for (index, job) in list.iter().enumerate() {
        let reference = reference_of(job);
        let depends_on = job.get("dependsOn");
        if !truthy(depends_on) {
            continue;
        }
        let entries = depends_on.and_then(Value::as_array).ok_or_else(|| {
            Error::invalid(format!(
                "dependsOn for ref \"{reference}\" must be an array"
            ))
        })?;
        for entry in entries {
            let parent = non_empty_str(Some(entry))
                .ok_or_else(|| Error::invalid("dependsOn entries must be non-empty strings"))?;
            ensure!(
                parent != reference,
                "job \"{reference}\" cannot depend on itself"
            );
            let parent_index = *position.get(parent).ok_or_else(|| {
                Error::invalid(format!("dependsOn ref \"{parent}\" not found in flow"))
            })?;
            children[parent_index].push(index);
            if !parents[index].iter().any(|p| p == parent) {
                parents[index].push(parent.to_string());
            }
        }
    }
    Ok(Dependencies { children, parents })
}

/// One job whose graph checked out: its send options now.
fn checked_job(job: &Value, depends_on: Vec<String>) -> Result<FlowJob> {
    let mut options = match job.get("options") {
        Some(Value::Object(o)) => o.clone(),
        // JavaScript's `options || {}`, and an array spreads to no send option at all.
        None | Some(Value::Null | Value::Array(_)) => Options::new(),
        Some(v) if !truthy(Some(v)) => Options::new(),
        Some(_) => return Err(Error::invalid("options should be an object")),
    };
    normalize_send_options(&mut options)?;
    Ok(FlowJob {
        reference: reference_of(job).to_string(),
        name: job["name"].as_str().unwrap_or_default().to_string(),
        data: job.get("data").cloned().unwrap_or(Value::Null),
        id: options.get("id").and_then(id_text),
        fields: insert_fields(&options),
        depends_on,
    })
}

/// The send options a flow job's row takes, as pg-boss's flow insert reads them (no throttle
/// offset or next-slot retry: a flow is inserted once, as written).
const INSERT_OPTIONS: [&str; 13] = [
    "priority",
    "startAfter",
    "singletonKey",
    "singletonSeconds",
    "expireInSeconds",
    "deleteAfterSeconds",
    "retentionSeconds",
    "retryLimit",
    "retryDelay",
    "retryBackoff",
    "retryDelayMax",
    "heartbeatSeconds",
    "deadLetter",
];

fn insert_fields(options: &Options) -> Map<String, Value> {
    let mut fields = Map::new();
    for key in INSERT_OPTIONS {
        if let Some(v) = options.get(key).filter(|v| !v.is_null()) {
            fields.insert(key.into(), v.clone());
        }
    }
    if let Some(group) = options.get("group").and_then(Value::as_object) {
        let part = |key: &str| group.get(key).cloned().unwrap_or(Value::Null);
        fields.insert("groupId".into(), part("id"));
        fields.insert("groupTier".into(), part("tier"));
    }
    // The flow's trace context, which the JS entry writes on every job (and never one a caller gave).
    if let Some(context) = options.get("__traceContext").filter(|v| v.is_object()) {
        fields.insert("__traceContext".into(), context.clone());
    }
    fields
}

/// The first cycle a depth-first walk meets, visiting the jobs and their children in input order
/// (so the cycle named is the one pg-boss names), closed by its first job again.
fn find_cycle(children: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; children.len()];
    for start in 0..children.len() {
        if mark[start] != Mark::New {
            continue;
        }
        let mut path = vec![start];
        let mut next_child = vec![0usize];
        mark[start] = Mark::OnPath;
        while let Some(&node) = path.last() {
            let cursor = next_child
                .last_mut()
                .expect("one cursor per node on the path");
            match children[node].get(*cursor) {
                Some(&child) => {
                    *cursor += 1;
                    match mark[child] {
                        Mark::OnPath => {
                            let from = path.iter().position(|&n| n == child).expect("on the path");
                            let mut cycle = path[from..].to_vec();
                            cycle.push(child);
                            return Some(cycle);
                        }
                        Mark::Done => {}
                        Mark::New => {
                            mark[child] = Mark::OnPath;
                            path.push(child);
                            next_child.push(0);
                        }
                    }
                }
                None => {
                    mark[node] = Mark::Done;
                    path.pop();
                    next_child.pop();
                }
            }
        }
    }
    None
}

/// Which end of the edges a read starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The parents of a job (`getDependencies`).
    Parents,
    /// The children of a job (`getDependents`).
    Children,
}

impl Direction {
    /// The method its messages name.
    pub fn method(self) -> &'static str {
        match self {
            Direction::Parents => "getDependencies",
            Direction::Children => "getDependents",
        }
    }
}

const LIST_LIMIT_DEFAULT: i64 = 1000;
const LIST_LIMIT_MAX: i64 = 100_000;

/// `getDependencies(name, id, { limit, after })` or `getDependents(...)`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyQuery {
    /// Parents or children.
    pub direction: Direction,
    /// The job's queue.
    pub name: String,
    /// Not checked: a malformed id fails as the statement's uuid cast fails, as in pg-boss.
    pub id: Option<String>,
    /// `limit`, default 1000 (1 to 100000).
    pub limit: i64,
    /// Where the page starts: after this `(name, id)`, the previous page's last row.
    pub after: Option<(String, String)>,
}

impl DependencyQuery {
    /// `getDependencies(name, id, options)` (or `getDependents`), checked as pg-boss checks it.
    pub fn from_json(
        direction: Direction,
        name: &Value,
        id: &Value,
        options: &Options,
    ) -> Result<DependencyQuery> {
        let method = direction.method();
        let name = assert_queue_name(name)?.to_string();
        let limit = page_limit(options, method)?;
        let after = page_after(options, method)?;
        Ok(DependencyQuery {
            direction,
            name,
            id: id_text(id),
            limit,
            after,
        })
    }
}

fn page_limit(options: &Options, method: &str) -> Result<i64> {
    match options.get("limit") {
        None => Ok(LIST_LIMIT_DEFAULT),
        Some(v) => v
            .as_i64()
            .filter(|l| is_integer(v) && (1..=LIST_LIMIT_MAX).contains(l))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{method}: limit must be an integer between 1 and {LIST_LIMIT_MAX}"
                ))
            }),
    }
}

fn page_after(options: &Options, method: &str) -> Result<Option<(String, String)>> {
    let Some(after) = options.get("after") else {
        return Ok(None);
    };
    let name = after.get("name").and_then(Value::as_str);
    let id = after.get("id").and_then(Value::as_str);
    let (Some(name), Some(id)) = (name, id) else {
        return Err(Error::invalid(format!(
            "{method}: after must be an object with string name and id"
        )));
    };
    ensure!(is_uuid_input(id), "{method}: after.id must be a uuid");
    Ok(Some((name.to_string(), id.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(jobs: Value) -> String {
        check_flow(&jobs).unwrap_err().message
    }

    #[test]
    fn a_job_stores_the_trace_context_its_options_carry_when_it_is_an_object() {
        let context = json!({ "traceparent": "00-a-b-01" });
        let jobs = check_flow(&json!([
            { "ref": "a", "name": "q", "options": { "__traceContext": context } },
            { "ref": "b", "name": "q", "dependsOn": ["a"], "options": { "__traceContext": "text" } }
        ]))
        .unwrap();
        assert_eq!(jobs[0].fields.get("__traceContext"), Some(&context));
        assert_eq!(jobs[1].fields.get("__traceContext"), None);
    }

    #[test]
    fn the_graph_is_refused_with_pg_boss_messages_in_pg_boss_order() {
        assert_eq!(message(json!({})), "flow requires an array of jobs");
        assert_eq!(
            message(json!([{ "ref": "a", "name": "q" }])),
            "flow requires at least 2 jobs"
        );
        assert_eq!(
            message(json!([{ "ref": "", "name": "q" }, { "ref": "b", "name": "q" }])),
            "each flow job must have a non-empty ref"
        );
        assert_eq!(
            message(json!([null, { "ref": "b", "name": "q" }])),
            "each flow job must have a non-empty ref"
        );
        assert_eq!(
            message(json!([{ "ref": "a", "name": "q" }, { "ref": "a", "name": "q" }])),
            "duplicate ref: \"a\""
        );
        assert_eq!(
            message(json!([{ "ref": "a" }, { "ref": "b", "name": "q" }])),
            "each flow job must have a non-empty name"
        );
        assert_eq!(
            message(json!([{ "ref": "a", "name": "q q" }, { "ref": "b", "name": "q" }])),
            "Name can only contain alphanumeric characters, underscores, hyphens, periods, or forward slashes"
        );
        assert_eq!(
            message(
                json!([{ "ref": "a", "name": "q" }, { "ref": "b", "name": "q", "dependsOn": [] }])
            ),
            "flow requires at least one job with dependsOn"
        );
        assert_eq!(
            message(
                json!([{ "ref": "a", "name": "q" }, { "ref": "b", "name": "q", "dependsOn": "a" }])
            ),
            "dependsOn for ref \"b\" must be an array"
        );
        assert_eq!(
            message(
                json!([{ "ref": "a", "name": "q" }, { "ref": "b", "name": "q", "dependsOn": ["a", 1] }])
            ),
            "dependsOn entries must be non-empty strings"
        );
        assert_eq!(
            message(
                json!([{ "ref": "a", "name": "q" }, { "ref": "b", "name": "q", "dependsOn": ["b"] }])
            ),
            "job \"b\" cannot depend on itself"
        );
        assert_eq!(
            message(
                json!([{ "ref": "a", "name": "q" }, { "ref": "b", "name": "q", "dependsOn": ["c"] }])
            ),
            "dependsOn ref \"c\" not found in flow"
        );
        assert_eq!(
            message(
                json!([{ "ref": "a", "name": "q", "options": "x" }, { "ref": "b", "name": "q", "dependsOn": ["a"] }])
            ),
            "options should be an object"
        );
        assert_eq!(
            message(
                json!([{ "ref": "a", "name": "q", "options": { "priority": 1.5 } }, { "ref": "b", "name": "q", "dependsOn": ["a"] }])
            ),
            "priority must be an integer"
        );
    }

    #[test]
    fn a_cycle_is_named_as_a_depth_first_walk_in_input_order_meets_it() {
        let three = json!([
            { "ref": "x", "name": "q", "dependsOn": ["y"] },
            { "ref": "y", "name": "q", "dependsOn": ["w"] },
            { "ref": "w", "name": "q", "dependsOn": ["x"] },
        ]);
        assert_eq!(
            message(three),
            "flow contains a dependency cycle: x -> w -> y -> x"
        );
        let behind_a_root = json!([
            { "ref": "q", "name": "q" },
            { "ref": "x", "name": "q", "dependsOn": ["q", "y"] },
            { "ref": "y", "name": "q", "dependsOn": ["x"] },
        ]);
        assert_eq!(
            message(behind_a_root),
            "flow contains a dependency cycle: x -> y -> x"
        );
        // A diamond meets a finished job twice, which is no cycle.
        let diamond = json!([
            { "ref": "top", "name": "q" },
            { "ref": "left", "name": "q", "dependsOn": ["top"] },
            { "ref": "right", "name": "q", "dependsOn": ["top"] },
            { "ref": "bottom", "name": "q", "dependsOn": ["left", "right"] },
        ]);
        assert_eq!(check_flow(&diamond).unwrap().len(), 4);
    }

    #[test]
    fn repeated_parents_count_once_and_options_become_insert_fields() {
        let jobs = check_flow(&json!([
            { "ref": "a", "name": "q", "options": { "startAfter": 30, "id": "x", "group": { "id": "g" } } },
            { "ref": "b", "name": "q", "dependsOn": ["a", "a"], "options": { "singletonOffset": 5, "singletonKey": null } },
            { "ref": "c", "name": "r", "dependsOn": ["b", "a"], "data": { "n": 1 }, "options": null },
        ]))
        .unwrap();
        assert_eq!(jobs[1].depends_on, vec!["a"]);
        assert_eq!(jobs[2].depends_on, vec!["b", "a"]);
        assert_eq!(jobs[2].data, json!({ "n": 1 }));
        assert_eq!(jobs[0].id.as_deref(), Some("x"));
        assert_eq!(jobs[1].id, None);
        assert_eq!(
            Value::Object(jobs[0].fields.clone()),
            json!({ "startAfter": "30", "groupId": "g", "groupTier": null })
        );
        // Options a flow's insert does not take, and null ones, are left out.
        assert!(jobs[1].fields.is_empty());
    }

    fn query(direction: Direction, id: Value, options: Value) -> Result<DependencyQuery> {
        DependencyQuery::from_json(direction, &json!("q"), &id, options.as_object().unwrap())
    }

    #[test]
    fn a_page_of_edges_is_read_with_pg_boss_defaults_and_messages() {
        let plain = query(Direction::Parents, json!("an-id"), json!({})).unwrap();
        assert_eq!(
            (plain.limit, plain.after, plain.id),
            (1000, None, Some("an-id".into()))
        );
        assert_eq!(
            query(Direction::Children, Value::Null, json!({}))
                .unwrap()
                .id,
            None
        );
        let id = "0b6c2a3e-1f4d-4c2b-9a8e-7d6f5e4c3b2a";
        let paged = query(
            Direction::Parents,
            json!(5),
            json!({ "limit": 2, "after": { "name": "a", "id": id } }),
        )
        .unwrap();
        assert_eq!(paged.limit, 2);
        assert_eq!(paged.after, Some(("a".into(), id.into())));
        assert_eq!(paged.id.as_deref(), Some("5"));

        let refused =
            |direction, options: Value| query(direction, json!("x"), options).unwrap_err().message;
        for limit in [
            json!(0),
            json!(1.5),
            json!(100_001),
            json!("2"),
            Value::Null,
        ] {
            assert_eq!(
                refused(Direction::Parents, json!({ "limit": limit })),
                "getDependencies: limit must be an integer between 1 and 100000"
            );
        }
        assert_eq!(
            refused(Direction::Children, json!({ "after": { "name": "a" } })),
            "getDependents: after must be an object with string name and id"
        );
        assert_eq!(
            refused(
                Direction::Children,
                json!({ "after": { "name": "a", "id": "x" } })
            ),
            "getDependents: after.id must be a uuid"
        );
        let unnamed = DependencyQuery::from_json(
            Direction::Parents,
            &Value::Null,
            &json!("x"),
            &Options::new(),
        );
        assert_eq!(unnamed.unwrap_err().message, "Name is required");
    }
}
