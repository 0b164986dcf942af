//! The reindex pass in the background, every `superviseIntervalSeconds` while `supervise` is on
//! (see ops/upkeep for what a pass does). A rebuilding instance tries the shared claim each time;
//! one that only reports (`reindex: false`) runs once every `reindexIntervalSeconds`, paced by
//! the state it shares with `supervise()` calls.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::{Service, Stop};
use crate::clock::Clock;
use crate::config::upkeep::UpkeepSettings;
use crate::error::Result;
use crate::future::BoxFuture;
use crate::ops::upkeep::{ReindexPass, ReindexState};
use crate::ops::warnings::WarningSink;
use crate::sql::Db;

/// The background reindex pass.
pub struct Reindexer {
    pub db: Db,
    pub settings: UpkeepSettings,
    /// How often a rebuilding instance tries the claim: the supervision interval.
    pub every: Duration,
    pub sink: WarningSink,
    /// Shared with the instance's `supervise()` calls.
    pub state: Arc<Mutex<ReindexState>>,
    /// The instance's clock, which paces a reporting pass.
    pub timers: Clock,
}

impl Service for Reindexer {
    fn name(&self) -> &'static str {
        "reindex"
    }

    fn interval(&self) -> Duration {
        self.every
    }

    fn first_pass(&self) -> Duration {
        self.every
    }

    /// Rebuilds are DDL over whole indexes; a day is the longest a pass may take.
    fn timeout(&self) -> Duration {
        Duration::from_secs(24 * 60 * 60)
    }

    fn run_once<'a>(&'a self, stop: &'a Stop) -> BoxFuture<'a, Result<Option<Duration>>> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            ReindexPass {
                db: &self.db,
                thresholds: Ok(self.settings.thresholds),
                rebuild: self.settings.rebuild,
                max_index_bytes: self.settings.max_index_bytes,
                interval_seconds: self.settings.interval.as_secs_f64(),
                force: false,
                scope: None,
                now_ms: self.timers.now_ms(),
            }
            .run(&mut state, &self.sink, &|| stop.is_raised())
            .await?;
            Ok(None)
        })
    }
}
