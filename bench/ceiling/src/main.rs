//! The ceiling: what PostgreSQL does on this machine with the statements a bench workload sends,
//! with no Node and no queue engine in between. The statements are the engine's own renderings
//! (`JobStatement::render`, the text `StatementCache` keeps per queue), bound with the values the
//! engine binds, on as many connections as the workload uses, each lane holding its own
//! connection throughout (no pool acquire per statement). Prints one JSON object.
//!
//! The schema and its queues are made beforehand (bench/run.mjs does it with a child of ours), so
//! the queue rows, partitions and indexes are the ones a real run has.
//!
//! Modes:
//! - `insert`: `--jobs` jobs in insert statements of `--chunk` jobs each, `--connections` lanes.
//! - `claim-complete`: `--jobs` jobs per queue pre-loaded (not timed), then claim `--batch` and
//!   complete them (`--fenced`: the worker's attempt-fenced complete) until every queue is empty.
//!   `--combined` (with `--fenced`): as a bursting worker does, each lane completes its last
//!   batch in the statement that claims its next (`JobStatement::CompleteAndClaim`).
//! - `send-work`: the pre-load is timed too, one job per insert statement, as `send()` does.
//! - `backlog`: `claim-complete` on an empty table (after `--warmup` jobs, untimed), then
//!   `--backlog` more jobs loaded with `INSERT ... SELECT generate_series` and `--jobs` of them
//!   claimed and completed again.
//! - `insert-shapes`: the insert statement's two ways of taking its jobs, compared on the same
//!   jobs: the engine's recordset (`json_to_recordset` over one JSON text) and `unnest` over one
//!   typed array per column. `--rounds` runs of `--jobs` jobs in chunks of `--chunk` on
//!   `--connections` lanes each, alternating which shape goes first, the queue's table emptied
//!   before every run; `--returning` uses the send form (ids answered).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use pg_boss_engine::config::BackendProfile;
use pg_boss_engine::model::fetch::FetchRequest;
use pg_boss_engine::model::queue::QueueInfo;
use pg_boss_engine::sql::fetch::ClaimShape;
use pg_boss_engine::sql::insert::InsertShape;
use pg_boss_engine::sql::job_statements::JobStatement;
use serde_json::{json, Value};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

#[derive(Debug, Clone)]
struct Args {
    url: String,
    schema: String,
    mode: String,
    queue: String,
    queues: usize,
    jobs: usize,
    connections: usize,
    batch: i64,
    chunk: usize,
    fenced: bool,
    combined: bool,
    payload_bytes: usize,
    backlog: usize,
    warmup: usize,
    rounds: usize,
    returning: bool,
}

const USAGE: &str =
    "usage: pg-boss-ceiling --schema S --mode insert|claim-complete|send-work|backlog|insert-shapes \
[--url URL] [--queue NAME] [--queues K] [--jobs N] [--connections C] [--batch B] [--chunk K] \
[--fenced [--combined]] [--payload-bytes P] [--backlog N] [--warmup N] [--rounds R] [--returning]";

fn parse_args() -> Res<Args> {
    let mut args = Args {
        url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        schema: String::new(),
        mode: String::new(),
        queue: "bench".into(),
        queues: 1,
        jobs: 10_000,
        connections: 1,
        batch: 100,
        chunk: 1000,
        fenced: false,
        combined: false,
        payload_bytes: 0,
        backlog: 0,
        warmup: 0,
        rounds: 5,
        returning: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--fenced" {
            args.fenced = true;
            continue;
        }
        if flag == "--combined" {
            args.combined = true;
            continue;
        }
        if flag == "--returning" {
            args.returning = true;
            continue;
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| -> Res<usize> {
            v.parse::<usize>()
                .map_err(|_| format!("{flag} must be a non-negative integer").into())
        };
        match flag.as_str() {
            "--url" => args.url = value,
            "--schema" => args.schema = value,
            "--mode" => args.mode = value,
            "--queue" => args.queue = value,
            "--queues" => args.queues = num(&value)?.max(1),
            "--jobs" => args.jobs = num(&value)?,
            "--connections" => args.connections = num(&value)?.max(1),
            "--batch" => args.batch = num(&value)?.max(1) as i64,
            "--chunk" => args.chunk = num(&value)?.max(1),
            "--payload-bytes" => args.payload_bytes = num(&value)?,
            "--backlog" => args.backlog = num(&value)?,
            "--warmup" => args.warmup = num(&value)?,
            "--rounds" => args.rounds = num(&value)?.max(1),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}").into()),
        }
    }
    if args.schema.is_empty() || args.mode.is_empty() {
        return Err(USAGE.into());
    }
    Ok(args)
}

