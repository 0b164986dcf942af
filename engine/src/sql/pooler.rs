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

/// What the check found: how to send statements, and what gave a pooler away, if one did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub mode: StatementMode,
    /// Set when a pooler was seen: the ports, as words for a warning.
    pub pooler: Option<String>,
}

/// Checks `db`'s pool, whose connections dial port `dialed`.
pub async fn detect(db: &Db, dialed: u16) -> Result<Finding> {
    let (port,): (String,) = db
        .exec()
        .with_mode(StatementMode::Unnamed)
        .fetch_one(SERVER_PORT, Vec::new())
        .await?;
    Ok(finding(dialed, &port))
}

fn finding(dialed: u16, server_port: &str) -> Finding {
    if server_port.trim().parse::<u16>().ok() == Some(dialed) {
        Finding {
            mode: StatementMode::Prepared,
            pooler: None,
        }
    } else {
        Finding {
            mode: StatementMode::Unnamed,
            pooler: Some(format!(
                "the server listens on port {}, not on port {dialed} as dialed",
                server_port.trim()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_only_when_the_server_listens_on_the_port_dialed() {
        assert_eq!(finding(5432, "5432").mode, StatementMode::Prepared);
        assert_eq!(finding(5432, "5432").pooler, None);
        let pooled = finding(6432, "5432");
        assert_eq!(pooled.mode, StatementMode::Unnamed);
        assert_eq!(
            pooled.pooler.as_deref(),
            Some("the server listens on port 5432, not on port 6432 as dialed")
        );
        assert_eq!(finding(5432, "not a port").mode, StatementMode::Unnamed);
    }
}
