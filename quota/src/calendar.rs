//! UTC calendar windows, from civil-date arithmetic (no time zone data).

use std::fmt;

/// How long a quota window lasts. Windows start on UTC calendar boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Hour,
    Day,
    /// Monday 00:00 UTC to the next Monday.
    Week,
    /// The 1st 00:00 UTC to the next 1st.
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hour" | "hourly" => Ok(Period::Hour),
            "day" | "daily" => Ok(Period::Day),
            "week" | "weekly" => Ok(Period::Week),
            "month" | "monthly" => Ok(Period::Month),
            other => Err(format!(
                "unknown quota period `{other}` (expected hour, day, week or month)"
            )),
        }
    }
}

/// `[start, end)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

const DAY: i64 = 86_400;

/// The window of `period` that contains `now`.
pub fn window_of(period: Period, now: i64) -> Window {
    match period {
        Period::Hour => {
            let start = now - now.rem_euclid(3600);
            Window {
                start,
                end: start + 3600,
            }
        }
        Period::Day => {
            let start = now - now.rem_euclid(DAY);
            Window {
                start,
                end: start + DAY,
            }
        }
        Period::Week => {
            let days = now.div_euclid(DAY);
            // 1970-01-01 was a Thursday: Monday-based weekday index 3.
            let monday = days - (days + 3).rem_euclid(7);
            Window {
                start: monday * DAY,
                end: (monday + 7) * DAY,
            }
        }
        Period::Month => {
            let (year, month, _) = civil_from_days(now.div_euclid(DAY));
            let (next_year, next_month) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            Window {
                start: days_from_civil(year, month, 1) * DAY,
                end: days_from_civil(next_year, next_month, 1) * DAY,
            }
        }
    }
}

/// `2026-12-04T13:00:00Z`.
pub fn rfc3339(unix: i64) -> String {
    let (year, month, day) = civil_from_days(unix.div_euclid(DAY));
    let secs = unix.rem_euclid(DAY);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
