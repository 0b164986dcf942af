//! `Boss`: one pg-boss instance — its pool, its queue cache, its workers and its lifecycle. The
//! binding (and any Rust caller) talks to the engine through this type.

mod caller_listen;
mod flows;
mod instances;
mod jobs;
mod maintenance;
mod pubsub;
mod queues;
mod schedules;
mod schema;
mod sql;
mod upkeep;
mod workers;

use workers::{local_wakeup, WorkerWakeup};

pub use jobs::JobCommand;
pub use pubsub::PublishReport;
// What some calls answer; the types live with the operations that produce them.
pub use crate::ops::flows::{DependencyRef, Resolved};
pub use crate::ops::maintenance::PassReport;
pub use crate::ops::redrive::RedrivePreview;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::connection as db;
use crate::config::BamSettings;
use crate::config::BossConfig;
use crate::error::ensure;
use crate::error::{Error, ErrorCode, Result};
use crate::event::EventSink;
use crate::ops::clock::DbClock;
use crate::ops::coalesce::SendCoalescer;
use crate::ops::queues::QueueCache;
use crate::ops::warnings::WarningSink;
use crate::schema::migrate;
use crate::service::bam::{BamRunner, BamService};
use crate::service::busy::Busy;
use crate::service::listener::Listener;
use crate::service::queue_cache::QueueCacheRefresh;
use crate::service::supervisor::Supervisor;
use crate::service::{self, Service, Services, Signals};
use crate::sql::exec::{CallerDb, Handle, StatementMode};
use crate::sql::{Db, Statements};
use crate::worker::overrun::OverrunLog;
use crate::worker::WorkerHandle;

/// The session setting that opts a connection into the schema's test clock (pg-boss's
/// `CLOCK_OVERRIDE_SETTING`).
pub const TEST_CLOCK_SETTING: &str = "pgboss.test_clock";

const LISTEN_NOTIFY_UNAVAILABLE: &str = "listen_notify_unavailable";

/// pg-boss's words for a call that needs the database while the pool is not open.
const NOT_OPENED: &str =
    "Database not opened. Call start() before using pg-boss, or again after stop().";

/// How long a start waits for its first connection before a `stop()` may cancel it.
const START_CANCEL_GRACE: Duration = Duration::from_secs(1);

/// What a stop may spend past its `timeout` on the statements that end the instance (failing
/// abandoned jobs, flushing overrun warnings, marking the registry row, closing the pool): what is
/// still waiting then is given up on, so a database that does not answer cannot hold `stop()`.
const STOP_CLEANUP: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    Created,
    Started,
    Stopped,
}

/// `stop(options)`. `Default` is pg-boss's defaults.
pub struct StopOptions {
    /// `graceful`, default true: running handlers get until `timeout` to finish before their jobs
    /// are failed ("pg-boss shut down while active").
    pub graceful: bool,
    /// `close`, default true: close the connection pool once stopped.
    pub close: bool,
    /// `timeout`, default 30 seconds: how long a graceful stop waits.
    pub timeout: Duration,
}

impl Default for StopOptions {
    fn default() -> Self {
        StopOptions {
            graceful: true,
            close: true,
            timeout: Duration::from_secs(30),
        }
    }
}

