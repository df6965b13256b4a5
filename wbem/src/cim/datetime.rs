//! The CIM `datetime` type (DSP0004 5.2.4): timestamps `yyyymmddhhmmss.mmmmmmsutc` and intervals
//! `ddddddddhhmmss.mmmmmm:000`, both 25 characters, with `*` wildcards for insignificant digits.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Offset, TimeZone, Timelike, Utc};

/// Both forms have 20 digit positions (14 before the dot, 6 after); wildcards replace a suffix of them.
const DIGITS: usize = 20;
const TIMESTAMP_WIDTHS: [usize; 7] = [4, 2, 2, 2, 2, 2, 6];
const INTERVAL_WIDTHS: [usize; 5] = [8, 2, 2, 2, 6];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateTimeError(pub String);

impl fmt::Display for DateTimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DateTimeError {}

fn err(text: &str, why: impl fmt::Display) -> DateTimeError {
    DateTimeError(format!("invalid CIM datetime '{text}': {why}"))
}

/// A point in time with its UTC offset in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    microsecond: u32,
    utc_offset: i16,
    significant: u8,
}

/// A duration of up to 99,999,999 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interval {
    days: u32,
    hours: u8,
    minutes: u8,
    seconds: u8,
    microseconds: u32,
    significant: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CimDateTime {
    Timestamp(Timestamp),
    Interval(Interval),
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        _ => 28,
    }
}

/// Splits the 20 digit positions into fields; returns the field values (wildcards read as 0) and the
/// number of significant leading digits.
fn parse_digits(text: &str, digits: &[u8], widths: &[usize]) -> Result<(Vec<u32>, usize), DateTimeError> {
    let significant = digits.iter().position(|&c| c == b'*').unwrap_or(DIGITS);
    if let Some(bad) = digits[significant..].iter().find(|&&c| c != b'*') {
        return Err(err(text, format!("digit '{}' after a wildcard: '*' may only replace the least significant digits", *bad as char)));
    }
    if let Some(bad) = digits[..significant].iter().find(|c| !c.is_ascii_digit()) {
        return Err(err(text, format!("unexpected character '{}'", *bad as char)));
    }
    let mut fields = Vec::with_capacity(widths.len());
    let mut start = 0;
    for &w in widths {
        let value = digits[start..start + w].iter().fold(0u32, |acc, &c| acc * 10 + if c == b'*' { 0 } else { u32::from(c - b'0') });
        fields.push(value);
        start += w;
    }
    Ok((fields, significant))
}

/// Range checks for one field: `max_first_digit` bounds a partly significant field, `range` a fully
/// significant one.
fn check_field(
    text: &str,
    what: &str,
    value: u32,
    start: usize,
    width: usize,
    significant: usize,
    range: (u32, u32),
) -> Result<(), DateTimeError> {
    if start + width <= significant {
        if value < range.0 || value > range.1 {
            return Err(err(text, format!("{what} {value} is out of range {}..={}", range.0, range.1)));
        }
    } else if significant > start {
        // Only the leading digits are known: they must allow some value in range.
        let known = significant - start;
        let scale = 10u32.pow((width - known) as u32);
        if value > range.1 || value + scale - 1 < range.0 {
            return Err(err(text, format!("{what} cannot be in range {}..={}", range.0, range.1)));
        }
    }
    Ok(())
}

