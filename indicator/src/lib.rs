//! Indicator-of-compromise parsing shared by the enrichbox host and plugins.
//!
//! The host uses it to detect what kind an input is before choosing a plugin;
//! plugins use it again on what they receive, because a sandboxed plugin must
//! not trust its caller to have validated anything. It has no dependencies so
//! it builds for `wasm32-wasip2` at no cost to plugin size.

use std::fmt;
use std::net::IpAddr;

mod domain;
mod url;

pub use domain::validate_domain;

/// The kinds of indicator enrichbox knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Ip,
    Domain,
    Url,
    Hash,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Ip, Kind::Domain, Kind::Url, Kind::Hash];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ip => "ip",
            Kind::Domain => "domain",
            Kind::Url => "url",
            Kind::Hash => "hash",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ip" | "ipv4" | "ipv6" => Ok(Kind::Ip),
            "domain" | "hostname" | "fqdn" => Ok(Kind::Domain),
            "url" => Ok(Kind::Url),
            "hash" | "md5" | "sha1" | "sha256" => Ok(Kind::Hash),
            other => Err(format!(
                "unknown indicator kind `{other}` (expected one of: ip, domain, url, hash)"
            )),
        }
    }
}

/// Hash algorithms, told apart by the length of the hex digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    Md5,
    Sha1,
    Sha256,
}

impl HashAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Md5 => "md5",
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
        }
    }

    fn from_hex_len(len: usize) -> Option<Self> {
        match len {
            32 => Some(HashAlgorithm::Md5),
            40 => Some(HashAlgorithm::Sha1),
            64 => Some(HashAlgorithm::Sha256),
            _ => None,
        }
    }
}

/// A validated, normalized indicator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Indicator {
    Ip(IpAddr),
    /// Lowercase, no trailing dot.
    Domain(String),
    /// Scheme and host lowercased; the rest as given.
    Url(String),
    /// Lowercase hex.
    Hash {
        algorithm: HashAlgorithm,
        value: String,
    },
}

impl Indicator {
    pub fn kind(&self) -> Kind {
        match self {
            Indicator::Ip(_) => Kind::Ip,
            Indicator::Domain(_) => Kind::Domain,
            Indicator::Url(_) => Kind::Url,
            Indicator::Hash { .. } => Kind::Hash,
        }
    }

    /// The normalized value as text (IPv6 in its canonical compressed form).
    pub fn value(&self) -> String {
        match self {
            Indicator::Ip(ip) => ip.to_string(),
            Indicator::Domain(d) | Indicator::Url(d) => d.clone(),
            Indicator::Hash { value, .. } => value.clone(),
        }
    }
}

impl fmt::Display for Indicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value())
    }
}

/// Why an input is not an indicator. The message names the input and the rule
/// it broke, so it can be shown to a user as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidIndicator(pub String);

impl fmt::Display for InvalidIndicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidIndicator {}

/// Longest input accepted at all; real URLs in feeds stay far below this.
pub const MAX_INPUT_LEN: usize = 4096;

/// Works out what kind of indicator `input` is and normalizes it.
/// Defanged forms (`hxxp://`, `example[.]com`) are accepted.
pub fn detect(input: &str) -> Result<Indicator, InvalidIndicator> {
    let text = prepare(input)?;
    if let Some(algorithm) = HashAlgorithm::from_hex_len(text.len())
        && text.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Ok(Indicator::Hash {
            algorithm,
            value: text.to_ascii_lowercase(),
        });
    }
    if let Some(ip) = parse_ip(&text) {
        return Ok(Indicator::Ip(ip));
    }
    if text.contains("://") {
        return url::normalize_url(&text).map(Indicator::Url);
    }
    match validate_domain(&text) {
        Ok(domain) => Ok(Indicator::Domain(domain)),
        Err(why) => Err(InvalidIndicator(format!(
            "`{}` is not an IP address, domain, URL or MD5/SHA-1/SHA-256 hash ({why})",
            shorten(input.trim())
        ))),
    }
}

/// Parses `input` as the given kind, with a message saying why it is not one.
pub fn parse_as(kind: Kind, input: &str) -> Result<Indicator, InvalidIndicator> {
    let text = prepare(input)?;
    let shown = shorten(input.trim());
    match kind {
        Kind::Ip => parse_ip(&text)
            .map(Indicator::Ip)
            .ok_or_else(|| InvalidIndicator(format!("`{shown}` is not an IPv4 or IPv6 address"))),
        Kind::Domain => validate_domain(&text)
            .map(Indicator::Domain)
            .map_err(|why| InvalidIndicator(format!("`{shown}` is not a domain name: {why}"))),
        Kind::Url => url::normalize_url(&text).map(Indicator::Url),
        Kind::Hash => parse_hash(&text).ok_or_else(|| {
            InvalidIndicator(format!(
                "`{shown}` is not a hash: expected 32 (MD5), 40 (SHA-1) or 64 (SHA-256) hex digits"
            ))
        }),
    }
}

fn parse_hash(text: &str) -> Option<Indicator> {
    let algorithm = HashAlgorithm::from_hex_len(text.len())?;
    text.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| Indicator::Hash {
            algorithm,
            value: text.to_ascii_lowercase(),
        })
}

/// Accepts `1.2.3.4`, `::1` and `[::1]`; rejects anything with a port.
fn parse_ip(text: &str) -> Option<IpAddr> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse().ok()
}

/// Trims, refangs, and rejects empty, oversized or control-character input.
fn prepare(input: &str) -> Result<String, InvalidIndicator> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(InvalidIndicator("empty indicator".into()));
    }
    if trimmed.len() > MAX_INPUT_LEN {
        return Err(InvalidIndicator(format!(
            "indicator is {} bytes long; the limit is {MAX_INPUT_LEN}",
            trimmed.len()
        )));
    }
    if let Some(c) = trimmed
        .chars()
        .find(|c| c.is_control() || c.is_whitespace())
    {
        return Err(InvalidIndicator(format!(
            "`{}` contains the character {c:?}, which no indicator may contain",
            shorten(trimmed)
        )));
    }
    Ok(refang(trimmed))
}

/// Undoes the usual ways analysts make indicators unclickable.
fn refang(text: &str) -> String {
    let mut out = text
        .replace("[.]", ".")
        .replace("(.)", ".")
        .replace("{.}", ".")
        .replace("[:]", ":")
        .replace("[://]", "://");
    for (fanged, plain) in [("hxxps://", "https://"), ("hxxp://", "http://")] {
        if out.len() >= fanged.len() && out[..fanged.len()].eq_ignore_ascii_case(fanged) {
            out = format!("{plain}{}", &out[fanged.len()..]);
        }
    }
    out
}

/// Keeps error messages readable when the input is huge.
pub fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests;
