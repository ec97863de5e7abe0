use super::*;

/// 2026-12-04T12:00:00Z, a Friday.
const NOON: i64 = 1_796_385_600;
const HOUR: i64 = 3600;
const MINUTE: Duration = Duration::from_secs(60);

fn day(units: u64) -> Option<Limit> {
    Some(Limit {
        units,
        per: Period::Day,
    })
}

fn at(y: i64, m: u32, d: u32, h: i64) -> i64 {
    days_from_civil(y, m, d) * 86_400 + h * HOUR
}

fn memory(clock: &ManualClock) -> Ledger {
    Ledger::open_in_memory(Arc::new(clock.clone())).unwrap()
}

/// Reserves, marks sent and settles: one spent lookup.
fn spend(
    ledger: &Ledger,
    instance: &str,
    limit: Option<Limit>,
    units: u32,
) -> Result<(), QuotaError> {
    let r = ledger.reserve(instance, limit, units, MINUTE)?;
    ledger.mark_sent(r.id)?;
    assert_eq!(ledger.settle(r.id)?, Settlement::Spent);
    Ok(())
}

fn counts(s: &QuotaStatus) -> (u64, u64, u64, Option<u64>) {
    (s.used, s.given_back, s.in_flight, s.remaining)
}

#[test]
fn calendar_arithmetic_matches_known_dates() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(days_from_civil(2000, 3, 1) * 86_400, 951_868_800);
    assert_eq!(at(2026, 12, 4, 12), NOON);
    for days in [-800_000, -1, 0, 59, 10_957, 20_000, 2_932_896] {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
    }
    assert_eq!(rfc3339(NOON + 59 * 60 + 7), "2026-12-04T12:59:07Z");
    assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
}

#[test]
fn hour_and_day_windows_have_exact_boundaries() {
    let hour = Window {
        start: NOON,
        end: NOON + HOUR,
    };
    assert_eq!(window_of(Period::Hour, NOON), hour);
    assert_eq!(window_of(Period::Hour, NOON + HOUR - 1), hour);
    assert_eq!(window_of(Period::Hour, NOON + HOUR).start, NOON + HOUR);
    assert_eq!(window_of(Period::Hour, NOON - 1).end, NOON);
    let today = Window {
        start: at(2026, 12, 4, 0),
        end: at(2026, 12, 5, 0),
    };
    assert_eq!(window_of(Period::Day, today.start), today);
    assert_eq!(window_of(Period::Day, today.end - 1), today);
    assert_eq!(window_of(Period::Day, today.end).start, today.end);
}

#[test]
fn weeks_start_on_monday() {
    let week = Window {
        start: at(2026, 11, 30, 0),
        end: at(2026, 12, 7, 0),
    };
    assert_eq!(
        window_of(Period::Week, NOON),
        week,
        "Friday 2026-12-04 is in the week of Monday 11-30"
    );
    assert_eq!(window_of(Period::Week, week.start), week);
    assert_eq!(
        window_of(Period::Week, week.end - 1),
        week,
        "Sunday 23:59:59"
    );
    assert_eq!(
        window_of(Period::Week, week.start - 1).start,
        at(2026, 11, 23, 0)
    );
    // Across a new year: Thursday 2026-01-01 belongs to Monday 2025-12-29.
    assert_eq!(
        window_of(Period::Week, at(2026, 1, 1, 9)).start,
        at(2025, 12, 29, 0)
    );
    // Before the epoch too (1969-12-31 was a Wednesday).
    assert_eq!(window_of(Period::Week, -1).start, at(1969, 12, 29, 0));
}

#[test]
fn months_roll_over_years_and_know_leap_februaries() {
    let december = Window {
        start: at(2026, 12, 1, 0),
        end: at(2027, 1, 1, 0),
    };
    assert_eq!(window_of(Period::Month, at(2026, 12, 31, 23)), december);
    assert_eq!(window_of(Period::Month, december.start), december);
    assert_eq!(window_of(Period::Month, december.end).start, december.end);
    assert_eq!(
        window_of(Period::Month, december.end).end,
        at(2027, 2, 1, 0)
    );
    let february = |y| window_of(Period::Month, at(y, 2, 10, 0));
    let days = |w: Window| (w.end - w.start) / 86_400;
    assert_eq!(days(february(2028)), 29, "2028 is a leap year");
    assert_eq!(days(february(2027)), 28);
    assert_eq!(days(february(2100)), 28, "centuries are not leap years");
    assert_eq!(days(february(2000)), 29, "unless divisible by 400");
    assert_eq!(
        window_of(Period::Month, at(2028, 2, 29, 23)).end,
        at(2028, 3, 1, 0)
    );
}