impl CimDateTime {
    pub fn parse(text: &str) -> Result<CimDateTime, DateTimeError> {
        let bytes = text.as_bytes();
        if bytes.len() != 25 || !text.is_ascii() {
            return Err(err(text, "a CIM datetime has exactly 25 ASCII characters"));
        }
        if bytes[14] != b'.' {
            return Err(err(text, "expected '.' at position 15"));
        }
        let mut digits = [0u8; DIGITS];
        digits[..14].copy_from_slice(&bytes[..14]);
        digits[14..].copy_from_slice(&bytes[15..21]);
        let tail = &text[22..25];
        match bytes[21] {
            b':' => {
                if tail != "000" {
                    return Err(err(text, "an interval ends with ':000'"));
                }
                let (f, significant) = parse_digits(text, &digits, &INTERVAL_WIDTHS)?;
                check_field(text, "hours", f[1], 8, 2, significant, (0, 23))?;
                check_field(text, "minutes", f[2], 10, 2, significant, (0, 59))?;
                check_field(text, "seconds", f[3], 12, 2, significant, (0, 59))?;
                Ok(CimDateTime::Interval(Interval {
                    days: f[0],
                    hours: f[1] as u8,
                    minutes: f[2] as u8,
                    seconds: f[3] as u8,
                    microseconds: f[4],
                    significant: significant as u8,
                }))
            }
            sign @ (b'+' | b'-') => {
                if !tail.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(err(text, "the UTC offset is three digits (minutes)"));
                }
                let minutes: i16 = tail.parse().map_err(|e| err(text, e))?;
                let utc_offset = if sign == b'-' { -minutes } else { minutes };
                let (f, significant) = parse_digits(text, &digits, &TIMESTAMP_WIDTHS)?;
                check_field(text, "month", f[1], 4, 2, significant, (1, 12))?;
                let max_day = if significant >= 6 { days_in_month(f[0], f[1]) } else { 31 };
                check_field(text, "day", f[2], 6, 2, significant, (1, max_day))?;
                check_field(text, "hour", f[3], 8, 2, significant, (0, 23))?;
                check_field(text, "minute", f[4], 10, 2, significant, (0, 59))?;
                check_field(text, "second", f[5], 12, 2, significant, (0, 59))?;
                Ok(CimDateTime::Timestamp(Timestamp {
                    year: f[0] as u16,
                    month: f[1] as u8,
                    day: f[2] as u8,
                    hour: f[3] as u8,
                    minute: f[4] as u8,
                    second: f[5] as u8,
                    microsecond: f[6],
                    utc_offset,
                    significant: significant as u8,
                }))
            }
            _ => Err(err(text, "position 22 must be '+' or '-' (timestamp) or ':' (interval)")),
        }
    }

    /// The current time in UTC.
    pub fn now() -> CimDateTime {
        CimDateTime::Timestamp(Timestamp::from_datetime(&Utc::now()).unwrap_or(Timestamp::EPOCH))
    }

    pub fn is_interval(&self) -> bool {
        matches!(self, CimDateTime::Interval(_))
    }

    /// Number of significant digits out of 20 (20 when there are no wildcards).
    pub fn significant_digits(&self) -> u8 {
        match self {
            CimDateTime::Timestamp(t) => t.significant,
            CimDateTime::Interval(i) => i.significant,
        }
    }
}

fn render(fields: &[u32], widths: &[usize], significant: u8) -> String {
    let mut digits = String::with_capacity(DIGITS + 1);
    for (value, width) in fields.iter().zip(widths) {
        digits.push_str(&format!("{value:0width$}"));
    }
    let mut out = String::with_capacity(25);
    for (i, c) in digits.chars().enumerate() {
        if i == 14 {
            out.push('.');
        }
        out.push(if i < significant as usize { c } else { '*' });
    }
    out
}

impl fmt::Display for CimDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CimDateTime::Timestamp(t) => {
                let fields = [
                    u32::from(t.year),
                    u32::from(t.month),
                    u32::from(t.day),
                    u32::from(t.hour),
                    u32::from(t.minute),
                    u32::from(t.second),
                    t.microsecond,
                ];
                let sign = if t.utc_offset < 0 { '-' } else { '+' };
                write!(f, "{}{sign}{:03}", render(&fields, &TIMESTAMP_WIDTHS, t.significant), t.utc_offset.unsigned_abs())
            }
            CimDateTime::Interval(i) => {
                let fields = [i.days, u32::from(i.hours), u32::from(i.minutes), u32::from(i.seconds), i.microseconds];
                write!(f, "{}:000", render(&fields, &INTERVAL_WIDTHS, i.significant))
            }
        }
    }
}

impl FromStr for CimDateTime {
    type Err = DateTimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CimDateTime::parse(s)
    }
}

impl Timestamp {
    const EPOCH: Timestamp =
        Timestamp { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0, microsecond: 0, utc_offset: 0, significant: DIGITS as u8 };

