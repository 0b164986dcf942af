//! Forgets the cached queues every `queueCacheIntervalSeconds`, so changes other instances make to
//! a queue (its options, its deletion) reach this one's sends, fetches and settles.

use std::sync::Arc;
use std::time::Duration;

use super::{Service, Stop};
use crate::error::Result;
use crate::future::BoxFuture;
use crate::ops::queues::QueueCache;

pub struct QueueCacheRefresh {
    pub queues: Arc<QueueCache>,
    pub every: Duration,
}

impl Service for QueueCacheRefresh {
    fn name(&self) -> &'static str {
        "queue-cache"
    }

    fn interval(&self) -> Duration {
        self.every
    }

    fn first_pass(&self) -> Duration {
        self.every
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn run_once<'a>(&'a self, _stop: &'a Stop) -> BoxFuture<'a, Result<Option<Duration>>> {
        self.queues.clear();
        Box::pin(async { Ok(None) })
    }
}
