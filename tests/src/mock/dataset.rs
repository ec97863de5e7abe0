//! A small, realistic ThreatFox data set: IPs stored with ports (and one
//! that is a substring of another), a domain with a subdomain record, a URL,
//! a sample listed as a payload and linked to two C2s, a low-confidence
//! record. All names are under `.example` and addresses in documentation
//! ranges or long-dead infrastructure.

use serde_json::{Value, json};

pub const SAMPLE_MD5: &str = "3f2c9b1e8d7a6c5b4e3f2a1b0c9d8e7f";
pub const SAMPLE_SHA256: &str = "9a3c5e7b1d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c";
/// A SHA-256 nobody knows.
pub const UNKNOWN_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000001";

pub const C2_IP: &str = "139.180.203.104";
/// A prefix of `C2_IP`: a substring search for it also finds `C2_IP`.
pub const SHORT_IP: &str = "139.180.203.10";
pub const C2_IPV6: &str = "2001:db8:dead::1";
pub const C2_DOMAIN: &str = "telemetry-cdn.example";
pub const C2_SUBDOMAIN: &str = "mail.telemetry-cdn.example";
pub const PAYLOAD_URL: &str = "http://files.telemetry-cdn.example/invoice.exe";
pub const LOW_CONFIDENCE_DOMAIN: &str = "maybe-phish.example";

fn sample() -> Value {
    json!([{
        "time_stamp": "2024-03-27 19:58:11 UTC",
        "md5_hash": SAMPLE_MD5,
        "sha256_hash": SAMPLE_SHA256,
        "malware_bazaar": format!("https://bazaar.abuse.ch/sample/{SAMPLE_SHA256}/")
    }])
}

#[allow(clippy::too_many_arguments)]
fn record(
    id: u32,
    ioc: &str,
    ioc_type: &str,
    threat_type: &str,
    malware: (&str, &str, Option<&str>),
    confidence: u8,
    first_seen: &str,
    tags: Option<Vec<&str>>,
    samples: Value,
) -> Value {
    let (malware_id, printable, alias) = malware;
    let threat_desc = match threat_type {
        "botnet_cc" => "Indicator that identifies a botnet command&control server (C&C)",
        "payload_delivery" => {
            "Indicator that identifies a malware distribution server (payload delivery)"
        }
        "payload" => "Indicator that identifies a malware sample (payload)",
        _ => "Other",
    };
    let ioc_type_desc = match ioc_type {
        "ip:port" => "ip:port combination that is used for botnet Command&control (C&C)",
        "domain" => "Domain name that is used for botnet Command&control (C&C)",
        "url" => "URL that is used for payload delivery",
        _ => "Hash of a malware sample",
    };
    json!({
        "id": id.to_string(),
        "ioc": ioc,
        "threat_type": threat_type,
        "threat_type_desc": threat_desc,
        "ioc_type": ioc_type,
        "ioc_type_desc": ioc_type_desc,
        "malware": malware_id,
        "malware_printable": printable,
        "malware_alias": alias,
        "malware_malpedia": format!("https://malpedia.caad.fkie.fraunhofer.de/details/{malware_id}"),
        "confidence_level": confidence,
        "first_seen": first_seen,
        "last_seen": null,
        "reference": format!("https://intel.example/reports/{id}"),
        "reporter": "abuse_ch",
        "tags": tags,
        "malware_samples": samples,
    })
}

/// Every record the mock serves.
pub fn records() -> Vec<Value> {
    let cobalt = (
        "win.cobalt_strike",
        "Cobalt Strike",
        Some("Agentemis,BEACON,CobaltStrike"),
    );
    let asyncrat = ("win.asyncrat", "AsyncRAT", None);
    vec![
        record(
            1001,
            &format!("{C2_IP}:443"),
            "ip:port",
            "botnet_cc",
            cobalt,
            100,
            "2024-03-27 20:02:05 UTC",
            Some(vec!["c2", "CobaltStrike"]),
            sample(),
        ),
        record(
            1002,
            &format!("{SHORT_IP}:8080"),
            "ip:port",
            "botnet_cc",
            ("win.qakbot", "QakBot", Some("Pinkslipbot,Qbot")),
            75,
            "2023-11-02 08:15:00 UTC",
            None,
            json!([]),
        ),
        record(
            1003,
            &format!("[{C2_IPV6}]:443"),
            "ip:port",
            "botnet_cc",
            ("win.sliver", "Sliver", None),
            75,
            "2024-05-01 12:00:00 UTC",
            Some(vec!["sliver"]),
            json!([]),
        ),
        record(
            1004,
            C2_DOMAIN,
            "domain",
            "botnet_cc",
            asyncrat,
            100,
            "2024-03-28 07:45:10 UTC",
            Some(vec!["AsyncRAT", "rat"]),
            sample(),
        ),
        record(
            1005,
            C2_SUBDOMAIN,
            "domain",
            "payload_delivery",
            asyncrat,
            50,
            "2024-03-29 10:00:00 UTC",
            None,
            json!([]),
        ),
        record(
            1006,
            PAYLOAD_URL,
            "url",
            "payload_delivery",
            ("win.emotet", "Emotet", Some("Geodo,Heodo")),
            100,
            "2024-02-14 09:30:00 UTC",
            Some(vec!["exe", "emotet"]),
            json!([]),
        ),
        record(
            1007,
            SAMPLE_SHA256,
            "sha256_hash",
            "payload",
            asyncrat,
            100,
            "2024-03-27 19:58:11 UTC",
            Some(vec!["AsyncRAT"]),
            json!([]),
        ),
        record(
            1008,
            LOW_CONFIDENCE_DOMAIN,
            "domain",
            "payload_delivery",
            ("unknown", "Unknown malware", None),
            25,
            "2024-06-01 00:00:00 UTC",
            None,
            json!([]),
        ),
    ]
}
