//! `Boss`: one pg-boss instance — its pool, its queue cache, its workers and its lifecycle. The
//! binding (and any Rust caller) talks to the engine through this type.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::bam::{BamRunner, BamSettings, BamTask};
use crate::coalesce::SendCoalescer;
use crate::commands::{self, Stored};
use crate::config::BossConfig;
use crate::ensure;
use crate::error::{Error, ErrorCode, Result};
use crate::events::EventSink;
use crate::jobs::{self, CommandResponse, FetchRequest, JobTargets};
use crate::listener::{Listener, Wakeup};
use crate::options::{assert_queue_name, Options, WorkOptions};
use crate::overrun::OverrunLog;
use crate::queues::{self, QueueCache, QueueInfo};
use crate::supervisor::{PassReport, SupervisorSettings};
use crate::timekeeper::{DbClock, Timekeeper, TimekeeperContext, SEND_IT};
use crate::via::{CallerDb, Via};
use crate::warnings::WarningSink;
use crate::worker::{spawn_worker, JobHandler, WorkerContext, WorkerHandle};
use crate::{db, migrate};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

const LISTEN_NOTIFY_UNAVAILABLE: &str = "listen_notify_unavailable";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    Created,
    Started,
    Stopped,
}

/// The commands that act on jobs by id.
#[derive(Debug, Clone, Copy)]
pub enum JobCommand {
    Cancel,
    Resume,
    Retry,
    Delete,
    Touch,
}

impl JobCommand {
    pub fn method(self) -> &'static str {
        match self {
            JobCommand::Cancel => "cancel",
            JobCommand::Resume => "resume",
            JobCommand::Retry => "retry",
            JobCommand::Delete => "deleteJob",
            JobCommand::Touch => "touch",
        }
    }

    pub fn from_method(method: &str) -> Option<JobCommand> {
        [
            JobCommand::Cancel,
            JobCommand::Resume,
            JobCommand::Retry,
            JobCommand::Delete,
            JobCommand::Touch,
        ]
        .into_iter()
        .find(|c| c.method() == method)
    }
}

/// What `publish()` did: how many queues it sent to, the sends that failed and the jobs created.
pub struct PublishReport {
    pub subscribers: usize,
    pub failures: Vec<(String, Error)>,
    /// The jobs created, by queue (a queue's policy may have refused its job).
    pub sent: Vec<(String, Uuid)>,
}

pub struct StopOptions {
    pub graceful: bool,
    pub close: bool,
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

pub struct Boss {
    config: BossConfig,
    pool: Mutex<PgPool>,
    queues: Arc<QueueCache>,
    workers: Arc<Mutex<Vec<Arc<WorkerHandle>>>>,
    lifecycle: Mutex<Lifecycle>,
    events: Arc<dyn EventSink>,
    background: Mutex<Option<Background>>,
    /// The background-migration runner's task, while started with `migrate` on.
    bam: Mutex<Option<BamTask>>,
    /// Running jobs per group in this instance, for `localGroupConcurrency`.
    local_groups: Arc<crate::groups::LocalGroups>,
    /// This instance's id, as pg-boss gives every instance one (warnings name it).
    instance_id: Uuid,
    /// Handlers that outran their expiration.
    overruns: OverrunLog,
    /// Concurrent `send()`s, coalesced per queue.
    sends: Arc<SendCoalescer>,
    /// The database's clock as this instance reads it (skew measured by the timekeeper).
    clock: Arc<DbClock>,
    /// The cron pass and clock checks, while started with `schedule` on.
    timekeeper: Mutex<Option<Timekeeper>>,
    /// The LISTEN/NOTIFY listener while it runs (`useListenNotify`), and whether it is listening.
    listener: Mutex<Option<Listener>>,
    listening: Arc<AtomicBool>,
    /// Whether anyone listens for `wip` events (set by the binding).
    wip_listening: Arc<AtomicBool>,
    /// The queues whose workers report their settles to job spies (set by the binding).
    spies: Arc<crate::spies::SpyWatch>,
    /// A password supplied after construction (see `set_password`).
    password: Mutex<Option<String>>,
    /// Held while a supervision pass runs, so this instance runs one at a time (`isMaintaining()`).
    maintenance: Arc<tokio::sync::Mutex<()>>,
    /// Flow resolution: background passes and `resolveFlow()` (see flows.rs).
    navigator: Arc<crate::flows::Navigator>,
    /// The process this instance runs in, for its registry row, and the row's heartbeat task.
    host: Mutex<crate::registry::Host>,
    registry: Mutex<Option<crate::registry::RegistryTask>>,
}

/// Wakes this instance's workers for the listener.
struct WorkerWakeup {
    workers: Arc<Mutex<Vec<Arc<WorkerHandle>>>>,
    queues: Arc<QueueCache>,
}

impl Wakeup for WorkerWakeup {
    fn queue(&self, name: &str) {
        for worker in self
            .workers
            .lock()
            .unwrap()
            .iter()
            .filter(|w| w.name() == name)
        {
            worker.notify();
        }
    }

