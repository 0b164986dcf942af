//! The one executor: where a statement runs — the engine's pool, a transaction the engine holds,
//! or a caller's database handle (the `db` option of `send()`, `fetch()`, `complete()` and the
//! other job calls, which puts the statement inside the caller's own transaction) — and whether it
//! is sent as a named prepared statement or unnamed.
//!
//! A caller's handle only takes SQL text and a list of plain values and answers plain values, so
//! statements here are written once with [`Param`]s, bound as sqlx binds on the pool and handed
//! over as JSON to a caller, and rows are read back by [`Row`] from either side.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row as _};
use uuid::Uuid;

use super::literal::{self, LiteralError};
pub use super::param::Param;
use crate::config::connection::LostConnection;
use crate::error::{Error, ErrorCode};

/// How a caller's statement failed, as its driver said it.
#[derive(Debug, Clone, Default)]
pub struct CallerFailure {
    /// The driver's message; it becomes the [`Error`]'s.
    pub message: String,
    /// The SQLSTATE, when the driver reports one.
    pub code: Option<String>,
    /// The constraint that was violated, when the driver reports one.
    pub constraint: Option<String>,
    /// PostgreSQL's detail line, when the driver reports one.
    pub detail: Option<String>,
}

/// What [`CallerDb::execute`] answers: the rows, or how the statement failed.
pub type CallerFuture =
    Pin<Box<dyn Future<Output = Result<Vec<Vec<Value>>, CallerFailure>> + Send>>;

/// A database handle owned by the caller: runs one statement with positional parameters and
/// answers its rows, each as its column values in order. pg-boss's `db` option (`executeSql`):
/// pass one to a job call (`send`, `insert`, `fetch`, `complete`, `fail`, the commands, ...) and
/// the call's statements run on it, so inside the caller's own transaction and committed or
/// rolled back with it.
///
/// Parameters are JSON: numbers, booleans, strings (uuids, timestamps in RFC 3339, `jsonb`
/// values as their text), arrays, and null; bind them as node-postgres does (untyped, arrays as
/// array literals) and let PostgreSQL cast them. Rows come back as JSON too: `bigint` as a number
/// or a string, `uuid` and `timestamptz` as strings, arrays as arrays (or their literal text),
/// `json` as a value or its text.
pub trait CallerDb: Send + Sync {
    /// Runs `sql` (`$1`, `$2`, ... name `params`) and answers its rows.
    fn execute(&self, sql: &str, params: Vec<Value>) -> CallerFuture;

    /// Whether the handle can open a transaction of its own (pg-boss's `beginTransaction()`), as
    /// a transactional worker on an instance made with it needs.
    fn can_begin(&self) -> bool {
        false
    }

    /// Opens a transaction through the handle (see [`CallerDb::can_begin`]).
    fn begin(&self) -> CallerBeginFuture {
        Box::pin(async {
            Err(CallerFailure {
                message: "this db cannot open a transaction (it has no beginTransaction())".into(),
                ..CallerFailure::default()
            })
        })
    }

    /// Whether transactional workers on this handle are counted against the instance's `max`
    /// (pg-boss does so for a `Db` of its own making: a pool it sized).
    fn counts_pool_headroom(&self) -> bool {
        false
    }
}

/// What [`CallerDb::begin`] answers: the open transaction, or how the begin failed.
pub type CallerBeginFuture =
    Pin<Box<dyn Future<Output = Result<Arc<dyn CallerTransaction>, CallerFailure>> + Send>>;

/// What ending a [`CallerTransaction`] answers.
pub type CallerEndFuture = Pin<Box<dyn Future<Output = Result<(), CallerFailure>> + Send>>;

/// A transaction a caller's handle opened (pg-boss's `beginTransaction()`: `{ db, commit(),
/// rollback() }`): its statements run through [`CallerDb::execute`], one by one.
pub trait CallerTransaction: CallerDb {
    fn commit(&self) -> CallerEndFuture;
    /// Ends it without its changes; a failure here is the caller's to report, the engine's error
    /// path goes on.
    fn rollback(&self) -> CallerEndFuture;
    /// What the caller's side calls the transaction: handed to a transactional handler with its
    /// batch, so that it can run its own statements on the transaction itself.
    fn key(&self) -> u32;
}

/// A failed statement, from either side.
#[derive(Debug)]
pub enum ExecError {
    Pool(sqlx::Error),
    Caller(CallerFailure),
    /// A statement that could not be written out for the simple query protocol.
    Unsendable(LiteralError),
}

impl ExecError {
    pub fn sql_state(&self) -> Option<String> {
        match self {
            ExecError::Pool(sqlx::Error::Database(db)) => db.code().map(|c| c.into_owned()),
            ExecError::Pool(_) => None,
            ExecError::Caller(failure) => failure.code.clone(),
            ExecError::Unsendable(err) => Some(err.sql_state.to_string()),
        }
    }

    pub fn constraint(&self) -> Option<String> {
        match self {
            ExecError::Pool(err) => err
                .as_database_error()
                .and_then(|db| db.constraint())
                .map(str::to_string),
            ExecError::Caller(failure) => failure.constraint.clone(),
            ExecError::Unsendable(_) => None,
        }
    }