#[test]
fn periods_parse_and_print() {
    assert_eq!("DAY".parse::<Period>(), Ok(Period::Day));
    assert_eq!(" Month ".parse::<Period>(), Ok(Period::Month));
    assert_eq!("weekly".parse::<Period>(), Ok(Period::Week));
    let err = "fortnight".parse::<Period>().unwrap_err();
    assert!(
        err.contains("`fortnight`") && err.contains("hour, day, week or month"),
        "{err}"
    );
    assert_eq!(Period::Hour.to_string(), "hour");
    assert_eq!(Period::Week.as_str(), "week");
}

#[test]
fn an_exhausted_quota_says_how_much_and_until_when() {
    let clock = ManualClock::new(NOON);
    let ledger = memory(&clock);
    for _ in 0..3 {
        spend(&ledger, "tf", day(3), 1).unwrap();
    }
    let err = ledger.reserve("tf", day(3), 1, MINUTE).unwrap_err();
    assert!(
        matches!(err, QuotaError::Exhausted { used: 3, in_flight: 0, limit: 3, period: Period::Day, resets_at, .. }
            if resets_at == at(2026, 12, 5, 0)),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "quota exhausted for instance `tf`: 3 of 3 units used this day \
         (window 2026-12-04T00:00:00Z – 2026-12-05T00:00:00Z); resets at 2026-12-05T00:00:00Z"
    );
    // Other instances have their own count.
    assert!(ledger.reserve("other", day(3), 1, MINUTE).is_ok());
    // Names are case-insensitive, as instance names are in the host.
    assert!(ledger.reserve("TF", day(3), 1, MINUTE).is_err());
}

#[test]
fn in_flight_units_and_large_requests_are_explained() {
    let clock = ManualClock::new(NOON);
    let ledger = memory(&clock);
    spend(&ledger, "tf", day(10), 4).unwrap();
    let _open = ledger.reserve("tf", day(10), 3, MINUTE).unwrap();
    let err = ledger.reserve("tf", day(10), 5, MINUTE).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(
            "4 of 10 units used this day, 3 more reserved by lookups in flight; this lookup needs 5"
        ),
        "{message}"
    );
    // What is left can still be had.
    assert!(ledger.reserve("tf", day(10), 3, MINUTE).is_ok());
    assert_eq!(ledger.remaining("tf", day(10)).unwrap(), Some(0));
}

#[test]
fn a_new_window_starts_fresh() {
    let clock = ManualClock::new(NOON);
    let ledger = memory(&clock);
    spend(&ledger, "tf", day(1), 1).unwrap();
    let midnight = at(2026, 12, 5, 0);
    clock.set(midnight - 1);
    assert!(matches!(
        ledger.reserve("tf", day(1), 1, MINUTE),
        Err(QuotaError::Exhausted { .. })
    ));
    clock.set(midnight);
    let r = ledger.reserve("tf", day(1), 1, MINUTE).unwrap();
    assert_eq!(
        r.window,
        Window {
            start: midnight,
            end: midnight + 86_400
        }
    );
    // Yesterday's spending stays in yesterday.
    let status = ledger.status("tf", day(1)).unwrap();
    assert_eq!(counts(&status), (0, 0, 1, Some(0)));
    // Hourly: the next hour is a new window as well.
    let hourly = Some(Limit {
        units: 1,
        per: Period::Hour,
    });
    spend(&ledger, "h", hourly, 1).unwrap();
    assert!(ledger.reserve("h", hourly, 1, MINUTE).is_err());
    clock.advance(HOUR);
    assert!(ledger.reserve("h", hourly, 1, MINUTE).is_ok());
}