    fn notify_queues(&self) {
        for worker in self.workers.lock().unwrap().iter() {
            if self.queues.get(worker.name()).is_some_and(|q| q.notify) {
                worker.notify();
            }
        }
    }
}

/// The instance's own background task (supervision and queue-cache refresh) and its stop signal.
struct Background {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Boss {
    pub fn new(mut config: BossConfig, events: Arc<dyn EventSink>) -> Result<Boss> {
        let instance_id = Uuid::new_v4();
        if let Some(name) = config.instance.connection_name(instance_id) {
            config.connection.application_name = name;
        }
        let pool = db::pool(&config.connection)?;
        let navigator = Arc::new(crate::flows::Navigator::new(
            config.schema.clone(),
            config.flow.clone(),
            events.clone(),
        ));
        let overruns = OverrunLog::new(
            instance_id,
            WarningSink::new(events.clone(), &config.observability),
            config.schema.clone(),
            Duration::from_millis(config.handler_overrun_window_ms),
        );
        Ok(Boss {
            config,
            pool: Mutex::new(pool),
            queues: Arc::new(QueueCache::default()),
            workers: Arc::default(),
            lifecycle: Mutex::new(Lifecycle::Created),
            events,
            background: Mutex::new(None),
            bam: Mutex::new(None),
            local_groups: Arc::default(),
            instance_id,
            overruns,
            sends: Arc::default(),
            clock: Arc::default(),
            timekeeper: Mutex::new(None),
            listener: Mutex::new(None),
            listening: Arc::default(),
            wip_listening: Arc::default(),
            spies: Arc::default(),
            maintenance: Arc::default(),
            password: Mutex::new(None),
            navigator,
            host: Mutex::default(),
            registry: Mutex::new(None),
        })
    }

    /// Describes the process for the registry (the binding tells what Node knows of it).
    pub fn set_host(&self, host: crate::registry::Host) {
        *self.host.lock().unwrap() = host;
    }

    /// The id this instance registers under and names in its warnings.
    pub fn instance_id(&self) -> Uuid {
        self.instance_id
    }

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
        let replaced = std::mem::replace(
            &mut *self.pool.lock().unwrap(),
            db::pool(&self.connection())?,
        );
        // Idle connections of the old pool go; nothing else uses it before start().
        tokio::spawn(async move { replaced.close().await });
        Ok(())
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

    /// The pool, for the calls that need a started instance.
    fn started_pool(&self) -> Result<PgPool> {
        match *self.lifecycle.lock().unwrap() {
            Lifecycle::Started => Ok(self.pool()),
            Lifecycle::Created => Err(Error::new(
                ErrorCode::NotStarted,
                "pg-boss is not started: call start() first",
            )),
            Lifecycle::Stopped => Err(Error::new(
                ErrorCode::NotStarted,
                "pg-boss is stopped: call start() to use it again",
            )),
        }
    }

    pub async fn start(&self) -> Result<()> {
        self.start_attempt(1).await
    }

    /// `start()` as try number `attempt` of `start({ attempts })`, which the registry records.
    pub async fn start_attempt(&self, attempt: u32) -> Result<()> {
        if *self.lifecycle.lock().unwrap() == Lifecycle::Started {
            return Ok(());
        }
        if self.pool().is_closed() {
            *self.pool.lock().unwrap() = db::pool(&self.connection())?;
        }
        migrate::prepare(&self.pool(), &self.config).await?;
        *self.lifecycle.lock().unwrap() = Lifecycle::Started;
        if self.config.use_listen_notify {
            self.start_listener().await;
        }
        self.start_background();
        // As in pg-boss, supervise only decides whether passes also run in the background.
        self.navigator.start(self.pool(), self.config.supervise);
        if self.config.schedule {
            self.start_timekeeper().await?;
        }
        if self.config.migrate {
            let runner = BamRunner::new(
                self.pool(),
                self.schema(),
                BamSettings::from_config(&self.config),
                self.events.clone(),
            );
            *self.bam.lock().unwrap() = Some(runner.spawn());
        }
        self.start_registry(attempt).await;
        Ok(())
    }

    /// As pg-boss's timekeeper starts: a clock reading, the send-it queue and its worker, then the
    /// cron pass (its first attempt at once) and the chained clock checks.
    async fn start_timekeeper(&self) -> Result<()> {
        let pool = self.pool();
        let context = TimekeeperContext {
            pool: pool.clone(),
            schema: self.config.schema.clone(),
            queues: self.queues.clone(),
            events: self.events.clone(),
            sink: WarningSink::new(self.events.clone(), &self.config.observability),
            clock: self.clock.clone(),
            settings: self.config.scheduling.clone(),
            clock_interval: Duration::from_secs_f64(
                self.config.observability.clock_monitor_interval_seconds,
            ),
        };
        let mut timekeeper = Timekeeper::start(context).await;
        queues::create_queue(
            &pool,
            self.schema(),
            &self.queues,
            &json!(SEND_IT),
            &Options::new(),
        )
        .await?;
        let options = json!({ "batchSize": 50, "pollingIntervalSeconds": self.config.scheduling.cron_worker_interval_seconds });
        let options = options.as_object().cloned().unwrap_or_default();
        self.work(
            &json!(SEND_IT),
            &options,
            timekeeper.handler(self.sends.clone()),
        )?;
        timekeeper.run();
        *self.timekeeper.lock().unwrap() = Some(timekeeper);
        Ok(())
    }

    async fn start_registry(&self, attempt: u32) {
        let workers = self.workers.clone();
        let wip: crate::registry::WorkersFn = Arc::new(move || wip_of(&workers, false));
        let host = self.host.lock().unwrap().clone();
        let mut registrant = crate::registry::Registrant::from_config(
            &self.config,
            self.instance_id,
            self.pool(),
            host,
            self.events.clone(),
            wip,
        );
        registrant.start_attempt = attempt;
        *self.registry.lock().unwrap() = crate::registry::start(registrant).await;
    }

