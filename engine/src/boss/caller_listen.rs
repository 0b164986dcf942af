//! LISTEN/NOTIFY through the caller's handle the instance was made with, when that handle can
//! listen (pg-boss's optional `listen(channel, onNotification, onReconnect)`): its owner listens
//! on the schema's channel once the instance has started, and tells the instance what arrives.

use std::sync::atomic::Ordering;

use super::workers::WorkerWakeup;
use super::Boss;
use crate::error::Result;
use crate::service::listener::Wakeup;

impl Boss {
    /// Says the caller's handle can listen: `start()` then leaves listening to its owner instead
    /// of warning that it cannot. Set before `start()`.
    pub fn set_caller_listens(&self, listens: bool) {
        self.caller_listens.store(listens, Ordering::SeqCst);
    }

    /// The schema's LISTEN/NOTIFY channel, read through the instance's handle, as pg-boss reads it.
    pub async fn listen_channel(&self) -> Result<String> {
        crate::service::listener::channel(&self.started_db()?).await
    }

    /// Whether the owner's listener is up: while it is, workers of `notify` queues poll at the
    /// relaxed `notifyPollingIntervalSeconds`.
    pub fn set_caller_listening(&self, up: bool) {
        self.listening.store(up, Ordering::SeqCst);
    }

    /// A notification the owner's listener received: the queue it names wakes its workers.
    pub fn caller_notification(&self, payload: &str) {
        self.wakeup().queue(payload);
    }

    /// The owner's listener subscribed again after losing its session: what was sent meanwhile
    /// is not delivered, so the workers of `notify` queues fetch now.
    pub fn caller_listen_restored(&self) {
        self.wakeup().notify_queues();
    }

    /// The owner's listener could not start: pg-boss's warning, and the instance polls.
    pub async fn caller_listen_failed(&self, error: &str) {
        self.listen_failed(&self.db(), error).await;
    }

    fn wakeup(&self) -> WorkerWakeup {
        WorkerWakeup {
            workers: self.workers.clone(),
            queues: self.queues.clone(),
        }
    }
}
