//! Queue statistics: `getQueueStats()`, and the history behind it.
//!
//! Without `persistQueueStats` there is no history: `getQueueStats()` answers one datapoint, the
//! counts the monitor keeps on the queue row, counting them afresh when they are older than the
//! cache allows (an hour, or the monitor/supervise interval when longer; a minute with `force`).
//!
//! With `persistQueueStats` every monitor pass that counts a queue also records a snapshot of those
//! counts in `queue_stats` (partitioned by UTC day; supervision creates today's and tomorrow's
//! partitions and drops the ones older than `queueStatRetentionDays`), and `getQueueStats()` reads
//! that series back, raw or in time buckets.
//!
//! A snapshot carries the queue row as the count left it (see sql/counting.rs): the gauges, and
//! the throughput of the window the pass measured (created/completed/failed deltas, wait and run
//! histograms, the oldest ready job's wait). When the count's check finds jobs that committed
//! into windows already recorded, the pass trues those snapshots up ([`record::true_up`]).
//! Snapshots pg-boss instances record on the same schema are the same rows, read (and bucketed)
//! the same way.

pub mod partitions;
pub mod read;
pub mod record;
pub mod snapshot;

pub use read::get_queue_stats;