    /// A fully significant timestamp; `None` when a field is out of range.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        microsecond: u32,
        utc_offset_minutes: i16,
    ) -> Option<Timestamp> {
        let valid = year <= 9999
            && (1..=12).contains(&month)
            && day >= 1
            && u32::from(day) <= days_in_month(u32::from(year), u32::from(month))
            && hour <= 23
            && minute <= 59
            && second <= 59
            && microsecond <= 999_999
            && utc_offset_minutes.unsigned_abs() <= 999;
        valid.then_some(Timestamp {
            year,
            month,
            day,
            hour,
            minute,
            second,
            microsecond,
            utc_offset: utc_offset_minutes,
            significant: DIGITS as u8,
        })
    }

    /// From a chrono date-time; `None` for years outside 0..=9999.
    pub fn from_datetime<Tz: TimeZone>(dt: &DateTime<Tz>) -> Option<Timestamp> {
        let offset = dt.offset().fix().local_minus_utc() / 60;
        let local = dt.naive_local();
        let year = u16::try_from(local.year()).ok()?;
        Timestamp::new(
            year,
            local.month() as u8,
            local.day() as u8,
            local.hour() as u8,
            local.minute() as u8,
            local.second().min(59) as u8,
            (local.nanosecond() / 1000).min(999_999),
            offset.clamp(-999, 999) as i16,
        )
    }

    /// As a chrono date-time; `None` when wildcards make the point in time unknown.
    pub fn to_datetime(&self) -> Option<DateTime<FixedOffset>> {
        if usize::from(self.significant) != DIGITS {
            return None;
        }
        let offset = FixedOffset::east_opt(i32::from(self.utc_offset) * 60)?;
        let naive = NaiveDate::from_ymd_opt(i32::from(self.year), u32::from(self.month), u32::from(self.day))?.and_hms_micro_opt(
            u32::from(self.hour),
            u32::from(self.minute),
            u32::from(self.second),
            self.microsecond,
        )?;
        offset.from_local_datetime(&naive).single()
    }

    /// Replaces all but the first `digits` digit positions with wildcards.
    pub fn with_significant_digits(mut self, digits: u8) -> Timestamp {
        self.significant = digits.min(DIGITS as u8);
        mask(&mut self);
        self
    }

    pub fn year(&self) -> u16 {
        self.year
    }
    pub fn month(&self) -> u8 {
        self.month
    }
    pub fn day(&self) -> u8 {
        self.day
    }
    pub fn hour(&self) -> u8 {
        self.hour
    }
    pub fn minute(&self) -> u8 {
        self.minute
    }
    pub fn second(&self) -> u8 {
        self.second
    }
    pub fn microsecond(&self) -> u32 {
        self.microsecond
    }
    /// Offset from UTC in minutes (DSP0004: local time = UTC + offset).
    pub fn utc_offset(&self) -> i16 {
        self.utc_offset
    }
}

/// Zeroes the digits that wildcards hide, so that equal texts mean equal values.
fn mask(t: &mut Timestamp) {
    let parsed = CimDateTime::parse(&CimDateTime::Timestamp(*t).to_string());
    if let Ok(CimDateTime::Timestamp(clean)) = parsed {
        *t = clean;
    }
}

impl Interval {
    /// A fully significant interval; `None` when a field is out of range.
    pub fn new(days: u32, hours: u8, minutes: u8, seconds: u8, microseconds: u32) -> Option<Interval> {
        let valid = days <= 99_999_999 && hours <= 23 && minutes <= 59 && seconds <= 59 && microseconds <= 999_999;
        valid.then_some(Interval { days, hours, minutes, seconds, microseconds, significant: DIGITS as u8 })
    }

    /// `None` when the duration exceeds 99,999,999 days.
    pub fn from_duration(d: Duration) -> Option<Interval> {
        let secs = d.as_secs();
        Interval::new(
            u32::try_from(secs / 86_400).ok()?,
            ((secs / 3600) % 24) as u8,
            ((secs / 60) % 60) as u8,
            (secs % 60) as u8,
            d.subsec_micros(),
        )
    }

    /// The duration, reading wildcard digits as zero.
    pub fn to_duration(&self) -> Duration {
        let secs = u64::from(self.days) * 86_400 + u64::from(self.hours) * 3600 + u64::from(self.minutes) * 60 + u64::from(self.seconds);
        Duration::from_secs(secs) + Duration::from_micros(u64::from(self.microseconds))
    }