    /// Stops the workers; a graceful stop lets running handlers finish for up to `timeout`, then
    /// fails the jobs still held ("pg-boss shut down while active") and drops their handlers.
    /// Returns true when it stopped something (and `stopped` should be emitted).
    pub async fn stop(&self, options: StopOptions) -> Result<bool> {
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
                self.pool().close().await;
            }
            return Ok(false);
        }
        let listener = self.listener.lock().unwrap().take();
        if let Some(listener) = listener {
            listener.stop().await;
        }
        // Before the workers stop: a pass in flight finishes, forwarding nothing more.
        let timekeeper = self.timekeeper.lock().unwrap().take();
        if let Some(timekeeper) = timekeeper {
            timekeeper.stop().await;
        }
        // A running background migration gets until `timeout` after stop() began, as in pg-boss;
        // it claims nothing new from here on.
        let deadline = tokio::time::Instant::now()
            + if options.graceful {
                options.timeout
            } else {
                Duration::ZERO
            };
        let bam = self.bam.lock().unwrap().take();
        if let Some(bam) = &bam {
            bam.drain();
        }
        let background = self.background.lock().unwrap().take();
        if let Some(background) = background {
            // Lets a pass in flight finish, so nothing is cut off halfway through a batch.
            background.stop.notify_one();
            let _ = background.task.await;
        }
        self.navigator.stop().await;
        let workers: Vec<Arc<WorkerHandle>> = std::mem::take(&mut *self.workers.lock().unwrap());
        for worker in &workers {
            worker.request_stop();
        }
        if options.graceful {
            let all_done = futures_join_all(workers.iter().map(|w| w.join()));
            let _ = tokio::time::timeout(options.timeout, all_done).await;
        }
        let pool = self.pool();
        for worker in &workers {
            let abandoned = worker.active_jobs();
            if !abandoned.is_empty() && !worker.is_finished() {
                if let Ok(queue) =
                    queues::cached(&pool, self.schema(), &self.queues, worker.name()).await
                {
                    let output = json!({ "value": "pg-boss shut down while active" }).to_string();
                    if let Err(err) = jobs::fail(
                        &pool,
                        self.schema(),
                        &queue,
                        &JobTargets::for_claimed(&abandoned),
                        Some(&output),
                    )
                    .await
                    {
                        self.events.emit("error", json!({ "message": err.message, "queue": worker.name(), "worker": worker.id() }));
                    }
                }
            }
            worker.abort();
        }
        for worker in &workers {
            worker.join().await;
        }
        self.overruns.flush(&pool).await;
        self.sends.close();
        if let Some(bam) = bam {
            bam.stop(deadline).await;
        }
        // Last before the pool closes, so a graceful stop reads as live until its workers are done.
        let registry = self.registry.lock().unwrap().take();
        if let Some(registry) = registry {
            registry.stop().await;
        }
        if options.close {
            pool.close().await;
        }
        Ok(true)
    }

    /// Starts listening for notifications; when that fails the instance polls only, and says so
    /// with pg-boss's `listen_notify_unavailable` warning.
    async fn start_listener(&self) {
        let pool = self.pool();
        let wakeup = Arc::new(WorkerWakeup {
            workers: self.workers.clone(),
            queues: self.queues.clone(),
        });
        let started = async {
            let channel = crate::listener::channel(&pool, self.schema()).await?;
            let connect = db::connect_options(&self.connection())?;
            crate::listener::start(
                connect,
                channel,
                self.config.listener,
                wakeup,
                self.events.clone(),
                self.listening.clone(),
            )
            .await
        };
        match started.await {
            Ok(listener) => *self.listener.lock().unwrap() = Some(listener),
            Err(err) => {
                let warning = crate::warnings::Warning {
                    kind: LISTEN_NOTIFY_UNAVAILABLE,
                    message:
                        "Failed to start LISTEN/NOTIFY listener. Continuing with polling only."
                            .to_string(),
                    data: json!({ "type": LISTEN_NOTIFY_UNAVAILABLE, "instance": self.instance_id, "error": err.message }),
                };
                WarningSink::new(self.events.clone(), &self.config.observability)
                    .publish(&pool, self.schema(), &warning)
                    .await;
            }
        }
    }

    fn supervisor_settings(&self) -> SupervisorSettings {
        SupervisorSettings {
            monitor_interval: Duration::from_secs_f64(self.config.monitor_interval_seconds),
            supervise_interval: Duration::from_secs_f64(self.config.supervise_interval_seconds),
            maintenance_interval: Duration::from_secs_f64(self.config.maintenance_interval_seconds),
            observability: self.config.observability,
        }
    }

    /// Starts the background task: a supervision pass every `superviseIntervalSeconds` (when
    /// `supervise` is on) and a queue-cache refresh every `queueCacheIntervalSeconds`, so changes
    /// other instances make to queues are picked up.
    fn start_background(&self) {
        let stop = Arc::new(Notify::new());
        let pool = self.pool();
        let schema = self.config.schema.clone();
        let settings = self.supervisor_settings();
        let supervise_every = self
            .config
            .supervise
            .then(|| Duration::from_secs_f64(self.config.supervise_interval_seconds));
        let cache_every = Duration::from_secs_f64(self.config.queue_cache_interval_seconds);
        let queues = self.queues.clone();
        let events = self.events.clone();
        let signal = stop.clone();
        let maintenance = self.maintenance.clone();
        let task = tokio::spawn(async move {
            let mut cache_tick =
                tokio::time::interval_at(tokio::time::Instant::now() + cache_every, cache_every);
            let far = Duration::from_secs(365 * 24 * 3600);
            let mut supervise_tick = tokio::time::interval_at(
                tokio::time::Instant::now() + supervise_every.unwrap_or(far),
                supervise_every.unwrap_or(far),
            );
            loop {
                tokio::select! {
                    _ = signal.notified() => return,
                    _ = cache_tick.tick() => queues.clear(),
                    _ = supervise_tick.tick(), if supervise_every.is_some() => {
                        // A supervise() call already running covers this tick, as in pg-boss.
                        let Ok(_running) = maintenance.try_lock() else { continue };
                        if let Err(err) = crate::warnings::supervise(&pool, &schema, None, settings, &events).await {
                            events.emit("error", json!({ "message": err.message, "code": err.code.as_str() }));
                        }
                    }
                }
            }
        });
        *self.background.lock().unwrap() = Some(Background { stop, task });
    }

