//! When a failed try is worth another.

use crate::outcome::{ErrorKind, LookupError};

/// Tries per lookup, the first included.
pub(super) const MAX_ATTEMPTS: u32 = 3;
/// A retry is not worth starting with less time than this left.
pub(super) const MIN_ATTEMPT_TIME: std::time::Duration = std::time::Duration::from_millis(500);

/// How long to wait before trying again, for the failures that may pass:
/// rate limiting (as long as the provider asked, else backing off) and an
/// unavailable provider (5xx or no connection). `None`: do not retry.
pub(super) fn retry_wait(error: Option<&LookupError>, attempt: u32) -> Option<std::time::Duration> {
    let error = error?;
    let backoff = || std::time::Duration::from_millis(500 * 2u64.pow(attempt - 1)) + jitter();
    match error.kind {
        ErrorKind::RateLimited => Some(match error.retry_after_seconds {
            Some(seconds) => std::time::Duration::from_secs(u64::from(seconds)) + jitter(),
            None => backoff(),
        }),
        // A refused certificate will not fix itself; a refused connection may.
        ErrorKind::UpstreamUnavailable if error.message.contains("TLS") => None,
        ErrorKind::UpstreamUnavailable if error.http_status.is_none_or(|s| s >= 500) => {
            Some(backoff())
        }
        _ => None,
    }
}

/// Up to 250 ms, so that many clients told the same Retry-After spread out.
fn jitter() -> std::time::Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::time::Duration::from_millis(u64::from(nanos % 250))
}
