//! `config`: the instance's settings, without its secret.

use crate::bindings::enrichbox::enrichment::config::{Host, Settings};
use crate::state::HostState;

impl Host for HostState {
    fn get(&mut self) -> Settings {
        self.audit("config-read", serde_json::json!({}));
        let instance = &self.instance;
        Settings {
            account_name: instance.name.clone(),
            base_url: instance.base_url.to_string(),
            verify_ssl: instance.verify_ssl,
            enabled_kinds: instance
                .enabled_kinds
                .iter()
                .map(|k| crate::convert::wit_kind(*k))
                .collect(),
        }
    }
}