    pub fn detail(&self) -> Option<String> {
        match self {
            ExecError::Pool(err) => err
                .as_database_error()
                .and_then(|db| db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
                .and_then(|pg| pg.detail())
                .map(str::to_string),
            ExecError::Caller(failure) => failure
                .detail
                .clone()
                .or_else(|| Some(failure.message.clone())),
            ExecError::Unsendable(_) => None,
        }
    }

    /// Whether the statement ran in a caller's transaction (which the failure has now aborted).
    pub fn is_callers(&self) -> bool {
        matches!(self, ExecError::Caller(_))
    }
}

impl From<sqlx::Error> for ExecError {
    fn from(err: sqlx::Error) -> Self {
        ExecError::Pool(err)
    }
}

impl From<LiteralError> for ExecError {
    fn from(err: LiteralError) -> Self {
        ExecError::Unsendable(err)
    }
}

impl From<ExecError> for Error {
    fn from(err: ExecError) -> Self {
        match err {
            ExecError::Pool(err) => Error::from(err),
            ExecError::Caller(failure) => Error {
                code: ErrorCode::CallerDb,
                message: failure.message,
                sql_state: failure.code,
            },
            ExecError::Unsendable(err) => Error {
                code: ErrorCode::Database,
                message: err.message,
                sql_state: Some(err.sql_state.to_string()),
            },
        }
    }
}

/// One column of a result row.
pub trait Column: Sized {
    fn from_pg(row: &PgRow, index: usize) -> Result<Self, sqlx::Error>;
    fn from_json(value: &Value) -> Option<Self>;
}

macro_rules! pg_column {
    ($t:ty, $json:expr) => {
        impl Column for $t {
            fn from_pg(row: &PgRow, index: usize) -> Result<Self, sqlx::Error> {
                row.try_get(index)
            }
            fn from_json(value: &Value) -> Option<Self> {
                let read: fn(&Value) -> Option<$t> = $json;
                read(value)
            }
        }
    };
}

/// Drivers answer 64-bit integers as strings (node-postgres) or numbers; both are read.
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn uuid(value: &Value) -> Option<Uuid> {
    value.as_str().and_then(|s| Uuid::parse_str(s).ok())
}

// Added for the stats histograms: an int[] whose empty slots are null.
impl Column for Vec<Option<i32>> {
    fn from_pg(row: &PgRow, index: usize) -> Result<Self, sqlx::Error> {
        match row.try_get::<Vec<Option<i32>>, _>(index) {
            Err(sqlx::Error::ColumnDecode { .. }) => {
                let wide: Vec<Option<i64>> = row.try_get(index)?;
                wide.into_iter()
                    .map(|slot| slot.map(|n| narrow(index, n)).transpose())
                    .collect()
            }
            read => read,
        }
    }
    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::Null => Some(None),
                    other => integer(other).and_then(|n| i32::try_from(n).ok()).map(Some),
                })
                .collect(),
            _ => None,
        }
    }
}

/// A 64-bit integer where a 32-bit one is read: CockroachDB's `INT` is 64-bit, so the job
/// table's integer columns (and every `::int`) arrive as `int8` there.
fn narrow(index: usize, wide: i64) -> Result<i32, sqlx::Error> {
    i32::try_from(wide).map_err(|err| sqlx::Error::ColumnDecode {
        index: index.to_string(),
        source: Box::new(err),
    })
}

impl Column for i32 {
    fn from_pg(row: &PgRow, index: usize) -> Result<Self, sqlx::Error> {
        match row.try_get::<i32, _>(index) {
            Err(sqlx::Error::ColumnDecode { .. }) => narrow(index, row.try_get(index)?),
            read => read,
        }
    }
    fn from_json(value: &Value) -> Option<Self> {
        integer(value).and_then(|n| i32::try_from(n).ok())
    }
}

pg_column!(Uuid, uuid);
pg_column!(String, |v| match v {
    Value::String(s) => Some(s.clone()),
    Value::Null => None,
    // A driver that parses JSON columns itself hands back the value; its text is what was meant.
    other => Some(other.to_string()),
});
pg_column!(i64, integer);
// A uuid[] arrives as an array from drivers that parse arrays, and as its literal from others.
pg_column!(Vec<Uuid>, |v| match v {
    Value::Array(items) => items.iter().map(uuid).collect(),
    Value::String(s) => {
        let inner = s.strip_prefix('{')?.strip_suffix('}')?;
        if inner.is_empty() {
            Some(Vec::new())
        } else {
            inner
                .split(',')
                .map(|id| Uuid::parse_str(id.trim_matches('"')).ok())
                .collect()
        }
    }
    _ => None,
});

// Drivers answer a float8 as a number, a numeric as a string; both are read.
// Added for the instance registry, the schema checks and the background migrations.
pg_column!(bool, Value::as_bool);
pg_column!(f64, |v| match v {
    Value::Number(n) => n.as_f64(),
    Value::String(s) => s.parse().ok(),
    _ => None,
});
// A json or jsonb column, parsed by the caller's driver or by sqlx.
pg_column!(Value, |v| Some(v.clone()));
pg_column!(DateTime<Utc>, |v| v
    .as_str()
    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    .map(|at| at.with_timezone(&Utc)));

impl<T: Column> Column for Option<T> {
    fn from_pg(row: &PgRow, index: usize) -> Result<Self, sqlx::Error> {
        use sqlx::ValueRef as _;
        if row.try_get_raw(index)?.is_null() {
            return Ok(None);
        }
        T::from_pg(row, index).map(Some)
    }
    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_json(other).map(Some),
        }
    }
}

/// A result row read as a tuple of columns.
pub trait Row: Sized {
    fn from_pg(row: &PgRow) -> Result<Self, sqlx::Error>;
    fn from_json(values: &[Value]) -> Option<Self>;
}

