//! What Node knows of its process, for the instance registry.

use std::sync::Arc;

use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use serde_json::Value;

use crate::convert::parse;

/// Samples Node's side of the process for the registry: a JS function `(baseline) => Promise<json>`.
/// Weak, like the event callback: the registry's heartbeat must never keep Node alive.
pub(crate) type VitalsFn = ThreadsafeFunction<bool, Promise<String>, bool, Status, false, true>;

pub(crate) struct JsVitals(pub(crate) Arc<VitalsFn>);

impl pg_boss_engine::service::registry::Vitals for JsVitals {
    fn sample(&self, baseline: bool) -> pg_boss_engine::BoxFuture<'static, Option<Value>> {
        let tsfn = self.0.clone();
        Box::pin(async move {
            let text = tsfn.call_async_catch(baseline).await.ok()?.await.ok()?;
            serde_json::from_str::<Value>(&text)
                .ok()
                .filter(|v| v.is_object())
        })
    }
}

/// What the JS entry says about its process: `{ host, pid, nodeVersion, startedAt }` (epoch ms).
pub(crate) fn process_info(
    json: &str,
) -> napi::Result<pg_boss_engine::service::registry::ProcessInfo> {
    let value = parse(json)?;
    let mut info = pg_boss_engine::service::registry::ProcessInfo::current();
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
        .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
    {
        info.started_at = at;
    }
    Ok(info)
}
