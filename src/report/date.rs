//! Calendar dates and UTC timestamps without a date-time dependency: the GitLab report wants
//! `yyyy-mm-ddThh:mm:ss` (UTC, no zone suffix) and ignore-file entries expire on a date.
//! Conversions use the proleptic Gregorian calendar (days since 1970-01-01).

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};

/// A calendar date (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// Today's date in UTC.
    pub fn today() -> Date {
        Date::from_days(seconds_since_epoch(SystemTime::now()).div_euclid(86_400))
    }

    /// The date `days` days after 1970-01-01.
    pub fn from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Date { year, month, day }
    }

    /// Days from 1970-01-01 to this date (the inverse of [`Date::from_days`], which the tests
    /// check through it).
    pub fn to_days(self) -> i64 {
        let year = self.year - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let yoe = year.rem_euclid(400);
        let month = i64::from(self.month);
        let mp = if month > 2 { month - 3 } else { month + 9 };
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

impl FromStr for Date {
    type Err = anyhow::Error;

    /// `YYYY-MM-DD`, nothing else.
    fn from_str(text: &str) -> Result<Date> {
        let bytes = text.as_bytes();
        let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
        if bytes.len() != 10
            || bytes[4] != b'-'
            || bytes[7] != b'-'
            || !digits(0..4)
            || !digits(5..7)
            || !digits(8..10)
        {
            bail!("{text:?} is not a date of the form YYYY-MM-DD");
        }
        let year: i64 = text[0..4].parse()?;
        let month: u32 = text[5..7].parse()?;
        let day: u32 = text[8..10].parse()?;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            bail!("{text:?} is not a valid date");
        }
        Ok(Date { year, month, day })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn seconds_since_epoch(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(elapsed) => elapsed.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    }
}

/// `yyyy-mm-ddThh:mm:ss` in UTC, without a zone suffix (the form GitLab's report schema wants).
pub fn utc_timestamp(time: SystemTime) -> String {
    let seconds = seconds_since_epoch(time);
    let date = Date::from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    format!(
        "{date}T{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn converts_days_both_ways() {
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_days(-1).to_string(), "1969-12-31");
        // 2000-02-29 is day 11016; 2024-03-01 is day 19783.
        assert_eq!(Date::from_days(11_016).to_string(), "2000-02-29");
        assert_eq!(Date::from_days(19_783).to_string(), "2024-03-01");
        for days in (-800_000..800_000).step_by(997) {
            assert_eq!(Date::from_days(days).to_days(), days);
        }
    }

    #[test]
    fn parses_only_real_dates() {
        let date: Date = "2027-01-01".parse().unwrap();
        assert_eq!((date.year, date.month, date.day), (2027, 1, 1));
        assert!("2024-02-29".parse::<Date>().is_ok());
        for bad in [
            "2023-02-29",
            "2027-13-01",
            "2027-00-10",
            "2027-1-1",
            "27-01-01",
            "2027/01/01",
            "",
        ] {
            assert!(bad.parse::<Date>().is_err(), "{bad}");
        }
        assert!("2026-12-31".parse::<Date>().unwrap() < date);
    }

    #[test]
    fn formats_utc_timestamps_without_zone() {
        let time = UNIX_EPOCH + Duration::from_secs(1_580_181_962);
        assert_eq!(utc_timestamp(time), "2020-01-28T03:26:02");
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00");
    }
}