macro_rules! tuple_row {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Column),+> Row for ($($t,)+) {
            fn from_pg(row: &PgRow) -> Result<Self, sqlx::Error> {
                Ok(($($t::from_pg(row, $i)?,)+))
            }
            fn from_json(values: &[Value]) -> Option<Self> {
                Some(($($t::from_json(values.get($i).unwrap_or(&Value::Null))?,)+))
            }
        }
    };
}

tuple_row!(A 0);
tuple_row!(A 0, B 1);
tuple_row!(A 0, B 1, C 2);
tuple_row!(A 0, B 1, C 2, D 3);
tuple_row!(A 0, B 1, C 2, D 3, E 4);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// Binds a parameter by reference, so a statement can be sent again on another connection.
fn bind<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    param: &'q Param,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    match param {
        Param::Int4s(list) => query.bind(list),
        Param::Text(s) => query.bind(s),
        Param::Int8(n) => query.bind(n),
        Param::Int4(n) => query.bind(n),
        Param::Bool(b) => query.bind(b),
        Param::Uuid(id) => query.bind(id),
        Param::Uuids(ids) => query.bind(ids),
        Param::Texts(list) => query.bind(list),
        Param::Float8(n) => query.bind(n),
        Param::Timestamptz(at) => query.bind(at),
        Param::UuidsOrNull(ids) => query.bind(ids),
        Param::MaybeInt4(n) => query.bind(n),
        Param::Json(value) => query.bind(value),
        Param::Int4Array(list) => query.bind(list),
        Param::NullableTexts(list) => query.bind(list),
        Param::NullableInt4s(list) => query.bind(list),
    }
}

/// A caller's driver sends untyped parameters, so the server counts a statement's parameters from
/// the `$n` its text names, and refuses values for the others: those are dropped, and the rest
/// renumbered in order. (On the pool every parameter is typed, so unnamed ones do no harm.)
fn named_params_only(sql: &str, params: &[Param]) -> (String, Vec<Value>) {
    let bytes = sql.as_bytes();
    let placeholder_at = |i: usize| -> Option<(usize, usize)> {
        if bytes[i] != b'$'
            || (i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'))
        {
            return None;
        }
        let digits = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let n = sql.get(i + 1..i + 1 + digits)?.parse().ok()?;
        Some((n, digits + 1))
    };
    let mut named = vec![false; params.len() + 1];
    for i in 0..bytes.len() {
        if let Some((n, _)) = placeholder_at(i) {
            if n < named.len() {
                named[n] = true;
            }
        }
    }
    let mut renumbered = vec![0; named.len()];
    let mut values = Vec::new();
    for (n, param) in params.iter().enumerate() {
        if named[n + 1] {
            values.push(param.to_json());
            renumbered[n + 1] = values.len();
        }
    }
    let mut text = String::with_capacity(sql.len());
    let mut i = 0;
    while i < bytes.len() {
        match placeholder_at(i) {
            Some((n, len)) if n < renumbered.len() && renumbered[n] > 0 => {
                text.push('$');
                text.push_str(&renumbered[n].to_string());
                i += len;
            }
            _ => {
                let next = sql[i..].chars().next().map_or(1, char::len_utf8);
                text.push_str(&sql[i..i + next]);
                i += next;
            }
        }
    }
    (text, values)
}

/// A caller's rows read as `R`s.
fn read_json<R: Row>(sql: &str, rows: &[Vec<Value>]) -> Result<Vec<R>, ExecError> {
    rows.iter()
        .map(|row| R::from_json(row))
        .collect::<Option<_>>()
        .ok_or_else(|| unreadable(sql))
}

fn unreadable(sql: &str) -> ExecError {
    ExecError::Caller(CallerFailure {
        message: format!(
            "the db option's executeSql answered rows of an unexpected shape for: {}",
            sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ")
        ),
        ..CallerFailure::default()
    })
}

/// Where an instance's statements run: its own pool, or a database handle the caller gave the
/// constructor (pg-boss's `new PgBoss({ db })`), through which every statement of the instance
/// then goes and no connection of ours is opened.
#[derive(Clone)]
pub enum Handle {
    Pool(PgPool),
    Caller(Arc<dyn CallerDb>),
    /// A caller's handle for one call (the per-call `db` option), inside the caller's own
    /// transaction: statements go one by one, and a transaction of ours adds no BEGIN or COMMIT
    /// (the caller's commit or rollback decides), as pg-boss does with such a handle.
    CallerTx(Arc<dyn CallerDb>),
}

impl Handle {
    /// Whether statements go through a caller's handle.
    pub fn is_caller(&self) -> bool {
        !matches!(self, Handle::Pool(_))
    }

    /// Whether a transactional worker can open its batches' transactions here: on our pool, or
    /// through a caller's handle that can begin one.
    pub fn can_begin(&self) -> bool {
        match self {
            Handle::Pool(_) => true,
            Handle::Caller(db) => db.can_begin(),
            Handle::CallerTx(_) => false,
        }
    }

    /// Our pool, when statements run on it.
    pub fn pool(&self) -> Option<&PgPool> {
        match self {
            Handle::Pool(pool) => Some(pool),
            Handle::Caller(_) | Handle::CallerTx(_) => None,
        }
    }
}

/// Whether a statement failed because its pooled connection had been closed by the server before
/// the statement could run (the server was shut down or restarted, the session was terminated or
/// timed out while idle): the server answered with the FATAL error it sends as it closes a
/// session, so nothing of the statement took effect and it can be sent again on another
/// connection. A connection that merely stopped answering is not this (the statement's fate is
/// unknown); the pool checks connections idle for a while before handing them out instead.
fn closed_before_use(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P05 idle_session_timeout.
    matches!(db.code().as_deref(), Some("57P01" | "57P02" | "57P05"))
}

/// Runs `attempt` on the pool; a pooled connection found closed by the server is reported to
/// `lost` and the statement sent again, on another connection, at most once per connection the
/// pool may hold.
async fn on_pool<T, F, Fut>(
    pool: &PgPool,
    lost: Option<&LostConnection>,
    mut attempt: F,
) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut left = pool.options().get_max_connections();
    loop {
        match attempt().await {
            Err(err) if left > 0 && closed_before_use(&err) => {
                left -= 1;
                if let Some(lost) = lost {
                    lost(Error::from(err));
                }
            }
            done => return done,
        }
    }
}

