//! LISTEN/NOTIFY through a caller's database handle: when the constructor's `db` can LISTEN
//! (pg-boss's optional `db.listen(channel, onNotification, onReconnect)`, which PGlite's adapter
//! has over PGlite's in-process listener), `useListenNotify` listens there instead of on a
//! connection of ours, which an instance on a caller's handle does not open.
//!
//! The handle owns its session and its reconnects: it hands every notification's payload (a queue
//! name) to [`Notifications::notification`], which wakes that queue's workers, and calls
//! [`Notifications::subscribed`] after each (re)subscribe, when every worker of a notify queue
//! fetches once, since notifications sent while nobody listened are lost. Workers poll at
//! `notifyPollingIntervalSeconds` while subscribed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::listener::Wakeup;
use super::{Service, Stop};
use crate::error::Result;
use crate::future::BoxFuture;

/// A caller's database handle that can LISTEN.
pub trait CallerListen: Send + Sync + 'static {
    /// Subscribes to `channel`, delivering to `to` until [`CallerListen::close`].
    fn listen(&self, channel: &str, to: Arc<Notifications>) -> BoxFuture<'static, Result<()>>;

    /// Ends the subscription made by [`CallerListen::listen`].
    fn close(&self) -> BoxFuture<'static, ()>;
}

/// Where a caller's handle delivers what it hears.
pub struct Notifications {
    wakeup: Arc<dyn Wakeup>,
    listening: Arc<AtomicBool>,
}

impl Notifications {
    pub fn new(wakeup: Arc<dyn Wakeup>, listening: Arc<AtomicBool>) -> Notifications {
        Notifications { wakeup, listening }
    }

    /// A notification: its payload names the queue whose workers wake.
    pub fn notification(&self, payload: &str) {
        self.wakeup.queue(payload);
    }

    /// Subscribed, at first or again: every notify queue fetches once.
    pub fn subscribed(&self) {
        self.listening.store(true, Ordering::SeqCst);
        self.wakeup.notify_queues();
    }
}

/// The `listener` service on a caller's handle: subscribed when started, unsubscribed when
/// stopped. Its passes only wait for the stop; the handle does the listening.
pub struct CallerListener {
    handle: Arc<dyn CallerListen>,
    listening: Arc<AtomicBool>,
}

impl CallerListener {
    /// Subscribes through `handle`; a failure is returned (the instance then polls only).
    pub async fn connect(
        handle: Arc<dyn CallerListen>,
        channel: &str,
        wakeup: Arc<dyn Wakeup>,
        listening: Arc<AtomicBool>,
    ) -> Result<CallerListener> {
        let to = Arc::new(Notifications::new(wakeup, listening.clone()));
        handle.listen(channel, to).await?;
        Ok(CallerListener { handle, listening })
    }
}

/// A pass waits this long for the stop, then ends (and the next begins at once).
const PASS: Duration = Duration::from_secs(60);

impl Service for CallerListener {
    fn name(&self) -> &'static str {
        "listener"
    }

    fn interval(&self) -> Duration {
        PASS
    }

    fn timeout(&self) -> Duration {
        PASS * 2
    }

    fn run_once<'a>(&'a self, stop: &'a Stop) -> BoxFuture<'a, Result<Option<Duration>>> {
        Box::pin(async move {
            let _ = tokio::time::timeout(PASS, stop.raised()).await;
            Ok(Some(Duration::ZERO))
        })
    }

    fn stopped(&self, deadline: Instant) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.listening.store(false, Ordering::SeqCst);
            let _ = tokio::time::timeout_at(deadline, self.handle.close()).await;
        })
    }
}
