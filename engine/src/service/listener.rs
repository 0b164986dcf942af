//! LISTEN/NOTIFY (`useListenNotify`): one dedicated connection listens on the schema's channel,
//! and every notification (its payload is a queue name) wakes that queue's workers, so a job sent
//! to a `notify` queue is fetched at once instead of at the next poll. A notification is only a
//! hint: workers still poll (at `notifyPollingIntervalSeconds` while the listener is up), and
//! whenever the connection is re-established every worker of a notify queue fetches once, since
//! notifications sent meanwhile are lost.
//!
//! The channel is pg-boss's, derived from the schema, and producers of either kind send on it, so
//! pg-boss and our instances wake each other's workers.
//!
//! As a service, one pass listens until the next liveness heartbeat is due and then checks it; a
//! pass after the connection was lost tries to listen again, backing off up to 30 seconds between
//! tries. The statements here run on the listening connection itself, which `Exec` cannot reach;
//! they are sent as the instance sends its own (see [`StatementMode`]).
//!
//! Through a pooler in transaction mode the listening session has no server of its own: LISTEN
//! runs on whichever server connection the pooler lends, and notifications reach no one. When
//! `start()` found a pooler the listener is not started at all; when the instance sends unnamed
//! statements because `preparedStatements: false` says so, the listener first checks that a
//! notification sent from the instance's pool arrives, and when none does it fails to start. The
//! instance then polls only (pg-boss's `listen_notify_unavailable` warning).

use crate::config::ListenerSettings;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgPool, Row as _};
use tokio::time::Instant;
use uuid::Uuid;

use super::{Service, Stop};
use crate::error::{Error, Result};
use crate::event::EventSink;
use crate::future::BoxFuture;
use crate::sql::exec::{Param, StatementMode};
use crate::sql::literal;
use crate::sql::Db;

/// The longest a reconnect waits before its next try.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long connecting and registering on the channel may take within one pass, beyond the
/// heartbeat's own interval and timeout.
const CONNECT_PATIENCE: Duration = Duration::from_secs(60);

const LISTENING_CHECK: &str =
    "SELECT EXISTS (SELECT 1 FROM pg_listening_channels() AS c(name) WHERE c.name = $1)";

/// Sends the delivery check's notification: $1 channel, $2 payload.
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// How long the delivery check waits for its notification (delivered in milliseconds on a
/// session of its own; never through a pooler in transaction mode).
const DELIVERY_PATIENCE: Duration = Duration::from_secs(3);

/// What the listener wakes: the workers of one queue, or those of every notify queue.
pub trait Wakeup: Send + Sync + 'static {
    fn queue(&self, name: &str);
    fn notify_queues(&self);
}

/// The schema's channel name, as every pg-boss instance on it derives it.
pub async fn channel(db: &Db) -> Result<String> {
    let (channel,) = db
        .exec()
        .fetch_one(&db.sql.install.channel, Vec::new())
        .await?;
    Ok(channel)
}

pub struct Listener {
    /// Its own one-connection pool, so listening never takes a connection from the instance's.
    pool: PgPool,
    channel: String,
    /// How the heartbeat's statement is sent.
    mode: StatementMode,
    settings: ListenerSettings,
    wakeup: Arc<dyn Wakeup>,
    events: Arc<dyn EventSink>,
    /// Whether the channel is listened on right now (workers poll at their notify interval only
    /// then).
    listening: Arc<AtomicBool>,
    session: tokio::sync::Mutex<Session>,
}

enum Session {
    Listening(PgListener),
    /// Lost; `tries` reconnects have failed since.
    Lost {
        tries: u32,
    },
}