/// One pg-boss instance: `new PgBoss(options)`. Its methods are pg-boss's, named in snake case;
/// most need [`Boss::start`] first and fail with [`ErrorCode::NotStarted`] otherwise.
///
/// The instance's workers and background services are tasks spawned on the Tokio runtime it is
/// created and started in: they run only while that runtime does.
pub struct Boss {
    config: BossConfig,
    pool: Mutex<PgPool>,
    /// The caller's database handle the instance was made with (pg-boss's constructor `db`):
    /// then every statement goes through it, and the pool above is never used (it is lazy, so it
    /// never connects).
    caller: Option<Arc<dyn CallerDb>>,
    queues: Arc<QueueCache>,
    workers: Arc<Mutex<Vec<Arc<WorkerHandle>>>>,
    lifecycle: Mutex<Lifecycle>,
    /// Held by `start()` and `stop()` from beginning to end, so one waits for the other.
    transition: tokio::sync::Mutex<()>,
    /// Raised by `stop()` and [`Boss::cancel_start`], lowered once the stop holds `transition`:
    /// a start waiting for the database meanwhile gives up.
    start_cancel: tokio::sync::watch::Sender<bool>,
    /// Whether the pool is open for calls: from `start()` until a `stop()` that closes it.
    opened: AtomicBool,
    events: Arc<dyn EventSink>,
    /// The schema's statements, rendered once; and how they are sent on our connections: as
    /// `preparedStatements` says, else as the first `start()` finds out (see
    /// [`crate::sql::pooler`]). Until then statements go unnamed, which works on any connection.
    statements: Arc<Statements>,
    statement_mode: Mutex<Option<StatementMode>>,
    /// What gave a pooler away, when the check found one (LISTEN/NOTIFY is not tried then).
    pooler: Mutex<Option<String>>,
    /// The background services while started, stopped in the order they were started, in two
    /// groups: the ones that end before the workers do, and the ones that outlive them.
    services: tokio::sync::Mutex<Services>,
    late_services: tokio::sync::Mutex<Services>,
    /// The background-migration runner while started with `migrate` on (also one of the late
    /// services): `isBamWorking()` asks it, and a stop drains it as soon as it begins.
    bam: Mutex<Option<Arc<BamService>>>,
    /// Running jobs per group in this instance, for `localGroupConcurrency`.
    local_groups: Arc<crate::worker::local_groups::LocalGroups>,
    /// This instance's id, as pg-boss gives every instance one (warnings name it).
    instance_id: Uuid,
    /// Handlers that outran their expiration.
    overruns: OverrunLog,
    /// Concurrent `send()`s, coalesced per queue.
    sends: Arc<SendCoalescer>,
    /// The settles of the workers and of the application's complete()/fail() calls, shared per
    /// queue (`ops::completer`).
    completer: Arc<crate::ops::completer::Completer>,
    /// Where pooled connections found dead are reported (an `error` event).
    lost: db::LostConnection,
    /// The database's clock as this instance reads it (skew measured by the timekeeper).
    clock: Arc<DbClock>,
    /// Raised while a cron pass runs (`isTimekeeping()`), and while a clock reading is under way
    /// (`isCheckingSkew()`).
    timekeeping: Arc<Busy>,
    checking_skew: Arc<Busy>,
    /// Whether the LISTEN/NOTIFY listener (`useListenNotify`) is listening right now.
    listening: Arc<AtomicBool>,
    /// Whether the caller's handle can LISTEN itself (its `listen()`): its owner then listens for
    /// the instance (see `caller_listen.rs`).
    caller_listens: AtomicBool,
    /// Whether anyone listens for `wip` events (set by the binding).
    wip_listening: Arc<AtomicBool>,
    /// Whether workers report each batch's settle (set by the binding while telemetry records).
    settle_reports: Arc<AtomicBool>,
    /// The queues whose workers report their settles to job spies (set by the binding).
    spies: Arc<crate::worker::spies::SpyWatch>,
    /// The open transactions of transactional handlers (`work({ transactional: true })`).
    transactions: Arc<crate::worker::HandlerTransactions>,
    /// What the timers of the workers and services wait on (a test clock's, when given one).
    timers: crate::clock::Clock,
    /// A password supplied after construction (see `set_password`).
    password: Mutex<Option<String>>,
    /// Held while a supervision pass runs, so this instance runs one at a time (`isMaintaining()`),
    /// with what the vacuum check remembers between passes.
    maintenance: Arc<tokio::sync::Mutex<crate::ops::vacuum::VacuumState>>,
    /// What the reindex passes remember, shared by the background ones and `supervise()`'s.
    reindex_state: Arc<tokio::sync::Mutex<crate::ops::upkeep::ReindexState>>,
    /// Flow resolution: what its background passes and `resolveFlow()` share.
    flow_resolver: Arc<crate::service::flow_resolver::FlowResolver>,
    /// The process this instance runs in, for its registry row.
    host: Mutex<crate::service::registry::Host>,
}

impl Boss {
    /// An instance for `config`, reporting to `events` ([`NoEvents`](crate::event::NoEvents)
    /// to drop them). Nothing connects before [`Boss::start`].
    pub fn new(config: BossConfig, events: Arc<dyn EventSink>) -> Result<Boss> {
        Boss::with_db(config, events, None)
    }

