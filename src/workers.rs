//! Workers and what they report.

use std::sync::Arc;

use napi::bindgen_prelude::{within_runtime_if_available, Function, Promise};
use napi_derive::napi;
use serde_json::Value;

use pg_boss_engine::model::names::assert_queue_name;
use pg_boss_engine::model::work::WorkOptions;

use crate::convert::{parse, parse_options, run, to_js};
use crate::handler::{HandlerFn, JsHandler, JsTxHandler, TxHandlerFn};
use crate::NativeBoss;
use pg_boss_engine::worker::JobHandler;

#[napi]
impl NativeBoss {
    #[napi]
    pub fn work(
        &self,
        name_json: String,
        options_json: String,
        handler: Function<String, Promise<String>>,
    ) -> napi::Result<String> {
        let tsfn: HandlerFn = handler
            .build_threadsafe_function()
            .callee_handled::<false>()
            .build()?;
        self.start_work(name_json, options_json, Arc::new(JsHandler(Arc::new(tsfn))))
    }

    /// `work()` with `transactional: true`: the handler is called with the batch and the token of
    /// its transaction.
    #[napi]
    pub fn work_in_transactions(
        &self,
        name_json: String,
        options_json: String,
        handler: Function<(String, u32, u32), Promise<String>>,
    ) -> napi::Result<String> {
        let tsfn: TxHandlerFn = handler
            .build_threadsafe_function()
            .callee_handled::<false>()
            .build()?;
        self.start_work(
            name_json,
            options_json,
            Arc::new(JsTxHandler(Arc::new(tsfn))),
        )
    }

    fn start_work(
        &self,
        name_json: String,
        options_json: String,
        handler: Arc<dyn JobHandler>,
    ) -> napi::Result<String> {
        // The JS entry has refused a missing name; what a name may hold is the engine's rule.
        let name = assert_queue_name(&parse(&name_json)?)
            .map_err(to_js)?
            .to_string();
        let options = WorkOptions::from_options(&parse_options(&options_json)?).map_err(to_js)?;
        let id = within_runtime_if_available(|| self.inner.work(&name, options, handler))
            .map_err(to_js)?;
        Ok(id.to_string())
    }

    /// Refuses a transactional worker the backend cannot run on `name` (a queue with heartbeats
    /// on CockroachDB), before `workInTransactions` registers it.
    #[napi]
    pub async fn assert_transactional_work(&self, name: String) -> napi::Result<()> {
        let boss = self.inner.clone();
        run(async move { boss.assert_transactional_work(&name).await }).await
    }

    /// A transactional handler's statement (`tx.executeSql(text, values)`): `values_json` is the
    /// list of its values as text or null; answers `{ fields, rows, rowCount }` as JSON text,
    /// every value as its text.
    #[napi]
    pub async fn execute_in_transaction(
        &self,
        token: u32,
        text: String,
        values_json: String,
    ) -> napi::Result<String> {
        let values: Vec<Option<String>> =
            serde_json::from_value(parse(&values_json)?).map_err(|e| to_js(e.into()))?;
        let boss = self.inner.clone();
        run(async move {
            let answer = boss.execute_in_transaction(token, &text, &values).await?;
            Ok(answer.to_string())
        })
        .await
    }

    /// Whether a transactional handler may still use its transaction (the batch has not taken it
    /// back to settle it).
    #[napi]
    pub fn handler_transaction_open(&self, token: u32) -> bool {
        self.inner.handler_transaction_open(token)
    }

    /// The jobs a transactional handler settled itself through its transaction.
    #[napi]
    pub fn note_handler_settles(&self, token: u32, ids: Vec<String>) {
        let ids: Vec<uuid::Uuid> = ids
            .iter()
            .filter_map(|id| uuid::Uuid::parse_str(id).ok())
            .collect();
        self.inner.note_handler_settles(token, &ids)
    }

    #[napi]
    /// `name` is a non-empty string: the JS entry checks it, as pg-boss does, before calling.
    pub async fn off_work(&self, name: String, id: Option<String>, wait: bool) -> napi::Result<()> {
        let boss = self.inner.clone();
        run(async move { boss.off_work(&name, id.as_deref(), wait).await }).await
    }

    /// `getWipData()` as JSON text.
    #[napi]
    pub fn wip(&self, include_internal: bool) -> String {
        Value::Array(self.inner.wip(include_internal)).to_string()
    }

    #[napi]
    pub fn set_wip_listening(&self, listening: bool) {
        self.inner.set_wip_listening(listening)
    }

    /// Whether workers report each batch's settle (`batchSettled`), for the settle spans.
    #[napi]
    pub fn set_settle_reports(&self, on: bool) {
        self.inner.set_settle_reports(on)
    }

    /// The queues job spies watch (all of them, each time the set changes).
    #[napi]
    pub fn set_spied_queues(&self, queues: Vec<String>) {
        self.inner.set_spied_queues(queues)
    }

    #[napi]
    pub fn notify_worker(&self, id: String) {
        self.inner.notify_worker(&id)
    }
}