/// The queue names: `--queue` alone, or `<queue>-0 .. <queue>-(K-1)` with `--queues K` above 1
/// (the names bench/workloads.mjs gives them).
fn queue_names(args: &Args) -> Vec<String> {
    if args.queues <= 1 {
        vec![args.queue.clone()]
    } else {
        (0..args.queues)
            .map(|i| format!("{}-{i}", args.queue))
            .collect()
    }
}

/// One queue with the statements the engine renders for it.
struct Queue {
    name: String,
    insert: String,
    send: String,
    claim: String,
    complete_and_claim: String,
    complete: String,
}

async fn load_queue(pool: &PgPool, args: &Args, name: &str) -> Res<Queue> {
    let schema = &args.schema;
    // The same read the engine does for a queue's cache entry.
    let row = sqlx::query(&format!(
        "SELECT name, table_name, policy, partition, notify, ready_count::int8 FROM {schema}.queue WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| format!("queue {name} does not exist in schema {schema}"))?;
    let info = QueueInfo {
        name: row.try_get(0)?,
        table: row.try_get(1)?,
        policy: row.try_get(2)?,
        partition: row.try_get(3)?,
        notify: row.try_get(4)?,
        ready_count: row.try_get(5)?,
    };
    let claim_shape = ClaimShape::of(&FetchRequest {
        batch_size: args.batch,
        ..FetchRequest::default()
    });
    // The stock profile: the ceiling is measured on PostgreSQL.
    let stock = BackendProfile::default();
    let insert_shape = |returning| InsertShape {
        returning,
        by_key: false,
        slots: false,
    };
    Ok(Queue {
        name: name.to_string(),
        // insert(): no ids asked for; send(): the new ids answered.
        insert: JobStatement::Insert(insert_shape(false)).render(schema, &stock, &info),
        send: JobStatement::Insert(insert_shape(true)).render(schema, &stock, &info),
        claim: JobStatement::Claim(claim_shape).render(schema, &stock, &info),
        complete_and_claim: JobStatement::CompleteAndClaim(claim_shape)
            .render(schema, &stock, &info),
        complete: JobStatement::Complete {
            include_queued: false,
            fenced: args.fenced,
        }
        .render(schema, &stock, &info),
    })
}

fn records(from: usize, to: usize, payload: &Option<String>) -> String {
    let jobs: Vec<Value> = (from..to)
        .map(|i| match payload {
            Some(p) => json!({ "data": { "i": i, "p": p } }),
            None => json!({ "data": { "i": i } }),
        })
        .collect();
    Value::Array(jobs).to_string()
}

/// Random hex (uuid v4 digits), the same for every job, as bench/workloads.mjs makes it: it does
/// not compress, so PostgreSQL stores and moves every byte.
fn payload(args: &Args) -> Option<String> {
    (args.payload_bytes > 0).then(|| {
        let mut text = String::with_capacity(args.payload_bytes + 32);
        while text.len() < args.payload_bytes {
            text.push_str(&Uuid::new_v4().simple().to_string());
        }
        text.truncate(args.payload_bytes);
        text
    })
}

/// How an insert statement takes its jobs.
#[derive(Clone, Copy)]
enum InsertInput {
    /// One JSON recordset, as the engine sends it.
    Recordset,
    /// One array per column (`arrays_statement`), the jobs' options all left out as the
    /// recordset's records leave them out.
    Arrays,
}

/// Runs `count` insert statements of `per` jobs on `queue` over the pool's lanes; `sql` is the
/// insert or the send form.
async fn insert_all(
    pool: &PgPool,
    args: &Args,
    queue: &Arc<Queue>,
    sql: &str,
    total: usize,
    per: usize,
) -> Res<()> {
    insert_with(pool, args, queue, sql, total, per, InsertInput::Recordset).await
}

async fn insert_with(
    pool: &PgPool,
    args: &Args,
    queue: &Arc<Queue>,
    sql: &str,
    total: usize,
    per: usize,
    input: InsertInput,
) -> Res<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let payload = Arc::new(payload(args));
    let mut lanes = Vec::new();
    for _ in 0..args.connections {
        let (pool, queue, next, payload, sql) = (
            pool.clone(),
            queue.clone(),
            next.clone(),
            payload.clone(),
            sql.to_string(),
        );
        lanes.push(tokio::spawn(async move {
            // Each lane keeps one connection: no pool acquire (and its health-check ping) per
            // statement, only the statements themselves.
            let mut conn = pool.acquire().await?;
            loop {
                let from = next.fetch_add(per, Ordering::Relaxed);
                if from >= total {
                    return Ok::<(), BoxError>(());
                }
                match input {
                    InsertInput::Recordset => {
                        let json = records(from, (from + per).min(total), &payload);
                        sqlx::query(&sql)
                            .bind(json)
                            .bind(&queue.name)
                            .fetch_all(&mut *conn)
                            .await?;
                    }
                    InsertInput::Arrays => {
                        let to = (from + per).min(total);
                        let n = to - from;
                        let data: Vec<Option<String>> = (from..to)
                            .map(|i| {
                                Some(match payload.as_ref() {
                                    Some(p) => json!({ "i": i, "p": p }).to_string(),
                                    None => json!({ "i": i }).to_string(),
                                })
                            })
                            .collect();
                        let texts = || vec![None::<String>; n];
                        let ints = || vec![None::<i32>; n];
                        sqlx::query(&sql)
                            .bind(texts())
                            .bind(&queue.name)
                            .bind(ints())
                            .bind(data)
                            .bind(texts())
                            .bind(ints())
                            .bind(ints())
                            .bind(ints())
                            .bind(vec![None::<bool>; n])
                            .bind(texts())
                            .bind(ints())
                            .bind(ints())
                            .bind(texts())
                            .bind(texts())
                            .bind(ints())
                            .bind(ints())
                            .bind(ints())
                            .bind(texts())
                            .bind(ints())
                            .bind(texts())
                            .fetch_all(&mut *conn)
                            .await?;
                    }
                }
            }
        }));
    }
    for lane in lanes {
        lane.await??;
    }
    Ok(())
}

/// The insert statement with its `input` taken from one array per column (`unnest`) instead of
/// the recordset: everything after the input is the engine's own text. Text arrays are cast where
/// the recordset's column types would have read them, so a bad value fails the same way.
fn arrays_statement(recordset: &str) -> Res<String> {
    let start = recordset
        .find("WITH input AS (")
        .ok_or("no input in the insert statement")?;
    let columns_end = "\"__traceContext\" jsonb)";
    let end = recordset
        .find(columns_end)
        .ok_or("no recordset columns in the insert statement")?
        + columns_end.len();
    let input = r#"WITH input AS (
           SELECT x.id::uuid AS id, x.priority, x.data::jsonb AS data, x."startAfter", x."retryLimit",
             x."retryDelay", x."retryDelayMax", x."retryBackoff", x."singletonKey", x."singletonSeconds",
             x."singletonOffset", x."groupId", x."groupTier", x."expireInSeconds", x."deleteAfterSeconds",
             x."retentionSeconds", x."deadLetter", x."heartbeatSeconds", NULL::bool AS blocked,
             NULL::bool AS blocking, NULL::int AS "pendingDependencies",
             x."__traceContext"::jsonb AS "__traceContext",
             CASE WHEN right(x."startAfter", 1) = 'Z' OR x."startAfter" ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}'
                  THEN x."startAfter"::timestamptz
                  ELSE SCHEMA_NOW + COALESCE(x."startAfter", '0')::interval END AS start_at
           FROM unnest($1::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::int[], $8::int[],
             $9::bool[], $10::text[], $11::int[], $12::int[], $13::text[], $14::text[], $15::int[],
             $16::int[], $17::int[], $18::text[], $19::int[], $20::text[])
             AS x (id, priority, data, "startAfter", "retryLimit", "retryDelay", "retryDelayMax",
             "retryBackoff", "singletonKey", "singletonSeconds", "singletonOffset", "groupId",
             "groupTier", "expireInSeconds", "deleteAfterSeconds", "retentionSeconds", "deadLetter",
             "heartbeatSeconds", "__traceContext")"#;
    // The schema's clock function, as the recordset's input calls it.
    let now = recordset[start..end]
        .split("ELSE ")
        .nth(1)
        .and_then(|rest| rest.split(" + ").next())
        .ok_or("no clock in the insert statement")?;
    Ok(format!(
        "{}{}{}",
        &recordset[..start],
        input.replace("SCHEMA_NOW", now),
        &recordset[end..]
    ))
}

