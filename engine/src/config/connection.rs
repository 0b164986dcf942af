//! The connection pool, built from the constructor's connection options.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};

use serde_json::{Map, Value};

use super::js::{bool_opt, int_opt, string_opt};
use crate::error::{Error, Result};

/// sqlx's connect options for `options`.
#[doc(hidden)]
pub fn connect_options(options: &ConnectionOptions) -> Result<PgConnectOptions> {
    let mut connect = match &options.connection_string {
        Some(url) => PgConnectOptions::from_str(url).map_err(|e| {
            Error::invalid(format!(
                "configuration assert: invalid connectionString: {e}"
            ))
        })?,
        None => PgConnectOptions::new(),
    };
    if let Some(host) = &options.host {
        connect = connect.host(host);
    }
    if let Some(port) = options.port {
        connect = connect.port(port);
    }
    if let Some(database) = &options.database {
        connect = connect.database(database);
    }
    if let Some(user) = &options.user {
        connect = connect.username(user);
    }
    if let Some(password) = &options.password {
        connect = connect.password(password);
    }
    if let Some(ssl) = &options.ssl {
        connect = connect.ssl_mode(if ssl.reject_unauthorized {
            PgSslMode::VerifyFull
        } else {
            PgSslMode::Require
        });
    }
    if !options.server_settings.is_empty() {
        // The server splits the startup options on spaces; a value's own are escaped (sqlx does not).
        let escape = |v: &str| v.replace('\\', "\\\\").replace(' ', "\\ ");
        connect = connect.options(
            options
                .server_settings
                .iter()
                .map(|(k, v)| (escape(k), escape(v))),
        );
    }
    Ok(connect.application_name(&options.application_name))
}

/// Told about a pooled connection found dead when it was about to be used (the server restarted,
/// the session was terminated, the network stopped answering): pg-boss's pool `error` event.
pub type LostConnection = std::sync::Arc<dyn Fn(Error) + Send + Sync>;

/// A lazily connecting pool: nothing touches the network until the first statement. An idle
/// connection is checked before it is handed out, and one that fails the check, or does not answer
/// it within half the connection timeout (5 seconds at most), is dropped and reported to `lost`.
#[doc(hidden)]
pub fn pool(options: &ConnectionOptions, lost: Option<LostConnection>) -> Result<PgPool> {
    let check =
        Duration::from_millis(options.connection_timeout_ms / 2).min(Duration::from_secs(5));
    Ok(PgPoolOptions::new()
        .max_connections(options.max)
        .min_connections(0)
        .acquire_timeout(Duration::from_millis(options.connection_timeout_ms))
        .idle_timeout(Some(Duration::from_secs(10)))
        .test_before_acquire(false)
        .before_acquire(move |conn, _| {
            let lost = lost.clone();
            Box::pin(async move {
                use sqlx::Connection;
                let failure = match tokio::time::timeout(check, conn.ping()).await {
                    Ok(Ok(())) => return Ok(true),
                    Ok(Err(err)) => Error::from(err),
                    Err(_) => Error::new(
                        crate::error::ErrorCode::Database,
                        format!("Connection lost: no answer from the server within {check:?}"),
                    ),
                };
                let message = failure.message.clone();
                if let Some(lost) = &lost {
                    lost(failure);
                }
                // An error drops the connection without a goodbye it may never deliver.
                Err(sqlx::Error::Protocol(message))
            })
        })
        .connect_lazy_with(connect_options(options)?))
}

/// How to reach PostgreSQL: pg-boss's `DatabaseOptions`. The separate fields override what the
/// connection string says. The defaults named below are the ones [`BossConfig::new`] and
/// [`BossConfig::from_value`] fill in; `ConnectionOptions::default()` leaves everything empty.
///
/// [`BossConfig::new`]: crate::BossConfig::new
/// [`BossConfig::from_value`]: crate::BossConfig::from_value
#[derive(Debug, Clone, Default)]
pub struct ConnectionOptions {
    /// `connectionString`: a `postgres://` URL.
    pub connection_string: Option<String>,
    /// `host`.
    pub host: Option<String>,
    /// `port`.
    pub port: Option<u16>,
    /// `database`.
    pub database: Option<String>,
    /// `user`.
    pub user: Option<String>,
    /// `password` (a password pg-boss would get from a function is set with
    /// [`Boss::set_password`](crate::Boss::set_password)).
    pub password: Option<String>,
    /// `ssl: true` or an object: require TLS. `rejectUnauthorized: false` skips verification.
    pub ssl: Option<SslOptions>,
    /// `max`, default 10: the pool's most connections.
    pub max: u32,
    /// `application_name`, default `pgboss` (`pgboss:<id>` for a registered instance, so its
    /// sessions can be found in `pg_stat_activity`).
    pub application_name: String,
    /// `connectionTimeoutMillis`, default 10000: how long to wait for a connection.
    pub connection_timeout_ms: u64,
    /// `options`: run-time settings sent with every connection (`-c name=value`, as libpq takes them).
    pub server_settings: Vec<(String, String)>,
}