    pub fn days(&self) -> u32 {
        self.days
    }
    pub fn hours(&self) -> u8 {
        self.hours
    }
    pub fn minutes(&self) -> u8 {
        self.minutes
    }
    pub fn seconds(&self) -> u8 {
        self.seconds
    }
    pub fn microseconds(&self) -> u32 {
        self.microseconds
    }
}

impl From<Timestamp> for CimDateTime {
    fn from(t: Timestamp) -> Self {
        CimDateTime::Timestamp(t)
    }
}

impl From<Interval> for CimDateTime {
    fn from(i: Interval) -> Self {
        CimDateTime::Interval(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_values_round_trip() {
        let table = [
            "20240229235959.999999+060",
            "19700101000000.000000+000",
            "20231231120000.123456-300",
            "99991231235959.999999-999",
            "00000001000000.000000:000",
            "99999999235959.999999:000",
            "00000000000000.000000:000",
            "2024**********.******+000",
            "2024010112****.******+000",
            "20240101120000.12****-060",
            "**************.******+000",
            "00000010******.******:000",
            "0000001012****.******:000",
        ];
        for text in table {
            let parsed = CimDateTime::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn invalid_values_are_rejected() {
        let table = [
            ("", "25"),
            ("20240101120000.000000+00", "25"),
            ("20240101120000.000000+0000", "25"),
            ("20240101120000,000000+000", "'.'"),
            ("20241301120000.000000+000", "month"),
            ("20240001120000.000000+000", "month"),
            ("20240230120000.000000+000", "day"),
            ("20230229120000.000000+000", "day"),
            ("20240100120000.000000+000", "day"),
            ("20240101240000.000000+000", "hour"),
            ("20240101126000.000000+000", "minute"),
            ("20240101120060.000000+000", "second"),
            ("2024010112000a.000000+000", "unexpected"),
            ("2024*101120000.000000+000", "wildcard"),
            ("20240101120000.0000*0+000", "wildcard"),
            ("20240101120000.000000*000", "position 22"),
            ("20240101120000.000000+0*0", "three digits"),
            ("00000000240000.000000:000", "hours"),
            ("00000000006000.000000:000", "minutes"),
            ("00000000000000.000000:001", ":000"),
            ("202401011200é0.00000+000", "ASCII"),
            ("2024**01120000.000000+000", "wildcard"),
            ("20242*01120000.000000+000", "wildcard"),
            ("20243***************+000", "25"),
            ("202430**************.+000", "'.'"),
        ];
        for (text, why) in table {
            let e = CimDateTime::parse(text).expect_err(text);
            assert!(e.0.contains(why), "{text}: {e} should mention {why}");
        }
        // A partly significant month whose known digit already rules out every month.
        let e = CimDateTime::parse("20242*********.******+000").unwrap_err();
        assert!(e.0.contains("month"), "{e}");
    }

    #[test]
    fn chrono_and_duration_conversions() {
        let dt = FixedOffset::east_opt(-5 * 3600).unwrap().with_ymd_and_hms(2021, 3, 4, 5, 6, 7).unwrap();
        let ts = Timestamp::from_datetime(&dt).unwrap();
        assert_eq!(CimDateTime::from(ts).to_string(), "20210304050607.000000-300");
        assert_eq!(ts.to_datetime().unwrap(), dt);
        let wild = ts.with_significant_digits(8);
        assert_eq!(CimDateTime::from(wild).to_string(), "20210304******.******-300");
        assert_eq!(wild.to_datetime(), None);
        assert_eq!(wild.hour(), 0);

        let iv = Interval::from_duration(Duration::from_micros(90_061_000_001)).unwrap();
        assert_eq!(CimDateTime::from(iv).to_string(), "00000001010101.000001:000");
        assert_eq!(iv.to_duration(), Duration::from_micros(90_061_000_001));
        assert!(Interval::from_duration(Duration::from_secs(100_000_000 * 86_400)).is_none());
        assert!(Timestamp::new(2023, 2, 29, 0, 0, 0, 0, 0).is_none());
        assert!(CimDateTime::now().to_string().ends_with("+000"));
    }
}
