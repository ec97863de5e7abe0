use std::sync::{Arc, Barrier};
use std::time::Duration;

use enrichbox_quota::ManualClock;

use super::*;

const NAME: &str = "TF";
const SETTINGS: BreakerSettings = BreakerSettings {
    failures: 3,
    cooldown_seconds: 60,
};
const CLAIM: Duration = Duration::from_secs(5);

fn breaker() -> (Breaker, ManualClock) {
    let clock = ManualClock::new(1_000_000);
    let breaker = Breaker::in_memory()
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    (breaker, clock)
}

fn fail(breaker: &Breaker, trial: bool) -> Option<Change> {
    breaker.record(
        NAME,
        Health::Down("upstream-unavailable: 503"),
        trial,
        SETTINGS,
    )
}

/// Opens the circuit and lets the pause pass.
fn half_open() -> (Breaker, ManualClock) {
    let (breaker, clock) = breaker();
    (0..3).for_each(|_| drop(fail(&breaker, false)));
    clock.advance(61);
    assert!(matches!(
        breaker.circuit(NAME),
        Circuit::HalfOpen {
            trial_until: None,
            ..
        }
    ));
    (breaker, clock)
}

#[test]
fn a_run_of_failures_opens_the_circuit() {
    let (breaker, clock) = breaker();
    assert_eq!(fail(&breaker, false), None);
    // A success in between starts the count again.
    assert_eq!(breaker.record(NAME, Health::Up, false, SETTINGS), None);
    assert_eq!(fail(&breaker, false), None);
    assert_eq!(fail(&breaker, false), None);
    assert_eq!(breaker.circuit(NAME), Circuit::Closed);
    assert_eq!(breaker.admit(NAME, CLAIM), Admission::Go);
    let Some(Change::Opened(pause)) = fail(&breaker, false) else {
        panic!("the third failure in a row opens the circuit")
    };
    assert_eq!(pause.until, 1_000_060);
    assert!(pause.reason.contains("3 failed lookups in a row") && pause.reason.contains("503"));
    assert_eq!(breaker.circuit(NAME), Circuit::Open(pause.clone()));
    assert_eq!(
        breaker.admit(NAME, CLAIM),
        Admission::Refused(Circuit::Open(pause.clone()))
    );
    // Lookups that were in flight when it opened do not extend the pause.
    (0..5).for_each(|_| assert_eq!(fail(&breaker, false), None));
    assert_eq!(breaker.circuit(NAME), Circuit::Open(pause));
    // Paused through the second it ends in: never shorter than the cool-down.
    clock.advance(60);
    assert!(matches!(
        breaker.admit(NAME, CLAIM),
        Admission::Refused(Circuit::Open(_))
    ));
    // Quota, policy and plugin failures say nothing about the provider.
    assert_eq!(
        breaker.record("other", Health::Untested, false, SETTINGS),
        None
    );
    assert_eq!(breaker.circuit("other"), Circuit::Closed);
}

#[test]
fn half_open_admits_exactly_one_trial_across_threads_and_connections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("breaker.db");
    let clock = ManualClock::new(1_000_000);
    let first = Breaker::open(&path)
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    (0..3).for_each(|_| drop(fail(&first, false)));
    clock.advance(61);
    let threads = 16;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            // Half share one connection, half have their own, as other
            // processes would.
            let breaker = if i % 2 == 0 {
                first.clone()
            } else {
                Breaker::open(&path)
                    .unwrap()
                    .with_clock(Arc::new(clock.clone()))
            };
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                breaker.admit(NAME, CLAIM)
            })
        })
        .collect();
    let answers: Vec<Admission> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        answers.iter().filter(|a| **a == Admission::Trial).count(),
        1,
        "{answers:?}"
    );
    for refused in answers.iter().filter(|a| **a != Admission::Trial) {
        let Admission::Refused(Circuit::HalfOpen { trial_until, .. }) = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(*trial_until, Some(1_000_066));
    }
    assert!(
        first
            .circuit(NAME)
            .describe()
            .contains("a trial lookup is in progress")
    );
}

#[test]
fn a_successful_trial_closes_the_circuit() {
    let (breaker, _clock) = half_open();
    assert!(
        breaker
            .circuit(NAME)
            .describe()
            .contains("the next lookup is a trial")
    );
    assert_eq!(breaker.admit(NAME, CLAIM), Admission::Trial);
    assert_eq!(
        breaker.record(NAME, Health::Up, true, SETTINGS),
        Some(Change::Closed)
    );
    assert_eq!(breaker.circuit(NAME), Circuit::Closed);
    assert_eq!(breaker.admit(NAME, CLAIM), Admission::Go);
    // Closed means counting from zero again.
    assert_eq!(fail(&breaker, false), None);
    assert_eq!(breaker.circuit(NAME), Circuit::Closed);
}

#[test]
fn a_failed_trial_reopens_at_once() {
    let (breaker, clock) = half_open();
    assert_eq!(breaker.admit(NAME, CLAIM), Admission::Trial);
    let Some(Change::Opened(pause)) = fail(&breaker, true) else {
        panic!("one failed trial reopens the circuit")
    };
    assert_eq!(pause.until, 1_000_121);
    assert!(
        pause.reason.contains("trial lookup after the pause failed"),
        "{}",
        pause.reason
    );
    assert_eq!(
        breaker.admit(NAME, CLAIM),
        Admission::Refused(Circuit::Open(pause))
    );
    assert!(
        breaker
            .circuit(NAME)
            .describe()
            .starts_with("open: paused until")
    );
    // After the new pause, a new trial.
    clock.advance(61);
    assert_eq!(breaker.admit(NAME, CLAIM), Admission::Trial);
}

#[test]
fn a_lapsed_or_untested_trial_can_be_claimed_again() {
    let (breaker, clock) = half_open();
    assert_eq!(breaker.admit(NAME, CLAIM), Admission::Trial);
    assert!(matches!(
        breaker.admit(NAME, CLAIM),
        Admission::Refused(Circuit::HalfOpen { .. })
    ));
    // Its process died: nobody records an end, the claim lapses.
    clock.advance(5);
    assert!(matches!(breaker.admit(NAME, CLAIM), Admission::Refused(_)));
    clock.advance(1);
    assert_eq!(breaker.admit(NAME, CLAIM), Admission::Trial);
    // A trial that never reached the provider hands the claim back.
    assert_eq!(breaker.record(NAME, Health::Untested, true, SETTINGS), None);
    assert_eq!(breaker.admit(NAME, CLAIM), Admission::Trial);
}

#[test]
fn a_database_from_before_half_open_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(SCHEMA).unwrap();
    old.execute(
        "INSERT INTO circuit_breaker VALUES ('TF', 0, 1, 'old pause')",
        [],
    )
    .unwrap();
    drop(old);
    let breaker = Breaker::open(&path).unwrap();
    assert_eq!(breaker.admit(NAME, CLAIM), Admission::Trial);
    // Opening again finds the column there.
    assert!(Breaker::open(&path).is_ok());
}