#[test]
fn a_changed_limit_applies_to_the_current_window() {
    let clock = ManualClock::new(NOON);
    let ledger = memory(&clock);
    for _ in 0..3 {
        spend(&ledger, "tf", day(10), 1).unwrap();
    }
    assert!(matches!(
        ledger.reserve("tf", day(3), 1, MINUTE),
        Err(QuotaError::Exhausted { used: 3, .. })
    ));
    assert_eq!(ledger.remaining("tf", day(5)).unwrap(), Some(2));
    // A weekly limit counts the same units; an hourly one only this hour's.
    assert_eq!(
        ledger
            .remaining(
                "tf",
                Some(Limit {
                    units: 4,
                    per: Period::Week
                })
            )
            .unwrap(),
        Some(1)
    );
    clock.advance(HOUR);
    assert_eq!(
        ledger
            .remaining(
                "tf",
                Some(Limit {
                    units: 4,
                    per: Period::Hour
                })
            )
            .unwrap(),
        Some(4)
    );
}

#[test]
fn unsent_units_come_back_sent_units_stay_and_settling_twice_counts_once() {
    let clock = ManualClock::new(NOON);
    let ledger = memory(&clock);
    let unsent = ledger.reserve("tf", day(10), 2, MINUTE).unwrap();
    let sent = ledger.reserve("tf", day(10), 3, MINUTE).unwrap();
    assert_eq!(
        counts(&ledger.status("tf", day(10)).unwrap()),
        (0, 0, 5, Some(5))
    );
    ledger.mark_sent(sent.id).unwrap();
    ledger.mark_sent(sent.id).unwrap();
    assert_eq!(
        counts(&ledger.status("tf", day(10)).unwrap()),
        (3, 0, 2, Some(5))
    );
    assert_eq!(ledger.settle(unsent.id).unwrap(), Settlement::GivenBack);
    assert_eq!(ledger.settle(sent.id).unwrap(), Settlement::Spent);
    assert_eq!(ledger.settle(sent.id).unwrap(), Settlement::Spent);
    assert_eq!(ledger.settle(unsent.id).unwrap(), Settlement::GivenBack);
    ledger.mark_sent(sent.id).unwrap();
    assert!(matches!(
        ledger.mark_sent(unsent.id),
        Err(QuotaError::AlreadyGivenBack(_))
    ));
    let status = ledger.status("tf", day(10)).unwrap();
    assert_eq!(counts(&status), (3, 2, 0, Some(7)));
    assert_eq!(status.resets_at, Some(at(2026, 12, 5, 0)));
    assert_eq!(status.window, Some(window_of(Period::Day, NOON)));
    // The given-back units can be reserved again: exactly 7.
    for _ in 0..7 {
        ledger.reserve("tf", day(10), 1, MINUTE).unwrap();
    }
    assert!(ledger.reserve("tf", day(10), 1, MINUTE).is_err());
}

#[test]
fn unknown_reservations_are_errors() {
    let ledger = memory(&ManualClock::new(NOON));
    assert!(matches!(
        ledger.settle(ReservationId(42)),
        Err(QuotaError::UnknownReservation(42))
    ));
    assert!(matches!(
        ledger.mark_sent(ReservationId(42)),
        Err(QuotaError::UnknownReservation(42))
    ));
}

#[test]
fn unlimited_instances_are_never_refused_but_counted() {
    let clock = ManualClock::new(NOON);
    let ledger = memory(&clock);
    for _ in 0..50 {
        spend(&ledger, "free", None, 1000).unwrap();
    }
    let unsent = ledger.reserve("free", None, 7, MINUTE).unwrap();
    ledger.settle(unsent.id).unwrap();
    let status = ledger.status("free", None).unwrap();
    assert_eq!(counts(&status), (50_000, 7, 0, None));
    assert_eq!(status.resets_at, None);
    assert_eq!(
        status.window,
        Some(window_of(Period::Day, NOON)),
        "counted over the UTC day"
    );
    assert_eq!(ledger.remaining("free", None).unwrap(), None);
}

