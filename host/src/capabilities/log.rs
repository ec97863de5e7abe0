//! `log`: plugin log lines, size-capped per call and tagged with the instance.

use crate::bindings::enrichbox::enrichment::log::{Host, Level};
use crate::state::HostState;

/// How much a plugin may log in one call; the rest is counted, not kept.
pub const MAX_LOG_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, serde::Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct PluginLog {
    pub lines: Vec<LogLine>,
    bytes: usize,
    pub dropped: usize,
}

impl PluginLog {
    pub fn push(&mut self, level: &'static str, message: String) {
        if self.bytes + message.len() > MAX_LOG_BYTES {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        self.lines.push(LogLine { level, message });
    }
}

impl Host for HostState {
    fn write(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.log.push(level, message);
    }
}
