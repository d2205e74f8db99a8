//! RFC 3339 UTC timestamps as Go's `time.Time` JSON marshalling prints them.
//!
//! Go writes `time.RFC3339Nano` (`2006-01-02T15:04:05.999999999Z07:00`): the
//! fractional seconds are printed with trailing zeros trimmed, and left out
//! entirely when they are zero. nats-server keeps its times in UTC, so the zone
//! is always `Z`. Go's zero `time.Time` (year 1) prints `0001-01-01T00:00:00Z`;
//! nats-server sends it for unset times such as `first_ts` of an empty stream.
//!
//! [`Timestamp`] holds seconds and nanoseconds since the Unix epoch, so it can
//! represent the zero time (which is outside the range of `i64` nanoseconds).
//! Everything is pure arithmetic (civil-from-days); no clock is read here.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds from 0001-01-01T00:00:00Z (Go's zero time) to the Unix epoch.
const ZERO_TIME_UNIX_SECS: i64 = -62_135_596_800;
const NANOS_PER_SEC: i64 = 1_000_000_000;

/// The text Go prints for its zero `time.Time`.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A UTC instant with nanosecond precision, serialized as an RFC 3339 string.
///
/// The default value is Go's zero time (`0001-01-01T00:00:00Z`), mirroring
/// the zero value of Go's `time.Time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (may be negative).
    secs: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    nanos: u32,
}

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp::ZERO
    }
}

impl Timestamp {
    /// Go's zero time, `0001-01-01T00:00:00Z`.
    pub const ZERO: Timestamp = Timestamp {
        secs: ZERO_TIME_UNIX_SECS,
        nanos: 0,
    };

    /// The Unix epoch, `1970-01-01T00:00:00Z`.
    pub const UNIX_EPOCH: Timestamp = Timestamp { secs: 0, nanos: 0 };

    /// The instant `ns` nanoseconds after the Unix epoch (negative: before it).
    pub const fn from_unix_nanos(ns: i64) -> Timestamp {
        Timestamp {
            secs: ns.div_euclid(NANOS_PER_SEC),
            nanos: ns.rem_euclid(NANOS_PER_SEC) as u32,
        }
    }

    /// The instant from seconds since the epoch and nanoseconds in the second.
    ///
    /// `nanos` of a billion or more carries into the seconds.
    pub const fn from_unix_parts(secs: i64, nanos: u32) -> Timestamp {
        Timestamp {
            secs: secs + (nanos as i64 / NANOS_PER_SEC),
            nanos: (nanos as i64 % NANOS_PER_SEC) as u32,
        }
    }

    /// Seconds since the Unix epoch.
    pub const fn unix_secs(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds within the second.
    pub const fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// Nanoseconds since the Unix epoch, or `None` when that does not fit in an
    /// `i64` (before 1677 or after 2262; the zero time is one of those).
    pub fn unix_nanos(&self) -> Option<i64> {
        let ns = i128::from(self.secs) * i128::from(NANOS_PER_SEC) + i128::from(self.nanos);
        i64::try_from(ns).ok()
    }

    /// Whether this is Go's zero time.
    pub fn is_zero(&self) -> bool {
        *self == Timestamp::ZERO
    }

    /// Parse an RFC 3339 time (see [`parse_rfc3339`]).
    pub fn parse(s: &str) -> Result<Timestamp, TimeParseError> {
        parse_rfc3339(s)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (sod / 3600, sod / 60 % 60, sod % 60);
        if y < 0 {
            write!(f, "-{:04}", -y)?;
        } else {
            write!(f, "{y:04}")?;
        }
        write!(f, "-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}")?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `null` leaves Go's zero time, as encoding/json does.
        match Option::<std::borrow::Cow<'de, str>>::deserialize(d)? {
            None => Ok(Timestamp::ZERO),
            Some(s) => parse_rfc3339(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// Why an RFC 3339 string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeParseError {
    input: String,
    reason: &'static str,
}

impl fmt::Display for TimeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "parsing time {:?} as RFC 3339: {}",
            self.input, self.reason
        )
    }
}

impl std::error::Error for TimeParseError {}

/// Format `ns` nanoseconds since the Unix epoch like Go's `time.Time` JSON,
/// in UTC: e.g. `2022-11-30T09:12:34.5Z`.
pub fn format_unix_nanos(ns: i64) -> String {
    Timestamp::from_unix_nanos(ns).to_string()
}

