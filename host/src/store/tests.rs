use super::*;
use crate::config::InstanceSpec;

fn db() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(&dir.path().join("sub/enrichbox.db")).unwrap();
    assert!(db.init_admin("root").unwrap());
    (dir, db)
}

fn spec(name: &str) -> InstanceSpec {
    InstanceSpec {
        name: name.into(),
        plugin: "threatfox".into(),
        api_key_env: Some("TF_KEY".into()),
        verify_ssl: true,
        ..InstanceSpec::default()
    }
}

#[test]
fn opening_a_missing_database_says_how_to_create_it() {
    let err = Database::open(std::path::Path::new("/nonexistent/x.db"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("/nonexistent/x.db") && err.contains("enrichbox init"),
        "{err}"
    );
}

#[test]
fn init_creates_one_admin_once() {
    let (_d, db) = db();
    assert!(!db.init_admin("other").unwrap());
    let root = db.operator("root").unwrap().unwrap();
    assert_eq!(root.permissions, Permission::ALL);
    assert!(db.operator("other").unwrap().is_none());
}

#[test]
fn denials_name_the_missing_permission_and_change_nothing() {
    let (_d, db) = db();
    db.add_operator("root", "viewer", &[Permission::View])
        .unwrap();
    let err = db
        .add_operator("viewer", "x", &[Permission::View])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`viewer` may not add operators") && err.contains("`admin` permission"),
        "{err}"
    );
    assert!(db.operator("x").unwrap().is_none());
    let err = db
        .authorize("viewer", Permission::Create, "add an instance")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("needs the `create` permission") && err.contains("they have: view"),
        "{err}"
    );
    let err = db
        .authorize("ghost", Permission::View, "list instances")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no operator is named `ghost`"), "{err}");
}

#[test]
fn the_last_admin_cannot_be_removed() {
    let (_d, db) = db();
    assert!(
        db.remove_operator("root", "root")
            .unwrap_err()
            .to_string()
            .contains("last admin")
    );
}

#[test]
fn instances_are_unique_and_every_change_is_in_the_history() {
    let (_d, db) = db();
    db.insert_instance("root", &spec("Prod_TF")).unwrap();
    let dup = db
        .insert_instance("root", &spec("prod_tf"))
        .unwrap_err()
        .to_string();
    assert!(dup.contains("exists already"), "{dup}");
    let mut changed = spec("Prod_TF");
    changed.verify_ssl = false;
    db.update_instance(
        "root",
        "Prod_TF",
        &changed,
        "update",
        serde_json::json!({"verify_ssl": false}),
    )
    .unwrap();
    assert!(!db.instance("prod_tf").unwrap().unwrap().spec.verify_ssl);
    db.remove_instance("root", "Prod_TF").unwrap();
    assert!(db.instance("Prod_TF").unwrap().is_none());
    let actions: Vec<String> = db
        .history("Prod_TF")
        .unwrap()
        .into_iter()
        .map(|h| h.action)
        .collect();
    assert_eq!(actions, ["add", "update", "remove"]);
    assert!(
        db.update_instance(
            "root",
            "nope",
            &spec("nope"),
            "update",
            serde_json::Value::Null
        )
        .is_err()
    );
}
