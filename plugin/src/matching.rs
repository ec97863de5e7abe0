//! Deciding whether a ThreatFox record is about the indicator looked up.
//!
//! `search_ioc` is a substring search: `1.2.3.4` also finds `11.2.3.4:80`
//! and `example.com` finds `sub.example.com` and URLs on it. Only records
//! that are the indicator itself (an IP possibly with a port) are kept.

use std::net::IpAddr;

use enrichbox_indicator::{Indicator, Kind, parse_as};

/// Whether a record with this `ioc` and `ioc_type` is `indicator` itself.
pub fn is_same_indicator(indicator: &Indicator, ioc: &str, ioc_type: &str) -> bool {
    match indicator {
        Indicator::Ip(ip) => ioc_type.starts_with("ip") && ip_of_record(ioc) == Some(*ip),
        Indicator::Domain(domain) => {
            ioc_type == "domain" && parse_as(Kind::Domain, ioc).is_ok_and(|d| d.value() == *domain)
        }
        Indicator::Url(url) => {
            ioc_type == "url" && parse_as(Kind::Url, ioc).is_ok_and(|u| u.value() == *url)
        }
        Indicator::Hash { value, .. } => {
            ioc_type.ends_with("_hash") && ioc.trim().eq_ignore_ascii_case(value)
        }
    }
}

/// The address in `1.2.3.4`, `1.2.3.4:443`, `[2001:db8::1]:443`, or
/// `2001:db8::1:443`. The last form is ambiguous (it is itself a valid IPv6
/// address), so a string that parses whole as an address is taken as one.
fn ip_of_record(ioc: &str) -> Option<IpAddr> {
    let ioc = ioc.trim();
    if let Ok(ip) = ioc.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = ioc.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        return match after {
            "" => inside.parse().ok(),
            _ => is_port(after.strip_prefix(':')?).then(|| inside.parse().ok())?,
        };
    }
    let (address, port) = ioc.rsplit_once(':')?;
    if is_port(port) {
        address.parse().ok()
    } else {
        None
    }
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use enrichbox_indicator::detect;

    fn matches(indicator: &str, ioc: &str, ioc_type: &str) -> bool {
        is_same_indicator(&detect(indicator).unwrap(), ioc, ioc_type)
    }

    #[test]
    fn a_bare_ip_matches_its_ip_port_records_only() {
        assert!(matches("139.180.203.104", "139.180.203.104:443", "ip:port"));
        assert!(matches("139.180.203.104", "139.180.203.104", "ip:port"));
        assert!(!matches("139.180.203.104", "139.180.203.10:443", "ip:port"));
        assert!(!matches("9.180.203.104", "139.180.203.104:443", "ip:port"));
        assert!(!matches("1.2.3.4", "1.2.3.4:abc", "ip:port"));
        assert!(!matches("1.2.3.4", "http://1.2.3.4/x", "url"));
    }

    #[test]
    fn ipv6_records_with_and_without_brackets() {
        assert!(matches("2001:db8::1", "[2001:db8::1]:443", "ip:port"));
        assert!(matches("2001:db8::1", "[2001:DB8:0::1]:8080", "ip:port"));
        assert!(matches("2001:db8::1", "2001:db8::1", "ip:port"));
        // Itself a different, valid address: not a port suffix.
        assert!(!matches("2001:db8::1", "2001:db8::1:443", "ip:port"));
        assert!(matches(
            "2001:db8:0:0:0:0:0:1",
            "2001:db8:0:0:0:0:0:1:443",
            "ip:port"
        ));
    }

    #[test]
    fn a_domain_does_not_match_its_subdomains_or_urls() {
        assert!(matches("example.com", "Example.com", "domain"));
        assert!(!matches("example.com", "sub.example.com", "domain"));
        assert!(!matches("example.com", "notexample.com", "domain"));
        assert!(!matches("example.com", "http://example.com/", "url"));
    }

    #[test]
    fn urls_match_exactly_up_to_scheme_and_host_case() {
        assert!(matches("http://evil.com/a", "HTTP://EVIL.com/a", "url"));
        assert!(!matches("http://evil.com/a", "http://evil.com/a/b", "url"));
        assert!(!matches("http://evil.com/A", "http://evil.com/a", "url"));
    }

    #[test]
    fn hashes_match_case_insensitively() {
        let h = "44d88612fea8a8f36de82e1278abb02f";
        assert!(matches(h, &h.to_uppercase(), "md5_hash"));
        assert!(!matches(h, h, "domain"));
    }
}