/// Parse an RFC 3339 time as Go's `time.Time` JSON unmarshalling accepts it:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`. The result is converted to UTC.
/// Fraction digits beyond the ninth are ignored (truncated), as Go does.
pub fn parse_rfc3339(s: &str) -> Result<Timestamp, TimeParseError> {
    let err = |reason| TimeParseError {
        input: s.to_owned(),
        reason,
    };
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(err("too short"));
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, TimeParseError> {
        let mut v = 0i64;
        for &c in &b[range] {
            if !c.is_ascii_digit() {
                return Err(err("expected a digit"));
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Ok(v)
    };
    let sep = |i: usize, c: u8| -> Result<(), TimeParseError> {
        if b[i] == c {
            Ok(())
        } else {
            Err(err("unexpected separator"))
        }
    };
    let year = num(0..4)?;
    sep(4, b'-')?;
    let month = num(5..7)?;
    sep(7, b'-')?;
    let day = num(8..10)?;
    sep(10, b'T')?;
    let hour = num(11..13)?;
    sep(13, b':')?;
    let min = num(14..16)?;
    sep(16, b':')?;
    let sec = num(17..19)?;
    if !(1..=12).contains(&month) {
        return Err(err("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(err("day out of range"));
    }
    if hour > 23 {
        return Err(err("hour out of range"));
    }
    if min > 59 {
        return Err(err("minute out of range"));
    }
    if sec > 59 {
        return Err(err("second out of range"));
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b[i] == b'.' || b[i] == b',' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return Err(err("empty fraction"));
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match &b[i..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digit = |c: &u8| {
                if c.is_ascii_digit() {
                    Ok(i64::from(c - b'0'))
                } else {
                    Err(err("bad zone offset"))
                }
            };
            let oh = digit(h1)? * 10 + digit(h2)?;
            let om = digit(m1)? * 10 + digit(m2)?;
            if oh > 23 || om > 59 {
                return Err(err("zone offset out of range"));
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return Err(err("bad zone")),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    Ok(Timestamp { secs, nanos })
}

/// Parse an RFC 3339 time into nanoseconds since the Unix epoch; fails when
/// the instant does not fit in an `i64` of nanoseconds.
pub fn parse_unix_nanos(s: &str) -> Result<i64, TimeParseError> {
    parse_rfc3339(s)?.unix_nanos().ok_or(TimeParseError {
        input: s.to_owned(),
        reason: "out of range for unix nanoseconds",
    })
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of the proleptic Gregorian date `y-m-d`
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of `z` days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_time() {
        assert_eq!(Timestamp::ZERO.to_string(), ZERO_TIME);
        assert_eq!(Timestamp::default(), Timestamp::ZERO);
        assert!(Timestamp::ZERO.is_zero());
        assert_eq!(Timestamp::ZERO.unix_nanos(), None);
        assert_eq!(parse_rfc3339(ZERO_TIME).unwrap(), Timestamp::ZERO);
        assert!(parse_unix_nanos(ZERO_TIME).is_err());
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00Z"),
            (1, "1970-01-01T00:00:00.000000001Z"),
            (500_000_000, "1970-01-01T00:00:00.5Z"),
            (-1, "1969-12-31T23:59:59.999999999Z"),
            (1_669_799_554_123_000_000, "2022-11-30T09:12:34.123Z"),
            (1_669_799_554_123_456_789, "2022-11-30T09:12:34.123456789Z"),
            (1_669_799_554_120_000_000, "2022-11-30T09:12:34.12Z"),
            (951_782_400_000_000_000, "2000-02-29T00:00:00Z"),
            (4_107_542_400_000_000_000, "2100-03-01T00:00:00Z"),
            (i64::MAX, "2262-04-11T23:47:16.854775807Z"),
            (i64::MIN, "1677-09-21T00:12:43.145224192Z"),
        ];
        for &(ns, want) in cases {
            assert_eq!(format_unix_nanos(ns), want, "{ns}");
            assert_eq!(parse_unix_nanos(want).unwrap(), ns, "{want}");
        }
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let base = parse_unix_nanos("2022-11-30T09:12:34Z").unwrap();
        assert_eq!(parse_unix_nanos("2022-11-30T10:12:34+01:00").unwrap(), base);
        assert_eq!(parse_unix_nanos("2022-11-30T04:42:34-04:30").unwrap(), base);
        assert_eq!(
            parse_unix_nanos("2022-11-30T09:12:34.1Z").unwrap(),
            base + 100_000_000
        );
        // Digits beyond nanoseconds are truncated.
        assert_eq!(
            parse_unix_nanos("2022-11-30T09:12:34.0000000019Z").unwrap(),
            base + 1
        );
        // Day boundary crossing with an offset.
        assert_eq!(
            format_unix_nanos(parse_unix_nanos("2023-01-01T00:30:00+01:00").unwrap()),
            "2022-12-31T23:30:00Z"
        );
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "2022-11-30",
            "2022-11-30T09:12:34",
            "2022-11-30 09:12:34Z",
            "2022-13-01T00:00:00Z",
            "2022-02-29T00:00:00Z",
            "2022-11-31T00:00:00Z",
            "2022-11-30T24:00:00Z",
            "2022-11-30T23:60:00Z",
            "2022-11-30T23:59:60Z",
            "2022-11-30T23:59:59.Z",
            "2022-11-30T23:59:59+0100",
            "2022-11-30T23:59:59+24:00",
            "2022-11-30T23:59:59Zjunk",
            "2022-11-30T23:59:59z",
            "x022-11-30T23:59:59Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
    }

    #[test]
    fn civil_round_trip() {
        for z in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), z);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(1, 1, 1) * 86_400, ZERO_TIME_UNIX_SECS);
    }

    #[test]
    fn serde() {
        let t = Timestamp::from_unix_nanos(1_669_799_554_123_000_000);
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(j, "\"2022-11-30T09:12:34.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&j).unwrap(), t);
        assert!(serde_json::from_str::<Timestamp>("\"nope\"").is_err());
        assert_eq!(
            serde_json::from_str::<Timestamp>("null").unwrap(),
            Timestamp::ZERO
        );
        assert_eq!(
            Timestamp::from_unix_parts(1, 1_500_000_000),
            Timestamp::from_unix_nanos(2_500_000_000)
        );
    }
}
