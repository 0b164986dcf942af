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
    Ok(pg_boss_engine::service::registry::ProcessInfo::from_json(
        &parse(json)?,
    ))
}