    /// [`Boss::new`], running every statement through `db` when one is given (pg-boss's
    /// constructor `db`): the instance opens no connection of its own then, and leaves closing
    /// `db` to its owner.
    pub fn with_db(
        mut config: BossConfig,
        events: Arc<dyn EventSink>,
        db: Option<Arc<dyn CallerDb>>,
    ) -> Result<Boss> {
        let instance_id = Uuid::new_v4();
        if let Some(name) = config.instance.connection_name(instance_id) {
            config.connection.application_name = name;
        }
        if config.test_clock {
            // Every session reads the schema's test clock through job_now(), never real time.
            config
                .connection
                .server_settings
                .push((TEST_CLOCK_SETTING.to_string(), "on".to_string()));
        }
        let lost = lost_connections(&events);
        let pool = db::pool(&config.connection, Some(lost.clone()))?;
        let timers = if config.test_clock {
            crate::clock::Clock::manual(0)
        } else {
            crate::clock::Clock::System
        };
        let flow_resolver = Arc::new(crate::service::flow_resolver::FlowResolver::new(
            config.flow.clone(),
            events.clone(),
        ));
        let overruns = OverrunLog::new(
            instance_id,
            WarningSink::new(events.clone(), &config.observability),
            Duration::from_millis(config.handler_overrun_window_ms),
        );
        let workers: Arc<Mutex<Vec<Arc<WorkerHandle>>>> = Arc::default();
        let listening: Arc<AtomicBool> = Arc::default();
        let sends = Arc::new(SendCoalescer::with_wakeup(local_wakeup(
            workers.clone(),
            listening.clone(),
        )));
        Ok(Boss {
            pool: Mutex::new(pool),
            caller: db,
            queues: Arc::new(QueueCache::new(!config.backend.no_listen_notify)),
            workers,
            lifecycle: Mutex::new(Lifecycle::Created),
            transition: tokio::sync::Mutex::new(()),
            start_cancel: tokio::sync::watch::channel(false).0,
            opened: AtomicBool::new(false),
            events,
            statements: Arc::new(Statements::with_profile(&config.schema, &config.backend)),
            statement_mode: Mutex::new(config.prepared_statements.map(|prepared| {
                if prepared {
                    StatementMode::Prepared
                } else {
                    StatementMode::Unnamed
                }
            })),
            pooler: Mutex::new(None),
            services: Default::default(),
            late_services: Default::default(),
            bam: Mutex::new(None),
            local_groups: Arc::default(),
            instance_id,
            overruns,
            sends,
            clock: Arc::new(if config.test_clock {
                DbClock::over(timers.clone())
            } else {
                DbClock::default()
            }),
            completer: Arc::default(),
            lost,
            timekeeping: Arc::default(),
            checking_skew: Arc::default(),
            listening,
            caller_listens: AtomicBool::new(false),
            wip_listening: Arc::default(),
            settle_reports: Arc::default(),
            spies: Arc::default(),
            transactions: Arc::default(),
            timers,
            maintenance: Arc::new(tokio::sync::Mutex::new(
                crate::ops::vacuum::VacuumState::new(instance_id),
            )),
            reindex_state: Arc::default(),
            password: Mutex::new(None),
            flow_resolver,
            host: Mutex::default(),
            config,
        })
    }

    /// The id this instance registers under and names in its warnings.
    pub fn instance_id(&self) -> Uuid {
        self.instance_id
    }

    /// The configuration it was created with.
    pub fn config(&self) -> &BossConfig {
        &self.config
    }

    /// How to connect: the configured options, with a password supplied since (`set_password`).
    fn connection(&self) -> crate::config::ConnectionOptions {
        let mut connection = self.config.connection.clone();
        if let Some(password) = self.password.lock().unwrap().clone() {
            connection.password = Some(password);
        }
        connection
    }

    /// A password obtained after construction (pg-boss's `password` may be a function, which the
    /// JS entry calls at `start()`): the pool is rebuilt with it. Only while not started.
    pub fn set_password(&self, password: String) -> Result<()> {
        ensure!(
            *self.lifecycle.lock().unwrap() != Lifecycle::Started,
            "the password can only change while pg-boss is not started"
        );
        *self.password.lock().unwrap() = Some(password);
        if self.caller.is_some() {
            return Ok(());
        }
        let replaced = std::mem::replace(&mut *self.pool.lock().unwrap(), self.new_pool()?);
        // Idle connections of the old pool go; nothing else uses it before start().
        tokio::spawn(async move { replaced.close().await });
        Ok(())
    }

