//! The connection pool, built from the constructor's connection options.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};

use crate::config::ConnectionOptions;
use crate::error::{Error, Result};

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

/// A lazily connecting pool: nothing touches the network until the first statement.
pub fn pool(options: &ConnectionOptions) -> Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(options.max)
        .min_connections(0)
        .acquire_timeout(Duration::from_millis(options.connection_timeout_ms))
        .idle_timeout(Some(Duration::from_secs(10)))
        .connect_lazy_with(connect_options(options)?))
}
