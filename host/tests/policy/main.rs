//! Enrichment policies through the `enrichbox` binary: routing, sequential
//! fall-through, parallel merge, conditions and priority, `policy explain`
//! and database policies, against local ThreatFox mocks (one per instance,
//! so each instance's requests can be counted).

#[path = "../common/mod.rs"]
mod common;
mod env;
mod manage;
mod routing;