    /// A pool for the current connection options, reporting lost connections as `error` events.
    fn new_pool(&self) -> Result<PgPool> {
        db::pool(&self.connection(), Some(self.lost.clone()))
    }

    /// What the instance's timers wait on: real time, or the test clock it was made with
    /// (`clock: 'test'`), whose [`ManualClock`](crate::clock::ManualClock) the test moves.
    pub fn timers(&self) -> &crate::clock::Clock {
        &self.timers
    }

    /// Where this instance reports what happens in the background.
    pub fn events(&self) -> &Arc<dyn EventSink> {
        &self.events
    }

    fn schema(&self) -> &str {
        &self.config.schema
    }

    /// The pool for any statement; works before `start()` too (the utility calls need it).
    fn pool(&self) -> PgPool {
        self.pool.lock().unwrap().clone()
    }

    /// Where statements run: the caller's handle the instance was made with, or our pool.
    fn handle(&self) -> Handle {
        match &self.caller {
            Some(db) => Handle::Caller(db.clone()),
            None => Handle::Pool(self.pool()),
        }
    }

    /// Whether the instance runs on a caller's handle (the constructor `db`).
    pub fn has_caller_db(&self) -> bool {
        self.caller.is_some()
    }

    /// Where statements run and what they say; works before `start()` too.
    fn db(&self) -> Db {
        Db {
            handle: self.handle(),
            mode: self
                .statement_mode
                .lock()
                .unwrap()
                .unwrap_or(StatementMode::Unnamed),
            sql: self.statements.clone(),
            lost: Some(self.lost.clone()),
        }
    }

    /// [`Boss::db`], for the calls that need the pool `start()` opens (still open after
    /// `stop({ close: false })`, as in pg-boss).
    /// A caller's handle is the caller's to open and close: it is always there, as in pg-boss.
    fn started_db(&self) -> Result<Db> {
        if self.caller.is_none() {
            self.started_pool()?;
        }
        Ok(self.db())
    }

    /// The test signals of background service `name` while it runs (see [`Signals`]): how many
    /// passes it has finished, to wait for the next one instead of sleeping.
    pub async fn service_signals(&self, name: &str) -> Option<Signals> {
        let early = self.services.lock().await.signals(name);
        match early {
            Some(signals) => Some(signals),
            None => self.late_services.lock().await.signals(name),
        }
    }

    /// Starts a background service in the group that stops before the workers.
    async fn start_service(&self, service: impl Service) {
        let running = service::start_on(&self.timers, Arc::new(service), self.events.clone());
        self.services.lock().await.push(running);
    }

    /// The pool, for the calls that need it open: from `start()` until a `stop()` that closes it.
    fn started_pool(&self) -> Result<PgPool> {
        let pool = self.pool();
        if self.opened.load(Ordering::SeqCst) && !pool.is_closed() {
            Ok(pool)
        } else {
            Err(Error::new(ErrorCode::NotOpened, NOT_OPENED))
        }
    }

    /// `start()`: installs the schema when it is missing (with `migrate`), checks its version,
    /// and starts the background services `config` asks for (supervision, the timekeeper,
    /// the listener, background migrations, the registry heartbeat). Starting a started instance
    /// does nothing; a stopped one can start again.
    pub async fn start(&self) -> Result<()> {
        self.start_attempt(1).await
    }

