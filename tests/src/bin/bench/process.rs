//! Figures that need a whole process: cold start and peak memory. The
//! bench binary runs the real `enrichbox` command line in a child of
//! itself (`--as-enrichbox ...`), so these are the command's own costs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A folder with an `enrichbox.toml` aimed at the mock and an initialized
/// database.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

pub const OPERATOR: &str = "bench";
const KEY_ENV: &str = "ENRICHBOX_BENCH_KEY";

impl Setup {
    pub fn new(port: u16) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "database = \"enrichbox.db\"\n\n[[instance]]\nname = \"Bench\"\nbase_url = \"http://127.0.0.1:{port}/api/v1/\"\napi_key_env = \"{KEY_ENV}\"\n"
        );
        std::fs::write(dir.path().join("enrichbox.toml"), config).unwrap();
        let setup = Setup { dir };
        let init = setup
            .command(&setup.cache("unused"), &["init"])
            .output()
            .unwrap();
        assert!(init.status.success(), "{init:?}");
        setup
    }

    /// A compiled-component cache folder inside the setup.
    pub fn cache(&self, name: &str) -> PathBuf {
        self.dir.path().join("caches").join(name)
    }

    /// `enrichbox ARGS` in a child process, using `cache`.
    pub fn command(&self, cache: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .arg("--as-enrichbox")
            .args(args)
            .current_dir(self.dir.path())
            .env("ENRICHBOX_CONFIG", self.dir.path().join("enrichbox.toml"))
            .env("ENRICHBOX_CACHE_DIR", cache)
            .env("ENRICHBOX_OPERATOR", OPERATOR)
            .env(KEY_ENV, "bench-key")
            .env_remove("ENRICHBOX_DB")
            .env_remove("ENRICHBOX_AUDIT_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }
}

/// Spawn to exit of a child that does nothing: the floor under every
/// process figure.
pub fn process_start() -> Duration {
    let started = Instant::now();
    let status = Command::new(std::env::current_exe().unwrap())
        .arg("--noop")
        .status()
        .unwrap();
    assert!(status.success());
    started.elapsed()
}

/// Spawn to exit of `enrichbox lookup` asking the server (never the result
/// cache) for one indicator.
pub fn first_result(setup: &Setup, cache: &Path, indicator: &str) -> Duration {
    let started = Instant::now();
    let output = setup
        .command(
            cache,
            &["lookup", "--refresh", "--format", "json", indicator],
        )
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

/// What a batch run cost: wall time and the child's peak resident memory.
pub struct BatchRun {
    pub seconds: f64,
    pub peak_rss_bytes: u64,
}

/// `enrichbox enrich FEED --concurrency N`, its output thrown away.
pub fn batch(setup: &Setup, cache: &Path, indicators: usize, concurrency: usize) -> BatchRun {
    let feed = setup.dir.path().join(format!("feed-{indicators}.txt"));
    let text: String = (0..indicators)
        .map(|i| format!("10.{}.{}.{}\n", i / 65_536, (i / 256) % 256, i % 256))
        .collect();
    std::fs::write(&feed, text).unwrap();
    let concurrency = concurrency.to_string();
    let started = Instant::now();
    let child = setup
        .command(
            cache,
            &[
                "enrich",
                feed.to_str().unwrap(),
                "--refresh",
                "--format",
                "ndjson",
                "--concurrency",
                &concurrency,
            ],
        )
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (status, peak) = wait_with_peak_rss(child);
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(status, 0, "the batch failed");
    BatchRun {
        seconds,
        peak_rss_bytes: peak,
    }
}

/// Waits for `child` and returns its exit status and peak RSS, which only
/// the kernel knows once it has exited (`ru_maxrss`, in KiB on Linux).
fn wait_with_peak_rss(child: Child) -> (i32, u64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data the kernel fills; pid is our own child,
    // which `Child` has not waited for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(
        waited,
        pid,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, usage.ru_maxrss as u64 * 1024)
}