/// Claims and completes jobs over the pool's lanes until every queue is empty or `limit` jobs are
/// done; answers how many were done.
async fn drain(pool: &PgPool, args: &Args, queues: &[Arc<Queue>], limit: usize) -> Res<usize> {
    let done = Arc::new(AtomicUsize::new(0));
    let empty: Arc<Vec<AtomicBool>> =
        Arc::new(queues.iter().map(|_| AtomicBool::new(false)).collect());
    let turn = Arc::new(AtomicUsize::new(0));
    let queues = Arc::new(queues.to_vec());
    let mut lanes = Vec::new();
    for _ in 0..args.connections {
        let (pool, done, empty, turn, queues) = (
            pool.clone(),
            done.clone(),
            empty.clone(),
            turn.clone(),
            queues.clone(),
        );
        let (batch, fenced, combined) = (args.batch, args.fenced, args.fenced && args.combined);
        lanes.push(tokio::spawn(async move {
            // Each lane keeps one connection: no pool acquire (and its health-check ping) per
            // statement, only the statements themselves.
            let mut conn = pool.acquire().await?;
            // With --combined, the last batch (its queue's index, ids and attempts), completed
            // by the statement that claims the next batch of the same queue.
            let mut carry: Option<(usize, Vec<Uuid>, Vec<String>)> = None;
            loop {
                let k = match &carry {
                    Some((k, _, _)) => *k,
                    None => {
                        if done.load(Ordering::Relaxed) >= limit {
                            return Ok::<(), BoxError>(());
                        }
                        // The next queue not yet found empty, round robin.
                        let start = turn.fetch_add(1, Ordering::Relaxed);
                        let Some(k) = (0..queues.len())
                            .map(|o| (start + o) % queues.len())
                            .find(|&k| !empty[k].load(Ordering::Relaxed))
                        else {
                            return Ok(());
                        };
                        k
                    }
                };
                let queue = &queues[k];
                let (rows, carried) = match carry.take() {
                    Some((_, ids, attempts)) => {
                        // Planned at each execution, as the engine sends its claims.
                        let rows = sqlx::query(&queue.complete_and_claim)
                            .persistent(false)
                            .bind(&queue.name)
                            .bind(batch)
                            .bind(0i32)
                            .bind(0i32)
                            .bind(None::<Vec<String>>)
                            .bind(None::<String>)
                            .bind(None::<String>)
                            .bind(&ids)
                            .bind(None::<String>)
                            .bind(&attempts)
                            .fetch_all(&mut *conn)
                            .await?;
                        let affected: i64 = rows[0].try_get(0)?;
                        check_completed(affected, ids.len())?;
                        done.fetch_add(ids.len(), Ordering::Relaxed);
                        // A claim that found nothing answers one row of nulls after the counts.
                        let claimed = rows
                            .into_iter()
                            .filter(|row| {
                                row.try_get::<Option<Uuid>, _>(1).ok().flatten().is_some()
                            })
                            .collect::<Vec<_>>();
                        (claimed, 1)
                    }
                    None => {
                        // Planned at each execution, as the engine sends its claims.
                        let rows = sqlx::query(&queue.claim)
                            .persistent(false)
                            .bind(&queue.name)
                            .bind(batch)
                            .bind(0i32)
                            .bind(0i32)
                            .bind(None::<Vec<String>>)
                            .bind(None::<String>)
                            .bind(None::<String>)
                            .fetch_all(&mut *conn)
                            .await?;
                        (rows, 0)
                    }
                };
                if rows.is_empty() {
                    empty[k].store(true, Ordering::Relaxed);
                    continue;
                }
                // Nothing else adds jobs while this runs: a short batch was the queue's last.
                let last = (rows.len() as i64) < batch;
                if last {
                    empty[k].store(true, Ordering::Relaxed);
                }
                let mut ids = Vec::with_capacity(rows.len());
                let mut attempts = Vec::with_capacity(rows.len());
                for row in &rows {
                    let id: Uuid = row.try_get(carried)?;
                    let retry_count: i32 = row.try_get(carried + 1)?;
                    // The job's JSON is read as the engine reads it.
                    let _json: String = row.try_get(carried + 6)?;
                    ids.push(id);
                    attempts.push(format!("{id}:{retry_count}"));
                }
                if combined && !last {
                    carry = Some((k, ids, attempts));
                    continue;
                }
                let mut query = sqlx::query(&queue.complete)
                    .bind(&queue.name)
                    .bind(&ids)
                    .bind(None::<String>);
                if fenced {
                    query = query.bind(&attempts);
                }
                let row = query.fetch_one(&mut *conn).await?;
                check_completed(row.try_get(0)?, ids.len())?;
                done.fetch_add(ids.len(), Ordering::Relaxed);
            }
        }));
    }
    for lane in lanes {
        lane.await??;
    }
    Ok(done.load(Ordering::Relaxed))
}

