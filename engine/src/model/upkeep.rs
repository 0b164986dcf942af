//! `getReindexCommands(options?)`'s request, read with pg-boss's messages.

use serde_json::Value;

use crate::config::upkeep::BloatThresholds;
use crate::error::{Error, Result};

/// `getReindexCommands(options?)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReindexCommandsRequest {
    /// The density gate.
    pub thresholds: BloatThresholds,
    /// Every job index, bloated or not.
    pub force: bool,
    /// Leave out indexes larger than this; none left out when absent.
    pub max_index_bytes: Option<f64>,
}

impl ReindexCommandsRequest {
    /// Reads the call's options (any non-object as none).
    pub fn from_json(options: &Value) -> Result<ReindexCommandsRequest> {
        let options = options.as_object();
        let max_index_bytes = match options.and_then(|o| o.get("maxIndexBytes")) {
            None => None,
            Some(value) => Some(value.as_f64().ok_or_else(|| {
                Error::invalid("configuration assert: reindex.maxIndexBytes must be an integer > 0")
            })?),
        };
        Ok(ReindexCommandsRequest {
            thresholds: BloatThresholds::from_call(options)?,
            force: options
                .and_then(|o| o.get("force"))
                .is_some_and(|v| crate::config::js::truthy(Some(v))),
            max_index_bytes,
        })
    }
}