#[test]
fn expired_reservations_are_settled_by_recovery() {
    let clock = ManualClock::new(NOON);
    let ledger = memory(&clock);
    let unsent = ledger.reserve("tf", day(5), 1, MINUTE).unwrap();
    let sent = ledger.reserve("tf", day(5), 1, MINUTE).unwrap();
    let settled = ledger.reserve("tf", day(5), 1, MINUTE).unwrap();
    let later = ledger
        .reserve("tf", day(5), 1, Duration::from_secs(600))
        .unwrap();
    ledger.mark_sent(sent.id).unwrap();
    ledger.settle(settled.id).unwrap();
    clock.advance(59);
    assert_eq!(ledger.recover_expired().unwrap(), 0, "not expired yet");
    clock.advance(1);
    assert_eq!(ledger.recover_expired().unwrap(), 2);
    assert_eq!(ledger.recover_expired().unwrap(), 0);
    assert_eq!(ledger.settle(unsent.id).unwrap(), Settlement::GivenBack);
    assert_eq!(ledger.settle(sent.id).unwrap(), Settlement::Spent);
    // A request may not leave on a reservation recovery gave back.
    assert!(matches!(
        ledger.mark_sent(unsent.id),
        Err(QuotaError::AlreadyGivenBack(_))
    ));
    assert_eq!(
        counts(&ledger.status("tf", day(5)).unwrap()),
        (1, 2, 1, Some(3))
    );
    ledger.mark_sent(later.id).unwrap();
    assert_eq!(ledger.settle(later.id).unwrap(), Settlement::Spent);
}

#[test]
fn sub_second_expiry_rounds_up() {
    let clock = ManualClock::new(NOON);
    let ledger = memory(&clock);
    ledger
        .reserve("tf", None, 1, Duration::from_millis(1500))
        .unwrap();
    clock.advance(1);
    assert_eq!(ledger.recover_expired().unwrap(), 0);
    clock.advance(1);
    assert_eq!(ledger.recover_expired().unwrap(), 1);
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
                // Its own connection, as another process would have.
                let ledger = Ledger::open(&path, Arc::new(clock)).unwrap();
                barrier.wait();
                ledger.reserve("tf", day(15), 1, MINUTE)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let admitted = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(QuotaError::Exhausted { .. })))
        .count();
    assert_eq!(
        (admitted, refused),
        (10, 30),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    assert_eq!(
        counts(&setup.status("tf", day(15)).unwrap()),
        (0, 0, 15, Some(0))
    );
}

#[test]
fn racing_clones_of_one_ledger_admit_exactly_what_is_left() {
    let ledger = memory(&ManualClock::new(NOON));
    let barrier = Arc::new(std::sync::Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let (ledger, barrier) = (ledger.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                ledger.reserve("tf", day(7), 1, MINUTE).is_ok()
            })
        })
        .collect();
    let admitted = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(admitted, 7);
}

#[test]
fn counts_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let clock = ManualClock::new(NOON);
    let before = {
        let ledger = Ledger::open(&path, Arc::new(clock.clone())).unwrap();
        assert_eq!(ledger.path(), Some(path.as_path()));
        spend(&ledger, "tf", day(10), 4).unwrap();
        let unsent = ledger.reserve("tf", day(10), 2, MINUTE).unwrap();
        ledger.settle(unsent.id).unwrap();
        let open = ledger.reserve("tf", day(10), 1, MINUTE).unwrap();
        ledger.mark_sent(open.id).unwrap();
        ledger.reserve("tf", day(10), 3, MINUTE).unwrap();
        ledger.status("tf", day(10)).unwrap()
    };
    assert_eq!(counts(&before), (5, 2, 3, Some(2)));
    let ledger = Ledger::open(&path, Arc::new(clock)).unwrap();
    assert_eq!(
        counts(&ledger.status("tf", day(10)).unwrap()),
        counts(&before)
    );
    // Ids go on from where they were.
    let next = ledger.reserve("tf", day(10), 1, MINUTE).unwrap();
    assert_eq!(next.id, ReservationId(5));
}

#[test]
fn opening_errors_name_the_path() {
    let err = Ledger::open(Path::new("/nonexistent/dir/q.db"), Arc::new(SystemClock))
        .err()
        .unwrap();
    let message = err.to_string();
    assert!(message.contains("/nonexistent/dir/q.db"), "{message}");
    assert!(
        message.contains("folder /nonexistent/dir does not exist"),
        "{message}"
    );
    // A folder where the file should be: SQLite's refusal, with the path.
    let dir = tempfile::tempdir().unwrap();
    let message = Ledger::open(dir.path(), Arc::new(SystemClock))
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("failed"), "{message}");
}
