//! URL validation for indicators: absolute http(s) URLs only.

use crate::domain::validate_host_name;
use crate::{InvalidIndicator, shorten};

/// Checks `text` is `http://` or `https://` followed by a valid host (name or
/// IP literal, optional port), and lowercases the scheme and host; path, query
/// and fragment are kept byte for byte, since providers match them exactly.
pub(crate) fn normalize_url(text: &str) -> Result<String, InvalidIndicator> {
    let shown = shorten(text);
    let invalid = |why: &str| InvalidIndicator(format!("`{shown}` is not a valid URL: {why}"));
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| invalid("it has no scheme (expected http:// or https://)"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(invalid(&format!(
            "the scheme `{scheme}` is not supported (expected http or https)"
        )));
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host_port = match authority.rsplit_once('@') {
        Some((_, host_port)) => host_port,
        None => authority,
    };
    if host_port.is_empty() {
        return Err(invalid("it has no host"));
    }
    let (host, port) = split_host_port(host_port).map_err(|why| invalid(&why))?;
    let host = if host.starts_with('[') {
        let inner = &host[1..host.len() - 1];
        inner
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| invalid(&format!("`{host}` is not an IPv6 address")))?;
        host.to_ascii_lowercase()
    } else if host.parse::<std::net::Ipv4Addr>().is_ok() {
        host.to_string()
    } else {
        validate_host_name(host, 1).map_err(|why| invalid(&format!("bad host `{host}`: {why}")))?
    };
    let userinfo = match authority.rsplit_once('@') {
        Some((userinfo, _)) => format!("{userinfo}@"),
        None => String::new(),
    };
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{scheme}://{userinfo}{host}{port}{tail}"))
}

fn split_host_port(host_port: &str) -> Result<(&str, Option<&str>), String> {
    let (host, port) = if host_port.starts_with('[') {
        let close = host_port
            .find(']')
            .ok_or_else(|| "an IPv6 host has no closing `]`".to_string())?;
        let (host, after) = host_port.split_at(close + 1);
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("unexpected `{after}` after the host")),
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Err(format!("the port `{port}` is not a number from 0 to 65535"));
    }
    Ok((host, port))
}
