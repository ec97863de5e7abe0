//! Test helper: spends quota in a loop until killed, printing the id of
//! every reservation after it was marked sent (and flushing), so the test
//! knows which requests "left".
//!
//! Usage: quota-crash-child LEDGER_PATH [FIXED_UNIX_TIME]
//! With a fixed time every reservation lands in one known window, so the
//! test's counts cannot straddle a midnight.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use enrichbox_quota::{Clock, Ledger, ManualClock, SystemClock};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: quota-crash-child LEDGER_PATH [FIXED_UNIX_TIME]");
    let clock: Arc<dyn Clock> = match args.next() {
        Some(t) => Arc::new(ManualClock::new(
            t.parse().expect("FIXED_UNIX_TIME is whole seconds"),
        )),
        None => Arc::new(SystemClock),
    };
    let ledger = Ledger::open(path.as_ref(), clock).expect("open ledger");
    let mut stdout = std::io::stdout();
    for i in 0u64.. {
        let reservation = ledger
            .reserve("crash", None, 1, Duration::from_secs(1))
            .expect("reserve");
        // Every third lookup sends nothing; every other one is settled, so
        // the kill finds reservations in every state.
        if i % 3 != 2 {
            ledger.mark_sent(reservation.id).expect("mark sent");
            writeln!(stdout, "{}", reservation.id).expect("stdout");
            stdout.flush().expect("flush");
        }
        if i % 2 == 0 {
            ledger.settle(reservation.id).expect("settle");
        }
    }
}
