use super::*;
use enrichbox_indicator::Kind;
use url::Url;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/enrichbox/enrichbox.toml"), text)
}

fn error(text: &str) -> String {
    parse(text).expect_err("should be rejected").to_string()
}

#[test]
fn a_minimal_instance_gets_the_documented_defaults() {
    let config =
        parse("[[instance]]\nname = \"Prod_ThreatFox\"\napi_key_env = \"THREATFOX_API_KEY\"\n")
            .unwrap();
    let instance = config.instance(None).unwrap();
    assert_eq!(instance.base_url.as_str(), THREATFOX_BASE_URL);
    assert_eq!(instance.plugin, PluginSource::Bundled("threatfox".into()));
    assert!(instance.verify_ssl);
    assert_eq!(instance.enabled_kinds, None);
    assert_eq!(instance.limits, Limits::default());
    assert_eq!(
        instance.key_source,
        Some(KeySource::Env("THREATFOX_API_KEY".into()))
    );
}

#[test]
fn relative_paths_are_taken_from_the_config_folder() {
    let config = parse(
        "[[instance]]\nname = \"a\"\nplugin = \"plugins/x.wasm\"\napi_key_file = \"key.txt\"\nenabled_kinds = [\"ip\", \"hash\"]\n",
    )
    .unwrap();
    let instance = &config.instances[0];
    assert_eq!(
        instance.plugin,
        PluginSource::File("/etc/enrichbox/plugins/x.wasm".into())
    );
    assert_eq!(
        instance.key_source,
        Some(KeySource::File("/etc/enrichbox/key.txt".into()))
    );
    assert_eq!(instance.enabled_kinds, Some(vec![Kind::Ip, Kind::Hash]));
}

#[test]
fn errors_name_the_file_the_instance_and_the_field() {
    let unknown = error(
        "[[instance]]\nname = \"tf\"\napi_key_env = \"K\"\nbase_ur = \"https://x.example/\"\n",
    );
    assert!(
        unknown.starts_with("/etc/enrichbox/enrichbox.toml: instance `tf`"),
        "{unknown}"
    );
    assert!(unknown.contains("base_ur"), "{unknown}");

    let duplicate = error(
        "[[instance]]\nname = \"tf\"\napi_key_env = \"K\"\n[[instance]]\nname = \"TF\"\napi_key_env = \"K\"\n",
    );
    assert!(
        duplicate.contains("instance `TF`: field `name`") && duplicate.contains("unique"),
        "{duplicate}"
    );

    let bad_url = error(
        "[[instance]]\nname = \"tf\"\napi_key_env = \"K\"\nbase_url = \"ftp://x.example/\"\n",
    );
    assert!(
        bad_url.contains("field `base_url`") && bad_url.contains("https or http"),
        "{bad_url}"
    );

    let no_key = error("[[instance]]\nname = \"tf\"\n");
    assert!(
        no_key.contains("instance `tf`") && no_key.contains("no API key source"),
        "{no_key}"
    );

    let bad_kind =
        error("[[instance]]\nname = \"tf\"\napi_key_env = \"K\"\nenabled_kinds = [\"email\"]\n");
    assert!(
        bad_kind.contains("field `enabled_kinds`") && bad_kind.contains("email"),
        "{bad_kind}"
    );

    let creds = error(
        "[[instance]]\nname = \"tf\"\napi_key_env = \"K\"\nbase_url = \"https://u:p@x.example/\"\n",
    );
    assert!(
        creds.contains("carries credentials") && !creds.contains("u:p"),
        "{creds}"
    );

    assert!(error("").contains("no [[instance]]"));
    assert!(error("[[instance]]\nname = 5\n").contains("instance `#1`"));
}

#[test]
fn choosing_an_instance() {
    let two = parse(
        "[[instance]]\nname = \"a\"\napi_key_env = \"K\"\n[[instance]]\nname = \"b\"\napi_key_env = \"K\"\n",
    )
    .unwrap();
    assert!(two.instance(None).unwrap_err().contains("--instance"));
    assert_eq!(two.instance(Some("b")).unwrap().name, "b");
    assert!(two.instance(Some("c")).unwrap_err().contains("known: a, b"));
    let with_default = parse(
        "default_instance = \"b\"\n[[instance]]\nname = \"a\"\napi_key_env = \"K\"\n[[instance]]\nname = \"b\"\napi_key_env = \"K\"\n",
    )
    .unwrap();
    assert_eq!(with_default.instance(None).unwrap().name, "b");
}

#[test]
fn secrets_are_read_from_their_source_without_leaking() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "  s3cret-value\n").unwrap();
    let mut instance = InstanceConfig::threatfox("t", Url::parse("https://x.example/").unwrap());
    instance.key_source = Some(KeySource::File(dir.path().join("key")));
    assert_eq!(
        instance.resolve_secret().unwrap().unwrap().expose(),
        "s3cret-value"
    );
    instance.key_source = Some(KeySource::Env(
        "ENRICHBOX_TEST_SURELY_UNSET_VARIABLE".into(),
    ));
    let err = instance.resolve_secret().unwrap_err();
    assert!(
        err.contains("ENRICHBOX_TEST_SURELY_UNSET_VARIABLE is not set"),
        "{err}"
    );
}

#[test]
fn a_syntax_error_says_where_it_is() {
    let error = Config::parse(
        Path::new("enrichbox.toml"),
        "[[instance]]\nname = \"a\"\napi_key_env\n",
    )
    .unwrap_err();
    assert!(error.to_string().contains("line 3, column"), "{error}");
}
