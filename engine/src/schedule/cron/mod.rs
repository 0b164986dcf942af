//! Cron expressions read the way pg-boss 12.38 reads them.
//!
//! pg-boss hands every expression to the npm package `cron-parser` (v5, `strict: false`), which
//! runs on Luxon's calendar arithmetic. Whatever that pair accepts, refuses and computes is what a
//! schedule means, so this module reproduces it rather than any cron dialect of its own:
//!
//! * the accepted syntax and the error messages: 1 to 6 fields (missing leading ones default to
//!   `0 * * * * *`), `?` as `*`, month and weekday names, ranges, steps, lists, `L` in the day of
//!   month, `nL` and `n#k` in the day of week, `H` hashing, the `@daily`-style aliases, and the
//!   quirks (duplicate values are refused, a short expression is padded from the left);
//! * the walk itself, step for step, because its handling of daylight-saving changes is not one a
//!   general-purpose cron crate shares: an hour skipped by a spring-forward change still fires at
//!   the hour the clock lands on, a repeated autumn hour fires once, and the walk can give up with
//!   "loop limit exceeded" where the calendar defeats it. Matching the occurrences pg-boss would
//!   send, in every zone, is the point; `tests/cron.rs` and `__test__/schedule.test.mjs` compare
//!   them with cron-parser's own output.
//!
//! Time zones come from `chrono-tz` (IANA data compiled in).
//!
//! The reader is laid out by job: `parse` (an expression into a [`CronExpression`]) with its
//! helpers `fields`, `lists`, `aliases` and `hashes`; `walk` (finding occurrences) on `cursor` and
//! `civil` (Luxon's calendar arithmetic) in a `zone`; `cache` keeps recent parses. The other
//! format, recurrence rules, is read by `schedule::rrule`.

mod aliases;
mod cache;
mod civil;
mod cursor;
mod field_kind;
mod fields;
mod hashes;
mod lists;
mod millis;
mod parse;
mod walk;
mod zone;

pub use cache::ParseCache;
pub use parse::CronExpression;
pub use walk::Walk;
pub use zone::Zone;

/// A parse or walk failure, worded as cron-parser words it (pg-boss passes the text through).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError(pub String);

impl std::fmt::Display for CronError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Parsed<T> = std::result::Result<T, CronError>;

fn fail<T>(message: impl Into<String>) -> Parsed<T> {
    Err(CronError(message.into()))
}

/// `Date.prototype.toString()` of an instant, as V8 prints it in UTC, for the one cron-parser
/// message that quotes a date.
pub fn js_date_string(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(at) => format!(
            "{} GMT+0000 (Coordinated Universal Time)",
            at.format("%a %b %d %Y %H:%M:%S")
        ),
        None => "Invalid Date".to_string(),
    }
}
