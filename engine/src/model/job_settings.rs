//! The job settings a queue gives its jobs and a send may override — retries, expiration,
//! retention, deletion, heartbeat — checked with pg-boss's rules and messages.

use serde_json::Value;

use crate::config::js::{at_least, is_integer, Options};
use crate::error::ensure;
use crate::error::Result;

const MAX_EXPIRATION_HOURS: f64 = 24.0;
pub fn validate_retry(options: &Options) -> Result<()> {
    if let Some(v) = options.get("retryDelay") {
        ensure!(
            is_integer(v) && at_least(v, 0.0),
            "retryDelay must be an integer >= 0"
        );
    }
    if let Some(v) = options.get("retryLimit") {
        ensure!(
            is_integer(v) && at_least(v, 0.0),
            "retryLimit must be an integer >= 0"
        );
    }
    if let Some(v) = options.get("retryBackoff") {
        ensure!(v.is_boolean(), "retryBackoff must be either true or false");
    }
    if let Some(v) = options.get("retryDelayMax") {
        if !v.is_null() {
            ensure!(
                options.get("retryBackoff") == Some(&Value::Bool(true)),
                "retryDelayMax can only be set if retryBackoff is true"
            );
            ensure!(
                is_integer(v) && at_least(v, 0.0),
                "retryDelayMax must be an integer >= 0"
            );
        }
    }
    Ok(())
}

pub fn validate_expiration(options: &Options) -> Result<()> {
    if let Some(v) = options.get("expireInSeconds") {
        ensure!(
            at_least(v, 1.0),
            "configuration assert: expireInSeconds must be at least every second"
        );
        ensure!(
            v.as_f64().unwrap_or(0.0) / 3600.0 <= MAX_EXPIRATION_HOURS,
            "configuration assert: expiration cannot exceed {MAX_EXPIRATION_HOURS} hours"
        );
    }
    Ok(())
}

pub fn validate_retention(options: &Options) -> Result<()> {
    if let Some(v) = options.get("retentionSeconds") {
        ensure!(
            at_least(v, 1.0),
            "configuration assert: retentionSeconds must be at least every second"
        );
    }
    Ok(())
}

pub fn validate_deletion(options: &Options) -> Result<()> {
    if let Some(v) = options.get("deleteAfterSeconds") {
        // `null >= 0` holds in JavaScript, so pg-boss lets a null through (the queue's value applies).
        ensure!(
            v.is_null() || at_least(v, 0.0),
            "configuration assert: deleteAfterSeconds must be at least 0 (0 disables deletion)"
        );
    }
    Ok(())
}

pub fn validate_heartbeat(options: &Options) -> Result<()> {
    if let Some(v) = options.get("heartbeatSeconds") {
        ensure!(
            v.is_null() || (is_integer(v) && at_least(v, 10.0)),
            "heartbeatSeconds must be an integer >= 10"
        );
    }
    Ok(())
}