    /// `supervise(name?)`: one supervision pass now, over one queue or all of them.
    pub async fn supervise(&self, name: Option<&Value>) -> Result<PassReport> {
        let pool = self.started_pool()?;
        let names = match name.filter(|n| !n.is_null()) {
            None => None,
            Some(name) => Some(vec![assert_queue_name(name)?.to_string()]),
        };
        // Waits for a pass in flight instead of skipping: the caller asked for this one.
        let _running = self.maintenance.lock().await;
        crate::warnings::supervise(
            &pool,
            self.schema(),
            names.as_deref(),
            self.supervisor_settings(),
            &self.events,
        )
        .await
    }

    /// `isMaintaining()`: whether a supervision pass of this instance is running.
    pub fn is_maintaining(&self) -> bool {
        self.maintenance.try_lock().is_err()
    }

    /// `getQueueStats(name, options)`: an array of datapoints, newest first (see stats.rs).
    pub async fn get_queue_stats(&self, name: &Value, options: &Options) -> Result<String> {
        let pool = self.started_pool()?;
        crate::stats::get_queue_stats(&pool, &self.config, &self.queues, name, options).await
    }

    pub async fn is_installed(&self) -> Result<bool> {
        migrate::is_installed(&self.pool(), self.schema()).await
    }

    pub async fn schema_version(&self) -> Result<Option<i32>> {
        if !self.is_installed().await? {
            return Ok(None);
        }
        migrate::schema_version(&self.pool(), self.schema()).await
    }

    /// `detectSchemaDrift()`: pg-boss's `SchemaDriftReport` as JSON (see drift/mod.rs).
    pub async fn detect_schema_drift(&self) -> Result<String> {
        let report = crate::drift::detect(&self.started_pool()?, self.schema()).await?;
        serde_json::to_string(&report).map_err(|e| Error::internal(format!("drift report: {e}")))
    }

    async fn queue(&self, pool: &PgPool, name: &str) -> Result<QueueInfo> {
        queues::cached(pool, self.schema(), &self.queues, name).await
    }

    pub async fn create_queue(&self, name: &Value, options: &Options) -> Result<()> {
        queues::create_queue(
            &self.started_pool()?,
            self.schema(),
            &self.queues,
            name,
            options,
        )
        .await
    }

    pub async fn update_queue(&self, name: &Value, options: &Options) -> Result<()> {
        queues::update_queue(
            &self.started_pool()?,
            self.schema(),
            &self.queues,
            name,
            options,
        )
        .await
    }

    pub async fn delete_queue(&self, name: &Value) -> Result<()> {
        queues::delete_queue(&self.started_pool()?, self.schema(), &self.queues, name).await
    }

    /// Queues as JSON text. `names` filters; `limit`/`after` page.
    pub async fn get_queues(
        &self,
        names: Option<Vec<String>>,
        limit: i64,
        after: Option<String>,
    ) -> Result<String> {
        let pool = self.started_pool()?;
        if let Some(names) = &names {
            for name in names {
                assert_queue_name(&Value::String(name.clone()))?;
            }
        }
        queues::get_queues_json(
            &pool,
            self.schema(),
            names.as_deref(),
            limit,
            after.as_deref(),
        )
        .await
    }

    pub async fn send(
        &self,
        name: &str,
        data: Value,
        options: Option<Value>,
    ) -> Result<Option<Uuid>> {
        self.send_in(None, name, data, options).await
    }

    /// The job calls that take pg-boss's `db` option: with `Some` handle, the same calls with
    /// their statements run through the caller's database handle, inside whatever transaction it
    /// holds; with `None`, on the pool as usual.
    pub fn through<'a>(&'a self, db: Option<&'a dyn CallerDb>) -> Through<'a> {
        Through { boss: self, db }
    }

    async fn send_in(
        &self,
        caller: Option<&dyn CallerDb>,
        name: &str,
        data: Value,
        options: Option<Value>,
    ) -> Result<Option<Uuid>> {
        let pool = self.started_pool()?;
        match caller {
            None => {
                send_to(
                    pool,
                    self.config.schema.clone(),
                    self.queues.clone(),
                    self.sends.clone(),
                    name.to_string(),
                    data,
                    options,
                )
                .await
            }
            Some(db) => {
                let (data, options) = jobs::prepare_send(data, options)?;
                let queue = self.queue(&pool, name).await?;
                jobs::send(
                    &pool,
                    Some(db),
                    self.schema(),
                    &queue,
                    &self.sends,
                    data,
                    options,
                )
                .await
            }
        }
    }

    pub async fn subscribe(&self, event: &str, name: &str) -> Result<()> {
        crate::pubsub::subscribe(&self.started_pool()?, self.schema(), event, name).await
    }

    pub async fn unsubscribe(&self, event: &str, name: &str) -> Result<()> {
        crate::pubsub::unsubscribe(&self.started_pool()?, self.schema(), event, name).await
    }

    /// `publish()`: sends the job to every queue subscribed to `event`, all at once. Answers the
    /// queues whose send failed, with why; a subscriber whose queue is gone is skipped, as pg-boss
    /// skips it.
    pub async fn publish(
        &self,
        event: &str,
        data: Value,
        options: Option<Value>,
    ) -> Result<PublishReport> {
        self.publish_in(None, event, data, options).await
    }