/// What a transaction the engine holds is made of.
enum TxInner {
    /// A connection of our pool, in a transaction.
    Pool(tokio::sync::Mutex<sqlx::Transaction<'static, sqlx::Postgres>>),
    /// Through a caller's handle, which may send each statement on another connection: the
    /// statements are written out whole and kept until the transaction ends, then sent as one
    /// text `BEGIN; ...; COMMIT;` (pg-boss's own way with such a handle), which any pooled
    /// connection runs as one transaction. A statement whose rows are wanted ends that text
    /// (its rows follow a marker row, so those of the statements before it are told apart),
    /// and the statements after it start the next one. Dropped without a commit, the kept
    /// statements are never sent: a rollback.
    Script {
        db: Arc<dyn CallerDb>,
        pending: std::sync::Mutex<Vec<String>>,
    },
    /// Inside a caller's own transaction: each statement goes through at once.
    Direct(Arc<dyn CallerDb>),
    /// A transaction the caller's handle opened for us ([`CallerDb::begin`]): each statement goes
    /// through it at once, and its own commit or rollback ends it.
    Opened(Arc<dyn CallerTransaction>),
}

/// A transaction the engine holds across several statements (a caller's per-call `db` has its
/// own). Statements borrow it one at a time.
pub struct Tx(TxInner);

/// The row that tells a script's wanted rows apart from those of the statements before it.
const ROWS_FOLLOW: &str = "pg-boss-native: rows follow";

impl Tx {
    pub async fn begin(handle: &Handle) -> Result<Tx, ExecError> {
        Ok(Tx(match handle {
            Handle::Pool(pool) => TxInner::Pool(tokio::sync::Mutex::new(
                on_pool(pool, None, || pool.begin()).await?,
            )),
            Handle::Caller(db) => TxInner::Script {
                db: db.clone(),
                pending: std::sync::Mutex::new(Vec::new()),
            },
            Handle::CallerTx(db) => TxInner::Direct(db.clone()),
        }))
    }

    /// A transaction of its own for a transactional worker's batch: on a connection of our pool,
    /// or opened through the caller's handle ([`CallerDb::begin`]), where statements are sent one
    /// by one as the handler's are, not kept for one text.
    pub async fn begin_own(handle: &Handle) -> Result<Tx, ExecError> {
        match handle {
            Handle::Caller(db) => Ok(Tx(TxInner::Opened(
                db.begin().await.map_err(ExecError::Caller)?,
            ))),
            Handle::Pool(_) | Handle::CallerTx(_) => Tx::begin(handle).await,
        }
    }

    /// The caller's name for a transaction its handle opened ([`CallerTransaction::key`]).
    pub fn caller_key(&self) -> Option<u32> {
        match &self.0 {
            TxInner::Opened(tx) => Some(tx.key()),
            _ => None,
        }
    }

    pub async fn commit(self) -> Result<(), ExecError> {
        match self.0 {
            TxInner::Pool(tx) => Ok(tx.into_inner().commit().await?),
            TxInner::Opened(tx) => tx.commit().await.map_err(ExecError::Caller),
            TxInner::Direct(_) => Ok(()),
            TxInner::Script { db, pending } => {
                let statements = std::mem::take(&mut *pending.lock().unwrap());
                if statements.is_empty() {
                    return Ok(());
                }
                db.execute(&script(&statements), Vec::new())
                    .await
                    .map(|_| ())
                    .map_err(ExecError::Caller)
            }
        }
    }

    /// Ends the transaction by how the work in it went: committed after `Ok`, rolled back after an
    /// error, which stays the one reported (a rollback that fails too changes nothing).
    pub async fn finish<T>(self, outcome: crate::error::Result<T>) -> crate::error::Result<T> {
        match outcome {
            Ok(value) => {
                self.commit().await?;
                Ok(value)
            }
            Err(err) => {
                let _ = self.rollback().await;
                Err(err)
            }
        }
    }

    /// Rolls the transaction back (dropping it unsettled does too, once its connection is next
    /// used; this waits for the `ROLLBACK`). Through a caller's handle the kept statements are
    /// dropped unsent; inside a caller's own transaction the caller's rollback decides.
    pub async fn rollback(self) -> Result<(), ExecError> {
        match self.0 {
            TxInner::Pool(tx) => Ok(tx.into_inner().rollback().await?),
            TxInner::Opened(tx) => tx.rollback().await.map_err(ExecError::Caller),
            TxInner::Script { .. } | TxInner::Direct(_) => Ok(()),
        }
    }

    /// Through a caller's handle: keeps a statement for the script.
    fn keep(&self, statement: String) -> bool {
        match &self.0 {
            TxInner::Script { pending, .. } => {
                pending.lock().unwrap().push(statement);
                true
            }
            TxInner::Pool(_) | TxInner::Direct(_) | TxInner::Opened(_) => false,
        }
    }

