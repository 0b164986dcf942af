//! Statements sent whole (`StatementMode::Unnamed`, for a pooler in transaction mode): every kind
//! of parameter, written as a literal, reaches PostgreSQL as the same value of the same type as
//! when it is bound to a prepared statement, and rows read back over the simple query protocol
//! (as text) decode to what the prepared statement's rows (binary) decode to.

mod common;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use pg_boss_engine::error::Error;
use pg_boss_engine::sql::exec::{Exec, Param, StatementMode, Tx};
use pg_boss_engine::sql::{pooler, Db, Statements};
use serde_json::{json, Value};
use sqlx::postgres::{PgPool, PgPoolOptions};
use uuid::Uuid;

async fn pool() -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(&common::database_url())
        .await
        .expect("connect")
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn params() -> Vec<Param> {
    let a = Uuid::parse_str("6f0b1a52-3f55-4f3c-9c44-3a4de37d3f10").unwrap();
    let b = Uuid::new_v4();
    let tricky = "it's a \\ back'slash\\' \"q\" ünï ☃ 😀 $1 -- /* \t\n\r \u{1} E'x'";
    vec![
        Param::text(tricky),
        Param::text(""),
        Param::text("NULL"),
        Param::Text(None),
        Param::Int8(i64::MIN),
        Param::Int8(i64::MAX),
        Param::Int4(-7),
        Param::MaybeInt4(None),
        Param::MaybeInt4(Some(i32::MIN)),
        Param::Bool(true),
        Param::Bool(false),
        Param::Float8(0.1),
        Param::Float8(-1e300),
        Param::Float8(5e-324),
        Param::Float8(f64::INFINITY),
        Param::Float8(f64::NAN),
        Param::Uuid(Some(a)),
        Param::Uuid(None),
        Param::Uuids(vec![a, b]),
        Param::Uuids(vec![]),
        Param::UuidsOrNull(None),
        Param::UuidsOrNull(Some(vec![b])),
        Param::Int4s(vec![1, -2, i32::MAX]),
        Param::Int4Array(vec![]),
        Param::Texts(Some(vec![
            tricky.to_string(),
            "NULL".into(),
            "".into(),
            "{a,b}".into(),
            "\"".into(),
        ])),
        Param::Texts(Some(vec![])),
        Param::Texts(None),
        Param::NullableTexts(vec![None, Some("x,y".into()), Some("NULL".into())]),
        Param::Json(Some(json!({
            "s": tricky,
            "n": -1.5e10,
            "list": [null, true, "\\u0041"],
            "nested": { "k'": "v\\" }
        }))),
        Param::Json(Some(json!("just a string"))),
        Param::Json(None),
        Param::Timestamptz(Some(at("2026-03-04T05:06:07.123456789Z"))),
        Param::Timestamptz(Some(at("1969-12-31T23:59:59.999999Z"))),
        Param::Timestamptz(Some(
            NaiveDate::from_ymd_opt(10000, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc(),
        )),
        Param::Timestamptz(Some(
            NaiveDate::from_ymd_opt(-44, 3, 15)
                .unwrap()
                .and_hms_micro_opt(12, 0, 0, 1)
                .unwrap()
                .and_utc(),
        )),
        Param::Timestamptz(None),
    ]
}

/// The parameter's type and value as the server sees them, in both modes.
#[tokio::test]
async fn every_parameter_arrives_as_the_same_value_of_the_same_type() {
    let pool = pool().await;
    for (n, param) in params().into_iter().enumerate() {
        // A text of its own for each: a prepared statement keeps the parameter types it was
        // first prepared with.
        let sql = &format!("SELECT pg_typeof($1)::text, $1::text /* {n} */");
        let shown = format!("{param:?}");
        let prepared: (String, Option<String>) = Exec::pool(&pool)
            .fetch_one(sql, vec![param.clone()])
            .await
            .unwrap_or_else(|e| panic!("prepared {shown}: {:?}", Error::from(e)));
        let unnamed: (String, Option<String>) = Exec::pool(&pool)
            .with_mode(StatementMode::Unnamed)
            .fetch_one(sql, vec![param])
            .await
            .unwrap_or_else(|e| panic!("unnamed {shown}: {:?}", Error::from(e)));
        assert_eq!(unnamed, prepared, "{shown}");
    }
}

/// Rows come back as text over the simple query protocol and as binary from a prepared
/// statement; every column type the engine reads decodes to the same value.
#[tokio::test]
async fn rows_decode_the_same_from_text_and_binary() {
    type Wide = (Uuid, Vec<Uuid>, i64, i32, bool, f64, Value, DateTime<Utc>);
    let pool = pool().await;
    let id = Uuid::new_v4();
    let when = at("2026-03-04T05:06:07.654321Z");
    let sql =
        "SELECT $1::uuid, ARRAY[$1::uuid, $1::uuid], $2::int8, -5::int4, true, 1.0e-5::float8, \
               jsonb_build_object('a', $3::text, 'b', ARRAY[1, 2]), $4::timestamptz";
    let params = || {
        vec![
            Param::Uuid(Some(id)),
            Param::Int8(1 << 40),
            Param::text("o'k \\ ☃"),
            Param::Timestamptz(Some(when)),
        ]
    };
    let prepared: Wide = Exec::pool(&pool).fetch_one(sql, params()).await.unwrap();
    let unnamed: Wide = Exec::pool(&pool)
        .with_mode(StatementMode::Unnamed)
        .fetch_one(sql, params())
        .await
        .unwrap();
    assert_eq!(unnamed, prepared);
    assert_eq!(unnamed.6, json!({ "a": "o'k \\ ☃", "b": [1, 2] }));
    assert_eq!(unnamed.7, when);

    let sql = "SELECT ARRAY[1, NULL, 3]::int4[], NULL::text, $1::text";
    type Holes = (Vec<Option<i32>>, Option<String>, Option<String>);
    let prepared: Holes = Exec::pool(&pool)
        .fetch_one(sql, vec![Param::Text(None)])
        .await
        .unwrap();
    let unnamed: Holes = Exec::pool(&pool)
        .with_mode(StatementMode::Unnamed)
        .fetch_one(sql, vec![Param::Text(None)])
        .await
        .unwrap();
    assert_eq!(unnamed, prepared);
    assert_eq!(unnamed, (vec![Some(1), None, Some(3)], None, None));
}

/// A NUL cannot be sent in a literal; it is refused as PostgreSQL refuses it in a bound text.
#[tokio::test]
async fn text_with_nul_is_refused_with_postgres_sqlstate() {
    let pool = pool().await;
    for mode in [StatementMode::Prepared, StatementMode::Unnamed] {
        let err = Exec::pool(&pool)
            .with_mode(mode)
            .fetch_one::<(String,)>("SELECT $1", vec![Param::text("a\0b")])
            .await
            .expect_err("a NUL is refused");
        let err = Error::from(err);
        assert_eq!(err.sql_state.as_deref(), Some("22021"), "{mode:?}: {err:?}");
        assert!(err.message.contains("0x00"), "{mode:?}: {}", err.message);
    }
}

#[tokio::test]
async fn statements_in_a_transaction_and_rows_affected() {
    let pool = pool().await;
    let table = format!("rt_unnamed_{}", Uuid::new_v4().simple());
    let unnamed = Exec::pool(&pool).with_mode(StatementMode::Unnamed);
    unnamed
        .execute_script(&format!("CREATE TABLE {table} (v text)"))
        .await
        .unwrap();
    let tx = Tx::begin(&pg_boss_engine::sql::exec::Handle::Pool(pool.clone()))
        .await
        .unwrap();
    let inside = Exec::tx(&tx).with_mode(StatementMode::Unnamed);
    let inserted = inside
        .execute(
            &format!("INSERT INTO {table} SELECT unnest($1::text[])"),
            vec![Param::Texts(Some(vec![
                "a".into(),
                "b'".into(),
                "c".into(),
            ]))],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 3);
    let (seen,): (i64,) = inside
        .fetch_one(&format!("SELECT count(*) FROM {table}"), vec![])
        .await
        .unwrap();
    assert_eq!(seen, 3);
    tx.commit().await.unwrap();
    let updated = unnamed
        .execute(
            &format!("UPDATE {table} SET v = v || $1 WHERE v <> $2"),
            vec![Param::text("!"), Param::text("b'")],
        )
        .await
        .unwrap();
    assert_eq!(updated, 2);
    let rows: Vec<(String,)> = unnamed
        .fetch_all(&format!("SELECT v FROM {table} ORDER BY v"), vec![])
        .await
        .unwrap();
    assert_eq!(rows, vec![("a!".into(),), ("b'".into(),), ("c!".into(),)]);
    unnamed
        .execute_script(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

/// Named prepared statements on a direct connection; unnamed when the server listens on another
/// port than the one dialed.
#[tokio::test]
async fn a_pooler_is_seen_by_the_port_the_server_reports() {
    let pool = pool().await;
    let db = Db {
        handle: pg_boss_engine::sql::exec::Handle::Pool(pool.clone()),
        mode: StatementMode::Prepared,
        sql: Arc::new(Statements::new("pgboss")),
    };
    let (port,): (String,) = db
        .exec()
        .fetch_one("SELECT current_setting('port')", vec![])
        .await
        .unwrap();
    let port: u16 = port.parse().unwrap();
    let direct = pooler::detect(&db, port).await.unwrap();
    assert_eq!(
        (direct.mode, direct.pooler),
        (StatementMode::Prepared, None)
    );
    let pooled = pooler::detect(&db, port.wrapping_add(1)).await.unwrap();
    assert_eq!(pooled.mode, StatementMode::Unnamed);
    assert!(pooled.pooler.is_some());
}