    /// With a caller's db the sends run one after another through it: they share its one
    /// connection and transaction anyway.
    async fn publish_in(
        &self,
        caller: Option<&dyn CallerDb>,
        event: &str,
        data: Value,
        options: Option<Value>,
    ) -> Result<PublishReport> {
        let pool = self.started_pool()?;
        let queues = crate::pubsub::subscribers(&pool, self.schema(), event).await?;
        let mut outcomes = Vec::with_capacity(queues.len());
        if let Some(db) = caller {
            for (index, queue) in queues.iter().enumerate() {
                outcomes.push((
                    index,
                    self.send_in(Some(db), queue, data.clone(), options.clone())
                        .await,
                ));
            }
        } else {
            let mut sends = tokio::task::JoinSet::new();
            for (index, queue) in queues.iter().enumerate() {
                let send = send_to(
                    pool.clone(),
                    self.config.schema.clone(),
                    self.queues.clone(),
                    self.sends.clone(),
                    queue.clone(),
                    data.clone(),
                    options.clone(),
                );
                sends.spawn(async move { (index, send.await) });
            }
            while let Some(joined) = sends.join_next().await {
                outcomes.push(
                    joined.map_err(|e| Error::internal(format!("publish task failed: {e}")))?,
                );
            }
        }
        let mut failures = Vec::new();
        let mut created = Vec::new();
        for (index, sent) in outcomes {
            match sent {
                Ok(Some(id)) => created.push((queues[index].clone(), id)),
                Err(err) if err.code != ErrorCode::QueueNotFound => {
                    failures.push((queues[index].clone(), err))
                }
                _ => {}
            }
        }
        failures.sort_by(|a, b| a.0.cmp(&b.0));
        created.sort();
        Ok(PublishReport {
            subscribers: queues.len(),
            failures,
            sent: created,
        })
    }

    pub async fn insert(
        &self,
        name: &Value,
        jobs_list: &[Value],
        return_id: bool,
    ) -> Result<Option<Vec<Uuid>>> {
        self.insert_in(None, name, jobs_list, return_id).await
    }

