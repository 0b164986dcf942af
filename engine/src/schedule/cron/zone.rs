//! Zones, resolved by name as Luxon resolves them, and their offsets.

use chrono::{Offset, TimeZone};
use chrono_tz::Tz;

use super::millis::{MS_HOUR, MS_MINUTE, MS_SECOND};

/// A zone an expression is evaluated in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// A fixed offset from UTC, in milliseconds (`UTC`, `GMT`, `UTC+5:30`).
    Fixed(i64),
    Named(Tz),
}

impl Zone {
    pub const UTC: Zone = Zone::Fixed(0);

    /// Resolves a zone name as Luxon does: `utc`/`gmt` and `utc±h[:mm]` in any case, the host's
    /// zone for `local`/`system`/`default`, and IANA names matched without regard to case.
    pub fn parse(name: &str) -> Option<Zone> {
        let lowered = name.to_ascii_lowercase();
        match lowered.as_str() {
            "utc" | "gmt" => return Some(Zone::UTC),
            "local" | "system" | "default" => return Some(host_zone()),
            _ => {}
        }
        if let Some(fixed) = fixed_offset(&lowered) {
            return Some(fixed);
        }
        Tz::from_str_insensitive(name).ok().map(Zone::Named)
    }

    /// The zone's offset from UTC at instant `ts` (milliseconds since the epoch), in milliseconds.
    pub(super) fn offset(&self, ts: i64) -> i64 {
        match self {
            Zone::Fixed(offset) => *offset,
            Zone::Named(tz) => match chrono::DateTime::from_timestamp_millis(ts) {
                Some(at) => {
                    i64::from(
                        tz.offset_from_utc_datetime(&at.naive_utc())
                            .fix()
                            .local_minus_utc(),
                    ) * MS_SECOND
                }
                None => 0,
            },
        }
    }
}

/// `utc+5`, `utc-03:30`: a fixed offset, as Luxon's specifier syntax has it.
fn fixed_offset(lowered: &str) -> Option<Zone> {
    let rest = lowered.strip_prefix("utc")?;
    let sign = match rest.chars().next()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let (hours, minutes) = match rest[1..].split_once(':') {
        Some((h, m)) => (h, Some(m)),
        None => (&rest[1..], None),
    };
    if hours.is_empty() || hours.len() > 2 || !hours.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let minutes = match minutes {
        None => 0,
        Some(m) if m.len() == 2 && m.bytes().all(|b| b.is_ascii_digit()) => {
            m.parse::<i64>().ok()?
        }
        Some(_) => return None,
    };
    let hours: i64 = hours.parse().ok()?;
    // Luxon signs the minutes with the hours: utc-3:30 is 3.5 hours behind.
    Some(Zone::Fixed(sign * (hours * MS_HOUR + minutes * MS_MINUTE)))
}

/// The zone this process runs in, as Node would pick it: `TZ`, else the system's configured zone.
fn host_zone() -> Zone {
    let named = std::env::var("TZ")
        .ok()
        .map(|tz| tz.trim_start_matches(':').to_string())
        .or_else(|| {
            std::fs::read_to_string("/etc/timezone")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .or_else(|| {
            let link = std::fs::read_link("/etc/localtime").ok()?;
            let path = link.to_string_lossy().to_string();
            path.split_once("zoneinfo/")
                .map(|(_, name)| name.to_string())
        });
    named
        .and_then(|name| Tz::from_str_insensitive(&name).ok())
        .map_or(Zone::UTC, Zone::Named)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_resolve_as_luxon_resolves_them() {
        assert_eq!(Zone::parse("UTC"), Some(Zone::UTC));
        assert_eq!(Zone::parse("gmt"), Some(Zone::UTC));
        assert_eq!(
            Zone::parse("UTC+5:30"),
            Some(Zone::Fixed(5 * MS_HOUR + 30 * MS_MINUTE))
        );
        assert_eq!(
            Zone::parse("america/new_york"),
            Some(Zone::Named(chrono_tz::America::New_York))
        );
        assert_eq!(Zone::parse("America/New_Yrok"), None);
        assert_eq!(Zone::parse(""), None);
    }
}
