//! A process killed while spending quota leaves the ledger consistent: every
//! reservation it marked sent is charged, and nothing is counted twice.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use enrichbox_quota::{Ledger, ManualClock, ReservationId, Settlement, SystemClock};

#[test]
fn a_killed_process_leaves_every_sent_reservation_spent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(Ledger::open(&path, Arc::new(SystemClock)).unwrap());
    let mut child = Command::new(env!("CARGO_BIN_EXE_quota-crash-child"))
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let sent: Vec<i64> = (0..200).map(|_| lines.next().unwrap().unwrap().parse().unwrap()).collect();
    child.kill().unwrap();
    child.wait().unwrap();

    // Far past every expiry: recovery settles what the child left.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let ledger = Ledger::open(&path, Arc::new(ManualClock::new(now + 3600))).unwrap();
    ledger.recover_expired().unwrap();
    for id in &sent {
        assert_eq!(ledger.settle(ReservationId(*id)).unwrap(), Settlement::Spent, "reservation {id}");
    }

    // Counted in the child's own window: nothing open, nothing lost.
    let counter = Ledger::open(&path, Arc::new(ManualClock::new(now))).unwrap();
    let status = counter.status("crash", None).unwrap();
    assert_eq!(status.in_flight, 0, "recovery left nothing unsettled");
    assert!(status.used >= sent.len() as u64, "every printed id is charged: {status:?}");
    // Every third reservation was never sent, so some units came back.
    assert!(status.given_back > 0, "{status:?}");
    assert!(status.used <= sent.len() as u64 + 1, "at most the one being marked at the kill: {status:?}");
}
