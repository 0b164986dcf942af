//! The engine's one error type. Every failure carries a stable code that the binding maps to a
//! JavaScript `Error` once, at the edge.

use std::fmt;

/// What kind of failure an [`Error`] is. Stable: callers branch on it, and the binding maps it to
/// the `code` a JavaScript caller sees ([`ErrorCode::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Bad input from the caller; pg-boss raises these as assertion errors.
    InvalidArgument,
    /// The named queue does not exist.
    QueueNotFound,
    /// A method was called before `start()` or after `stop()`.
    NotStarted,
    /// A call that needs the database came before `start()` opened the pool or after `stop()`
    /// closed it (pg-boss's "Database not opened" assertion; after `stop({ close: false })` the
    /// pool stays open and such calls still work).
    NotOpened,
    /// The database holds a schema this engine cannot run on (missing, or of another version).
    SchemaVersion,
    /// A write was refused as a whole because part of it collided with existing jobs or a queue
    /// policy (a flow whose jobs could not all be created).
    Conflict,
    /// PostgreSQL reported an error or could not be reached.
    Database,
    /// A cron expression or time zone a schedule cannot use (a plain `Error` in pg-boss, with
    /// cron-parser's wording).
    InvalidSchedule,
    /// A date or time zone a recurrence rule cannot use (a `RangeError` in pg-boss, raised by the
    /// Temporal API its rule engine runs on).
    InvalidRange,
    /// A pg-boss feature this engine does not offer yet, or refuses rather than imitate (a few
    /// recurrence rule shapes); see docs/COMPATIBILITY.md.
    NotImplemented,
    /// A statement run through the caller's own database handle (the `db` option) failed; the
    /// binding answers with the caller's driver error itself, as pg-boss does.
    CallerDb,
    /// Anything else that went wrong inside the engine.
    Internal,
}

impl ErrorCode {
    /// The code a JavaScript caller sees on `error.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "ERR_ASSERTION",
            ErrorCode::QueueNotFound => "PGBOSS_QUEUE_NOT_FOUND",
            ErrorCode::NotStarted => "ERR_NOT_STARTED",
            // pg-boss raises it as an assertion.
            ErrorCode::NotOpened => "ERR_ASSERTION",
            ErrorCode::SchemaVersion => "ERR_SCHEMA_VERSION",
            ErrorCode::Conflict => "ERR_CONFLICT",
            ErrorCode::Database => "ERR_DATABASE",
            ErrorCode::InvalidSchedule => "ERR_INVALID_SCHEDULE",
            ErrorCode::InvalidRange => "ERR_OUT_OF_RANGE",
            ErrorCode::NotImplemented => "ERR_NOT_IMPLEMENTED",
            ErrorCode::CallerDb => "ERR_CALLER_DB",
            ErrorCode::Internal => "ERR_INTERNAL",
        }
    }
}

/// Every failure the engine reports, to a caller or in an `error` event.
#[derive(Debug, Clone)]
pub struct Error {
    /// What kind of failure it is.
    pub code: ErrorCode,
    /// The message, word for word as pg-boss (or PostgreSQL) words it.
    pub message: String,
    /// The SQLSTATE when PostgreSQL raised the error.
    pub sql_state: Option<String>,
}

/// The engine's `Result`: its error is [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `code` with `message` and no SQLSTATE.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            sql_state: None,
        }
    }

    /// Bad input from the caller ([`ErrorCode::InvalidArgument`]), as pg-boss's assertions.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::InvalidArgument, message)
    }

    /// A failure inside the engine ([`ErrorCode::Internal`]).
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Internal, message)
    }

    /// The `code` a JavaScript caller sees, on a rejected call and on an `error` event alike: the
    /// SQLSTATE when PostgreSQL raised the error, else the engine's stable code.
    pub fn js_code(&self) -> &str {
        self.sql_state.as_deref().unwrap_or(self.code.as_str())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        let sql_state = match &err {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        };
        let message = match &err {
            sqlx::Error::Database(db) => db.message().to_string(),
            other => other.to_string(),
        };
        Error {
            code: ErrorCode::Database,
            message,
            sql_state,
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::invalid(format!("invalid JSON: {err}"))
    }
}

/// `ensure!(cond, "message")` rejects bad input with pg-boss's assertion semantics.
/// The condition is read as a plain bool so that a NaN comparison fails the check, as in JS.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err($crate::error::Error::invalid(format!($($msg)+)));
        }
    };
}
pub(crate) use ensure;