/// Every claimed job must have been completed.
fn check_completed(affected: i64, claimed: usize) -> Res<()> {
    if affected == claimed as i64 {
        Ok(())
    } else {
        Err(format!("completed {affected} of {claimed} claimed jobs").into())
    }
}

fn rate(jobs: usize, seconds: f64) -> f64 {
    jobs as f64 / seconds
}

async fn run(args: Args) -> Res<Value> {
    let pool = PgPoolOptions::new()
        .max_connections(args.connections as u32)
        .min_connections(args.connections as u32)
        .connect(&args.url)
        .await?;
    // Open every connection before timing starts, as a warmed-up pool would be.
    let mut warm = Vec::new();
    for _ in 0..args.connections {
        warm.push(pool.acquire().await?);
    }
    drop(warm);

    let mut queues = Vec::new();
    for name in queue_names(&args) {
        queues.push(Arc::new(load_queue(&pool, &args, &name).await?));
    }
    let per_queue = args.jobs;
    let total = per_queue * queues.len();
    let mut out = json!({
        "mode": args.mode,
        "schema": args.schema,
        "queues": queues.len(),
        "jobs": total,
        "connections": args.connections,
        "batch": args.batch,
        "fenced": args.fenced,
        "combined": args.fenced && args.combined,
        "payloadBytes": args.payload_bytes,
    });

    match args.mode.as_str() {
        "insert" => {
            let q = &queues[0];
            let sql = if args.chunk == 1 { &q.send } else { &q.insert };
            let t0 = Instant::now();
            insert_all(&pool, &args, q, sql, total, args.chunk).await?;
            let s = t0.elapsed().as_secs_f64();
            out["seconds"] = json!(s);
            out["rate"] = json!(rate(total, s));
            out["chunk"] = json!(args.chunk);
            out["statements"] = json!({ "insert": sql });
        }
        "claim-complete" | "send-work" => {
            let timed_send = args.mode == "send-work";
            let t0 = Instant::now();
            for q in &queues {
                if timed_send {
                    insert_all(&pool, &args, q, &q.send, per_queue, 1).await?;
                } else {
                    let mut preload = args.clone();
                    preload.connections = 1;
                    insert_all(&pool, &preload, q, &q.insert, per_queue, 1000).await?;
                }
            }
            let send_seconds = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let done = drain(&pool, &args, &queues, usize::MAX).await?;
            let s = t1.elapsed().as_secs_f64();
            if done != total {
                return Err(format!("drained {done} jobs of {total}").into());
            }
            out["seconds"] = json!(s);
            out["rate"] = json!(rate(total, s));
            if timed_send {
                out["sendSeconds"] = json!(send_seconds);
                out["sendRate"] = json!(rate(total, send_seconds));
            }
            let q = &queues[0];
            out["statements"] = json!({ "insert": if timed_send { &q.send } else { &q.insert }, "claim": q.claim, "complete": q.complete });
        }
        "backlog" => {
            let q = &queues[0];
            let mut preload = args.clone();
            preload.connections = 1;
            // Untimed warm-up, as the workload's children do.
            insert_all(&pool, &preload, q, &q.insert, args.warmup, 1000).await?;
            drain(&pool, &args, &queues, usize::MAX).await?;
            insert_all(&pool, &preload, q, &q.insert, per_queue, 1000).await?;
            // Both phases on a freshly analyzed table, as in the workload's children.
            sqlx::query(&format!("ANALYZE {}.job", args.schema))
                .execute(&pool)
                .await?;
            let t0 = Instant::now();
            let done = drain(&pool, &args, &queues, usize::MAX).await?;
            let empty_seconds = t0.elapsed().as_secs_f64();
            if done != per_queue {
                return Err(format!("drained {done} jobs of {per_queue}").into());
            }
            let l0 = Instant::now();
            // The same load as the backlog workload's (bench/workloads.mjs, BACKLOG_SQL).
            sqlx::query(&format!(
                "INSERT INTO {}.job (name, data, policy) SELECT $1, jsonb_build_object('i', g), 'standard' FROM generate_series(1, $2::int) g",
                args.schema
            ))
            .bind(&q.name)
            .bind(args.backlog as i32)
            .execute(&pool)
            .await?;
            sqlx::query(&format!("ANALYZE {}.job", args.schema))
                .execute(&pool)
                .await?;
            let load_seconds = l0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let done = drain(&pool, &args, &queues, per_queue).await?;
            let s = t1.elapsed().as_secs_f64();
            out["seconds"] = json!(s);
            out["rate"] = json!(rate(done, s));
            out["backlogJobs"] = json!(done);
            out["rateEmpty"] = json!(rate(per_queue, empty_seconds));
            out["backlog"] = json!(args.backlog);
            out["loadSeconds"] = json!(load_seconds);
            out["statements"] = json!({ "claim": q.claim, "complete": q.complete });
        }
        "insert-shapes" => {
            let q = &queues[0];
            let table: String = sqlx::query_scalar(&format!(
                "SELECT table_name FROM {}.queue WHERE name = $1",
                args.schema
            ))
            .bind(&q.name)
            .fetch_one(&pool)
            .await?;
            let recordset = if args.returning { &q.send } else { &q.insert };
            let arrays = arrays_statement(recordset)?;
            let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            for round in 0..args.rounds {
                // Alternating which goes first, so neither always meets the warmer server.
                let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                for shape in order {
                    sqlx::query(&format!("TRUNCATE {}.{table}", args.schema))
                        .execute(&pool)
                        .await?;
                    let t0 = Instant::now();
                    if shape == 0 {
                        insert_all(&pool, &args, q, recordset, total, args.chunk).await?;
                    } else {
                        insert_with(
                            &pool,
                            &args,
                            q,
                            &arrays,
                            total,
                            args.chunk,
                            InsertInput::Arrays,
                        )
                        .await?;
                    }
                    rates[shape].push(rate(total, t0.elapsed().as_secs_f64()));
                    let (count,): (i64,) =
                        sqlx::query_as(&format!("SELECT count(*) FROM {}.{table}", args.schema))
                            .fetch_one(&pool)
                            .await?;
                    if count != total as i64 {
                        return Err(format!("inserted {count} jobs of {total}").into());
                    }
                }
            }
            let median = |v: &Vec<f64>| {
                let mut v = v.clone();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            out["chunk"] = json!(args.chunk);
            out["returning"] = json!(args.returning);
            out["recordset"] = json!({ "rates": rates[0], "median": median(&rates[0]) });
            out["arrays"] = json!({ "rates": rates[1], "median": median(&rates[1]) });
            out["arraysOverRecordset"] = json!(median(&rates[1]) / median(&rates[0]));
            out["statements"] = json!({ "recordset": recordset, "arrays": arrays });
        }
        other => return Err(format!("unknown mode {other}\n{USAGE}").into()),
    }
    pool.close().await;
    Ok(out)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run(args)) {
        Ok(out) => println!("{out}"),
        Err(e) => {
            eprintln!("ceiling: {e}");
            std::process::exit(1);
        }
    }
}