    /// `start()` as try number `attempt` of `start({ attempts })`, which the registry records.
    ///
    /// Concurrent calls run one after the other (the later ones find the instance started), and a
    /// start waits for a `stop()` in flight. While the database cannot be reached the start keeps
    /// trying to connect for up to `connectionTimeoutMillis`, then fails with the pool's error;
    /// [`Boss::stop`] or [`Boss::cancel_start`] ends that wait at once.
    pub async fn start_attempt(&self, attempt: u32) -> Result<()> {
        let cancelled = self.start_cancel.subscribe();
        let _turn = self.transition.lock().await;
        if *self.lifecycle.lock().unwrap() == Lifecycle::Started {
            return Ok(());
        }
        if self.caller.is_none() {
            self.open_pool(cancelled).await?;
        }
        self.warn_if_yugabyte_unprofiled().await;
        migrate::prepare(&self.db(), &self.config).await?;
        if let Some(manual) = self.timers.as_manual() {
            let script = crate::sql::test_clock::attach(self.schema(), manual.now_ms());
            self.db().exec().execute_script(&script).await?;
        }
        // A start refused before this point leaves the instance refusing calls, as pg-boss does.
        self.opened.store(true, Ordering::SeqCst);
        *self.lifecycle.lock().unwrap() = Lifecycle::Started;
        if self.config.use_listen_notify {
            self.start_listener().await;
        }
        self.start_background().await;
        self.start_flow_resolution().await;
        if self.config.schedule {
            self.start_timekeeper().await?;
        }
        if self.config.migrate {
            let settings = BamSettings::from_config(&self.config);
            let bam = Arc::new(BamService::new(BamRunner::new(
                self.db(),
                settings,
                self.events.clone(),
            )));
            let running = service::start_on(&self.timers, bam.clone(), self.events.clone());
            self.late_services.lock().await.push(running);
            *self.bam.lock().unwrap() = Some(bam);
        }
        // Last of the late services: it marks the row stopped once everything else has ended.
        self.start_registry(attempt).await;
        Ok(())
    }

    /// pg-boss's start-time check: a YugabyteDB server (told by its version string) needs the
    /// `yugabytedb` profile's layout and lock-free statements, so an instance without them says so
    /// (a `warning` event). Best effort: a server that does not answer is let go.
    async fn warn_if_yugabyte_unprofiled(&self) {
        let profile = &self.config.backend;
        if profile.no_table_partitioning && profile.no_advisory_locks {
            return;
        }
        let db = self.db();
        let Ok(Some((version,))) = db
            .exec()
            .fetch_optional::<(String,)>(&db.sql.install.server_version, Vec::new())
            .await
        else {
            return;
        };
        let version = version.to_lowercase();
        if version.contains("yugabyte") || version.contains("-yb-") {
            self.events
                .emit(crate::event::Event::Warning(crate::ops::warnings::Warning {
                    kind: "backend",
                    message: "YugabyteDB detected. YugabyteDB is not supported. Until the next major, backend: 'yugabytedb' avoids the table partitioning and advisory locks that fail there.".to_string(),
                    data: json!({ "backend": "yugabytedb" }),
                }));
        }
    }

    /// Opens our pool for a start: waits for its first connection (a `stop()` may cut that wait
    /// short), then picks how statements are sent on it.
    async fn open_pool(&self, mut cancelled: tokio::sync::watch::Receiver<bool>) -> Result<()> {
        if self.pool().is_closed() {
            *self.pool.lock().unwrap() = self.new_pool()?;
        }
        // The wait for a first connection is what a stop() may cut short: nothing has begun then.
        // A database that answers connects well within the grace, so a stop right after start()
        // finds the instance started, as in pg-boss; one that does not is given up on.
        let pool = self.pool();
        let waiting_since = tokio::time::Instant::now();
        let given_up = async move {
            let _ = cancelled.wait_for(|raised| *raised).await;
            tokio::time::sleep_until(waiting_since + START_CANCEL_GRACE).await;
        };
        tokio::select! {
            connection = pool.acquire() => drop(connection?),
            _ = given_up => {
                return Err(Error::new(
                    ErrorCode::NotStarted,
                    "start() was cancelled by stop() while waiting for the database",
                ))
            }
        }
        self.choose_statement_mode().await
    }

    /// Unless `preparedStatements` decided it, finds out (once) whether a pooler stands between
    /// this instance and PostgreSQL, and so how statements are sent.
    async fn choose_statement_mode(&self) -> Result<()> {
        if self.statement_mode.lock().unwrap().is_some() {
            return Ok(());
        }
        let dialed = db::connect_options(&self.connection())?.get_port();
        let found = crate::sql::pooler::detect(&self.db(), dialed).await?;
        *self.pooler.lock().unwrap() = found.pooler;
        *self.statement_mode.lock().unwrap() = Some(found.mode);
        Ok(())
    }

    /// Ends a `start()` that is waiting for the database (it fails once it has waited a second
    /// for its first connection), until the next `stop()` has begun; a start past that point is
    /// not interrupted. `stop()` does this itself before it
    /// waits for the start.
    pub fn cancel_start(&self) {
        self.start_cancel.send_replace(true);
    }