impl Listener {
    /// Connects and starts listening. A failure here is returned (the caller falls back to
    /// polling); once established, a lost connection is re-established with capped backoff and
    /// reported as an `error` event. When `db` sends unnamed statements, a notification sent on
    /// its pool must arrive first.
    pub async fn connect(
        connect: PgConnectOptions,
        db: &Db,
        channel: String,
        settings: ListenerSettings,
        wakeup: Arc<dyn Wakeup>,
        events: Arc<dyn EventSink>,
        listening: Arc<AtomicBool>,
    ) -> Result<Listener> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .connect_lazy_with(connect);
        let mut session = listen(&pool, &channel).await?;
        if db.mode == StatementMode::Unnamed {
            if let Err(err) = delivery_check(db, &mut session, &channel, &*wakeup).await {
                // Best effort: through a pooler this reaches the server connection that took
                // the LISTEN only if the pooler lends that one again.
                let _ = session.unlisten_all().await;
                drop(session);
                pool.close().await;
                return Err(err);
            }
        }
        listening.store(true, Ordering::SeqCst);
        Ok(Listener {
            pool,
            channel,
            mode: db.mode,
            settings,
            wakeup,
            events,
            listening,
            session: tokio::sync::Mutex::new(Session::Listening(session)),
        })
    }

    async fn pass(&self, stop: &Stop) -> Duration {
        let mut session = self.session.lock().await;
        match &mut *session {
            Session::Listening(listener) => match self.listen_once(listener, stop).await {
                Ok(()) => Duration::ZERO,
                Err(lost) => {
                    self.listening.store(false, Ordering::SeqCst);
                    self.events.error(&lost);
                    // The one connection of the listener's pool goes back before a new session
                    // can take it.
                    *session = Session::Lost { tries: 0 };
                    backoff(0)
                }
            },
            Session::Lost { tries } => match listen(&self.pool, &self.channel).await {
                Ok(renewed) => {
                    *session = Session::Listening(renewed);
                    self.listening.store(true, Ordering::SeqCst);
                    // Notifications sent while nobody listened are gone: every notify queue
                    // fetches once.
                    self.wakeup.notify_queues();
                    Duration::ZERO
                }
                Err(err) => {
                    self.events.error(&err);
                    *tries += 1;
                    backoff(*tries)
                }
            },
        }
    }

    /// Wakes workers for every notification until the next heartbeat is due, then checks it.
    /// Answers why the session is lost, if it is.
    async fn listen_once(&self, listener: &mut PgListener, stop: &Stop) -> Result<()> {
        let heartbeat_due = tokio::time::sleep(self.settings.heartbeat_interval);
        tokio::pin!(heartbeat_due);
        loop {
            tokio::select! {
                _ = stop.raised() => return Ok(()),
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => self.wakeup.queue(notification.payload()),
                    Ok(None) => return Err(Error::internal("LISTEN/NOTIFY connection ended")),
                    Err(err) => return Err(err.into()),
                },
                _ = &mut heartbeat_due => return self.heartbeat(listener).await,
            }
        }
    }

    /// The session is alive and still registered on the channel.
    async fn heartbeat(&self, listener: &mut PgListener) -> Result<()> {
        let check = async {
            match self.mode {
                StatementMode::Prepared => {
                    sqlx::query_scalar::<_, bool>(LISTENING_CHECK)
                        .bind(&self.channel)
                        .fetch_one(&mut *listener)
                        .await
                }
                StatementMode::Unnamed => {
                    let text = literal::render(LISTENING_CHECK, &[Param::text(&self.channel)])
                        .map_err(|err| sqlx::Error::Protocol(err.message))?;
                    sqlx::Executor::fetch_one(&mut *listener, text.as_str())
                        .await?
                        .try_get::<bool, _>(0)
                }
            }
        };
        match tokio::time::timeout(self.settings.heartbeat_timeout, check).await {
            Err(_) => Err(Error::internal("LISTEN/NOTIFY heartbeat timed out")),
            Ok(Err(err)) => Err(err.into()),
            Ok(Ok(false)) => Err(Error::internal(
                "LISTEN/NOTIFY channel registration was lost",
            )),
            Ok(Ok(true)) => Ok(()),
        }
    }

    /// Ends listening: the session's connection goes back, then its pool closes.
    async fn close(&self) {
        self.listening.store(false, Ordering::SeqCst);
        *self.session.lock().await = Session::Lost { tries: 0 };
        self.pool.close().await;
    }
}

/// The wait before reconnect try `tries + 1`: a second, doubling, at most 30 seconds.
fn backoff(tries: u32) -> Duration {
    Duration::from_millis(1000u64 << tries.min(5)).min(MAX_BACKOFF)
}

/// Sends a notification from the instance's pool and waits for it on the listening session;
/// notifications for queues that arrive meanwhile wake their workers.
async fn delivery_check(
    db: &Db,
    listener: &mut PgListener,
    channel: &str,
    wakeup: &dyn Wakeup,
) -> Result<()> {
    // A space keeps the payload apart from every queue name.
    let payload = format!("pg-boss-native delivery check {}", Uuid::new_v4());
    let lost = || {
        Error::internal(
            "LISTEN/NOTIFY notifications do not arrive on this connection (a pooler in transaction mode?)",
        )
    };
    let sent = db
        .exec()
        .execute(NOTIFY, vec![Param::text(channel), Param::text(&payload)])
        .await;
    match sent {
        Ok(_) => {}
        // The pool's statement ran on the very server connection the LISTEN went to, and was
        // handed the notification itself: the listening session has no server of its own.
        Err(err) if format!("{err:?}").contains("NotificationResponse") => return Err(lost()),
        Err(err) => return Err(err.into()),
    }
    let deadline = tokio::time::sleep(DELIVERY_PATIENCE);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return Err(lost()),
            received = listener.try_recv() => match received {
                Ok(Some(notification)) if notification.payload() == payload => return Ok(()),
                Ok(Some(notification)) => wakeup.queue(notification.payload()),
                Ok(None) => return Err(Error::internal("LISTEN/NOTIFY connection ended")),
                Err(err) => return Err(err.into()),
            },
        }
    }
}

async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Lost connections are handled by the passes (with a backoff and a catch-up fetch), not
    // inside recv.
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    Ok(listener)
}

impl Service for Listener {
    fn name(&self) -> &'static str {
        "listener"
    }

    fn interval(&self) -> Duration {
        self.settings.heartbeat_interval
    }

    fn timeout(&self) -> Duration {
        self.settings.heartbeat_interval + self.settings.heartbeat_timeout + CONNECT_PATIENCE
    }

    fn run_once<'a>(&'a self, stop: &'a Stop) -> BoxFuture<'a, Result<Option<Duration>>> {
        Box::pin(async move { Ok(Some(self.pass(stop).await)) })
    }

    fn stopped(&self, _deadline: Instant) -> BoxFuture<'_, ()> {
        Box::pin(self.close())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_back_off_from_a_second_to_half_a_minute() {
        let waits: Vec<u64> = (0..8).map(|t| backoff(t).as_millis() as u64).collect();
        assert_eq!(waits, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    }
}
