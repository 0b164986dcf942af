//! The Node.js binding: the only module that knows napi. Values cross as JSON text; engine
//! errors become JS errors here, as `CODE|SQLSTATE|message` that the JS entry turns into `Error`s.

mod caller_db;
mod caller_listen;
mod cli;
mod clock;
mod convert;
mod events;
mod flows;
mod handler;
mod instances;
mod jobs;
mod maintenance;
mod migrations;
mod queues;
mod schedules;
mod schema;
mod sql;
mod vitals;
mod workers;

use caller_db::{CallerDbFn, JsCallerDb, Offers};
use convert::{parse, run, to_js};
use events::{EventFn, JsEvents};
use vitals::{process_info, JsVitals, VitalsFn};

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{within_runtime_if_available, Function, Promise};
use napi_derive::napi;

use pg_boss_engine::boss::{Boss, StopOptions};
use pg_boss_engine::config::BossConfig;
use pg_boss_engine::error::Error;

/// The engine's Tokio runtime, made when the addon loads (napi's default is one worker per core).
/// The engine waits on PostgreSQL far more than it computes, so one worker keeps up with it, and
/// every further worker costs the Node process cross-thread wake-ups on each hand-over (CPU) and a
/// thread of its own (stack and malloc arena: memory).
#[napi_derive::module_init]
fn init_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(ENGINE_WORKER_THREADS)
        .enable_all()
        .build()
        .expect("the engine's Tokio runtime could not be built");
    napi::bindgen_prelude::create_custom_tokio_runtime(runtime);
}

const ENGINE_WORKER_THREADS: usize = 1;

#[napi]
pub struct NativeBoss {
    inner: Arc<Boss>,
    /// The JS event callback, also used directly for the binding's own flush markers.
    events: Arc<JsEvents>,
    caller_db: std::sync::OnceLock<Arc<CallerDbFn>>,
    /// What the constructor's db offers beyond executeSql.
    offers: Arc<Offers>,
}

impl NativeBoss {
    /// The caller's db registered under `token`, for a call given the `db` option.
    fn caller(&self, token: Option<u32>) -> napi::Result<Option<JsCallerDb>> {
        let Some(token) = token else { return Ok(None) };
        let run = self
            .caller_db
            .get()
            .ok_or_else(|| to_js(Error::internal("no db runner was registered")))?;
        Ok(Some(JsCallerDb {
            run: run.clone(),
            token,
            offers: None,
        }))
    }

    /// [`NativeBoss::caller`], shared, for the calls that keep it beside the instance's handle.
    fn shared_caller(
        &self,
        token: Option<u32>,
    ) -> napi::Result<Option<Arc<dyn pg_boss_engine::sql::exec::CallerDb>>> {
        Ok(self.caller(token)?.map(|db| {
            let db: Arc<dyn pg_boss_engine::sql::exec::CallerDb> = Arc::new(db);
            db
        }))
    }
}

/// A JS function running statements on callers' dbs, as the engine calls it (weak: a statement
/// in flight is awaited by its own promise).
fn caller_db_fn(run: Function<(u32, String), Promise<String>>) -> napi::Result<CallerDbFn> {
    run.build_threadsafe_function()
        .callee_handled::<false>()
        .weak::<true>()
        .build()
}

#[napi]
impl NativeBoss {
    #[napi(constructor)]
    /// `db`, when the constructor was given pg-boss's `db`: how to run a statement on it, as
    /// [`NativeBoss::set_caller_db`] takes it; the instance's own statements use token 0.
    pub fn new(
        config_json: String,
        on_event: Function<(String, String), ()>,
        db: Option<Function<(u32, String), Promise<String>>>,
    ) -> napi::Result<Self> {
        let config = BossConfig::from_value(&parse(&config_json)?).map_err(to_js)?;
        let events: EventFn = on_event
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        // The pool is created inside the engine's runtime, which sqlx needs even for a lazy pool.
        let events = Arc::new(JsEvents(events));
        let caller_db = std::sync::OnceLock::new();
        let offers = Arc::new(Offers::default());
        let instance_db = match db {
            None => None,
            Some(run) => {
                let run = Arc::new(caller_db_fn(run)?);
                let _ = caller_db.set(run.clone());
                let db: Arc<dyn pg_boss_engine::sql::exec::CallerDb> = Arc::new(JsCallerDb {
                    run,
                    token: 0,
                    offers: Some(offers.clone()),
                });
                Some(db)
            }
        };
        let inner =
            within_runtime_if_available(|| Boss::with_db(config, events.clone(), instance_db))
                .map_err(to_js)?;
        Ok(NativeBoss {
            inner: Arc::new(inner),
            events,
            caller_db,
            offers,
        })
    }

