use super::*;

fn detected(input: &str) -> (Kind, String) {
    let ind = detect(input).unwrap_or_else(|e| panic!("{input:?} rejected: {e}"));
    (ind.kind(), ind.value())
}

#[test]
fn detects_each_kind_and_normalizes() {
    assert_eq!(
        detected(" 139.180.203.104 "),
        (Kind::Ip, "139.180.203.104".into())
    );
    assert_eq!(
        detected("[2001:DB8::0:1]"),
        (Kind::Ip, "2001:db8::1".into())
    );
    assert_eq!(
        detected("Example.COM."),
        (Kind::Domain, "example.com".into())
    );
    assert_eq!(
        detected("HTTP://Evil.Example.com:8080/Path?q=A"),
        (Kind::Url, "http://evil.example.com:8080/Path?q=A".into())
    );
    let md5 = "44D88612FEA8A8F36DE82E1278ABB02F";
    assert_eq!(detected(md5), (Kind::Hash, md5.to_lowercase()));
    assert!(matches!(
        detect(&"a".repeat(40)).unwrap(),
        Indicator::Hash {
            algorithm: HashAlgorithm::Sha1,
            ..
        }
    ));
    assert!(matches!(
        detect(&"0".repeat(64)).unwrap(),
        Indicator::Hash {
            algorithm: HashAlgorithm::Sha256,
            ..
        }
    ));
}

#[test]
fn refangs_defanged_indicators() {
    assert_eq!(
        detected("evil[.]example[.]com"),
        (Kind::Domain, "evil.example.com".into())
    );
    assert_eq!(
        detected("hxxps://evil[.]com/x"),
        (Kind::Url, "https://evil.com/x".into())
    );
    assert_eq!(detected("10[.]0[.]0[.]1"), (Kind::Ip, "10.0.0.1".into()));
}

#[test]
fn rejects_garbage_with_a_reason() {
    for (input, needle) in [
        ("", "empty"),
        ("   ", "empty"),
        ("not an indicator", "contains the character"),
        ("localhost", "two labels"),
        ("exa mple.com", "contains the character"),
        ("-bad-.com", "starts or ends"),
        ("1.2.3.4:443", "is not an IP address, domain"),
        ("ftp://example.com/", "scheme `ftp`"),
        ("http://", "no host"),
        ("http://exa_mple..com/", "empty label"),
        ("http://example.com:99999/", "port"),
        ("bücher.de", "non-ASCII"),
        ("1.2.3.999", "all digits"),
    ] {
        let err = detect(input).expect_err(input);
        assert!(err.0.contains(needle), "{input:?}: {err} lacks {needle:?}");
    }
    let huge = "a".repeat(MAX_INPUT_LEN + 1);
    assert!(detect(&huge).unwrap_err().0.contains("limit"));
}

#[test]
fn parse_as_checks_the_requested_kind() {
    assert!(
        parse_as(Kind::Ip, "example.com")
            .unwrap_err()
            .0
            .contains("not an IPv4 or IPv6")
    );
    assert!(
        parse_as(Kind::Hash, "abc")
            .unwrap_err()
            .0
            .contains("hex digits")
    );
    assert!(parse_as(Kind::Hash, &"g".repeat(32)).is_err());
    assert_eq!(
        parse_as(Kind::Domain, "1.example").unwrap().value(),
        "1.example"
    );
    assert_eq!(
        Kind::Url,
        parse_as(Kind::Url, "https://1.2.3.4/a").unwrap().kind()
    );
    assert_eq!(
        detected("http://Intranet:8080/x"),
        (Kind::Url, "http://intranet:8080/x".into())
    );
    assert!(parse_as(Kind::Domain, "intranet").is_err());
}

#[test]
fn long_inputs_are_shortened_in_messages() {
    let err = detect(&format!("{}!", "x".repeat(300))).unwrap_err();
    assert!(err.0.len() < 250, "{}", err.0);
}
