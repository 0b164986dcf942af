//! Recurrence rules (RFC 5545 RRULE) read the way pg-boss 12.38 reads them.
//!
//! pg-boss accepts, beside cron expressions, a rule (`FREQ=DAILY;BYHOUR=9`) or the DTSTART,
//! RRULE, RDATE and EXDATE lines of a calendar entry, checks it with rules of its own and hands
//! it to the npm package `rrule-temporal` (strict mode). What that pair accepts, refuses (and in
//! which words) and generates is what a schedule means, so this module reproduces it:
//!
//! * `detect`: which of the two formats an expression is written in;
//! * `text`: pg-boss's reading of the lines (the epoch DTSTART a bare rule recurs from, its
//!   refusals of unknown properties and parts, repeats, COUNT without DTSTART, mixed value types);
//! * `build`: the rule engine's reading of the parts and values, its refusals, and pg-boss's check
//!   that no value was silently dropped;
//! * `values` and `clock`: iCalendar dates as instants, wall time in Temporal-named zones;
//! * `expand`: the occurrences, with the engine's handling of daylight-saving changes.
//!
//! A few rule shapes are read but not evaluated, because the engine's results for them follow no
//! rule this module could reproduce (RSCALE and SKIP, leap months, BYWEEKNO without BYDAY): they
//! are refused with [`RuleErrorKind::Unreadable`], and the cron pass leaves such a stored schedule
//! to an instance that can read it. `tests/rrule.rs` and `__test__/rrule.test.mjs` compare the
//! results with pg-boss's own.

mod build;
mod clock;
mod detect;
mod expand;
mod text;
mod values;

pub use build::{Freq, Rule};
pub use clock::RuleZone;
pub use detect::is_rrule;

/// How pg-boss fails on a rule, which decides the JavaScript class of the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleErrorKind {
    /// pg-boss's own checks (an `AssertionError`).
    Assertion,
    /// The rule engine's refusals (a plain `Error`).
    Error,
    /// A date or zone the Temporal API refuses (a `RangeError`).
    Range,
    /// A rule pg-boss accepts that this engine cannot evaluate as pg-boss does.
    Unreadable,
}

/// A rule that cannot be used, with pg-boss's words for why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// Which kind of refusal.
    pub kind: RuleErrorKind,
    /// The message, word for word.
    pub message: String,
}

impl RuleError {
    fn new(kind: RuleErrorKind, message: impl Into<String>) -> RuleError {
        RuleError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn assertion(message: impl Into<String>) -> RuleError {
        RuleError::new(RuleErrorKind::Assertion, message)
    }

    pub(crate) fn error(message: impl Into<String>) -> RuleError {
        RuleError::new(RuleErrorKind::Error, message)
    }

    pub(crate) fn range(message: impl Into<String>) -> RuleError {
        RuleError::new(RuleErrorKind::Range, message)
    }
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Checks an expression as `schedule()` and `previewSchedule()` do before looking at the zone:
/// pg-boss's checks, then the rule built in UTC, then that no part value was dropped. (The zone
/// is judged next, as a cron expression's is; see `model::schedule`.)
pub fn check(expression: &str) -> Result<(), RuleError> {
    let ics = text::read(expression)?;
    let rule = build::build(&ics, "UTC")?;
    build::check_kept(&ics.rule, &rule)
}

/// The rule `expression` describes in zone `tz` (the zone of a DTSTART without its own TZID),
/// ready to evaluate; refuses what [`check`] refuses, a zone the rule engine cannot use, and the
/// shapes this engine cannot evaluate as pg-boss does.
pub fn compile(expression: &str, tz: &str) -> Result<Rule, RuleError> {
    let ics = text::read(expression)?;
    let rule = build::build(&ics, tz)?;
    if let Some(shape) = &rule.unreadable {
        return Err(RuleError::new(
            RuleErrorKind::Unreadable,
            format!("rrule expressions using {shape} are not supported by pg-boss-native yet (see docs/COMPATIBILITY.md)"),
        ));
    }
    Ok(rule)
}
