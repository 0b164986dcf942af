//! Index upkeep on demand: `getReindexCommands()`.

use super::Boss;
use crate::error::Result;
use crate::model::upkeep::ReindexCommandsRequest;

impl Boss {
    /// `getReindexCommands(options)`: the statements that would rebuild the bloated job indexes
    /// (every job index with `force`), for an operator to run.
    pub async fn get_reindex_commands(
        &self,
        request: &ReindexCommandsRequest,
    ) -> Result<Vec<String>> {
        // Nothing to rebuild, and no catalog to ask, on a backend with no REINDEX (pg-boss's
        // noReindex): pg-boss answers none.
        if self.config.backend.no_reindex {
            return Ok(Vec::new());
        }
        let db = self.started_db()?;
        crate::ops::upkeep::reindex_commands(&db, request).await
    }
}
