//! The host's wall clock: the quota crate's `SystemClock`, and the two
//! timestamp forms the host writes.

use enrichbox_quota::{Clock, SystemClock, rfc3339};

/// Seconds since the Unix epoch, UTC.
pub fn now_unix() -> i64 {
    SystemClock.now_unix()
}

/// `2026-12-04T13:00:00Z`.
pub fn now_rfc3339() -> String {
    rfc3339(now_unix())
}

/// `2026-12-04T13:00:00.123Z`, for audit records and STIX objects.
pub fn now_rfc3339_millis() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = rfc3339(now.as_secs() as i64);
    format!(
        "{}.{:03}Z",
        seconds.trim_end_matches('Z'),
        now.subsec_millis()
    )
}
