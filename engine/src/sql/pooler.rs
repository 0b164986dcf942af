//! Whether a pooler stands between the instance and PostgreSQL, which decides how statements are
//! sent when the `preparedStatements` option leaves it open.
//!
//! A pooler (PgBouncer, in any pool mode) answers on its own port and forwards statements to the
//! server, which reports the port it listens on itself: when that is not the port dialed, there
//! is something in between, and statements go unnamed over the simple query protocol, which works
//! through a pooler in transaction mode. Named prepared statements are kept for a direct
//! connection. A pooler listening on the same port number as its server (on another host) is not
//! seen, and a direct connection through a forwarded port (a container's published port) is taken
//! for one: `preparedStatements` settles either case.

use super::exec::StatementMode;
use super::Db;
use crate::error::Result;

/// Asks, without a parameter (a simple query, safe through any pooler).
const SERVER_PORT: &str = "SELECT current_setting('port')";

/// How statements are sent through `db`'s pool, whose connections dial port `dialed`.
pub async fn statement_mode(db: &Db, dialed: u16) -> Result<StatementMode> {
    let (port,): (String,) = db
        .exec()
        .with_mode(StatementMode::Unnamed)
        .fetch_one(SERVER_PORT, Vec::new())
        .await?;
    Ok(mode_for(dialed, &port))
}

fn mode_for(dialed: u16, server_port: &str) -> StatementMode {
    if server_port.trim().parse::<u16>().ok() == Some(dialed) {
        StatementMode::Prepared
    } else {
        StatementMode::Unnamed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_only_when_the_server_listens_on_the_port_dialed() {
        assert_eq!(mode_for(5432, "5432"), StatementMode::Prepared);
        assert_eq!(mode_for(6432, "5432"), StatementMode::Unnamed);
        assert_eq!(mode_for(5432, "not a port"), StatementMode::Unnamed);
    }
}
