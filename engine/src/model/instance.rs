//! The process an instance lives in, as its host runtime describes it for the instance registry:
//! the facts its row records, and where its resources are sampled.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::future::BoxFuture;

/// What the row says about the process the instance lives in.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    /// `host`: the machine's host name.
    pub host: String,
    /// `pid`: the process id.
    pub pid: u32,
    /// `node_version`: the host runtime (Node's `process.version` under the binding).
    pub runtime_version: String,
    /// When the process started. Crash counting compares it with rows that carry this pid: one
    /// whose heartbeat predates it is an earlier process that reused the pid.
    pub started_at: DateTime<Utc>,
}

impl ProcessInfo {
    /// This process as Rust can see it. Without a host runtime to ask, the start is taken as the
    /// first time anything here asked, which is no earlier than the real start and no later than
    /// any instance this process registered, so both uses of it still hold.
    pub fn current() -> ProcessInfo {
        static FIRST_ASKED: OnceLock<DateTime<Utc>> = OnceLock::new();
        ProcessInfo {
            host: hostname(),
            pid: std::process::id(),
            runtime_version: "rust".to_string(),
            started_at: *FIRST_ASKED.get_or_init(Utc::now),
        }
    }

    /// This process as a host runtime describes it (`{ host, pid, nodeVersion, startedAt }`,
    /// `startedAt` in epoch milliseconds); what it leaves out is taken from
    /// [`ProcessInfo::current`].
    pub fn from_json(value: &Value) -> ProcessInfo {
        let mut info = ProcessInfo::current();
        if let Some(host) = value.get("host").and_then(Value::as_str) {
            info.host = host.to_string();
        }
        if let Some(pid) = value.get("pid").and_then(Value::as_u64) {
            info.pid = pid as u32;
        }
        if let Some(version) = value.get("nodeVersion").and_then(Value::as_str) {
            info.runtime_version = version.to_string();
        }
        if let Some(at) = value
            .get("startedAt")
            .and_then(Value::as_f64)
            .and_then(|ms| DateTime::from_timestamp_millis(ms as i64))
        {
            info.started_at = at;
        }
        info
    }
}

/// The kernel's host name, as Node's `os.hostname()` reports it on Linux, so rows from pg-boss and
/// from us on one host share it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// Samples the process's resources for the row's `metrics` (pg-boss's `InstanceMetrics`). The
/// binding measures them in Node, where the event loop and the V8 heap are; a Rust host may leave
/// them out (the column stays null). `baseline` is true at registration: rates are measured from
/// there, so that sample has none.
pub trait Vitals: Send + Sync + 'static {
    /// One sample: pg-boss's `InstanceMetrics` as a JSON object, or `None` when there is none.
    fn sample(&self, baseline: bool) -> BoxFuture<'static, Option<Value>>;
}

/// The process an instance lives in, as its host runtime describes it: the facts, and where its
/// resources are sampled (none for a plain Rust host).
#[derive(Clone)]
pub struct Host {
    /// The process.
    pub process: ProcessInfo,
    /// Where its resources are sampled; `None` leaves `metrics` null.
    pub vitals: Option<Arc<dyn Vitals>>,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            process: ProcessInfo::current(),
            vitals: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_host_description_overrides_what_rust_sees() {
        let info = ProcessInfo::from_json(&json!({
            "host": "web-1", "pid": 42, "nodeVersion": "v22.1.0", "startedAt": 1_700_000_000_000u64
        }));
        assert_eq!(info.host, "web-1");
        assert_eq!(info.pid, 42);
        assert_eq!(info.runtime_version, "v22.1.0");
        assert_eq!(info.started_at.timestamp_millis(), 1_700_000_000_000);
    }

    #[test]
    fn what_the_host_leaves_out_is_this_process() {
        let info = ProcessInfo::from_json(&json!({ "pid": "not a number" }));
        let current = ProcessInfo::current();
        assert_eq!(info.pid, current.pid);
        assert_eq!(info.runtime_version, "rust");
        assert_eq!(info.host, current.host);
    }
}