    /// `stop(options)`: stops the background services and the workers; a graceful stop lets
    /// running handlers finish for up to `timeout`, then fails the jobs still held ("pg-boss shut
    /// down while active") and drops their handlers. Returns true when it stopped something (and
    /// pg-boss's `stopped` event is due).
    ///
    /// A `start()` in flight is waited for (one still waiting for the database is cancelled first),
    /// and stopped. The stop settles within `timeout` plus five seconds even when the database
    /// stops answering: background passes and handlers get until `timeout`, and the statements
    /// that end the instance are given up on five seconds after that.
    pub async fn stop(&self, options: StopOptions) -> Result<bool> {
        self.cancel_start();
        let _turn = self.transition.lock().await;
        // The starts in flight when this stop was asked for have ended; later ones go ahead.
        self.start_cancel.send_replace(false);
        let was_started = {
            let mut state = self.lifecycle.lock().unwrap();
            let started = *state == Lifecycle::Started;
            if started {
                *state = Lifecycle::Stopped;
            }
            started
        };
        if !was_started {
            if options.close {
                self.close_pool(tokio::time::Instant::now() + STOP_CLEANUP)
                    .await;
            }
            return Ok(false);
        }
        let began = tokio::time::Instant::now();
        let grace_end = began + options.timeout;
        let cleanup_end = grace_end + STOP_CLEANUP;
        // A running background migration gets until `timeout` after stop() began, as in pg-boss;
        // it claims nothing new from here on.
        let deadline = if options.graceful { grace_end } else { began };
        let bam = self.bam.lock().unwrap().take();
        if let Some(bam) = bam {
            bam.drain();
        }
        // The workers stop claiming now; a pass in flight finishes (until the grace ends), so
        // nothing is cut off halfway through a batch.
        let workers: Vec<Arc<WorkerHandle>> = std::mem::take(&mut *self.workers.lock().unwrap());
        for worker in &workers {
            worker.request_stop();
        }
        self.services
            .lock()
            .await
            .stop_all_within(grace_end, cleanup_end)
            .await;
        let _ = tokio::time::timeout_at(cleanup_end, self.flow_resolver.stop()).await;
        if options.graceful {
            let all_done = futures_join_all(workers.iter().map(|w| w.join()));
            let _ = tokio::time::timeout_at(grace_end, all_done).await;
        }
        let db = self.db();
        self.fail_abandoned(&workers, cleanup_end).await;
        for worker in &workers {
            worker.join().await;
        }
        let _ = tokio::time::timeout_at(cleanup_end, self.overruns.flush(&db)).await;
        self.sends.close();
        // Settles handed to the completer (the application's complete() and fail() calls among
        // them) are answered before the pool closes.
        let _ = tokio::time::timeout_at(cleanup_end, self.completer.close()).await;
        // The background migration's command in hand gets until the deadline; the registry
        // heartbeat ends last, so a graceful stop reads as live until its workers are done.
        self.late_services
            .lock()
            .await
            .stop_all_within(deadline, cleanup_end)
            .await;
        if self.timers.as_manual().is_some() {
            let script = crate::sql::test_clock::detach(self.schema());
            let detached = db.exec().execute_script(&script);
            if let Ok(Err(err)) = tokio::time::timeout_at(cleanup_end, detached).await {
                self.events.error(&Error::from(err));
            }
        }
        if options.close {
            self.close_pool(cleanup_end).await;
        }
        Ok(true)
    }

    /// Closes the pool: no statement starts on it from here on; connections still out (one stuck
    /// on a connection that no longer answers) are waited for until `until`, then left to close as
    /// they come back.
    async fn close_pool(&self, until: tokio::time::Instant) {
        self.opened.store(false, Ordering::SeqCst);
        if self.caller.is_some() {
            return;
        }
        let pool = self.pool();
        let _ = tokio::time::timeout_at(until, pool.close()).await;
    }

