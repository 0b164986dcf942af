//! LISTEN/NOTIFY (`useListenNotify`): one dedicated connection listens on the schema's channel,
//! and every notification (its payload is a queue name) wakes that queue's workers, so a job sent
//! to a `notify` queue is fetched at once instead of at the next poll. A notification is only a
//! hint: workers still poll (at `notifyPollingIntervalSeconds` while the listener is up), and
//! whenever the connection is re-established every worker of a notify queue fetches once, since
//! notifications sent meanwhile are lost.
//!
//! The channel is pg-boss's, derived from the schema, and producers of either kind send on it, so
//! pg-boss and our instances wake each other's workers.

use crate::config::ListenerSettings;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::event::EventSink;
use crate::schema::install::notify_channel_sql;

/// What the listener wakes: the workers of one queue, or those of every notify queue.
pub trait Wakeup: Send + Sync + 'static {
    fn queue(&self, name: &str);
    fn notify_queues(&self);
}

/// A running listener; `stop()` ends it and closes its connection.
pub struct Listener {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
    available: Arc<AtomicBool>,
}

impl Listener {
    pub async fn stop(self) {
        self.stop.notify_one();
        let _ = self.task.await;
        self.available.store(false, Ordering::SeqCst);
    }
}

/// The schema's channel name, as every pg-boss instance on it derives it.
pub async fn channel(pool: &PgPool, schema: &str) -> Result<String> {
    Ok(
        sqlx::query_scalar(&format!("SELECT {}", notify_channel_sql(schema)))
            .fetch_one(pool)
            .await?,
    )
}

/// Connects and starts listening. A failure here is returned (the caller falls back to polling);
/// once established, a lost connection is re-established with capped backoff and reported as an
/// `error` event. `available` says, while it runs, whether the channel is listened on right now
/// (workers poll at their notify interval only then).
pub async fn start(
    connect: PgConnectOptions,
    channel: String,
    settings: ListenerSettings,
    wakeup: Arc<dyn Wakeup>,
    events: Arc<dyn EventSink>,
    available: Arc<AtomicBool>,
) -> Result<Listener> {
    // Its own one-connection pool, so listening never takes a connection from the instance's pool.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .connect_lazy_with(connect);
    let listener = listen(&pool, &channel).await?;
    available.store(true, Ordering::SeqCst);
    let stop = Arc::new(Notify::new());
    let task = tokio::spawn(run(
        pool,
        listener,
        channel,
        settings,
        wakeup,
        events,
        available.clone(),
        stop.clone(),
    ));
    Ok(Listener {
        stop,
        task,
        available,
    })
}

async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Lost connections are handled below (with a backoff and a catch-up fetch), not inside recv.
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    Ok(listener)
}

#[allow(clippy::too_many_arguments)]
async fn run(
    pool: PgPool,
    listener: PgListener,
    channel: String,
    settings: ListenerSettings,
    wakeup: Arc<dyn Wakeup>,
    events: Arc<dyn EventSink>,
    available: Arc<AtomicBool>,
    stop: Arc<Notify>,
) {
    let report = |err: &Error| events.error(err);
    let mut listener = Some(listener);
    listen_until_stopped(
        &mut listener,
        &pool,
        &channel,
        settings,
        &wakeup,
        &available,
        &stop,
        &report,
    )
    .await;
    // Ended by a stop; the listener's connection must go back before its pool can close.
    drop(listener);
    pool.close().await;
}

#[allow(clippy::too_many_arguments)]
async fn listen_until_stopped(
    session: &mut Option<PgListener>,
    pool: &PgPool,
    channel: &str,
    settings: ListenerSettings,
    wakeup: &Arc<dyn Wakeup>,
    available: &AtomicBool,
    stop: &Notify,
    report: &impl Fn(&Error),
) {
    while let Some(listener) = session.as_mut() {
        // One session: listen until the connection is lost or its heartbeat fails.
        let lost: Error = loop {
            tokio::select! {
                _ = stop.notified() => return,
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => wakeup.queue(notification.payload()),
                    Ok(None) => break Error::internal("LISTEN/NOTIFY connection ended"),
                    Err(err) => break err.into(),
                },
                _ = tokio::time::sleep(settings.heartbeat_interval) => {
                    if let Err(err) = heartbeat(listener, channel, settings.heartbeat_timeout).await {
                        break err;
                    }
                }
            }
        };
        available.store(false, Ordering::SeqCst);
        report(&lost);
        // The one connection of the listener's pool goes back before a new session can take it.
        *session = None;
        // Reconnect with capped backoff; a stop meanwhile ends it all.
        let mut attempt: u32 = 0;
        let renewed = loop {
            let backoff = Duration::from_millis((1000u64 << attempt.min(5)).min(30_000));
            attempt += 1;
            tokio::select! {
                _ = stop.notified() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            match listen(pool, channel).await {
                Ok(listener) => break listener,
                Err(err) => report(&err),
            }
        };
        *session = Some(renewed);
        available.store(true, Ordering::SeqCst);
        // Notifications sent while nobody listened are gone: every notify queue fetches once.
        wakeup.notify_queues();
    }
}

/// The session is alive and still registered on the channel.
async fn heartbeat(listener: &mut PgListener, channel: &str, timeout: Duration) -> Result<()> {
    let check = sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_listening_channels() AS c(name) WHERE c.name = $1)",
    )
    .bind(channel)
    .fetch_one(&mut *listener);
    match tokio::time::timeout(timeout, check).await {
        Err(_) => Err(Error::internal("LISTEN/NOTIFY heartbeat timed out")),
        Ok(Err(err)) => Err(err.into()),
        Ok(Ok(false)) => Err(Error::internal(
            "LISTEN/NOTIFY channel registration was lost",
        )),
        Ok(Ok(true)) => Ok(()),
    }
}
