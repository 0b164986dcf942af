//! `getReindexCommands(options?)`'s request and `supervise()`'s `reindex` override, read with
//! pg-boss's messages.

use serde_json::Value;

use crate::config::upkeep::{BloatThresholds, DEFAULT_MAX_INDEX_BYTES};
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

/// What a `supervise(name, options)` call asks of the reindex step that ends its pass.
#[derive(Debug, Clone)]
pub enum SuperviseReindex {
    /// No `reindex` in the options: the constructor's setting.
    Configured,
    /// `reindex: false` (or null): report bloat only, rebuild nothing.
    ReportOnly,
    /// `reindex: true` or an options object: rebuild, with these thresholds.
    Rebuild(ReindexCall),
    /// Options that are a primitive: pg-boss refuses them when it reaches this step, so the
    /// pass ends before it (the JS entry raises pg-boss's `TypeError`).
    Refused,
}

/// A per-call `reindex` given to `supervise()`.
#[derive(Debug, Clone)]
pub struct ReindexCall {
    /// The density gate, or pg-boss's refusal of a threshold, raised when the step reads them
    /// (after the claim, as pg-boss checks them only then).
    pub thresholds: std::result::Result<BloatThresholds, Error>,
    /// Every job index in scope, now, without the claim.
    pub force: bool,
    /// The size cap (default 2 GiB).
    pub max_index_bytes: f64,
}

impl SuperviseReindex {
    /// Reads `supervise()`'s options as pg-boss does: a `reindex` key present overrides the
    /// constructor's setting; `false`/`null` only report; `true` and any other value that is not
    /// an object rebuild with the default thresholds.
    pub fn from_json(options: &Value) -> SuperviseReindex {
        let options = match options {
            Value::Null | Value::Bool(false) => return SuperviseReindex::Configured,
            Value::Number(n) if n.as_f64() == Some(0.0) => return SuperviseReindex::Configured,
            Value::String(s) if s.is_empty() => return SuperviseReindex::Configured,
            Value::Object(options) => options,
            Value::Array(_) => return SuperviseReindex::Configured,
            _ => return SuperviseReindex::Refused,
        };
        let Some(setting) = options.get("reindex") else {
            return SuperviseReindex::Configured;
        };
        let call = match setting {
            Value::Bool(false) | Value::Null => return SuperviseReindex::ReportOnly,
            Value::Object(reindex) => ReindexCall {
                thresholds: BloatThresholds::from_call(Some(reindex)),
                force: crate::config::js::truthy(reindex.get("force")),
                max_index_bytes: match reindex.get("maxIndexBytes") {
                    None | Some(Value::Null) => DEFAULT_MAX_INDEX_BYTES,
                    Some(value) => crate::config::js::to_number(value),
                },
            },
            _ => ReindexCall {
                thresholds: Ok(BloatThresholds::default()),
                force: false,
                max_index_bytes: DEFAULT_MAX_INDEX_BYTES,
            },
        };
        SuperviseReindex::Rebuild(call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn supervise_options_override_as_in_pg_boss() {
        assert!(matches!(
            SuperviseReindex::from_json(&json!({})),
            SuperviseReindex::Configured
        ));
        assert!(matches!(
            SuperviseReindex::from_json(&json!({ "reindex": false })),
            SuperviseReindex::ReportOnly
        ));
        assert!(matches!(
            SuperviseReindex::from_json(&json!("x")),
            SuperviseReindex::Refused
        ));
        let SuperviseReindex::Rebuild(call) =
            SuperviseReindex::from_json(&json!({ "reindex": { "force": 1, "minPages": -1 } }))
        else {
            panic!("a rebuild")
        };
        assert!(call.force);
        assert!(call.thresholds.is_err());
    }
}