    /// Starts listening for notifications; when that fails the instance polls only, and says so
    /// with pg-boss's `listen_notify_unavailable` warning. Through a pooler the check on start
    /// found, it is not tried: a LISTEN there registers on a server connection the pooler lends to
    /// others, whose statements would then receive the notifications.
    async fn start_listener(&self) {
        let backend = self.config.backend;
        if backend.no_listen_notify {
            // The backend has no LISTEN/NOTIFY at all (CockroachDB): configuration, not a
            // failure, so emitted and not stored, as pg-boss does.
            let name = backend.backend.name();
            self.events
                .emit(crate::event::Event::Warning(crate::ops::warnings::Warning {
                    kind: LISTEN_NOTIFY_UNAVAILABLE,
                    message: format!(
                        "useListenNotify is not supported on the {name} backend. Continuing with polling only."
                    ),
                    data: json!({ "type": LISTEN_NOTIFY_UNAVAILABLE, "backend": name }),
                }));
            return;
        }
        let db = self.db();
        let wakeup = Arc::new(WorkerWakeup {
            workers: self.workers.clone(),
            queues: self.queues.clone(),
        });
        if self.caller.is_some() {
            if self.caller_listens.load(Ordering::SeqCst) {
                // Its owner listens through it, once started.
                return;
            }
            // A caller's handle offers statements only: no session of its own to LISTEN on.
            // Configuration, not a failure: emitted, not stored, as pg-boss does.
            self.events
                .emit(crate::event::Event::Warning(crate::ops::warnings::Warning {
                    kind: LISTEN_NOTIFY_UNAVAILABLE,
                    message: "useListenNotify is enabled but the database connection does not support LISTEN/NOTIFY. Continuing with polling only.".to_string(),
                    data: json!({ "type": LISTEN_NOTIFY_UNAVAILABLE }),
                }));
            return;
        }
        let pooler = self.pooler.lock().unwrap().clone();
        let started = async {
            if let Some(seen) = pooler {
                return Err(Error::new(
                    ErrorCode::Internal,
                    format!("LISTEN/NOTIFY cannot work through a connection pooler ({seen}); set preparedStatements: true if there is none"),
                ));
            }
            let channel = crate::service::listener::channel(&db).await?;
            let connect = db::connect_options(&self.connection())?;
            Listener::connect(
                connect,
                &db,
                channel,
                self.config.listener,
                wakeup,
                self.events.clone(),
                self.listening.clone(),
            )
            .await
        };
        match started.await {
            Ok(listener) => self.start_service(listener).await,
            Err(err) => self.listen_failed(&db, &err.message).await,
        }
    }

    /// pg-boss's `listen_notify_unavailable` warning for a listener that could not start, stored
    /// with `persistWarnings`: the instance polls only.
    async fn listen_failed(&self, db: &Db, error: &str) {
        let warning = crate::ops::warnings::Warning {
            kind: LISTEN_NOTIFY_UNAVAILABLE,
            message: "Failed to start LISTEN/NOTIFY listener. Continuing with polling only."
                .to_string(),
            data: json!({ "type": LISTEN_NOTIFY_UNAVAILABLE, "instance": self.instance_id, "error": error }),
        };
        WarningSink::new(self.events.clone(), &self.config.observability)
            .publish(db, &warning)
            .await;
    }

    /// The supervision pass every `superviseIntervalSeconds` (when `supervise` is on), and the
    /// queue-cache refresh every `queueCacheIntervalSeconds`.
    async fn start_background(&self) {
        if self.config.supervise {
            self.start_service(Supervisor {
                db: self.db(),
                settings: self.supervisor_settings(),
                events: self.events.clone(),
                running: self.maintenance.clone(),
            })
            .await;
        }
        // pg-boss skips the whole pass, bloat detection included, on a backend with no REINDEX
        // (its profile's noReindex): there is no btree page bloat there to find.
        if self.config.supervise && !self.config.backend.no_reindex {
            self.start_service(crate::service::reindex::Reindexer {
                db: self.db(),
                settings: self.config.upkeep,
                every: Duration::from_secs_f64(self.config.supervise_interval_seconds),
                sink: WarningSink::new(self.events.clone(), &self.config.observability),
                state: self.reindex_state.clone(),
                timers: self.timers.clone(),
            })
            .await;
        }
        self.start_service(QueueCacheRefresh {
            queues: self.queues.clone(),
            every: Duration::from_secs_f64(self.config.queue_cache_interval_seconds),
        })
        .await;
    }
}

/// Reports connections the pool finds dead as `error` events, as pg-boss's pool reports them.
fn lost_connections(events: &Arc<dyn EventSink>) -> db::LostConnection {
    let events = events.clone();
    Arc::new(move |err| events.error(&err))
}

/// Awaits every future (the std library has no join_all; this is small enough not to add a crate).
async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    for f in futures {
        f.await;
    }
}