/// `ssl` as an object.
#[derive(Debug, Clone)]
pub struct SslOptions {
    /// `rejectUnauthorized`, default true: verify the server's certificate and name.
    pub reject_unauthorized: bool,
}

impl ConnectionOptions {
    pub(crate) fn from_options(options: &Map<String, Value>) -> Result<ConnectionOptions> {
        let port = port_option(options)?;
        let ssl = ssl_option(options)?;
        let max = max_option(options)?;
        let connection_timeout_ms = connection_timeout_option(options)?;
        Ok(ConnectionOptions {
            connection_string: string_opt(options, "connectionString")?,
            host: string_opt(options, "host")?,
            port,
            database: string_opt(options, "database")?,
            user: string_opt(options, "user")?,
            password: string_opt(options, "password")?,
            ssl,
            max,
            application_name: string_opt(options, "application_name")?
                .unwrap_or_else(|| "pgboss".to_string()),
            connection_timeout_ms,
            server_settings: match string_opt(options, "options")? {
                None => Vec::new(),
                Some(text) => parse_server_settings(&text)?,
            },
        })
    }
}

fn port_option(options: &Map<String, Value>) -> Result<Option<u16>> {
    match int_opt(options, "port")? {
        None => Ok(None),
        Some(p) if (1..=65535).contains(&p) => Ok(Some(p as u16)),
        Some(_) => Err(Error::invalid(
            "configuration assert: port must be between 1 and 65535",
        )),
    }
}

fn ssl_option(options: &Map<String, Value>) -> Result<Option<SslOptions>> {
    match options.get("ssl") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(None),
        Some(Value::Bool(true)) => Ok(Some(SslOptions {
            reject_unauthorized: true,
        })),
        Some(Value::Object(ssl)) => Ok(Some(SslOptions {
            reject_unauthorized: bool_opt(ssl, "rejectUnauthorized")?.unwrap_or(true),
        })),
        Some(_) => Err(Error::invalid(
            "configuration assert: ssl must be a boolean or an object",
        )),
    }
}

/// `max`: the pool size.
fn max_option(options: &Map<String, Value>) -> Result<u32> {
    match int_opt(options, "max")? {
        None => Ok(10),
        Some(m) if m >= 1 => Ok(m as u32),
        Some(_) => Err(Error::invalid(
            "configuration assert: max must be an integer >= 1",
        )),
    }
}

/// `connectionTimeoutMillis`; absent or 0 is ten seconds.
fn connection_timeout_option(options: &Map<String, Value>) -> Result<u64> {
    match int_opt(options, "connectionTimeoutMillis")? {
        None | Some(0) => Ok(10_000),
        Some(ms) if ms > 0 => Ok(ms as u64),
        Some(_) => Err(Error::invalid(
            "configuration assert: connectionTimeoutMillis must be >= 0",
        )),
    }
}

/// Reads a libpq `options` string: settings written `-c name=value`, `-cname=value` or
/// `--name=value`, separated by spaces (a value's own spaces escaped as `\ `).
fn parse_server_settings(text: &str) -> Result<Vec<(String, String)>> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    let mut settings = Vec::new();
    let mut tokens = tokens.into_iter();
    while let Some(token) = tokens.next() {
        let setting = match token.as_str() {
            "-c" => tokens.next().unwrap_or_default(),
            t if t.starts_with("--") => t[2..].to_string(),
            t if t.starts_with("-c") => t[2..].to_string(),
            _ => String::new(),
        };
        let (name, value) = setting
            .split_once('=')
            .filter(|(name, _)| !name.is_empty())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "configuration assert: options must hold -c name=value settings, not {token:?}"
                ))
            })?;
        settings.push((name.replace('-', "_"), value.to_string()));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_options_are_read_as_libpq_reads_them() {
        let parsed = parse_server_settings("-c search_path=jobs,public  -cstatement_timeout=5s --lock-timeout=3s -c application\\ note=a\\ b").unwrap();
        let expected = [
            ("search_path", "jobs,public"),
            ("statement_timeout", "5s"),
            ("lock_timeout", "3s"),
            ("application note", "a b"),
        ];
        assert_eq!(
            parsed,
            expected.map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert!(parse_server_settings("search_path=x").is_err());
        assert!(parse_server_settings("-c =x").is_err());
        assert_eq!(parse_server_settings("  ").unwrap(), vec![]);
    }
}