    async fn insert_in(
        &self,
        caller: Option<&dyn CallerDb>,
        name: &Value,
        jobs_list: &[Value],
        return_id: bool,
    ) -> Result<Option<Vec<Uuid>>> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let queue = self.queue(&pool, name).await?;
        jobs::insert(
            via(&pool, caller),
            self.schema(),
            &queue,
            jobs_list,
            return_id,
        )
        .await
    }

    /// Fetched jobs as JSON text of an array.
    pub async fn fetch(&self, name: &Value, options: &Options) -> Result<String> {
        self.fetch_in(None, name, options).await
    }

    async fn fetch_in(
        &self,
        caller: Option<&dyn CallerDb>,
        name: &Value,
        options: &Options,
    ) -> Result<String> {
        let pool = self.started_pool()?;
        ensure!(
            !matches!(name, Value::Null) && name.as_str() != Some(""),
            "missing queue name"
        );
        let request = FetchRequest::from_options(options)?;
        let name = assert_queue_name(name)?;
        let queue = self.queue(&pool, name).await?;
        Ok(
            jobs::fetch(via(&pool, caller), self.schema(), &queue, &request)
                .await?
                .json(),
        )
    }

    pub async fn complete(
        &self,
        name: &Value,
        ids: &Value,
        data: &Value,
        include_queued: bool,
    ) -> Result<CommandResponse> {
        self.complete_in(None, name, ids, data, include_queued)
            .await
    }

    async fn complete_in(
        &self,
        caller: Option<&dyn CallerDb>,
        name: &Value,
        ids: &Value,
        data: &Value,
        include_queued: bool,
    ) -> Result<CommandResponse> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let targets = JobTargets::from_value(ids, "complete")?;
        let queue = self.queue(&pool, name).await?;
        let output = jobs::output_from_value(data);
        jobs::complete(
            via(&pool, caller),
            self.schema(),
            &queue,
            &targets,
            output.as_deref(),
            include_queued,
        )
        .await
    }

    pub async fn fail(&self, name: &Value, ids: &Value, data: &Value) -> Result<CommandResponse> {
        self.fail_in(None, name, ids, data).await
    }

    async fn fail_in(
        &self,
        caller: Option<&dyn CallerDb>,
        name: &Value,
        ids: &Value,
        data: &Value,
    ) -> Result<CommandResponse> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let targets = JobTargets::from_value(ids, "fail")?;
        let queue = self.queue(&pool, name).await?;
        jobs::fail(
            via(&pool, caller),
            self.schema(),
            &queue,
            &targets,
            jobs::output_from_value(data).as_deref(),
        )
        .await
    }

    /// cancel / resume / retry / deleteJob / touch: `command` names which.
    pub async fn job_command(
        &self,
        command: JobCommand,
        name: &Value,
        ids: &Value,
    ) -> Result<CommandResponse> {
        self.job_command_in(None, command, name, ids).await
    }

    async fn job_command_in(
        &self,
        caller: Option<&dyn CallerDb>,
        command: JobCommand,
        name: &Value,
        ids: &Value,
    ) -> Result<CommandResponse> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let mut targets = JobTargets::from_value(ids, command.method())?;
        if matches!(command, JobCommand::Resume | JobCommand::Retry) {
            // These take plain ids: an attempt means nothing to a job that is not running.
            targets.attempts = None;
        }
        let queue = self.queue(&pool, name).await?;
        let schema = self.schema();
        let at = via(&pool, caller);
        // Counts are adjusted only for our own connection. Inside a caller's transaction the
        // queue row would stay locked for as long as the caller takes to commit, stalling the
        // supervisor; maintenance recounts anyway (pg-boss makes the same choice).
        let counted = caller.is_none();
        match command {
            JobCommand::Cancel => commands::cancel(at, schema, &queue, &targets).await,
            JobCommand::Retry => commands::retry(at, schema, &queue, &targets).await,
            JobCommand::Touch => commands::touch(at, schema, &queue, &targets).await,
            JobCommand::Resume => {
                let outcome = commands::resume(at, schema, &queue, &targets).await?;
                if counted {
                    // A resumed job stays in the total, as a live job now.
                    self.reduce_retained(&pool, &queue.name, 0, outcome.retained)
                        .await;
                }
                Ok(outcome.response)
            }
            JobCommand::Delete => {
                let outcome = commands::delete_jobs(at, schema, &queue, &targets).await?;
                if counted {
                    self.reduce_retained(&pool, &queue.name, outcome.retained, outcome.retained)
                        .await;
                }
                Ok(outcome.response)
            }
        }
    }

    /// Keeps a queue's cached counts in step after a command moved finished jobs out. The command
    /// has committed, so a failure here is reported, not returned; the next maintenance pass
    /// corrects the count anyway.
    async fn reduce_retained(&self, pool: &PgPool, queue: &str, removed: i64, held: i64) {
        if removed == 0 && held == 0 {
            return;
        }
        if let Err(err) = commands::reduce_retained(pool, self.schema(), queue, removed, held).await
        {
            self.events.emit(
                "error",
                json!({ "message": err.message, "code": err.code.as_str(), "queue": queue }),
            );
        }
    }

    /// deleteQueuedJobs / deleteStoredJobs / deleteAllJobs. `None` when a table was truncated
    /// (pg-boss answers null then), else how many jobs were deleted.
    pub async fn delete_stored_jobs(
        &self,
        name: Option<&Value>,
        which: Stored,
    ) -> Result<Option<i64>> {
        let pool = self.started_pool()?;
        let schema = self.schema();
        let Some(name) = name.filter(|n| !n.is_null()) else {
            ensure!(matches!(which, Stored::All), "Name is required");
            commands::truncate(&pool, schema, None).await?;
            return Ok(None);
        };
        let name = assert_queue_name(name)?;
        let queue = self.queue(&pool, name).await?;
        if matches!(which, Stored::All) && queue.partition {
            commands::truncate(&pool, schema, Some(&queue)).await?;
            return Ok(None);
        }
        let (deleted, retained) = commands::delete_stored(&pool, schema, &queue, which).await?;
        self.reduce_retained(&pool, &queue.name, deleted, retained)
            .await;
        Ok(Some(deleted))
    }

    /// `redrive()` and `previewRedrive()` on a dead letter queue, answered as JSON.
    pub async fn redrive(&self, name: &Value, options: &Options, preview: bool) -> Result<Value> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let queue = self.queue(&pool, name).await?;
        if preview {
            crate::redrive::preview(&pool, self.schema(), &queue, options).await
        } else {
            Ok(json!(
                crate::redrive::redrive(&pool, self.schema(), &queue, options).await?
            ))
        }
    }

    pub async fn get_job_by_id(&self, name: &Value, id: &str) -> Result<Option<String>> {
        self.get_job_by_id_in(None, name, id).await
    }

    async fn get_job_by_id_in(
        &self,
        caller: Option<&dyn CallerDb>,
        name: &Value,
        id: &str,
    ) -> Result<Option<String>> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let queue = self.queue(&pool, name).await?;
        jobs::get_job_by_id(via(&pool, caller), self.schema(), &queue, id).await
    }

    pub async fn find_jobs(&self, name: &Value, options: &Options) -> Result<String> {
        self.find_jobs_in(None, name, options).await
    }

    async fn find_jobs_in(
        &self,
        caller: Option<&dyn CallerDb>,
        name: &Value,
        options: &Options,
    ) -> Result<String> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let queue = self.queue(&pool, name).await?;
        jobs::find_jobs(via(&pool, caller), self.schema(), &queue, options).await
    }

    /// `update()` (or, with `upsert`, `upsert()`): `request` is `{ name, data?, options? }`;
    /// answers pg-boss's UpdateResponse / UpsertResponse.
    pub async fn update(&self, request: &Value, upsert: bool) -> Result<Value> {
        self.update_in(None, request, upsert).await
    }

    async fn update_in(
        &self,
        caller: Option<&dyn CallerDb>,
        request: &Value,
        upsert: bool,
    ) -> Result<Value> {
        let request = crate::updates::check(request, upsert)?;
        let pool = self.started_pool()?;
        let queue = self.queue(&pool, request.name()).await?;
        if upsert {
            crate::updates::upsert(&pool, caller, self.schema(), &queue, &request).await
        } else {
            crate::updates::update(&pool, caller, self.schema(), &queue, &request).await
        }
    }

    /// `getBlockedKeys()`: a key_strict_fifo queue's keys held by a failed job.
    pub async fn get_blocked_keys(
        &self,
        name: &Value,
        limit: i64,
        after: Option<String>,
    ) -> Result<Vec<String>> {
        let pool = self.started_pool()?;
        let name = assert_queue_name(name)?;
        let queue = self.queue(&pool, name).await?;
        crate::updates::blocked_keys(&pool, self.schema(), &queue, limit, after.as_deref()).await
    }

    /// `work()`: starts `localConcurrency` polling loops and returns the first one's id.
    pub fn work(
        &self,
        name: &Value,
        options: &Options,
        handler: Arc<dyn JobHandler>,
    ) -> Result<Uuid> {
        ensure!(
            !matches!(name, Value::Null) && name.as_str() != Some(""),
            "queue name is required"
        );
        let name = assert_queue_name(name)?.to_string();
        let work_options = WorkOptions::from_options(options)?;
        let pool = match *self.lifecycle.lock().unwrap() {
            Lifecycle::Started => self.pool(),
            Lifecycle::Created => {
                return Err(Error::new(
                    ErrorCode::NotStarted,
                    "Workers are disabled. pg-boss is not started: call start() first",
                ))
            }
            Lifecycle::Stopped => {
                return Err(Error::new(
                    ErrorCode::NotStarted,
                    "Workers are disabled. pg-boss is stopped",
                ))
            }
        };
        let ctx = Arc::new(WorkerContext {
            pool,
            schema: self.config.schema.clone(),
            queues: self.queues.clone(),
            events: self.events.clone(),
            local_groups: work_options.local_group_concurrency.clone().map(|limits| {
                self.local_groups.set_limits(&name, limits);
                self.local_groups.clone()
            }),
            overruns: self.overruns.clone(),
            listening: self.listening.clone(),
            wip_listening: self.wip_listening.clone(),
            spies: self.spies.clone(),
        });
        let mut workers = self.workers.lock().unwrap();
        let mut first = None;
        for _ in 0..work_options.local_concurrency {
            let handle = spawn_worker(
                ctx.clone(),
                name.clone(),
                first,
                work_options.clone(),
                handler.clone(),
            );
            first.get_or_insert(handle.id());
            workers.push(Arc::new(handle));
        }
        Ok(first.expect("localConcurrency is at least 1"))
    }

    /// Stops the workers of a queue (or the ones started by one `work()` call, or one worker).
    pub async fn off_work(&self, name: &Value, id: Option<&str>, wait: bool) -> Result<()> {
        ensure!(
            !matches!(name, Value::Null) && name.as_str() != Some(""),
            "queue name is required"
        );
        let name = name
            .as_str()
            .ok_or_else(|| Error::invalid("queue name must be a string"))?;
        let matching: Vec<Arc<WorkerHandle>> = {
            let mut workers = self.workers.lock().unwrap();
            let (matching, rest): (Vec<_>, Vec<_>) = workers.drain(..).partition(|w| {
                w.name() == name
                    && id.is_none_or(|id| w.id().to_string() == id || w.work_id().to_string() == id)
            });
            *workers = rest;
            matching
        };
        for worker in &matching {
            worker.request_stop();
        }
        if wait {
            for worker in &matching {
                worker.join().await;
            }
        }
        Ok(())
    }

    pub fn notify_worker(&self, id: &str) {
        for worker in self.workers.lock().unwrap().iter() {
            if worker.id().to_string() == id {
                worker.notify();
            }
        }
    }

    /// Whether `wip` events are wanted; workers report nothing per batch while they are not.
    pub fn set_wip_listening(&self, listening: bool) {
        self.wip_listening
            .store(listening, std::sync::atomic::Ordering::Relaxed);
    }

    /// The queues job spies watch: their workers report what each settle did (`spy` events).
    pub fn set_spied_queues(&self, queues: Vec<String>) {
        self.spies.set(queues);
    }

    /// `getWipData()`: every worker that has not stopped; pg-boss's internal queues only on request.
    pub fn wip(&self, include_internal: bool) -> Vec<Value> {
        wip_of(&self.workers, include_internal)
    }

    /// `getInstances()`: the registry's rows as JSON text, `limit` per page after the id `after`.
    pub async fn get_instances(&self, limit: i64, after: Option<String>) -> Result<String> {
        if let Some(after) = &after {
            ensure!(
                crate::registry::is_uuid_input(after),
                "getInstances: after must be a uuid"
            );
        }
        crate::registry::get_instances(
            &self.started_pool()?,
            self.schema(),
            limit,
            after.as_deref(),
        )
        .await
    }

    /// `flow()`: inserts a graph of jobs at once; answers each ref's job id, in input order.
    pub async fn flow(&self, jobs: &Value) -> Result<Vec<(String, String)>> {
        let checked = crate::flows::check_flow(jobs)?;
        let pool = self.started_pool()?;
        crate::flows::insert_flow(&pool, self.schema(), &self.queues, &checked).await
    }

    /// `resolveFlow()`: one resolution pass now. After `stop()` it does nothing, as in pg-boss.
    pub async fn resolve_flow(&self) -> Result<Vec<crate::flows::Resolved>> {
        if *self.lifecycle.lock().unwrap() == Lifecycle::Stopped {
            return Ok(Vec::new());
        }
        self.navigator.resolve_now(&self.started_pool()?).await
    }

    pub fn is_resolving_flow(&self) -> bool {
        self.navigator.is_working()
    }

    /// `getDependencies()` (`Parents`) and `getDependents()` (`Children`).
    pub async fn dependencies(
        &self,
        direction: crate::flows::Direction,
        name: &Value,
        id: &Value,
        options: &Options,
    ) -> Result<Vec<crate::flows::DependencyRef>> {
        let pool = self.started_pool()?;
        crate::flows::edges(&pool, self.schema(), direction, name, id, options).await
    }

    /// `isTimekeeping()`: whether a cron pass is running right now.
    pub fn is_timekeeping(&self) -> bool {
        self.timekeeper
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(Timekeeper::is_timekeeping)
    }

    /// `isCheckingSkew()`: whether a clock reading is under way.
    pub fn is_checking_skew(&self) -> bool {
        self.timekeeper
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(Timekeeper::is_checking_skew)
    }

    /// `schedule()`: `request` is `{ name?, cron?, data?, options? }` as the caller passed them
    /// (absent fields were undefined; `options.db` already removed).
    pub async fn schedule(&self, request: &Value) -> Result<()> {
        let pool = self.started_pool()?;
        let options = request
            .get("options")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let cron = request.get("cron").unwrap_or(&Value::Null);
        let data = request.get("data").unwrap_or(&Value::Null);
        crate::timekeeper::schedule(
            &pool,
            self.schema(),
            request.get("name"),
            cron,
            data,
            &options,
        )
        .await
    }

    /// `unschedule(name, key)`: `key` is `''` when left out.
    pub async fn unschedule(&self, name: &Value, key: &Value) -> Result<()> {
        crate::timekeeper::unschedule(&self.started_pool()?, self.schema(), name, key).await
    }

    /// `getSchedules()` / `getSchedule()` as JSON text; `key` is `None` when left undefined.
    pub async fn get_schedules(
        &self,
        name: &Value,
        key: Option<&Value>,
        limit: Option<i64>,
        after: Option<(String, String)>,
    ) -> Result<String> {
        crate::timekeeper::get_schedules(
            &self.started_pool()?,
            self.schema(),
            name,
            key,
            limit,
            after,
        )
        .await
    }

    /// `previewSchedule()`: epoch milliseconds; `from_ms` `None` is this instance's database time.
    pub fn preview_schedule(
        &self,
        cron: &Value,
        options: &Options,
        from_ms: Option<i64>,
    ) -> Result<Vec<i64>> {
        crate::timekeeper::preview(cron, options, from_ms, &self.clock)
    }

    /// `isBamWorking()`: whether the background-migration runner is in a poll right now.
    pub fn is_bam_working(&self) -> bool {
        self.bam
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(BamTask::is_working)
    }

    pub async fn get_bam_status(&self) -> Result<String> {
        let sql = format!(
            "SELECT COALESCE(json_agg(json_build_object('status', status, 'count', count, 'lastCreatedOn', last) ORDER BY status), '[]')::text
             FROM (SELECT status, count(*)::int AS count, max(created_on) AS last FROM {}.bam GROUP BY status) s",
            self.schema()
        );
        Ok(sqlx::query_scalar::<_, String>(&sql)
            .fetch_one(&self.started_pool()?)
            .await?)
    }

    pub async fn get_bam_entries(&self, limit: i64, after: Option<String>) -> Result<String> {
        let pool = self.started_pool()?;
        let schema = self.schema();
        let after = match after {
            None => None,
            Some(a) => Some(
                Uuid::parse_str(&a)
                    .map_err(|_| Error::invalid("getBamEntries: after must be a uuid"))?,
            ),
        };
        let sql = format!(
            "SELECT COALESCE(json_agg(json_build_object('id', id, 'name', name, 'version', version, 'status', status,
               'queue', queue, 'table', table_name, 'command', command, 'error', error, 'createdOn', created_on,
               'startedOn', started_on, 'completedOn', completed_on) ORDER BY version, created_on, id), '[]')::text
             FROM (SELECT * FROM {schema}.bam
                   WHERE $1::uuid IS NULL
                      OR (version, created_on, id) > (SELECT b.version, b.created_on, b.id FROM {schema}.bam b WHERE b.id = $1)
                   ORDER BY version, created_on, id LIMIT $2) e"
        );
        let text: String = sqlx::query_scalar(&sql)
            .bind(after)
            .bind(limit)
            .fetch_one(&pool)
            .await?;
        if let Some(after) = after {
            if text == "[]" {
                let exists: Option<i32> =
                    sqlx::query_scalar(&format!("SELECT 1 FROM {schema}.bam WHERE id = $1"))
                        .bind(after)
                        .fetch_optional(&pool)
                        .await?;
                ensure!(
                    exists.is_some(),
                    "getBamEntries: after names a row that no longer exists"
                );
            }
        }
        Ok(text)
    }
}