    /// What the constructor's db offers: `beginTransaction()` (for transactional workers), and
    /// whether it is a `Db` of pg-boss's own making.
    #[napi]
    pub fn set_caller_offers(&self, begins: bool, pg_boss_pool: bool) {
        use std::sync::atomic::Ordering;
        self.offers.begin.store(begins, Ordering::SeqCst);
        self.offers
            .pg_boss_pool
            .store(pg_boss_pool, Ordering::SeqCst);
    }

    #[napi]
    pub fn schema(&self) -> String {
        self.inner.config().schema.clone()
    }

    /// How to run a statement on a caller's `db` (see [`CallerDbFn`]).
    #[napi]
    pub fn set_caller_db(&self, run: Function<(u32, String), Promise<String>>) -> napi::Result<()> {
        let _ = self.caller_db.set(Arc::new(caller_db_fn(run)?));
        Ok(())
    }

    /// Tells the registry about this Node process and how to sample it.
    #[napi]
    pub fn set_host(
        &self,
        process_json: String,
        vitals: Function<bool, Promise<String>>,
    ) -> napi::Result<()> {
        let process = process_info(&process_json)?;
        let vitals: VitalsFn = vitals
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        self.inner
            .set_host(pg_boss_engine::service::registry::Host {
                process,
                vitals: Some(Arc::new(JsVitals(Arc::new(vitals)))),
            });
        Ok(())
    }

    /// `attempt` is which try of `start({ attempts })` this is (1 when absent).
    #[napi]
    pub async fn start(&self, attempt: Option<u32>) -> napi::Result<()> {
        let boss = self.inner.clone();
        run(async move { boss.start_attempt(attempt.unwrap_or(1).max(1)).await }).await
    }

    /// Ends a `start()` that is waiting for the database (`stop()` while starting).
    #[napi]
    pub fn cancel_start(&self) {
        self.inner.cancel_start();
    }

    /// Resolves true when the instance was running (so `stopped` is due).
    #[napi]
    pub async fn stop(&self, graceful: bool, close: bool, timeout_ms: f64) -> napi::Result<bool> {
        let options = StopOptions {
            graceful,
            close,
            timeout: Duration::from_millis(timeout_ms.max(0.0) as u64),
        };
        {
            let boss = self.inner.clone();
            run(async move { boss.stop(options).await }).await
        }
    }

    /// The password a `password` function gave, before `start()`.
    #[napi]
    pub fn set_password(&self, password: String) -> napi::Result<()> {
        within_runtime_if_available(|| self.inner.set_password(password)).map_err(to_js)
    }

    /// Emits a marker behind every event already on its way, for the JS entry to wait on.
    #[napi]
    pub fn flush_events(&self, seq: u32) {
        // Through the same queue as the engine's events, so it arrives after every one before it.
        self.events
            .send("eventsFlushed", serde_json::json!({ "seq": seq }));
    }
}

/// The install script as SQL text, for `getConstructionPlans()`, laid out for `backend` (JSON:
/// the plan option, falsy for `postgres`).
// Only JavaScript calls these: a unit-test build of the crate does not register them.
#[cfg_attr(test, allow(dead_code))]
#[napi]
pub fn construction_plans(
    schema: String,
    create_schema: bool,
    backend: String,
) -> napi::Result<String> {
    use pg_boss_engine::config::Backend;
    use pg_boss_engine::sql::install::{construction_plans, InstallLayout};
    let profile = Backend::from_plan_option(&parse(&backend)?)
        .map_err(to_js)?
        .profile();
    pg_boss_engine::config::assert_schema_name(&schema).map_err(to_js)?;
    Ok(construction_plans(
        &schema,
        create_schema,
        InstallLayout::printed(&profile),
    ))
}

// Only JavaScript calls these: a unit-test build of the crate does not register them.
#[cfg_attr(test, allow(dead_code))]
#[napi]
pub fn uninstall_plans(schema: String, backend: String) -> napi::Result<String> {
    use pg_boss_engine::config::Backend;
    let profile = Backend::from_plan_option(&parse(&backend)?)
        .map_err(to_js)?
        .profile();
    pg_boss_engine::config::assert_schema_name(&schema).map_err(to_js)?;
    Ok(pg_boss_engine::sql::install::uninstall_plans(
        &schema,
        profile.partitioned(),
    ))
}
