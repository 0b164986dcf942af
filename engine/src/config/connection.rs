//! The connection pool, built from the constructor's connection options, which are read as pg
//! (node-postgres) reads them: TLS only when asked, the connection string's `ssl` parameters over
//! the `ssl` option, `connectionTimeoutMillis: 0` as no timeout.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::ConnectOptions;

use serde_json::{Map, Value};

use super::js::{int_opt, present, string_opt};
use crate::error::{Error, Result};

/// What "no timeout" is given to sqlx, which always takes one: longer than any process lives.
const NO_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// sqlx's connect options for `options`.
#[doc(hidden)]
pub fn connect_options(options: &ConnectionOptions) -> Result<PgConnectOptions> {
    connect_options_with_env(options, &|name| std::env::var(name).ok())
}

/// [`connect_options`], with the environment as a function (pg reads `PGSSLMODE` and
/// `PGSSLNEGOTIATION` when nothing else says how to use TLS).
fn connect_options_with_env(
    options: &ConnectionOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PgConnectOptions> {
    let (mut connect, url_ssl) = match &options.connection_string {
        Some(text) => {
            let invalid = |e: &dyn std::fmt::Display| {
                Error::invalid(format!(
                    "configuration assert: invalid connectionString: {e}"
                ))
            };
            let url = url::Url::parse(text).map_err(|e| invalid(&e))?;
            let (url, ssl) = take_url_ssl(&url)?;
            (
                PgConnectOptions::from_url(&url).map_err(|e| invalid(&e))?,
                ssl,
            )
        }
        None => (PgConnectOptions::new(), None),
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
    if let Some(negotiation) = env("PGSSLNEGOTIATION") {
        check_negotiation(&negotiation)?;
    }
    // The connection string's word on TLS replaces the option's (pg merges the parsed string over
    // the options); with neither, PGSSLMODE decides as pg reads it; with none of them, no TLS.
    let ssl = match url_ssl.or_else(|| options.ssl.clone()) {
        Some(ssl) => ssl,
        None => ssl_from_env(env("PGSSLMODE").as_deref()),
    };
    connect = apply_ssl(connect, &ssl)?;
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
    // Like node-postgres, no extra_float_digits: PgBouncer refuses startup parameters it does
    // not track, and PostgreSQL 12 and later write floats exactly without it.
    Ok(connect
        .application_name(&options.application_name)
        .extra_float_digits(None))
}

/// The longest an idle connection's check before use may take before the connection counts as lost.
const CHECK_LIMIT: Duration = Duration::from_secs(5);

/// Told about a pooled connection found dead when it was about to be used (the server restarted,
/// the session was terminated, the network stopped answering): pg-boss's pool `error` event.
pub type LostConnection = std::sync::Arc<dyn Fn(Error) + Send + Sync>;

/// How long a pooled connection may have been idle and still be handed out without a check. A
/// connection in steady use is not checked (a check is a round trip of its own, before every
/// statement); one the server closed meanwhile answers the next statement with the error it
/// closed with, and the executor reports it and sends the statement again on another connection.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);

/// A lazily connecting pool: nothing touches the network until the first statement. A connection
/// idle for more than [`CHECK_AFTER_IDLE`] is checked before it is handed out, and one that fails
/// the check, or does not answer it within half the connection timeout (5 seconds at most), is
/// dropped and reported to `lost`.
#[doc(hidden)]
pub fn pool(options: &ConnectionOptions, lost: Option<LostConnection>) -> Result<PgPool> {
    let check = options
        .connection_timeout
        .map_or(CHECK_LIMIT, |timeout| timeout / 2)
        .min(CHECK_LIMIT);
    Ok(PgPoolOptions::new()
        .max_connections(options.max)
        .min_connections(0)
        .acquire_timeout(options.connection_timeout.unwrap_or(NO_TIMEOUT))
        .idle_timeout(Some(Duration::from_secs(10)))
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            let lost = lost.clone();
            Box::pin(async move {
                if meta.idle_for <= CHECK_AFTER_IDLE {
                    return Ok(true);
                }
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
/// connection string says, except for TLS, where the connection string's parameters win as in
/// pg. The defaults named below are the ones [`BossConfig::new`] and [`BossConfig::from_value`]
/// fill in; `ConnectionOptions::default()` leaves everything empty.
///
/// [`BossConfig::new`]: crate::BossConfig::new
/// [`BossConfig::from_value`]: crate::BossConfig::from_value
#[derive(Debug, Clone, Default)]
pub struct ConnectionOptions {
    /// `connectionString`: a `postgres://` URL. Its `ssl`, `sslmode`, `sslrootcert`, `sslcert`,
    /// `sslkey`, `uselibpqcompat` and `sslnegotiation` parameters are read as pg-connection-string
    /// reads them.
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
    /// `ssl`: `None` when not given. TLS parameters in the connection string replace it, as in
    /// pg; with neither, `PGSSLMODE` decides as pg reads it; with none of them the connection is
    /// plain text, as pg's.
    pub ssl: Option<Ssl>,
    /// `max`, default 10: the pool's most connections.
    pub max: u32,
    /// `application_name`, default `pgboss` (`pgboss:<id>` for a registered instance, so its
    /// sessions can be found in `pg_stat_activity`).
    pub application_name: String,
    /// `connectionTimeoutMillis`, default 10 000 ms (pg-boss's): how long to wait for a
    /// connection, a free one from the pool or a new one; `None` (the option set to 0) waits as
    /// long as it takes.
    pub connection_timeout: Option<Duration>,
    /// `options`: run-time settings sent with every connection (`-c name=value`, as libpq takes them).
    pub server_settings: Vec<(String, String)>,
}

/// Whether connections use TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ssl {
    /// Plain text (`ssl: false`, `sslmode=disable`).
    Off,
    /// TLS, required: a server that does not offer it is refused.
    On(SslOptions),
}

/// How a TLS connection is made: pg's `ssl` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslOptions {
    /// How much of the server's certificate is checked.
    pub verify: Verify,
    /// `ca`: the certificates the server's must chain to (trusted besides the public roots).
    pub ca: Option<Pem>,
    /// `cert`: the client's certificate, for a server that asks for one (with `key`).
    pub cert: Option<Pem>,
    /// `key`: the client certificate's private key.
    pub key: Option<Pem>,
    /// `servername`: the name the server's certificate is checked against. pg replaces it with
    /// `host` unless the host is an IP address; there only the host itself can be honoured.
    pub servername: Option<String>,
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Nothing (`rejectUnauthorized: false`, `sslmode=no-verify`).
    None,
    /// Its chain, not its name (`sslmode=verify-ca` with `uselibpqcompat=true`).
    Chain,
    /// Its chain and that it names the host (the default).
    Full,
}

/// PEM text: given in the options, or a file the connection string names (read when connecting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    /// PEM text.
    Text(String),
    /// A file holding PEM text.
    File(PathBuf),
}

impl SslOptions {
    /// TLS with full verification against the public roots: `ssl: true`.
    pub fn verified() -> SslOptions {
        SslOptions {
            verify: Verify::Full,
            ca: None,
            cert: None,
            key: None,
            servername: None,
        }
    }
}

impl ConnectionOptions {
    pub(crate) fn from_options(options: &Map<String, Value>) -> Result<ConnectionOptions> {
        let port = port_option(options)?;
        let ssl = ssl_option(options)?;
        let max = max_option(options)?;
        let connection_timeout = connection_timeout_option(options)?;
        if let Some(negotiation) = string_opt(options, "sslnegotiation")? {
            check_negotiation(&negotiation)?;
        }
        let connection = ConnectionOptions {
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
            connection_timeout,
            server_settings: match string_opt(options, "options")? {
                None => Vec::new(),
                Some(text) => parse_server_settings(&text)?,
            },
        };
        // The connection string's TLS parameters and the combination are checked now, not at
        // the first connection.
        connect_options_with_env(&connection, &|_| None)?;
        Ok(connection)
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

/// The keys of pg's `ssl` object that sqlx can honour.
const SSL_KEYS: &[&str] = &["ca", "cert", "key", "servername", "rejectUnauthorized"];

/// `ssl` as pg takes it: a boolean, an object of TLS options, or the strings pg reads from a
/// connection string (`'true'`, `'no-verify'`).
fn ssl_option(options: &Map<String, Value>) -> Result<Option<Ssl>> {
    let ssl = match options.get("ssl") {
        None => return Ok(None),
        Some(ssl) => ssl,
    };
    match ssl {
        Value::Null | Value::Bool(false) => Ok(Some(Ssl::Off)),
        Value::Bool(true) => Ok(Some(Ssl::On(SslOptions::verified()))),
        Value::String(s) if s == "true" => Ok(Some(Ssl::On(SslOptions::verified()))),
        Value::String(s) if s == "no-verify" => Ok(Some(Ssl::On(SslOptions {
            verify: Verify::None,
            ..SslOptions::verified()
        }))),
        Value::Object(ssl) => {
            if let Some(key) = ssl
                .iter()
                .find(|(k, v)| !v.is_null() && !SSL_KEYS.contains(&k.as_str()))
                .map(|(k, _)| k)
            {
                return Err(Error::invalid(format!(
                    "configuration assert: ssl.{key} is not supported by pg-boss-native (its TLS takes {})",
                    SSL_KEYS.join(", ")
                )));
            }
            // Node verifies unless rejectUnauthorized is false.
            let verify = match present(ssl, "rejectUnauthorized") {
                None => Verify::Full,
                Some(Value::Bool(false)) => Verify::None,
                Some(Value::Bool(true)) => Verify::Full,
                Some(_) => {
                    return Err(Error::invalid(
                        "configuration assert: ssl.rejectUnauthorized must be a boolean",
                    ))
                }
            };
            let options = SslOptions {
                verify,
                ca: pem_option(ssl, "ca", true)?,
                cert: pem_option(ssl, "cert", false)?,
                key: pem_option(ssl, "key", false)?,
                servername: match present(ssl, "servername") {
                    None => None,
                    Some(Value::String(name)) => Some(name.clone()),
                    Some(_) => {
                        return Err(Error::invalid(
                            "configuration assert: ssl.servername must be a string",
                        ))
                    }
                },
            };
            Ok(Some(Ssl::On(options)))
        }
        _ => Err(Error::invalid(
            "configuration assert: ssl must be a boolean or an object",
        )),
    }
}

/// A PEM option of the `ssl` object: a string (the JS entry turns Buffers into strings), or for
/// `ca` an array of them.
fn pem_option(ssl: &Map<String, Value>, key: &str, list: bool) -> Result<Option<Pem>> {
    let bad = || {
        Error::invalid(format!(
            "configuration assert: ssl.{key} must be a PEM string or Buffer{}",
            if list { ", or an array of them" } else { "" }
        ))
    };
    match present(ssl, key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(Pem::Text(text.clone()))),
        Some(Value::Array(items)) if list => {
            let texts = items
                .iter()
                .map(|item| item.as_str().ok_or_else(bad))
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(Pem::Text(texts.join("\n"))))
        }
        Some(_) => Err(bad()),
    }
}

/// pg's `sslnegotiation`: `postgres` (the SSLRequest handshake) is what sqlx does; `direct` TLS
/// it cannot do.
fn check_negotiation(value: &str) -> Result<()> {
    match value {
        "postgres" => Ok(()),
        "direct" => Err(Error::invalid(
            "configuration assert: sslnegotiation=direct is not supported by pg-boss-native (its driver negotiates TLS with an SSLRequest, sslnegotiation=postgres)",
        )),
        other => Err(Error::invalid(format!(
            "Invalid sslnegotiation value: \"{other}\". Valid values are \"postgres\" and \"direct\"."
        ))),
    }
}

/// pg's reading of `PGSSLMODE`, used when neither the options nor the connection string say.
fn ssl_from_env(mode: Option<&str>) -> Ssl {
    match mode {
        Some("prefer" | "require" | "verify-ca" | "verify-full") => Ssl::On(SslOptions::verified()),
        Some("no-verify") => Ssl::On(SslOptions {
            verify: Verify::None,
            ..SslOptions::verified()
        }),
        _ => Ssl::Off,
    }
}

/// The parameters pg-connection-string reads for TLS.
const URL_SSL_PARAMS: &[&str] = &[
    "ssl",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "uselibpqcompat",
    "sslnegotiation",
];

/// sqlx's own spellings of TLS parameters, which pg does not read.
const SQLX_SSL_PARAMS: &[&str] = &["ssl-mode", "ssl-root-cert", "ssl-ca", "ssl-cert", "ssl-key"];

/// Takes the TLS parameters out of a connection string, read as pg-connection-string reads them
/// (its default mode, and its libpq-compatible one under `uselibpqcompat=true`): the URL without
/// them, for sqlx, and what they ask for, if anything.
fn take_url_ssl(url: &url::Url) -> Result<(url::Url, Option<Ssl>)> {
    let mut params: Vec<(String, String)> = Vec::new();
    let mut kept: Vec<(String, String)> = Vec::new();
    for (key, value) in url.query_pairs() {
        if SQLX_SSL_PARAMS.contains(&key.as_ref()) {
            return Err(Error::invalid(format!(
                "configuration assert: the connection string parameter {key} is not one pg reads; use sslmode, sslrootcert, sslcert or sslkey"
            )));
        }
        let pair = (key.into_owned(), value.into_owned());
        if URL_SSL_PARAMS.contains(&pair.0.as_str()) {
            params.push(pair);
        } else {
            kept.push(pair);
        }
    }
    let mut stripped = url.clone();
    if params.is_empty() {
        return Ok((stripped, None));
    } else if kept.is_empty() {
        stripped.set_query(None);
    } else {
        stripped.query_pairs_mut().clear().extend_pairs(&kept);
    }
    // As URLSearchParams into an object: the last of a repeated key counts.
    let get = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if let Some(negotiation) = get("sslnegotiation") {
        check_negotiation(negotiation)?;
    }
    let mode = get("sslmode");
    let (rootcert, cert, key) = (get("sslrootcert"), get("sslcert"), get("sslkey"));
    if mode.is_none() && rootcert.is_none() && cert.is_none() && key.is_none() {
        return Ok((
            stripped,
            // An empty `ssl=` is falsy to pg, and still said: no TLS.
            match params
                .iter()
                .rev()
                .find(|(k, _)| k == "ssl")
                .map(|(_, v)| v.as_str())
            {
                None => None,
                Some("0" | "") => Some(Ssl::Off),
                Some("no-verify") => Some(Ssl::On(SslOptions {
                    verify: Verify::None,
                    ..SslOptions::verified()
                })),
                // `true`, `1`, and any other text, which pg takes as truthy.
                Some(_) => Some(Ssl::On(SslOptions::verified())),
            },
        ));
    }
    let file = |path: Option<&str>| path.map(|p| Pem::File(PathBuf::from(p)));
    let mut options = SslOptions {
        ca: file(rootcert),
        cert: file(cert),
        key: file(key),
        ..SslOptions::verified()
    };
    let libpq = params
        .iter()
        .rev()
        .find(|(k, _)| k == "uselibpqcompat")
        .is_some_and(|(_, v)| v == "true");
    if libpq {
        match mode {
            Some("disable") => return Ok((stripped, Some(Ssl::Off))),
            Some("prefer") => options.verify = Verify::None,
            Some("require") if rootcert.is_some() => options.verify = Verify::Chain,
            Some("require") => options.verify = Verify::None,
            Some("verify-ca") => {
                if rootcert.is_none() {
                    return Err(Error::invalid(
                        "SECURITY WARNING: Using sslmode=verify-ca requires specifying a CA with sslrootcert. If a public CA is used, verify-ca allows connections to a server that somebody else may have registered with the CA, making you vulnerable to Man-in-the-Middle attacks. Either specify a custom CA certificate with sslrootcert parameter or use sslmode=verify-full for proper security.",
                    ));
                }
                options.verify = Verify::Chain;
            }
            _ => {}
        }
    } else {
        match mode {
            Some("disable") => return Ok((stripped, Some(Ssl::Off))),
            Some("no-verify") => options.verify = Verify::None,
            // prefer, require and verify-ca are verify-full in pg's default mode.
            _ => {}
        }
    }
    Ok((stripped, Some(Ssl::On(options))))
}

/// Sets sqlx's TLS options for `ssl`; what sqlx cannot do is refused here, never dropped.
fn apply_ssl(connect: PgConnectOptions, ssl: &Ssl) -> Result<PgConnectOptions> {
    let options = match ssl {
        Ssl::Off => return Ok(connect.ssl_mode(PgSslMode::Disable)),
        Ssl::On(options) => options,
    };
    if options.cert.is_some() != options.key.is_some() {
        return Err(Error::invalid(
            "configuration assert: a client certificate needs both ssl.cert and ssl.key (sslcert and sslkey)",
        ));
    }
    if let Some(name) = &options.servername {
        // pg sets the name to check to the host itself unless the host is an IP address.
        let host = connect.get_host();
        if host.parse::<IpAddr>().is_ok() && name != host {
            return Err(Error::invalid(format!(
                "configuration assert: ssl.servername is not supported by pg-boss-native: the server's certificate is checked against the host ({host}), not {name}"
            )));
        }
    }
    let mut connect = connect.ssl_mode(match options.verify {
        Verify::None => PgSslMode::Require,
        // sqlx's chain-only check still fails on the name with the rustls it runs on, so a
        // certificate pg would take could be refused at every connection.
        Verify::Chain => {
            return Err(Error::invalid(
                "configuration assert: checking the server's certificate chain without its name (uselibpqcompat=true with sslmode=verify-ca, or sslmode=require with sslrootcert) is not supported by pg-boss-native, whose driver checks the name too: use sslmode=verify-full, or sslmode=no-verify",
            ))
        }
        Verify::Full => PgSslMode::VerifyFull,
    });
    connect = match &options.ca {
        None => connect,
        Some(Pem::Text(pem)) => connect.ssl_root_cert_from_pem(pem.clone().into_bytes()),
        Some(Pem::File(path)) => connect.ssl_root_cert(path),
    };
    connect = match &options.cert {
        None => connect,
        Some(Pem::Text(pem)) => connect.ssl_client_cert_from_pem(pem),
        Some(Pem::File(path)) => connect.ssl_client_cert(path),
    };
    connect = match &options.key {
        None => connect,
        Some(Pem::Text(pem)) => connect.ssl_client_key_from_pem(pem),
        Some(Pem::File(path)) => connect.ssl_client_key(path),
    };
    Ok(connect)
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

/// `connectionTimeoutMillis`: absent is pg-boss's 10 seconds; 0 is pg's "no timeout".
fn connection_timeout_option(options: &Map<String, Value>) -> Result<Option<Duration>> {
    match int_opt(options, "connectionTimeoutMillis")? {
        None => Ok(Some(Duration::from_millis(10_000))),
        Some(0) => Ok(None),
        Some(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms as u64))),
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
    use serde_json::json;

    fn options(value: Value) -> Result<ConnectionOptions> {
        ConnectionOptions::from_options(value.as_object().unwrap())
    }

    /// What TLS a configuration ends up with, the environment given as PGSSLMODE's value.
    fn ssl_with_env(value: Value, sslmode: Option<&str>) -> Result<(PgSslMode, PgConnectOptions)> {
        let sslmode = sslmode.map(str::to_string);
        let connect = connect_options_with_env(&options(value)?, &|name| {
            (name == "PGSSLMODE").then(|| sslmode.clone()).flatten()
        })?;
        Ok((connect.get_ssl_mode(), connect))
    }

    fn mode(value: Value) -> PgSslMode {
        ssl_with_env(value, None).unwrap().0
    }

    fn url_ssl(query: &str) -> Result<Option<Ssl>> {
        let url = url::Url::parse(&format!("postgres://u@h/db?{query}")).unwrap();
        take_url_ssl(&url).map(|(_, ssl)| ssl)
    }

    fn verified(verify: Verify) -> Option<Ssl> {
        Some(Ssl::On(SslOptions {
            verify,
            ..SslOptions::verified()
        }))
    }

    #[test]
    fn no_tls_unless_asked() {
        assert!(matches!(mode(json!({})), PgSslMode::Disable));
        assert!(matches!(mode(json!({"host": "h"})), PgSslMode::Disable));
        assert!(matches!(
            mode(json!({"connectionString": "postgres://u@h/db"})),
            PgSslMode::Disable
        ));
        assert!(matches!(mode(json!({"ssl": false})), PgSslMode::Disable));
        assert!(matches!(mode(json!({"ssl": null})), PgSslMode::Disable));
        assert!(matches!(mode(json!({"ssl": true})), PgSslMode::VerifyFull));
        assert!(matches!(
            mode(json!({"ssl": "true"})),
            PgSslMode::VerifyFull
        ));
        assert!(matches!(
            mode(json!({"ssl": "no-verify"})),
            PgSslMode::Require
        ));
        assert!(matches!(mode(json!({"ssl": {}})), PgSslMode::VerifyFull));
        assert!(matches!(
            mode(json!({"ssl": {"rejectUnauthorized": false}})),
            PgSslMode::Require
        ));
        assert!(matches!(
            mode(json!({"ssl": {"rejectUnauthorized": true}})),
            PgSslMode::VerifyFull
        ));
    }

    #[test]
    fn pgsslmode_decides_only_when_nothing_else_does() {
        let env = |value: Value, sslmode| ssl_with_env(value, Some(sslmode)).unwrap().0;
        assert!(matches!(env(json!({}), "require"), PgSslMode::VerifyFull));
        assert!(matches!(env(json!({}), "verify-ca"), PgSslMode::VerifyFull));
        assert!(matches!(env(json!({}), "no-verify"), PgSslMode::Require));
        assert!(matches!(env(json!({}), "disable"), PgSslMode::Disable));
        assert!(matches!(env(json!({}), "allow"), PgSslMode::Disable));
        assert!(matches!(
            env(json!({"ssl": false}), "require"),
            PgSslMode::Disable
        ));
        assert!(matches!(
            env(
                json!({"connectionString": "postgres://u@h/db?sslmode=disable"}),
                "require"
            ),
            PgSslMode::Disable
        ));
    }

    #[test]
    fn the_ssl_object_is_read_as_pg_reads_it() {
        let parsed = options(json!({"ssl": {"ca": ["A", "B"], "cert": "C", "key": "K", "servername": "db.example", "rejectUnauthorized": false}})).unwrap();
        assert_eq!(
            parsed.ssl,
            Some(Ssl::On(SslOptions {
                verify: Verify::None,
                ca: Some(Pem::Text("A\nB".into())),
                cert: Some(Pem::Text("C".into())),
                key: Some(Pem::Text("K".into())),
                servername: Some("db.example".into()),
            }))
        );
        let message = |value: Value| options(value).unwrap_err().message;
        assert_eq!(
            message(json!({"ssl": {"ca": "A", "passphrase": "p"}})),
            "configuration assert: ssl.passphrase is not supported by pg-boss-native (its TLS takes ca, cert, key, servername, rejectUnauthorized)"
        );
        assert_eq!(
            message(json!({"ssl": {"cert": "C"}})),
            "configuration assert: a client certificate needs both ssl.cert and ssl.key (sslcert and sslkey)"
        );
        assert_eq!(
            message(json!({"ssl": {"key": 5}})),
            "configuration assert: ssl.key must be a PEM string or Buffer"
        );
        assert_eq!(
            message(json!({"ssl": {"ca": [1]}})),
            "configuration assert: ssl.ca must be a PEM string or Buffer, or an array of them"
        );
        assert_eq!(
            message(json!({"ssl": {"rejectUnauthorized": "no"}})),
            "configuration assert: ssl.rejectUnauthorized must be a boolean"
        );
        assert_eq!(
            message(json!({"ssl": 1})),
            "configuration assert: ssl must be a boolean or an object"
        );
        // A null key is left out, as Node leaves an undefined one.
        assert!(options(json!({"ssl": {"checkServerIdentity": null}})).is_ok());
    }

    #[test]
    fn servername_is_refused_only_where_pg_would_check_against_it() {
        // pg replaces servername with a host name; for an IP address it would check the name.
        assert!(options(json!({"host": "db.internal", "ssl": {"servername": "other"}})).is_ok());
        assert!(options(json!({"host": "127.0.0.1", "ssl": {"servername": "127.0.0.1"}})).is_ok());
        let err =
            options(json!({"host": "127.0.0.1", "ssl": {"servername": "db.example"}})).unwrap_err();
        assert!(
            err.message
                .starts_with("configuration assert: ssl.servername is not supported"),
            "{}",
            err.message
        );
        // Without TLS there is nothing to check.
        assert!(options(json!({"host": "127.0.0.1", "ssl": false})).is_ok());
    }

    #[test]
    fn connection_string_parameters_are_read_as_pg_connection_string_reads_them() {
        assert_eq!(url_ssl("application_name=x").unwrap(), None);
        assert_eq!(url_ssl("ssl=true").unwrap(), verified(Verify::Full));
        assert_eq!(url_ssl("ssl=1").unwrap(), verified(Verify::Full));
        assert_eq!(url_ssl("ssl=0").unwrap(), Some(Ssl::Off));
        assert_eq!(url_ssl("ssl=").unwrap(), Some(Ssl::Off));
        assert_eq!(url_ssl("ssl=no-verify").unwrap(), verified(Verify::None));
        for mode in ["prefer", "require", "verify-ca", "verify-full", "allow"] {
            assert_eq!(
                url_ssl(&format!("sslmode={mode}")).unwrap(),
                verified(Verify::Full),
                "{mode}"
            );
        }
        assert_eq!(
            url_ssl("sslmode=disable&sslrootcert=/x").unwrap(),
            Some(Ssl::Off)
        );
        assert_eq!(
            url_ssl("sslmode=no-verify").unwrap(),
            verified(Verify::None)
        );
        assert_eq!(
            url_ssl("ssl=0&sslmode=require").unwrap(),
            verified(Verify::Full)
        );
        assert_eq!(
            url_ssl("sslrootcert=/ca.pem&sslcert=/c.pem&sslkey=/k.pem").unwrap(),
            Some(Ssl::On(SslOptions {
                ca: Some(Pem::File("/ca.pem".into())),
                cert: Some(Pem::File("/c.pem".into())),
                key: Some(Pem::File("/k.pem".into())),
                ..SslOptions::verified()
            }))
        );
        // libpq's meanings, when asked for.
        let libpq = |q: &str| url_ssl(&format!("uselibpqcompat=true&{q}"));
        assert_eq!(libpq("sslmode=disable").unwrap(), Some(Ssl::Off));
        assert_eq!(libpq("sslmode=prefer").unwrap(), verified(Verify::None));
        assert_eq!(libpq("sslmode=require").unwrap(), verified(Verify::None));
        assert!(matches!(
            libpq("sslmode=require&sslrootcert=/ca").unwrap(),
            Some(Ssl::On(SslOptions {
                verify: Verify::Chain,
                ..
            }))
        ));
        assert!(matches!(
            libpq("sslmode=verify-ca&sslrootcert=/ca").unwrap(),
            Some(Ssl::On(SslOptions {
                verify: Verify::Chain,
                ..
            }))
        ));
        assert!(libpq("sslmode=verify-ca")
            .unwrap_err()
            .message
            .starts_with("SECURITY WARNING: Using sslmode=verify-ca requires"));
        assert_eq!(
            libpq("sslmode=verify-full").unwrap(),
            verified(Verify::Full)
        );
        // The chain without the name is what sqlx cannot check: refused, not made stricter.
        let chain_only = options(
            json!({"connectionString": "postgres://u@h/db?uselibpqcompat=true&sslmode=verify-ca&sslrootcert=/ca"}),
        );
        assert!(chain_only
            .unwrap_err()
            .message
            .contains("is not supported by pg-boss-native"));
        // Negotiation: only the SSLRequest handshake.
        assert!(url_ssl("sslnegotiation=postgres&sslmode=require").is_ok());
        assert!(url_ssl("sslnegotiation=direct&sslmode=require")
            .unwrap_err()
            .message
            .contains("sslnegotiation=direct is not supported"));
        assert_eq!(
            url_ssl("sslnegotiation=x").unwrap_err().message,
            "Invalid sslnegotiation value: \"x\". Valid values are \"postgres\" and \"direct\"."
        );
        // sqlx's own spellings are not pg's: refused, not half-honoured.
        assert!(url_ssl("ssl-mode=require")
            .unwrap_err()
            .message
            .contains("ssl-mode is not one pg reads"));
    }

    #[test]
    fn the_connection_strings_tls_replaces_the_ssl_option() {
        let with = |url: &str, ssl: Value| mode(json!({"connectionString": url, "ssl": ssl}));
        assert!(matches!(
            with("postgres://u@h/db?sslmode=disable", json!(true)),
            PgSslMode::Disable
        ));
        assert!(matches!(
            with("postgres://u@h/db?sslmode=no-verify", json!(true)),
            PgSslMode::Require
        ));
        assert!(matches!(
            with(
                "postgres://u@h/db?ssl=true",
                json!({"rejectUnauthorized": false})
            ),
            PgSslMode::VerifyFull
        ));
        assert!(matches!(
            with("postgres://u@h/db", json!({"rejectUnauthorized": false})),
            PgSslMode::Require
        ));
        assert!(matches!(
            with("postgres://u@h/db?application_name=a", json!(false)),
            PgSslMode::Disable
        ));
        // What is left of the URL reaches sqlx; its TLS parameters do not.
        let (_, connect) = ssl_with_env(json!({"connectionString": "postgres://u@h:5433/db?sslmode=no-verify&application_name=a"}), None).unwrap();
        assert_eq!(connect.get_port(), 5433);
        assert_eq!(connect.get_database(), Some("db"));
    }

    #[tokio::test]
    async fn connection_timeout_zero_is_no_timeout() {
        let timeout = |value: Value| options(value).map(|o| o.connection_timeout);
        assert_eq!(timeout(json!({})).unwrap(), Some(Duration::from_secs(10)));
        assert_eq!(
            timeout(json!({"connectionTimeoutMillis": null})).unwrap(),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            timeout(json!({"connectionTimeoutMillis": 0})).unwrap(),
            None
        );
        assert_eq!(
            timeout(json!({"connectionTimeoutMillis": 250})).unwrap(),
            Some(Duration::from_millis(250))
        );
        assert!(timeout(json!({"connectionTimeoutMillis": -1})).is_err());
        let waits = |value: Value| {
            pool(&options(value).unwrap(), None)
                .unwrap()
                .options()
                .get_acquire_timeout()
        };
        assert!(
            waits(json!({"connectionTimeoutMillis": 0}))
                >= Duration::from_secs(50 * 365 * 24 * 3600)
        );
        assert_eq!(
            waits(json!({"connectionTimeoutMillis": 250})),
            Duration::from_millis(250)
        );
    }

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