    /// Through a caller's handle: sends the kept statements and `read` as one transaction and
    /// answers `read`'s rows.
    async fn read_through_caller(&self, read: String) -> Result<Vec<Vec<Value>>, ExecError> {
        let TxInner::Script { db, pending } = &self.0 else {
            unreachable!("only a script transaction reads through a caller")
        };
        let mut statements = std::mem::take(&mut *pending.lock().unwrap());
        statements.push(format!("SELECT '{ROWS_FOLLOW}' AS marker"));
        statements.push(read);
        let rows = db
            .execute(&script(&statements), Vec::new())
            .await
            .map_err(ExecError::Caller)?;
        let marker = rows
            .iter()
            .position(|row| row.len() == 1 && row[0].as_str() == Some(ROWS_FOLLOW));
        Ok(match marker {
            Some(at) => rows.into_iter().skip(at + 1).collect(),
            None => rows,
        })
    }
}

impl Tx {
    fn is_script(&self) -> bool {
        matches!(self.0, TxInner::Script { .. })
    }

    /// Whether the transaction is on a connection of our pool.
    pub fn is_on_pool(&self) -> bool {
        matches!(self.0, TxInner::Pool(_))
    }

    /// The connection of a transaction on our pool.
    pub(super) fn connection(
        &self,
    ) -> &tokio::sync::Mutex<sqlx::Transaction<'static, sqlx::Postgres>> {
        match &self.0 {
            TxInner::Pool(tx) => tx,
            TxInner::Script { .. } | TxInner::Direct(_) | TxInner::Opened(_) => {
                unreachable!("only a transaction on our pool has a connection")
            }
        }
    }
}

/// Statements as one transaction's text.
fn script(statements: &[String]) -> String {
    let mut text = String::from("BEGIN;\n");
    for statement in statements {
        let statement = statement.trim().trim_end_matches(';').trim_end();
        if !statement.is_empty() {
            text.push_str(statement);
            text.push_str(";\n");
        }
    }
    text.push_str("COMMIT;\n");
    text
}

/// How statements are sent on the engine's own connections. A pooler in transaction mode
/// (PgBouncer) hands a session's statements to different servers, where a named statement is
/// unknown or already taken, so there every statement goes unnamed. Chosen per instance (see
/// [`super::pooler`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatementMode {
    /// Named prepared statements, parsed once per connection and reused; rows come back binary.
    #[default]
    Prepared,
    /// Each statement written out whole, its parameters as typed literals ([`super::literal`]),
    /// and sent over the simple query protocol: one message, answered by one server. Rows come
    /// back as text.
    Unnamed,
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Pool(&'a PgPool),
    Caller(&'a dyn CallerDb),
    Tx(&'a Tx),
}

/// Where a statement runs — the engine's pool, a caller's database handle (inside the caller's
/// transaction) or a transaction the engine holds — and how it is sent. Every statement of the
/// engine goes through one of these.
#[derive(Clone, Copy)]
pub struct Exec<'a> {
    target: Target<'a>,
    mode: StatementMode,
    /// Told about pooled connections the server had closed (see [`closed_before_use`]).
    lost: Option<&'a LostConnection>,
    /// In [`StatementMode::Prepared`], send the statement unnamed: parsed and planned for its
    /// parameters at each execution (see [`Exec::planned_each_time`]).
    planned_each_time: bool,
}

impl<'a> From<&'a PgPool> for Exec<'a> {
    fn from(pool: &'a PgPool) -> Self {
        Exec::pool(pool)
    }
}

impl<'a> Exec<'a> {
    pub fn pool(pool: &'a PgPool) -> Exec<'a> {
        Exec {
            target: Target::Pool(pool),
            mode: StatementMode::Prepared,
            lost: None,
            planned_each_time: false,
        }
    }

    pub fn caller(db: &'a dyn CallerDb) -> Exec<'a> {
        Exec {
            target: Target::Caller(db),
            mode: StatementMode::Prepared,
            lost: None,
            planned_each_time: false,
        }
    }

    pub fn tx(tx: &'a Tx) -> Exec<'a> {
        match &tx.0 {
            TxInner::Direct(db) => return Exec::caller(db.as_ref()),
            TxInner::Opened(opened) => {
                let db: &dyn CallerDb = opened.as_ref();
                return Exec::caller(db);
            }
            TxInner::Pool(_) | TxInner::Script { .. } => {}
        }
        Exec {
            target: Target::Tx(tx),
            mode: StatementMode::Prepared,
            lost: None,
            planned_each_time: false,
        }
    }

    /// The instance's own handle: its pool, or the caller's handle it was made with.
    pub fn handle(handle: &'a Handle) -> Exec<'a> {
        match handle {
            Handle::Pool(pool) => Exec::pool(pool),
            Handle::Caller(db) | Handle::CallerTx(db) => Exec::caller(db.as_ref()),
        }
    }

    /// The instance's handle, or the caller's handle when the call was given one.
    pub fn handle_or_caller(handle: &'a Handle, caller: Option<&'a dyn CallerDb>) -> Exec<'a> {
        caller.map_or(Exec::handle(handle), Exec::caller)
    }

    /// The same target, sending statements as `mode` says.
    pub fn with_mode(self, mode: StatementMode) -> Exec<'a> {
        Exec { mode, ..self }
    }

    /// The same target, with its statements planned for their parameters at every execution
    /// rather than kept prepared. PostgreSQL moves a prepared statement to a generic plan after its
    /// first executions when that plan's estimate is no worse; for a claim, a plan chosen while the
    /// queue's table was nearly empty (a hash join over the whole table) grows slower with every
    /// completed job kept, so a claim is planned afresh each time, as pg-boss's unnamed statements
    /// are. Statements sent whole are planned each time anyway.
    pub fn planned_each_time(self) -> Exec<'a> {
        Exec {
            planned_each_time: true,
            ..self
        }
    }

    /// The same target, reporting pooled connections the server had closed to `lost`.
    pub fn reporting_lost(self, lost: Option<&'a LostConnection>) -> Exec<'a> {
        Exec { lost, ..self }
    }

    /// Our pool, when statements go straight to it: not in a transaction, not through a caller.
    pub fn own_pool(&self) -> Option<&'a PgPool> {
        match self.target {
            Target::Pool(pool) => Some(pool),
            Target::Caller(_) | Target::Tx(_) => None,
        }
    }

    /// How statements are sent on our connections.
    pub fn mode(&self) -> StatementMode {
        self.mode
    }

    /// A caller's handle sends whatever its driver sends: the mode only governs our connections.
    pub fn is_caller(&self) -> bool {
        matches!(self.target, Target::Caller(_))
    }

    /// A transaction kept as a script for a caller's handle.
    fn is_script(&self) -> bool {
        matches!(self.target, Target::Tx(tx) if tx.is_script())
    }

    fn query<'q>(
        &self,
        sql: &'q str,
        params: &'q [Param],
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        params
            .iter()
            .fold(sqlx::query(sql), bind)
            .persistent(!self.planned_each_time)
    }

