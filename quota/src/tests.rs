use super::*;

/// 2026-12-04T12:00:00Z, a Friday.
const NOON: i64 = 1_796_385_600;

fn day(units: u64) -> Option<Limit> {
    Some(Limit { units, per: Period::Day })
}

fn memory(clock: &ManualClock) -> Ledger {
    Ledger::open_in_memory(Arc::new(clock.clone())).unwrap()
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn windows_follow_utc_calendar_boundaries() {
    let at = |y: i64, m: u32, d: u32, h: i64| days_from_civil(y, m, d) * 86_400 + h * 3600;
    assert_eq!(window_of(Period::Hour, NOON + 59 * 60), Window { start: NOON, end: NOON + 3600 });
    assert_eq!(window_of(Period::Day, NOON), Window { start: at(2026, 12, 4, 0), end: at(2026, 12, 5, 0) });
    // Friday 2026-12-04 belongs to the week of Monday 2026-11-30.
    assert_eq!(window_of(Period::Week, NOON), Window { start: at(2026, 11, 30, 0), end: at(2026, 12, 7, 0) });
    assert_eq!(window_of(Period::Week, at(2026, 11, 30, 0)).start, at(2026, 11, 30, 0));
    assert_eq!(window_of(Period::Week, at(2026, 11, 30, 0) - 1).start, at(2026, 11, 23, 0));
    assert_eq!(window_of(Period::Month, at(2026, 12, 31, 23)), Window { start: at(2026, 12, 1, 0), end: at(2027, 1, 1, 0) });
    assert_eq!(window_of(Period::Month, at(2028, 2, 29, 5)).end, at(2028, 3, 1, 0), "leap February");
    assert_eq!(window_of(Period::Month, at(2027, 2, 28, 5)).end, at(2027, 3, 1, 0));
    assert_eq!(rfc3339(NOON), "2026-12-04T12:00:00Z");
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!("Weekly".parse::<Period>(), Ok(Period::Week));
    assert!("fortnight".parse::<Period>().unwrap_err().contains("hour, day, week or month"));
}

#[test]
fn an_exhausted_quota_says_how_much_and_until_when() {
    let clock = ManualClock::new(NOON);
    let ledger = memory(&clock);
    for _ in 0..3 {
        let r = ledger.reserve("tf", day(3), 1, MINUTE).unwrap();
        ledger.mark_sent(r.id).unwrap();
        ledger.settle(r.id).unwrap();
    }
    let err = ledger.reserve("tf", day(3), 1, MINUTE).unwrap_err();
    assert!(matches!(err, QuotaError::Exhausted { taken: 3, limit: 3, .. }));
    let message = err.to_string();
    assert!(message.contains("3 of 3 units used this day"), "{message}");
    assert!(message.contains("resets at 2026-12-05T00:00:00Z"), "{message}");
    // Other instances have their own count.
    assert!(ledger.reserve("other", day(3), 1, MINUTE).is_ok());
}

#[test]
fn a_new_window_starts_fresh() {
    let clock = ManualClock::new(NOON);
    let ledger = memory(&clock);
    let r = ledger.reserve("tf", day(1), 1, MINUTE).unwrap();
    ledger.mark_sent(r.id).unwrap();
    assert!(ledger.reserve("tf", day(1), 1, MINUTE).is_err());
    clock.set(NOON + 12 * 3600);
    assert!(ledger.reserve("tf", day(1), 1, MINUTE).is_ok());
}

#[test]
fn unsent_units_come_back_sent_units_stay_and_settling_twice_counts_once() {
    let clock = ManualClock::new(NOON);
    let ledger = memory(&clock);
    let unsent = ledger.reserve("tf", day(10), 2, MINUTE).unwrap();
    let sent = ledger.reserve("tf", day(10), 3, MINUTE).unwrap();
    ledger.mark_sent(sent.id).unwrap();
    let status = ledger.status("tf", day(10)).unwrap();
    assert_eq!((status.used, status.in_flight, status.remaining), (3, 2, Some(5)));
    assert_eq!(ledger.settle(unsent.id).unwrap(), Settlement::GivenBack);
    assert_eq!(ledger.settle(sent.id).unwrap(), Settlement::Spent);
    assert_eq!(ledger.settle(sent.id).unwrap(), Settlement::Spent);
    assert_eq!(ledger.settle(unsent.id).unwrap(), Settlement::GivenBack);
    assert!(matches!(ledger.mark_sent(unsent.id), Err(QuotaError::AlreadyGivenBack(_))));
    let status = ledger.status("tf", day(10)).unwrap();
    assert_eq!((status.used, status.given_back, status.in_flight, status.remaining), (3, 2, 0, Some(7)));
    assert_eq!(status.resets_at, Some(window_of(Period::Day, NOON).end));
}

#[test]
fn unlimited_instances_are_never_refused_but_counted() {
    let clock = ManualClock::new(NOON);
    let ledger = memory(&clock);
    for _ in 0..50 {
        let r = ledger.reserve("free", None, 1, MINUTE).unwrap();
        ledger.mark_sent(r.id).unwrap();
        ledger.settle(r.id).unwrap();
    }
    let status = ledger.status("free", None).unwrap();
    assert_eq!((status.used, status.remaining, status.resets_at), (50, None, None));
}

#[test]
fn expired_reservations_are_settled_by_recovery() {
    let clock = ManualClock::new(NOON);
    let ledger = memory(&clock);
    let unsent = ledger.reserve("tf", day(5), 1, MINUTE).unwrap();
    let sent = ledger.reserve("tf", day(5), 1, MINUTE).unwrap();
    ledger.mark_sent(sent.id).unwrap();
    assert_eq!(ledger.recover_expired().unwrap(), 0, "not expired yet");
    clock.advance(61);
    assert_eq!(ledger.recover_expired().unwrap(), 2);
    assert_eq!(ledger.settle(unsent.id).unwrap(), Settlement::GivenBack);
    assert_eq!(ledger.settle(sent.id).unwrap(), Settlement::Spent);
}

#[test]
fn racing_connections_admit_exactly_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let clock = ManualClock::new(NOON);
    let setup = Ledger::open(&path, Arc::new(clock.clone())).unwrap();
    for _ in 0..5 {
        setup.reserve("tf", day(15), 1, MINUTE).unwrap();
    }
    let barrier = Arc::new(std::sync::Barrier::new(40));
    let handles: Vec<_> = (0..40)
        .map(|_| {
            let (path, clock, barrier) = (path.clone(), clock.clone(), barrier.clone());
            std::thread::spawn(move || {
                let ledger = Ledger::open(&path, Arc::new(clock)).unwrap();
                barrier.wait();
                ledger.reserve("tf", day(15), 1, MINUTE)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    let refused = results.iter().filter(|r| matches!(r, Err(QuotaError::Exhausted { .. }))).count();
    assert_eq!((admitted, refused), (10, 30));
}

#[test]
fn counts_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let clock = ManualClock::new(NOON);
    {
        let ledger = Ledger::open(&path, Arc::new(clock.clone())).unwrap();
        let r = ledger.reserve("tf", day(10), 4, MINUTE).unwrap();
        ledger.mark_sent(r.id).unwrap();
        ledger.settle(r.id).unwrap();
    }
    let ledger = Ledger::open(&path, Arc::new(clock)).unwrap();
    assert_eq!(ledger.remaining("tf", day(10)).unwrap(), Some(6));
}

#[test]
fn a_missing_folder_is_named() {
    let err = Ledger::open(Path::new("/nonexistent/dir/q.db"), Arc::new(SystemClock)).err().unwrap();
    assert!(err.to_string().contains("/nonexistent/dir"), "{err}");
}
