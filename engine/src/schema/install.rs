//! Installing the schema: whether it is there, and running the install script under pg-boss's
//! install lock. The script's text, the lock keys and the channel live in `sql::install`.

use crate::config::{resolve_schema_name, BossConfig};
use crate::error::Result;
use crate::sql::exec::{Exec, Param, Tx};
use crate::sql::Db;

pub async fn is_installed(db: &Db) -> Result<bool> {
    installed_on(db, db.exec()).await
}

async fn installed_on(db: &Db, exec: Exec<'_>) -> Result<bool> {
    let schema = Param::text(resolve_schema_name(db.schema()));
    let (installed,) = exec
        .fetch_one(&db.sql.install.is_installed, vec![schema])
        .await?;
    Ok(installed)
}

/// Runs the install script in one transaction under pg-boss's install lock. Whoever gets the lock
/// second finds the schema installed and does nothing.
pub fn install<'a>(db: &'a Db, config: &'a BossConfig) -> crate::future::BoxFuture<'a, Result<()>> {
    // Boxed: the transaction's executor lifetimes otherwise defeat the Send proof of callers.
    Box::pin(async move {
        let sql = &db.sql.install;
        // Through a caller's handle the transaction goes as one text, which cannot look before it
        // leaps: the schema is looked for first, as pg-boss does with such a handle, and the
        // script then runs under the lock.
        let through_caller = db.handle.is_caller();
        if through_caller && installed_on(db, db.exec()).await? {
            return Ok(());
        }
        let tx = Tx::begin(&db.handle).await?;
        let exec = Exec::tx(&tx).with_mode(db.mode);
        for statement in &sql.install_lock {
            exec.execute(statement, Vec::new()).await?;
        }
        if through_caller || !installed_on(db, exec).await? {
            if config.create_schema {
                exec.execute_script(&sql.create_schema).await?;
            }
            exec.execute_script(&sql.script).await?;
        }
        tx.commit().await?;
        Ok(())
    })
}