    async fn rows(self, sql: &str, params: Vec<Param>) -> Result<Vec<PgRow>, ExecError> {
        if self.mode == StatementMode::Unnamed {
            let text = literal::render(sql, &params)?;
            return Ok(match self.target {
                Target::Pool(pool) => {
                    on_pool(pool, self.lost, || {
                        sqlx::Executor::fetch_all(pool, text.as_str())
                    })
                    .await?
                }
                Target::Tx(tx) => {
                    let mut tx = tx.connection().lock().await;
                    sqlx::Executor::fetch_all(&mut **tx, text.as_str()).await?
                }
                Target::Caller(_) => unreachable!("a caller's rows are read as JSON"),
            });
        }
        Ok(match self.target {
            Target::Pool(pool) => {
                on_pool(pool, self.lost, || self.query(sql, &params).fetch_all(pool)).await?
            }
            Target::Tx(tx) => {
                let mut tx = tx.connection().lock().await;
                self.query(sql, &params).fetch_all(&mut **tx).await?
            }
            Target::Caller(_) => unreachable!("a caller's rows are read as JSON"),
        })
    }

    /// Every row the statement answers.
    pub async fn fetch_all<R: Row>(
        self,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<Vec<R>, ExecError> {
        let _in_flight = crate::clock::statement_in_flight();
        match self.target {
            Target::Caller(db) => {
                let (text, values) = named_params_only(sql, &params);
                let rows = db.execute(&text, values).await.map_err(ExecError::Caller)?;
                read_json(sql, &rows)
            }
            Target::Tx(tx) if tx.is_script() => {
                let rows = tx
                    .read_through_caller(literal::render(sql, &params)?)
                    .await?;
                read_json(sql, &rows)
            }
            _ => {
                let rows = self.rows(sql, params).await?;
                Ok(rows.iter().map(R::from_pg).collect::<Result<_, _>>()?)
            }
        }
    }

    /// The first row, if any.
    pub async fn fetch_optional<R: Row>(
        self,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<Option<R>, ExecError> {
        Ok(self.fetch_all(sql, params).await?.into_iter().next())
    }

    /// The one row a statement always answers (an aggregate).
    pub async fn fetch_one<R: Row>(self, sql: &str, params: Vec<Param>) -> Result<R, ExecError> {
        match self.fetch_optional(sql, params).await? {
            Some(row) => Ok(row),
            None if self.is_caller() || self.is_script() => Err(unreadable(sql)),
            None => Err(ExecError::Pool(sqlx::Error::RowNotFound)),
        }
    }

    /// Runs a script of several statements without parameters, for its effect (the schema's install
    /// script). It goes over the simple query protocol, the only one that takes many statements in
    /// one text; a caller's driver sends a text without parameters that way too.
    pub async fn execute_script(self, sql: &str) -> Result<(), ExecError> {
        let _in_flight = crate::clock::statement_in_flight();
        match self.target {
            // Text without arguments is sent as a simple query.
            Target::Pool(pool) => sqlx::Executor::execute(pool, sql).await.map(|_| ())?,
            Target::Tx(tx) => {
                if tx.keep(sql.to_string()) {
                    return Ok(());
                }
                let mut tx = tx.connection().lock().await;
                sqlx::Executor::execute(&mut **tx, sql).await.map(|_| ())?
            }
            Target::Caller(db) => db
                .execute(sql, Vec::new())
                .await
                .map(|_| ())
                .map_err(ExecError::Caller)?,
        }
        Ok(())
    }

    /// Runs a statement for its effect; answers how many rows it touched (a caller's handle does
    /// not say, and answers 0).
    pub async fn execute(self, sql: &str, params: Vec<Param>) -> Result<u64, ExecError> {
        let _in_flight = crate::clock::statement_in_flight();
        if let Target::Tx(tx) = self.target {
            if tx.is_script() {
                tx.keep(literal::render(sql, &params)?);
                return Ok(0);
            }
        }
        if self.mode == StatementMode::Unnamed && !self.is_caller() {
            let text = literal::render(sql, &params)?;
            let done = match self.target {
                Target::Tx(tx) => {
                    let mut tx = tx.connection().lock().await;
                    sqlx::Executor::execute(&mut **tx, text.as_str()).await?
                }
                _ => match self.target {
                    Target::Pool(pool) => {
                        on_pool(pool, self.lost, || {
                            sqlx::Executor::execute(pool, text.as_str())
                        })
                        .await?
                    }
                    _ => unreachable!("a caller's statements go as its driver sends them"),
                },
            };
            return Ok(done.rows_affected());
        }
        match self.target {
            Target::Pool(pool) => {
                Ok(
                    on_pool(pool, self.lost, || self.query(sql, &params).execute(pool))
                        .await?
                        .rows_affected(),
                )
            }
            Target::Tx(tx) => {
                let mut tx = tx.connection().lock().await;
                Ok(self
                    .query(sql, &params)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected())
            }
            Target::Caller(db) => {
                let (text, values) = named_params_only(sql, &params);
                db.execute(&text, values)
                    .await
                    .map(|_| 0)
                    .map_err(ExecError::Caller)
            }
        }
    }
}

/// One column of a row of the caller's own statement: its name, its type's name (`INT8`,
/// `TIMESTAMPTZ`, `TEXT[]`, ...) and its value as PostgreSQL writes it as text, or `None` for NULL.
pub type UntypedColumn = (String, String, Option<String>);

/// Runs a statement of the caller's own (`getDb().executeSql(text, values)`) on our pool, its
/// values written in as text of no declared type, as node-postgres sends them, over the simple
/// query protocol (which works through a pooler as well); answers each row as its columns, values
/// as text, for the caller's side to read as node-postgres reads them.
pub async fn run_untyped(
    pool: &PgPool,
    sql: &str,
    values: &[Option<String>],
) -> Result<Vec<Vec<UntypedColumn>>, ExecError> {
    use sqlx::{Column as _, TypeInfo as _, ValueRef as _};
    let text = literal::render_untyped(sql, values)?;
    let rows = sqlx::Executor::fetch_all(pool, text.as_str()).await?;
    rows.iter()
        .map(|row| {
            row.columns()
                .iter()
                .map(|column| {
                    let raw = row.try_get_raw(column.ordinal())?;
                    let value = if raw.is_null() {
                        None
                    } else {
                        Some(raw.as_str().map_err(sqlx::Error::Decode)?.to_string())
                    };
                    Ok((
                        column.name().to_string(),
                        column.type_info().name().to_string(),
                        value,
                    ))
                })
                .collect::<Result<Vec<_>, ExecError>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uuid_arrays_are_read_as_arrays_or_as_their_literal() {
        let a = Uuid::parse_str("6f0b1a52-3f55-4f3c-9c44-3a4de37d3f10").unwrap();
        let b = Uuid::parse_str("0e3d8c1c-7d5e-4c36-9a43-2b0a8ae0a0c1").unwrap();
        assert_eq!(<Vec<Uuid>>::from_json(&json!([a, b])), Some(vec![a, b]));
        assert_eq!(
            <Vec<Uuid>>::from_json(&json!(format!("{{{a},{b}}}"))),
            Some(vec![a, b])
        );
        assert_eq!(<Vec<Uuid>>::from_json(&json!("{}")), Some(vec![]));
        assert_eq!(<Vec<Uuid>>::from_json(&json!("nope")), None);
    }

    #[test]
    fn parameters_the_text_does_not_name_are_dropped_and_the_rest_renumbered() {
        let params = [
            Param::text("q"),
            Param::Int8(5),
            Param::Bool(true),
            Param::Texts(None),
        ];
        let (text, values) = named_params_only(
            "SELECT $1, $3::bool, x$2 FROM t WHERE a = $1 AND b = $11",
            &params,
        );
        assert_eq!(
            text,
            "SELECT $1, $2::bool, x$2 FROM t WHERE a = $1 AND b = $11"
        );
        assert_eq!(values, vec![json!("q"), json!(true)]);
        let (text, values) = named_params_only("SELECT 'é', $2", &params[..2]);
        assert_eq!((text.as_str(), values), ("SELECT 'é', $1", vec![json!(5)]));
    }

    /// A caller's handle that records what it is sent and answers every text with `rows`.
    struct Recorder {
        sent: std::sync::Mutex<Vec<(String, Vec<Value>)>>,
        rows: Vec<Vec<Value>>,
    }

    impl CallerDb for Recorder {
        fn execute(&self, sql: &str, params: Vec<Value>) -> CallerFuture {
            self.sent.lock().unwrap().push((sql.to_string(), params));
            let rows = self.rows.clone();
            Box::pin(async move { Ok(rows) })
        }
    }

    fn recorder(rows: Vec<Vec<Value>>) -> Arc<Recorder> {
        Arc::new(Recorder {
            sent: std::sync::Mutex::default(),
            rows,
        })
    }

    fn sent(db: &Recorder) -> Vec<String> {
        db.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(sql, _)| sql.clone())
            .collect()
    }

    #[tokio::test]
    async fn a_transaction_through_the_constructors_db_goes_as_one_text_at_its_commit() {
        let db = recorder(vec![]);
        let tx = Tx::begin(&Handle::Caller(db.clone())).await.unwrap();
        let exec = Exec::tx(&tx);
        exec.execute("SELECT pg_advisory_xact_lock(1);", vec![])
            .await
            .unwrap();
        exec.execute(
            "SELECT f($1, $2)",
            vec![Param::text("it's"), Param::Int8(5)],
        )
        .await
        .unwrap();
        assert!(sent(&db).is_empty(), "nothing is sent before the commit");
        tx.commit().await.unwrap();
        assert_eq!(
            sent(&db),
            vec![
                "BEGIN;\nSELECT pg_advisory_xact_lock(1);\nSELECT f((E'it''s'::text), ('5'::int8));\nCOMMIT;\n"
            ]
        );
        assert_eq!(db.sent.lock().unwrap()[0].1, Vec::<Value>::new());
    }

    #[tokio::test]
    async fn a_transaction_dropped_without_its_commit_sends_nothing() {
        let db = recorder(vec![]);
        {
            let tx = Tx::begin(&Handle::Caller(db.clone())).await.unwrap();
            Exec::tx(&tx)
                .execute("DELETE FROM t", vec![])
                .await
                .unwrap();
        }
        assert!(sent(&db).is_empty());
    }

    #[tokio::test]
    async fn a_read_in_a_script_ends_it_and_answers_the_rows_after_the_marker() {
        let db = recorder(vec![
            vec![json!("")],
            vec![json!(ROWS_FOLLOW)],
            vec![json!("7"), json!(true)],
        ]);
        let tx = Tx::begin(&Handle::Caller(db.clone())).await.unwrap();
        let exec = Exec::tx(&tx);
        exec.execute("SELECT lock()", vec![]).await.unwrap();
        let rows: Vec<(i64, bool)> = exec.fetch_all("SELECT n, b FROM t", vec![]).await.unwrap();
        assert_eq!(rows, vec![(7, true)]);
        assert_eq!(
            sent(&db),
            vec![format!(
                "BEGIN;\nSELECT lock();\nSELECT '{ROWS_FOLLOW}' AS marker;\nSELECT n, b FROM t;\nCOMMIT;\n"
            )]
        );
        // What follows the read starts the next text.
        exec.execute("SELECT after()", vec![]).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(sent(&db)[1], "BEGIN;\nSELECT after();\nCOMMIT;\n");
    }

    #[tokio::test]
    async fn inside_a_callers_own_transaction_statements_go_one_by_one_with_no_begin() {
        let db = recorder(vec![]);
        let tx = Tx::begin(&Handle::CallerTx(db.clone())).await.unwrap();
        Exec::tx(&tx)
            .execute("UPDATE t SET a = $2", vec![Param::Int8(1), Param::Int8(2)])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(sent(&db), vec!["UPDATE t SET a = $1"]);
        assert_eq!(db.sent.lock().unwrap()[0].1, vec![json!(2)]);
    }

    /// A transaction a caller's handle opened: records its statements and how it ended.
    #[derive(Default)]
    struct Opened {
        sent: std::sync::Mutex<Vec<String>>,
        ended: std::sync::Mutex<Vec<&'static str>>,
    }

    impl CallerDb for Opened {
        fn execute(&self, sql: &str, _params: Vec<Value>) -> CallerFuture {
            self.sent.lock().unwrap().push(sql.to_string());
            Box::pin(async { Ok(vec![]) })
        }
    }

    impl CallerTransaction for Opened {
        fn commit(&self) -> CallerEndFuture {
            self.ended.lock().unwrap().push("commit");
            Box::pin(async { Ok(()) })
        }
        fn rollback(&self) -> CallerEndFuture {
            self.ended.lock().unwrap().push("rollback");
            Box::pin(async { Ok(()) })
        }
        fn key(&self) -> u32 {
            7
        }
    }

    /// A caller's handle that opens `next` when asked to begin.
    struct Beginning {
        next: Arc<Opened>,
    }

    impl CallerDb for Beginning {
        fn execute(&self, _sql: &str, _params: Vec<Value>) -> CallerFuture {
            Box::pin(async { Err(CallerFailure::default()) })
        }
        fn can_begin(&self) -> bool {
            true
        }
        fn begin(&self) -> CallerBeginFuture {
            let tx: Arc<dyn CallerTransaction> = self.next.clone();
            Box::pin(async move { Ok(tx) })
        }
    }

    #[tokio::test]
    async fn a_transaction_the_callers_handle_opens_takes_statements_one_by_one_and_its_own_end() {
        let opened = Arc::new(Opened::default());
        let handle = Handle::Caller(Arc::new(Beginning {
            next: opened.clone(),
        }));
        assert!(handle.can_begin());
        assert!(!Handle::Caller(recorder(vec![])).can_begin());
        let tx = Tx::begin_own(&handle).await.unwrap();
        assert_eq!(tx.caller_key(), Some(7));
        Exec::tx(&tx)
            .execute("UPDATE t SET a = $2", vec![Param::Int8(1), Param::Int8(2)])
            .await
            .unwrap();
        assert_eq!(*opened.sent.lock().unwrap(), vec!["UPDATE t SET a = $1"]);
        tx.commit().await.unwrap();
        let tx = Tx::begin_own(&handle).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(*opened.ended.lock().unwrap(), vec!["commit", "rollback"]);
    }

    #[test]
    fn counts_are_read_from_numbers_and_strings() {
        assert_eq!(
            <(i64, Option<i32>)>::from_json(&[json!("12"), json!(null)]),
            Some((12, None))
        );
        assert_eq!(<(i64,)>::from_json(&[json!(3)]), Some((3,)));
        assert_eq!(<(i64,)>::from_json(&[json!(true)]), None);
    }
}
