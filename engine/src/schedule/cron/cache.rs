//! Recent parses, kept for the cron pass.

use std::sync::Mutex;

use super::{CronExpression, Parsed};

/// Parsed expressions are cheap to build, but a pass evaluates every schedule each interval;
/// keeping the last few parses avoids redoing the same work for unchanged rows. Expressions with
/// `H` are never kept, since cron-parser hashes them anew on every parse.
pub struct ParseCache {
    entries: Mutex<Vec<(String, CronExpression)>>,
}

impl Default for ParseCache {
    fn default() -> Self {
        ParseCache {
            entries: Mutex::new(Vec::new()),
        }
    }
}

impl ParseCache {
    const CAPACITY: usize = 256;

    pub fn parse(&self, expression: &str) -> Parsed<CronExpression> {
        if let Some((_, parsed)) = self
            .entries
            .lock()
            .unwrap()
            .iter()
            .find(|(e, _)| e == expression)
        {
            return Ok(parsed.clone());
        }
        let parsed = CronExpression::parse(expression)?;
        if !expression.contains('H') {
            let mut entries = self.entries.lock().unwrap();
            if entries.len() >= Self::CAPACITY {
                entries.remove(0);
            }
            entries.push((expression.to_string(), parsed.clone()));
        }
        Ok(parsed)
    }
}
