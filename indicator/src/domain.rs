//! Domain-name validation (RFC 1035 host names, as indicators appear in feeds).

/// Lowercases `text`, drops one trailing dot, and checks it is a plausible
/// registered-or-sub domain: at least two labels, each 1-63 characters of
/// letters, digits, `-` or `_` (seen in real malicious hosts), not starting or
/// ending with `-`, a top-level label that is not all digits, 253 bytes at most.
/// Internationalized names must be given in their `xn--` form.
pub fn validate_domain(text: &str) -> Result<String, String> {
    validate_host_name(text, 2)
}

/// The same rules with a chosen minimum number of labels: URLs may name a
/// single-label host (`http://intranet/`), a domain indicator may not.
pub(crate) fn validate_host_name(text: &str, min_labels: usize) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "it is {} bytes long; at most 253 are allowed",
            name.len()
        ));
    }
    if !name.is_ascii() {
        return Err(
            "it contains non-ASCII characters; give internationalized names in their xn-- form"
                .into(),
        );
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < min_labels {
        return Err("a domain needs at least two labels, like example.com".into());
    }
    for label in &labels {
        if label.is_empty() {
            return Err("it has an empty label (two dots in a row, or a leading dot)".into());
        }
        if label.len() > 63 {
            return Err(format!("the label `{label}` is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("the label `{label}` contains `{c}`"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label `{label}` starts or ends with `-`"));
        }
    }
    let tld = labels[labels.len() - 1];
    if labels.len() > 1 && tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the top-level label `{tld}` is all digits"));
    }
    Ok(name.to_string())
}
