//! The options of `fetch()` (and the fetch side of `work()`), checked with pg-boss's rules.

use crate::config::js::{as_int, at_least, is_integer, Options};
use crate::ensure;
use crate::error::Result;

pub fn validate_priority_range(options: &Options) -> Result<()> {
    let min = options.get("minPriority").filter(|v| !v.is_null());
    let max = options.get("maxPriority").filter(|v| !v.is_null());
    if let Some(v) = min {
        ensure!(is_integer(v), "minPriority must be an integer");
    }
    if let Some(v) = max {
        ensure!(is_integer(v), "maxPriority must be an integer");
    }
    if let (Some(min), Some(max)) = (min, max) {
        ensure!(
            as_int(min) <= as_int(max),
            "minPriority must be <= maxPriority"
        );
    }
    Ok(())
}

pub(crate) fn validate_batch_and_flags(options: &Options) -> Result<()> {
    if let Some(v) = options.get("batchSize") {
        ensure!(
            is_integer(v) && at_least(v, 1.0),
            "batchSize must be an integer > 0"
        );
    }
    if let Some(v) = options.get("includeMetadata") {
        ensure!(v.is_boolean(), "includeMetadata must be a boolean");
    }
    if let Some(v) = options.get("priority") {
        ensure!(v.is_boolean(), "priority must be a boolean");
    }
    Ok(())
}

pub fn validate_fetch_options(options: &Options) -> Result<()> {
    validate_batch_and_flags(options)?;
    if let Some(v) = options.get("ignoreStartAfter") {
        ensure!(v.is_boolean(), "ignoreStartAfter must be a boolean");
    }
    validate_priority_range(options)
}
