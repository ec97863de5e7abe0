//! Test helper: spends quota in a loop until killed, printing the id of
//! every reservation after it was marked sent (and flushing), so the test
//! knows which requests "left".

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use enrichbox_quota::{Ledger, SystemClock};

fn main() {
    let path = std::env::args().nth(1).expect("usage: quota-crash-child LEDGER_PATH");
    let ledger = Ledger::open(path.as_ref(), Arc::new(SystemClock)).expect("open ledger");
    let mut stdout = std::io::stdout();
    for i in 0u64.. {
        let reservation = ledger
            .reserve("crash", None, 1, Duration::from_secs(1))
            .expect("reserve");
        if i % 3 != 2 {
            ledger.mark_sent(reservation.id).expect("mark sent");
            writeln!(stdout, "{}", reservation.id.0).expect("stdout");
            stdout.flush().expect("flush");
        }
        if i % 2 == 0 {
            ledger.settle(reservation.id).expect("settle");
        }
    }
}
