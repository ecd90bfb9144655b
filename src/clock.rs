//! Time: the `Clock` the app reads "now" from (so tests can fix it) and the wire format of
//! timestamps. Internally every instant is an `i64` of microseconds since the Unix epoch.

use std::sync::atomic::{AtomicI64, Ordering};

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// Microseconds since the Unix epoch.
pub type Micros = i64;

/// Source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now, in microseconds since the Unix epoch.
    fn now_micros(&self) -> Micros;
}

/// The wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> Micros {
        (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as Micros
    }
}

/// A clock that only moves when told to, for tests of expiry and ordering.
#[derive(Debug)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    /// A clock standing at `micros`.
    pub fn new(micros: Micros) -> Self {
        FixedClock(AtomicI64::new(micros))
    }

    /// Moves the clock forward.
    pub fn advance_micros(&self, by: Micros) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_micros(&self) -> Micros {
        self.0.load(Ordering::SeqCst)
    }
}

/// Renders an instant as the service does: RFC 3339, UTC, whole seconds, `Z`
/// (recorded responses show e.g. `"createdOn":"2024-03-19T23:04:56Z"`).
///
/// Written digit by digit: `time`'s general formatter was 3% of a list-messages request, which
/// renders three of these per message. Instants come from the clock or from RFC 3339 input, so
/// years are 0000-9999 (`datetime` turns anything out of range into the epoch).
pub fn to_wire(micros: Micros) -> String {
    /// Appends `value` as exactly `width` decimal digits.
    fn digits(out: &mut String, value: u32, width: u32) {
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
        }
    }
    let t = datetime(micros);
    let mut out = String::with_capacity(20);
    digits(&mut out, t.year().clamp(0, 9999) as u32, 4);
    for (separator, value) in [
        ('-', u8::from(t.month())),
        ('-', t.day()),
        ('T', t.hour()),
        (':', t.minute()),
        (':', t.second()),
    ] {
        out.push(separator);
        digits(&mut out, u32::from(value), 2);
    }
    out.push('Z');
    out
}

/// Renders an instant with 7 fractional digits and `+00:00`, the shape of the identity API's
/// `expiresOn` (e.g. `2025-07-10T21:39:39.3244584+00:00`).
pub fn to_wire_precise(micros: Micros) -> String {
    let format = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]0+00:00"
    );
    datetime(micros)
        .format(&format)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.0000000+00:00".to_owned())
}

/// Parses an RFC 3339 timestamp from a request into microseconds; `None` if it is not one.
pub fn parse_wire(text: &str) -> Option<Micros> {
    let parsed = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
    Some((parsed.unix_timestamp_nanos() / 1_000) as Micros)
}

fn datetime(micros: Micros) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(UtcOffset::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_whole_seconds_with_z() {
        assert_eq!(to_wire(1_593_107_077_683_000), "2020-06-25T17:44:37Z");
        assert_eq!(to_wire(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn renders_what_the_general_formatter_renders() {
        let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        // From year 0 to 9999 in uneven steps (leap days, month ends, every hour and minute).
        let mut micros: Micros = -62_167_219_200_000_000; // 0000-01-01T00:00:00Z
        while micros < 253_402_300_799_000_000 {
            let expected = datetime(micros).format(&format).expect("format");
            assert_eq!(to_wire(micros), expected, "{micros}");
            micros += 7_919_876_543_211;
        }
    }

    #[test]
    fn renders_precise_expiry() {
        assert_eq!(
            to_wire_precise(1_593_107_077_683_123),
            "2020-06-25T17:44:37.6831230+00:00"
        );
    }

    #[test]
    fn parses_what_sdks_send() {
        // Python sends isoformat with an offset, JS sends toISOString with millis.
        assert_eq!(
            parse_wire("2020-06-25T17:44:37.683Z"),
            Some(1_593_107_077_683_000)
        );
        assert_eq!(
            parse_wire("2020-06-25T17:44:37.683000+00:00"),
            Some(1_593_107_077_683_000)
        );
        assert_eq!(parse_wire("yesterday"), None);
    }
}

/// Serde for instants in state documents: RFC 3339 with microseconds, lossless both ways.
pub mod serde_instant {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::macros::format_description;

    use super::{Micros, datetime, parse_wire};

    /// `2026-11-26T23:12:23.123456Z`.
    pub fn format(micros: Micros) -> String {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        datetime(micros).format(&format).unwrap_or_default()
    }

    pub fn serialize<S: Serializer>(micros: &Micros, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*micros))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Micros, D::Error> {
        let text = String::deserialize(d)?;
        parse_wire(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {text}")))
    }

    /// The same for optional instants (`null` when absent).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::super::{Micros, parse_wire};

        pub fn serialize<S: Serializer>(micros: &Option<Micros>, s: S) -> Result<S::Ok, S::Error> {
            match micros {
                Some(m) => s.serialize_str(&super::format(*m)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Micros>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(text) => parse_wire(&text).map(Some).ok_or_else(|| {
                    serde::de::Error::custom(format!("not an RFC 3339 time: {text}"))
                }),
            }
        }
    }
}