/// A [`Boss`] whose job calls run their statements through a caller's database handle; made by
/// [`Boss::through`]. Queue lookups still use the engine's pool, as they do in pg-boss.
pub struct Through<'a> {
    boss: &'a Boss,
    db: Option<&'a dyn CallerDb>,
}

impl Through<'_> {
    pub async fn send(
        &self,
        name: &str,
        data: Value,
        options: Option<Value>,
    ) -> Result<Option<Uuid>> {
        self.boss.send_in(self.db, name, data, options).await
    }

    pub async fn insert(
        &self,
        name: &Value,
        jobs_list: &[Value],
        return_id: bool,
    ) -> Result<Option<Vec<Uuid>>> {
        self.boss
            .insert_in(self.db, name, jobs_list, return_id)
            .await
    }

    pub async fn fetch(&self, name: &Value, options: &Options) -> Result<String> {
        self.boss.fetch_in(self.db, name, options).await
    }

    pub async fn complete(
        &self,
        name: &Value,
        ids: &Value,
        data: &Value,
        include_queued: bool,
    ) -> Result<CommandResponse> {
        self.boss
            .complete_in(self.db, name, ids, data, include_queued)
            .await
    }

    pub async fn fail(&self, name: &Value, ids: &Value, data: &Value) -> Result<CommandResponse> {
        self.boss.fail_in(self.db, name, ids, data).await
    }

    pub async fn job_command(
        &self,
        command: JobCommand,
        name: &Value,
        ids: &Value,
    ) -> Result<CommandResponse> {
        self.boss.job_command_in(self.db, command, name, ids).await
    }

    pub async fn get_job_by_id(&self, name: &Value, id: &str) -> Result<Option<String>> {
        self.boss.get_job_by_id_in(self.db, name, id).await
    }

    pub async fn find_jobs(&self, name: &Value, options: &Options) -> Result<String> {
        self.boss.find_jobs_in(self.db, name, options).await
    }

    pub async fn update(&self, request: &Value, upsert: bool) -> Result<Value> {
        self.boss.update_in(self.db, request, upsert).await
    }

    pub async fn publish(
        &self,
        event: &str,
        data: Value,
        options: Option<Value>,
    ) -> Result<PublishReport> {
        self.boss.publish_in(self.db, event, data, options).await
    }
}

fn via<'a>(pool: &'a PgPool, caller: Option<&'a dyn CallerDb>) -> Via<'a> {
    caller.map_or(Via::Pool(pool), Via::Caller)
}

/// One `send()`, owning what it uses so `publish()` can run several side by side.
async fn send_to(
    pool: PgPool,
    schema: String,
    cache: Arc<QueueCache>,
    sends: Arc<SendCoalescer>,
    name: String,
    data: Value,
    options: Option<Value>,
) -> Result<Option<Uuid>> {
    let (data, options) = jobs::prepare_send(data, options)?;
    let queue = queues::cached(&pool, &schema, &cache, &name).await?;
    jobs::send(&pool, None, &schema, &queue, &sends, data, options).await
}

fn wip_of(workers: &Mutex<Vec<Arc<WorkerHandle>>>, include_internal: bool) -> Vec<Value> {
    workers
        .lock()
        .unwrap()
        .iter()
        .filter(|w| !w.is_stopped() && (include_internal || !w.name().starts_with("__pgboss__")))
        .map(|w| w.wip())
        .collect()
}

/// Awaits every future (the std library has no join_all; this is small enough not to add a crate).
async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    for f in futures {
        f.await;
    }
}
