//! A process killed while spending quota leaves the ledger consistent: every
//! reservation it marked sent is charged, and nothing is counted twice.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use enrichbox_quota::{Ledger, ManualClock, ReservationId, Settlement};

/// 2026-12-04T12:00:00Z: the child's clock stands still there.
const NOON: i64 = 1_796_385_600;

#[test]
fn a_killed_process_leaves_every_sent_reservation_spent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(Ledger::open(&path, Arc::new(ManualClock::new(NOON))).unwrap());
    let mut child = Command::new(env!("CARGO_BIN_EXE_quota-crash-child"))
        .arg(&path)
        .arg(NOON.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = BTreeSet::new();
    for _ in 0..150 {
        let line = lines
            .next()
            .expect("the child printed fewer ids than expected")
            .unwrap();
        printed.insert(line.parse::<i64>().unwrap());
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Ids printed after our last read but before the kill are in the pipe.
    for line in lines {
        printed.insert(line.unwrap().parse::<i64>().unwrap());
    }

    // Past every expiry (1 s), still in the same UTC day.
    let clock = ManualClock::new(NOON + 3600);
    let ledger = Ledger::open(&path, Arc::new(clock)).unwrap();
    let before = ledger.status("crash", None).unwrap();
    assert!(
        before.used >= printed.len() as u64,
        "sent reservations count as used at once: {before:?}"
    );
    let fixed = ledger.recover_expired().unwrap();
    assert!(
        fixed >= 1,
        "the child was killed with at least one reservation open"
    );
    assert_eq!(
        ledger.recover_expired().unwrap(),
        0,
        "recovery is idempotent"
    );

    let rows = states(&path);
    let total = rows.len() as u64;
    assert!(total >= printed.len() as u64);
    for (id, state) in &rows {
        assert!(
            state == "spent" || state == "given_back",
            "reservation {id} left {state}"
        );
    }
    let spent: BTreeSet<i64> = rows
        .iter()
        .filter(|(_, s)| s == "spent")
        .map(|(id, _)| *id)
        .collect();
    // No sent request left uncharged.
    let uncharged: Vec<_> = printed.difference(&spent).collect();
    assert!(uncharged.is_empty(), "printed but not spent: {uncharged:?}");
    // Charged without being printed: only the one marked sent as the kill
    // landed, and it is the newest.
    let unprinted: Vec<_> = spent.difference(&printed).collect();
    assert!(
        unprinted.len() <= 1,
        "spent but never printed: {unprinted:?}"
    );
    if let Some(id) = unprinted.first() {
        assert!(
            printed.iter().all(|p| p < id),
            "{id} is not the last reservation"
        );
    }

    // Counts agree with the rows: each reservation counted once, in one state.
    let status = ledger.status("crash", None).unwrap();
    assert_eq!(status.in_flight, 0, "{status:?}");
    assert_eq!(status.used, spent.len() as u64, "{status:?}");
    assert_eq!(status.used + status.given_back, total, "{status:?}");
    assert!(
        status.given_back > 0,
        "every third lookup sent nothing: {status:?}"
    );

    // Settling again after recovery changes nothing.
    for id in printed.iter().take(10) {
        assert_eq!(
            ledger.settle(ReservationId(*id)).unwrap(),
            Settlement::Spent
        );
    }
    let again = ledger.status("crash", None).unwrap();
    assert_eq!(
        (again.used, again.given_back),
        (status.used, status.given_back)
    );
}

/// Every reservation row, read with a plain connection.
fn states(path: &std::path::Path) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, state FROM quota_reservations ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
