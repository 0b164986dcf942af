//! The database's clock as this instance reads it, and the `clock_skew` warning: the timekeeper
//! measures how far the database's `job_now()` is from this machine's clock at `start()` and every
//! `clockMonitorIntervalSeconds` (with `schedule` on), and warns when that is a minute or more.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::error::Result;
use crate::event::Warning;
use crate::ops::warnings::WarningSink;
use crate::sql::Db;

pub const CLOCK_SKEW: &str = "clock_skew";
const CLOCK_SKEW_MESSAGE: &str = "Warning: Clock skew between this instance and the database server. This will not break scheduling, but is emitted any time the skew exceeds 60 seconds.";
/// Skew at or past this many seconds is reported.
const CLOCK_SKEW_SECONDS: f64 = 60.0;

fn local_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The database's clock as this instance reads it: ours plus the last skew measured. Zero skew
/// until a check has run (which only an instance started with `schedule` on does). Ours is the
/// instance's test clock when it has one.
#[derive(Default)]
pub struct DbClock {
    skew_ms: AtomicI64,
    local: Option<crate::clock::Clock>,
}

impl DbClock {
    /// A clock whose "ours" is `local` (an instance's test clock).
    pub fn over(local: crate::clock::Clock) -> DbClock {
        DbClock {
            skew_ms: AtomicI64::new(0),
            local: Some(local),
        }
    }

    /// This instance's time, in epoch milliseconds.
    pub fn local_now_ms(&self) -> i64 {
        self.local
            .as_ref()
            .map_or_else(local_now_ms, |c| c.now_ms())
    }

    pub fn now_ms(&self) -> i64 {
        self.local_now_ms() + self.skew_ms.load(Ordering::SeqCst)
    }

    pub fn set_skew(&self, skew_ms: i64) {
        self.skew_ms.store(skew_ms, Ordering::SeqCst);
    }
}

/// What one clock check found: the warning when the skew (database minus local, in
/// milliseconds) is a minute or more.
pub fn skew_warning(skew_ms: f64) -> Option<Warning> {
    (skew_ms.abs() / 1000.0 >= CLOCK_SKEW_SECONDS).then(|| clock_skew(skew_ms))
}

fn clock_skew(skew_ms: f64) -> Warning {
    let seconds = skew_ms.abs() / 1000.0;
    Warning {
        kind: CLOCK_SKEW,
        message: CLOCK_SKEW_MESSAGE.to_string(),
        data: json!({ "seconds": seconds, "direction": if skew_ms > 0.0 { "slower" } else { "faster" } }),
    }
}

/// Reads the database's clock (`job_now()`) and answers how far it is from ours (database minus
/// local, in milliseconds), publishing a clock_skew warning when that is a minute or more (or
/// whenever `force` is set, pg-boss's test switch).
pub async fn measure_clock_skew(
    db: &Db,
    sink: &WarningSink,
    force: bool,
    clock: &DbClock,
) -> Result<f64> {
    let (database_ms,): (f64,) = db
        .exec()
        .fetch_one(&db.sql.schedules.clock_now_ms, Vec::new())
        .await?;
    let skew = database_ms - clock.local_now_ms() as f64;
    let warning = skew_warning(skew).or_else(|| force.then(|| clock_skew(skew)));
    if let Some(warning) = warning {
        sink.publish(db, &warning).await;
    }
    Ok(skew)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_under_a_minute_is_quiet() {
        assert!(skew_warning(59_999.0).is_none());
        assert!(skew_warning(-59_999.0).is_none());
        let ahead = skew_warning(90_000.0).unwrap();
        assert_eq!(
            ahead.data,
            json!({ "seconds": 90.0, "direction": "slower" })
        );
        let behind = skew_warning(-60_000.0).unwrap();
        assert_eq!(behind.data["direction"], "faster");
    }

    #[test]
    fn the_database_clock_is_ours_plus_the_skew() {
        let clock = DbClock::default();
        clock.set_skew(3_600_000);
        let ahead = clock.now_ms() - local_now_ms();
        assert!((3_599_000..=3_600_000).contains(&ahead), "{ahead}");
    }
}
